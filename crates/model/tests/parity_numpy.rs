//! Parity with an independent float64 numpy forward pass of SmolLM2 (fixtures/numpy_forward).
//!
//! The fixtures are produced by `fixtures/numpy_forward/generate.py` from the same GGUF file;
//! this test only reads them, so it needs no Python.

mod common;

use std::path::PathBuf;

use anyhow::{ensure, Context};
use candle_core::Tensor;
use hawthorne_model::{HookPoint, LogitsAt, NamesFilter, RunOptions};

/// f32 mode: largest allowed |ours − reference| over the stored logits.
const LOGIT_TOL: f64 = 1e-3;
/// f32 mode: largest allowed ‖ours − reference‖ / ‖reference‖ of one layer's residual stream.
const RESID_REL_TOL: f64 = 1e-4;
/// Packed mode: the same two bounds. Packed matmuls round activations to 8 bits per block of
/// 32 (as llama.cpp does), an error of ~0.4% of each block's largest value that the blocks
/// compound. Measured: max |logit diff| 1.10 and worst per-layer relative residual difference
/// 3.2e-2 (the last layer), the size of the differences between llama.cpp's Q4_1 run and its F32
/// run; the bounds leave a margin above those numbers.
const PACKED_LOGIT_TOL: f64 = 2.0;
const PACKED_RESID_REL_TOL: f64 = 5e-2;

#[derive(serde::Deserialize)]
struct Meta {
    model_sha256: String,
    tokens: Vec<u32>,
    logit_positions: Vec<usize>,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy_forward")
}

/// A tensor's values as f64, flattened.
fn values(t: &Tensor) -> anyhow::Result<Vec<f64>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?)
}

/// ‖ours − theirs‖ / ‖theirs‖.
fn rel_diff(ours: &[f64], theirs: &[f64]) -> f64 {
    let (num, den) = ours
        .iter()
        .zip(theirs)
        .fold((0f64, 0f64), |(n, d), (a, b)| {
            (n + (a - b).powi(2), d + b * b)
        });
    (num / den).sqrt()
}

#[test]
fn f32_forward_matches_numpy_float64_reference() -> anyhow::Result<()> {
    let (logit, resid) = compare(common::smollm2_f32()?, "f32")?;
    ensure!(logit <= LOGIT_TOL, "f32 mode: max |logit diff| {logit:.3e} exceeds {LOGIT_TOL:e}");
    ensure!(resid <= RESID_REL_TOL, "f32 mode: per-layer rel diff {resid:.3e} exceeds {RESID_REL_TOL:e}");
    Ok(())
}

#[test]
fn packed_forward_is_close_to_numpy_float64_reference() -> anyhow::Result<()> {
    let (logit, resid) = compare(common::smollm2()?, "packed")?;
    ensure!(logit <= PACKED_LOGIT_TOL, "packed mode: max |logit diff| {logit:.3e} exceeds {PACKED_LOGIT_TOL:e}");
    ensure!(resid <= PACKED_RESID_REL_TOL, "packed mode: per-layer rel diff {resid:.3e} exceeds {PACKED_RESID_REL_TOL:e}");
    Ok(())
}

/// The largest logit difference and the worst per-layer relative residual difference of
/// `model` against the float64 reference.
fn compare(model: &hawthorne_model::Model, label: &str) -> anyhow::Result<(f64, f64)> {
    let dir = fixture_dir();
    let meta: Meta = serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json"))?)?;
    let ref_logits = Tensor::read_npy(dir.join("logits.npy")).context("logits.npy")?; // [P, V]
    let ref_resid = Tensor::read_npy(dir.join("resid_post.npy")).context("resid_post.npy")?; // [L, T, D]

    ensure!(
        model.sha256 == meta.model_sha256,
        "fixtures were generated from a GGUF with sha256 {}, but the model file has {}",
        meta.model_sha256,
        model.sha256
    );
    let cfg = model.config();
    let t = meta.tokens.len();
    ensure!(
        ref_resid.dims() == [cfg.n_layers, t, cfg.d_model],
        "resid_post.npy has shape {:?}",
        ref_resid.dims()
    );
    ensure!(
        ref_logits.dims() == [meta.logit_positions.len(), cfg.d_vocab],
        "logits.npy has shape {:?}",
        ref_logits.dims()
    );

    let opts = RunOptions {
        cache: NamesFilter::parse("blocks.*.hook_resid_post")?,
        interventions: Vec::new(),
        logits: LogitsAt::All,
        ..RunOptions::default()
    };
    let out = model.llama.forward(std::slice::from_ref(&meta.tokens), &opts, None)?;

    // Logits at the stored positions.
    let ours_all = out.logits.get(0)?; // [T, V]
    let mut max_logit_diff = 0f64;
    let mut worst_pos = 0;
    for (row, &pos) in meta.logit_positions.iter().enumerate() {
        let ours = values(&ours_all.get(pos)?)?;
        let theirs = values(&ref_logits.get(row)?)?;
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f64, f64::max);
        eprintln!("[{label}] logits pos {pos:2}: max |diff| {diff:.3e}");
        if diff > max_logit_diff {
            (max_logit_diff, worst_pos) = (diff, pos);
        }
    }
    eprintln!("[{label}] max |logit diff| = {max_logit_diff:.3e} (position {worst_pos})");

    // Residual stream after every block, all positions included.
    let mut worst = (0usize, 0f64);
    for layer in 0..cfg.n_layers {
        let ours = out
            .cache
            .get(&HookPoint::ResidPost(layer))
            .with_context(|| format!("blocks.{layer}.hook_resid_post was not cached"))?;
        ensure!(
            ours.dims() == [1, t, cfg.d_model],
            "cached resid has shape {:?}",
            ours.dims()
        );
        let ours = values(ours)?;
        let theirs = values(&ref_resid.get(layer)?)?;
        let rel = rel_diff(&ours, &theirs);
        // Position 0 carries massive activations that dominate the norm, so the positions
        // after it are checked on their own too (in addition to, not instead of, all positions).
        let d = cfg.d_model;
        let rel_rest = rel_diff(&ours[d..], &theirs[d..]);
        eprintln!(
            "[{label}] blocks.{layer}.hook_resid_post: rel diff {rel:.3e} (positions 1..: {rel_rest:.3e})"
        );
        for r in [rel, rel_rest] {
            if r > worst.1 {
                worst = (layer, r);
            }
        }
    }
    eprintln!(
        "[{label}] worst per-layer rel diff = {:.3e} (layer {})",
        worst.1, worst.0
    );

    Ok((max_logit_diff, worst.1))
}
