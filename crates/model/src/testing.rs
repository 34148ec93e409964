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
