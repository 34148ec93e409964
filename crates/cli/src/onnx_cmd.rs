//! `hawthorne export-onnx`: a model as ONNX, optionally with a monitor head fitted from a
//! report directory written by `hawthorne run`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use hawthorne_model::{HookPoint, Model};
use hawthorne_onnx::{export as export_onnx, ExportOptions, MonitorHead};
use hawthorne_probe::Report;

use crate::experiment_cmd::resolve_model;

/// Arguments of `export-onnx`.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A model id (`organism-deceptive`, `organism-control`, `smollm2-135m-instruct`) or a GGUF path.
    #[arg(long)]
    model: String,
    /// A report directory from `hawthorne run` on the same model: adds a `probe_score` output,
    /// the mass-mean probe fitted on the report's train prompts at `--layer`.
    #[arg(long, requires = "layer")]
    probe: Option<PathBuf>,
    /// The monitor's layer: it reads `blocks.{LAYER}.hook_resid_post`.
    #[arg(long, requires = "probe")]
    layer: Option<usize>,
    #[arg(long)]
    out: PathBuf,
}

pub fn export(a: &ExportArgs) -> Result<()> {
    let path = resolve_model(&a.model, None)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let model = Model::from_gguf_bytes(&bytes).with_context(|| format!("loading {}", path.display()))?;
    let monitor = match (&a.probe, a.layer) {
        (Some(dir), Some(layer)) => Some(monitor_from_report(dir, layer, &model)?),
        _ => None,
    };
    if let Some(m) = &monitor {
        eprintln!("monitor head: {}", m.description);
    }
    let onnx = export_onnx(&model, &ExportOptions { monitor })?;
    std::fs::write(&a.out, &onnx).with_context(|| format!("writing {}", a.out.display()))?;
    let cfg = model.config();
    println!(
        "wrote {} ({:.1} MB): inputs input_ids[B,T], attention_mask[B,T], steer[{},{}]; outputs logits[B,T,{}], resid[{},B,T,{}]{}",
        a.out.display(),
        onnx.len() as f64 / 1e6,
        cfg.n_layers,
        cfg.d_model,
        cfg.d_vocab,
        cfg.n_layers + 1,
        cfg.d_model,
        if a.probe.is_some() { ", probe_score[B,T]" } else { "" }
    );
    Ok(())
}

/// The mass-mean probe at `blocks.{layer}.hook_resid_post`, fitted on the report's train
/// prompts: unit direction from the observed mean to the unobserved mean, and the bias that
/// puts the midpoint of the two means at score 0 (so positive reads as "unobserved").
fn monitor_from_report(dir: &Path, layer: usize, model: &Model) -> Result<MonitorHead> {
    let read = |name: &str| -> Result<String> {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("reading {} (is {} a `hawthorne run` report directory?)", dir.join(name).display(), dir.display()))
    };
    let report: Report = serde_json::from_str(&read("report.json")?).context("report.json is not a Hawthorne report")?;
    if report.provenance.model_sha256 != model.sha256 {
        bail!(
            "the report was made on a model with sha256 {}, but this model's is {}; run the experiment on this model first",
            report.provenance.model_sha256,
            model.sha256
        );
    }
    let hook = HookPoint::ResidPost(layer);
    let hooks: Vec<String> = read("hooks.txt")?.lines().map(str::to_string).collect();
    let Some(h) = hooks.iter().position(|x| *x == hook.to_string()) else {
        bail!("the report probed {} but not {hook}; choose one of those layers", hooks.join(", "));
    };
    let acts = Tensor::read_npy(dir.join("activations.npy")).context("reading activations.npy")?; // [hooks, prompts, D]
    let (n_hooks, n_prompts, d) = acts.dims3().context("activations.npy should be [hooks, prompts, d_model]")?;
    if n_hooks != hooks.len() || n_prompts != report.prompts.len() || d != model.config().d_model {
        bail!(
            "activations.npy is [{n_hooks}, {n_prompts}, {d}] but the report has {} hooks, {} prompts and d_model {}",
            hooks.len(),
            report.prompts.len(),
            model.config().d_model
        );
    }
    let rows = acts.get(h)?.to_vec2::<f32>()?; // [prompts][D]
    let mean = |cond: &str| -> Result<Vec<f64>> {
        let picked: Vec<&Vec<f32>> = report
            .prompts
            .iter()
            .zip(&rows)
            .filter(|(p, _)| p.split == "train" && p.condition == cond)
            .map(|(_, r)| r)
            .collect();
        if picked.is_empty() {
            bail!("the report has no {cond} prompts in its train split");
        }
        let mut m = vec![0.0f64; d];
        for r in &picked {
            for (a, &x) in m.iter_mut().zip(r.iter()) {
                *a += f64::from(x) / picked.len() as f64;
            }
        }
        Ok(m)
    };
    let (obs, unobs) = (mean("observed")?, mean("unobserved")?);
    let diff: Vec<f64> = unobs.iter().zip(&obs).map(|(u, o)| u - o).collect();
    let norm = diff.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        bail!("the observed and unobserved means are identical at {hook}; there is no direction to monitor");
    }
    let direction: Vec<f64> = diff.iter().map(|x| x / norm).collect();
    let bias = -direction.iter().zip(unobs.iter().zip(&obs)).map(|(w, (u, o))| w * (u + o) / 2.0).sum::<f64>();
    let auroc = report.probes.iter().find(|p| p.hook == hook.to_string()).map(|p| p.mass_mean.auroc);
    Ok(MonitorHead {
        hook,
        direction: direction.iter().map(|&x| x as f32).collect(),
        bias: bias as f32,
        description: format!(
            "mass-mean probe at {hook} from {} (spec {}, train prompts; test AUROC {}); probe_score > 0 reads as unobserved",
            dir.display(),
            &report.provenance.spec_hash[..12.min(report.provenance.spec_hash.len())],
            auroc.map_or("?".into(), |a| format!("{a:.3}"))
        ),
    })
}
