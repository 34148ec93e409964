//! Entry point of the Web Worker's wasm module: registers the engine reactor.
//!
//! The single-threaded build registers as soon as the module starts. The multi-threaded build
//! (feature `threads`) starts the same module on every thread of rayon's pool, so its `main`
//! does nothing: `web/engine.js` calls [`start_engine`] once, on the engine's own worker, after
//! the pool is up, so that no computation can reach rayon before its threads exist.

#[cfg(target_arch = "wasm32")]
fn register() {
    use yew_agent::Registrable;
    hawthorne_worker::agent::EngineReactor::registrar()
        .encoding::<hawthorne_worker::agent::SerdeCodec>()
        .register();
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
fn main() {
    console_error_panic_hook::set_once();
    register();
}

#[cfg(all(target_arch = "wasm32", feature = "threads"))]
fn main() {
    console_error_panic_hook::set_once();
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
