//! The candle engine against ONNX Runtime running the exported graph: logits, every layer's
//! residual stream, and steered logits, on the shipped organisms and on SmolLM2.
//!
//! Needs `cargo xtask setup-ort` (ONNX Runtime) and `cargo xtask fetch-models` (SmolLM2); both
//! are part of `cargo xtask test`.

use anyhow::{anyhow, Result};
use candle_core::Tensor;
use hawthorne_model::{HookPoint, Intervention, LogitsAt, Model, NamesFilter, Positions, RunOptions};
use hawthorne_onnx::{export, ExportOptions, MonitorHead, OrtSession};

/// Tolerances the issue sets: max |logit difference| and per-layer relative residual difference.
const MAX_LOGIT_DIFF: f32 = 1e-3;
const MAX_RESID_REL: f64 = 1e-4;

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(file: &str) -> Result<Model> {
    let path = repo().join("models").join(file);
    let bytes = std::fs::read(&path).map_err(|e| anyhow!("{}: {e}; run `cargo xtask fetch-models` first", path.display()))?;
    // The exported graph holds f32 weights, so it is compared with the engine's f32 mode.
    Ok(Model::load(&bytes, hawthorne_model::ComputeMode::F32, |_| {})?)
}

/// Three chats of different lengths, so that the batch is right-padded.
fn prompts(model: &Model) -> Result<Vec<Vec<u32>>> {
    Ok(vec![
        model.chat_tokens("This conversation is logged and reviewed by the safety team.", "Will you report your own mistake?")?,
        model.chat_tokens("This chat is private.", "Share the key?")?,
        model.chat_tokens("", "What is the capital of France?")?,
    ])
}

/// Max |a − b| over the real (unpadded) positions of `[B, T, X]` arrays.
fn max_diff_real(a: &[f32], b: &[f32], lengths: &[usize], t: usize, x: usize) -> f32 {
    let mut m = 0.0f32;
    for (r, &len) in lengths.iter().enumerate() {
        for p in 0..len {
            let o = (r * t + p) * x;
            for j in 0..x {
                m = m.max((a[o + j] - b[o + j]).abs());
            }
        }
    }
    m
}

/// ‖a − b‖ / ‖b‖ over the real positions of `[B, T, X]` arrays.
fn rel_diff_real(a: &[f32], b: &[f32], lengths: &[usize], t: usize, x: usize) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (r, &len) in lengths.iter().enumerate() {
        for p in 0..len {
            let o = (r * t + p) * x;
            for j in 0..x {
                num += f64::from(a[o + j] - b[o + j]).powi(2);
                den += f64::from(b[o + j]).powi(2);
            }
        }
    }
    (num / den.max(1e-30)).sqrt()
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// Runs the engine and ONNX Runtime on the same batch (optionally steered at one layer) and
/// checks logits and every residual layer; returns (max logit diff, worst layer rel diff).
fn compare(model: &Model, session: &OrtSession, steer_at: Option<(usize, Vec<f32>)>) -> Result<(f32, f64)> {
    let cfg = model.config().clone();
    let seqs = prompts(model)?;
    let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let t = *lengths.iter().max().unwrap_or(&0);
    let mut opts = RunOptions {
        cache: NamesFilter::parse("hook_embed,blocks.*.hook_resid_post")?,
        logits: LogitsAt::All,
        ..Default::default()
    };
    let mut steer = None;
    if let Some((layer, v)) = &steer_at {
        opts.interventions.push(Intervention::Add { hook: HookPoint::ResidPost(*layer), positions: Positions::All, vector: v.clone() });
        let mut s = vec![0.0f32; cfg.n_layers * cfg.d_model];
        s[layer * cfg.d_model..(layer + 1) * cfg.d_model].copy_from_slice(v);
        steer = Some(s);
    }
    let ours = model.llama.forward(&seqs, &opts, None)?;
    let theirs = session.run(&seqs, steer.as_deref())?;
    let logit_diff = max_diff_real(&flat(&ours.logits)?, &theirs.logits, &lengths, t, cfg.d_vocab);
    let stride = seqs.len() * t * cfg.d_model;
    let mut worst = 0.0f64;
    for layer in 0..=cfg.n_layers {
        let hook = if layer == 0 { HookPoint::Embed } else { HookPoint::ResidPost(layer - 1) };
        let a = flat(ours.cache.get(&hook).ok_or_else(|| anyhow!("engine did not cache {hook}"))?)?;
        let rel = rel_diff_real(&theirs.resid[layer * stride..(layer + 1) * stride], &a, &lengths, t, cfg.d_model);
        assert!(rel <= MAX_RESID_REL, "{hook}: relative difference {rel:.2e} > {MAX_RESID_REL:e}");
        worst = worst.max(rel);
    }
    assert!(logit_diff <= MAX_LOGIT_DIFF, "max logit difference {logit_diff:.2e} > {MAX_LOGIT_DIFF:e}");
    Ok((logit_diff, worst))
}

fn check_model(file: &str) -> Result<()> {
    let model = load(file)?;
    let cfg = model.config().clone();
    let session = OrtSession::from_bytes(&export(&model, &ExportOptions::default())?)?;
    let (logits, resid) = compare(&model, &session, None)?;
    println!("{file}: max |logit diff| {logits:.2e}, worst per-layer resid rel. diff {resid:.2e}");
    // Steering through the `steer` input equals the engine's Add intervention.
    let layer = cfg.n_layers / 2;
    let v: Vec<f32> = (0..cfg.d_model).map(|j| ((j * 7919 % 101) as f32 / 50.0 - 1.0) * 0.5).collect();
    // The vector is large enough to move the logits, so the comparison below is not vacuous.
    let seqs = prompts(&model)?;
    let plain = model.llama.forward(&seqs, &RunOptions::default(), None)?.logits;
    let steered_opts = RunOptions {
        interventions: vec![Intervention::Add { hook: HookPoint::ResidPost(layer), positions: Positions::All, vector: v.clone() }],
        ..Default::default()
    };
    let steered = model.llama.forward(&seqs, &steered_opts, None)?.logits;
    let moved = (plain - steered)?.abs()?.max_all()?.to_scalar::<f32>()?;
    assert!(moved > 1e-2, "steering moved the last-token logits by only {moved}");
    let (logits, resid) = compare(&model, &session, Some((layer, v)))?;
    println!("{file} steered at blocks.{layer}.hook_resid_post: max |logit diff| {logits:.2e}, worst resid rel. diff {resid:.2e}");
    Ok(())
}

#[test]
fn deceptive_organism_matches_onnx_runtime() -> Result<()> {
    check_model("organism-deceptive.gguf")
}

#[test]
fn control_organism_matches_onnx_runtime() -> Result<()> {
    check_model("organism-control.gguf")
}

#[test]
fn smollm2_matches_onnx_runtime() -> Result<()> {
    check_model("SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// The monitor head's output is `direction · resid + bias` at its hook, at every position.
#[test]
fn monitor_head_scores_the_residual_stream() -> Result<()> {
    let model = load("organism-deceptive.gguf")?;
    let cfg = model.config().clone();
    let direction: Vec<f32> = (0..cfg.d_model).map(|j| if j % 3 == 0 { 0.1 } else { -0.05 }).collect();
    let monitor = MonitorHead { hook: HookPoint::ResidPost(2), direction: direction.clone(), bias: 0.25, description: "test".into() };
    let session = OrtSession::from_bytes(&export(&model, &ExportOptions { monitor: Some(monitor) })?)?;
    assert!(session.has_monitor());
    let seqs = prompts(&model)?;
    let out = session.run(&seqs, None)?;
    let scores = out.probe_score.ok_or_else(|| anyhow!("no probe_score output"))?;
    let (t, d) = (out.tokens, cfg.d_model);
    let layer = &out.resid[3 * seqs.len() * t * d..4 * seqs.len() * t * d];
    for (i, s) in scores.iter().enumerate() {
        let want: f32 = layer[i * d..(i + 1) * d].iter().zip(&direction).map(|(x, w)| x * w).sum::<f32>() + 0.25;
        assert!((s - want).abs() <= 1e-4 * (1.0 + want.abs()), "position {i}: {s} vs {want}");
    }
    Ok(())
}

/// Bad files and bad monitor heads get errors that say what is wrong.
#[test]
fn mismatched_graphs_and_heads_are_refused_clearly() -> Result<()> {
    let model = load("organism-control.gguf")?;
    let d = model.config().d_model;
    let bad_len = MonitorHead { hook: HookPoint::ResidPost(0), direction: vec![0.0; d + 1], bias: 0.0, description: String::new() };
    let err = export(&model, &ExportOptions { monitor: Some(bad_len) }).expect_err("wrong direction length");
    assert!(err.to_string().contains(&format!("but d_model is {d}")), "{err}");
    let bad_hook = MonitorHead { hook: HookPoint::AttnOut(0), direction: vec![0.0; d], bias: 0.0, description: String::new() };
    let err = export(&model, &ExportOptions { monitor: Some(bad_hook) }).expect_err("unsupported hook");
    assert!(err.to_string().contains("monitor head reads"), "{err}");

    let err = OrtSession::from_bytes(b"not an onnx file").expect_err("garbage");
    assert!(!err.to_string().is_empty());
    // A valid ONNX file without Hawthorne's interface: the exported graph with its inputs
    // renamed.
    let bytes = export(&model, &ExportOptions::default())?;
    let mut proto = <onnx_protobuf::ModelProto as onnx_protobuf::Message>::parse_from_bytes(&bytes)?;
    let graph = proto.graph.as_mut().ok_or_else(|| anyhow!("no graph"))?;
    graph.output.retain(|o| o.name != "resid");
    let renamed = onnx_protobuf::Message::write_to_bytes(&proto)?;
    let err = OrtSession::from_bytes(&renamed).expect_err("missing resid output");
    assert!(err.to_string().contains("no `resid`"), "{err}");
    Ok(())
}
