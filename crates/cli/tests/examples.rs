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
    for name in ["organism-deceptive", "organism-control", "smollm2"] {
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
