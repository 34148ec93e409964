// Boots the Yew app (wasm). A failure here is shown on the page instead of a blank screen.
import init from '../pkg/app.js';

init().catch((err) => {
  const status = document.getElementById('boot-status');
  if (status) {
    status.textContent = 'Hawthorne could not start: ' + (err && err.message ? err.message : String(err)) +
      '. A browser with WebAssembly SIMD (Chrome 91+, Firefox 89+, Safari 16.4+) is needed.';
    status.className = 'boot error';
  }
});

// Offline support: cache the app and the models after the first visit. `sw.js` is relative, so
// the worker's scope is the directory the page is served from (the site may live under a subpath).
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('sw.js').catch((err) => {
    console.warn('offline mode unavailable:', err && err.message ? err.message : err);
  });
  reloadOnceForThreads();
}

// Threads need a cross-origin-isolated page (COOP and COEP headers). A static host that cannot
// send them gets them from the service worker, which adds them to everything it serves, but the
// very first visit is served before the worker is installed. So when the address asks for
// threads (`?threads=N`, N ≥ 2) and the page is not isolated, reload once as soon as the service
// worker takes control: the reload is served by it, with the headers. Only once per tab and
// address (sessionStorage), so a browser that stays unisolated is not reloaded again and again;
// the engine then runs on one thread, as it would anyway. Without `?threads` nothing reloads:
// one thread needs no isolation.
function reloadOnceForThreads() {
  const threads = Number(new URLSearchParams(location.search).get('threads') || 0);
  if (!(threads >= 2) || self.crossOriginIsolated) return;
  const flag = 'hawthorne-isolation-reload:' + location.pathname;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    try {
      if (sessionStorage.getItem(flag)) return;
      sessionStorage.setItem(flag, '1');
    } catch (_) {
      return; // no sessionStorage (a privacy setting): no way to reload only once
    }
    location.reload();
  });
}
