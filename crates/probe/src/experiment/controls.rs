//! Stage 3: the selected probe's pipeline (fit per fold, layer chosen on validation framings,
//! pooled test AUROC) under the true labels and under framing-level label permutations, a
//! random direction chosen the same way, the lexical controls, and the verdict.
//!
//! One step per probed hook streams the pipeline (each labelling keeps, per fold, the hook
//! with the best validation score so far, so nothing per hook is stored); a last step adds the
//! lexical controls and assembles [`report::Controls`].

use super::*;
use crate::lexical;
use crate::metrics::{auroc, separation};
use crate::report::{ControlResult, Controls, GroupResult, Permutation};

/// Per labelling and fold: the hook chosen so far and what the run needs from it.
#[derive(Debug, Clone)]
pub(super) struct Best {
    /// (validation AUROC, d′), NaN counted as lowest: higher wins, earlier hook on ties.
    key: (f64, f64),
    pub(super) hook: usize,
    pub(super) val_auroc: f64,
    pub(super) train_accuracy: f64,
    pub(super) test_scores: Vec<f64>,
}

/// State of the controls stage.
#[derive(Debug, Default)]
pub(super) struct ControlState {
    /// Per labelling (0 = the true one, then the permutations): each framing's label.
    labellings: Vec<Vec<bool>>,
    /// `[labelling][fold]`.
    pub(super) best: Vec<Vec<Option<Best>>>,
    /// `[fold]`: the random direction (over hooks and draws) with the best validation score.
    random: Vec<Option<Best>>,
    pub(super) result: Option<Controls>,
    /// The layer choice the verdict was made on, kept for the report.
    pub(super) choice: Option<report::LayerChoice>,
}

fn key(auroc: f64, d: f64) -> (f64, f64) {
    let finite = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    (finite(auroc), finite(d))
}

fn offer(slot: &mut Option<Best>, cand: Best) {
    if slot.as_ref().is_none_or(|b| cand.key > b.key) {
        *slot = Some(cand);
    }
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// Whether the layer can be chosen on validation framings in every fold.
    pub(super) fn has_validation(&self) -> bool {
        !self.inner.is_empty() && self.inner.iter().all(Option::is_some)
    }

    pub(super) fn init_controls(&mut self) {
        let fr = &self.spec.scenario.framings;
        let truth: Vec<bool> = fr.iter().map(|f| f.condition == Condition::Unobserved).collect();
        let labelled: Vec<usize> = (0..fr.len()).filter(|&f| fr[f].condition != Condition::Neutral).collect();
        let n_perm = if self.has_validation() { self.spec.baselines.permutations } else { 0 };
        let mut labellings = vec![truth.clone()];
        for p in 0..n_perm {
            let mut conds: Vec<bool> = labelled.iter().map(|&f| truth[f]).collect();
            conds.shuffle(&mut StdRng::seed_from_u64(sub_seed(self.spec.seed, &format!("permutation/{p}"))));
            let mut l = truth.clone();
            for (&f, c) in labelled.iter().zip(conds) {
                l[f] = c;
            }
            labellings.push(l);
        }
        self.controls = ControlState {
            best: vec![vec![None; self.folds.len()]; labellings.len()],
            random: vec![None; self.folds.len()],
            labellings,
            result: None,
            choice: None,
        };
    }

    fn fit_selected(&self, x: &Array2<f64>, rows: &[usize], y: &[bool], name: &str) -> Result<probes::LinearProbe> {
        let xs = x.select(Axis(0), rows);
        Ok(match self.spec.probes.select {
            DirectionKind::MassMean => probes::fit_mass_mean(&xs.view(), y),
            DirectionKind::Logistic => probes::fit_logistic(&xs.view(), y, self.spec.probes.c, self.spec.probes.max_iter, name)?,
        })
    }

    /// One unit of the controls stage: hook `cursor`, or the lexical controls and the verdict
    /// after the last hook.
    pub(super) fn step_controls(&mut self) -> Result<Progress> {
        if self.cursor == 0 && self.controls.labellings.is_empty() {
            self.init_controls();
        }
        let total = self.hooks.len() + 1;
        if self.cursor < self.hooks.len() {
            if self.has_validation() {
                self.controls_hook(self.cursor)?;
            }
        } else {
            let (controls, choice) = self.finish_controls()?;
            self.controls.result = Some(controls);
            self.controls.choice = choice;
        }
        self.cursor += 1;
        let p = Progress { stage: Stage::Controls, done: self.cursor, total };
        if self.cursor >= total {
            self.advance(Stage::LogitLens);
        }
        Ok(p)
    }

    /// Runs the selected probe's pipeline at hook `k` for every labelling and fold, and the
    /// random directions for the true labels.
    fn controls_hook(&mut self, k: usize) -> Result<()> {
        let name = self.hooks[k].to_string();
        let all: Vec<usize> = (0..self.set.items.len()).collect();
        let x = self.matrix(&self.acts[k], &all);
        let framing: Vec<usize> = self.set.items.iter().map(|i| i.framing).collect();
        let mut best = std::mem::take(&mut self.controls.best);
        for (p, labelling) in self.controls.labellings.iter().enumerate() {
            let y = |rows: &[usize]| rows.iter().map(|&i| labelling[framing[i]]).collect::<Vec<bool>>();
            for (fi, fold) in self.folds.iter().enumerate() {
                let Some((inner, val)) = &self.inner[fi] else { continue };
                let probe = self.fit_selected(&x, inner, &y(inner), &name)?;
                let v = probe.scores(&x.select(Axis(0), val).view());
                let yv = y(val);
                let cand_key = key(auroc(&v, &yv), separation(&v, &yv));
                if best[p][fi].as_ref().is_some_and(|b| cand_key <= b.key) {
                    continue;
                }
                let ytr = y(&fold.train);
                let probe = self.fit_selected(&x, &fold.train, &ytr, &name)?;
                let (train_accuracy, test_scores) = probes::score_fold(&probe, (&x.select(Axis(0), &fold.train).view(), &ytr), &x.select(Axis(0), &fold.test).view());
                offer(&mut best[p][fi], Best { key: cand_key, hook: k, val_auroc: cand_key.0, train_accuracy, test_scores });
            }
        }
        self.controls.best = best;
        // A random direction chosen the same way: the best validation score over every hook
        // and draw, then scored on the fold's test prompts.
        let n = self.spec.baselines.random_directions;
        if n > 0 {
            let mut rng = StdRng::seed_from_u64(sub_seed(self.spec.seed, &format!("random-control/{name}")));
            let units: Vec<Array1<f64>> = (0..n).map(|_| (0..x.ncols()).map(|_| StandardNormal.sample(&mut rng)).collect()).collect();
            let truth = &self.controls.labellings[0];
            let y = |rows: &[usize]| rows.iter().map(|&i| truth[framing[i]]).collect::<Vec<bool>>();
            for (fi, fold) in self.folds.iter().enumerate() {
                let Some((inner, val)) = &self.inner[fi] else { continue };
                let (xi, xv) = (x.select(Axis(0), inner), x.select(Axis(0), val));
                let st = probes::Standardizer::fit(&xi.view());
                let (si, sv) = (st.apply(&xi.view()), st.apply(&xv.view()));
                let (yi, yv) = (y(inner), y(val));
                for u in &units {
                    let sign = if auroc(&si.dot(u).to_vec(), &yi) >= 0.5 { 1.0 } else { -1.0 };
                    let v: Vec<f64> = sv.dot(u).iter().map(|s| s * sign).collect();
                    let cand_key = key(auroc(&v, &yv), separation(&v, &yv));
                    if self.controls.random[fi].as_ref().is_some_and(|b| cand_key <= b.key) {
                        continue;
                    }
                    let (xtr, xte) = (x.select(Axis(0), &fold.train), x.select(Axis(0), &fold.test));
                    let st = probes::Standardizer::fit(&xtr.view());
                    let (str_, ste) = (st.apply(&xtr.view()), st.apply(&xte.view()));
                    let ytr = y(&fold.train);
                    let sign = if auroc(&str_.dot(u).to_vec(), &ytr) >= 0.5 { 1.0 } else { -1.0 };
                    let test_scores = ste.dot(u).iter().map(|s| s * sign).collect();
                    let train_accuracy = crate::metrics::accuracy(&str_.dot(u).iter().map(|s| s * sign).collect::<Vec<_>>(), &ytr);
                    offer(&mut self.controls.random[fi], Best { key: cand_key, hook: k, val_auroc: cand_key.0, train_accuracy, test_scores });
                }
            }
        }
        Ok(())
    }

    /// Pooled test metrics of a per-fold choice, under the true labels.
    fn pooled_choice(&self, per_fold: &[Option<Best>], seed: &str) -> Option<probes::ProbeMetrics> {
        let mut scores = Vec::new();
        let mut acc = 0.0;
        for b in per_fold {
            let b = b.as_ref()?;
            scores.extend(b.test_scores.iter().copied());
            acc += b.train_accuracy;
        }
        let pooled = self.pooled();
        let seed = sub_seed(self.spec.seed, seed);
        Some(probes::pooled_metrics(acc / per_fold.len().max(1) as f64, &scores, pooled.view(), self.spec.probes.bootstrap, seed))
    }

    /// The selected probe at the hooks chosen on validation (true labels).
    pub(super) fn layer_choice(&self) -> Option<report::LayerChoice> {
        let per_fold = self.controls.best.first()?;
        let test = self.pooled_choice(per_fold, "bootstrap-chosen-layer")?;
        let chosen = per_fold.iter().map(|b| b.as_ref().map(|b| (self.hooks[b.hook].to_string(), b.val_auroc))).collect::<Option<Vec<_>>>()?;
        let select = self.spec.probes.select;
        let best_on_test = self
            .probes
            .iter()
            .map(|h| if select == DirectionKind::Logistic { h.logistic.auroc } else { h.mass_mean.auroc })
            .filter(|a| a.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        Some(report::LayerChoice { probe: direction_name(select).into(), chosen, test, best_on_test })
    }

    /// The prompt text a lexical control reads: the system framing, then the user turn.
    fn prompt_text(&self, i: usize) -> String {
        let it = &self.set.items[i];
        let f = &self.spec.scenario.framings[it.framing];
        format!("{}\n{}", f.text, f.user_text(&self.spec.scenario.tasks[it.task]))
    }

    fn finish_controls(&self) -> Result<(Controls, Option<report::LayerChoice>)> {
        let pooled = self.pooled();
        let labels = &pooled.labels;
        let mut lexical = Vec::new();
        let mut tfidf_test: Option<Vec<f64>> = None;
        if self.spec.baselines.lexical {
            // Per control: (summed train accuracy, pooled test scores).
            let (mut tfidf, mut length) = ((0.0, Vec::new()), (0.0, Vec::new()));
            for fold in &self.folds {
                let ytr = self.labels(&fold.train);
                let text = |rows: &[usize]| rows.iter().map(|&i| self.prompt_text(i)).collect::<Vec<String>>();
                let len = |rows: &[usize]| rows.iter().map(|&i| self.set.items[i].tokens.len()).collect::<Vec<usize>>();
                let scored = [
                    lexical::tfidf_scores(&text(&fold.train), &ytr, &text(&fold.test), self.spec.probes.c, self.spec.probes.max_iter)?,
                    lexical::length_scores(&len(&fold.train), &ytr, &len(&fold.test)),
                ];
                for (acc, (train, test)) in [&mut tfidf, &mut length].into_iter().zip(scored) {
                    acc.0 += crate::metrics::accuracy(&train, &ytr);
                    acc.1.extend(test);
                }
            }
            let folds = self.folds.len() as f64;
            let metrics = |(acc, s): &(f64, Vec<f64>), p: &str| probes::pooled_metrics(acc / folds, s, pooled.view(), self.spec.probes.bootstrap, sub_seed(self.spec.seed, p));
            lexical.push(ControlResult { name: "tfidf".into(), label: "TF-IDF words of the prompt".into(), metrics: metrics(&tfidf, "bootstrap-tfidf") });
            lexical.push(ControlResult { name: "length".into(), label: "prompt length in tokens".into(), metrics: metrics(&length, "bootstrap-length") });
            tfidf_test = Some(tfidf.1);
        }
        if let Some(embed) = self.hooks.iter().position(|h| *h == HookPoint::Embed) {
            let h = &self.probes[embed];
            let m = if self.spec.probes.select == DirectionKind::Logistic { &h.logistic } else { &h.mass_mean };
            lexical.push(ControlResult { name: "hook_embed".into(), label: "probe on hook_embed (token embeddings)".into(), metrics: m.clone() });
        }
        let random = self.has_validation().then(|| self.pooled_choice(&self.controls.random, "bootstrap-random-control")).flatten();
        let random = random.map(|metrics| ControlResult { name: "random".into(), label: "best random direction, chosen on validation".into(), metrics });
        let stats: Vec<f64> = self
            .controls
            .best
            .iter()
            .filter_map(|per_fold| {
                let scores: Option<Vec<f64>> = per_fold.iter().map(|b| b.as_ref().map(|b| b.test_scores.clone())).collect::<Option<Vec<_>>>().map(|v| v.concat());
                scores.map(|s| auroc(&s, labels))
            })
            .collect();
        let permutation = (stats.len() > 1 && stats.len() == self.controls.labellings.len()).then(|| {
            let (observed, null) = (stats[0], &stats[1..]);
            let above = null.iter().filter(|&&s| s >= observed).count();
            let mut sorted = null.to_vec();
            sorted.sort_by(f64::total_cmp);
            let p95 = sorted[((0.95 * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
            Permutation {
                n: null.len(),
                p_value: (1 + above) as f64 / (1 + null.len()) as f64,
                observed,
                null_mean: null.iter().sum::<f64>() / null.len() as f64,
                null_p95: p95,
            }
        });
        let choice = self.layer_choice();
        let verdict = report::verdict(choice.as_ref(), &lexical, random.as_ref(), permutation.as_ref());
        let groups = self.group_results(tfidf_test.as_deref());
        Ok((Controls { lexical, random, permutation, verdict, groups }, choice))
    }
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// The selected probe at the chosen layers, on each named group of test framings alone,
    /// beside the TF-IDF control's AUROC on the same group (`tfidf`: its pooled test scores).
    fn group_results(&self, tfidf: Option<&[f64]>) -> Vec<GroupResult> {
        let Some(per_fold) = self.controls.best.first() else { return Vec::new() };
        let Some(scores) = per_fold.iter().map(|b| b.as_ref().map(|b| b.test_scores.clone())).collect::<Option<Vec<_>>>() else {
            return Vec::new();
        };
        let scores = scores.concat();
        let test = self.pooled_test();
        let fr = &self.spec.scenario.framings;
        let names: std::collections::BTreeSet<&str> = test.iter().filter_map(|&i| fr[self.set.items[i].framing].group.as_deref()).collect();
        // A group whose test prompts are all of one condition has no AUROC: it is left out.
        names
            .into_iter()
            .filter_map(|name| {
                let rows: Vec<usize> = (0..test.len()).filter(|&r| fr[self.set.items[test[r]].framing].group.as_deref() == Some(name)).collect();
                let items: Vec<usize> = rows.iter().map(|&r| test[r]).collect();
                let labels = self.labels(&items);
                let framings: Vec<usize> = items.iter().map(|&i| self.set.items[i].framing).collect();
                let tasks: Vec<usize> = items.iter().map(|&i| self.set.items[i].task).collect();
                if labels.iter().all(|&l| l == labels[0]) {
                    return None;
                }
                let s: Vec<f64> = rows.iter().map(|&r| scores[r]).collect();
                let seed = sub_seed(self.spec.seed, &format!("bootstrap-group/{name}"));
                let pooled = probes::Pooled { labels: &labels, framings: &framings, tasks: &tasks };
                let tfidf_auroc = tfidf.map(|t| auroc(&rows.iter().map(|&r| t[r]).collect::<Vec<f64>>(), &labels));
                Some(GroupResult {
                    group: name.to_string(),
                    units: crate::metrics::units(&labels, &framings, &tasks),
                    tfidf_auroc,
                    metrics: probes::pooled_metrics(0.0, &s, pooled, self.spec.probes.bootstrap, seed),
                })
            })
            .collect()
    }
}

pub(super) fn direction_name(kind: DirectionKind) -> &'static str {
    match kind {
        DirectionKind::MassMean => "mass_mean",
        DirectionKind::Logistic => "logistic",
    }
}
