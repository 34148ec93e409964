//! Shared helpers for the model crate's integration tests: locating and loading model files.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use hawthorne_model::{ComputeMode, Model};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of the fetched SmolLM2 GGUF.
pub fn smollm2_path() -> PathBuf {
    repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Loads SmolLM2 (packed weights) once per test binary. Fails with the setup command when the
/// file is absent.
pub fn smollm2() -> anyhow::Result<&'static Model> {
    static MODEL: OnceLock<Model> = OnceLock::new();
    load_once(&MODEL, ComputeMode::Packed)
}

/// Loads SmolLM2 in f32 mode once per test binary.
pub fn smollm2_f32() -> anyhow::Result<&'static Model> {
    static MODEL: OnceLock<Model> = OnceLock::new();
    load_once(&MODEL, ComputeMode::F32)
}

/// Path of the fetched Gemma 3 270M GGUF.
pub fn gemma3_path() -> PathBuf {
    repo_root().join("models/gemma-3-270m-q4_k_m.gguf")
}

/// Loads Gemma 3 270M (packed weights) once per test binary.
pub fn gemma3() -> anyhow::Result<&'static Model> {
    static MODEL: OnceLock<Model> = OnceLock::new();
    load_path_once(&MODEL, gemma3_path(), ComputeMode::Packed)
}

/// Loads Gemma 3 270M in f32 mode once per test binary (about 1.1 GB).
pub fn gemma3_f32() -> anyhow::Result<&'static Model> {
    static MODEL: OnceLock<Model> = OnceLock::new();
    load_path_once(&MODEL, gemma3_path(), ComputeMode::F32)
}

fn load_once(cell: &'static OnceLock<Model>, mode: ComputeMode) -> anyhow::Result<&'static Model> {
    load_path_once(cell, smollm2_path(), mode)
}

fn load_path_once(cell: &'static OnceLock<Model>, path: PathBuf, mode: ComputeMode) -> anyhow::Result<&'static Model> {
    if let Some(m) = cell.get() {
        return Ok(m);
    }
    let bytes = std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!("{}: {e}; run `cargo xtask fetch-models` first", path.display())
    })?;
    let model = Model::load(&bytes, mode, |_| {})?;
    Ok(cell.get_or_init(|| model))
}
