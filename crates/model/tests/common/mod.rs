//! Shared helpers for the model crate's integration tests: locating and loading model files.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use hawthorne_model::Model;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of the fetched SmolLM2 GGUF.
pub fn smollm2_path() -> PathBuf {
    repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Loads SmolLM2 once per test binary. Fails with the setup command when the file is absent.
pub fn smollm2() -> anyhow::Result<&'static Model> {
    static MODEL: OnceLock<Model> = OnceLock::new();
    if let Some(m) = MODEL.get() {
        return Ok(m);
    }
    let path = smollm2_path();
    let bytes = std::fs::read(&path).map_err(|e| {
        anyhow::anyhow!("{}: {e}; run `cargo xtask fetch-models` first", path.display())
    })?;
    let model = Model::from_gguf_bytes(&bytes)?;
    Ok(MODEL.get_or_init(|| model))
}
