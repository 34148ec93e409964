//! Writes seed corpora for the fuzz targets in `fuzz/`: small valid GGUF files and tokenizer inputs.
//!
//! `cargo run -p hawthorne-model --example fuzz_seeds -- fuzz/corpus`
//! creates `fuzz/corpus/gguf/*` and `fuzz/corpus/tokenizer/*`.

use std::path::PathBuf;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use hawthorne_model::testing::{requantize_gguf as requantize, tiny_config, tiny_family_gguf, tiny_random_gguf, write_llama_gguf};
use hawthorne_model::Arch;
use hawthorne_model::Config;

/// A one-layer, d_model 8 llama with a 20-token vocabulary: a few kilobytes, fast to mutate.
fn mini_gguf() -> anyhow::Result<Vec<u8>> {
    let cfg = Config {
        n_layers: 1,
        d_model: 8,
        n_heads: 2,
        n_kv_heads: 1,
        d_head: 4,
        d_mlp: 16,
        d_vocab: 20,
        n_ctx: 32,
        ..tiny_config()
    };
    let dev = Device::Cpu;
    let mut seed = 1u32;
    let mut rand_t = |shape: &[usize]| -> anyhow::Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        Ok(Tensor::from_vec(v, shape, &dev)?)
    };
    let (d, f, v, e) = (cfg.d_model, cfg.d_mlp, cfg.d_vocab, cfg.d_head);
    let mut tensors = vec![
        ("token_embd.weight".to_string(), rand_t(&[v, d])?),
        ("output_norm.weight".to_string(), rand_t(&[d])?),
    ];
    for (name, shape) in [
        ("attn_norm", vec![d]),
        ("attn_q", vec![cfg.n_heads * e, d]),
        ("attn_k", vec![cfg.n_kv_heads * e, d]),
        ("attn_v", vec![cfg.n_kv_heads * e, d]),
        ("attn_output", vec![d, cfg.n_heads * e]),
        ("ffn_norm", vec![d]),
        ("ffn_gate", vec![f, d]),
        ("ffn_up", vec![f, d]),
        ("ffn_down", vec![d, f]),
    ] {
        tensors.push((format!("blk.0.{name}.weight"), rand_t(&shape)?));
    }
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    tokens.extend(
        [
            "a", "b", "c", "ab", "abc", "Ġ", "Ġa", "1", "2", "Ċ", "<", ">", "|", "user", "!",
        ]
        .map(String::from),
    );
    tokens.extend(["ĠĠ", "ba"].map(String::from));
    let merges: Vec<String> = ["a b", "ab c", "Ġ a", "Ġ Ġ", "b a"]
        .map(String::from)
        .to_vec();
    let types: Vec<i32> = (0..tokens.len())
        .map(|i| if i < 3 { 3 } else { 1 })
        .collect();
    let extra = [("tokenizer.ggml.eos_token_id", Value::U32(2))];
    Ok(write_llama_gguf(
        &cfg, "mini", &tensors, &tokens, &merges, &types, &extra,
    )?)
}

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let gguf_dir = root.join("gguf");
    let tok_dir = root.join("tokenizer");
    std::fs::create_dir_all(&gguf_dir)?;
    std::fs::create_dir_all(&tok_dir)?;

    let tiny = tiny_random_gguf(0)?;
    let seeds = [
        ("mini-f32.gguf", mini_gguf()?),
        ("tiny-f32.gguf", tiny.clone()),
        ("tiny-f16.gguf", requantize(&tiny, GgmlDType::F16)?),
        ("tiny-q8_0.gguf", requantize(&tiny, GgmlDType::Q8_0)?),
        ("tiny-q4_1.gguf", requantize(&tiny, GgmlDType::Q4_1)?),
        ("tiny-q5_0.gguf", requantize(&tiny, GgmlDType::Q5_0)?),
        ("tiny-q5_1.gguf", requantize(&tiny, GgmlDType::Q5_1)?),
        // Every architecture's layout and metadata, with a SentencePiece vocabulary.
        ("family-llama.gguf", tiny_family_gguf(Arch::Llama, 7)?),
        ("family-qwen2.gguf", tiny_family_gguf(Arch::Qwen2, 7)?),
        ("family-qwen3.gguf", tiny_family_gguf(Arch::Qwen3, 7)?),
        ("family-gemma3.gguf", tiny_family_gguf(Arch::Gemma3, 7)?),
        ("family-gemma3-q8_0.gguf", requantize(&tiny_family_gguf(Arch::Gemma3, 7)?, GgmlDType::Q8_0)?),
    ];
    for (name, bytes) in &seeds {
        hawthorne_model::Model::from_gguf_bytes(bytes)?; // every seed must load
        std::fs::write(gguf_dir.join(name), bytes)?;
        println!("{} ({} bytes)", gguf_dir.join(name).display(), bytes.len());
    }

    // Tokenizer inputs: the first byte picks the mode (even = encode text, odd = decode ids).
    let texts = [
        "Hello, world!",
        "<|im_start|>system\nThis chat is logged.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
        "Héllo, wörld! 123 🙂 — 数字 4567",
        "  leading and   runs of   spaces\t\ttabs\n\n\r\n",
        "fn main() { println!(\"{}\", 1 + 2); }",
        "<|im_end|><|im_end|><|endoftext|>",
    ];
    for (i, t) in texts.iter().enumerate() {
        // Mode 0: byte-level BPE; mode 4: SentencePiece.
        for mode in [0u8, 4] {
            let mut b = vec![mode];
            b.extend_from_slice(t.as_bytes());
            std::fs::write(tok_dir.join(format!("text-{i}-{mode}")), b)?;
        }
    }
    let ids: Vec<u8> = [1u8]
        .into_iter()
        .chain((0u16..40).flat_map(|i| (i * 7).to_le_bytes()))
        .collect();
    std::fs::write(tok_dir.join("ids-0"), ids)?;
    println!(
        "{} tokenizer seeds in {}",
        2 * texts.len() + 1,
        tok_dir.display()
    );
    Ok(())
}
