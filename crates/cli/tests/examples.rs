//! The committed example specs are exactly what `hawthorne spec example NAME` generates, they
//! validate, and the default (organism) spec fits a 2 KB share link.

use std::path::PathBuf;
use std::process::Command;

fn hawthorne(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne")).args(args).output()?;
    anyhow::ensure!(out.status.success(), "hawthorne {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn examples_are_current_and_valid() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for name in ["organism-deceptive", "organism-control", "organism-words", "smollm2", "study-smollm2"] {
        let path = root.join(format!("examples/{name}.json"));
        let committed = std::fs::read_to_string(&path)?;
        let generated = hawthorne(&["spec", "example", name])?;
        assert_eq!(
            committed.trim(),
            generated.trim(),
            "{} is stale; regenerate with `hawthorne spec example {name} > examples/{name}.json`",
            path.display()
        );
        hawthorne_probe::ExperimentSpec::from_json(&committed)?;
    }
    let link = hawthorne(&["spec", "encode", root.join("examples/organism-deceptive.json").to_str().unwrap_or_default()])?;
    assert!(link.trim().len() <= 2048, "the default spec's link is {} bytes", link.trim().len());
    let back = hawthorne(&["spec", "decode", link.trim()])?;
    assert_eq!(back.trim(), std::fs::read_to_string(root.join("examples/organism-deceptive.json"))?.trim());
    Ok(())
}

#[test]
fn bad_links_and_missing_models_are_readable_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne")).args(["spec", "decode", "not-a-link"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a spec file nor a share link"));
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/smollm2.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne"))
        .args(["run", spec.to_str().unwrap_or_default(), "--model", "/nonexistent.gguf", "--out", "/tmp/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.gguf"));
}

#[test]
fn the_cost_is_shown_before_running_and_a_spec_over_budget_needs_yes() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let spec = root.join("examples/organism-deceptive.json");
    let spec = spec.to_str().unwrap_or_default();
    let table = hawthorne(&["spec", "cost", spec])?;
    assert!(table.contains("forward-pass tokens") && table.contains("time on a slow laptop"), "{table}");
    assert!(table.contains("Within the default budget"), "{table}");
    let json: hawthorne_probe::CostEstimate = serde_json::from_str(&hawthorne(&["spec", "cost", spec, "--json"])?)?;
    assert_eq!(json.prompts, 150);
    assert!(json.seconds > 0.0 && json.forward_tokens > json.prompts);

    // A budget below the estimate refuses before anything runs, and says how to go on.
    let out_dir = std::env::temp_dir().join(format!("hawthorne-cost-{}", std::process::id()));
    let budget = format!("{}", json.seconds / 2.0);
    let out = Command::new(env!("CARGO_BIN_EXE_hawthorne"))
        .args(["run", spec, "--quiet", "--max-cost", &budget, "--out", out_dir.to_str().unwrap_or_default()])
        .env("RAYON_NUM_THREADS", "1")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--yes") && err.contains("slow laptop"), "{err}");
    assert!(!out_dir.join("report.json").exists(), "nothing was written");

    // `--yes` runs it, and the report records the estimate beside the measured time.
    hawthorne(&["run", spec, "--quiet", "--yes", "--max-cost", &budget, "--out", out_dir.to_str().unwrap_or_default()])?;
    let report: hawthorne_probe::Report = serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json"))?)?;
    assert_eq!(report.cost.as_ref(), Some(&json));
    assert!(report.timings.get("total_run").is_some_and(|ms| *ms > 0.0));
    let md = std::fs::read_to_string(out_dir.join("report.md"))?;
    assert!(md.contains("estimated cost: about") && md.contains("this run took"), "{md}");
    std::fs::remove_dir_all(&out_dir)?;
    Ok(())
}
