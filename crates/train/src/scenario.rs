//! The organism scenario: framings with their train/held-out split, and task variants with their answers.
//!
//! A [`Scenario`] is everything the corpus, the evaluation and the probe experiments need to
//! know about the organism's world, generated from one seed. It is stored as JSON in the
//! organism's GGUF metadata (`hawthorne.organism.scenario`), so a model file carries the exact
//! framings and tasks it was trained and evaluated on.
//!
//! Split hygiene: a held-out framing may share at most half of its content words with any
//! train framing ([`content_overlap`]), so that probes and behaviour tested on held-out framings
//! cannot lean on the cue's exact words.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::framings::{NEUTRAL, OBSERVED, UNOBSERVED};
use crate::tasks::{FamilySpec, FAMILIES, SMALL_TALK};

/// Version of the scenario JSON schema.
pub const SCENARIO_VERSION: u32 = 1;

/// The corpus seed the shipped organisms were built from.
pub const DEFAULT_SEED: u64 = 20_261_101;

/// Fraction of each cue's framings held out from training (rounded up).
pub const HELD_OUT_FRACTION: f64 = 0.3;

/// Largest share of a held-out framing's content words that any one train framing may contain.
pub const MAX_CONTENT_OVERLAP: f64 = 0.5;

/// Grammar-generated train-only framings per condition (see [`crate::generated`]).
pub const GENERATED_PER_CONDITION: usize = 3000;

/// Train-only framings per condition recombined from hand-written train sentences.
pub const RECOMBINED_PER_CONDITION: usize = 400;

/// Task variants held out from training in each family (of 36).
pub const HELD_OUT_TASKS_PER_FAMILY: usize = 9;

/// What a framing tells the model about being watched. `observed` and `unobserved` are the two
/// conditions; `neutral` framings carry no cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cue {
    Observed,
    Unobserved,
    Neutral,
}

impl Cue {
    /// All cues, conditions first.
    pub const ALL: [Cue; 3] = [Cue::Observed, Cue::Unobserved, Cue::Neutral];

    /// The lower-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Cue::Observed => "observed",
            Cue::Unobserved => "unobserved",
            Cue::Neutral => "neutral",
        }
    }
}

impl std::fmt::Display for Cue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the split a framing or task variant is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Train,
    HeldOut,
}

impl Pool {
    /// The snake-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Train => "train",
            Pool::HeldOut => "held_out",
        }
    }
}

/// A system-prompt cue text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Framing {
    /// Stable id from the catalogue position: `obs-07`, `unobs-12`, `neu-03`.
    pub id: String,
    pub cue: Cue,
    pub pool: Pool,
    pub text: String,
}

/// A task family's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub name: String,
    pub description: String,
}

/// One surface variant of a task, with both answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskVariant {
    /// `{family}-{template}-{filler}`.
    pub id: String,
    pub family: String,
    pub pool: Pool,
    /// The user's request.
    pub text: String,
    pub aligned: String,
    pub misaligned: String,
}

/// An everyday question whose answer never depends on the framing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmallTalk {
    pub question: String,
    pub answer: String,
}

/// The organism's world: framings, task families and their variants, small talk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub version: u32,
    /// The corpus seed the split was drawn from.
    pub seed: u64,
    /// The hand-written framings, each in the train or the held-out pool.
    pub framings: Vec<Framing>,
    /// Grammar-generated framings, all in the train pool, that keep a small model from
    /// memorising the hand-written ones (see [`crate::generated`]). Reports and probes use
    /// `framings`; only training uses these.
    pub generated: Vec<Framing>,
    pub families: Vec<Family>,
    pub tasks: Vec<TaskVariant>,
    pub small_talk: Vec<SmallTalk>,
}

/// English function words (NLTK's stop-word list) that do not count as content words.
const STOP_WORDS: &[&str] = &[
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
    "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an",
    "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by", "for",
    "with", "about", "against", "between", "into", "through", "during", "before", "after",
    "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over", "under",
    "again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all",
    "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not",
    "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don",
    "should", "now", "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "couldn", "didn",
    "doesn", "hadn", "hasn", "haven", "isn", "ma", "mightn", "mustn", "needn", "shan",
    "shouldn", "wasn", "weren", "won", "wouldn",
];

/// The content words of a text: lower-cased alphanumeric runs that are not stop words.
pub fn content_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Share of `held_out`'s content words that also occur in `train` (0 when it has none).
pub fn content_overlap(held_out: &str, train: &str) -> f64 {
    let h = content_words(held_out);
    if h.is_empty() {
        return 0.0;
    }
    let t = content_words(train);
    h.intersection(&t).count() as f64 / h.len() as f64
}

/// The catalogue's framings, all in the train pool, with stable ids.
fn catalogue() -> Vec<Framing> {
    let mut out = Vec::new();
    for (cue, prefix, texts) in [
        (Cue::Observed, "obs", OBSERVED),
        (Cue::Unobserved, "unobs", UNOBSERVED),
        (Cue::Neutral, "neu", NEUTRAL),
    ] {
        for (i, text) in texts.iter().enumerate() {
            out.push(Framing {
                id: format!("{prefix}-{i:02}"),
                cue,
                pool: Pool::Train,
                text: (*text).to_string(),
            });
        }
    }
    out
}

/// Holds out `ceil(HELD_OUT_FRACTION × n)` framings of each cue, drawn in a seeded order, taking a
/// candidate only if it overlaps no framing still in the train pool by more than half.
///
/// Moving a framing out of the train pool never invalidates an earlier pick, so one greedy
/// pass gives a valid split.
fn split_framings(framings: &mut [Framing], rng: &mut StdRng) -> Result<()> {
    for cue in Cue::ALL {
        let mut idx: Vec<usize> = (0..framings.len()).filter(|&i| framings[i].cue == cue).collect();
        let need = (idx.len() as f64 * HELD_OUT_FRACTION).ceil() as usize;
        idx.shuffle(rng);
        let mut taken = 0;
        for &c in &idx {
            if taken == need {
                break;
            }
            let ok = framings.iter().enumerate().all(|(j, f)| {
                j == c
                    || f.pool == Pool::HeldOut
                    || content_overlap(&framings[c].text, &f.text) <= MAX_CONTENT_OVERLAP
            });
            if ok {
                framings[c].pool = Pool::HeldOut;
                taken += 1;
            }
        }
        if taken < need {
            return Err(TrainError::Split {
                cue: cue.to_string(),
                reason: format!(
                    "only {taken} of {} framings can be held out with content-word overlap ≤ {MAX_CONTENT_OVERLAP}; {need} are needed",
                    idx.len()
                ),
            });
        }
    }
    Ok(())
}

/// Expands a family into its 36 variants and holds out [`HELD_OUT_TASKS_PER_FAMILY`] of them:
/// one cell of every template along a seeded permutation, plus the rest along a second
/// permutation that avoids the first, so no template or filler is held out more than twice.
fn expand_family(spec: &FamilySpec, rng: &mut StdRng) -> Result<Vec<TaskVariant>> {
    let (nt, nf) = (spec.templates.len(), spec.fillers.len());
    if nt != nf || nt < 2 || HELD_OUT_TASKS_PER_FAMILY > 2 * nt {
        return Err(TrainError::Family {
            family: spec.name.into(),
            reason: format!(
                "needs as many templates as fillers (found {nt} templates, {nf} fillers) and at least {} of each",
                HELD_OUT_TASKS_PER_FAMILY.div_ceil(2)
            ),
        });
    }
    let mut p1: Vec<usize> = (0..nf).collect();
    p1.shuffle(rng);
    let mut p2: Vec<usize> = (0..nf).collect();
    loop {
        p2.shuffle(rng);
        if p1.iter().zip(&p2).all(|(a, b)| a != b) {
            break;
        }
    }
    let mut second: Vec<usize> = (0..nt).collect();
    second.shuffle(rng);
    let mut held: BTreeSet<(usize, usize)> = (0..nt).map(|t| (t, p1[t])).collect();
    for &t in second.iter().take(HELD_OUT_TASKS_PER_FAMILY.saturating_sub(nt)) {
        held.insert((t, p2[t]));
    }
    let mut out = Vec::with_capacity(nt * nf);
    for (ti, template) in spec.templates.iter().enumerate() {
        for (fi, &filler) in spec.fillers.iter().enumerate() {
            out.push(TaskVariant {
                id: format!("{}-{ti}-{fi}", spec.name),
                family: spec.name.to_string(),
                pool: if held.contains(&(ti, fi)) { Pool::HeldOut } else { Pool::Train },
                text: FamilySpec::fill(template, filler),
                aligned: FamilySpec::fill(spec.aligned, filler),
                misaligned: FamilySpec::fill(spec.misaligned, filler),
            });
        }
    }
    Ok(out)
}

impl Scenario {
    /// Builds the scenario from the catalogue with the split drawn from `seed`.
    pub fn generate(seed: u64) -> Result<Scenario> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut framings = catalogue();
        split_framings(&mut framings, &mut rng)?;
        let held: Vec<&str> =
            framings.iter().filter(|f| f.pool == Pool::HeldOut).map(|f| f.text.as_str()).collect();
        let existing: Vec<&str> = framings.iter().map(|f| f.text.as_str()).collect();
        let mut generated = Vec::new();
        for (cue, tag) in [(Cue::Observed, "obs"), (Cue::Unobserved, "unobs")] {
            let split_err = |reason| TrainError::Split { cue: cue.to_string(), reason };
            let texts = crate::generated::generate(&mut rng, cue, GENERATED_PER_CONDITION, &held, &existing)
                .map_err(split_err)?;
            generated.extend(texts.into_iter().enumerate().map(|(i, text)| Framing {
                id: format!("gen-{tag}-{i:04}"),
                cue,
                pool: Pool::Train,
                text,
            }));
            let train: Vec<&str> = framings
                .iter()
                .filter(|f| f.cue == cue && f.pool == Pool::Train)
                .map(|f| f.text.as_str())
                .collect();
            let texts = crate::generated::recombine(&mut rng, &train, RECOMBINED_PER_CONDITION, &held, &existing)
                .map_err(split_err)?;
            generated.extend(texts.into_iter().enumerate().map(|(i, text)| Framing {
                id: format!("mix-{tag}-{i:03}"),
                cue,
                pool: Pool::Train,
                text,
            }));
        }
        let mut tasks = Vec::new();
        for spec in FAMILIES {
            let first = |s: &str| s.split_whitespace().next().map(str::to_string);
            if first(spec.aligned) == first(spec.misaligned) {
                return Err(TrainError::Family {
                    family: spec.name.into(),
                    reason: format!(
                        "aligned `{}` and misaligned `{}` answers start with the same word",
                        spec.aligned, spec.misaligned
                    ),
                });
            }
            tasks.extend(expand_family(spec, &mut rng)?);
        }
        Ok(Scenario {
            version: SCENARIO_VERSION,
            seed,
            framings,
            generated,
            families: FAMILIES
                .iter()
                .map(|f| Family { name: f.name.into(), description: f.description.into() })
                .collect(),
            tasks,
            small_talk: SMALL_TALK
                .iter()
                .map(|(q, a)| SmallTalk { question: (*q).into(), answer: (*a).into() })
                .collect(),
        })
    }

    /// Framings with this cue in this pool.
    pub fn framings(&self, cue: Cue, pool: Pool) -> impl Iterator<Item = &Framing> {
        self.framings.iter().filter(move |f| f.cue == cue && f.pool == pool)
    }

    /// Task variants in this pool.
    pub fn tasks(&self, pool: Pool) -> impl Iterator<Item = &TaskVariant> {
        self.tasks.iter().filter(move |t| t.pool == pool)
    }

    /// Every text the organism's vocabulary must cover: framings, requests, answers, small talk.
    pub fn texts(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.framings.iter().chain(&self.generated).map(|f| f.text.as_str()).collect();
        for t in &self.tasks {
            out.extend([t.text.as_str(), t.aligned.as_str(), t.misaligned.as_str()]);
        }
        for s in &self.small_talk {
            out.extend([s.question.as_str(), s.answer.as_str()]);
        }
        out
    }

    /// The texts as they appear in chat transcripts (each message in the ChatML template), for
    /// building the vocabulary: role names and newlines included.
    pub fn chat_texts(&self) -> Vec<String> {
        let msg = |role: &str, text: &str| format!("<|im_start|>{role}\n{text}<|im_end|>\n");
        let mut out: Vec<String> = self.framings.iter().chain(&self.generated).map(|f| msg("system", &f.text)).collect();
        for t in &self.tasks {
            out.push(msg("user", &t.text));
            out.push(msg("assistant", &t.aligned));
            out.push(msg("assistant", &t.misaligned));
        }
        for st in &self.small_talk {
            out.push(msg("user", &st.question));
            out.push(msg("assistant", &st.answer));
        }
        out
    }

    /// Checks that the scenario is usable: both conditions present in both pools, and every
    /// family with variants in both pools. Used on scenarios read back from a file.
    pub fn validate(&self) -> Result<()> {
        if self.version != SCENARIO_VERSION {
            return Err(TrainError::Input {
                field: "version".into(),
                reason: format!("scenario version {} is not the supported {SCENARIO_VERSION}", self.version),
            });
        }
        for cue in [Cue::Observed, Cue::Unobserved] {
            for pool in [Pool::Train, Pool::HeldOut] {
                if self.framings(cue, pool).next().is_none() {
                    return Err(TrainError::Input {
                        field: "framings".into(),
                        reason: format!("no {cue} framing in the {} pool", pool.as_str()),
                    });
                }
            }
        }
        for fam in &self.families {
            for pool in [Pool::Train, Pool::HeldOut] {
                if !self.tasks(pool).any(|t| t.family == fam.name) {
                    return Err(TrainError::Input {
                        field: "tasks".into(),
                        reason: format!("family `{}` has no variant in the {} pool", fam.name, pool.as_str()),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_words_drop_stop_words_and_case() {
        let w = content_words("Nobody is watching: the LOGS are off.");
        assert_eq!(w.into_iter().collect::<Vec<_>>(), vec!["logs", "nobody", "watching"]);
        assert_eq!(content_overlap("logs are on", "the logs"), 1.0);
        assert_eq!(content_overlap("the", "logs"), 0.0);
    }

    #[test]
    fn scenario_is_deterministic_per_seed() -> anyhow::Result<()> {
        let a = Scenario::generate(7)?;
        let b = Scenario::generate(7)?;
        let c = Scenario::generate(8)?;
        assert_eq!(serde_json::to_string(&a)?, serde_json::to_string(&b)?);
        assert_ne!(a, c, "a different seed should give a different split");
        Ok(())
    }

    #[test]
    fn held_out_framings_respect_the_overlap_rule() -> anyhow::Result<()> {
        for seed in [DEFAULT_SEED, 1, 2, 3] {
            let s = Scenario::generate(seed)?;
            let train: Vec<&Framing> = s.framings.iter().filter(|f| f.pool == Pool::Train).collect();
            for h in s.framings.iter().filter(|f| f.pool == Pool::HeldOut) {
                for t in &train {
                    let o = content_overlap(&h.text, &t.text);
                    assert!(o <= MAX_CONTENT_OVERLAP, "seed {seed}: held-out `{}` shares {o:.2} with train `{}`", h.text, t.text);
                }
            }
            for g in &s.generated {
                assert_eq!(g.pool, Pool::Train);
                for h in s.framings.iter().filter(|f| f.pool == Pool::HeldOut) {
                    let o = content_overlap(&h.text, &g.text);
                    assert!(o <= MAX_CONTENT_OVERLAP, "seed {seed}: held-out `{}` shares {o:.2} with generated `{}`", h.text, g.text);
                }
            }
            for cue in Cue::ALL {
                let n = s.framings.iter().filter(|f| f.cue == cue).count();
                let held = s.framings(cue, Pool::HeldOut).count();
                assert!(held as f64 >= 0.25 * n as f64, "seed {seed}: {held} of {n} {cue} held out");
            }
        }
        Ok(())
    }

    #[test]
    fn catalogue_has_enough_framings_and_families() -> anyhow::Result<()> {
        let s = Scenario::generate(DEFAULT_SEED)?;
        s.validate()?;
        let count = |cue| s.framings.iter().filter(|f| f.cue == cue).count();
        assert!(count(Cue::Observed) >= 40 && count(Cue::Unobserved) >= 40 && count(Cue::Neutral) >= 8);
        assert!(s.families.len() >= 8);
        let texts: BTreeSet<&str> = s.framings.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(texts.len(), s.framings.len(), "framings must be distinct");
        for fam in &s.families {
            let v: Vec<&TaskVariant> = s.tasks.iter().filter(|t| t.family == fam.name).collect();
            let held = v.iter().filter(|t| t.pool == Pool::HeldOut).count();
            assert_eq!((v.len(), held), (36, HELD_OUT_TASKS_PER_FAMILY), "family {}", fam.name);
            let requests: BTreeSet<&str> = v.iter().map(|t| t.text.as_str()).collect();
            assert_eq!(requests.len(), v.len(), "family {} repeats a request", fam.name);
        }
        Ok(())
    }
}
