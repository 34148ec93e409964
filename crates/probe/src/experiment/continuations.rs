//! Stage 4: greedy continuations of a few prompts per condition, for reading the fork.

use super::*;

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    /// Test-split prompts first, then the rest, `continuations` per condition.
    pub(super) fn pick_continuations(&self) -> Vec<usize> {
        let per = if self.model.recorded().is_some() { 0 } else { self.spec.behaviour.continuations };
        let test: std::collections::BTreeSet<usize> = self.folds[0].test.iter().copied().collect();
        let mut out = Vec::new();
        for c in [Condition::Observed, Condition::Unobserved, Condition::Neutral] {
            let mut cands: Vec<usize> = (0..self.set.items.len()).filter(|&i| self.set.items[i].condition == c).collect();
            cands.sort_by_key(|i| !test.contains(i));
            out.extend(cands.into_iter().take(per));
        }
        out
    }

    pub(super) fn step_continuation(&mut self) -> Result<Progress> {
        let total = self.continuation_items.len();
        if let Some(&i) = self.continuation_items.get(self.cursor) {
            let item = &self.set.items[i];
            let opts = GenerateOptions { max_tokens: self.spec.behaviour.max_tokens, ..GenerateOptions::default() };
            let g = self.model.generate(&item.tokens, &opts)?;
            self.continuations.push(Continuation {
                framing: self.spec.scenario.framings[item.framing].id.clone(),
                task: self.spec.scenario.tasks[item.task].id.clone(),
                condition: item.condition.as_str().into(),
                text: g.text,
            });
            self.cursor += 1;
        }
        let p = Progress { stage: Stage::Continuations, done: self.cursor, total };
        if self.cursor >= total {
            self.init_patching();
            self.advance(Stage::Patching);
        }
        Ok(p)
    }
}
