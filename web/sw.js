// Service worker: after the first visit the page, the engine and the model files work offline.
// App files are served from the cache and refreshed in the background (stale-while-revalidate);
// model files are cached on first download and then served from the cache. Everything lives in
// one cache per build, so a new build (which may ship retrained organisms) starts afresh.
// Every response it serves carries COOP and COEP, so that on a static host that cannot send
// them the page is cross-origin isolated from its second load on, and the worker may use
// several threads.
const VERSION = '__BUILD__';
const CACHE = `hawthorne-${VERSION}`;
// The bundled organisms are small (about 5 MB each) and are cached at install, so the default
// model works offline even if the first visit fetched it before this worker took control.
const SHELL = ['./', 'index.html', 'web/style.css', 'web/boot.js', 'web/engine.js', 'web/favicon.svg',
  'pkg/app.js', 'pkg/app_bg.wasm', 'pkg/worker.js', 'pkg/worker_bg.wasm',
  'models/organism-deceptive.gguf', 'models/organism-control.gguf'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

function isolated(resp) {
  // Opaque and redirect responses cannot be rebuilt; same-origin ones always can.
  if (resp.type !== 'basic' && resp.type !== 'default') return resp;
  if (Object.entries(ISOLATION).every(([k, v]) => resp.headers.get(k) === v)) return resp;
  const headers = new Headers(resp.headers);
  for (const [k, v] of Object.entries(ISOLATION)) headers.set(k, v);
  return new Response(resp.body, { status: resp.status, statusText: resp.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const isModel = url.pathname.includes('/models/');
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = url.pathname === '/' ? req : url.pathname; // ignore the #fragment and ?query
    const cached = await cache.match(key);
    const network = fetch(req).then((resp) => {
      if (resp.ok) cache.put(key, resp.clone());
      return resp;
    });
    if (cached) {
      if (!isModel) network.catch(() => {}); // refresh in the background
      return isolated(cached);
    }
    return network.then(isolated);
  })());
});
