//! Bad input never panics: broken GGUF files, unsupported models and out-of-range prompts
//! each come back as an `Err` whose message names the problem.
//!
//! GGUF damage is made from `testing::tiny_random_gguf`: cut at every region boundary,
//! garbled with seeded byte flips, and rewritten field by field.

// Native: relies on `catch_unwind` and `Instant`, which wasm32-unknown-unknown lacks.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use anyhow::{bail, ensure, Context, Result};
use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::QTensor;
use candle_core::Device;
use hawthorne_model::testing::tiny_random_gguf;
use hawthorne_model::{
    GenerateOptions, Generator, KvCache, LogitsAt, Model, ModelError, RunOptions, StopReason,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn tiny_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| tiny_random_gguf(11).expect("tiny model bytes"))
}

fn tiny_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::from_gguf_bytes(tiny_bytes()).expect("tiny model loads"))
}

/// Loads `bytes`, turning a panic into an error that says which case panicked.
fn load(case: &str, bytes: &[u8]) -> Result<std::result::Result<Model, ModelError>> {
    catch_unwind(AssertUnwindSafe(|| Model::from_gguf_bytes(bytes)))
        .map_err(|p| anyhow::anyhow!("{case}: loading panicked: {}", panic_text(&p)))
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic>".into())
}

/// Loads `bytes`, expecting an error whose message contains one of `needles`.
fn expect_load_error(case: &str, bytes: &[u8], needles: &[&str]) -> Result<String> {
    match load(case, bytes)? {
        Ok(_) => bail!("{case}: loaded without error"),
        Err(e) => {
            let msg = e.to_string();
            ensure!(
                needles.iter().any(|n| msg.contains(n)),
                "{case}: message {msg:?} names none of {needles:?}"
            );
            Ok(msg)
        }
    }
}

/// Where the regions of a GGUF file start, computed from what candle reads back.
#[derive(Debug)]
struct Layout {
    header_end: usize,
    infos_start: usize,
    data_start: usize,
    data_end: usize,
    /// Byte offset of each tensor info record (its name's length prefix).
    info_offsets: HashMap<String, usize>,
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::U8(_) | Value::I8(_) | Value::Bool(_) => 1,
        Value::U16(_) | Value::I16(_) => 2,
        Value::U32(_) | Value::I32(_) | Value::F32(_) => 4,
        Value::U64(_) | Value::I64(_) | Value::F64(_) => 8,
        Value::String(s) => 8 + s.len(),
        Value::Array(items) => 4 + 8 + items.iter().map(value_size).sum::<usize>(),
    }
}

fn layout(bytes: &[u8]) -> Result<Layout> {
    let content = Content::read(&mut Cursor::new(bytes))?;
    let header_end = 24; // magic, version, tensor count, metadata count (GGUF v2)
    let md_size: usize = content
        .metadata
        .iter()
        .map(|(k, v)| 8 + k.len() + 4 + value_size(v))
        .sum();
    let infos_start = header_end + md_size;
    // Tensor infos follow in file order; find each by its length-prefixed name.
    let mut info_offsets = HashMap::new();
    for name in content.tensor_infos.keys() {
        let mut needle = (name.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(name.as_bytes());
        let at = bytes[infos_start..]
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
            .with_context(|| format!("tensor info for {name}"))?;
        info_offsets.insert(name.clone(), infos_start + at);
    }
    let data_start = content.tensor_data_offset as usize;
    let data_end = content
        .tensor_infos
        .values()
        .map(|i| {
            data_start
                + i.offset as usize
                + i.shape.elem_count() / i.ggml_dtype.block_size() * i.ggml_dtype.type_size()
        })
        .max()
        .unwrap_or(data_start);
    ensure!(
        infos_start < data_start && data_end <= bytes.len(),
        "bad layout"
    );
    Ok(Layout {
        header_end,
        infos_start,
        data_start,
        data_end,
        info_offsets,
    })
}

/// Reads a GGUF file, lets `edit` change its metadata and tensor list, and writes it again.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, Value)>, &mut Vec<(String, QTensor)>),
) -> Result<Vec<u8>> {
    let mut reader = Cursor::new(bytes);
    let content = Content::read(&mut reader)?;
    let mut md: Vec<(String, Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    md.sort_by(|a, b| a.0.cmp(&b.0));
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = names
        .into_iter()
        .map(|n| Ok((n.clone(), content.tensor(&mut reader, n, &Device::Cpu)?)))
        .collect::<Result<Vec<_>>>()?;
    edit(&mut md, &mut tensors);
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md_refs, &t_refs)?;
    Ok(out.into_inner())
}

fn set_meta(md: &mut Vec<(String, Value)>, key: &str, value: Value) {
    md.retain(|(k, _)| k != key);
    md.push((key.to_string(), value));
}

/// Overwrites `bytes[at..]` with `with`.
fn patch(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + with.len()].copy_from_slice(with);
    b
}

/// Exercises a model that loaded from damaged bytes: nothing it does may panic.
fn exercise(model: &Model) {
    let _ = model.llama.forward(
        &[vec![0, 1, 2]],
        &RunOptions {
            logits: LogitsAt::All,
            ..RunOptions::default()
        },
        None,
    );
    if let Ok(ids) = model.tokenizer.encode("Hello <|im_end|> 123") {
        let _ = model.tokenizer.decode(&ids, false);
    }
    let _ = model.chat_tokens("", "Hi");
}

#[test]
fn the_pristine_tiny_model_loads() -> Result<()> {
    let l = layout(tiny_bytes())?;
    assert_eq!(l.data_end, tiny_bytes().len(), "{l:?}");
    assert_eq!(tiny_model().config().n_layers, 2);
    // The rewriting helper itself must produce a loadable file.
    let same = rewrite(tiny_bytes(), |_, _| {})?;
    Model::from_gguf_bytes(&same)?;
    Ok(())
}

#[test]
fn truncated_files_are_errors_at_every_cut() -> Result<()> {
    let bytes = tiny_bytes();
    let l = layout(bytes)?;
    let mut cuts: Vec<usize> = (0..=64).collect();
    for b in [l.header_end, l.infos_start, l.data_start, l.data_end] {
        cuts.extend(b.saturating_sub(9)..=(b + 9).min(bytes.len()));
    }
    for off in l.info_offsets.values() {
        cuts.extend([off + 1, off + 8, off + 12, off + 30]);
    }
    cuts.extend((0..bytes.len()).step_by(97));
    cuts.sort_unstable();
    cuts.dedup();
    let mut failures = Vec::new();
    for &cut in &cuts {
        let cut_bytes = &bytes[..cut.min(bytes.len())];
        let case = format!("cut at {cut} of {} ({l:?})", bytes.len());
        if cut >= l.data_end {
            // Nothing but trailing bytes are gone: the file is whole.
            if let Err(e) = load(&case, cut_bytes)? {
                failures.push(format!("{case}: {e}"));
            }
            continue;
        }
        if let Err(e) = expect_load_error(
            &case,
            cut_bytes,
            &["truncated or corrupt", "not a GGUF file"],
        ) {
            failures.push(e.to_string());
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} cuts failed:\n{}",
        failures.len(),
        cuts.len(),
        failures.join("\n")
    );
    // Cuts inside the tensor data say which tensor is short.
    let msg = expect_load_error(
        "mid-data",
        &bytes[..l.data_start + 100],
        &["truncated or corrupt"],
    )?;
    assert!(msg.contains("tensor `") && msg.contains("bytes"), "{msg}");
    Ok(())
}

#[test]
fn seeded_byte_flips_never_panic() -> Result<()> {
    let bytes = tiny_bytes();
    let l = layout(bytes)?;
    let mut panics = Vec::new();
    let (mut ok, mut err) = (0, 0);
    for seed in 0..600u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut b = bytes.to_vec();
        for _ in 0..rng.random_range(1..=4) {
            // Mostly the structured part (header, metadata, tensor infos); sometimes the data.
            let at = if rng.random_bool(0.85) {
                rng.random_range(0..l.data_start)
            } else {
                rng.random_range(0..b.len())
            };
            b[at] = if rng.random_bool(0.5) {
                b[at] ^ (1 << rng.random_range(0..8))
            } else {
                rng.random()
            };
        }
        match catch_unwind(AssertUnwindSafe(|| match Model::from_gguf_bytes(&b) {
            Ok(m) => {
                exercise(&m);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        })) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(msg)) => {
                assert!(!msg.is_empty(), "seed {seed}: empty error message");
                err += 1;
            }
            Err(p) => panics.push(format!("seed {seed}: {}", panic_text(&p))),
        }
    }
    eprintln!(
        "byte flips: {ok} loaded, {err} rejected, {} panicked",
        panics.len()
    );
    ensure!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    Ok(())
}

#[test]
fn non_gguf_files_say_so() -> Result<()> {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    for (case, bytes) in [
        ("empty", &b""[..]),
        ("one byte", &b"G"[..]),
        ("text", &b"hello, this is not a model"[..]),
        ("png", &png[..]),
        ("json", &br#"{"model": "llama"}"#[..]),
        ("ggml magic", &b"lmgg\0\0\0\0\0\0\0\0"[..]),
    ] {
        expect_load_error(case, bytes, &["not a GGUF file"])?;
    }
    // The right magic but nothing after it is a broken GGUF, not a foreign file.
    expect_load_error("bare magic", b"GGUF", &["truncated or corrupt"])?;
    expect_load_error(
        "magic and version",
        &tiny_bytes()[..8],
        &["truncated or corrupt"],
    )?;
    Ok(())
}

#[test]
fn header_fields_out_of_range_are_errors() -> Result<()> {
    let bytes = tiny_bytes();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "version 0",
            patch(bytes, 4, &0u32.to_le_bytes()),
            &["version"],
        ),
        (
            "version 99",
            patch(bytes, 4, &99u32.to_le_bytes()),
            &["version"],
        ),
        (
            "tensor count u64::MAX",
            patch(bytes, 8, &u64::MAX.to_le_bytes()),
            &["tensor"],
        ),
        (
            "metadata count u64::MAX",
            patch(bytes, 16, &u64::MAX.to_le_bytes()),
            &["metadata"],
        ),
        (
            "metadata count 0",
            patch(bytes, 16, &0u64.to_le_bytes()),
            &["truncated or corrupt"],
        ),
        (
            "first key length u64::MAX",
            patch(bytes, 24, &u64::MAX.to_le_bytes()),
            &["string length"],
        ),
        (
            "first key length 2^40",
            patch(bytes, 24, &(1u64 << 40).to_le_bytes()),
            &["string length"],
        ),
    ];
    for (case, b, needles) in cases {
        let msg = expect_load_error(case, &b, needles)?;
        assert!(
            msg.contains("truncated or corrupt") || msg.contains("not a GGUF"),
            "{case}: {msg}"
        );
    }
    Ok(())
}

#[test]
fn tensor_info_fields_out_of_range_are_errors() -> Result<()> {
    let bytes = tiny_bytes();
    let l = layout(bytes)?;
    // `blk.0.attn_norm.weight` is 1-D with 32 elements: name, n_dims u32, dim u64, dtype u32, offset u64.
    let name = "blk.0.attn_norm.weight";
    let at = l.info_offsets[name] + 8 + name.len();
    let (n_dims, dim, dtype, offset) = (at, at + 4, at + 12, at + 16);
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "5 dims",
            patch(bytes, n_dims, &5u32.to_le_bytes()),
            &["dimensions"],
        ),
        (
            "u32::MAX dims",
            patch(bytes, n_dims, &u32::MAX.to_le_bytes()),
            &["dimensions"],
        ),
        (
            "0 dims",
            patch(bytes, n_dims, &0u32.to_le_bytes()),
            &["truncated or corrupt"],
        ),
        (
            "dim u64::MAX",
            patch(bytes, dim, &u64::MAX.to_le_bytes()),
            &["impossible shape"],
        ),
        (
            "dim 2^40",
            patch(bytes, dim, &(1u64 << 40).to_le_bytes()),
            &["impossible shape"],
        ),
        (
            "dim 2^30",
            patch(bytes, dim, &(1u64 << 30).to_le_bytes()),
            &["bytes"],
        ),
        (
            "dim 0",
            patch(bytes, dim, &0u64.to_le_bytes()),
            &["blk.0.attn_norm.weight"],
        ),
        (
            "dtype 99",
            patch(bytes, dtype, &99u32.to_le_bytes()),
            &["99"],
        ),
        (
            "dtype u32::MAX",
            patch(bytes, dtype, &u32::MAX.to_le_bytes()),
            &["4294967295"],
        ),
        (
            "offset u64::MAX",
            patch(bytes, offset, &u64::MAX.to_le_bytes()),
            &["blk.0.attn_norm.weight"],
        ),
        (
            "offset past the end",
            patch(bytes, offset, &(bytes.len() as u64).to_le_bytes()),
            &["blk.0.attn_norm.weight"],
        ),
    ];
    for (case, b, needles) in cases {
        expect_load_error(case, &b, needles)?;
    }

    // A 4-D tensor whose dimensions multiply past u64 (each one is small enough alone).
    let b = rewrite(bytes, |_, t| {
        let q = QTensor::quantize(
            &candle_core::Tensor::zeros((1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu)
                .expect("zeros"),
            candle_core::quantized::GgmlDType::F32,
        )
        .expect("quantize");
        t.push(("huge".into(), q));
    })?;
    let l2 = layout(&b)?;
    let at = l2.info_offsets["huge"] + 8 + "huge".len() + 4;
    let mut huge = b.clone();
    for i in 0..4 {
        huge[at + 8 * i..at + 8 * i + 8].copy_from_slice(&((1u64 << 31) - 1).to_le_bytes());
    }
    expect_load_error("dims multiply past u64", &huge, &["impossible shape"])?;
    // Dimensions whose element count fits but whose byte size (×4 for F32) does not.
    let mut bytes_overflow = b;
    let dims = [(1u64 << 31) - 1, (1u64 << 31) - 1, 1 << 2, 1];
    for (i, d) in dims.iter().enumerate() {
        bytes_overflow[at + 8 * i..at + 8 * i + 8].copy_from_slice(&d.to_le_bytes());
    }
    expect_load_error("byte size past usize", &bytes_overflow, &["huge"])?;
    Ok(())
}

#[test]
fn zero_alignment_is_an_error_not_a_division_by_zero() -> Result<()> {
    for value in [Value::U32(0), Value::U8(0), Value::U16(0), Value::I32(0)] {
        let case = format!("general.alignment = {value:?}");
        let b = rewrite(tiny_bytes(), |md, _| {
            set_meta(md, "general.alignment", value.clone())
        })?;
        let msg = expect_load_error(&case, &b, &["general.alignment"])?;
        assert!(msg.contains("truncated or corrupt"), "{case}: {msg}");
    }
    // Other alignments are read as candle reads them; 32 is what the writer used.
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "general.alignment", Value::U32(32))
    })?;
    Model::from_gguf_bytes(&b)?;
    Ok(())
}

#[test]
fn unsupported_architecture_is_named() -> Result<()> {
    for arch in ["gpt2", "phi3", "mamba", ""] {
        let b = rewrite(tiny_bytes(), |md, _| {
            set_meta(md, "general.architecture", Value::String(arch.into()))
        })?;
        let msg = expect_load_error(arch, &b, &["unsupported architecture"])?;
        assert!(msg.contains(&format!("`{arch}`")), "{msg}");
    }
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "general.architecture", Value::U32(7))
    })?;
    expect_load_error("numeric architecture", &b, &["general.architecture"])?;
    let b = rewrite(tiny_bytes(), |md, _| {
        md.retain(|(k, _)| k != "general.architecture")
    })?;
    expect_load_error("no architecture", &b, &["general.architecture"])?;
    // A supported architecture whose keys are missing: the missing key is named.
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "general.architecture", Value::String("qwen2".into()))
    })?;
    expect_load_error("qwen2 without its keys", &b, &["qwen2.embedding_length", "missing"])?;
    // Gemma 3 without its sliding window.
    let gemma = hawthorne_model::testing::tiny_family_gguf(hawthorne_model::gguf::Arch::Gemma3, 7)?;
    let b = rewrite(&gemma, |md, _| md.retain(|(k, _)| k != "gemma3.attention.sliding_window"))?;
    expect_load_error("gemma3 without a window", &b, &["gemma3.attention.sliding_window"])?;
    // A family tensor missing: Qwen 3's query norm.
    let qwen3 = hawthorne_model::testing::tiny_family_gguf(hawthorne_model::gguf::Arch::Qwen3, 7)?;
    let b = rewrite(&qwen3, |_, tensors| tensors.retain(|(n, _)| n != "blk.1.attn_q_norm.weight"))?;
    expect_load_error("qwen3 without a QK-norm", &b, &["blk.1.attn_q_norm.weight"])?;
    Ok(())
}

#[test]
fn unsupported_quant_types_are_named() -> Result<()> {
    let bytes = tiny_bytes();
    let l = layout(bytes)?;
    let name = "blk.0.attn_norm.weight";
    let dtype_at = l.info_offsets[name] + 8 + name.len() + 4 + 8;
    // 9 = Q8_1 and 15 = Q8_K: real GGML types that only exist as matmul intermediates.
    for (id, label) in [(9u32, "Q8_1"), (15, "Q8K")] {
        let msg = expect_load_error(
            label,
            &patch(bytes, dtype_at, &id.to_le_bytes()),
            &["unsupported tensor type"],
        )?;
        assert!(msg.contains(label) && msg.contains(name), "{msg}");
    }
    Ok(())
}

#[test]
fn missing_and_misshapen_tensors_are_named() -> Result<()> {
    for name in [
        "token_embd.weight",
        "blk.1.ffn_up.weight",
        "output_norm.weight",
        "blk.0.attn_q.weight",
    ] {
        let b = rewrite(tiny_bytes(), |_, t| t.retain(|(n, _)| n != name))?;
        let msg = expect_load_error(name, &b, &["is missing"])?;
        assert!(msg.contains(name), "{msg}");
    }
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "llama.block_count", Value::U32(3))
    })?;
    let msg = expect_load_error("an extra layer", &b, &["is missing"])?;
    assert!(msg.contains("blk.2."), "{msg}");
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "llama.feed_forward_length", Value::U32(48))
    })?;
    let msg = expect_load_error("wrong d_mlp", &b, &["has shape"])?;
    assert!(msg.contains("ffn_"), "{msg}");
    Ok(())
}

#[test]
fn broken_hyper_parameters_are_named() -> Result<()> {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("llama.attention.head_count", Value::U32(0), "out of range"),
        ("llama.attention.head_count", Value::U32(3), "heads"),
        ("llama.attention.head_count_kv", Value::U32(3), "KV heads"),
        (
            "llama.embedding_length",
            Value::U64(u64::MAX),
            "out of range",
        ),
        ("llama.embedding_length", Value::I32(-4), "non-negative"),
        (
            "llama.context_length",
            Value::String("long".into()),
            "llama.context_length",
        ),
        (
            "llama.rope.freq_base",
            Value::String("fast".into()),
            "llama.rope.freq_base",
        ),
    ];
    for (key, value, needle) in cases {
        let case = format!("{key} = {value:?}");
        let b = rewrite(tiny_bytes(), |md, _| set_meta(md, key, value.clone()))?;
        expect_load_error(&case, &b, &[needle])?;
    }
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "llama.attention.head_count", Value::U32(32))
    })?;
    let msg = expect_load_error("head size 1", &b, &["even"])?;
    assert!(msg.contains("head size 1"), "{msg}");
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "tokenizer.ggml.model", Value::String("bert".into()))
    })?;
    expect_load_error("wordpiece tokenizer", &b, &["tokenizer model `bert`"])?;
    // A SentencePiece vocabulary whose scores do not match its tokens.
    let spm = hawthorne_model::testing::tiny_family_gguf(hawthorne_model::gguf::Arch::Llama, 7)?;
    let b = rewrite(&spm, |md, _| set_meta(md, "tokenizer.ggml.scores", Value::Array(vec![Value::F32(0.0); 3])))?;
    expect_load_error("short scores", &b, &["3 scores"])?;
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(
            md,
            "tokenizer.ggml.merges",
            Value::Array(vec![Value::String("ab".into())]),
        )
    })?;
    expect_load_error("merge without a space", &b, &["merge `ab`"])?;
    Ok(())
}

#[test]
fn an_enormous_context_length_loads_without_allocating_for_it() -> Result<()> {
    // A garbled context length must not make loading allocate per-position tables for it.
    let n_ctx = (1u32 << 31) - 1;
    let b = rewrite(tiny_bytes(), |md, _| {
        set_meta(md, "llama.context_length", Value::U32(n_ctx))
    })?;
    let started = std::time::Instant::now();
    let model = load("context length 2^31 - 1", &b)?.context("loads")?;
    assert!(
        started.elapsed().as_secs() < 5,
        "loading took {:?}",
        started.elapsed()
    );
    assert_eq!(model.config().n_ctx, n_ctx as usize);
    // The forward pass still matches the pristine model at the positions it runs.
    let seq = vec![vec![5, 6, 7, 8]];
    let opts = RunOptions {
        logits: LogitsAt::All,
        ..RunOptions::default()
    };
    let a = model.llama.forward(&seq, &opts, None)?.logits;
    let want = tiny_model().llama.forward(&seq, &opts, None)?.logits;
    assert_eq!(
        a.flatten_all()?.to_vec1::<f32>()?,
        want.flatten_all()?.to_vec1::<f32>()?
    );
    Ok(())
}

#[test]
fn prompts_longer_than_the_context_are_errors() -> Result<()> {
    let m = tiny_model();
    let n_ctx = m.config().n_ctx;
    let long_text = "word ".repeat(n_ctx);
    let e = m.chat_tokens("", &long_text).expect_err("chat_tokens");
    assert!(matches!(e, ModelError::ContextOverflow { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("context of {n_ctx} tokens")),
        "{e}"
    );

    let too_long = vec![vec![1u32; n_ctx + 1]];
    let e = m
        .llama
        .forward(&too_long, &RunOptions::default(), None)
        .expect_err("forward");
    assert!(
        e.to_string().contains(&format!(
            "{} tokens does not fit the context of {n_ctx}",
            n_ctx + 1
        )),
        "{e}"
    );
    // The whole context fits exactly.
    m.llama
        .forward(&[vec![1u32; n_ctx]], &RunOptions::default(), None)?;

    // Continuing a KV cache past the context.
    let mut kv = KvCache::default();
    m.llama.forward(
        &[vec![1u32; n_ctx - 2]],
        &RunOptions::default(),
        Some(&mut kv),
    )?;
    let e = m
        .llama
        .forward(&[vec![2u32; 3]], &RunOptions::default(), Some(&mut kv))
        .expect_err("kv overflow");
    assert!(
        matches!(e, ModelError::ContextOverflow { tokens, context } if tokens == n_ctx + 1 && context == n_ctx),
        "{e}"
    );

    let opts = GenerateOptions::default();
    for len in [n_ctx, n_ctx + 50] {
        let e = Generator::new(m, &vec![1u32; len], &opts).expect_err("Generator::new");
        assert!(e.to_string().contains("does not fit the context"), "{e}");
    }
    // A prompt one short of the context generates until the context is full, then stops.
    let big = GenerateOptions {
        max_tokens: 1000,
        ..GenerateOptions::default()
    };
    let g = m.generate(&vec![5u32; n_ctx - 1], &big, |_, _| {})?;
    assert!(
        matches!(g.stop, StopReason::ContextFull | StopReason::EndOfTurn),
        "{g:?}"
    );
    // The last token is predicted from the final slot of the context; it does not need one itself.
    assert!(g.tokens.len() <= 2, "{g:?}");
    Ok(())
}

#[test]
fn token_ids_out_of_range_are_errors() -> Result<()> {
    let m = tiny_model();
    let vocab = m.config().d_vocab;
    for bad in [vocab as u32, vocab as u32 + 1, u32::MAX] {
        let e = m
            .llama
            .forward(&[vec![1, bad, 2]], &RunOptions::default(), None)
            .expect_err("forward");
        assert!(
            e.to_string().contains(&format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )),
            "{e}"
        );
        let e = m.tokenizer.decode(&[1, bad], false).expect_err("decode");
        assert!(e.to_string().contains(&format!("token id {bad}")), "{e}");
        let e = m
            .generate(&[1, bad], &GenerateOptions::default(), |_, _| {})
            .expect_err("generate");
        assert!(e.to_string().contains("outside the vocabulary"), "{e}");
    }
    Ok(())
}

#[test]
fn empty_input_is_an_error_or_empty_output() -> Result<()> {
    let m = tiny_model();
    let opts = RunOptions::default();
    for (case, seqs) in [
        ("no sequences", vec![]),
        ("one empty", vec![vec![]]),
        ("one of two empty", vec![vec![1, 2], vec![]]),
    ] {
        let e = m.llama.forward(&seqs, &opts, None).expect_err(case);
        assert!(matches!(e, ModelError::EmptyInput(_)), "{case}: {e}");
        assert!(e.to_string().contains("at least one token"), "{case}: {e}");
    }
    let e = Generator::new(m, &[], &GenerateOptions::default()).expect_err("empty prompt");
    assert!(e.to_string().contains("empty input"), "{e}");
    assert_eq!(m.tokenizer.encode("")?, Vec::<u32>::new());
    assert_eq!(m.tokenizer.decode(&[], false)?, "");
    assert!(!m.chat_tokens("", "")?.is_empty());
    expect_load_error("empty file", &[], &["not a GGUF file"])?;
    Ok(())
}

#[test]
fn a_kv_cache_from_another_batch_is_an_error() -> Result<()> {
    let m = tiny_model();
    let opts = RunOptions::default();
    let mut kv = KvCache::default();
    m.llama
        .forward(&[vec![1, 2, 3], vec![4, 5, 6]], &opts, Some(&mut kv))?;
    let e = m
        .llama
        .forward(&[vec![7]], &opts, Some(&mut kv))
        .expect_err("batch of 1 after 2");
    assert!(
        e.to_string().contains(
            "KV cache mismatch: the cache holds a batch of 2 sequences, but 1 were given"
        ),
        "{e}"
    );
    let e = m
        .llama
        .forward(&[vec![7, 8], vec![9]], &opts, Some(&mut kv))
        .expect_err("ragged continuation");
    assert!(e.to_string().contains("same length"), "{e}");
    Ok(())
}

/// Quantised copies of the tiny model, cut inside their tensor data, fail with a message naming
/// the short tensor: through the in-memory loader and through the one-tensor-at-a-time reader.
#[test]
fn truncated_packed_files_are_errors() -> Result<()> {
    use candle_core::quantized::GgmlDType;
    for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0] {
        let bytes = hawthorne_model::testing::requantize_gguf(tiny_bytes(), dtype)?;
        let l = layout(&bytes)?;
        for cut in [l.data_start + 1, (l.data_start + l.data_end) / 2, l.data_end - 1] {
            let case = format!("{dtype:?} cut at {cut} of {}", bytes.len());
            let msg = expect_load_error(&case, &bytes[..cut], &["truncated"])?;
            assert!(msg.contains("bytes"), "{case}: {msg}");
            let mut reader = Cursor::new(&bytes[..cut]);
            let streamed = catch_unwind(AssertUnwindSafe(|| {
                Model::load_from_reader(&mut reader, hawthorne_model::ComputeMode::Packed, |_| {})
            }))
            .map_err(|p| anyhow::anyhow!("{case}: streamed loading panicked: {}", panic_text(&p)))?;
            let err = streamed.err().ok_or_else(|| anyhow::anyhow!("{case}: the streamed loader accepted it"))?;
            assert!(err.to_string().contains("truncated"), "{case}: {err}");
        }
        // The whole copy loads in both modes and runs.
        exercise(&Model::load(&bytes, hawthorne_model::ComputeMode::Packed, |_| {})?);
        exercise(&Model::load(&bytes, hawthorne_model::ComputeMode::F32, |_| {})?);
    }
    Ok(())
}

/// A packed matrix whose rows do not divide into blocks (its element count does) is refused
/// with the tensor's name, not multiplied out of bounds.
#[test]
fn packed_rows_that_split_blocks_are_errors() -> Result<()> {
    use candle_core::quantized::GgmlDType;
    let bytes = hawthorne_model::testing::requantize_gguf(tiny_bytes(), GgmlDType::Q4_1)?;
    let l = layout(&bytes)?;
    // ffn_down is [32, 64] (GGUF stores ne0 = 64 columns, then ne1 = 32 rows): make it
    // [128, 16], the same 64 blocks in rows of half a block.
    let name = "blk.0.ffn_down.weight";
    let dims_at = l.info_offsets[name] + 8 + name.len() + 4;
    let mut patched = patch(&bytes, dims_at, &16u64.to_le_bytes());
    patched = patch(&patched, dims_at + 8, &128u64.to_le_bytes());
    let msg = expect_load_error("rows of half a block", &patched, &["truncated or corrupt"])?;
    assert!(msg.contains(name) && msg.contains("block"), "{msg}");
    Ok(())
}

/// Tensor bytes at an odd address (a file with an odd `general.alignment`, or a buffer that
/// starts at an odd address) load as from an aligned one: candle reads blocks in place, and
/// the loader copies a misaligned tensor to an aligned spot first. Found by the `gguf` fuzz
/// target, where debug builds stopped on the misaligned `slice::from_raw_parts`.
#[test]
fn tensors_at_odd_addresses_load() -> Result<()> {
    use candle_core::quantized::GgmlDType;
    for dtype in [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q8_0, GgmlDType::Q4_1] {
        let bytes = if dtype == GgmlDType::F32 {
            tiny_bytes().to_vec()
        } else {
            hawthorne_model::testing::requantize_gguf(tiny_bytes(), dtype)?
        };
        let aligned = Model::load(&bytes, hawthorne_model::ComputeMode::Packed, |_| {})?;
        for shift in [1usize, 2, 3, 5] {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(&bytes);
            let case = format!("{dtype:?} at an offset of {shift} bytes");
            let model = catch_unwind(AssertUnwindSafe(|| {
                Model::load(&shifted[shift..], hawthorne_model::ComputeMode::Packed, |_| {})
            }))
            .map_err(|p| anyhow::anyhow!("{case}: loading panicked: {}", panic_text(&p)))??;
            let ids = [vec![1u32, 2, 3]];
            let opts = hawthorne_model::RunOptions::default();
            let a = aligned.llama.forward(&ids, &opts, None)?.logits.flatten_all()?.to_vec1::<f32>()?;
            let b = model.llama.forward(&ids, &opts, None)?.logits.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(a, b, "{case}: different logits");
        }
    }
    Ok(())
}
