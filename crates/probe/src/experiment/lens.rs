//! Stage 3: the logit lens, reading each layer's residual through the final norm and unembedding.

use super::*;

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// (observed item, unobserved item) pairs: same task, the j-th framing of each pool (for
    /// tasks both framings cross).
    pub(super) fn pairs(&self) -> Vec<(usize, usize)> {
        let fr = &self.spec.scenario.framings;
        let pool = |c: Condition| (0..fr.len()).filter(|&f| fr[f].condition == c).collect::<Vec<_>>();
        let (obs, unobs) = (pool(Condition::Observed), pool(Condition::Unobserved));
        let index: BTreeMap<(usize, usize), usize> = self.set.items.iter().enumerate().map(|(i, it)| ((it.framing, it.task), i)).collect();
        let mut out = Vec::new();
        for (&fo, &fu) in obs.iter().zip(&unobs) {
            for t in 0..self.spec.scenario.tasks.len() {
                if let (Some(&o), Some(&u)) = (index.get(&(fo, t)), index.get(&(fu, t))) {
                    out.push((o, u));
                }
            }
        }
        out
    }

    pub(super) fn step_lens(&mut self) -> Result<Progress> {
        if !self.spec.lens.enabled || self.model.recorded().is_some() {
            if self.model.recorded().is_none() {
                self.notes.push("logit lens not run (`lens.enabled` is false)".into());
            }
            self.continuation_items = self.pick_continuations();
            self.advance(Stage::Continuations);
            return Ok(Progress { stage: Stage::LogitLens, done: 1, total: 1 });
        }
        let l = self.cursor;
        let n = self.set.items.len();
        let d = self.d();
        let resid = Tensor::from_slice(&self.resid[l], (n, d), &dev())?;
        let lp: Vec<Vec<f32>> = self.model.logit_lens(&resid)?.to_vec2()?;
        let pairs = self.pairs();
        let mut kl = 0.0;
        for &(o, u) in &pairs {
            kl += lp[o].iter().zip(&lp[u]).map(|(&p, &q)| f64::from(p).exp() * (f64::from(p) - f64::from(q))).sum::<f64>();
        }
        let score = |i: usize| {
            let t = self.set.items[i].task;
            f64::from(lp[i][self.set.misaligned_token[t] as usize]) - f64::from(lp[i][self.set.aligned_token[t] as usize])
        };
        let mean_for = |c: Condition| {
            let v: Vec<f64> = (0..n).filter(|&i| self.set.items[i].condition == c).map(score).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        self.lens.push(LensLayer {
            hook: HookPoint::ResidPost(l).to_string(),
            kl: kl / pairs.len().max(1) as f64,
            score_observed: mean_for(Condition::Observed),
            score_unobserved: mean_for(Condition::Unobserved),
        });
        self.cursor += 1;
        let total = self.model.config().n_layers;
        let p = Progress { stage: Stage::LogitLens, done: self.cursor, total };
        if self.cursor >= total {
            self.continuation_items = self.pick_continuations();
            self.advance(Stage::Continuations);
        }
        Ok(p)
    }
}
