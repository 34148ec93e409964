//! Train/test splits of the labelled prompts, every random choice seeded from the spec.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::contrast::ContrastSet;
use crate::error::{ProbeError, Result};
use crate::spec::{Condition, ExperimentSpec, Split};

/// One train/test partition of prompt indices (neutral prompts are in neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Derives a sub-seed for one purpose from the spec's root seed (SplitMix64 of seed ⊕ hash).
pub fn sub_seed(seed: u64, purpose: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in purpose.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded quarter (at least one) of `items`, as a set.
fn quarter<T: Ord + Clone>(mut items: Vec<T>, seed: u64) -> BTreeSet<T> {
    let n = (items.len() / 4).max(1).min(items.len().saturating_sub(1)).max(1);
    items.shuffle(&mut StdRng::seed_from_u64(seed));
    items.into_iter().take(n).collect()
}

/// Splits the labelled prompts as the spec says.
pub fn make_folds(spec: &ExperimentSpec, set: &ContrastSet) -> Result<Vec<Fold>> {
    let labelled: Vec<usize> =
        (0..set.items.len()).filter(|&i| set.items[i].condition != Condition::Neutral).collect();
    let seed = sub_seed(spec.seed, "split");
    let framings = &spec.scenario.framings;
    let folds = match &spec.split {
        Split::ByFraming => {
            let marked: BTreeSet<usize> = (0..framings.len()).filter(|&f| framings[f].held_out).collect();
            let test_framings = if marked.is_empty() {
                let mut t = BTreeSet::new();
                for (k, cond) in [Condition::Observed, Condition::Unobserved].into_iter().enumerate() {
                    let pool: Vec<usize> = (0..framings.len()).filter(|&f| framings[f].condition == cond).collect();
                    t.extend(quarter(pool, seed.wrapping_add(k as u64)));
                }
                t
            } else {
                marked
            };
            let (test, train) = labelled.iter().partition(|&&i| test_framings.contains(&set.items[i].framing));
            vec![Fold { train, test }]
        }
        Split::ByFamily => {
            let families: Vec<String> = spec.scenario.tasks.iter().map(|t| t.family.clone()).collect::<BTreeSet<_>>().into_iter().collect();
            if families.len() < 2 {
                return Err(crate::error::spec_err("split", "by_family needs at least two task families"));
            }
            let test_fams = quarter(families, seed);
            let (test, train) = labelled
                .iter()
                .partition(|&&i| test_fams.contains(&spec.scenario.tasks[set.items[i].task].family));
            vec![Fold { train, test }]
        }
        Split::Random { test_fraction } => {
            let mut idx = labelled.clone();
            idx.shuffle(&mut StdRng::seed_from_u64(seed));
            let n_test = ((idx.len() as f64) * test_fraction).round() as usize;
            let test: Vec<usize> = {
                let mut t = idx[..n_test].to_vec();
                t.sort_unstable();
                t
            };
            let mut train = idx[n_test..].to_vec();
            train.sort_unstable();
            vec![Fold { train, test }]
        }
        Split::LeaveFramingsOut { k } => {
            // Deal each condition's shuffled framings round-robin into k groups.
            let mut group = vec![usize::MAX; framings.len()];
            for (c, cond) in [Condition::Observed, Condition::Unobserved].into_iter().enumerate() {
                let mut pool: Vec<usize> = (0..framings.len()).filter(|&f| framings[f].condition == cond).collect();
                pool.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_add(c as u64)));
                for (j, f) in pool.into_iter().enumerate() {
                    group[f] = j % k;
                }
            }
            (0..*k)
                .map(|g| {
                    let (test, train) = labelled.iter().partition(|&&i| group[set.items[i].framing] == g);
                    Fold { train, test }
                })
                .collect()
        }
        Split::KFold { k } => {
            let mut idx = labelled.clone();
            idx.shuffle(&mut StdRng::seed_from_u64(seed));
            (0..*k)
                .map(|f| {
                    let mut test: Vec<usize> = idx.iter().enumerate().filter(|(j, _)| j % k == f).map(|(_, &i)| i).collect();
                    let mut train: Vec<usize> = idx.iter().enumerate().filter(|(j, _)| j % k != f).map(|(_, &i)| i).collect();
                    test.sort_unstable();
                    train.sort_unstable();
                    Fold { train, test }
                })
                .collect()
        }
    };
    for fold in &folds {
        for (part, ids) in [("train", &fold.train), ("test", &fold.test)] {
            let pos = ids.iter().filter(|&&i| set.items[i].condition == Condition::Unobserved).count();
            if pos == 0 || pos == ids.len() {
                return Err(ProbeError::OneClass {
                    split: spec.split.name(),
                    part,
                    n: ids.len(),
                    class: if pos == 0 { "observed (or none)" } else { "unobserved" },
                });
            }
        }
    }
    Ok(folds)
}

/// Splits one fold's train prompts into (inner train, validation) for choosing a layer: a
/// seeded quarter (at least one) of each condition's framings becomes validation. `None` if a
/// condition has fewer than two framings in the fold's train side, so none can be spared.
pub fn validation_split(set: &ContrastSet, train: &[usize], seed: u64) -> Option<(Vec<usize>, Vec<usize>)> {
    let mut validation = BTreeSet::new();
    for (c, cond) in [Condition::Observed, Condition::Unobserved].into_iter().enumerate() {
        let framings: Vec<usize> = train
            .iter()
            .filter(|&&i| set.items[i].condition == cond)
            .map(|&i| set.items[i].framing)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if framings.len() < 2 {
            return None;
        }
        validation.extend(quarter(framings, seed.wrapping_add(c as u64)));
    }
    let (val, inner): (Vec<usize>, Vec<usize>) = train.iter().partition(|&&i| validation.contains(&set.items[i].framing));
    Some((inner, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_seeds_differ_by_purpose_and_are_stable() {
        assert_ne!(sub_seed(1, "split"), sub_seed(1, "pca"));
        assert_eq!(sub_seed(1, "split"), sub_seed(1, "split"));
    }

    #[test]
    fn leave_framings_out_tests_every_framing_once_and_never_trains_on_it() {
        let mut spec = crate::scenarios::smollm2_default();
        spec.split = Split::LeaveFramingsOut { k: 3 };
        spec.validate().unwrap();
        let fr = &spec.scenario.framings;
        let items = (0..fr.len())
            .flat_map(|f| (0..spec.scenario.tasks.len()).map(move |t| (f, t)))
            .map(|(framing, task)| crate::contrast::PromptItem { framing, task, condition: fr[framing].condition, tokens: vec![1], task_span: (0, 1) })
            .collect();
        let set = ContrastSet { items, aligned_token: vec![], misaligned_token: vec![] };
        let folds = make_folds(&spec, &set).unwrap();
        assert_eq!(folds.len(), 3);
        let mut tested = BTreeSet::new();
        for fold in &folds {
            let test_fr: BTreeSet<usize> = fold.test.iter().map(|&i| set.items[i].framing).collect();
            let train_fr: BTreeSet<usize> = fold.train.iter().map(|&i| set.items[i].framing).collect();
            assert!(test_fr.is_disjoint(&train_fr), "a framing is on both sides of a fold");
            for f in test_fr {
                assert!(tested.insert(f), "framing {f} tested twice");
            }
        }
        let labelled: BTreeSet<usize> =
            (0..spec.scenario.framings.len()).filter(|&f| spec.scenario.framings[f].condition != Condition::Neutral).collect();
        assert_eq!(tested, labelled);
        // Each fold's validation framings come from its train side only.
        for (fi, fold) in folds.iter().enumerate() {
            let (inner, val) = validation_split(&set, &fold.train, fi as u64).expect("enough framings");
            let fr = |ids: &[usize]| ids.iter().map(|&i| set.items[i].framing).collect::<BTreeSet<_>>();
            assert!(fr(&val).is_disjoint(&fr(&inner)) && fr(&val).is_disjoint(&fr(&fold.test)));
            assert_eq!(inner.len() + val.len(), fold.train.len());
        }
    }
}
