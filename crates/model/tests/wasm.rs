//! wasm-bindgen-test in headless Chromium: the wasm forward pass on the tiny random model
//! matches the native numbers pinned in `fixtures/tiny_native.json` within 1e-5.

#![cfg(target_arch = "wasm32")]

#[path = "tiny_common.rs"]
mod tiny_common;

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const FIXTURE: &str = include_str!("fixtures/tiny_native.json");

#[wasm_bindgen_test]
fn wasm_forward_matches_native() {
    let got = tiny_common::run().expect("the tiny model runs in wasm");
    let want: tiny_common::Snapshot = serde_json::from_str(FIXTURE).expect("fixture parses");
    let diff = tiny_common::max_abs_diff(&got, &want).expect("same shapes");
    assert!(diff <= 1e-5, "wasm differs from native by {diff}");
}

#[wasm_bindgen_test]
fn truncated_gguf_is_an_error_not_a_panic() {
    let bytes = hawthorne_model::testing::tiny_random_gguf(42).expect("builds");
    let err = hawthorne_model::Model::from_gguf_bytes(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(err.to_string().contains("truncated") || err.to_string().contains("remaining"), "{err}");
}
