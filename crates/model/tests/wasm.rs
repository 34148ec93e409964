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

#[wasm_bindgen_test]
fn simd128_kernels_equal_the_scalar_reference() {
    use hawthorne_model::kernels::{compare_with_scalar, Isa};
    assert_eq!(Isa::detect(), Isa::Simd128, "the wasm build enables simd128");
    let cases = compare_with_scalar(Isa::Simd128, 7).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases >= 18);
}

#[wasm_bindgen_test]
fn simd128_panels_equal_the_scalar_reference_bit_for_bit() {
    use hawthorne_model::kernels::Isa;
    // Bit for bit, so the page and the native CLI compute the same products.
    let cases = hawthorne_model::panel::compare_with_scalar(Isa::Simd128, 17).unwrap_or_else(|e| panic!("{e}"));
    assert!(cases >= 5 * 8 * 3, "{cases} cases");
}

#[wasm_bindgen_test]
fn packed_weights_multiply_like_their_dequantised_copies_in_wasm() {
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use hawthorne_model::{ComputeMode, Weight};
    let w = Tensor::randn(0f32, 0.05, (64, 96), &Device::Cpu).expect("tensor");
    let x = Tensor::randn(0f32, 1.0, (5, 96), &Device::Cpu).expect("tensor");
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0, GgmlDType::Q4K] {
        let w = if dtype == GgmlDType::Q4K { Tensor::randn(0f32, 0.05, (64, 256), &Device::Cpu).expect("tensor") } else { w.clone() };
        let x = if dtype == GgmlDType::Q4K { Tensor::randn(0f32, 1.0, (5, 256), &Device::Cpu).expect("tensor") } else { x.clone() };
        let packed = Weight::from_qtensor("w", QTensor::quantize(&w, dtype).expect("q"), ComputeMode::Packed).expect("packed");
        let dense = Weight::from_qtensor("w", QTensor::quantize(&w, dtype).expect("q"), ComputeMode::F32).expect("dense");
        let (yp, yd) = (packed.forward(&x).expect("packed"), dense.forward(&x).expect("dense"));
        let err = (yp - &yd).and_then(|d| d.abs()).and_then(|d| d.max_all()).and_then(|d| d.to_scalar::<f32>()).expect("diff");
        let scale = yd.abs().and_then(|d| d.max_all()).and_then(|d| d.to_scalar::<f32>()).expect("scale");
        assert!(err <= 0.02 * scale, "{dtype:?}: {err} vs outputs up to {scale}");
    }
}
