//! What a spec will cost before it runs: forward-pass tokens, probe fits and iterations,
//! resamples, memory, and the seconds these take on a slow laptop.
//!
//! A share link is untrusted input that runs on a stranger's machine, so the page and the CLI
//! show this estimate first and refuse to start a link above a budget without a click
//! ([`DEFAULT_BUDGET_S`]). The report records the estimate beside the measured time, so every
//! run checks it.
//!
//! The counts are exact for the spec and model (tokens from the tokenised contrast set, fits
//! and resamples from the folds); the seconds divide floating-point work by two rates
//! ([`FORWARD_GFLOPS`], [`PROBE_GFLOPS`]) measured on the reference machine and then halved
//! for a slow laptop. Only integer arithmetic and basic float operations are used, so the
//! estimate is the same number natively and in wasm.

use serde::{Deserialize, Serialize};

use hawthorne_model::Config;

/// The default budget: a link estimated above it does not start by itself (the page shows
/// the estimate and a Run button; the CLI needs `--yes` or a larger `--max-cost`).
pub const DEFAULT_BUDGET_S: f64 = 60.0;

/// Forward-pass speed assumed for a slow laptop, in GFLOP/s: half the single-threaded wasm
/// engine's measured speed on the reference machine, taking the slower of the two studies in
/// `bench/study.md` (recording SmolLM2-135M's activations: 5,878 GFLOP in 372 s ≈ 15.8 GFLOP/s
/// in Chromium; Gemma-3-270M's ran at 17.7).
pub const FORWARD_GFLOPS: f64 = 7.5;

/// Probe-fitting and resampling speed assumed for a slow laptop, in GFLOP/s (f64 code in
/// linfa and the metrics, scalar in wasm). Chosen conservatively: the organism's probe stage
/// does 0.20 GFLOP of this work in 36 ms natively on the reference machine (about 5.5 GFLOP/s;
/// `hawthorne run examples/organism-deceptive.json`, `timings.probes`), and 0.5 leaves room for
/// wasm and a slow laptop.
pub const PROBE_GFLOPS: f64 = 0.5;

/// Fixed cost of one step (a message to the page, a yield, small allocations), in seconds.
const STEP_OVERHEAD_S: f64 = 0.002;

/// Line-search evaluations per L-BFGS iteration assumed for the logistic probes.
const EVALS_PER_ITERATION: u64 = 2;

/// A spec's cost on a model, from its shape and the tokenised prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostEstimate {
    pub prompts: u64,
    /// Tokens run through the model by every stage (prefixes shared within a batch counted
    /// once), generated tokens included.
    pub forward_tokens: u64,
    /// Of those, tokens generated one at a time (continuations).
    pub generated_tokens: u64,
    /// Logistic probes fitted (per hook and fold, shuffled-label controls and steering
    /// included).
    pub probe_fits: u64,
    /// Their iteration ceiling in total (fits × `probes.max_iter`).
    pub probe_iterations: u64,
    /// Bootstrap resamples plus random directions scored.
    pub resamples: u64,
    /// Forward passes and logit-lens products, in GFLOP.
    pub forward_gflop: f64,
    /// Probe fits and resampling, in GFLOP.
    pub probe_gflop: f64,
    /// Steps the run is split into (one progress message each).
    pub steps: u64,
    /// Peak memory for activations, one batch and the logit lens, in MB (the model's weights
    /// not included).
    pub memory_mb: u64,
    /// Estimated wall time on a slow laptop, single-threaded, in seconds.
    pub seconds: f64,
}

impl CostEstimate {
    /// Whether the run fits in `budget_s` seconds.
    pub fn within(&self, budget_s: f64) -> bool {
        self.seconds <= budget_s
    }

    /// One line for people: "about 40 s on a slow laptop (12,345 tokens, 40 probe fits …)".
    pub fn summary(&self) -> String {
        format!(
            "about {} on a slow laptop: {} prompts, {} forward tokens ({} generated), {} probe fits (≤ {} iterations), {} resamples, {} MB of activations",
            human_seconds(self.seconds),
            group(self.prompts),
            group(self.forward_tokens),
            group(self.generated_tokens),
            group(self.probe_fits),
            group(self.probe_iterations),
            group(self.resamples),
            group(self.memory_mb),
        )
    }
}

/// "0.8 s", "40 s", "3.5 min", "2.1 h".
pub fn human_seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// ⌈log2 n⌉ without floating point (comparison sorts cost n·log n).
fn log2_ceil(n: u64) -> u64 {
    if n <= 1 {
        1
    } else {
        u64::from(64 - (n - 1).leading_zeros())
    }
}

/// The work items an estimate is computed from; [`crate::Experiment::cost`] fills it from the
/// spec, the model and the contrast set.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Per collect batch: (shared prefix tokens, per-prompt suffix lengths).
    pub batches: Vec<(u64, Vec<u64>)>,
    /// Per fold: (train prompts, test prompts).
    pub folds: Vec<(u64, u64)>,
    /// Probe hooks.
    pub hooks: u64,
    /// Mean prompt length in tokens.
    pub mean_tokens: u64,
    /// Longest prompt in tokens.
    pub max_tokens: u64,
    pub prompts: u64,
    /// Continuation prompts and tokens generated for each.
    pub continuations: (u64, u64),
    /// Patching: pairs, hooks, positions (each position has a control pass too).
    pub patching: (u64, u64, u64),
    /// Steering: the α ≠ 0 values and the prompts steered at each (each with the probe's and
    /// a random direction), and the fraction of the blocks they run (they start after the
    /// steered layer).
    pub steering: (u64, u64),
    pub steering_fraction: f64,
    /// Whether steering fits a logistic probe.
    pub steering_fit: bool,
    /// Vocabulary rows a behaviour score reads (recording, patching and steering compute
    /// only these logits).
    pub answer_ids: u64,
}

/// The estimate for `work` on a model shaped `cfg` under the spec's probe settings.
pub fn estimate(cfg: &Config, spec: &crate::ExperimentSpec, work: &Workload) -> CostEstimate {
    let (d, layers, vocab) = (cfg.d_model as u64, cfg.n_layers as u64, cfg.d_vocab as u64);
    let q = (cfg.n_heads * cfg.d_head) as u64;
    let kv = (cfg.n_kv_heads * cfg.d_head) as u64;
    // Multiply-adds per token per block: Q, K, V and O projections and the gated MLP.
    let block_macs = d * q + 2 * d * kv + q * d + 3 * d * cfg.d_mlp as u64;
    // Attention: scores and weighted sum over the context, per token per block.
    let attn_macs = |ctx: u64| 2 * ctx * q;
    let lm_head = d * vocab;
    // Recording, patching and steering unembed only the answers' rows.
    let answer_head = d * work.answer_ids;
    let token_flop = |ctx: u64| 2.0 * (layers * (block_macs + attn_macs(ctx))) as f64;
    let mut forward_tokens = 0u64;
    let mut flop = 0.0f64;
    let mut steps = 0u64;

    // Recording: each batch's shared prefix once, then every prompt's own tokens, the
    // answers' logits per prompt.
    for (prefix, suffixes) in &work.batches {
        let tokens = prefix + suffixes.iter().sum::<u64>();
        forward_tokens += tokens;
        flop += tokens as f64 * token_flop(work.mean_tokens / 2) + 2.0 * (suffixes.len() as u64 * answer_head) as f64;
        steps += 1;
    }
    // Logit lens: every layer's readout through the unembedding.
    if spec.lens.enabled {
        flop += 2.0 * (layers * work.prompts * lm_head) as f64;
        steps += layers;
    }
    // Continuations: the prompt, then one token at a time with the cache.
    let (n_cont, per_cont) = work.continuations;
    let generated = n_cont * per_cont;
    forward_tokens += n_cont * work.mean_tokens + generated;
    flop += (n_cont * work.mean_tokens + generated) as f64 * token_flop(work.mean_tokens) + 2.0 * (generated * lm_head) as f64;
    steps += n_cont;
    // Patching: both prompts of a pair cached, then a probe and a control pass per (hook,
    // position), each running about half the model over the prompt.
    let (pairs, p_hooks, positions) = work.patching;
    let patch_passes = pairs * p_hooks * positions * 2;
    let patch_tokens = 2 * pairs * work.mean_tokens + patch_passes * work.mean_tokens / 2;
    forward_tokens += patch_tokens;
    flop += patch_tokens as f64 * token_flop(work.mean_tokens / 2) + 2.0 * ((2 * pairs + patch_passes) * answer_head) as f64;
    let batch = spec.limits.batch_size.max(1) as u64;
    // One (hook, pair) per batch.
    steps += pairs + pairs * p_hooks * (2 * positions).div_ceil(batch);
    // Steering: the steered passes from the layer on.
    let (alphas, steered) = work.steering;
    let steering_passes = alphas * 2 * steered;
    let steer_tokens = steering_passes * work.mean_tokens;
    forward_tokens += (steer_tokens as f64 * work.steering_fraction) as u64;
    flop += steer_tokens as f64 * work.steering_fraction * token_flop(work.mean_tokens / 2) + 2.0 * (steering_passes * answer_head) as f64;
    steps += alphas * 2 * steered.div_ceil(batch);

    // Probes, per hook and fold: a logistic fit (and one more on shuffled labels), a
    // mass-mean direction and random directions scored on the fold's test prompts; then, on
    // the test scores pooled over folds, cluster-bootstrap resamples of each probe's AUROC
    // and one AUROC per random direction.
    let max_iter = spec.probes.max_iter;
    let boot = spec.probes.bootstrap as u64;
    let random = spec.baselines.random_directions as u64;
    // The logistic probe and the shuffled-label probe.
    let fits_per_fold = 1 + u64::from(spec.baselines.shuffled_labels);
    let intervals = 2 + u64::from(spec.baselines.shuffled_labels);
    let mut probe_flop = 0.0f64;
    let mut probe_fits = 0u64;
    for &(n_tr, n_te) in &work.folds {
        let fit = (max_iter * EVALS_PER_ITERATION * 4 * n_tr * d) as f64;
        probe_flop += fits_per_fold as f64 * fit;
        probe_fits += fits_per_fold;
        // Standardising and scoring both splits.
        probe_flop += (6 * (n_tr + n_te) * d) as f64;
        probe_flop += (random * 2 * (n_tr + n_te) * d) as f64;
    }
    let pooled: u64 = work.folds.iter().map(|f| f.1).sum();
    let sort = 8 * pooled * log2_ceil(pooled);
    // Each resample draws the pooled prompts' weights and sorts their scores.
    probe_flop += (intervals * boot * sort + random * sort) as f64;
    let mut resamples = intervals * boot + random;
    probe_flop *= work.hooks as f64;
    probe_fits *= work.hooks;
    resamples *= work.hooks;
    steps += work.hooks;

    // Controls, per hook and fold, for the true labels and each permutation: the selected
    // probe fitted without the validation framings and scored on them, and (when the hook
    // beats the best so far) refitted on the whole train side and scored on the test
    // prompts; random directions scored on validation. Then the pooled AUROC of every
    // labelling, and intervals for the chosen layer, the random control and two lexical
    // controls.
    let labellings = 1 + spec.baselines.permutations as u64;
    let logistic = spec.probes.select == crate::spec::DirectionKind::Logistic;
    let mut control_flop = 0.0f64;
    for &(n_tr, n_te) in &work.folds {
        let fit = if logistic { (max_iter * EVALS_PER_ITERATION * 4 * n_tr * d) as f64 } else { (3 * n_tr * d) as f64 };
        control_flop += labellings as f64 * (2.0 * fit + (4 * (n_tr + n_te) * d) as f64);
        if logistic {
            probe_fits += 2 * labellings * work.hooks;
        }
        control_flop += (random * 2 * n_tr * d + 6 * n_tr * d) as f64;
    }
    probe_flop += control_flop * work.hooks as f64 + (labellings * sort) as f64;
    resamples += 4 * boot;
    probe_flop += (4 * boot * sort) as f64;
    steps += work.hooks + 1;
    if work.steering_fit {
        let n_tr = work.folds.first().map_or(0, |f| f.0);
        probe_flop += (max_iter * EVALS_PER_ITERATION * 4 * n_tr * d) as f64;
        probe_fits += 1;
    }
    // PCA of every layer's readouts.
    probe_flop += (layers * work.prompts * d * d.min(work.prompts)) as f64;
    steps += 1;

    // Memory: stored readouts at every probe hook and layer, one batch's cached activations
    // and attention scores, and the logit lens' log-probabilities.
    let n = work.prompts;
    let per_item = work.hooks + layers;
    let stored = n * per_item * d * 4;
    let t = work.max_tokens;
    let batch_acts = batch * t * (per_item * d + cfg.d_mlp as u64 * 2) * 4;
    // Attention scores, their masked copy and the pattern are alive together.
    let scores = batch * cfg.n_heads as u64 * t * t * 4 * 3;
    let lens = if spec.lens.enabled { n * vocab * 4 * 2 } else { 0 };
    let memory_mb = (stored + batch_acts + scores + lens) / (1 << 20) + 1;

    let seconds = flop / (FORWARD_GFLOPS * 1e9) + probe_flop / (PROBE_GFLOPS * 1e9) + steps as f64 * STEP_OVERHEAD_S;
    CostEstimate {
        prompts: work.prompts,
        forward_tokens,
        generated_tokens: generated,
        probe_fits,
        probe_iterations: probe_fits * max_iter,
        resamples,
        forward_gflop: flop / 1e9,
        probe_gflop: probe_flop / 1e9,
        steps,
        memory_mb,
        seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_helpers() {
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
        assert_eq!(log2_ceil(1), 1);
        assert_eq!(log2_ceil(8), 3);
        assert_eq!(log2_ceil(9), 4);
        assert_eq!(human_seconds(0.84), "0.8 s");
        assert_eq!(human_seconds(45.2), "45 s");
        assert_eq!(human_seconds(600.0), "10.0 min");
        assert_eq!(human_seconds(36000.0), "10.0 h");
    }
}
