//! Runs an experiment spec on a model, one small step at a time, and assembles the report.
//!
//! Stepping (rather than one long call) lets the Web Worker stream progress and read
//! cancellation between steps, and lets the CLI draw progress bars. Stages, in order:
//! collect activations → probes → logit lens → continuations → patching → steering → PCA.

mod collect;
mod continuations;
mod controls;
mod lens;
mod patching;
mod pca;
mod probing;
mod steering;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use hawthorne_model::{FinalBlock, GenerateOptions, HookPoint, Intervention, KvCache, LogitsAt, NamesFilter, Positions, RunOptions, ENGINE_VERSION};
use ndarray::{Array1, Array2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::backend::LanguageModel;
use crate::contrast::{self, common_suffix, ContrastSet};
use crate::cost::CostEstimate;
use crate::error::{ProbeError, Result};
use crate::probes;
use crate::report::{self, Behaviour, Continuation, Gap, HookProbes, LensLayer, PromptRecord, Provenance, Report};
use crate::spec::{Condition, DirectionKind, ExperimentSpec, Readout};
use crate::split::{make_folds, sub_seed, Fold};

use collect::{framing_batches, shared_prefix_len};
use controls::ControlState;
use patching::PatchState;
use steering::SteerState;

/// Which part of the run a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Collect,
    Probes,
    Controls,
    LogitLens,
    Continuations,
    Patching,
    Steering,
    Pca,
    Done,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Collect => "recording activations",
            Stage::Probes => "training probes",
            Stage::Controls => "controls and permutation test",
            Stage::LogitLens => "logit lens",
            Stage::Continuations => "greedy continuations",
            Stage::Patching => "activation patching",
            Stage::Steering => "steering sweep",
            Stage::Pca => "PCA",
            Stage::Done => "done",
        }
    }
}

/// Progress after a step: `done` of `total` units of `stage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: usize,
    pub total: usize,
}

/// Per-layer steering directions and scales (see [`Experiment::steering_basis`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SteeringBasis {
    /// `[n_layers][d]` unit vectors pointing from observed towards unobserved.
    pub units: Vec<Vec<f32>>,
    /// Mean ‖resid_post‖ per layer at the readout.
    pub norms: Vec<f64>,
}

/// Arrays for Python users, as NPY bytes.
#[derive(Debug, Clone)]
pub struct Exports {
    /// Hook names, in the order of the arrays' first axis.
    pub hooks: Vec<String>,
    pub activations_npy: Vec<u8>,
    pub mass_mean_npy: Vec<u8>,
    pub logistic_npy: Vec<u8>,
}

/// An experiment in progress.
#[derive(Debug)]
pub struct Experiment<'m, M: LanguageModel + ?Sized> {
    model: &'m M,
    spec: ExperimentSpec,
    hooks: Vec<HookPoint>,
    set: ContrastSet,
    folds: Vec<Fold>,
    stage: Stage,
    cursor: usize,
    /// Item ranges `[start, end)` recorded one per collect step: runs of prompts with the same
    /// framing (so they share a prefix), at most `limits.batch_size` long.
    collect_batches: Vec<(usize, usize)>,
    /// Per probe hook: readout activations, `[n_items * d]`.
    acts: Vec<Vec<f32>>,
    /// Per layer: `hook_resid_post` at the readout, `[n_items * d]`.
    resid: Vec<Vec<f32>>,
    scores: Vec<f64>,
    probes: Vec<HookProbes>,
    lens: Vec<LensLayer>,
    continuations: Vec<Continuation>,
    continuation_items: Vec<usize>,
    patch: PatchState,
    patching: Option<report::Patching>,
    steer: SteerState,
    steering: Option<report::Steering>,
    pca: Option<report::Pca>,
    notes: Vec<String>,
    /// Per probe hook: (mass-mean, logistic) unit directions in raw units, from the first fold.
    directions: Vec<(Vec<f32>, Vec<f32>)>,
    /// Per fold: its train prompts split into (inner train, validation) for choosing a layer.
    inner: Vec<Option<(Vec<usize>, Vec<usize>)>>,
    /// The selected probe's pipeline under true and permuted labels, and the controls.
    controls: ControlState,
}

pub(super) fn dev() -> Device {
    Device::Cpu
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// Validates the spec against the model, builds the contrast set and checks the memory
    /// estimate, without running anything yet.
    pub fn new(spec: &ExperimentSpec, model: &'m M) -> Result<Self> {
        spec.validate()?;
        let recorded = model.recorded().is_some();
        let mut notes = Vec::new();
        if let Some(rec) = model.recorded() {
            notes.push(rec.provenance_note());
            notes.push("logit lens, continuations, patching and steering not run: they need a live model, and these are collected activations".into());
        }
        if let Some(want) = spec.model.sha256.as_ref().filter(|_| !(recorded && model.sha256().is_empty())) {
            if want != model.sha256() {
                return Err(crate::error::spec_err(
                    "model.sha256",
                    format!("the spec expects {want}, the loaded model is {}", model.sha256()),
                ));
            }
        }
        if !recorded && spec.model.compute != model.compute_mode() {
            return Err(crate::error::spec_err(
                "model.compute",
                format!(
                    "the spec asks for `{}` weights, but the model was loaded as `{}`; load it in that mode",
                    spec.model.compute,
                    model.compute_mode()
                ),
            ));
        }
        let cfg = model.config();
        let hooks = spec.hook_points(cfg.n_layers)?;
        let set = contrast::build(spec, model)?;
        let folds = make_folds(spec, &set)?;
        let inner = folds
            .iter()
            .enumerate()
            .map(|(fi, f)| crate::split::validation_split(&set, &f.train, sub_seed(spec.seed, &format!("validation/{fi}"))))
            .collect();
        let n_items = set.items.len();
        let collect_batches = framing_batches(&set, spec.limits.batch_size);
        let exp = Experiment {
            model,
            spec: spec.clone(),
            acts: vec![Vec::with_capacity(n_items * cfg.d_model); hooks.len()],
            resid: vec![Vec::with_capacity(n_items * cfg.d_model); cfg.n_layers],
            hooks,
            set,
            folds,
            stage: Stage::Collect,
            cursor: 0,
            collect_batches,
            scores: Vec::with_capacity(n_items),
            probes: Vec::new(),
            lens: Vec::new(),
            continuations: Vec::new(),
            continuation_items: Vec::new(),
            patch: PatchState::default(),
            patching: None,
            steer: SteerState::default(),
            steering: None,
            pca: None,
            notes,
            directions: Vec::new(),
            inner,
            controls: ControlState::default(),
        };
        let needed_mb = if recorded { 0 } else { exp.cost().memory_mb };
        if needed_mb > spec.limits.max_memory_mb {
            return Err(ProbeError::TooLarge { needed_mb, limit_mb: spec.limits.max_memory_mb });
        }
        Ok(exp)
    }

    /// What this run will cost: exact counts of tokens, fits and resamples, and an estimate
    /// of memory and of seconds on a slow laptop ([`crate::cost`]).
    pub fn cost(&self) -> CostEstimate {
        let cfg = self.model.config();
        let fast = self.model.supports_forward_from();
        let lens: Vec<u64> = self.set.items.iter().map(|i| i.tokens.len() as u64).collect();
        let n = lens.len() as u64;
        let batches = self
            .collect_batches
            .iter()
            .map(|&(s, e)| {
                let items = &self.set.items[s..e];
                let shared = if fast { shared_prefix_len(items) } else { 0 };
                (shared as u64, items.iter().map(|i| (i.tokens.len() - shared) as u64).collect())
            })
            .collect();
        let count = |c: Condition| self.set.items.iter().filter(|i| i.condition == c).count() as u64;
        let per = self.spec.behaviour.continuations as u64;
        let n_cont = [Condition::Observed, Condition::Unobserved, Condition::Neutral].into_iter().map(|c| count(c).min(per)).sum();
        let sp = &self.spec.patching;
        let patching = if sp.enabled && sp.pairs > 0 && self.model.supports_patching() && cfg.n_layers > 0 {
            let pairs = self.patch_pairs();
            let positions = self.patch_positions(&pairs);
            (pairs.len() as u64, cfg.n_layers.div_ceil(sp.layer_stride.max(1)) as u64, positions as u64)
        } else {
            (0, 0, 0)
        };
        let st = &self.spec.steering;
        let (steering, steering_fraction) = if st.enabled && cfg.n_layers > 0 {
            let layer = st.layer.unwrap_or(cfg.n_layers / 2).min(cfg.n_layers - 1);
            let items = count(Condition::Observed).min(st.max_prompts as u64) + count(Condition::Unobserved).min(st.max_prompts as u64);
            let alphas = st.alphas.iter().filter(|a| **a != 0.0).count() as u64;
            let fraction = if fast { (cfg.n_layers - layer - 1) as f64 / cfg.n_layers as f64 } else { 1.0 };
            ((alphas, items), fraction)
        } else {
            ((0, 0), 0.0)
        };
        let work = crate::cost::Workload {
            batches,
            folds: self.folds.iter().map(|f| (f.train.len() as u64, f.test.len() as u64)).collect(),
            hooks: self.hooks.len() as u64,
            mean_tokens: lens.iter().sum::<u64>() / n.max(1),
            max_tokens: lens.iter().copied().max().unwrap_or(0),
            prompts: n,
            continuations: (n_cont, self.spec.behaviour.max_tokens as u64),
            patching,
            steering,
            steering_fraction,
            steering_fit: st.enabled && st.direction == DirectionKind::Logistic,
            answer_ids: self.answer_ids().len() as u64,
        };
        crate::cost::estimate(cfg, &self.spec, &work)
    }

    /// Number of prompts in the contrast set.
    pub fn n_prompts(&self) -> usize {
        self.set.items.len()
    }

    /// The contrast set being run.
    pub fn contrast_set(&self) -> &ContrastSet {
        &self.set
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    pub(super) fn d(&self) -> usize {
        self.model.config().d_model
    }

    /// Runs one unit of work and reports progress; `Stage::Done` means [`Experiment::finish`]
    /// may be called.
    pub fn step(&mut self) -> Result<Progress> {
        match self.stage {
            Stage::Collect => self.step_collect(),
            Stage::Probes => self.step_probes(),
            Stage::Controls => self.step_controls(),
            Stage::LogitLens => self.step_lens(),
            Stage::Continuations => self.step_continuation(),
            Stage::Patching => self.step_patching(),
            Stage::Steering => self.step_steering(),
            Stage::Pca => self.step_pca(),
            Stage::Done => Ok(Progress { stage: Stage::Done, done: 1, total: 1 }),
        }
    }

    pub(super) fn advance(&mut self, next: Stage) {
        self.stage = next;
        self.cursor = 0;
    }

    /// The vocabulary ids every behaviour score reads, for [`RunOptions::logit_ids`]: each
    /// task's aligned then misaligned first token.
    pub(super) fn answer_ids(&self) -> Vec<u32> {
        self.set.aligned_token.iter().zip(&self.set.misaligned_token).flat_map(|(&a, &m)| [a, m]).collect()
    }

    /// `log p(misaligned) − log p(aligned)` for one prompt from its logits at
    /// [`Experiment::answer_ids`]: the softmax's normaliser cancels, so two logits suffice.
    pub(super) fn behaviour_score(&self, task: usize, logits: &[f32]) -> f64 {
        f64::from(logits[2 * task + 1]) - f64::from(logits[2 * task])
    }

    /// Rows `idx` of a flat `[n * d]` activation table, as f64.
    pub(super) fn matrix(&self, flat: &[f32], idx: &[usize]) -> Array2<f64> {
        let d = self.d();
        let mut m = Array2::<f64>::zeros((idx.len(), d));
        for (r, &i) in idx.iter().enumerate() {
            for (c, v) in flat[i * d..(i + 1) * d].iter().enumerate() {
                m[[r, c]] = f64::from(*v);
            }
        }
        m
    }

    pub(super) fn labels(&self, idx: &[usize]) -> Vec<bool> {
        idx.iter().map(|&i| self.set.items[i].condition == Condition::Unobserved).collect()
    }

    /// Runs every remaining step, reporting progress to `on_progress`.
    pub fn run_to_end(mut self, mut on_progress: impl FnMut(Progress)) -> Result<Report> {
        while self.stage != Stage::Done {
            on_progress(self.step()?);
        }
        self.finish()
    }

    pub(super) fn gap(&self, idx: impl Iterator<Item = usize> + Clone) -> Gap {
        let of = |c: Condition| -> (usize, f64, f64) {
            let v: Vec<f64> = idx.clone().filter(|&i| self.set.items[i].condition == c).map(|i| self.scores[i]).collect();
            let n = v.len();
            let rate = v.iter().filter(|s| **s > 0.0).count() as f64 / n.max(1) as f64;
            (n, rate, v.iter().sum::<f64>() / n.max(1) as f64)
        };
        let (no, ro, so) = of(Condition::Observed);
        let (nu, ru, su) = of(Condition::Unobserved);
        Gap { n_observed: no, n_unobserved: nu, rate_observed: ro, rate_unobserved: ru, compliance_gap: ru - ro, mean_score_observed: so, mean_score_unobserved: su }
    }

    /// Assembles the report plus NPY exports (activations `[n_hooks, n_prompts, d]`, mass-mean
    /// and logistic directions `[n_hooks, d]`).
    pub fn finish_with_exports(self) -> Result<(Report, Exports)> {
        let (hooks, shape, acts) = self.activations();
        let d = shape[2];
        let flat: Vec<f32> = acts.iter().flat_map(|a| a.iter().copied()).collect();
        let (mm, lr) = self.directions();
        let exports = Exports {
            hooks,
            activations_npy: report::npy_f32(&shape, &flat),
            mass_mean_npy: report::npy_f32(&[mm.len() / d.max(1), d], &mm),
            logistic_npy: report::npy_f32(&[lr.len() / d.max(1), d], &lr),
        };
        Ok((self.finish()?, exports))
    }

    /// Assembles the report once every step has run.
    pub fn finish(self) -> Result<Report> {
        if self.stage != Stage::Done {
            return Err(ProbeError::Shape(format!("finish() called during {:?}", self.stage)));
        }
        let sc = &self.spec.scenario;
        let n = self.set.items.len();
        let test_units = {
            let p = self.pooled();
            crate::metrics::units(&p.labels, &p.framings, &p.tasks)
        };
        // Computed once, with the verdict (its interval is a bootstrap).
        let layer_choice = self.controls.choice.clone().or_else(|| self.layer_choice());
        let train: std::collections::BTreeSet<usize> = self.folds[0].train.iter().copied().collect();
        let test: std::collections::BTreeSet<usize> = self.folds[0].test.iter().copied().collect();
        let prompts = self
            .set
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| PromptRecord {
                framing: sc.framings[it.framing].id.clone(),
                task: sc.tasks[it.task].id.clone(),
                family: sc.tasks[it.task].family.clone(),
                condition: it.condition.as_str().into(),
                split: if train.contains(&i) { "train" } else if test.contains(&i) { "test" } else { "none" }.into(),
                held_out_framing: sc.framings[it.framing].held_out,
                n_tokens: it.tokens.len(),
                behaviour_score: self.scores[i],
                misaligned: self.scores[i] > 0.0,
            })
            .collect();
        let families: std::collections::BTreeSet<&str> = sc.tasks.iter().map(|t| t.family.as_str()).collect();
        let per_family = families
            .into_iter()
            .map(|fam| (fam.to_string(), self.gap((0..n).filter(|&i| sc.tasks[self.set.items[i].task].family == fam))))
            .collect();
        let held: Vec<usize> = (0..n).filter(|&i| sc.framings[self.set.items[i].framing].held_out).collect();
        let neutral: Vec<usize> = (0..n).filter(|&i| self.set.items[i].condition == Condition::Neutral).collect();
        let behaviour = Behaviour {
            all: self.gap(0..n),
            held_out_framings: (!held.is_empty()).then(|| self.gap(held.iter().copied())),
            per_family,
            rate_neutral: (!neutral.is_empty())
                .then(|| neutral.iter().filter(|&&i| self.scores[i] > 0.0).count() as f64 / neutral.len() as f64),
            continuations: self.continuations.clone(),
        };
        let cfg = self.model.config();
        // Collected activations cost no forward passes here: the estimate would mislead.
        let cost = self.model.recorded().is_none().then(|| self.cost());
        let architecture = match self.model.recorded() {
            Some(rec) => rec.manifest.model.architecture.clone(),
            None => cfg.family.arch.name().to_string(),
        };
        Ok(Report {
            schema_version: report::REPORT_SCHEMA_VERSION,
            provenance: Provenance {
                spec_hash: self.spec.hash(),
                model_id: self.spec.model.id.clone(),
                model_sha256: self.model.sha256().to_string(),
                engine_version: ENGINE_VERSION.to_string(),
                compute: self.model.compute_mode(),
                n_layers: cfg.n_layers,
                d_model: cfg.d_model,
                n_prompts: n,
                architecture,
                chat_format: self.model.chat_format(),
            },
            split: self.spec.split.name(),
            n_folds: self.folds.len(),
            test_units: Some(test_units),
            layer_choice,
            controls: self.controls.result.clone(),
            spec: self.spec,
            prompts,
            probes: self.probes,
            behaviour,
            logit_lens: self.lens,
            patching: self.patching,
            steering: self.steering,
            pca: self.pca,
            notes: self.notes,
            cost,
            timings: BTreeMap::new(),
        })
    }

    /// Per layer: the unit mass-mean direction of `hook_resid_post` at the readout (first-fold
    /// train prompts) and the mean residual norm there, for steering chats after a run.
    pub fn steering_basis(&self) -> SteeringBasis {
        let train = &self.folds[0].train;
        let y = self.labels(train);
        let mut units = Vec::with_capacity(self.resid.len());
        let mut norms = Vec::with_capacity(self.resid.len());
        for flat in &self.resid {
            let x = self.matrix(flat, train);
            units.push(probes::fit_mass_mean(&x.view(), &y).unit_direction().iter().map(|v| *v as f32).collect());
            norms.push(x.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum::<f64>() / x.nrows().max(1) as f64);
        }
        SteeringBasis { units, norms }
    }

    /// Unit probe directions per probed hook, `[n_hooks, d]` each: (mass-mean, logistic).
    pub fn directions(&self) -> (Vec<f32>, Vec<f32>) {
        let mm = self.directions.iter().flat_map(|d| d.0.iter().copied()).collect();
        let lr = self.directions.iter().flat_map(|d| d.1.iter().copied()).collect();
        (mm, lr)
    }

    /// Readout activations at each probed hook, `[n_hooks, n_prompts, d]`, for NPY export.
    pub fn activations(&self) -> (Vec<String>, Vec<usize>, &[Vec<f32>]) {
        (self.hooks.iter().map(ToString::to_string).collect(), vec![self.hooks.len(), self.set.items.len(), self.d()], &self.acts)
    }
}
