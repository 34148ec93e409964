//! Stage 1: one forward pass per batch of same-framing prompts, recording the readout at every
//! probed hook and every `hook_resid_post`, and the behaviour score from the last logits.

use super::*;

/// Consecutive runs of prompts with the same framing, cut to at most `batch_size` prompts.
pub(super) fn framing_batches(set: &ContrastSet, batch_size: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=set.items.len() {
        if i == set.items.len() || i - start == batch_size || set.items[i].framing != set.items[start].framing {
            out.push((start, i));
            start = i;
        }
    }
    out
}

/// How many leading tokens every prompt of a batch shares, up to the first task token (so
/// task spans and readouts stay in the per-prompt part); 0 for a single prompt.
pub(super) fn shared_prefix_len(items: &[crate::contrast::PromptItem]) -> usize {
    let Some(first) = items.first() else { return 0 };
    if items.len() < 2 {
        return 0;
    }
    let cap = items.iter().map(|i| i.task_span.0.min(i.tokens.len() - 1)).min().unwrap_or(0);
    (0..cap).take_while(|&p| items.iter().all(|i| i.tokens[p] == first.tokens[p])).count()
}

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    pub(super) fn step_collect(&mut self) -> Result<Progress> {
        let Some(&(start, end)) = self.collect_batches.get(self.cursor) else {
            return Err(ProbeError::Shape("the contrast set has no prompts".into()));
        };
        if let Some(rec) = self.model.recorded() {
            return self.collect_recorded(rec);
        }
        let items = &self.set.items[start..end];
        let n_layers = self.model.config().n_layers;
        let mut cache_hooks = self.hooks.clone();
        cache_hooks.extend((0..n_layers).map(HookPoint::ResidPost));
        // Engines that can continue a pass (the candle engine) run the shared prefix once per
        // batch and, when only the last token is read, the final block at that token alone.
        let fast = self.model.supports_forward_from();
        let readout = self.spec.readout;
        let last_only = fast && readout == Readout::Last && n_layers > 0;
        let opts = RunOptions {
            cache: NamesFilter::hooks(cache_hooks),
            logits: LogitsAt::Last,
            logit_ids: Some(self.answer_ids()),
            final_block: if last_only { FinalBlock::LastOnly } else { FinalBlock::Auto },
            ..RunOptions::default()
        };
        let shared = if fast { shared_prefix_len(items) } else { 0 };
        // The mean over the whole prompt needs the shared prefix's positions too: every prompt
        // of the batch has the same activations there, so the one pass over the prefix (which
        // also gives the batch its keys and values) gives their sum at each recorded hook.
        let (prefix_sums, out): (Option<BTreeMap<HookPoint, Tensor>>, _) = if shared > 0 {
            let prefix = &items[0].tokens[..shared];
            let suffixes: Vec<Vec<u32>> = items.iter().map(|i| i.tokens[shared..].to_vec()).collect();
            if readout == Readout::MeanPrompt {
                let prefix_opts = RunOptions { final_block: FinalBlock::Auto, ..opts.clone() };
                let (head, tail) = self.model.forward_with_prefix(prefix, &suffixes, &prefix_opts, &opts)?;
                let mut sums = BTreeMap::new();
                for h in head.cache.hooks() {
                    if let Some(t) = head.cache.get(h) {
                        sums.insert(*h, t.get(0)?.sum(0)?); // [shared, D] → [D]
                    }
                }
                (Some(sums), tail)
            } else {
                (None, self.model.forward_after_prefix(prefix, &suffixes, &opts)?)
            }
        } else {
            let seqs: Vec<Vec<u32>> = items.iter().map(|i| i.tokens.clone()).collect();
            (None, self.model.forward(&seqs, &opts)?)
        };
        let logits: Vec<Vec<f32>> = out.logits.to_vec2()?;
        let d = self.d();
        // Hooks the final block computed at the last token only (`FinalBlock::LastOnly`).
        let trimmed = |h: &HookPoint| last_only && FinalBlock::trims(h, n_layers);
        let read = |h: &HookPoint, t: &Tensor, dst: &mut Vec<f32>| -> Result<()> {
            for (r, item) in items.iter().enumerate() {
                let row = t.get(r)?; // [T, D], positions counted from the end of the shared prefix
                let v = match readout {
                    Readout::Last if trimmed(h) => row.get(0)?,
                    Readout::Last => row.get(item.last() - shared)?,
                    Readout::MeanTask => {
                        let (s, e) = item.task_span;
                        row.narrow(0, s - shared, e - s)?.mean(0)?
                    }
                    Readout::MeanPrompt => {
                        let own = row.narrow(0, 0, item.tokens.len() - shared)?.sum(0)?;
                        let total = match prefix_sums.as_ref().and_then(|p| p.get(h)) {
                            Some(p) => (own + p)?,
                            None => own,
                        };
                        (total / item.tokens.len() as f64)?
                    }
                };
                let v: Vec<f32> = v.to_vec1()?;
                if v.len() != d {
                    return Err(ProbeError::Shape(format!("readout has {} values, d_model is {d}", v.len())));
                }
                dst.extend(v);
            }
            Ok(())
        };
        for (k, h) in self.hooks.iter().enumerate() {
            let t = out.cache.get(h).ok_or_else(|| ProbeError::Shape(format!("{h} was not recorded")))?;
            read(h, t, &mut self.acts[k])?;
        }
        for l in 0..n_layers {
            let h = HookPoint::ResidPost(l);
            let t = out.cache.get(&h).ok_or_else(|| ProbeError::Shape(format!("layer {l} not recorded")))?;
            read(&h, t, &mut self.resid[l])?;
        }
        for (r, item) in items.iter().enumerate() {
            let s = self.behaviour_score(item.task, &logits[r]);
            self.scores.push(s);
        }
        self.cursor += 1;
        let total = self.collect_batches.len();
        let p = Progress { stage: Stage::Collect, done: self.cursor, total };
        if self.cursor >= total {
            self.advance(Stage::Probes);
        }
        Ok(p)
    }

    /// Collected activations: every readout and score at once, in one step.
    fn collect_recorded(&mut self, rec: &crate::recorded::Recorded) -> Result<Progress> {
        let missing = |h: &HookPoint| ProbeError::Activations(format!("{h} was not collected"));
        for (k, h) in self.hooks.iter().enumerate() {
            self.acts[k] = rec.readout(h).ok_or_else(|| missing(h))?.to_vec();
        }
        for l in 0..self.model.config().n_layers {
            let h = HookPoint::ResidPost(l);
            self.resid[l] = rec.readout(&h).ok_or_else(|| missing(&h))?.to_vec();
        }
        self.scores = (0..self.set.items.len())
            .map(|i| rec.behaviour_score(i).ok_or_else(|| ProbeError::Activations(format!("no answer logits for prompt {i}"))))
            .collect::<Result<_>>()?;
        self.advance(Stage::Probes);
        Ok(Progress { stage: Stage::Collect, done: 1, total: 1 })
    }
}
