//! Stage 5: activation patching from unobserved into observed prompts, hook by hook and
//! position by position, with a random-vector control.

use super::*;

/// One patched forward pass: a row of a batch.
#[derive(Debug, Clone)]
pub(super) struct PatchJob {
    pair: usize,
    hook: usize,
    offset: usize,
    control: bool,
}

/// Per-pair data for patching.
#[derive(Debug, Clone)]
pub(super) struct PatchPair {
    obs: usize,
    unobs: usize,
    /// `[hook][offset]` → (observed value, unobserved value), filled by the caching step.
    values: Vec<Vec<(Vec<f32>, Vec<f32>)>>,
    /// `[hook]` → the unobserved prompt's whole activation `[T, D]` there, kept when the model
    /// can continue a pass from it (patched passes then start at the patched block).
    unobs_full: Vec<Tensor>,
    /// The unobserved prompt's keys and values at every block, for the same (patched passes
    /// then recompute only the positions from the patched one on).
    unobs_kv: Option<KvCache>,
}

#[derive(Debug, Default)]
pub(super) struct PatchState {
    hooks: Vec<HookPoint>,
    offsets: usize,
    pairs: Vec<PatchPair>,
    cached: usize,
    jobs: Vec<PatchJob>,
    next_job: usize,
    delta: Vec<Vec<f64>>,
    control_delta: Vec<Vec<f64>>,
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// The (observed, unobserved) prompt pairs patching runs: seeded, test-split pairs first,
    /// at most `patching.pairs`.
    pub(super) fn patch_pairs(&self) -> Vec<(usize, usize)> {
        let mut pairs = self.pairs();
        let test: std::collections::BTreeSet<usize> = self.folds[0].test.iter().copied().collect();
        pairs.shuffle(&mut StdRng::seed_from_u64(sub_seed(self.spec.seed, "patching-pairs")));
        pairs.sort_by_key(|(o, u)| !(test.contains(o) && test.contains(u)));
        pairs.truncate(self.spec.patching.pairs);
        pairs
    }

    /// Positions patched per (hook, pair): the pairs' shortest shared suffix, at most
    /// `patching.max_positions`.
    pub(super) fn patch_positions(&self, pairs: &[(usize, usize)]) -> usize {
        pairs
            .iter()
            .map(|&(o, u)| common_suffix(&self.set.items[o].tokens, &self.set.items[u].tokens))
            .min()
            .unwrap_or(0)
            .min(self.spec.patching.max_positions)
    }

    pub(super) fn init_patching(&mut self) {
        let sp = &self.spec.patching;
        if !sp.enabled || sp.pairs == 0 || self.model.recorded().is_some() {
            return;
        }
        if !self.model.supports_patching() {
            self.notes.push("patching skipped: this backend cannot replace activations".into());
            return;
        }
        let pairs = self.patch_pairs();
        let n_layers = self.model.config().n_layers;
        let hooks: Vec<HookPoint> = (0..n_layers).step_by(sp.layer_stride).map(HookPoint::ResidPre).collect();
        let offsets = self.patch_positions(&pairs);
        let mut jobs = Vec::new();
        for pair in 0..pairs.len() {
            for hook in 0..hooks.len() {
                for offset in 0..offsets {
                    for control in [false, true] {
                        jobs.push(PatchJob { pair, hook, offset, control });
                    }
                }
            }
        }
        if self.model.supports_forward_from() {
            // One (hook, pair) per batch, so a batch can start at its block after the pair's
            // cached prefix. The sort is stable, so each (hook, offset) cell still adds its
            // pairs in the same order.
            jobs.sort_by_key(|j| (j.hook, j.pair, j.offset));
        }
        self.patch = PatchState {
            delta: vec![vec![0.0; offsets]; hooks.len()],
            control_delta: vec![vec![0.0; offsets]; hooks.len()],
            hooks,
            offsets,
            pairs: pairs.into_iter().map(|(obs, unobs)| PatchPair { obs, unobs, values: Vec::new(), unobs_full: Vec::new(), unobs_kv: None }).collect(),
            cached: 0,
            jobs,
            next_job: 0,
        };
    }

    pub(super) fn step_patching(&mut self) -> Result<Progress> {
        let bs = self.spec.limits.batch_size;
        let n_pairs = self.patch.pairs.len();
        let total = n_pairs + self.patch.jobs.len().div_ceil(bs);
        if n_pairs == 0 || self.patch.offsets == 0 {
            if self.spec.patching.enabled && self.patch.offsets == 0 && n_pairs > 0 {
                self.notes.push("patching skipped: the paired prompts share no suffix".into());
            }
            self.finish_patching();
            return Ok(Progress { stage: Stage::Patching, done: 1, total: 1 });
        }
        if self.patch.cached < n_pairs {
            // Cache both prompts of one pair at every patched hook.
            let k = self.patch.cached;
            let (o, u) = (self.patch.pairs[k].obs, self.patch.pairs[k].unobs);
            let seqs = vec![self.set.items[o].tokens.clone(), self.set.items[u].tokens.clone()];
            let opts = RunOptions { cache: NamesFilter::hooks(self.patch.hooks.clone()), logits: LogitsAt::Last, ..RunOptions::default() };
            let out = self.model.forward(&seqs, &opts)?;
            let (lo, lu) = (seqs[0].len(), seqs[1].len());
            let mut values = Vec::new();
            let mut unobs_full = Vec::new();
            for h in &self.patch.hooks {
                let t = out.cache.get(h).ok_or_else(|| ProbeError::Shape(format!("{h} not recorded")))?;
                if self.model.supports_forward_from() {
                    unobs_full.push(t.get(1)?.narrow(0, 0, lu)?); // [T_u, D]
                }
                let mut row = Vec::new();
                for off in 0..self.patch.offsets {
                    let vo: Vec<f32> = t.get(0)?.get(lo - 1 - off)?.to_vec1()?;
                    let vu: Vec<f32> = t.get(1)?.get(lu - 1 - off)?.to_vec1()?;
                    row.push((vo, vu));
                }
                values.push(row);
            }
            self.patch.pairs[k].values = values;
            self.patch.pairs[k].unobs_full = unobs_full;
            if self.model.supports_forward_from() {
                self.patch.pairs[k].unobs_kv = Some(self.model.cache_sequence(&self.set.items[u].tokens)?);
            }
            self.patch.cached += 1;
        } else {
            let start = self.patch.next_job;
            let fast = self.model.supports_forward_from();
            let mut end = (start + bs).min(self.patch.jobs.len());
            if fast {
                let first = &self.patch.jobs[start];
                let key = (first.hook, first.pair);
                end = start + self.patch.jobs[start..end].iter().take_while(|j| (j.hook, j.pair) == key).count();
            }
            let jobs = self.patch.jobs[start..end].to_vec();
            let mut seqs = Vec::with_capacity(jobs.len());
            let mut ivs = Vec::with_capacity(jobs.len());
            for (row, job) in jobs.iter().enumerate() {
                let pair = &self.patch.pairs[job.pair];
                let tokens = &self.set.items[pair.unobs].tokens;
                let (vo, vu) = &pair.values[job.hook][job.offset];
                let value = if job.control {
                    // Same-norm random change: ‖vo − vu‖ along a seeded random direction.
                    let dist = vo.iter().zip(vu).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt();
                    let mut rng = StdRng::seed_from_u64(sub_seed(self.spec.seed, &format!("patch-control/{}/{}/{}", job.pair, job.hook, job.offset)));
                    let r: Vec<f64> = (0..vu.len()).map(|_| StandardNormal.sample(&mut rng)).collect();
                    let rn = r.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                    vu.iter().zip(&r).map(|(u, x)| (f64::from(*u) + x / rn * dist) as f32).collect()
                } else {
                    vo.clone()
                };
                ivs.push(Intervention::Patch { hook: self.patch.hooks[job.hook], row, position: tokens.len() - 1 - job.offset, value });
                seqs.push(tokens.clone());
            }
            let logits: Vec<Vec<f32>> = match (fast, self.patch.hooks[jobs[0].hook]) {
                (true, HookPoint::ResidPre(block)) => {
                    // Neither the blocks before the patched one nor the positions before the
                    // patched one see the patch: start at that block, at the earliest patched
                    // position of the batch, after the unobserved prompt's cached keys and
                    // values. Rows patched later carry their clean residual up to their patch.
                    let (job0, d) = (&jobs[0], self.d());
                    let pair = &self.patch.pairs[job0.pair];
                    let len = self.set.items[pair.unobs].tokens.len();
                    let max_offset = jobs.iter().map(|j| j.offset).max().unwrap_or(0);
                    let (p, t) = (len - 1 - max_offset, max_offset + 1);
                    let suffix: Vec<f32> = pair.unobs_full[job0.hook].narrow(0, p, t)?.flatten_all()?.to_vec1()?; // [t * D]
                    let mut flat = Vec::with_capacity(jobs.len() * t * d);
                    for iv in &ivs {
                        let start = flat.len();
                        flat.extend_from_slice(&suffix);
                        if let Intervention::Patch { value, position, .. } = iv {
                            let at = start + (position - p) * d;
                            flat[at..at + d].copy_from_slice(value);
                        }
                    }
                    let resid = Tensor::from_vec(flat, (jobs.len(), t, d), &Device::Cpu)?; // [B, t, D]
                    let kv = pair.unobs_kv.as_ref().ok_or_else(|| ProbeError::Shape("patching cache missing".into()))?;
                    let mut prefix = kv.prefix(p, jobs.len())?;
                    let opts = RunOptions { logits: LogitsAt::Last, logit_ids: Some(self.answer_ids()), ..RunOptions::default() };
                    self.model.forward_from_cached(&resid, block, &mut prefix, &opts)?.logits.to_vec2()?
                }
                _ => {
                    let opts = RunOptions { interventions: ivs, logits: LogitsAt::Last, logit_ids: Some(self.answer_ids()), ..RunOptions::default() };
                    self.model.forward(&seqs, &opts)?.logits.to_vec2()?
                }
            };
            for (row, job) in jobs.iter().enumerate() {
                let unobs = self.patch.pairs[job.pair].unobs;
                let s = self.behaviour_score(self.set.items[unobs].task, &logits[row]) - self.scores[unobs];
                let table = if job.control { &mut self.patch.control_delta } else { &mut self.patch.delta };
                table[job.hook][job.offset] += s;
            }
            self.patch.next_job = end;
        }
        let done = self.patch.cached + self.patch.next_job.div_ceil(bs);
        if self.patch.cached >= n_pairs && self.patch.next_job >= self.patch.jobs.len() {
            self.finish_patching();
        }
        Ok(Progress { stage: Stage::Patching, done, total })
    }

    pub(super) fn finish_patching(&mut self) {
        let st = std::mem::take(&mut self.patch);
        if !st.pairs.is_empty() && st.offsets > 0 {
            let n = st.pairs.len() as f64;
            let mean_gap = st.pairs.iter().map(|p| self.scores[p.obs] - self.scores[p.unobs]).sum::<f64>() / n;
            let norm = |t: &Vec<Vec<f64>>| -> Vec<Vec<Option<f64>>> {
                t.iter().map(|row| row.iter().map(|d| (mean_gap.abs() > 0.05).then(|| d / n / mean_gap)).collect()).collect()
            };
            if mean_gap.abs() <= 0.05 {
                self.notes.push(format!("patching: the paired prompts' behaviour differs by only {mean_gap:.3}, so fractions of the gap are not defined"));
            }
            let first = &self.set.items[st.pairs[0].unobs].tokens;
            self.patching = Some(report::Patching {
                hooks: st.hooks.iter().map(ToString::to_string).collect(),
                offsets: (0..st.offsets).collect(),
                tokens: (0..st.offsets).map(|o| self.model.token_text(first[first.len() - 1 - o])).collect(),
                pairs: st.pairs.len(),
                mean_gap,
                fraction_closed: norm(&st.delta),
                random_control: norm(&st.control_delta),
            });
        }
        self.init_steering();
        self.advance(Stage::Steering);
    }
}
