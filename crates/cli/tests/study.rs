//! `hawthorne study`: one spec on two models gives a row per model, the published numbers,
//! a depth chart and each model's report; a missing model is a readable error.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_study_of_both_organisms_writes_its_table_chart_and_reports() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = tempfile::tempdir()?;
    let spec = root.join("examples/organism-deceptive.json");
    let run = Command::new(env!("CARGO_BIN_EXE_hawthorne"))
        .current_dir(&root)
        .args(["study", spec.to_str().unwrap_or_default(), "--model", "organism-deceptive", "--model", "organism-control", "--quiet", "--out"])
        .arg(out.path())
        .env("RAYON_NUM_THREADS", "1")
        .output()?;
    anyhow::ensure!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let study: hawthorne_probe::study::Study = serde_json::from_str(&std::fs::read_to_string(out.path().join("study.json"))?)?;
    let names: Vec<&str> = study.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(names, ["organism-deceptive", "organism-control"]);
    // The deceptive organism's probe is evidence on its own framings; the control's is not.
    assert!(study.rows[0].evidence && !study.rows[1].evidence, "{:?}", study.rows.iter().map(|r| &r.verdict).collect::<Vec<_>>());
    assert!(study.rows.iter().all(|r| r.curve.len() == 5 && r.curve[0].0 == 0.0 && r.curve[4].0 == 1.0));
    let md = std::fs::read_to_string(out.path().join("study.md"))?;
    assert!(md.contains("| organism-control |") && md.contains("Chaudhary et al. 2025"), "{md}");
    assert!(std::fs::read_to_string(out.path().join("study.svg"))?.contains("<svg"));
    assert!(out.path().join("organism-control/report.json").is_file());

    let missing = Command::new(env!("CARGO_BIN_EXE_hawthorne"))
        .current_dir(&root)
        .args(["study", spec.to_str().unwrap_or_default(), "--model", "/nonexistent/model.gguf", "--out"])
        .arg(out.path().join("again"))
        .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/model.gguf"));
    Ok(())
}
