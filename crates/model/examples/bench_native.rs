//! Peak memory of the native engine: load SmolLM2 from its file and prefill the 128-token
//! benchmark prompt, then print one JSON object with the prompt ids, timings and peak RSS.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p hawthorne-model --example bench_native -- \
//!     models/SmolLM2-135M-Instruct.Q4_1.gguf bench/prompt.json
//! ```
//!
//! Peak RSS is the kernel's high-water mark (`VmHWM` in `/proc/self/status`), so this is
//! Linux-only. `cargo xtask bench` runs it in a process of its own, so the number covers just
//! this: the weights (packed, or f32 with `HAWTHORNE_COMPUTE=f32`), loaded one tensor at a time
//! from the file, and one prefill.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use hawthorne_model::{ComputeMode, LogitsAt, Model, RunOptions};

const PROMPT_TOKENS: usize = 128;

/// A `kB` field of `/proc/self/status`, in bytes.
fn proc_status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kb: u64 = line
        .trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing `{line}`"))?;
    Ok(kb * 1024)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, prompt_path] = args.as_slice() else {
        bail!("usage: bench_native MODEL.gguf PROMPT.json");
    };
    let rss_start = proc_status_bytes("VmRSS")?;

    let t0 = Instant::now();
    let mode: ComputeMode = std::env::var("HAWTHORNE_COMPUTE").unwrap_or_else(|_| "packed".into()).parse()?;
    let mut file = std::io::BufReader::new(std::fs::File::open(model_path).with_context(|| format!("opening {model_path}"))?);
    let model = Model::load_from_reader(&mut file, mode, |_| {})?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(file);
    let rss_after_load = proc_status_bytes("VmRSS")?;
    let peak_after_load = proc_status_bytes("VmHWM")?;

    let prompt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(prompt_path).with_context(|| format!("reading {prompt_path}"))?)?;
    let field = |k: &str| {
        prompt[k]
            .as_str()
            .with_context(|| format!("{prompt_path} needs a string `{k}`"))
    };
    let mut ids = model.chat_tokens(field("system")?, field("user")?)?;
    let chat_tokens = ids.len();
    if ids.len() < PROMPT_TOKENS {
        bail!("{prompt_path} gives {} tokens, fewer than {PROMPT_TOKENS}", ids.len());
    }
    ids.truncate(PROMPT_TOKENS);

    let opts = RunOptions {
        logits: LogitsAt::Last,
        ..RunOptions::default()
    };
    let t1 = Instant::now();
    let out = model.llama.forward(std::slice::from_ref(&ids), &opts, None)?;
    let logits: Vec<f32> = out.logits.get(0)?.to_vec1()?;
    let prefill_ms = t1.elapsed().as_secs_f64() * 1e3;
    let peak = proc_status_bytes("VmHWM")?;

    let report = serde_json::json!({
        "model": model_path,
        "sha256": model.sha256,
        "chat_tokens": chat_tokens,
        "ids": ids,
        "load_ms": load_ms,
        "prefill_ms": prefill_ms,
        "next_token": hawthorne_model::model::argmax(&logits),
        "rss_start_bytes": rss_start,
        "rss_after_load_bytes": rss_after_load,
        "peak_rss_after_load_bytes": peak_after_load,
        "peak_rss_bytes": peak,
    });
    println!("{report}");
    Ok(())
}
