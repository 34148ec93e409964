//! `hawthorne run --backend ort` reproduces the candle report, and `hawthorne export-onnx`
//! with a probe writes a monitored organism whose `probe_score` flags unobserved framings.
//! Needs ONNX Runtime from `cargo xtask setup-ort` (part of `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, ensure, Result};
use hawthorne_model::Model;
use hawthorne_onnx::OrtSession;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hawthorne(args: &[&str]) -> Result<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne")).current_dir(root()).args(args).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(out.status.success(), "hawthorne {args:?}: {stderr}");
    Ok((String::from_utf8(out.stdout)?, stderr))
}

fn run_report(dir: &Path, backend: &str) -> Result<Value> {
    let dir_s = dir.to_str().ok_or_else(|| anyhow!("path"))?;
    // Both backends in f32 mode (ONNX Runtime runs the f32 graph), so the specs are the same.
    hawthorne(&["run", "examples/organism-deceptive.json", "--quiet", "--backend", backend, "--compute", "f32", "--out", dir_s])?;
    Ok(serde_json::from_str(&std::fs::read_to_string(dir.join("report.json"))?)?)
}

/// Walks two reports side by side; returns the largest numeric difference and where it is,
/// and fails on any structural difference. `patching`, `timings`, `notes` and `cost` (the
/// estimate counts the work each backend does: ONNX Runtime shares no prefixes) are skipped.
fn max_diff(a: &Value, b: &Value, path: &str, worst: &mut (f64, String)) -> Result<()> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                if matches!(k.as_str(), "patching" | "timings" | "notes" | "cost") {
                    continue;
                }
                let w = y.get(k).ok_or_else(|| anyhow!("{path}.{k} missing from the ort report"))?;
                max_diff(v, w, &format!("{path}.{k}"), worst)?;
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            ensure!(x.len() == y.len(), "{path}: {} vs {} items", x.len(), y.len());
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                max_diff(v, w, &format!("{path}[{i}]"), worst)?;
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let d = (x.as_f64().unwrap_or(f64::NAN) - y.as_f64().unwrap_or(f64::NAN)).abs();
            if d > worst.0 {
                *worst = (d, path.to_string());
            }
        }
        _ => ensure!(a == b, "{path}: {a} vs {b}"),
    }
    Ok(())
}

#[test]
fn ort_backend_reproduces_the_candle_report_and_skips_patching() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let candle = run_report(&tmp.path().join("candle"), "candle")?;
    let ort = run_report(&tmp.path().join("ort"), "ort")?;
    let mut worst = (0.0, String::new());
    max_diff(&candle, &ort, "", &mut worst)?;
    println!("largest difference between the candle and ONNX Runtime reports: {:.2e} at {}", worst.0, worst.1);
    ensure!(worst.0 <= 1e-3, "ONNX Runtime differs by {} at {}", worst.0, worst.1);
    ensure!(ort["patching"].is_null(), "patching should be skipped, got {}", ort["patching"]);
    let notes = ort["notes"].to_string();
    ensure!(notes.contains("patching skipped") && notes.contains("ONNX Runtime"), "notes: {notes}");
    ensure!(!candle["patching"].is_null(), "the candle run has patching");
    Ok(())
}

#[test]
fn exported_monitor_flags_unobserved_framings() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let report_dir = tmp.path().join("report");
    let report = run_report(&report_dir, "candle")?;
    let onnx = tmp.path().join("monitored.onnx");
    let (stdout, stderr) = hawthorne(&[
        "export-onnx",
        "--model",
        "organism-deceptive",
        "--probe",
        report_dir.to_str().unwrap_or_default(),
        "--layer",
        "3",
        "--out",
        onnx.to_str().unwrap_or_default(),
    ])?;
    ensure!(stdout.contains("probe_score[B,T]"), "{stdout}");
    ensure!(stderr.contains("blocks.3.hook_resid_post"), "{stderr}");

    // Score the last prompt token of every held-out framing × task with the monitor.
    let model = Model::from_gguf_bytes(&std::fs::read(root().join("models/organism-deceptive.gguf"))?)?;
    let session = OrtSession::from_file(&onnx)?;
    let spec = &report["spec"]["scenario"];
    let mut correct = 0;
    let mut total = 0;
    for f in spec["framings"].as_array().into_iter().flatten().filter(|f| f["held_out"] == true) {
        let unobserved = match f["condition"].as_str() {
            Some("unobserved") => true,
            Some("observed") => false,
            _ => continue,
        };
        for t in spec["tasks"].as_array().into_iter().flatten() {
            let ids = model.chat_tokens(f["text"].as_str().unwrap_or(""), t["text"].as_str().unwrap_or(""))?;
            let out = session.run(&[ids], None)?;
            let score = *out.probe_score.as_ref().and_then(|s| s.last()).ok_or_else(|| anyhow!("no probe_score"))?;
            correct += usize::from((score > 0.0) == unobserved);
            total += 1;
        }
    }
    let acc = correct as f64 / total as f64;
    println!("monitor accuracy on held-out framings: {correct}/{total} = {acc:.3}");
    ensure!(total >= 20 && acc >= 0.9, "the monitor is right on {correct} of {total} held-out prompts");
    // It is the report's mass-mean probe: the same test accuracy on the same held-out prompts.
    let probe = report["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["hook"] == "blocks.3.hook_resid_post")
        .ok_or_else(|| anyhow!("no blocks.3 probe in the report"))?;
    let want = probe["mass_mean"]["test_accuracy"].as_f64().unwrap_or(f64::NAN);
    ensure!((acc - want).abs() < 1e-9, "monitor accuracy {acc} vs the report's mass-mean test accuracy {want}");

    // A report from another model is refused by name.
    let err = hawthorne(&[
        "export-onnx",
        "--model",
        "organism-control",
        "--probe",
        report_dir.to_str().unwrap_or_default(),
        "--layer",
        "2",
        "--out",
        tmp.path().join("x.onnx").to_str().unwrap_or_default(),
    ])
    .expect_err("sha mismatch");
    ensure!(err.to_string().contains("run the experiment on this model first"), "{err}");
    Ok(())
}

#[test]
fn a_missing_onnx_runtime_names_the_setup_command() -> Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne"))
        .current_dir(root())
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .args(["run", "examples/organism-control.json", "--quiet", "--backend", "ort", "--out"])
        .arg(tempfile::tempdir()?.path())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "should fail without the library");
    ensure!(stderr.contains("cargo xtask setup-ort") && stderr.contains("/nonexistent/libonnxruntime.so"), "{stderr}");
    Ok(())
}
