//! Pins the tiny random model's native forward pass to a JSON fixture that the wasm test
//! (`tests/wasm.rs`) compares against, so wasm and native are checked against the same numbers.
//! Regenerate with `HAWTHORNE_BLESS=1 cargo test -p hawthorne-model --test tiny_fixture`.

#![cfg(not(target_arch = "wasm32"))]

#[path = "tiny_common.rs"]
mod tiny_common;

#[test]
fn native_forward_matches_the_fixture() -> anyhow::Result<()> {
    let got = tiny_common::run()?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_native.json");
    if std::env::var_os("HAWTHORNE_BLESS").is_some() {
        std::fs::write(&path, serde_json::to_string(&got)?)?;
    }
    let want: tiny_common::Snapshot = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let diff = tiny_common::max_abs_diff(&got, &want)?;
    eprintln!("native vs fixture: max abs diff {diff:e}");
    assert!(diff <= 1e-5, "native forward drifted from the fixture by {diff}");
    Ok(())
}
