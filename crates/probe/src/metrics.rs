//! Classification metrics: accuracy, AUROC (with a seeded bootstrap interval) and TPR at a
//! fixed false-positive rate. Labels are `true` for the positive class (unobserved).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Fraction of `scores > 0` that agree with `labels`.
pub fn accuracy(scores: &[f64], labels: &[bool]) -> f64 {
    if scores.is_empty() {
        return f64::NAN;
    }
    let right = scores.iter().zip(labels).filter(|(s, l)| (**s > 0.0) == **l).count();
    right as f64 / scores.len() as f64
}

/// Area under the ROC curve: the probability that a random positive outscores a random
/// negative, ties counting one half (Mann–Whitney U with average ranks).
pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let n_pos = labels.iter().filter(|l| **l).count();
    let n_neg = labels.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum_pos += avg_rank;
            }
        }
        i = j + 1;
    }
    (rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos as f64 * n_neg as f64)
}

/// 95% percentile interval of the AUROC over `n` seeded bootstrap resamples of single
/// prompts. Only right when prompts are independent; reports use [`auroc_ci_clustered`].
pub fn auroc_ci(scores: &[f64], labels: &[bool], n: usize, seed: u64) -> [f64; 2] {
    let units: Vec<usize> = (0..scores.len()).collect();
    auroc_ci_clustered(scores, labels, &units, &vec![0; scores.len()], n, seed)
}

/// The 2.5% and 97.5% percentiles of `vals` (NaN-free), or NaN if there are none.
fn percentile_interval(mut vals: Vec<f64>) -> [f64; 2] {
    if vals.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    vals.sort_by(f64::total_cmp);
    let q = |p: f64| vals[((p * (vals.len() - 1) as f64).round() as usize).min(vals.len() - 1)];
    [q(0.025), q(0.975)]
}

/// How many distinct framings of each class, and tasks, stand behind a set of test prompts:
/// the number of independent units an interval over them rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Units {
    pub prompts: usize,
    /// Framings whose prompts are all negative (observed).
    pub negative_framings: usize,
    /// Framings whose prompts are all positive (unobserved).
    pub positive_framings: usize,
    /// Framings holding prompts of both classes (none in a Hawthorne contrast set).
    pub mixed_framings: usize,
    pub tasks: usize,
}

/// Strata of framings for the bootstrap: all-negative, all-positive and mixed framings,
/// each a list of framing ids; and the distinct task ids.
fn strata(labels: &[bool], framings: &[usize], tasks: &[usize]) -> ([Vec<usize>; 3], Vec<usize>) {
    use std::collections::BTreeMap;
    let mut classes: BTreeMap<usize, (bool, bool)> = BTreeMap::new();
    for (&f, &l) in framings.iter().zip(labels) {
        let e = classes.entry(f).or_insert((false, false));
        if l { e.1 = true } else { e.0 = true }
    }
    let mut st: [Vec<usize>; 3] = Default::default();
    for (f, (neg, pos)) in classes {
        st[match (neg, pos) { (true, false) => 0, (false, true) => 1, _ => 2 }].push(f);
    }
    let mut t = tasks.to_vec();
    t.sort_unstable();
    t.dedup();
    (st, t)
}

/// Counts the independent units behind `labels`, grouped by `framings` and `tasks`.
pub fn units(labels: &[bool], framings: &[usize], tasks: &[usize]) -> Units {
    let ([neg, pos, mixed], t) = strata(labels, framings, tasks);
    Units { prompts: labels.len(), negative_framings: neg.len(), positive_framings: pos.len(), mixed_framings: mixed.len(), tasks: t.len() }
}

/// 95% percentile interval of the AUROC over `n` seeded two-way cluster bootstrap resamples.
///
/// Prompts that share a framing, or a task, are not independent: resampling single prompts
/// would pretend that 100 prompts from four framings were 100 observations. Each resample
/// draws framings with replacement (within the all-negative, all-positive and mixed strata,
/// so that both classes stay present) and, independently, tasks with replacement; a prompt
/// enters as many times as its framing times its task was drawn (the "pigeonhole" bootstrap
/// of Owen 2007 for crossed random effects). Written here because no maintained crate offers a
/// crossed cluster bootstrap.
pub fn auroc_ci_clustered(scores: &[f64], labels: &[bool], framings: &[usize], tasks: &[usize], n: usize, seed: u64) -> [f64; 2] {
    if n == 0 || scores.is_empty() {
        // No resampling asked for: a zero-width interval at the point estimate.
        let a = auroc(scores, labels);
        return [a, a];
    }
    let (st, task_ids) = strata(labels, framings, tasks);
    let index = |ids: &[usize], x: usize| ids.binary_search(&x).expect("id collected from the same slice");
    let all_framings: Vec<usize> = {
        let mut v: Vec<usize> = st.iter().flatten().copied().collect();
        v.sort_unstable();
        v
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut vals = Vec::with_capacity(n);
    let (mut s, mut l) = (Vec::with_capacity(scores.len()), Vec::with_capacity(scores.len()));
    let mut f_count = vec![0usize; all_framings.len()];
    let mut t_count = vec![0usize; task_ids.len()];
    for _ in 0..n {
        f_count.iter_mut().for_each(|c| *c = 0);
        t_count.iter_mut().for_each(|c| *c = 0);
        for stratum in &st {
            for _ in 0..stratum.len() {
                let f = stratum[rng.random_range(0..stratum.len())];
                f_count[index(&all_framings, f)] += 1;
            }
        }
        for _ in 0..task_ids.len() {
            t_count[rng.random_range(0..task_ids.len())] += 1;
        }
        s.clear();
        l.clear();
        for k in 0..scores.len() {
            let w = f_count[index(&all_framings, framings[k])] * t_count[index(&task_ids, tasks[k])];
            for _ in 0..w {
                s.push(scores[k]);
                l.push(labels[k]);
            }
        }
        let a = auroc(&s, &l);
        if a.is_finite() {
            vals.push(a);
        }
    }
    percentile_interval(vals)
}

/// The classes' separation d′: (mean of positives − mean of negatives) over the root mean of
/// their variances; 0 if either class is empty, infinite if both are constant and apart.
pub fn separation(scores: &[f64], labels: &[bool]) -> f64 {
    let class = |want: bool| -> (f64, f64, usize) {
        let v: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| **l == want).map(|(s, _)| *s).collect();
        let n = v.len().max(1) as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n, v.len())
    };
    let ((mp, vp, np), (mn, vn, nn)) = (class(true), class(false));
    if np == 0 || nn == 0 {
        return 0.0;
    }
    (mp - mn) / ((vp + vn) / 2.0).sqrt()
}

/// True-positive rate at the strictest threshold whose false-positive rate is ≤ `fpr`.
/// With fewer than 1/fpr negatives this means no false positives at all.
pub fn tpr_at_fpr(scores: &[f64], labels: &[bool], fpr: f64) -> f64 {
    let mut neg: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| !**l).map(|(s, _)| *s).collect();
    let pos: Vec<f64> = scores.iter().zip(labels).filter(|(_, l)| **l).map(|(s, _)| *s).collect();
    if neg.is_empty() || pos.is_empty() {
        return f64::NAN;
    }
    neg.sort_by(|a, b| b.total_cmp(a)); // descending
    let allowed = (fpr * neg.len() as f64).floor() as usize; // negatives allowed above threshold
    let threshold = neg[allowed.min(neg.len() - 1)];
    pos.iter().filter(|s| **s > threshold).count() as f64 / pos.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_handles_perfect_inverse_and_ties() {
        let l = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &l), 1.0);
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &l), 0.0);
        assert_eq!(auroc(&[0.5, 0.5, 0.5, 0.5], &l), 0.5);
        assert!(auroc(&[0.1], &[true]).is_nan());
        // One positive below one negative: 3 of 4 pairs ordered.
        assert_eq!(auroc(&[0.1, 0.6, 0.5, 0.9], &l), 0.75);
    }

    #[test]
    fn tpr_at_low_fpr_uses_the_largest_negative() {
        let s = [0.1, 0.2, 0.3, 0.25, 0.35, 0.05];
        let l = [false, false, false, true, true, true];
        assert!((tpr_at_fpr(&s, &l, 0.01) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded() {
        let s: Vec<f64> = (0..40).map(|i| f64::from(i) * 0.1).collect();
        let l: Vec<bool> = (0..40).map(|i| i % 3 == 0).collect();
        assert_eq!(auroc_ci(&s, &l, 50, 7), auroc_ci(&s, &l, 50, 7));
        let [lo, hi] = auroc_ci(&s, &l, 200, 1);
        assert!(lo <= auroc(&s, &l) && auroc(&s, &l) <= hi);
    }

    /// 40 prompts from 4 framings (2 per class) and 10 tasks, with a framing-level effect:
    /// the prompt-level bootstrap sees 40 observations, the cluster bootstrap sees 4.
    fn clustered_data() -> (Vec<f64>, Vec<bool>, Vec<usize>, Vec<usize>) {
        let (mut s, mut l, mut f, mut t) = (vec![], vec![], vec![], vec![]);
        let shift = [0.0, 1.5, 0.9, 2.4]; // framings 0,1 negative; 2,3 positive
        for fr in 0..4 {
            for task in 0..10 {
                s.push(shift[fr] + 0.1 * f64::from(task as u8 % 3));
                l.push(fr >= 2);
                f.push(fr);
                t.push(task);
            }
        }
        (s, l, f, t)
    }

    #[test]
    fn cluster_bootstrap_is_wider_than_the_prompt_bootstrap_when_framings_differ() {
        let (s, l, f, t) = clustered_data();
        let naive = auroc_ci(&s, &l, 400, 3);
        let clustered = auroc_ci_clustered(&s, &l, &f, &t, 400, 3);
        assert!(clustered[1] - clustered[0] > 2.0 * (naive[1] - naive[0]), "{clustered:?} vs {naive:?}");
        assert_eq!(clustered, auroc_ci_clustered(&s, &l, &f, &t, 400, 3), "seeded");
        let a = auroc(&s, &l);
        assert!(clustered[0] <= a && a <= clustered[1]);
    }

    #[test]
    fn units_count_framings_by_class_and_tasks() {
        let (_, l, f, t) = clustered_data();
        assert_eq!(units(&l, &f, &t), Units { prompts: 40, negative_framings: 2, positive_framings: 2, mixed_framings: 0, tasks: 10 });
    }

    #[test]
    fn one_framing_per_class_gives_a_degenerate_interval_not_a_narrow_one() {
        // With one framing per class, every resample holds the same two framings: the interval
        // cannot shrink below the task-resampling spread, and stays finite.
        let s = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9];
        let l = [false, false, false, true, true, true];
        let [lo, hi] = auroc_ci_clustered(&s, &l, &[0, 0, 0, 1, 1, 1], &[0, 1, 2, 0, 1, 2], 100, 1);
        assert_eq!([lo, hi], [1.0, 1.0]);
    }

    #[test]
    fn separation_grows_with_the_gap_between_classes() {
        let l = [false, false, true, true];
        let near = separation(&[0.0, 1.0, 1.0, 2.0], &l);
        let far = separation(&[0.0, 1.0, 5.0, 6.0], &l);
        assert!(far > near && near > 0.0);
        assert_eq!(separation(&[1.0, 2.0], &[true, true]), 0.0);
    }

    #[test]
    fn accuracy_counts_sign_agreement() {
        assert_eq!(accuracy(&[1.0, -1.0, 2.0], &[true, false, false]), 2.0 / 3.0);
    }
}

/// The first two principal components of the rows of `x`: (the rows' coordinates on them,
/// their explained-variance ratios). `None` for fewer than two rows, non-finite values or no
/// variance.
///
/// Written here rather than with linfa-reduction's `Pca`: its truncated SVD (LOBPCG) panics
/// with "NaN values in array" on ill-conditioned readouts, such as SmolLM2's mean-over-prompt
/// activations, where a few massive dimensions dominate; a panic would abort the worker. Power
/// iteration with deflation on the covariance matrix is enough for two components, is
/// deterministic, and cannot panic. The unit test checks it against linfa's on ordinary data.
pub fn pca2(x: &ndarray::Array2<f64>) -> Option<(Vec<[f64; 2]>, [f64; 2])> {
    use ndarray::{Array1, Axis};
    let (n, d) = x.dim();
    if n < 2 || d == 0 || x.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mean = x.mean_axis(Axis(0))?;
    let xc = x - &mean;
    let cov = xc.t().dot(&xc) / (n as f64 - 1.0);
    let total: f64 = cov.diag().sum();
    if !(total > 0.0) || !total.is_finite() {
        return None;
    }
    let mut deflated = cov;
    let mut comps: Vec<Array1<f64>> = Vec::new();
    let mut ratios = [0.0; 2];
    for (k, ratio) in ratios.iter_mut().enumerate() {
        // Start from a fixed vector with a weight on every dimension, so runs agree.
        let mut v: Array1<f64> = (0..d).map(|i| 1.0 + (i as f64 * 0.618_033_988_75).fract()).collect();
        let norm = v.dot(&v).sqrt();
        v /= norm;
        let mut lambda = 0.0;
        for _ in 0..2000 {
            let w = deflated.dot(&v);
            let norm = w.dot(&w).sqrt();
            if !(norm > 0.0) || !norm.is_finite() {
                break;
            }
            let next = &w / norm;
            let delta = (&next - &v).mapv(f64::abs).sum().min((&next + &v).mapv(f64::abs).sum());
            v = next;
            lambda = norm;
            if delta < 1e-12 {
                break;
            }
        }
        if k == 1 && lambda <= 0.0 {
            v = Array1::zeros(d);
        }
        *ratio = (lambda / total).clamp(0.0, 1.0);
        // Deflate: remove the found component's variance.
        let outer = v.view().insert_axis(Axis(1)).dot(&v.view().insert_axis(Axis(0)));
        deflated = &deflated - &(outer * lambda);
        comps.push(v);
    }
    let coords = xc.rows().into_iter().map(|r| [r.dot(&comps[0]), r.dot(&comps[1])]).collect();
    Some((coords, ratios))
}

#[cfg(test)]
mod pca_tests {
    use super::pca2;
    use linfa::prelude::*;
    use ndarray::Array2;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn matches_linfa_on_ordinary_data_and_refuses_nan() {
        let mut rng = StdRng::seed_from_u64(5);
        // Three directions with decreasing spread, plus noise.
        let x = Array2::from_shape_fn((60, 8), |(i, j)| {
            let z: f64 = StandardNormal.sample(&mut rng);
            let t = i as f64;
            match j {
                0 => 5.0 * (t * 0.3).sin() + 0.1 * z,
                1 => 2.0 * (t * 0.7).cos() + 0.1 * z,
                _ => 0.3 * z,
            }
        });
        let (coords, ratios) = pca2(&x).expect("finite data");
        let reference = linfa_reduction::Pca::params(2).fit(&DatasetBase::from(x.clone())).expect("linfa fits");
        let want = reference.predict(&x);
        // Ratios are of the total variance, as scikit-learn's `explained_variance_ratio_` (linfa
        // divides by the kept components' variance only): each is its coordinates' variance
        // over the sum of the columns' variances.
        let var = |v: Vec<f64>| {
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (v.len() as f64 - 1.0)
        };
        let total: f64 = x.columns().into_iter().map(|c| var(c.to_vec())).sum();
        for k in 0..2 {
            let want_ratio = var(coords.iter().map(|c| c[k]).collect()) / total;
            assert!((ratios[k] - want_ratio).abs() < 1e-9, "ratio {k}: {} vs {want_ratio}", ratios[k]);
            // Components agree up to sign.
            let sign = if coords[0][k] * want[[0, k]] >= 0.0 { 1.0 } else { -1.0 };
            for (i, c) in coords.iter().enumerate() {
                assert!((sign * c[k] - want[[i, k]]).abs() < 1e-6, "row {i} component {k}");
            }
        }
        let mut bad = x.clone();
        bad[[3, 2]] = f64::NAN;
        assert!(pca2(&bad).is_none());
        assert!(pca2(&Array2::zeros((5, 3))).is_none(), "no variance");
    }
}
