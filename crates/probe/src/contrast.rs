//! Contrast sets: framings × tasks (a framing may name the one task family it crosses, and wrap
//! the task in a user-turn template) → tokenized prompts with condition, framing, family and
//! readout positions, plus the first tokens that score each task's behaviour.

use crate::backend::LanguageModel;
use crate::error::{spec_err, Result};
use crate::spec::{Condition, ExperimentSpec};

/// One prompt of the contrast set.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptItem {
    /// Index into `spec.scenario.framings`.
    pub framing: usize,
    /// Index into `spec.scenario.tasks`.
    pub task: usize,
    pub condition: Condition,
    pub tokens: Vec<u32>,
    /// Positions `[start, end)` of the task's tokens inside `tokens`.
    pub task_span: (usize, usize),
}

impl PromptItem {
    /// The last prompt token, where the answer starts.
    pub fn last(&self) -> usize {
        self.tokens.len() - 1
    }
}

/// The whole contrast set.
#[derive(Debug, Clone)]
pub struct ContrastSet {
    pub items: Vec<PromptItem>,
    /// Per task: first token of the aligned answer.
    pub aligned_token: Vec<u32>,
    /// Per task: first token of the misaligned answer.
    pub misaligned_token: Vec<u32>,
}

/// Finds `needle` in `hay`, searching from the end.
fn rfind(hay: &[u32], needle: &[u32]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).rev().find(|&i| &hay[i..i + needle.len()] == needle)
}

/// Builds every (framing, task) prompt the framings cross, framings in spec order, tasks inside.
pub fn build<M: LanguageModel + ?Sized>(spec: &ExperimentSpec, model: &M) -> Result<ContrastSet> {
    let sc = &spec.scenario;
    let mut aligned_token = Vec::with_capacity(sc.tasks.len());
    let mut misaligned_token = Vec::with_capacity(sc.tasks.len());
    for (i, t) in sc.tasks.iter().enumerate() {
        let a = model.encode(&t.aligned)?;
        let m = model.encode(&t.misaligned)?;
        match (a.first(), m.first()) {
            (Some(a0), Some(m0)) if a0 != m0 => {
                aligned_token.push(*a0);
                misaligned_token.push(*m0);
            }
            _ => {
                return Err(spec_err(
                    format!("scenario.tasks[{i}]"),
                    format!(
                        "the aligned answer {:?} and the misaligned answer {:?} must start with different tokens",
                        t.aligned, t.misaligned
                    ),
                ))
            }
        }
    }
    let max = spec.limits.max_prompt_tokens.min(model.config().n_ctx);
    let mut items = Vec::with_capacity(sc.framings.len() * sc.tasks.len());
    for (fi, f) in sc.framings.iter().enumerate() {
        for (ti, t) in sc.tasks.iter().enumerate().filter(|(_, t)| f.crosses(t)) {
            let tokens = model.chat_tokens(&f.text, &f.user_text(t)).map_err(|e| {
                spec_err(format!("scenario.framings[{fi}]"), format!("with task `{}`: {e}", t.id))
            })?;
            if tokens.len() > max {
                return Err(spec_err(
                    format!("scenario.framings[{fi}]"),
                    format!("with task `{}` the prompt has {} tokens, over the limit of {max}", t.id, tokens.len()),
                ));
            }
            let task_tokens = model.encode(&t.text)?;
            let task_span = rfind(&tokens, &task_tokens)
                .map(|s| (s, s + task_tokens.len()))
                .unwrap_or((tokens.len() - 1, tokens.len()));
            items.push(PromptItem { framing: fi, task: ti, condition: f.condition, tokens, task_span });
        }
    }
    Ok(ContrastSet { items, aligned_token, misaligned_token })
}

/// The contrast set's items in the same order as [`build`], without tokens (for writing the
/// prompts out as data, and for splits, which need only framings, tasks and conditions).
pub fn untokenized(spec: &ExperimentSpec) -> ContrastSet {
    let sc = &spec.scenario;
    let items = sc
        .framings
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| {
            sc.tasks.iter().enumerate().filter(|(_, t)| f.crosses(t)).map(move |(ti, _)| PromptItem {
                framing: fi,
                task: ti,
                condition: f.condition,
                tokens: Vec::new(),
                task_span: (0, 0),
            })
        })
        .collect();
    ContrastSet { items, aligned_token: Vec::new(), misaligned_token: Vec::new() }
}

/// Length of the common token suffix of two prompts (the task and the template after the
/// framing). Patching aligns positions by counting back from the answer start inside it.
pub fn common_suffix(a: &[u32], b: &[u32]) -> usize {
    a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_and_search() {
        assert_eq!(common_suffix(&[1, 2, 3, 9, 9], &[7, 9, 9]), 2);
        assert_eq!(rfind(&[1, 2, 3, 2, 3], &[2, 3]), Some(3));
        assert_eq!(rfind(&[1], &[2, 3]), None);
    }
}
