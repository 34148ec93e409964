//! `cargo xtask bench`: the speed and memory benchmarks, run together and written to
//! `bench/RESULTS.md` (with the raw numbers in `bench/results.json`).
//!
//! In one run, with `RAYON_NUM_THREADS=1` throughout:
//! 1. the engine natively (criterion, `crates/model/benches/engine.rs`): SmolLM2 prefill of the
//!    128-token prompt and one decode step over a 128-token KV cache, and the tiny random model;
//! 2. llama.cpp on the same file and the same 128 ids, one thread (`bench/llama_cpp.py`);
//! 3. peak RSS of a process that loads SmolLM2 and prefills the prompt (the `bench_native`
//!    example of hawthorne-model), which also writes the prompt ids that step 2 uses;
//! 3b. ONNX Runtime 1.32 natively on the exported SmolLM2 (`crates/onnx/examples/bench_ort.rs`),
//!    one intra-op thread, with the candle engine timed in the same process on the same outputs;
//! 4. the page in headless Chromium (`bench/browser.mjs`): load time, wasm memory, and
//!    prefill and decode speed of a 128-token chat;
//! 5. the size of the page's wasm files, raw and gzipped;
//! 6. the workshop path (`bench/organism.mjs`): time to interactive on the default page and the
//!    default organism experiment (`examples/organism-deceptive.json`) in the browser's worker,
//!    against the same spec run natively by `hawthorne run`.
//!
//! 7. ONNX Runtime Web (`bench/ort-web.mjs` on the page `cargo xtask build-ort-bench` builds):
//!    the exported SmolLM2 through ort + ort-web in the same Chromium, same prompt ids.
//!
//! `cargo xtask bench --organism-only` reruns part 6 alone and `--ort-web-only` part 7 alone,
//! merging it into the results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::{build_web, cargo, display, serve, setup};

/// Version installed when the bindings are missing (the one the parity fixtures used).
const LLAMA_CPP_PYTHON: &str = "llama-cpp-python==0.3.36";

/// Runs `cmd` with its stdout captured (stderr passes through) and parses the last line as JSON.
fn run_json(cmd: &mut Command) -> Result<Value> {
    eprintln!("$ {}", display(cmd));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed with {}", display(cmd), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("`{}` printed no JSON line: {stdout}", display(cmd)))
}

/// A command's trimmed stdout, or `None` if it cannot run.
fn capture(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn lscpu_field(lscpu: &str, field: &str) -> Option<String> {
    lscpu.lines().find_map(|l| {
        l.strip_prefix(field)
            .map(|rest| rest.trim_start_matches(':').trim().to_string())
    })
}

/// `target/bench/criterion/<group>/<name>/new/estimates.json` → median seconds per iteration,
/// with the 95% confidence interval of that median.
fn criterion_median(dir: &Path, group: &str, name: &str) -> Result<(f64, f64, f64)> {
    let path = dir.join(group).join(name).join("new/estimates.json");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)?;
    let m = &v["median"];
    let ns = |x: &Value| {
        x.as_f64()
            .with_context(|| format!("{} lacks the median", path.display()))
    };
    Ok((
        ns(&m["point_estimate"])? * 1e-9,
        ns(&m["confidence_interval"]["lower_bound"])? * 1e-9,
        ns(&m["confidence_interval"]["upper_bound"])? * 1e-9,
    ))
}

/// Installs llama.cpp's Python bindings when they are missing (this compiles llama.cpp once).
fn llama_cpp_python() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(());
    }
    eprintln!("installing {LLAMA_CPP_PYTHON} (it builds llama.cpp from source; several minutes once)");
    crate::run(Command::new("python3").args(["-m", "pip", "install", "--disable-pip-version-check", LLAMA_CPP_PYTHON]))
        .context("installing llama.cpp's Python bindings from PyPI")
}

/// Bytes of `path` after `gzip -9`.
fn gzipped_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()
        .context("running gzip")?;
    if !out.status.success() {
        bail!("gzip failed on {}", path.display());
    }
    Ok(out.stdout.len() as u64)
}

fn load_opt(v: &Value) -> String {
    v.as_f64().map_or("?".into(), |x| format!("{x:.2}"))
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

fn kib(bytes: f64) -> String {
    format!("{:.0} KiB", bytes / 1024.0)
}

/// A tok/s figure, or a dash when it was not measured.
/// Two table cells for `key`: "ours / theirs" (tok/s) and their ratio.
fn versus(ours: &Value, theirs: &Value, key: &str) -> String {
    let (a, b) = (f(&ours[key]), f(&theirs[key]));
    format!("{} / {} | {}", tps(a), tps(b), ratio(a, b))
}

fn tps(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.1}"))
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_string(),
    }
}

/// `cargo xtask bench [--report-only | --organism-only | --ort-web-only]`; `--report-only`
/// rewrites `bench/RESULTS.md` from the last run's `bench/results.json` without measuring
/// anything; the `-only` options rerun one part (see the module docs).
pub fn bench(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        None => measure(root),
        Some("--report-only") => {
            let path = root.join("bench/results.json");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let md = results_markdown(&serde_json::from_str(&text)?);
            std::fs::write(root.join("bench/RESULTS.md"), &md)?;
            print!("{md}");
            Ok(())
        }
        Some("--organism-only") => {
            setup::all(root, setup::Needs::Serve)?;
            crate::run(cargo().args(["build", "--release", "-p", "hawthorne-cli"]))?;
            build_web(root)?;
            rerun_part(root, "organism", organism)
        }
        Some("--browser-only") => {
            setup::all(root, setup::Needs::Everything)?;
            browser_only(root)
        }
        Some("--ort-web-only") => {
            setup::all(root, setup::Needs::Everything)?;
            rerun_part(root, "ort_web", ort_web_part)
        }
        Some(other) => bail!("unknown bench option `{other}` (expected nothing, --report-only, --organism-only, --browser-only or --ort-web-only)"),
    }
}

/// `?threads=` for the threaded rows: the page caps it at the core count (and 8).
const MAX_THREADS: u32 = 8;

/// The copies `bench/quantize.py` makes with llama.cpp's quantiser.
const COPIES: [&str; 2] = ["Q8_0", "Q4_K_M"];

fn measure(root: &Path) -> Result<()> {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    setup::all(root, setup::Needs::Everything)?;
    llama_cpp_python()?;
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let model = root.join("models").join(setup::SMOLLM2_FILE);
    let prompt = root.join("bench/prompt.json");

    // Build everything first (one cargo command at a time), so that timing runs do not compete
    // with our own compiler.
    crate::run(cargo().args([
        "build",
        "--release",
        "-p",
        "hawthorne-model",
        "--example",
        "bench_native",
    ]))?;
    crate::run(cargo().args(["bench", "-p", "hawthorne-model", "--bench", "engine", "--no-run"]))?;
    crate::run(cargo().args(["build", "--release", "-p", "hawthorne-onnx", "--example", "bench_ort"]))?;
    setup::onnxruntime(root)?;
    build_web(root)?;

    // The 1-minute load average as each part starts: other work on the machine shows up here.
    let mut loads = serde_json::Map::new();
    loads.insert("native".into(), json!(load_average()));
    let started = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();

    // 3. Peak RSS (a process of its own) and the prompt ids.
    let native = run_json(
        Command::new(root.join("target/release/examples/bench_native"))
            .arg(&model)
            .arg(&prompt),
    )?;
    let ids_file = out_dir.join("prompt_ids.json");
    std::fs::write(&ids_file, serde_json::to_string(&native["ids"])?)?;

    // 1. The engine natively, under criterion.
    let criterion_dir = out_dir.join("criterion");
    if criterion_dir.exists() {
        std::fs::remove_dir_all(&criterion_dir).context("clearing old criterion results")?;
    }
    crate::run(
        cargo()
            .args(["bench", "-p", "hawthorne-model", "--bench", "engine"])
            .env("CRITERION_HOME", &criterion_dir)
            .env("HAWTHORNE_SMOLLM2", &model),
    )?;
    let mut engine = BTreeMap::new();
    for (key, group, name, tokens) in [
        ("smollm2_prefill", "smollm2", "prefill_128", 128.0),
        ("smollm2_decode", "smollm2", "decode_step_kv128", 1.0),
        ("smollm2_decode_kv1024", "smollm2", "decode_step_kv1024", 1.0),
        ("tiny_prefill", "tiny", "prefill_128", 128.0),
        ("tiny_decode", "tiny", "decode_step_kv127", 1.0),
    ] {
        let (s, lo, hi) = criterion_median(&criterion_dir, group, name)?;
        engine.insert(
            key,
            json!({ "seconds": s, "tok_s": tokens / s, "tok_s_ci95": [tokens / hi, tokens / lo] }),
        );
    }

    // 2. llama.cpp, right after, on the same ids.
    loads.insert("llama_cpp".into(), json!(load_average()));
    let llama_on = |file: &Path| {
        run_json(
            Command::new("python3")
                .arg(root.join("bench/llama_cpp.py"))
                .arg("--model")
                .arg(file)
                .arg("--ids")
                .arg(&ids_file),
        )
    };
    let llama = llama_on(&model)?;

    // 2b. Copies that llama.cpp's own quantiser makes from the Q4_1 file, through both engines.
    loads.insert("copies".into(), json!(load_average()));
    let copies = crate::wllama::quantized_copies(root)?;
    let mut copy_files = Vec::new();
    let mut engine_copies = serde_json::Map::new();
    let mut llama_copies = serde_json::Map::new();
    for quant in COPIES {
        let path = PathBuf::from(
            copies["copies"][quant]["path"]
                .as_str()
                .with_context(|| format!("bench/quantize.py gave no path for the {quant} copy"))?,
        );
        let dir = out_dir.join(format!("criterion-{quant}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        crate::run(
            cargo()
                .args(["bench", "-p", "hawthorne-model", "--bench", "engine", "--", "smollm2/(prefill_128|decode_step_kv128)$"])
                .env("CRITERION_HOME", &dir)
                .env("HAWTHORNE_SMOLLM2", &path),
        )?;
        let (pre, _, _) = criterion_median(&dir, "smollm2", "prefill_128")?;
        let (dec, _, _) = criterion_median(&dir, "smollm2", "decode_step_kv128")?;
        engine_copies.insert(quant.into(), json!({ "prefill_tok_s": 128.0 / pre, "decode_tok_s": 1.0 / dec }));
        llama_copies.insert(quant.into(), llama_on(&path)?);
        copy_files.push((quant, path));
    }

    // 3b. ONNX Runtime on the exported graph, same ids.
    loads.insert("ort".into(), json!(load_average()));
    let ort = run_json(
        Command::new(root.join("target/release/examples/bench_ort"))
            .arg(&model)
            .arg(&ids_file),
    )?;

    // 4. The page in headless Chromium, and wllama next to it.
    loads.insert("browser".into(), json!(load_average()));
    let browser_parts = browser_parts(root, &model, &copy_files)?;
    loads.insert("wllama".into(), browser_parts["wllama_load_average"].clone());

    // 7. ONNX Runtime Web (its page needs the prompt ids from part 3).
    let ort_web = ort_web_part(root)?;
    // The ort-bench build leaves the app's dist/ in place; rebuild it anyway so part 6 runs
    // on exactly the page `build-web` makes.
    build_web(root)?;

    // 6. The workshop path.
    crate::run(cargo().args(["build", "--release", "-p", "hawthorne-cli"]))?;
    let organism = organism(root)?;

    // 5. Bundle sizes.
    let mut wasm_files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(root.join("dist/pkg"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        wasm_files
            .push(json!({ "file": name, "bytes": std::fs::metadata(&p)?.len(), "gzip_bytes": gzipped_size(&p)? }));
    }

    let lscpu = capture("lscpu", &[]).unwrap_or_default();
    let results = json!({
        "date": started,
        "machine": {
            "cpu": lscpu_field(&lscpu, "Model name"),
            "cpus": lscpu_field(&lscpu, "CPU(s)"),
            "threads_per_core": lscpu_field(&lscpu, "Thread(s) per core"),
            "load_average": { "at": loads, "end": load_average() },
        },
        "rustc": capture("rustc", &["--version"]),
        "rayon_num_threads": 1,
        "engine": engine,
        "native_process": native,
        "llama_cpp": llama,
        "ort": ort,
        "browser": browser_parts["browser"],
        "browser_threads": browser_parts["browser_threads"],
        "copies": copies,
        "engine_copies": engine_copies,
        "llama_cpp_copies": llama_copies,
        "wllama": browser_parts["wllama"],
        "browser_copies": browser_parts["browser_copies"],
        "wasm_files": wasm_files,
        "organism": organism,
        "ort_web": ort_web,
    });
    std::fs::write(
        root.join("bench/results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let md = results_markdown(&results);
    std::fs::write(root.join("bench/RESULTS.md"), &md)?;
    print!("{md}");
    eprintln!("wrote bench/RESULTS.md and bench/results.json");
    Ok(())
}

/// Part 4: the worker in headless Chromium on the Q4_1 file with one thread (the
/// single-threaded build) and with as many as the isolated page allows; wllama on the Q4_1
/// file and the copies (part 4b); then the worker on the copies, served from the wllama
/// page's folder, which part 4b fills. Expects `dist/` built.
fn browser_parts(root: &Path, model: &Path, copy_files: &[(&str, PathBuf)]) -> Result<serde_json::Map<String, Value>> {
    let server = serve::spawn(root, 0)?;
    let page_bench = |model: Option<&str>, threads: Option<u32>, runs: u32| {
        let mut cmd = Command::new("node");
        cmd.arg(root.join("bench/browser.mjs"))
            .current_dir(root)
            .env("HAWTHORNE_URL", format!("http://127.0.0.1:{}", server.port))
            .env("BENCH_RUNS", runs.to_string())
            .env("CHROMIUM", setup::CHROMIUM);
        if let Some(m) = model {
            cmd.env("BENCH_MODEL", m);
        }
        if let Some(t) = threads {
            cmd.env("BENCH_THREADS", t.to_string());
        }
        run_json(&mut cmd)
    };
    let mut out = serde_json::Map::new();
    out.insert("browser".into(), page_bench(None, Some(1), 3)?);
    out.insert("browser_threads".into(), page_bench(None, Some(MAX_THREADS), 2)?);
    out.insert("wllama_load_average".into(), json!(load_average()));
    let mut files = vec![model.to_path_buf()];
    files.extend(copy_files.iter().map(|(_, p)| p.clone()));
    out.insert("wllama".into(), crate::wllama::wllama_part(root, &files, 1)?);
    let mut browser_copies = serde_json::Map::new();
    for (quant, path) in copy_files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let url = format!("wllama-bench/models/{name}");
        browser_copies.insert(
            (*quant).into(),
            json!({ "1": page_bench(Some(&url), Some(1), 1)?, "max": page_bench(Some(&url), Some(MAX_THREADS), 1)? }),
        );
    }
    out.insert("browser_copies".into(), Value::Object(browser_copies));
    Ok(out)
}

/// `--browser-only`: reruns part 4 on a fresh `build-web` and merges it into
/// `bench/results.json`; the other parts keep their numbers and date.
fn browser_only(root: &Path) -> Result<()> {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let path = root.join("bench/results.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut results: Value = serde_json::from_str(&text)?;
    build_web(root)?;
    let model = root.join("models").join(setup::SMOLLM2_FILE);
    let mut copy_files = Vec::new();
    for quant in COPIES {
        let p = results["copies"]["copies"][quant]["path"]
            .as_str()
            .with_context(|| format!("bench/results.json has no {quant} copy: run the whole benchmark first"))?;
        copy_files.push((quant, PathBuf::from(p)));
    }
    let started = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load = load_average();
    let mut parts = browser_parts(root, &model, &copy_files)?;
    results["machine"]["load_average"]["at"]["browser"] = json!(load);
    results["machine"]["load_average"]["at"]["wllama"] = parts.remove("wllama_load_average").unwrap_or(Value::Null);
    results["browser_rerun"] = json!({ "date": started, "load_average_end": load_average() });
    for (k, v) in parts {
        results[k.as_str()] = v;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    let md = results_markdown(&results);
    std::fs::write(root.join("bench/RESULTS.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// Reruns one part and merges it into `bench/results.json` under `key`, then rewrites
/// `bench/RESULTS.md`; the other parts keep the numbers (and dates) of their last run.
fn rerun_part(root: &Path, key: &str, part: fn(&Path) -> Result<Value>) -> Result<()> {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let path = root.join("bench/results.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut results: Value = serde_json::from_str(&text)?;
    results[key] = part(root)?;
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    let md = results_markdown(&results);
    std::fs::write(root.join("bench/RESULTS.md"), &md)?;
    print!("{md}");
    Ok(())
}

/// Part 7: builds the ort-web page and runs `bench/ort-web.mjs`, with its own date and load.
fn ort_web_part(root: &Path) -> Result<Value> {
    crate::ort_web::build(root)?;
    let date = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load_start = load_average();
    let server = serve::spawn(root, 0)?;
    let browser = run_json(
        Command::new("node")
            .arg(root.join("bench/ort-web.mjs"))
            .current_dir(root)
            .env("HAWTHORNE_URL", format!("http://127.0.0.1:{}", server.port))
            .env("CHROMIUM", setup::CHROMIUM),
    )?;
    Ok(json!({ "date": date, "load_average": { "start": load_start, "end": load_average() }, "browser": browser }))
}

/// Part 6: the default organism experiment natively (median of three `hawthorne run`s, the
/// report's own `timings.total_run`) and in the page (`bench/organism.mjs`), with its own date
/// and load average since it can be rerun alone.
fn organism(root: &Path) -> Result<Value> {
    let date = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    let load_start = load_average();
    let spec = root.join("examples/organism-deceptive.json");
    let out = root.join("target/bench/organism-run");
    let mut native = Vec::new();
    for _ in 0..3 {
        crate::run(Command::new(root.join("target/release/hawthorne")).arg("run").arg(&spec).arg("--quiet").arg("--out").arg(&out))?;
        let report: Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json"))?)?;
        native.push(report["timings"]["total_run"].as_f64().context("report has timings.total_run")?);
    }
    native.sort_by(f64::total_cmp);
    let server = serve::spawn(root, 0)?;
    let browser = run_json(
        Command::new("node")
            .arg(root.join("bench/organism.mjs"))
            .current_dir(root)
            .env("HAWTHORNE_URL", format!("http://127.0.0.1:{}", server.port))
            .env("CHROMIUM", setup::CHROMIUM),
    )?;
    Ok(json!({
        "date": date,
        "load_average": { "start": load_start, "end": load_average() },
        "native_run_ms": native[1],
        "native_runs_ms": native,
        "browser": browser,
    }))
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The committed report: one table, then the conditions the numbers were taken under.
/// The Q4_1 file and llama.cpp's Q8_0 and Q4_K_M copies of it: our engine against llama.cpp
/// natively, the worker against wllama in the same Chromium, and the targets.
fn peers_markdown(r: &Value) -> String {
    let mut s = String::new();
    let copies = &r["copies"];
    if copies.is_null() {
        return s;
    }
    let types = |v: &Value| {
        v["tensor_types"]
            .as_object()
            .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    // (label, our native, llama.cpp, worker 1 thread, worker max threads, tensor types)
    let mut files: Vec<(String, Value, Value, Value, Value, String)> = vec![(
        "Q4_1 (the shipped file)".into(),
        json!({ "prefill_tok_s": r["engine"]["smollm2_prefill"]["tok_s"], "decode_tok_s": r["engine"]["smollm2_decode"]["tok_s"] }),
        r["llama_cpp"].clone(),
        r["browser"].clone(),
        r["browser_threads"].clone(),
        types(&copies["source"]),
    )];
    for q in COPIES {
        files.push((
            format!("{q} (llama.cpp's quantiser)"),
            r["engine_copies"][q].clone(),
            r["llama_cpp_copies"][q].clone(),
            r["browser_copies"][q]["1"].clone(),
            r["browser_copies"][q]["max"].clone(),
            types(&copies["copies"][q]),
        ));
    }
    let _ = writeln!(s, "
## Every file against its peer: llama.cpp natively, wllama in the same Chromium
");
    let _ = writeln!(
        s,
        "`bench/quantize.py` makes Q8_0 and Q4_K_M copies of the Q4_1 file with llama.cpp's own quantiser \
         (`llama_model_quantize`, requantising). SmolLM2's width, 576, is not a multiple of 256, so \
         llama.cpp's Q4_K_M keeps K-quants only where rows allow and falls back to Q5_0 and Q8_0 elsewhere. \
         Natively: criterion medians for ours, medians of repeated runs for llama.cpp, one thread each.\n"
    );
    let _ = writeln!(s, "| File | Tensor types | Prefill ours / llama.cpp (tok/s) | ratio | Decode ours / llama.cpp (tok/s) | ratio |");
    let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: |");
    for (label, ours, ll, _, _, ty) in &files {
        let (pre, dec) = (versus(ours, ll, "prefill_tok_s"), versus(ours, ll, "decode_tok_s"));
        let _ = writeln!(s, "| {label} | {ty} | {pre} | {dec} |");
    }
    let wl = &r["wllama"];
    let wrow = |file: &str, threads: u64| {
        wl["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|row| row["file"].as_str() == Some(file) && row["threads"].as_u64() == Some(threads))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let file_name = |i: usize| {
        if i == 0 {
            setup::SMOLLM2_FILE.to_string()
        } else {
            copies["copies"][COPIES[i - 1]]["path"]
                .as_str()
                .and_then(|p| Path::new(p).file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
    };
    let _ = writeln!(
        s,
        "\nIn headless Chromium (Chromium {}), the same 128 prompt ids, 32 greedy tokens: the page's worker \
         (`bench/browser.mjs`; one thread is the single-threaded build, the page's default; the other row is the \
         threaded build with every core the isolated page allows, `?threads=8`) against wllama {} (`bench/wllama.mjs`: \
         llama.cpp compiled to wasm with SIMD and threads, served from this origin, `n_threads` set explicitly; \
         its speeds are llama.cpp's own timings, its memory the wasm memory after loading). \
         Native llama.cpp on the same file is the bar.\n",
        r["browser"]["browser"].as_str().unwrap_or("?"),
        wl["wllama_version"].as_str().unwrap_or("3.8.1"),
    );
    let _ = writeln!(
        s,
        "| File | Threads | Prefill worker / wllama (tok/s) | ratio | × native llama.cpp | Decode worker / wllama (tok/s) | ratio | × native llama.cpp | Memory worker / wllama |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, (label, _, ll, one, max, _)) in files.iter().enumerate() {
        let name = file_name(i);
        let max_threads = max["threads"].as_u64().unwrap_or(1);
        for (threads, ours) in [(1u64, one), (max_threads, max)] {
            if ours.is_null() || (threads == 1 && std::ptr::eq(ours, max)) {
                continue;
            }
            let w = wrow(&name, threads);
            let native = |k: &str| ratio(f(&ours[k]), f(&ll[k]));
            let _ = writeln!(
                s,
                "| {label} | {threads} | {} | {} | {} | {} | {} / {} |",
                versus(ours, &w, "prefill_tok_s"),
                native("prefill_tok_s"),
                versus(ours, &w, "decode_tok_s"),
                native("decode_tok_s"),
                f(&ours["wasm_memory_bytes"]).map_or("–".into(), mib),
                f(&w["wasm_memory_after_load_bytes"]).map_or("–".into(), mib),
            );
        }
    }

    // The targets, each with its measured value and the margin.
    let (e, l, b, n) = (&r["engine"], &r["llama_cpp"], &r["browser"], &r["native_process"]);
    let wq = wrow(setup::SMOLLM2_FILE, 1);
    let _ = writeln!(s, "\n### Targets (SmolLM2 Q4_1, one thread)\n");
    let _ = writeln!(s, "| Target | Measured | Met |");
    let _ = writeln!(s, "| --- | ---: | --- |");
    let mut target = |name: &str, value: Option<f64>, bar: Option<f64>, higher: bool, unit: &str| {
        let shown = value.map_or("–".into(), |v| format!("{v:.2}{unit}"));
        let met = match (value, bar) {
            (Some(v), Some(b)) if (higher && v >= b) || (!higher && v <= b) => "yes".to_string(),
            (Some(v), Some(b)) => format!("no, {:.0}% short", 100.0 * if higher { 1.0 - v / b } else { v / b - 1.0 }),
            _ => "not measured".to_string(),
        };
        let _ = writeln!(s, "| {name} | {shown} | {met} |");
    };
    let mem_mib = |v: &Value| f(v).map(|x| x / 1048576.0);
    target("Worker memory after load ≤ 200 MiB", mem_mib(&b["wasm_memory_bytes"]), Some(200.0), false, " MiB");
    target(
        "Worker memory below wllama's on the same file",
        mem_mib(&b["wasm_memory_bytes"]),
        mem_mib(&wq["wasm_memory_after_load_bytes"]),
        false,
        " MiB",
    );
    target("Native peak RSS ≤ 250 MiB", mem_mib(&n["peak_rss_bytes"]), Some(250.0), false, " MiB");
    let rt = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    target(
        "Native decode ≥ 1.0× llama.cpp",
        rt(f(&e["smollm2_decode"]["tok_s"]), f(&l["decode_tok_s"])),
        Some(1.0),
        true,
        "×",
    );
    target(
        "Native prefill ≥ 1.0× llama.cpp",
        rt(f(&e["smollm2_prefill"]["tok_s"]), f(&l["prefill_tok_s"])),
        Some(1.0),
        true,
        "×",
    );
    target("Browser decode ≥ 0.7× native llama.cpp", rt(f(&b["decode_tok_s"]), f(&l["decode_tok_s"])), Some(0.7), true, "×");
    target("Browser prefill ≥ 0.7× native llama.cpp", rt(f(&b["prefill_tok_s"]), f(&l["prefill_tok_s"])), Some(0.7), true, "×");
    let worst = |key: &str| {
        let mut worst: Option<f64> = None;
        for (i, (_, _, _, one, max, _)) in files.iter().enumerate() {
            for (threads, ours) in [(1u64, one), (max["threads"].as_u64().unwrap_or(1), max)] {
                if let Some(x) = rt(f(&ours[key]), f(&wrow(&file_name(i), threads)[key])) {
                    worst = Some(worst.map_or(x, |w: f64| w.min(x)));
                }
            }
        }
        worst
    };
    target("Ahead of wllama on every file and thread count: prefill (worst ratio)", worst("prefill_tok_s"), Some(1.0), true, "×");
    target("Ahead of wllama on every file and thread count: decode (worst ratio)", worst("decode_tok_s"), Some(1.0), true, "×");
    target("Page main thread while the worker generates < 10%", f(&b["main_thread_share"]).map(|x| 100.0 * x), Some(10.0), false, "%");
    s
}

fn results_markdown(r: &Value) -> String {
    let e = &r["engine"];
    let (l, b, n, m) = (&r["llama_cpp"], &r["browser"], &r["native_process"], &r["machine"]);
    let ours_pre = f(&e["smollm2_prefill"]["tok_s"]);
    let ours_dec = f(&e["smollm2_decode"]["tok_s"]);
    let ll_pre = f(&l["prefill_tok_s"]);
    let ll_dec = f(&l["decode_tok_s"]);
    let ci = |k: &str| {
        let c = &e[k]["tok_s_ci95"];
        match (f(&c[0]), f(&c[1])) {
            (Some(lo), Some(hi)) => format!("criterion median, 95% CI {lo:.1}–{hi:.1}"),
            _ => String::new(),
        }
    };
    let spread = |runs: &Value, per: f64| {
        let xs: Vec<f64> = runs
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0, f64::max);
        if xs.is_empty() {
            String::new()
        } else {
            format!(
                "median of {} runs, range {:.1}–{:.1}",
                xs.len(),
                per * 1e3 / hi,
                per * 1e3 / lo
            )
        }
    };
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmark results\n");
    let _ = writeln!(
        s,
        "SmolLM2-135M-Instruct (`models/{}`, Q4_1), a 128-token chat prompt (`bench/prompt.json` under the \
         chat template), batch 1, one thread (`RAYON_NUM_THREADS=1`, llama.cpp `n_threads=1`). \
         Both engines keep the file's matrices packed: ours multiplies Q4_1 with its own kernels \
         (AVX2 natively, simd128 in wasm) and the Q8_0 embedding with candle's, with 8-bit block \
         activations as llama.cpp does; the ONNX rows use f32 weights. \
         Produced by `cargo xtask bench`; raw numbers in `bench/results.json`.\n",
        setup::SMOLLM2_FILE
    );
    let _ = writeln!(s, "| Measure | Value | Notes |");
    let _ = writeln!(s, "| --- | ---: | --- |");
    let mut row = |k: &str, v: String, note: String| {
        let _ = writeln!(s, "| {k} | {v} | {note} |");
    };
    row(
        "Native prefill, 128 tokens (tok/s)",
        tps(ours_pre),
        ci("smollm2_prefill"),
    );
    row(
        "Native decode, KV cache of 128 (tok/s)",
        tps(ours_dec),
        ci("smollm2_decode"),
    );
    row(
        "Native decode, KV cache of 1024 (tok/s)",
        tps(f(&e["smollm2_decode_kv1024"]["tok_s"])),
        ci("smollm2_decode_kv1024"),
    );
    row(
        "llama.cpp prefill (tok/s)",
        tps(ll_pre),
        spread(&l["prefill_ms_runs"], 128.0),
    );
    row(
        "llama.cpp decode (tok/s)",
        tps(ll_dec),
        spread(&l["decode_ms_runs"], 1.0),
    );
    row(
        "Prefill ratio, ours / llama.cpp",
        ratio(ours_pre, ll_pre),
        String::new(),
    );
    row("Decode ratio, ours / llama.cpp", ratio(ours_dec, ll_dec), String::new());
    let o = &r["ort"];
    if !o.is_null() {
        let ort_pre = f(&o["ort_prefill_tok_s"]);
        let cand_all = f(&o["candle_all_outputs_prefill_tok_s"]);
        row(
            "ONNX Runtime prefill, exported graph (tok/s)",
            tps(ort_pre),
            format!(
                "ORT {}, 1 intra-op thread; logits at every position + all {} residual layers out; {}",
                o["ort_version"].as_str().unwrap_or("?"),
                "31",
                spread(&o["ort_prefill_ms_runs"], 128.0)
            ),
        );
        row(
            "Candle prefill, same outputs as the graph (tok/s)",
            tps(cand_all),
            format!("same process, {}", spread(&o["candle_all_outputs_prefill_ms_runs"], 128.0)),
        );
        row("Prefill ratio, ONNX Runtime / candle (same outputs)", ratio(ort_pre, cand_all), String::new());
        row("Prefill ratio, ONNX Runtime / llama.cpp", ratio(ort_pre, ll_pre), String::new());
        row(
            "ONNX export of SmolLM2: size / export / session start",
            format!(
                "{} / {:.0} ms / {:.0} ms",
                f(&o["onnx_bytes"]).map_or("–".into(), mib),
                f(&o["export_ms"]).unwrap_or(f64::NAN),
                f(&o["session_ms"]).unwrap_or(f64::NAN)
            ),
            format!("f32 weights; ORT's next token after the prompt: {}", o["ort_next_token"]),
        );
    }
    row(
        "wasm prefill, headless Chromium (tok/s)",
        tps(f(&b["prefill_tok_s"])),
        format!(
            "{} prompt tokens; median of {} replies in {} page loads",
            b["prompt_tokens"],
            b["chats"].as_array().map_or(0, Vec::len),
            b["runs"]
        ),
    );
    row(
        "wasm decode, headless Chromium (tok/s)",
        tps(f(&b["decode_tok_s"])),
        format!("tokens 2–{} of the reply, KV cache from 128", b["max_tokens"]),
    );
    row(
        "Page main thread during a chat (share of wall time)",
        f(&b["main_thread_share"]).map_or("–".into(), |x| format!("{:.1}%", 100.0 * x)),
        "CDP TaskDuration from Send to the last reply (prefill included), no report on screen".into(),
    );
    row(
        "Peak native RSS, load + 128-token prefill",
        f(&n["peak_rss_bytes"]).map_or("–".into(), mib),
        format!(
            "VmHWM; after loading {} (RSS {}; tensors read one at a time, never the whole file)",
            f(&n["peak_rss_after_load_bytes"]).map_or("–".into(), mib),
            f(&n["rss_after_load_bytes"]).map_or("–".into(), mib)
        ),
    );
    row(
        "wasm memory after loading",
        f(&b["wasm_memory_bytes"]).map_or("–".into(), mib),
        "the worker's linear memory".into(),
    );
    for w in r["wasm_files"].as_array().into_iter().flatten() {
        row(
            &format!("`dist/pkg/{}` raw / gzip -9", w["file"].as_str().unwrap_or("?")),
            format!(
                "{} / {}",
                f(&w["bytes"]).map_or("–".into(), kib),
                f(&w["gzip_bytes"]).map_or("–".into(), kib)
            ),
            String::new(),
        );
    }
    row(
        "Load time: native / llama.cpp / browser",
        format!(
            "{:.0} / {:.0} / {:.0} ms",
            f(&n["load_ms"]).unwrap_or(f64::NAN),
            f(&l["load_ms"]).unwrap_or(f64::NAN),
            f(&b["load_ms"]).unwrap_or(f64::NAN)
        ),
        "file read + packed copy + tokenizer; the browser's includes fetching 98 MB from 127.0.0.1".into(),
    );
    row(
        "Tiny random model: prefill / decode (tok/s)",
        format!(
            "{} / {}",
            tps(f(&e["tiny_prefill"]["tok_s"])),
            tps(f(&e["tiny_decode"]["tok_s"]))
        ),
        "2 layers, d_model 32; its context is 128, so the decode step sees 127 cached positions".into(),
    );

    s.push_str(&peers_markdown(r));
    let w = &r["ort_web"];
    if !w.is_null() {
        let wb = &w["browser"];
        let ort_web = f(&wb["prefill_tok_s"]);
        let candle_web = f(&b["prefill_tok_s"]);
        let _ = writeln!(s, "\n## ONNX Runtime Web against the candle worker, same Chromium\n");
        let _ = writeln!(
            s,
            "`bench/ort-web.mjs`: the exported SmolLM2 graph (f32) through `ort` + `ort-web` (onnxruntime-web {}, \
             served from this origin with SRI hashes, telemetry off) on the page `cargo xtask build-ort-bench` \
             builds, {} browser launches, median of 5 prefills each after a warm-up; the same 128 prompt ids. \
             Cross-origin isolated: {} (so ONNX Runtime Web runs one thread, like the worker). Measured {} (load \
             average {} at the start, {} at the end); the candle worker's column is part 4 of the run dated {}, \
             in the same Chromium build.\n",
            "1.30.0",
            wb["runs"],
            wb["cross_origin_isolated"],
            w["date"].as_str().unwrap_or("?"),
            load_opt(&w["load_average"]["start"]),
            load_opt(&w["load_average"]["end"]),
            r["date"].as_str().unwrap_or("?")
        );
        let _ = writeln!(s, "| Measure | ONNX Runtime Web | candle worker (wasm) | ratio |");
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        let _ = writeln!(
            s,
            "| Prefill, 128 tokens (tok/s) | {} | {} | {} |",
            tps(ort_web),
            tps(candle_web),
            ratio(ort_web, candle_web)
        );
        let (wl, cl) = (f(&wb["load_ms"]), f(&b["load_ms"]));
        let _ = writeln!(
            s,
            "| Load (ms) | {} | {} | {} |",
            wl.map_or("–".into(), |x| format!("{x:.0}")),
            cl.map_or("–".into(), |x| format!("{x:.0}")),
            match (wl, cl) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "–".into(),
            }
        );
        let _ = writeln!(
            s,
            "\nONNX Runtime Web's prefill returns logits at every position and all 31 residual layers (the exported \
             interface); the worker's returns the last position's logits. ONNX Runtime Web's load is session creation \
             from the {} f32 graph's URL; the worker's is fetching the 98 MB Q4_1 GGUF and copying its packed tensors. Next \
             token after the prompt: ONNX Runtime Web {}, the native engine {}.",
            f(&r["ort"]["onnx_bytes"]).map_or("–".into(), mib),
            wb["next_token"],
            n["next_token"]
        );
    }

    let o = &r["organism"];
    if !o.is_null() {
        let ob = &o["browser"];
        let ms = |v: &Value| f(v).map_or("–".into(), |x| format!("{x:.0} ms"));
        let _ = writeln!(s, "\n## The workshop path: default page and default organism experiment\n");
        let _ = writeln!(
            s,
            "`bench/organism.mjs` in headless Chromium on 127.0.0.1: {} fresh browser launches, {} runs of \
             the page's default experiment (`examples/organism-deceptive.json`: 150 prompts, 5 hooks, \
             probes with baselines, behaviour, logit lens, patching, steering sweep, PCA) per launch. \
             Measured {} (load average {} at the start, {} at the end).\n",
            ob["launches"], ob["experiments_per_launch"], o["date"].as_str().unwrap_or("?"),
            load_opt(&o["load_average"]["start"]), load_opt(&o["load_average"]["end"])
        );
        let _ = writeln!(s, "| Measure | Value | Target | Notes |");
        let _ = writeln!(s, "| --- | ---: | ---: | --- |");
        let _ = writeln!(s, "| Controls rendered | {} | | from navigation start |", ms(&ob["ui_ms"]));
        let _ = writeln!(
            s,
            "| Time to interactive | {} | < 2000 ms | navigation start → organism loaded in the worker and Run enabled |",
            ms(&ob["interactive_ms"])
        );
        let _ = writeln!(
            s,
            "| Default experiment, browser worker | {} | < 1000 ms | the worker's `timings.total_run`; click → report on screen {} |",
            ms(&ob["run_ms"]),
            ms(&ob["run_wall_ms"])
        );
        let _ = writeln!(s, "| Default experiment, native CLI | {} | | median of 3 `hawthorne run`s |", ms(&o["native_run_ms"]));
        let stages = ob["stage_ms"].as_object().map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "total_run")
                .map(|(k, v)| format!("{k} {}", ms(v)))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let _ = writeln!(s, "\nBrowser time by stage (medians): {}.", stages.unwrap_or_default());
    }

    let _ = writeln!(s, "\n## Conditions\n");
    let _ = writeln!(s, "- Date: {}", r["date"].as_str().unwrap_or("?"));
    let _ = writeln!(
        s,
        "- Machine: {}, {} CPUs ({} thread(s) per core)",
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"].as_str().unwrap_or("?"),
        m["threads_per_core"].as_str().unwrap_or("?")
    );
    let load = |v: &Value| v.as_f64().map_or("?".into(), |x| format!("{x:.2}"));
    let la = &m["load_average"];
    let _ = writeln!(
        s,
        "- Load average (1 min) as each part started: native {}, llama.cpp {}, ONNX Runtime {}, browser {}; at the end {}",
        load(&la["at"]["native"]),
        load(&la["at"]["llama_cpp"]),
        load(&la["at"]["ort"]),
        load(&la["at"]["browser"]),
        load(&la["end"])
    );
    if let Some(date) = r["browser_rerun"]["date"].as_str() {
        let _ = writeln!(
            s,
            "- The browser part (the worker and wllama) was rerun alone on {date} (`cargo xtask bench --browser-only`), \
             load average {} at its start and {} at its end, on the engine of this commit; the other parts are from the date above.",
            load(&la["at"]["browser"]),
            load(&r["browser_rerun"]["load_average_end"])
        );
    }
    let _ = writeln!(
        s,
        "- {}; llama-cpp-python {}; Chromium {}",
        r["rustc"].as_str().unwrap_or("rustc ?"),
        l["llama_cpp_python"].as_str().unwrap_or("?"),
        b["browser"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "- llama.cpp runs with `use_extra_bufts = False`: its AMX weight repacking segfaults on this \
         virtual machine, so it uses its plain quantised CPU kernels (Q4_1 weights × Q8_1 activations)."
    );
    let _ = writeln!(
        s,
        "- Next token after the prompt: ours {}, llama.cpp {} (a sanity check that both ran the same ids).",
        n["next_token"], l["next_token"]
    );
    let _ = writeln!(
        s,
        "- The machine may be shared: other processes (compilers, training runs) running during a \
         benchmark slow every number here and widen its spread. The benchmark itself adds about 1 \
         to the load average, so on 2 CPUs a load well above 1 means other work competed for the \
         cores and the memory bandwidth. Compare ratios from the same run rather than absolute \
         numbers across runs."
    );
    let _ = writeln!(
        s,
        "- Browser prefill is the page's own timing of the generator's first step (the prompt's \
         forward pass and the first token); the page runs a separate forward pass before it for the \
         norm chart, which is not counted."
    );
    s
}
