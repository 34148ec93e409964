//! Writes the tiny random-weight GGUF of each architecture into
//! `tests/fixtures/families/` for the llama.cpp reference script next to them.

use hawthorne_model::gguf::Arch;

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families");
    for arch in Arch::ALL {
        let bytes = hawthorne_model::testing::tiny_family_gguf(arch, 7)?;
        let path = dir.join(format!("{}.gguf", arch.name()));
        std::fs::write(&path, &bytes)?;
        println!("{}: {} bytes", path.display(), bytes.len());
    }
    Ok(())
}
