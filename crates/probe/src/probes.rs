//! Linear probes of condition from activations: logistic regression (linfa-logistic) and
//! difference of means, each with a random-direction and a shuffled-label baseline.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{ProbeError, Result};
use crate::metrics::{accuracy, auroc, auroc_ci_clustered, tpr_at_fpr};

/// Per-feature standardisation fitted on the train rows only.
#[derive(Debug, Clone)]
pub struct Standardizer {
    pub mean: Array1<f64>,
    pub std: Array1<f64>,
}

impl Standardizer {
    pub fn fit(x: &ArrayView2<'_, f64>) -> Standardizer {
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
        let std = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Standardizer { mean, std }
    }

    pub fn apply(&self, x: &ArrayView2<'_, f64>) -> Array2<f64> {
        (x - &self.mean) / &self.std
    }
}

/// Metrics of one probe on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeMetrics {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub auroc: f64,
    /// 95% interval of the test AUROC from a bootstrap that resamples whole framings and tasks.
    pub auroc_ci: [f64; 2],
    pub tpr_at_1pct_fpr: f64,
}

/// A fitted linear probe: `score(x) = w · x + b`, positive = unobserved, in raw activation units.
#[derive(Debug, Clone)]
pub struct LinearProbe {
    pub w: Array1<f64>,
    pub b: f64,
}

impl LinearProbe {
    pub fn scores(&self, x: &ArrayView2<'_, f64>) -> Vec<f64> {
        (x.dot(&self.w) + self.b).to_vec()
    }

    /// The unit direction of `w`.
    pub fn unit_direction(&self) -> Array1<f64> {
        let n = self.w.dot(&self.w).sqrt();
        if n > 0.0 { &self.w / n } else { self.w.clone() }
    }
}

/// Logistic regression on standardised features with L2 strength `1/c` (scikit-learn's `C`),
/// folded back into raw units.
pub fn fit_logistic(x: &ArrayView2<'_, f64>, y: &[bool], c: f64, max_iter: u64, hook: &str) -> Result<LinearProbe> {
    let st = Standardizer::fit(x);
    let xs = st.apply(x);
    let targets = Array1::from_vec(y.to_vec());
    let ds = Dataset::new(xs, targets);
    let fitted = LogisticRegression::default()
        .alpha(1.0 / c)
        .max_iterations(max_iter)
        .fit(&ds)
        .map_err(|e| ProbeError::Fit { hook: hook.into(), reason: e.to_string() })?;
    // linfa picks which label is "positive"; orient so that positive scores mean unobserved.
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    let w_std = fitted.params() * sign;
    let b_std = fitted.intercept() * sign;
    // w_std · (x − μ)/σ + b = (w_std/σ) · x + (b − Σ w_std μ/σ)
    let w = &w_std / &st.std;
    let b = b_std - w.dot(&st.mean);
    Ok(LinearProbe { w, b })
}

/// Difference of means (mass-mean): `w = μ_unobserved − μ_observed`, threshold at the midpoint.
pub fn fit_mass_mean(x: &ArrayView2<'_, f64>, y: &[bool]) -> LinearProbe {
    let mean_of = |want: bool| {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == want).collect();
        x.select(Axis(0), &rows).mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()))
    };
    let (pos, neg) = (mean_of(true), mean_of(false));
    let w = &pos - &neg;
    let mid = (&pos + &neg) / 2.0;
    let b = -w.dot(&mid);
    LinearProbe { w, b }
}

/// The test prompts of every fold, pooled: their scores, labels and the framing and task
/// each came from (the units the interval resamples).
#[derive(Debug, Clone, Copy)]
pub struct Pooled<'a> {
    pub labels: &'a [bool],
    pub framings: &'a [usize],
    pub tasks: &'a [usize],
}

/// Metrics of one probe from its pooled test scores; `train_accuracy` is the folds' mean.
pub fn pooled_metrics(train_accuracy: f64, scores: &[f64], pooled: Pooled<'_>, bootstrap: usize, seed: u64) -> ProbeMetrics {
    ProbeMetrics {
        train_accuracy,
        test_accuracy: accuracy(scores, pooled.labels),
        auroc: auroc(scores, pooled.labels),
        auroc_ci: auroc_ci_clustered(scores, pooled.labels, pooled.framings, pooled.tasks, bootstrap, seed),
        tpr_at_1pct_fpr: tpr_at_fpr(scores, pooled.labels, 0.01),
    }
}

/// Scores a fitted probe on one fold: (train accuracy, test scores).
pub fn score_fold(probe: &LinearProbe, (x_train, y_train): (&ArrayView2<'_, f64>, &[bool]), x_test: &ArrayView2<'_, f64>) -> (f64, Vec<f64>) {
    (accuracy(&probe.scores(x_train), y_train), probe.scores(x_test))
}

/// Random-direction baseline: the best and mean test AUROC of `n` seeded random unit
/// directions in standardised space, each oriented on the train set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomBaseline {
    pub n: usize,
    pub best_auroc: f64,
    pub mean_auroc: f64,
    /// 95th percentile of the directions' AUROCs.
    pub p95_auroc: f64,
}

/// The test scores of `n` seeded random directions in standardised space, each oriented
/// (sign chosen) on the train set: one row per direction.
pub fn random_direction_scores(
    (x_train, y_train): (&ArrayView2<'_, f64>, &[bool]),
    x_test: &ArrayView2<'_, f64>,
    n: usize,
    seed: u64,
) -> Vec<Vec<f64>> {
    let st = Standardizer::fit(x_train);
    let (tr, te) = (st.apply(x_train), st.apply(x_test));
    let mut rng = StdRng::seed_from_u64(seed);
    let d = x_train.ncols();
    (0..n)
        .map(|_| {
            let u: Array1<f64> = (0..d).map(|_| StandardNormal.sample(&mut rng)).collect();
            let sign = if auroc(&tr.dot(&u).to_vec(), y_train) >= 0.5 { 1.0 } else { -1.0 };
            (te.dot(&u) * sign).to_vec()
        })
        .collect()
}

/// Summarises the test AUROCs of random directions; `None` when there are none.
pub fn summarize_random(aucs: &[f64]) -> Option<RandomBaseline> {
    let n = aucs.len();
    if n == 0 {
        return None;
    }
    let mut sorted = aucs.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(RandomBaseline {
        n,
        best_auroc: sorted[n - 1],
        mean_auroc: aucs.iter().sum::<f64>() / n as f64,
        p95_auroc: sorted[((0.95 * (n - 1) as f64).round() as usize).min(n - 1)],
    })
}

/// One-fold random-direction baseline (train and test given), for benches and tests.
pub fn random_directions(
    train: (&ArrayView2<'_, f64>, &[bool]),
    (x_test, y_test): (&ArrayView2<'_, f64>, &[bool]),
    n: usize,
    seed: u64,
) -> Option<RandomBaseline> {
    let aucs: Vec<f64> = random_direction_scores(train, x_test, n, seed).iter().map(|s| auroc(s, y_test)).collect();
    summarize_random(&aucs)
}

/// Shuffled-label baseline: a logistic probe trained on seeded permuted train labels, and the
/// permuted labels it was trained on.
pub fn shuffled_label_probe(
    (x_train, y_train): (&ArrayView2<'_, f64>, &[bool]),
    c: f64,
    max_iter: u64,
    seed: u64,
    hook: &str,
) -> Result<(LinearProbe, Vec<bool>)> {
    let mut y = y_train.to_vec();
    y.shuffle(&mut StdRng::seed_from_u64(seed));
    Ok((fit_logistic(x_train, &y, c, max_iter, hook)?, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn toy() -> (Array2<f64>, Vec<bool>) {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 80;
        let mut x = Array2::<f64>::zeros((n, 5));
        let mut y = Vec::new();
        for i in 0..n {
            let label = i % 2 == 0;
            for j in 0..5 {
                let noise: f64 = StandardNormal.sample(&mut rng);
                x[[i, j]] = noise + if j == 2 && label { 3.0 } else { 0.0 };
            }
            y.push(label);
        }
        (x, y)
    }

    #[test]
    fn both_probes_separate_a_shifted_feature() {
        let (x, y) = toy();
        let v = x.view();
        let lr = fit_logistic(&v, &y, 1.0, 200, "toy").unwrap();
        let mm = fit_mass_mean(&v, &y);
        for p in [&lr, &mm] {
            let (train_acc, scores) = score_fold(p, (&v, &y), &v);
            let units: Vec<usize> = (0..y.len()).collect();
            let m = pooled_metrics(train_acc, &scores, Pooled { labels: &y, framings: &units, tasks: &units }, 50, 1);
            assert!(m.auroc > 0.9 && m.test_accuracy > 0.8, "{m:?}");
        }
        // The direction points at the shifted feature.
        assert!(mm.unit_direction()[2] > 0.9);
        let base = random_directions((&v, &y), (&v, &y), 20, 5).unwrap();
        assert!(base.best_auroc < 1.0 && base.mean_auroc > 0.3);
    }

    #[test]
    fn standardizer_never_divides_by_zero() {
        let x = array![[1.0, 2.0], [1.0, 4.0]];
        let st = Standardizer::fit(&x.view());
        assert!(st.apply(&x.view()).iter().all(|v| v.is_finite()));
    }
}
