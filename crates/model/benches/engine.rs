//! Engine speed: prefill of a 128-token prompt and one decode step over a 128-token KV cache.
//!
//! Two models: SmolLM2-135M-Instruct (the real one, from `models/`, skipped with a message when
//! it has not been fetched) and the tiny random model from `testing::tiny_random_gguf`.
//! SmolLM2 also gets a decode step over a 1024-token cache, to show how decoding scales.
//! Throughput is reported in elements per second, where one element is one token.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo bench -p hawthorne-model --bench engine
//! RAYON_NUM_THREADS=1 cargo bench -p hawthorne-model --bench engine -- smollm2/decode
//! ```
//!
//! `cargo xtask bench` runs this together with llama.cpp, the peak-RSS probe and the browser,
//! and writes `bench/RESULTS.md`. The SmolLM2 prompt is `bench/prompt.json` under the chat
//! template, which is exactly 128 tokens (the same ids go to llama.cpp).

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use hawthorne_model::testing::tiny_random_gguf;
use hawthorne_model::{KvCache, LogitsAt, Model, RunOptions};

/// Prompt length for every benchmark.
const PROMPT_TOKENS: usize = 128;
/// Cache length of the long-context decode step (SmolLM2 only).
const LONG_CONTEXT: usize = 1024;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SmolLM2 file: `$HAWTHORNE_SMOLLM2`, or where `cargo xtask fetch-models` puts it.
fn smollm2_path() -> PathBuf {
    std::env::var_os("HAWTHORNE_SMOLLM2")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"))
}

/// The benchmark chat (`bench/prompt.json`) under the model's chat template, cut to 128 tokens.
fn smollm2_prompt(model: &Model) -> Vec<u32> {
    let path = workspace_root().join("bench/prompt.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let prompt: serde_json::Value = serde_json::from_str(&text).expect("bench/prompt.json is JSON");
    let field = |k: &str| {
        prompt[k]
            .as_str()
            .unwrap_or_else(|| panic!("bench/prompt.json needs a string `{k}`"))
    };
    let mut ids = model
        .chat_tokens(field("system"), field("user"))
        .expect("the prompt tokenizes");
    assert!(
        ids.len() >= PROMPT_TOKENS,
        "bench/prompt.json gives {} tokens, fewer than {PROMPT_TOKENS}",
        ids.len()
    );
    if ids.len() != PROMPT_TOKENS {
        eprintln!(
            "note: bench/prompt.json gives {} tokens; using the first {PROMPT_TOKENS}",
            ids.len()
        );
    }
    ids.truncate(PROMPT_TOKENS);
    ids
}

/// What is fed to the engine: the options the Generator uses (logits of the last token only).
fn opts() -> RunOptions {
    RunOptions {
        logits: LogitsAt::Last,
        ..RunOptions::default()
    }
}

/// The group's settings: SmolLM2's passes take up to a second, so it gets few, flat samples.
fn group<'c>(c: &'c mut Criterion, name: &str, slow: bool) -> BenchmarkGroup<'c, WallTime> {
    let mut g = c.benchmark_group(name);
    if slow {
        g.sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10));
    } else {
        g.measurement_time(Duration::from_secs(8));
    }
    g
}

/// `prefill_{n}`: one forward pass over the whole prompt into an empty cache.
fn bench_prefill(g: &mut BenchmarkGroup<'_, WallTime>, model: &Model, prompt: &[u32]) {
    let (opts, seqs) = (opts(), [prompt.to_vec()]);
    g.throughput(Throughput::Elements(prompt.len() as u64));
    g.bench_function(format!("prefill_{}", prompt.len()), |b| {
        b.iter(|| model.llama.forward(&seqs, &opts, None).expect("prefill"))
    });
}

/// `decode_step_kv{n}`: one token over a cache filled by a prefill of `context` (n tokens).
///
/// Each iteration works on a clone of that cache (cheap: tensors are reference-counted), so
/// every step sees exactly n earlier positions.
fn bench_decode(g: &mut BenchmarkGroup<'_, WallTime>, model: &Model, context: &[u32], next: u32) {
    let opts = opts();
    let mut kv = KvCache::default();
    model
        .llama
        .forward(&[context.to_vec()], &opts, Some(&mut kv))
        .expect("cache prefill");
    assert_eq!(kv.len(), context.len());
    let next = [vec![next]];
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("decode_step_kv{}", context.len()), |b| {
        b.iter_batched(
            || kv.clone(),
            |mut kv| model.llama.forward(&next, &opts, Some(&mut kv)).expect("decode step"),
            BatchSize::SmallInput,
        )
    });
}

fn smollm2(c: &mut Criterion) {
    let path = smollm2_path();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "skipping SmolLM2 benchmarks: cannot read {} ({e}); run `cargo xtask fetch-models`",
                path.display()
            );
            return;
        }
    };
    let model = Model::from_gguf_bytes(&bytes).expect("SmolLM2 loads");
    drop(bytes);
    let prompt = smollm2_prompt(&model);
    let mut g = group(c, "smollm2", true);
    bench_prefill(&mut g, &model, &prompt);
    bench_decode(&mut g, &model, &prompt, prompt[0]);
    // How decoding slows as the context grows: the prompt 8 times over.
    let long: Vec<u32> = prompt.iter().copied().cycle().take(LONG_CONTEXT).collect();
    bench_decode(&mut g, &model, &long, prompt[0]);
    g.finish();
}

fn tiny(c: &mut Criterion) {
    let bytes = tiny_random_gguf(7).expect("tiny model bytes");
    let model = Model::from_gguf_bytes(&bytes).expect("tiny model loads");
    let cfg = model.config();
    let vocab = cfg.d_vocab as u32;
    let prompt: Vec<u32> = (0..PROMPT_TOKENS as u32).map(|i| (i * 37 + 11) % vocab).collect();
    // The tiny model's context is 128 positions, so its decode step sees 127 cached ones.
    let cache = PROMPT_TOKENS.min(cfg.n_ctx - 1);
    let mut g = group(c, "tiny", false);
    bench_prefill(&mut g, &model, &prompt);
    bench_decode(&mut g, &model, &prompt[..cache], prompt[cache % prompt.len()]);
    g.finish();
}

criterion_group!(benches, smollm2, tiny);
criterion_main!(benches);
