//! The page's entry point: mounts the Yew app into `#app`.

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod link;
#[cfg(target_arch = "wasm32")]
mod lessons;
#[cfg(target_arch = "wasm32")]
mod lifeline;
#[cfg(target_arch = "wasm32")]
mod state;
// The chart layout arithmetic is pure Rust: its unit tests run natively.
#[cfg(all(test, not(target_arch = "wasm32")))]
#[path = "components/charts/layout.rs"]
mod layout;

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    match gloo::utils::document().get_element_by_id("app") {
        Some(root) => {
            yew::Renderer::<app::App>::with_root(root).render();
        }
        None => gloo::console::error!("index.html has no #app element"),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the page only runs in a browser; build and serve it with `cargo xtask serve`");
}
