// Starts the engine inside its Web Worker, choosing the build: several threads where the page
// asks for them and is cross-origin isolated (SharedArrayBuffer available), one thread
// everywhere else.
//
// The page spawns the worker through yew-agent, which runs `importScripts(<this file>)` and
// then calls `wasm_bindgen(<this file's URL with .js replaced by _bg.wasm>)`. This file defines
// that function, so the page needs no knowledge of which build runs:
// - with `threads=N` (N ≥ 2) on an isolated page, `pkg/mt/worker.js` (feature `threads`, an
//   ES module) is imported, rayon's pool of N Web Workers is started on the shared memory, and
//   only then the engine registers;
// - otherwise, or if anything in that path fails, `pkg/worker.js` (the default single-threaded
//   build, a classic script) is loaded as before.
// The threaded build runs only when asked: a `threads=N` query on this script's URL (the page
// passes its own `?threads=N`, capped at the core count and 8). Without it the worker runs one
// thread, because on the measured workloads one thread was faster: on 2 cores the default
// organism experiment took 1434 ms on two threads against 893 ms on one (the threaded build
// pays for every parallel op's hand-off between Web Workers), and SmolLM2's prefill gained
// nothing (bench/RESULTS.md).
'use strict';

// The page learns that this worker died (a trap, an out-of-memory abort, a panic, or being
// closed) through a lifeline named by the page's `life=<id>` query:
// - the worker holds the Web Lock `hawthorne-engine-<id>` for as long as it lives; the page
//   asks for the same lock once the worker says it holds it, and is granted it only when the
//   worker is gone, whatever the cause;
// - on an uncaught error the worker posts why on the BroadcastChannel of the same name (the
//   panic message, or the size of the allocation that failed), then closes itself: after a
//   trap the engine's state cannot be trusted, and closing releases the lock.
function lifeline(id, failedAllocation) {
  const name = 'hawthorne-engine-' + id;
  const channel = new BroadcastChannel(name);
  let dead = false;
  const die = (error) => {
    if (dead) return;
    dead = true;
    const text = error && error.message ? error.message : String(error);
    let failed = 0;
    try { failed = failedAllocation() || 0; } catch (_) { /* the module may not be up yet */ }
    channel.postMessage({ type: 'died', error: text, panic: self.HAWTHORNE_PANIC || null, failed_allocation: failed });
    channel.close();
    self.close();
  };
  self.addEventListener('error', (e) => die(e.error || e.message));
  self.addEventListener('unhandledrejection', (e) => die(e.reason));
  if (self.navigator && navigator.locks) {
    navigator.locks.request(name, () => {
      channel.postMessage({ type: 'alive' });
      return new Promise(() => {});
    });
  }
}

self.wasm_bindgen = (wasmUrl) => {
  const pkg = new URL('../pkg/', wasmUrl);
  const params = new URL(wasmUrl).searchParams;
  // Tests only: skip the address-space check, to reach a real out-of-memory abort.
  self.HAWTHORNE_MEMORY_CHECK_OFF = params.get('memory_check') === 'off';
  let failedAllocation = () => 0;
  if (params.get('life')) lifeline(params.get('life'), () => failedAllocation());
  const asked = Number(params.get('threads') || 0);
  const cores = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));
  const threads = asked >= 1 ? Math.min(Math.floor(asked), cores) : 1;

  const single = () => {
    importScripts(new URL('worker.js', pkg).href);
    // `pkg/worker.js` declares the global `wasm_bindgen` (its init function), shadowing this one.
    failedAllocation = () => wasm_bindgen.failed_allocation_bytes();
    return wasm_bindgen(new URL('worker_bg.wasm', pkg).href);
  };
  if (!self.crossOriginIsolated || threads < 2) return single();
  return import(new URL('mt/worker.js', pkg).href)
    .then(async (mt) => {
      await mt.default({ module_or_path: new URL('mt/worker_bg.wasm', pkg).href });
      failedAllocation = () => mt.failed_allocation_bytes();
      await mt.start_engine(threads);
    })
    .catch((err) => {
      console.warn('multi-threaded engine unavailable, using one thread:', err && err.message ? err.message : err);
      return single();
    });
};
