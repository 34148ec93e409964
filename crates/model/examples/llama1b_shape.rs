//! Writes a random-weight GGUF with Llama-3.2-1B's shape (16 blocks, d_model 2048, 32/8 heads,
//! FFN 8192, 128,256-token vocabulary, Llama 3's `rope_freqs`) and Q4_K matrices, for the memory
//! benchmark (`bench/big_model.mjs`): the weights are noise, only the size and layout are real.
//!
//! Usage: cargo run --release -p hawthorne-model --example llama1b_shape -- OUT.gguf

use hawthorne_model::testing::{random_family_gguf, FamilyShape};
use hawthorne_model::Arch;

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: llama1b_shape OUT.gguf"))?;
    let started = std::time::Instant::now();
    let bytes = random_family_gguf(Arch::Llama, &FamilyShape::llama_3_2_1b(), 1, candle_core::quantized::GgmlDType::Q4K)?;
    std::fs::write(&out, &bytes)?;
    println!("{out}: {:.1} MB in {:.0} s", bytes.len() as f64 / 1e6, started.elapsed().as_secs_f64());
    Ok(())
}
