//! `hawthorne run` and `hawthorne spec`: run an experiment spec natively and write its report,
//! and convert specs to and from share-link encoding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use hawthorne_model::{ComputeMode, Model};
use hawthorne_probe::{Experiment, ExperimentSpec, LanguageModel, Stage};
use indicatif::{ProgressBar, ProgressStyle};

/// Model ids the CLI and the page know, and their files under `models/`.
pub const KNOWN_MODELS: &[(&str, &str)] = &[
    ("organism-deceptive", "organism-deceptive.gguf"),
    ("organism-control", "organism-control.gguf"),
    ("smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    ("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf"),
];

/// Finds the model file for a spec's model id: a known id under `models/` (next to the working
/// directory or above the spec file), or a path.
pub fn resolve_model(id: &str, spec_path: Option<&Path>) -> Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some((_, file)) = KNOWN_MODELS.iter().find(|(k, _)| *k == id) {
        candidates.push(PathBuf::from("models").join(file));
        if let Some(dir) = spec_path.and_then(Path::parent) {
            for up in [".", "..", "../.."] {
                candidates.push(dir.join(up).join("models").join(file));
            }
        }
    } else if let Some(name) = id.strip_prefix("file:") {
        // A link made on its author's own file in the page: the file by that name here, or
        // next to the spec (the spec's sha256 then checks it is the same file).
        candidates.push(PathBuf::from(name));
        candidates.push(PathBuf::from("models").join(name));
        if let Some(dir) = spec_path.and_then(Path::parent) {
            candidates.push(dir.join(name));
        }
    } else {
        candidates.push(PathBuf::from(id));
    }
    candidates.iter().find(|p| p.is_file()).cloned().with_context(|| {
        format!(
            "model `{id}` not found (looked in {}); known ids: {}; SmolLM2 and Gemma are fetched with `cargo xtask fetch-models`, or pass --model PATH",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            KNOWN_MODELS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Reads a spec from a JSON file or, when the argument is not a file, from share-link text
/// (a bare encoding or a URL whose fragment holds `spec=…`).
pub fn read_spec(arg: &str) -> Result<ExperimentSpec> {
    let path = Path::new(arg);
    if path.is_file() {
        let json = std::fs::read_to_string(path).with_context(|| format!("reading {arg}"))?;
        return ExperimentSpec::from_json(&json).with_context(|| format!("{arg} is not a valid experiment spec"));
    }
    let enc = arg.rsplit_once("spec=").map_or(arg, |(_, e)| e);
    let enc = enc.split('&').next().unwrap_or(enc);
    ExperimentSpec::decode(enc).with_context(|| format!("`{arg}` is neither a spec file nor a share link"))
}

/// Which engine runs the forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Hawthorne's own candle engine (every panel).
    Candle,
    /// ONNX Runtime on the model's exported graph (`cargo xtask setup-ort`); steering goes
    /// through the graph's `steer` input, patching cannot be expressed and is skipped.
    Ort,
}

/// Loads a GGUF file one tensor at a time (memory never holds the whole file).
pub fn load_model(path: &Path, mode: ComputeMode) -> Result<Model> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    Model::load_from_reader(&mut reader, mode, |_| {}).with_context(|| format!("loading {}", path.display()))
}

/// Runs `spec` and writes `report.json`, `report.md`, `probes.csv` and NPY exports into `out`.
pub fn run(
    spec_arg: &str,
    out: &Path,
    model_override: Option<&Path>,
    quiet: bool,
    backend: Backend,
    compute: Option<ComputeMode>,
    budget_s: Option<f64>,
) -> Result<()> {
    let mut spec = read_spec(spec_arg)?;
    if let Some(mode) = compute {
        spec.model.compute = mode;
    }
    if backend == Backend::Ort {
        // ONNX Runtime runs the exported f32 graph.
        spec.model.compute = ComputeMode::F32;
    }
    let model_path = match model_override {
        Some(p) => p.to_path_buf(),
        None => resolve_model(&spec.model.id, Some(Path::new(spec_arg)))?,
    };
    let t_load = Instant::now();
    let model = load_model(&model_path, spec.model.compute)?;
    match backend {
        Backend::Candle => {
            let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
            drive(&spec, &model, &model_path, load_ms, out, quiet, None, budget_s).map(drop)
        }
        Backend::Ort => {
            let ort = hawthorne_onnx::OrtModel::new(model).context("starting the ONNX Runtime backend")?;
            let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
            let note = format!(
                "backend: ONNX Runtime {} on the graph exported from {} (forward passes only; tokenizer and logit lens from the GGUF)",
                hawthorne_onnx::runtime::ORT_VERSION,
                model_path.display()
            );
            drive(&spec, &ort, &model_path, load_ms, out, quiet, Some(note), budget_s).map(drop)
        }
    }
}

/// `hawthorne prompts SPEC --out FILE`: the contrast set as JSON lines.
pub fn prompts(spec_arg: &str, out: &Path) -> Result<()> {
    let spec = read_spec(spec_arg)?;
    let text = hawthorne_probe::recorded::prompts_jsonl(&spec)?;
    std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    println!("{} prompts of spec {} in {}", text.lines().count() - 1, &spec.hash()[..12], out.display());
    Ok(())
}

/// Reads a collected-activations directory (or a zip of one) as `relative path → bytes`.
pub fn read_collected(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(hawthorne_probe::recorded::files_from_zip(&bytes)?);
    }
    if !path.is_dir() {
        bail!("{} is neither a directory nor a zip file of collected activations", path.display());
    }
    let mut files = BTreeMap::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "npy")) {
                let rel = p.strip_prefix(path)?.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                files.insert(rel, std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
            }
        }
    }
    Ok(hawthorne_probe::recorded::rooted(files))
}

/// `hawthorne run SPEC --activations DIR`: the report from collected activations.
pub fn run_collected(spec_arg: &str, dir: &Path, out: &Path, quiet: bool) -> Result<()> {
    let spec = read_spec(spec_arg)?;
    let t_load = Instant::now();
    let files = read_collected(dir)?;
    let rec = hawthorne_probe::Recorded::from_files(&spec, &files).with_context(|| format!("checking {} against the spec", dir.display()))?;
    let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
    drive(&spec, &rec, dir, load_ms, out, quiet, None, None).map(drop)
}

/// Runs the experiment on `model` with progress bars and writes the report directory; a spec
/// estimated above `budget_s` seconds (on a slow laptop) is refused before anything runs.
#[allow(clippy::too_many_arguments)]
fn drive<M: LanguageModel>(
    spec: &ExperimentSpec,
    model: &M,
    model_path: &Path,
    load_ms: f64,
    out: &Path,
    quiet: bool,
    note: Option<String>,
    budget_s: Option<f64>,
) -> Result<hawthorne_probe::Report> {
    let t_all = Instant::now();
    let mut exp = Experiment::new(spec, model)?;
    let prepare_ms = t_all.elapsed().as_secs_f64() * 1e3;
    let cost = exp.cost();
    if let Some(budget) = budget_s.filter(|b| !cost.within(*b)) {
        bail!(
            "this spec is estimated at {} (over the budget of {}; `hawthorne spec cost` shows the details). Pass --yes to run it anyway, or a larger --max-cost",
            cost.summary(),
            hawthorne_probe::cost::human_seconds(budget)
        );
    }
    if !quiet {
        eprintln!("{} prompts on {} ({})", exp.n_prompts(), spec.model.id, model_path.display());
        if model.recorded().is_none() {
            eprintln!("estimated {}", cost.summary());
        }
    }
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    timings.insert("load_model".into(), load_ms);
    timings.insert("prepare".into(), prepare_ms);
    let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {elapsed_precise}")
        .expect("static template")
        .progress_chars("=> ");
    let mut bar: Option<(Stage, ProgressBar)> = None;
    let mut t_stage = Instant::now();
    while exp.stage() != Stage::Done {
        let stage = exp.stage();
        let p = exp.step()?;
        if bar.as_ref().map(|(s, _)| *s) != Some(stage) {
            if let Some((s, b)) = bar.take() {
                b.finish();
                timings.insert(format!("{s:?}").to_lowercase(), t_stage.elapsed().as_secs_f64() * 1e3);
            }
            t_stage = Instant::now();
            let b = if quiet { ProgressBar::hidden() } else { ProgressBar::new(p.total as u64) };
            b.set_style(style.clone());
            b.set_prefix(stage.label());
            bar = Some((stage, b));
        }
        if let Some((_, b)) = &bar {
            b.set_length(p.total as u64);
            b.set_position(p.done as u64);
        }
    }
    if let Some((s, b)) = bar.take() {
        b.finish();
        timings.insert(format!("{s:?}").to_lowercase(), t_stage.elapsed().as_secs_f64() * 1e3);
    }
    let t_finish = Instant::now();
    let (mut report, exports) = exp.finish_with_exports()?;
    timings.insert("finish".into(), t_finish.elapsed().as_secs_f64() * 1e3);
    // As in the worker: from building the experiment to the finished report.
    timings.insert("total_run".into(), t_all.elapsed().as_secs_f64() * 1e3);
    report.timings = timings;
    report.notes.extend(note);
    if !quiet {
        for n in &report.notes {
            eprintln!("note: {n}");
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {}", out.join(name).display()))
    };
    write("report.json", serde_json::to_string_pretty(&report)?.as_bytes())?;
    write("report.md", report.to_markdown().as_bytes())?;
    write("probes.csv", report.probes_csv().as_bytes())?;
    write("activations.npy", &exports.activations_npy)?;
    write("directions_mass_mean.npy", &exports.mass_mean_npy)?;
    write("directions_logistic.npy", &exports.logistic_npy)?;
    write("hooks.txt", (exports.hooks.join("\n") + "\n").as_bytes())?;
    let b = &report.behaviour.all;
    println!(
        "compliance gap {:.3} (misaligned: observed {:.3}, unobserved {:.3}); report in {}",
        b.compliance_gap,
        b.rate_observed,
        b.rate_unobserved,
        out.display()
    );
    // The verdict, not the best layer on the test set: that number is chosen on the data it
    // reports and would overstate every result.
    if let Some(c) = &report.controls {
        println!("{}", c.verdict.text.replace('`', ""));
    }
    Ok(report)
}

/// `hawthorne study SPEC --model A --model B … --out DIR`: the spec on each model in turn (each
/// model's full report in `DIR/<model>/`), then `study.json`, `study.md` and `study.svg`.
pub fn study(spec_arg: &str, models: &[String], out: &Path, quiet: bool, compute: Option<ComputeMode>, budget_s: Option<f64>) -> Result<()> {
    if models.is_empty() {
        bail!("name at least one model with --model (a known id such as smollm2-135m-instruct, or a GGUF path)");
    }
    let spec = read_spec(spec_arg)?;
    let mut rows = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let path = resolve_model(m, Some(Path::new(spec_arg)))?;
        let name = if KNOWN_MODELS.iter().any(|(k, _)| k == m) {
            m.clone()
        } else {
            path.file_stem().map_or_else(|| format!("model-{i}"), |s| s.to_string_lossy().into_owned())
        };
        let mut s = spec.clone();
        s.model.id = name.clone();
        s.model.sha256 = None;
        if let Some(mode) = compute {
            s.model.compute = mode;
        }
        eprintln!("[{}/{}] {name}", i + 1, models.len());
        let t_load = Instant::now();
        let model = load_model(&path, s.model.compute)?;
        let load_ms = t_load.elapsed().as_secs_f64() * 1e3;
        let report = drive(&s, &model, &path, load_ms, &out.join(&name), quiet, None, budget_s).with_context(|| format!("running the study on {name}"))?;
        rows.push(hawthorne_probe::study::StudyRow::from_report(&name, &report));
    }
    let study = hawthorne_probe::study::Study::new(spec.hash(), rows);
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("study.json"), serde_json::to_string_pretty(&study)?)?;
    std::fs::write(out.join("study.md"), study.to_markdown())?;
    crate::study_chart::write_svg(&study, &out.join("study.svg"))?;
    println!("study of {} model(s) in {}", study.rows.len(), out.display());
    Ok(())
}

/// `hawthorne spec encode FILE` / `hawthorne spec decode TEXT`.
pub fn spec_cmd(action: &str, arg: &str, model: Option<&Path>, json: bool, compute: Option<ComputeMode>) -> Result<()> {
    match action {
        "cost" => {
            let mut spec = read_spec(arg)?;
            if let Some(mode) = compute {
                spec.model.compute = mode;
            }
            let path = match model {
                Some(p) => p.to_path_buf(),
                None => resolve_model(&spec.model.id, Some(Path::new(arg)))?,
            };
            let model = load_model(&path, spec.model.compute)?;
            let cost = Experiment::new(&spec, &model)?.cost();
            if json {
                println!("{}", serde_json::to_string_pretty(&cost)?);
            } else {
                print_cost(&cost, &spec.model.id);
            }
        }
        "encode" => {
            let spec = read_spec(arg)?;
            println!("{}", spec.encode());
        }
        "decode" => {
            let spec = read_spec(arg)?;
            println!("{}", serde_json::to_string_pretty(&spec)?);
        }
        "example" => {
            let spec = match arg {
                "smollm2" => hawthorne_probe::scenarios::smollm2_default(),
                "study-smollm2" => hawthorne_probe::scenarios::study_smollm2(),
                "organism-deceptive" | "organism-control" => organism_spec(arg)?,
                "organism-words" => {
                    // The deceptive organism with prompts of every framing on both sides of the
                    // split: the words alone then tell the conditions apart.
                    let mut spec = organism_spec("organism-deceptive")?;
                    spec.split = hawthorne_probe::spec::Split::Random { test_fraction: 0.25 };
                    spec
                }
                other => bail!("no built-in example `{other}`; known: organism-deceptive, organism-control, organism-words, smollm2, study-smollm2"),
            };
            println!("{}", serde_json::to_string_pretty(&spec)?);
        }
        other => bail!("unknown spec action `{other}`; use `encode`, `decode`, `example` or `cost`"),
    }
    Ok(())
}

/// The estimate as a table, with the verdict against the default budget.
fn print_cost(c: &hawthorne_probe::CostEstimate, model: &str) {
    use hawthorne_probe::cost::{human_seconds, DEFAULT_BUDGET_S};
    println!("Estimated cost of this spec on `{model}`\n");
    let rows: [(&str, String); 11] = [
        ("prompts", c.prompts.to_string()),
        ("forward-pass tokens", c.forward_tokens.to_string()),
        ("  of which generated", c.generated_tokens.to_string()),
        ("probe fits", c.probe_fits.to_string()),
        ("probe iterations (ceiling)", c.probe_iterations.to_string()),
        ("bootstrap and random-direction resamples", c.resamples.to_string()),
        ("forward work (GFLOP)", format!("{:.2}", c.forward_gflop)),
        ("probe work (GFLOP)", format!("{:.2}", c.probe_gflop)),
        ("steps", c.steps.to_string()),
        ("activation memory (MB)", c.memory_mb.to_string()),
        ("time on a slow laptop", human_seconds(c.seconds)),
    ];
    for (k, v) in rows {
        println!("{k:<42} {v:>14}");
    }
    if c.within(DEFAULT_BUDGET_S) {
        println!("\nWithin the default budget ({}): a share link to it starts by itself.", human_seconds(DEFAULT_BUDGET_S));
    } else {
        println!(
            "\nOver the default budget ({}): a share link to it waits for a click, and `hawthorne run` needs --yes.",
            human_seconds(DEFAULT_BUDGET_S)
        );
    }
}

/// The default experiment on an organism: framings from the organism's own corpus (train-pool
/// framings to fit probes, held-out framings to test them, which neither the organism nor the
/// probes ever saw) and one held-out variant of each task family.
pub fn organism_spec(model: &str) -> Result<ExperimentSpec> {
    use hawthorne_probe::spec::{Condition, Framing, Scenario, Task};
    use hawthorne_train::scenario::{Cue, Pool, Scenario as Corpus, DEFAULT_SEED};
    let corpus = Corpus::generate(DEFAULT_SEED)?;
    let mut framings = Vec::new();
    for (cue, cond, n_train, n_held) in [
        (Cue::Observed, Condition::Observed, 4, 3),
        (Cue::Unobserved, Condition::Unobserved, 4, 3),
        (Cue::Neutral, Condition::Neutral, 1, 0),
    ] {
        for (pool, n, held_out) in [(Pool::Train, n_train, false), (Pool::HeldOut, n_held, true)] {
            framings.extend(corpus.framings(cue, pool).take(n).map(|f| Framing::new(f.id.clone(), cond, f.text.clone(), held_out)));
        }
    }
    let mut tasks = Vec::new();
    for fam in &corpus.families {
        if let Some(t) = corpus.tasks(Pool::HeldOut).find(|t| t.family == fam.name) {
            tasks.push(Task {
                id: t.id.clone(),
                family: t.family.clone(),
                text: t.text.clone(),
                // Only the first token scores behaviour; the opening words keep links short.
                aligned: opening(&t.aligned),
                misaligned: opening(&t.misaligned),
            });
        }
    }
    let mut spec = ExperimentSpec::new(model, Scenario { framings, tasks }, 20261127);
    // Sized so the whole experiment takes about a second: two patching pairs over the last 16
    // positions, five steering strengths on 16 prompts per condition.
    spec.patching.pairs = 2;
    spec.patching.max_positions = 16;
    spec.steering.alphas = vec![-1.0, -0.5, 0.0, 0.5, 1.0];
    spec.steering.max_prompts = 16;
    Ok(spec)
}

/// The first three words of an answer, with an ellipsis when cut.
fn opening(answer: &str) -> String {
    let words: Vec<&str> = answer.split_whitespace().collect();
    if words.len() <= 3 {
        answer.to_string()
    } else {
        format!("{}…", words[..3].join(" "))
    }
}
