//! SmolLM2 prefill through ONNX Runtime (one intra-op thread) and through the candle engine in
//! the same process, on the 128 prompt ids `bench_native` wrote; prints one JSON object.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p hawthorne-onnx --example bench_ort -- \
//!     models/SmolLM2-135M-Instruct.Q4_1.gguf target/bench/prompt_ids.json
//! ```
//!
//! Both engines run the same ids, with the same outputs requested of the graph (logits at every
//! position and every layer's residual stream, as the exported interface always returns
//! them); the candle run caches the same residuals. Median of 9 timed runs after 2 warm-ups.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use hawthorne_model::{LogitsAt, Model, NamesFilter, RunOptions};
use hawthorne_onnx::{export, ExportOptions, OrtSession};

const WARMUP: usize = 2;
const RUNS: usize = 9;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, ids_path] = args.as_slice() else {
        bail!("usage: bench_ort MODEL.gguf PROMPT_IDS.json");
    };
    let bytes = std::fs::read(model_path).with_context(|| format!("reading {model_path}"))?;
    let model = Model::from_gguf_bytes(&bytes)?;
    drop(bytes);
    let ids: Vec<u32> = serde_json::from_str(&std::fs::read_to_string(ids_path).with_context(|| format!("reading {ids_path}"))?)?;

    let t = Instant::now();
    let onnx = export(&model, &ExportOptions::default())?;
    let export_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let session = OrtSession::from_bytes(&onnx)?;
    let session_ms = t.elapsed().as_secs_f64() * 1e3;
    let onnx_bytes = onnx.len();
    drop(onnx);

    let seqs = vec![ids.clone()];
    let mut ort_ms = Vec::new();
    let mut ort_next = 0;
    for i in 0..WARMUP + RUNS {
        let t = Instant::now();
        let out = session.run(&seqs, None)?;
        if i >= WARMUP {
            ort_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let v = out.logits.len() / ids.len();
        ort_next = hawthorne_model::model::argmax(&out.logits[(ids.len() - 1) * v..]);
    }
    let opts = RunOptions {
        cache: NamesFilter::parse("hook_embed,blocks.*.hook_resid_post")?,
        logits: LogitsAt::All,
        ..Default::default()
    };
    let mut candle_ms = Vec::new();
    for i in 0..WARMUP + RUNS {
        let t = Instant::now();
        let out = model.llama.forward(&seqs, &opts, None)?;
        if i >= WARMUP {
            candle_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        drop(out);
    }
    let n = ids.len() as f64;
    let (o, c) = (median(ort_ms.clone()), median(candle_ms.clone()));
    println!(
        "{}",
        serde_json::json!({
            "prompt_tokens": ids.len(),
            "onnx_bytes": onnx_bytes,
            "export_ms": export_ms,
            "session_ms": session_ms,
            "ort_prefill_ms": o,
            "ort_prefill_tok_s": n / (o / 1e3),
            "ort_prefill_ms_runs": ort_ms,
            "candle_all_outputs_prefill_ms": c,
            "candle_all_outputs_prefill_tok_s": n / (c / 1e3),
            "candle_all_outputs_prefill_ms_runs": candle_ms,
            "ort_next_token": ort_next,
            "ort_version": hawthorne_onnx::runtime::ORT_VERSION,
        })
    );
    Ok(())
}
