//! Entry point of the Web Worker's wasm module: registers the engine reactor.

#[cfg(target_arch = "wasm32")]
fn main() {
    use yew_agent::Registrable;
    console_error_panic_hook::set_once();
    hawthorne_worker::agent::EngineReactor::registrar()
        .encoding::<hawthorne_worker::agent::SerdeCodec>()
        .register();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the worker only runs in a browser; build it with `cargo xtask build-web`");
}
