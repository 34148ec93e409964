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

// Offline support: cache the app and the models after the first visit.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register('sw.js').catch((err) => {
    console.warn('offline mode unavailable:', err && err.message ? err.message : err);
  });
}
