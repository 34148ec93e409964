//! Two benchmark peers built on llama.cpp:
//! - quantised copies of SmolLM2 (`bench/quantize.py`: llama.cpp's own quantiser writes Q8_0
//!   and Q4_K_M copies of the Q4_1 file into `target/bench/`), for llama.cpp natively and here;
//! - wllama (npm `@wllama/wllama` 3.8.1, llama.cpp compiled to wasm) in the same headless
//!   Chromium as the worker: the page in `dist/wllama-bench/` (from `bench/wllama/page/`, with
//!   wllama's `esm/` files served from this origin) and its driver `bench/wllama.mjs`.
//!
//! The page is a benchmark, not part of the app, so it is kept out of `build-web`; and since
//! `build-web` clears `dist/`, `wllama_part` rebuilds it before every run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{display, run, serve, setup};

const WLLAMA_VERSION: &str = "3.8.1";
const PACKAGE: &str = "node_modules/@wllama/wllama";

/// Runs `cmd` with stdout captured (stderr passes through) and parses its last line as JSON.
fn json_stdout(cmd: &mut Command) -> Result<Value> {
    eprintln!("$ {}", display(cmd));
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed with {}", display(cmd), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("`{}` printed no JSON line: {stdout}", display(cmd)))
}

/// `bench/quantize.py`: makes (or keeps, when its sidecar records the same source sha256)
/// `target/bench/SmolLM2-135M-Instruct.Q8_0.gguf` and `.Q4_K_M.gguf` from the Q4_1 model and
/// returns the script's JSON (`source` and `copies.{Q8_0,Q4_K_M}`, each with `path`, `bytes`,
/// `sha256` and `tensor_types`). Needs llama-cpp-python, which `cargo xtask bench` installs.
pub fn quantized_copies(root: &Path) -> Result<Value> {
    json_stdout(
        Command::new("python3")
            .arg(root.join("bench/quantize.py"))
            .arg("--model")
            .arg(root.join("models").join(setup::SMOLLM2_FILE))
            .arg("--out-dir")
            .arg(root.join("target/bench"))
            .current_dir(root),
    )
}

/// The wllama benchmark page in `dist/wllama-bench/`: `index.html` and `bench.js` from
/// `bench/wllama/page/`, wllama's `esm/` files (the wasm included) from the pinned npm package
/// in `bench/wllama/`, and the benchmark prompt with its ids (`target/bench/prompt_ids.json`,
/// written by the native part of `cargo xtask bench`).
pub fn build_wllama_bench(root: &Path) -> Result<()> {
    let pkg_dir = root.join("bench/wllama");
    let installed = std::fs::read_to_string(pkg_dir.join(PACKAGE).join("package.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    if installed.as_deref() != Some(WLLAMA_VERSION) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&pkg_dir))
            .context("installing @wllama/wllama from npm (bench/wllama)")?;
    }
    let ids = root.join("target/bench/prompt_ids.json");
    if !ids.exists() {
        bail!("{} is missing: it is written by the native part of `cargo xtask bench`", ids.display());
    }
    let out = root.join("dist/wllama-bench");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    crate::copy_dir(&pkg_dir.join("page"), &out)?;
    crate::copy_dir(&pkg_dir.join(PACKAGE).join("esm"), &out.join("esm"))?;
    std::fs::copy(root.join("bench/prompt.json"), out.join("prompt.json"))?;
    std::fs::copy(&ids, out.join("prompt_ids.json"))?;
    Ok(())
}

/// Builds the page, puts `files` (GGUF models: the Q4_1 file and the quantised copies) into
/// `dist/wllama-bench/models/` (hard links where possible), serves `dist/` and runs
/// `bench/wllama.mjs` on them; returns its JSON (`rows`: one per file and thread count, with
/// prefill and decode tok/s, load ms and wasm memory; `pages`: every page load).
/// `runs` browser launches per file (each with one page load per thread count).
pub fn wllama_part(root: &Path, files: &[PathBuf], runs: u32) -> Result<Value> {
    build_wllama_bench(root)?;
    let models = root.join("dist/wllama-bench/models");
    std::fs::create_dir_all(&models)?;
    let mut names = Vec::new();
    for file in files {
        let name = file.file_name().with_context(|| format!("{} has no file name", file.display()))?;
        let dest = models.join(name);
        if std::fs::hard_link(file, &dest).is_err() {
            std::fs::copy(file, &dest).with_context(|| format!("copying {} to {}", file.display(), dest.display()))?;
        }
        names.push(name.to_os_string());
    }
    let server = serve::spawn(root, 0)?;
    json_stdout(
        Command::new("node")
            .arg(root.join("bench/wllama.mjs"))
            .args(&names)
            .current_dir(root)
            .env("HAWTHORNE_URL", format!("http://127.0.0.1:{}", server.port))
            .env("BENCH_RUNS", runs.to_string())
            .env("CHROMIUM", setup::CHROMIUM),
    )
}
