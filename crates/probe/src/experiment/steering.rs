//! Stage 6: steering along the probe direction (and a random one) at several strengths.

use super::*;

#[derive(Debug, Default)]
pub(super) struct SteerState {
    layer: usize,
    items: Vec<usize>,
    unit: Vec<f32>,
    random_unit: Vec<f32>,
    norm: f64,
    /// (alpha index, random?) per unit of work, in order.
    work: Vec<(usize, bool, usize)>,
    next: usize,
    scores: BTreeMap<(usize, bool), Vec<(usize, f64)>>,
    /// Per batch: the unsteered `blocks.{layer}.hook_resid_post` at every position, when the
    /// model can continue a pass from it (steered passes then skip blocks `0..=layer`).
    resid: Vec<Option<Tensor>>,
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    pub(super) fn init_steering(&mut self) {
        let sp = self.spec.steering.clone();
        if !sp.enabled || sp.alphas.is_empty() || self.model.recorded().is_some() {
            return;
        }
        let n_layers = self.model.config().n_layers;
        let layer = sp.layer.unwrap_or(n_layers / 2).min(n_layers - 1);
        if sp.layer.is_some_and(|l| l >= n_layers) {
            self.notes.push(format!("steering.layer {} is past the last layer; using {layer}", sp.layer.unwrap_or(0)));
        }
        let train = &self.folds[0].train;
        let x = self.matrix(&self.resid[layer], train);
        let y = self.labels(train);
        let probe = match sp.direction {
            DirectionKind::MassMean => probes::fit_mass_mean(&x.view(), &y),
            DirectionKind::Logistic => match probes::fit_logistic(&x.view(), &y, self.spec.probes.c, self.spec.probes.max_iter, "steering") {
                Ok(p) => p,
                Err(e) => {
                    self.notes.push(format!("steering skipped: {e}"));
                    return;
                }
            },
        };
        let unit: Vec<f32> = probe.unit_direction().iter().map(|v| *v as f32).collect();
        let norm = x.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum::<f64>() / x.nrows().max(1) as f64;
        let mut rng = StdRng::seed_from_u64(sub_seed(self.spec.seed, "steering-random"));
        let r: Vec<f64> = (0..unit.len()).map(|_| StandardNormal.sample(&mut rng)).collect();
        let rn = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        let random_unit = r.iter().map(|v| (v / rn) as f32).collect();
        // Up to max_prompts per condition, test-split prompts first, seeded.
        let test: std::collections::BTreeSet<usize> = self.folds[0].test.iter().copied().collect();
        let mut items = Vec::new();
        for (k, c) in [Condition::Observed, Condition::Unobserved].into_iter().enumerate() {
            let mut cands: Vec<usize> = (0..self.set.items.len()).filter(|&i| self.set.items[i].condition == c).collect();
            cands.shuffle(&mut StdRng::seed_from_u64(sub_seed(self.spec.seed, &format!("steering-items/{k}"))));
            cands.sort_by_key(|i| !test.contains(i));
            cands.truncate(sp.max_prompts);
            cands.sort_unstable();
            items.extend(cands);
        }
        let bs = self.spec.limits.batch_size;
        let mut work = Vec::new();
        let mut scores = BTreeMap::new();
        for (a, &alpha) in sp.alphas.iter().enumerate() {
            for random in [false, true] {
                if alpha == 0.0 {
                    // Adding nothing is the unsteered run the collect stage already scored.
                    scores.insert((a, random), items.iter().map(|&i| (i, self.scores[i])).collect());
                    continue;
                }
                for b in 0..items.len().div_ceil(bs) {
                    work.push((a, random, b));
                }
            }
        }
        self.steer = SteerState { layer, items, unit, random_unit, norm, work, next: 0, scores, resid: Vec::new() };
    }

    pub(super) fn step_steering(&mut self) -> Result<Progress> {
        if self.steer.work.is_empty() {
            if !self.steer.scores.is_empty() {
                self.finish_steering(); // every α was 0
            }
            self.advance(Stage::Pca);
            return Ok(Progress { stage: Stage::Steering, done: 1, total: 1 });
        }
        let (a, random, b) = self.steer.work[self.steer.next];
        let bs = self.spec.limits.batch_size;
        let idx: Vec<usize> = self.steer.items[b * bs..((b + 1) * bs).min(self.steer.items.len())].to_vec();
        let alpha = self.spec.steering.alphas[a];
        let dir = if random { &self.steer.random_unit } else { &self.steer.unit };
        let scale = (alpha * self.steer.norm) as f32;
        let vector: Vec<f32> = dir.iter().map(|v| v * scale).collect();
        let seqs: Vec<Vec<u32>> = idx.iter().map(|&i| self.set.items[i].tokens.clone()).collect();
        let layer = self.steer.layer;
        let logits: Vec<Vec<f32>> = if self.model.supports_forward_from() {
            // Blocks 0..=layer do not see the vector: run them once per batch, then only the rest
            // for each α. Same maths as adding the vector at the hook during a full pass.
            if self.steer.resid.len() <= b {
                self.steer.resid.resize(b + 1, None);
            }
            if self.steer.resid[b].is_none() {
                let hook = HookPoint::ResidPost(layer);
                let opts = RunOptions { cache: NamesFilter::hooks(vec![hook]), logits: LogitsAt::Last, ..RunOptions::default() };
                let out = self.model.forward(&seqs, &opts)?;
                self.steer.resid[b] = Some(out.cache.get(&hook).cloned().ok_or_else(|| ProbeError::Shape(format!("{hook} not recorded")))?);
            }
            let base = self.steer.resid[b].as_ref().ok_or_else(|| ProbeError::Shape("steering residual missing".into()))?;
            let v = Tensor::from_vec(vector, base.dims()[2], base.device())?;
            let steered = base.broadcast_add(&v)?; // [B, T, D]
            let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
            let opts = RunOptions { logits: LogitsAt::Last, logit_ids: Some(self.answer_ids()), ..RunOptions::default() };
            self.model.forward_from(&steered, &lengths, layer + 1, &opts)?.logits.to_vec2()?
        } else {
            let opts = RunOptions {
                interventions: vec![Intervention::Add { hook: HookPoint::ResidPost(layer), positions: Positions::All, vector }],
                logits: LogitsAt::Last,
                logit_ids: Some(self.answer_ids()),
                ..RunOptions::default()
            };
            self.model.forward(&seqs, &opts)?.logits.to_vec2()?
        };
        for (r, &i) in idx.iter().enumerate() {
            let s = self.behaviour_score(self.set.items[i].task, &logits[r]);
            self.steer.scores.entry((a, random)).or_default().push((i, s));
        }
        self.steer.next += 1;
        let p = Progress { stage: Stage::Steering, done: self.steer.next, total: self.steer.work.len() };
        if self.steer.next >= self.steer.work.len() {
            self.finish_steering();
            self.advance(Stage::Pca);
        }
        Ok(p)
    }

    pub(super) fn finish_steering(&mut self) {
        let st = std::mem::take(&mut self.steer);
        let alphas = self.spec.steering.alphas.clone();
        let rate = |a: usize, random: bool, c: Condition| {
            let v: Vec<bool> = st.scores.get(&(a, random)).map_or(Vec::new(), |s| {
                s.iter().filter(|(i, _)| self.set.items[*i].condition == c).map(|(_, s)| *s > 0.0).collect()
            });
            v.iter().filter(|m| **m).count() as f64 / v.len().max(1) as f64
        };
        let per = |random: bool, c: Condition| (0..alphas.len()).map(|a| rate(a, random, c)).collect::<Vec<_>>();
        let (ro, ru) = (per(false, Condition::Observed), per(false, Condition::Unobserved));
        let (rro, rru) = (per(true, Condition::Observed), per(true, Condition::Unobserved));
        self.steering = Some(report::Steering {
            hook: HookPoint::ResidPost(st.layer).to_string(),
            direction: match self.spec.steering.direction {
                DirectionKind::MassMean => "mass_mean".into(),
                DirectionKind::Logistic => "logistic".into(),
            },
            norm: st.norm,
            gap: ru.iter().zip(&ro).map(|(u, o)| u - o).collect(),
            rate_observed: ro,
            random_gap: rru.iter().zip(&rro).map(|(u, o)| u - o).collect(),
            rate_unobserved: ru,
            random_rate_unobserved: rru,
            alphas,
            n_prompts: st.items.len(),
        });
    }
}
