//! Entry point of the Web Worker's wasm module: registers the engine reactor.
//!
//! The single-threaded build registers as soon as the module starts. The multi-threaded build
//! (feature `threads`) starts the same module on every thread of rayon's pool, so its `main`
//! does nothing: `web/engine.js` calls [`start_engine`] once, on the engine's own worker, after
//! the pool is up, so that no computation can reach rayon before its threads exist.

/// The system allocator, noting the size of any allocation it cannot serve.
///
/// When wasm's memory cannot grow, Rust's allocation-error handler aborts, which reaches the
/// page as a bare `RuntimeError: unreachable`. `web/engine.js` reads the noted size through
/// [`failed_allocation_bytes`] when the worker dies, so the page can say "the engine ran out
/// of memory (an allocation of 4.8 GB failed)" instead. std offers no stable hook for this
/// (`set_alloc_error_hook` is unstable), hence the wrapper.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)] // implementing `GlobalAlloc` is unsafe by definition; it only forwards.
mod recording_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub static FAILED: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub struct Recording;

    fn note(p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            FAILED.store(size, Ordering::Relaxed);
        }
        p
    }

    // SAFETY: every call forwards to `System` with the caller's arguments unchanged.
    unsafe impl GlobalAlloc for Recording {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(unsafe { System.alloc(layout) }, layout.size())
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(unsafe { System.alloc_zeroed(layout) }, layout.size())
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
        }
    }

    #[global_allocator]
    static ALLOCATOR: Recording = Recording;
}

/// Size in bytes of the last allocation that failed (0 if none): read by `web/engine.js`
/// after the worker traps.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn failed_allocation_bytes() -> f64 {
    recording_alloc::FAILED.load(std::sync::atomic::Ordering::Relaxed) as f64
}

/// Logs panics to the console as before, and keeps the message on the worker's global scope
/// (`HAWTHORNE_PANIC`) for `web/engine.js` to pass to the page when the worker dies.
#[cfg(target_arch = "wasm32")]
fn keep_panic_messages() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let _ = js_sys::Reflect::set(&js_sys::global(), &"HAWTHORNE_PANIC".into(), &info.to_string().into());
    }));
}

#[cfg(target_arch = "wasm32")]
fn register() {
    use yew_agent::Registrable;
    hawthorne_worker::agent::EngineReactor::registrar()
        .encoding::<hawthorne_worker::agent::SerdeCodec>()
        .register();
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
fn main() {
    keep_panic_messages();
    register();
}

#[cfg(all(target_arch = "wasm32", feature = "threads"))]
fn main() {
    keep_panic_messages();
}

/// Starts rayon's pool of `threads` Web Workers, then registers the engine on this worker.
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
#[wasm_bindgen::prelude::wasm_bindgen]
pub async fn start_engine(threads: usize) -> Result<(), wasm_bindgen::JsValue> {
    wasm_bindgen_futures::JsFuture::from(wasm_bindgen_rayon::init_thread_pool(threads.max(1))).await?;
    register();
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the worker only runs in a browser; build it with `cargo xtask build-web`");
}
