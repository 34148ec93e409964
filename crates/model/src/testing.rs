//! Small random-weight llama GGUF files, built in memory, for tests on every target.

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Cursor;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

use crate::error::Result;
use crate::gguf::Config;

/// A configuration small enough to run in milliseconds: 2 layers, d_model 32, GQA 4:2.
pub fn tiny_config() -> Config {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    Config {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        n_kv_heads: 2,
        d_head: 8,
        d_mlp: 64,
        d_vocab: alphabet.len() + SPECIALS.len(),
        n_ctx: 128,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        family: crate::gguf::Family::default(),
    }
}

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Writes a llama GGUF (v2, f32 tensors) with the given weights and a byte-level vocabulary.
///
/// `tensors` are `(checkpoint name, tensor)` pairs; `tokens`/`merges`/`token_types` describe
/// the tokenizer. This is the writer the organism trainer uses too.
pub fn write_llama_gguf(
    cfg: &Config,
    name: &str,
    tensors: &[(String, Tensor)],
    tokens: &[String],
    merges: &[String],
    token_types: &[i32],
    extra: &[(&str, Value)],
) -> Result<Vec<u8>> {
    let u32v = |x: usize| Value::U32(x as u32);
    let mut md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String(name.into())),
        ("llama.block_count", u32v(cfg.n_layers)),
        ("llama.embedding_length", u32v(cfg.d_model)),
        ("llama.feed_forward_length", u32v(cfg.d_mlp)),
        ("llama.attention.head_count", u32v(cfg.n_heads)),
        ("llama.attention.head_count_kv", u32v(cfg.n_kv_heads)),
        ("llama.context_length", u32v(cfg.n_ctx)),
        ("llama.rope.freq_base", Value::F32(cfg.rope_theta)),
        ("llama.rope.dimension_count", u32v(cfg.d_head)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(cfg.rms_eps as f32)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().cloned().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            Value::Array(merges.iter().cloned().map(Value::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(token_types.iter().map(|t| Value::I32(*t)).collect()),
        ),
    ];
    md.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let qtensors = tensors
        .iter()
        .map(|(n, t)| Ok((n.as_str(), QTensor::quantize(t, GgmlDType::F32)?)))
        .collect::<Result<Vec<_>>>()?;
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(n, q)| (*n, q)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md_refs, &t_refs)?;
    Ok(buf.into_inner())
}

/// A random-weight tiny llama as GGUF bytes; the same seed gives the same bytes everywhere.
pub fn tiny_random_gguf(seed: u64) -> Result<Vec<u8>> {
    let cfg = tiny_config();
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rand_t = |shape: &[usize], scale: f32| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale).collect();
        Ok(Tensor::from_vec(v, shape, &dev)?)
    };
    let (d, f, v) = (cfg.d_model, cfg.d_mlp, cfg.d_vocab);
    let (qd, kvd) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
    let mut tensors = vec![("token_embd.weight".to_string(), rand_t(&[v, d], 1.0)?)];
    for i in 0..cfg.n_layers {
        let w = 1.0 / (d as f32).sqrt();
        for (name, shape, scale) in [
            ("attn_norm", vec![d], 0.0),
            ("attn_q", vec![qd, d], w),
            ("attn_k", vec![kvd, d], w),
            ("attn_v", vec![kvd, d], w),
            ("attn_output", vec![d, qd], w),
            ("ffn_norm", vec![d], 0.0),
            ("ffn_gate", vec![f, d], w),
            ("ffn_up", vec![f, d], w),
            ("ffn_down", vec![d, f], 1.0 / (f as f32).sqrt()),
        ] {
            let t = if scale == 0.0 {
                (rand_t(&shape, 0.2)? + 1.0)?
            } else {
                rand_t(&shape, scale)?
            };
            tensors.push((format!("blk.{i}.{name}.weight"), t));
        }
    }
    tensors.push(("output_norm.weight".into(), (rand_t(&[d], 0.2)? + 1.0)?));
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    tokens.extend(alphabet.iter().map(|c| c.to_string()));
    let types: Vec<i32> = (0..tokens.len()).map(|i| if i < SPECIALS.len() { 3 } else { 1 }).collect();
    let extra = [
        ("tokenizer.ggml.eos_token_id", Value::U32(0)),
        ("tokenizer.ggml.bos_token_id", Value::U32(0)),
    ];
    write_llama_gguf(&cfg, "tiny-random", &tensors, &tokens, &[], &types, &extra)
}

/// The same GGUF with every matrix (2-D tensor) quantised to `dtype` and everything else kept
/// as f32: metadata (written in sorted key order, so the same input gives the same bytes),
/// vectors, tensor names. Tests and fuzz seeds use it to make quantised copies of F32 models.
pub fn requantize_gguf(bytes: &[u8], dtype: GgmlDType) -> Result<Vec<u8>> {
    let mut reader = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut reader)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let t = content.tensor(&mut reader, name, &Device::Cpu)?.dequantize(&Device::Cpu)?;
        let q = match t.rank() {
            2 => QTensor::quantize(&t, dtype)?,
            _ => QTensor::quantize(&t, GgmlDType::F32)?,
        };
        tensors.push((name.as_str(), q));
    }
    let mut md: Vec<(&str, &Value)> = content.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    md.sort_by_key(|(k, _)| *k);
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (*n, q)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md, &t_refs)?;
    Ok(buf.into_inner())
}

/// A tiny random-weight model of `arch` as GGUF bytes (F32 tensors, a SentencePiece vocabulary
/// of the 256 byte tokens plus a few specials), written in that family's own layout: the
/// metadata keys under `{arch}.`, and the family's extra tensors (Qwen 2's biases, Qwen 3's and
/// Gemma 3's QK norms with a head width ≠ d_model / heads, Gemma 3's post-norms and a sliding
/// window of 4 over six blocks, Llama 3's `rope_freqs`). llama.cpp loads the same bytes in the
/// architecture parity test (`tests/parity_families.rs`).
pub fn tiny_family_gguf(arch: crate::gguf::Arch, seed: u64) -> Result<Vec<u8>> {
    use crate::gguf::Arch;
    let shape = match arch {
        Arch::Llama | Arch::Qwen2 => FamilyShape { n_layers: 2, d_model: 32, n_heads: 4, n_kv_heads: 2, d_head: 8, d_mlp: 64, extra_tokens: 0, tied: false, n_ctx: 64 },
        Arch::Qwen3 => FamilyShape { n_layers: 2, d_model: 32, n_heads: 4, n_kv_heads: 2, d_head: 16, d_mlp: 64, extra_tokens: 0, tied: false, n_ctx: 64 },
        Arch::Gemma3 => FamilyShape { n_layers: 6, d_model: 32, n_heads: 4, n_kv_heads: 1, d_head: 16, d_mlp: 64, extra_tokens: 0, tied: false, n_ctx: 64 },
    };
    random_family_gguf(arch, &shape, seed, GgmlDType::F32)
}

/// The sizes of a random-weight model written by [`random_family_gguf`].
#[derive(Debug, Clone, Copy)]
pub struct FamilyShape {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    /// Filler tokens added after the 269-token base vocabulary (to reach a real model's size).
    pub extra_tokens: usize,
    /// The unembedding is the embedding (no `output.weight`); Gemma 3 always ties.
    pub tied: bool,
    pub n_ctx: usize,
}

impl FamilyShape {
    /// Llama-3.2-1B's shape: 16 blocks, d_model 2048, 32 heads / 8 KV heads of 64, FFN 8192,
    /// a 128,256-token vocabulary, tied embeddings (the weights are random).
    pub fn llama_3_2_1b() -> FamilyShape {
        FamilyShape { n_layers: 16, d_model: 2048, n_heads: 32, n_kv_heads: 8, d_head: 64, d_mlp: 8192, extra_tokens: 128_256 - 269, tied: true, n_ctx: 131_072 }
    }
}

/// A random-weight model of `arch` and `shape` as GGUF bytes, its matrices in `matrix_dtype`
/// (vectors stay F32): the writer behind [`tiny_family_gguf`], and the memory benchmark's
/// Llama-3.2-1B-shaped file.
pub fn random_family_gguf(arch: crate::gguf::Arch, shape: &FamilyShape, seed: u64, matrix_dtype: GgmlDType) -> Result<Vec<u8>> {
    use crate::gguf::Arch;
    let name = arch.name();
    let FamilyShape { n_layers, d_model: d, n_heads: heads, n_kv_heads: kv_heads, d_head, d_mlp: f, extra_tokens, tied, n_ctx } = *shape;
    let specials = ["<unk>", "<s>", "</s>"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    let mut types = vec![2i32, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for w in ["▁", "▁the", "he", "th", "▁a", "in", "er", "▁w", "at", "on"] {
        tokens.push(w.to_string());
        types.push(1);
    }
    for i in 0..extra_tokens {
        tokens.push(format!("<filler{i}>"));
        types.push(1);
    }
    let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
    let v = tokens.len();
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rand_t = |shape: &[usize], scale: f32, offset: f32| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let vals: Vec<f32> = (0..n).map(|_| offset + (rng.random::<f32>() * 2.0 - 1.0) * scale).collect();
        Ok(Tensor::from_vec(vals, shape, &dev)?)
    };
    let (qd, kvd) = (heads * d_head, kv_heads * d_head);
    let w = 1.0 / (d as f32).sqrt();
    let mut tensors = vec![("token_embd.weight".to_string(), rand_t(&[v, d], 1.0, 0.0)?)];
    for i in 0..n_layers {
        let mut push = |n: &str, t: Tensor| tensors.push((format!("blk.{i}.{n}"), t));
        push("attn_norm.weight", rand_t(&[d], 0.2, 1.0)?);
        push("attn_q.weight", rand_t(&[qd, d], w, 0.0)?);
        push("attn_k.weight", rand_t(&[kvd, d], w, 0.0)?);
        push("attn_v.weight", rand_t(&[kvd, d], w, 0.0)?);
        push("attn_output.weight", rand_t(&[d, qd], 1.0 / (qd as f32).sqrt(), 0.0)?);
        push("ffn_norm.weight", rand_t(&[d], 0.2, 1.0)?);
        push("ffn_gate.weight", rand_t(&[f, d], w, 0.0)?);
        push("ffn_up.weight", rand_t(&[f, d], w, 0.0)?);
        push("ffn_down.weight", rand_t(&[d, f], 1.0 / (f as f32).sqrt(), 0.0)?);
        if arch == Arch::Qwen2 {
            push("attn_q.bias", rand_t(&[qd], 0.5, 0.0)?);
            push("attn_k.bias", rand_t(&[kvd], 0.5, 0.0)?);
            push("attn_v.bias", rand_t(&[kvd], 0.5, 0.0)?);
        }
        if arch.qk_norm() {
            push("attn_q_norm.weight", rand_t(&[d_head], 0.2, 1.0)?);
            push("attn_k_norm.weight", rand_t(&[d_head], 0.2, 1.0)?);
        }
        if arch.post_norms() {
            push("post_attention_norm.weight", rand_t(&[d], 0.2, 1.0)?);
            push("post_ffw_norm.weight", rand_t(&[d], 0.2, 1.0)?);
        }
    }
    tensors.push(("output_norm.weight".into(), rand_t(&[d], 0.2, 1.0)?));
    if arch == Arch::Llama {
        // Llama 3's frequency divisors: 1 for fast pairs, up to 8 for slow ones.
        let freqs: Vec<f32> = (0..d_head / 2).map(|j| 1.0 + 7.0 * j as f32 / (d_head / 2 - 1) as f32).collect();
        tensors.push(("rope_freqs.weight".into(), Tensor::from_vec(freqs, d_head / 2, &dev)?));
    }
    if arch != Arch::Gemma3 && !tied {
        tensors.push(("output.weight".into(), rand_t(&[v, d], w, 0.0)?));
    }
    let u32v = |x: usize| Value::U32(x as u32);
    let key = |k: &str| format!("{name}.{k}");
    let mut md: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(name.into())),
        ("general.name".into(), Value::String(format!("tiny-random-{name}"))),
        (key("block_count"), u32v(n_layers)),
        (key("context_length"), u32v(n_ctx)),
        (key("embedding_length"), u32v(d)),
        (key("feed_forward_length"), u32v(f)),
        (key("attention.head_count"), u32v(heads)),
        (key("attention.head_count_kv"), u32v(kv_heads)),
        (key("attention.key_length"), u32v(d_head)),
        (key("attention.value_length"), u32v(d_head)),
        (key("rope.dimension_count"), u32v(d_head)),
        (key("rope.freq_base"), Value::F32(if arch == Arch::Gemma3 { 1_000_000.0 } else { 10_000.0 })),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.scores".into(), Value::Array(scores.into_iter().map(Value::F32).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)),
    ];
    if arch == Arch::Gemma3 {
        md.push((key("attention.sliding_window"), u32v(4)));
    }
    let qtensors = tensors
        .iter()
        .map(|(n, t)| {
            let dtype = if t.rank() == 2 && n != "rope_freqs.weight" { matrix_dtype } else { GgmlDType::F32 };
            Ok((n.as_str(), QTensor::quantize(t, dtype)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(n, q)| (*n, q)).collect();
    let mut buf = Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md_refs, &t_refs)?;
    Ok(buf.into_inner())
}
