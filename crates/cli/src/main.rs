//! The native `hawthorne` command: experiments, chat generation, activation caching to NPY, ONNX export, and the model organisms.

mod experiment_cmd;
mod study_chart;
mod onnx_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use clap::{Parser, Subcommand};
use hawthorne_model::{ComputeMode, GenerateOptions, LogitsAt, Model, NamesFilter, RunOptions, Sampling};

mod organism;

#[derive(Parser, Debug)]
#[command(name = "hawthorne", version, about = "Probe language models for behaving differently when unobserved")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How the engine keeps the weights: `packed` (the file's GGUF quantisation; the default
    /// for `generate` and `cache`) or `f32` (dequantised, exact products, several times the
    /// memory). For `run` it overrides the spec's `model.compute`.
    #[arg(long, global = true)]
    compute: Option<ComputeMode>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run an experiment spec (a JSON file or a share link) and write its report to DIR.
    Run {
        spec: String,
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// Use this GGUF instead of the one the spec's model id names.
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        quiet: bool,
        /// The engine for forward passes: `candle` (default) or `ort` (ONNX Runtime).
        #[arg(long, value_enum, default_value = "candle")]
        backend: experiment_cmd::Backend,
        /// Refuse a spec estimated above this many seconds on a slow laptop (see `hawthorne
        /// spec cost`); the page uses the same budget before a link starts by itself.
        #[arg(long, default_value_t = hawthorne_probe::cost::DEFAULT_BUDGET_S)]
        max_cost: f64,
        /// Run even when the estimate is above `--max-cost`.
        #[arg(long)]
        yes: bool,
        /// Build the report from activations collected by another engine (a directory or zip
        /// written by `python -m hawthorne_collect` from `hawthorne prompts`) instead of
        /// running a model: probes, controls, behaviour and PCA; the stages that need a live
        /// model are listed as not run.
        #[arg(long, conflicts_with_all = ["model", "backend", "compute"])]
        activations: Option<PathBuf>,
    },
    /// Write the spec's contrast set as data (`prompts.jsonl`: a header line, then one prompt
    /// per line with its framing, condition, task, split, system and user text and answers),
    /// for collecting activations with transformers or nnsight (`python/hawthorne_collect`).
    Prompts {
        spec: String,
        #[arg(long, default_value = "prompts.jsonl")]
        out: PathBuf,
    },
    /// Run one spec on several models and write a comparison: `study.json`, a markdown table
    /// (`study.md`) with the published small-model numbers beside it, and a chart of AUROC
    /// against relative depth (`study.svg`); each model's full report goes to `OUT/<model>/`.
    Study {
        spec: String,
        /// A known model id or a GGUF path; repeat for each model.
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        #[arg(long, default_value = "study")]
        out: PathBuf,
        #[arg(long)]
        quiet: bool,
        /// Refuse a model's run estimated above this many seconds on a slow laptop.
        #[arg(long, default_value_t = hawthorne_probe::cost::DEFAULT_BUDGET_S)]
        max_cost: f64,
        /// Run even when an estimate is above `--max-cost`.
        #[arg(long)]
        yes: bool,
    },
    /// Export a model as ONNX: logits, every layer's residual stream, a steering input, and
    /// optionally a probe monitor head from a report directory.
    ExportOnnx(onnx_cmd::ExportArgs),
    /// Convert a spec between JSON and share-link encoding, or estimate what it costs.
    Spec {
        /// `encode` (JSON file → link text), `decode` (link text → JSON), `example` (print a
        /// built-in spec by name) or `cost` (tokens, probe fits, resamples, memory and seconds
        /// on a slow laptop, from the model's shape; nothing is run).
        action: String,
        /// A spec file, a share link, or link text.
        input: String,
        /// For `cost`: use this GGUF instead of the one the spec's model id names.
        #[arg(long)]
        model: Option<PathBuf>,
        /// For `cost`: print the estimate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate a chat reply and print it on stdout.
    Generate {
        /// GGUF model file.
        #[arg(long)]
        model: PathBuf,
        /// System text (the framing); empty uses the model's default system line.
        #[arg(long, default_value = "")]
        system: String,
        /// The user's request.
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 128)]
        max_tokens: usize,
        /// Sample with this seed (temperature/top-p below) instead of greedy decoding.
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long, default_value_t = 0.8)]
        temperature: f32,
        #[arg(long, default_value_t = 0.95)]
        top_p: f32,
    },
    /// Run one prompt and save activations at the chosen hooks as a stacked NPY array
    /// of shape [n_hooks, n_tokens, d] (plus a .hooks.txt listing the hook names in order).
    Cache {
        #[arg(long)]
        model: PathBuf,
        /// The text to run; use --chat to wrap it in the chat template as a user turn.
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        #[arg(long, default_value = "")]
        system: String,
        /// Names filter, e.g. 'blocks.*.hook_resid_post' or 'hook_embed,blocks.3.hook_mlp_out'.
        #[arg(long, default_value = "blocks.*.hook_resid_post")]
        hooks: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Train a model organism (deceptive or control) from the seeded corpus and write its GGUF.
    TrainOrganism(organism::TrainArgs),
    /// Measure an organism's behaviour: misaligned rate per condition and task family, and the
    /// compliance gap, on train, held-out and (with --framings) custom framings.
    EvalOrganism(organism::EvalArgs),
}

fn load(path: &PathBuf, mode: ComputeMode) -> Result<Model> {
    experiment_cmd::load_model(path, mode)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { spec, out, model: _, quiet, activations: Some(dir), .. } => {
            experiment_cmd::run_collected(&spec, &dir, &out, quiet)?
        }
        Command::Run { spec, out, model, quiet, backend, max_cost, yes, activations: None } => {
            let budget = (!yes).then_some(max_cost);
            experiment_cmd::run(&spec, &out, model.as_deref(), quiet, backend, cli.compute, budget)?
        }
        Command::Prompts { spec, out } => experiment_cmd::prompts(&spec, &out)?,
        Command::ExportOnnx(args) => onnx_cmd::export(&args)?,
        Command::Study { spec, models, out, quiet, max_cost, yes } => {
            experiment_cmd::study(&spec, &models, &out, quiet, cli.compute, (!yes).then_some(max_cost))?;
        }
        Command::Spec { action, input, model, json } => {
            experiment_cmd::spec_cmd(&action, &input, model.as_deref(), json, cli.compute)?
        }
        Command::Generate { model, system, prompt, max_tokens, seed, temperature, top_p } => {
            let model = load(&model, cli.compute.unwrap_or_default())?;
            let ids = model.chat_tokens(&system, &prompt)?;
            let sampling = match seed {
                Some(seed) => Sampling::Seeded { seed, temperature, top_p },
                None => Sampling::Greedy,
            };
            let opts = GenerateOptions { max_tokens, sampling, interventions: Vec::new() };
            let t0 = Instant::now();
            let mut printed = 0;
            let mut stdout = std::io::stdout();
            let out = model.generate(&ids, &opts, |_, text| {
                // Print only complete UTF-8 text as it grows.
                if let Some(new) = text.get(printed..) {
                    let _ = write!(stdout, "{new}");
                    let _ = stdout.flush();
                    printed = text.len();
                }
            })?;
            println!();
            eprintln!(
                "[{} prompt tokens, {} generated in {:.2} s, stop: {:?}]",
                ids.len(),
                out.tokens.len(),
                t0.elapsed().as_secs_f64(),
                out.stop
            );
        }
        Command::Cache { model, prompt, chat, system, hooks, out } => {
            let model = load(&model, cli.compute.unwrap_or_default())?;
            let filter = NamesFilter::parse(&hooks)?;
            let selected = filter.resolve(model.config().n_layers)?;
            if selected.is_empty() {
                bail!("--hooks '{hooks}' selects no hook point");
            }
            if let Some(h) = selected.iter().find(|h| matches!(h, hawthorne_model::HookPoint::AttnPattern(_))) {
                bail!("{h} has shape [heads, T, T], which does not stack with [T, d] hooks; cache it on its own");
            }
            let text = if chat { model.tokenizer.chat_prompt(&system, &prompt)? } else { prompt };
            let ids = model.tokenizer.encode(&text)?;
            let opts = RunOptions { cache: filter, logits: LogitsAt::Last, ..RunOptions::default() };
            let fwd = model.llama.forward(std::slice::from_ref(&ids), &opts, None)?;
            let acts = selected
                .iter()
                .map(|h| fwd.cache.get(h).context("hook not recorded")?.get(0).map_err(Into::into))
                .collect::<Result<Vec<Tensor>>>()?;
            let stacked = Tensor::stack(&acts, 0)?; // [n_hooks, T, d]
            stacked.write_npy(&out).with_context(|| format!("writing {}", out.display()))?;
            let names: Vec<String> = selected.iter().map(ToString::to_string).collect();
            let list = out.with_extension("hooks.txt");
            std::fs::write(&list, names.join("\n") + "\n")?;
            eprintln!(
                "wrote {} {:?} (hooks listed in {})",
                out.display(),
                stacked.dims(),
                list.display()
            );
        }
        Command::TrainOrganism(args) => organism::run_train(args)?,
        Command::EvalOrganism(args) => organism::run_eval(args)?,
    }
    Ok(())
}
