// Service worker: after the first visit the page, the engine and the model files work offline.
// App files are served from the cache and refreshed in the background (stale-while-revalidate);
// model files are cached on first download and then served from the cache. Everything lives in
// one cache per build, so a new build (which may ship retrained organisms) starts afresh.
// Every response it serves carries COOP and COEP, so that on a static host that cannot send
// them the page is cross-origin isolated from its second load on, and the worker may use
// several threads.
//
// The page may be hosted under a subpath (https://example.org/hawthorne/): this file sits next
// to index.html and its scope is that directory, so every path here is relative to the scope,
// never to the origin's root.
const VERSION = '__BUILD__';
const SCOPE = new URL('./', self.registration.scope);
// Caches are shared by the whole origin, so the name carries the scope: two copies of the page
// on one host (say /hawthorne/ and /hawthorne-next/) must not delete each other's cache.
const CACHE_PREFIX = `hawthorne:${SCOPE.pathname}:`;
const CACHE = CACHE_PREFIX + VERSION;
const MODELS = new URL('models/', SCOPE).pathname;
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
      // This scope's older builds, and the caches of builds from before the name carried the
      // scope (`hawthorne-<build>`), which no current worker reads.
      const old = key.startsWith(CACHE_PREFIX) || /^hawthorne-[0-9a-f]+$/.test(key);
      if (old && key !== CACHE) await caches.delete(key);
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

// The cache key of a request: its URL without the ?query, because the page is the same page
// with `?threads=2` or `?t=1` and must open offline whatever its query. The page's own address
// is the scope's root (install cached it as './'), wherever the scope is.
function cacheKey(url) {
  return url.origin + url.pathname;
}

// Every same-origin GET inside the scope goes through here, the page's own navigation
// included, so the page itself is served with COOP and COEP once this worker is active.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const isModel = url.pathname.startsWith(MODELS);
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const key = cacheKey(url);
    const cached = await cache.match(key);
    const network = fetch(req).then((resp) => {
      // A navigation's redirect (a host sending /dir to /dir/) is not `ok`: passed on, not cached.
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
