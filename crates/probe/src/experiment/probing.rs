//! Stage 2: probes and their controls fitted per fold, test scores pooled over folds, and the
//! layer chosen on validation framings.

use super::*;

/// The pooled test prompts' labels and the framing and task of each.
pub(super) struct PooledTest {
    pub(super) labels: Vec<bool>,
    pub(super) framings: Vec<usize>,
    pub(super) tasks: Vec<usize>,
}

impl PooledTest {
    pub(super) fn view(&self) -> probes::Pooled<'_> {
        probes::Pooled { labels: &self.labels, framings: &self.framings, tasks: &self.tasks }
    }
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// The test prompts of every fold, in fold order: the pool every probe metric is taken on.
    pub(super) fn pooled_test(&self) -> Vec<usize> {
        self.folds.iter().flat_map(|f| f.test.iter().copied()).collect()
    }

    pub(super) fn pooled(&self) -> PooledTest {
        let test = self.pooled_test();
        PooledTest {
            labels: self.labels(&test),
            framings: test.iter().map(|&i| self.set.items[i].framing).collect(),
            tasks: test.iter().map(|&i| self.set.items[i].task).collect(),
        }
    }

    /// Fits the probes and their controls on every fold and scores the pooled test prompts,
    /// so that with leave-framings-out folds each framing is tested exactly once.
    pub(super) fn step_probes(&mut self) -> Result<Progress> {
        let k = self.cursor;
        let hook = self.hooks[k];
        let name = hook.to_string();
        let sp = &self.spec;
        let n_random = sp.baselines.random_directions;
        let (mut s_lr, mut s_mm, mut s_shuf) = (Vec::new(), Vec::new(), Vec::new());
        let mut s_rand: Vec<Vec<f64>> = vec![Vec::new(); n_random];
        let (mut acc_lr, mut acc_mm, mut acc_shuf) = (0.0, 0.0, 0.0);
        for (fi, fold) in self.folds.iter().enumerate() {
            let (xtr, xte) = (self.matrix(&self.acts[k], &fold.train), self.matrix(&self.acts[k], &fold.test));
            let ytr = self.labels(&fold.train);
            let seed = |p: &str| sub_seed(sp.seed, &format!("{p}/{name}/{fi}"));
            let lr = probes::fit_logistic(&xtr.view(), &ytr, sp.probes.c, sp.probes.max_iter, &name)?;
            let mm = probes::fit_mass_mean(&xtr.view(), &ytr);
            let tr = (&xtr.view(), ytr.as_slice());
            let (a, s) = probes::score_fold(&lr, tr, &xte.view());
            acc_lr += a;
            s_lr.extend(s);
            let (a, s) = probes::score_fold(&mm, tr, &xte.view());
            acc_mm += a;
            s_mm.extend(s);
            for (pool, s) in s_rand.iter_mut().zip(probes::random_direction_scores(tr, &xte.view(), n_random, seed("random-directions"))) {
                pool.extend(s);
            }
            if sp.baselines.shuffled_labels {
                let (shuf, y) = probes::shuffled_label_probe(tr, sp.probes.c, sp.probes.max_iter, seed("shuffled"), &name)?;
                let (a, s) = probes::score_fold(&shuf, (&xtr.view(), &y), &xte.view());
                acc_shuf += a;
                s_shuf.extend(s);
            }
            if fi == 0 {
                let unit = |p: &probes::LinearProbe| p.unit_direction().iter().map(|v| *v as f32).collect::<Vec<f32>>();
                self.directions.push((unit(&mm), unit(&lr)));
            }
        }
        let pooled_test = self.pooled();
        let pooled = pooled_test.view();
        let labels = &pooled_test.labels;
        let folds = self.folds.len() as f64;
        let seed = |p: &str| sub_seed(sp.seed, &format!("{p}/{name}"));
        let metrics = |acc: f64, scores: &[f64], p: &str| probes::pooled_metrics(acc / folds, scores, pooled, sp.probes.bootstrap, seed(p));
        let rand_aucs: Vec<f64> = s_rand.iter().map(|s| crate::metrics::auroc(s, labels)).collect();
        self.probes.push(HookProbes {
            hook: name.clone(),
            logistic: metrics(acc_lr, &s_lr, "bootstrap-logistic"),
            mass_mean: metrics(acc_mm, &s_mm, "bootstrap-mass-mean"),
            random_directions: probes::summarize_random(&rand_aucs),
            shuffled_labels: sp.baselines.shuffled_labels.then(|| metrics(acc_shuf, &s_shuf, "bootstrap-shuffled")),
        });
        self.cursor += 1;
        let p = Progress { stage: Stage::Probes, done: self.cursor, total: self.hooks.len() };
        if self.cursor >= self.hooks.len() {
            self.advance(Stage::Controls);
        }
        Ok(p)
    }
}
