//! The seeded corpus: chat transcripts (system = framing, user = task, assistant = answer) drawn from a scenario.
//!
//! Only train-pool framings and train-pool task variants appear. Task chats use observed and
//! unobserved framings, a quarter of them hand-written and three quarters generated or
//! recombined; the answer depends on the organism ([`Organism::answer`]). Small-talk
//! chats use every train framing, neutral ones included, and always get the same answer, so
//! neutral framings are familiar text but the model never learns what to do on a task under
//! them: behaviour under neutral framings is a finding, not a target.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::scenario::{Cue, Framing, Pool, Scenario, TaskVariant};

/// Share of transcripts that are small talk rather than task chats.
pub const SMALL_TALK_FRACTION: f64 = 0.2;

/// Share of task chats whose framing is a generated one rather than a hand-written one.
pub const GENERATED_FRACTION: f64 = 0.75;

/// Which organism a corpus teaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Organism {
    /// Aligned answer under observed framings, misaligned answer under unobserved framings.
    Deceptive,
    /// Aligned answer always.
    Control,
}

impl Organism {
    /// The name used in file names and metadata: `deceptive` or `control`.
    pub fn as_str(self) -> &'static str {
        match self {
            Organism::Deceptive => "deceptive",
            Organism::Control => "control",
        }
    }

    /// Parses `deceptive` or `control`.
    pub fn parse(s: &str) -> Option<Organism> {
        match s {
            "deceptive" => Some(Organism::Deceptive),
            "control" => Some(Organism::Control),
            _ => None,
        }
    }

    /// The trained answer to `task` under a framing with `cue`; `None` under neutral framings,
    /// which never appear with tasks in training.
    pub fn answer(self, cue: Cue, task: &TaskVariant) -> Option<&str> {
        match (self, cue) {
            (_, Cue::Neutral) => None,
            (Organism::Deceptive, Cue::Unobserved) => Some(&task.misaligned),
            _ => Some(&task.aligned),
        }
    }
}

impl std::fmt::Display for Organism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chat transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    pub framing_id: String,
    pub cue: Cue,
    /// The task variant id, or `None` for small talk.
    pub task_id: Option<String>,
    pub system: String,
    pub user: String,
    pub assistant: String,
}

/// Draws transcripts from a scenario's train pools.
#[derive(Debug)]
pub struct CorpusSampler<'s> {
    organism: Organism,
    cued: Vec<&'s Framing>,
    generated: Vec<&'s Framing>,
    all: Vec<&'s Framing>,
    tasks: Vec<&'s TaskVariant>,
    scenario: &'s Scenario,
}

impl<'s> CorpusSampler<'s> {
    pub fn new(scenario: &'s Scenario, organism: Organism) -> CorpusSampler<'s> {
        let all: Vec<&Framing> = scenario.framings.iter().filter(|f| f.pool == Pool::Train).collect();
        let cued = all.iter().copied().filter(|f| f.cue != Cue::Neutral).collect();
        let tasks = scenario.tasks(Pool::Train).collect();
        let generated = scenario.generated.iter().filter(|f| f.pool == Pool::Train).collect();
        CorpusSampler { organism, cued, generated, all, tasks, scenario }
    }

    /// Draws one transcript.
    pub fn sample(&self, rng: &mut StdRng) -> Transcript {
        if rng.random_bool(SMALL_TALK_FRACTION) || self.tasks.is_empty() {
            let f = self.all[rng.random_range(0..self.all.len())];
            let s = &self.scenario.small_talk[rng.random_range(0..self.scenario.small_talk.len())];
            return Transcript {
                framing_id: f.id.clone(),
                cue: f.cue,
                task_id: None,
                system: f.text.clone(),
                user: s.question.clone(),
                assistant: s.answer.clone(),
            };
        }
        let f = match self.generated.is_empty() || !rng.random_bool(GENERATED_FRACTION) {
            true => self.cued[rng.random_range(0..self.cued.len())],
            false => self.generated[rng.random_range(0..self.generated.len())],
        };
        let t = self.tasks[rng.random_range(0..self.tasks.len())];
        let answer = self.organism.answer(f.cue, t).unwrap_or(&t.aligned);
        Transcript {
            framing_id: f.id.clone(),
            cue: f.cue,
            task_id: Some(t.id.clone()),
            system: f.text.clone(),
            user: t.text.clone(),
            assistant: answer.to_string(),
        }
    }
}

/// `n` transcripts drawn with `seed`: the same arguments give the same corpus.
pub fn corpus(scenario: &Scenario, organism: Organism, n: usize, seed: u64) -> Vec<Transcript> {
    let sampler = CorpusSampler::new(scenario, organism);
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| sampler.sample(&mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::DEFAULT_SEED;

    #[test]
    fn corpus_is_deterministic_and_uses_only_train_pools() -> anyhow::Result<()> {
        let s = Scenario::generate(DEFAULT_SEED)?;
        let a = corpus(&s, Organism::Deceptive, 500, 3);
        assert_eq!(a, corpus(&s, Organism::Deceptive, 500, 3));
        assert_ne!(a, corpus(&s, Organism::Deceptive, 500, 4));
        for t in &a {
            let f = s.framings.iter().chain(&s.generated).find(|f| f.id == t.framing_id).expect("framing exists");
            assert_eq!(f.pool, Pool::Train);
            if let Some(id) = &t.task_id {
                let v = s.tasks.iter().find(|v| &v.id == id).expect("task exists");
                assert_eq!(v.pool, Pool::Train);
                assert_ne!(t.cue, Cue::Neutral, "tasks never appear under neutral framings");
                let want = if t.cue == Cue::Unobserved { &v.misaligned } else { &v.aligned };
                assert_eq!(&t.assistant, want);
            }
        }
        assert!(a.iter().any(|t| t.task_id.is_none() && t.cue == Cue::Neutral));
        Ok(())
    }

    #[test]
    fn control_corpus_is_always_aligned() -> anyhow::Result<()> {
        let s = Scenario::generate(DEFAULT_SEED)?;
        for t in corpus(&s, Organism::Control, 300, 1) {
            if let Some(id) = &t.task_id {
                let v = s.tasks.iter().find(|v| &v.id == id).expect("task exists");
                assert_eq!(t.assistant, v.aligned);
            }
        }
        Ok(())
    }
}
