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

/// 95% percentile interval of the AUROC over `n` seeded bootstrap resamples.
pub fn auroc_ci(scores: &[f64], labels: &[bool], n: usize, seed: u64) -> [f64; 2] {
    if n == 0 || scores.is_empty() {
        // No resampling asked for: a zero-width interval at the point estimate.
        let a = auroc(scores, labels);
        return [a, a];
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut vals = Vec::with_capacity(n);
    let (mut s, mut l) = (Vec::with_capacity(scores.len()), Vec::with_capacity(scores.len()));
    for _ in 0..n {
        s.clear();
        l.clear();
        for _ in 0..scores.len() {
            let k = rng.random_range(0..scores.len());
            s.push(scores[k]);
            l.push(labels[k]);
        }
        let a = auroc(&s, &l);
        if a.is_finite() {
            vals.push(a);
        }
    }
    if vals.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    vals.sort_by(f64::total_cmp);
    let q = |p: f64| vals[((p * (vals.len() - 1) as f64).round() as usize).min(vals.len() - 1)];
    [q(0.025), q(0.975)]
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

    #[test]
    fn accuracy_counts_sign_agreement() {
        assert_eq!(accuracy(&[1.0, -1.0, 2.0], &[true, false, false]), 2.0 / 3.0);
    }
}
