//! `cargo xtask build-ort-bench`: the ONNX Runtime Web benchmark page in `dist/ort-bench/`:
//! the `hawthorne-ort-bench` wasm (ort + ort-web), onnxruntime-web's files from the pinned npm
//! package in `bench/ort-web/` (checked against the SRI hashes the page also enforces), the
//! exported SmolLM2 graph and the benchmark prompt's ids.
//!
//! Kept out of `build-web`: the page is a benchmark, not part of the app, and the export is a
//! 540 MB file.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest, Sha384};

use crate::{cargo, run, setup};

/// onnxruntime-web files the page loads, with the SRI hash files committed next to the package.
const FILES: &[&str] = &["ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src data:">
<link rel="icon" href="data:,">
<title>Hawthorne · ONNX Runtime Web benchmark</title>
<script type="module" src="boot.js"></script>
</head>
<body>
<h1>ONNX Runtime Web benchmark</h1>
<p>SmolLM2 exported by <code>hawthorne export-onnx</code>, run through <code>ort</code> + <code>ort-web</code>.
Not part of the app; see <code>bench/RESULTS.md</code>.</p>
<pre id="result">running…</pre>
</body>
</html>
"#;

const BOOT_JS: &str = "import init from './pkg/ort_bench.js';\ninit();\n";

pub fn build(root: &Path) -> Result<()> {
    let pkg_dir = root.join("bench/ort-web");
    if !pkg_dir.join("node_modules/onnxruntime-web/package.json").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&pkg_dir))
            .context("installing onnxruntime-web from npm (bench/ort-web)")?;
    }
    run(cargo().args(["build", "--release", "--target", "wasm32-unknown-unknown", "-p", "hawthorne-ort-bench", "--bin", "ort_bench"]))?;
    let out = root.join("dist/ort-bench");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(out.join("ort-web"))?;
    run(Command::new(setup::wasm_bindgen_bin())
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(out.join("pkg"))
        .arg(root.join("target/wasm32-unknown-unknown/release/ort_bench.wasm")))?;
    for f in FILES {
        let src = pkg_dir.join("node_modules/onnxruntime-web/dist").join(f);
        let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        let got = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&bytes));
        let want = std::fs::read_to_string(pkg_dir.join("sri").join(format!("{f}.sha384")))?;
        if got != want.trim() {
            bail!("{} has sha384 {got}, but bench/ort-web/sri pins {}; is the npm package the pinned 1.30.0?", src.display(), want.trim());
        }
        std::fs::write(out.join("ort-web").join(f), bytes)?;
    }
    std::fs::write(out.join("index.html"), INDEX_HTML)?;
    std::fs::write(out.join("boot.js"), BOOT_JS)?;
    // The graph and the prompt ids it runs.
    let ids = root.join("target/bench/prompt_ids.json");
    if !ids.exists() {
        bail!("{} is missing: it is written by the native part of `cargo xtask bench`", ids.display());
    }
    std::fs::copy(&ids, out.join("prompt_ids.json"))?;
    run(cargo()
        .args(["run", "--release", "-q", "-p", "hawthorne-cli", "--", "export-onnx", "--model", "smollm2-135m-instruct", "--out"])
        .arg(out.join("smollm2.onnx"))
        .current_dir(root))?;
    Ok(())
}
