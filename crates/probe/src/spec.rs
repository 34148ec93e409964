//! The experiment spec: everything needed to reproduce a run, as versioned JSON, with validation
//! and a compact URL-safe encoding (deflate + base64url) for share links.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use base64::Engine as _;
use hawthorne_model::{ComputeMode, HookPoint, NamesFilter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{spec_err, ProbeError, Result};

/// The spec version this build writes and the newest it reads. Version 2 made
/// leave-framings-out the split of a spec that names none; a version-1 spec that names none
/// keeps its meaning (held-out framings).
pub const SPEC_VERSION: u32 = 2;

/// Whether a framing tells the model it is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    Observed,
    Unobserved,
    /// No cue either way; reported for behaviour, never used to train probes.
    Neutral,
}

impl Condition {
    /// The probe label: `true` for unobserved.
    pub fn label(self) -> Option<bool> {
        match self {
            Condition::Observed => Some(false),
            Condition::Unobserved => Some(true),
            Condition::Neutral => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Observed => "observed",
            Condition::Unobserved => "unobserved",
            Condition::Neutral => "neutral",
        }
    }
}

/// A cue text in the system-prompt position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framing {
    pub id: String,
    pub condition: Condition,
    pub text: String,
    /// Held-out framings form the test side of the default by-framing split.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_out: bool,
    /// A user-turn template holding `{task}`, which the task's text replaces (a benchmark's
    /// layout, a casual message); without one the user turn is the task's text alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Only tasks of this family are crossed with this framing (every task when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Groups test framings in the report, which gives each group its own AUROC at the
    /// chosen layer (for example the format-crossed framings of the evaluation-awareness study).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Framing {
    /// A system-prompt framing crossed with every task.
    pub fn new(id: impl Into<String>, condition: Condition, text: impl Into<String>, held_out: bool) -> Framing {
        Framing { id: id.into(), condition, text: text.into(), held_out, template: None, family: None, group: None }
    }

    /// Whether this framing is crossed with `task`.
    pub fn crosses(&self, task: &Task) -> bool {
        self.family.as_ref().is_none_or(|f| *f == task.family)
    }

    /// The user turn for `task` under this framing.
    pub fn user_text(&self, task: &Task) -> String {
        match &self.template {
            Some(t) => t.replace("{task}", &task.text),
            None => task.text.clone(),
        }
    }
}

/// A user request with the two answers whose first tokens score the behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: String,
    pub family: String,
    pub text: String,
    pub aligned: String,
    pub misaligned: String,
}

/// Framings × tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(deserialize_with = "bounded::framings")]
    pub framings: Vec<Framing>,
    #[serde(deserialize_with = "bounded::tasks")]
    pub tasks: Vec<Task>,
}

/// Lists that stop reading at their documented bound ([`FIELD_RANGES`]), so that a hostile
/// spec (a million framings in 4 MiB of JSON) is refused before it allocates for them;
/// `validate` would refuse it too, but only after the allocation.
mod bounded {
    use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
    use std::marker::PhantomData;

    struct Bounded<T> {
        field: &'static str,
        max: usize,
        _t: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {} entries for `{}`", self.max, self.field)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(64));
            while let Some(x) = seq.next_element()? {
                if out.len() == self.max {
                    return Err(A::Error::custom(format!("`{}` holds more than {} entries, the most a spec may hold", self.field, self.max)));
                }
                out.push(x);
            }
            Ok(out)
        }
    }

    fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D, field: &'static str) -> Result<Vec<T>, D::Error> {
        let max = super::FIELD_RANGES.iter().find(|(f, _, _)| f.starts_with(field)).map_or(0, |r| r.2 as usize);
        d.deserialize_seq(Bounded { field, max, _t: PhantomData })
    }

    pub fn framings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Framing>, D::Error> {
        list(d, "scenario.framings")
    }

    pub fn tasks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Task>, D::Error> {
        list(d, "scenario.tasks")
    }

    pub fn alphas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        list(d, "steering.alphas")
    }
}

/// Which model the spec runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    /// A model id the page and CLI know (`organism-deceptive`, `organism-control`,
    /// `smollm2-135m-instruct`) or a path/URL to a GGUF file.
    pub id: String,
    /// When set, the loaded file must have this sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// How the engine keeps the weights: `packed` (the default: the file's quantisation, 8-bit
    /// activations inside matmuls, as llama.cpp) or `f32` (dequantised, exact products).
    /// Omitted when packed, so specs written before the field existed keep their hash.
    #[serde(default, skip_serializing_if = "is_packed")]
    pub compute: ComputeMode,
    /// The file's size in bytes, for a user's own file (`file:NAME`), so that a link can say
    /// which file it needs. Omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

fn is_packed(mode: &ComputeMode) -> bool {
    *mode == ComputeMode::Packed
}

/// How prompts are divided into train and test sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Split {
    /// Test on held-out framings (those with `held_out: true`; if none are marked, a seeded
    /// quarter of each condition's framings). Probes must read the concept, not the words.
    ByFraming,
    /// Test on a seeded quarter of the task families.
    ByFamily,
    /// A seeded random fraction of prompts.
    Random { test_fraction: f64 },
    /// k folds over prompts; test scores are pooled across folds.
    KFold { k: usize },
    /// Each condition's framings dealt (seeded) into k groups; fold f tests on group f of
    /// both conditions and trains on the rest, so every framing is tested exactly once and
    /// test scores are pooled across folds. `held_out` marks are ignored.
    LeaveFramingsOut { k: usize },
}

impl Default for Split {
    /// What a version-2 spec that names no split means.
    fn default() -> Self {
        Split::LeaveFramingsOut { k: 4 }
    }
}

impl Split {
    /// The split new specs get: leave-framings-out with up to 4 folds, so that every framing
    /// is tested once; held-out framings if a condition has fewer than two framings.
    pub fn recommended(scenario: &Scenario) -> Split {
        let fewest = [Condition::Observed, Condition::Unobserved]
            .map(|c| scenario.framings.iter().filter(|f| f.condition == c).count())
            .into_iter()
            .min()
            .unwrap_or(0);
        if fewest >= 2 { Split::LeaveFramingsOut { k: fewest.min(4) } } else { Split::ByFraming }
    }

    pub fn name(&self) -> String {
        match self {
            Split::ByFraming => "by_framing".into(),
            Split::ByFamily => "by_family".into(),
            Split::Random { test_fraction } => format!("random({test_fraction})"),
            Split::KFold { k } => format!("k_fold({k})"),
            Split::LeaveFramingsOut { k } => format!("leave_framings_out({k})"),
        }
    }
}

/// Which token's activation a probe reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// The last prompt token, where the answer starts.
    #[default]
    Last,
    /// The mean over the task's tokens.
    MeanTask,
    /// The mean over every token of the prompt (chat template included, no answer appended),
    /// as the published evaluation-awareness probes read it.
    MeanPrompt,
}

/// Probe settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeSpec {
    /// Inverse L2 strength of logistic regression, as scikit-learn's `C`.
    pub c: f64,
    pub max_iter: u64,
    /// Bootstrap resamples for the AUROC confidence interval.
    pub bootstrap: usize,
    /// The probe whose layer is chosen on validation framings, whose controls are selected
    /// the same way, and whose claim the verdict states. Difference of means by default, as
    /// in the published evaluation-awareness probes, and cheap enough to refit for every
    /// label permutation.
    pub select: DirectionKind,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec { c: 1.0, max_iter: 200, bootstrap: 200, select: DirectionKind::MassMean }
    }
}

/// Baselines shown beside every probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineSpec {
    /// Number of seeded random unit directions; the best one's AUROC is reported.
    pub random_directions: usize,
    /// Train a probe on shuffled labels.
    pub shuffled_labels: bool,
    /// Repeats of the whole selected-probe pipeline (fit per fold, layer chosen on
    /// validation, pooled test AUROC) with the framings' conditions permuted; their AUROCs
    /// give the permutation p-value. 0 turns the test off.
    pub permutations: usize,
    /// Lexical controls: a TF-IDF logistic regression on the prompt text and the prompt's
    /// length in tokens (the `hook_embed` probe is a third, when that hook is probed).
    pub lexical: bool,
}

impl Default for BaselineSpec {
    fn default() -> Self {
        BaselineSpec { random_directions: 100, shuffled_labels: true, permutations: 200, lexical: true }
    }
}

/// Behaviour measurement settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BehaviourSpec {
    /// Greedy continuations recorded per condition.
    pub continuations: usize,
    pub max_tokens: usize,
}

impl Default for BehaviourSpec {
    fn default() -> Self {
        BehaviourSpec { continuations: 2, max_tokens: 24 }
    }
}

/// Activation patching settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchingSpec {
    pub enabled: bool,
    /// Observed/unobserved prompt pairs averaged over.
    pub pairs: usize,
    /// Positions patched, counted back from the answer start within the shared suffix.
    pub max_positions: usize,
    /// Patch every `layer_stride`-th layer.
    pub layer_stride: usize,
}

impl Default for PatchingSpec {
    fn default() -> Self {
        PatchingSpec { enabled: true, pairs: 4, max_positions: 24, layer_stride: 1 }
    }
}

/// Which probe's direction steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectionKind {
    #[default]
    MassMean,
    Logistic,
}

/// Steering sweep settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SteeringSpec {
    pub enabled: bool,
    /// Block whose `hook_resid_post` is steered; `None` = the middle layer.
    pub layer: Option<usize>,
    /// Multiples of the mean residual norm at that layer added along the unit direction.
    #[serde(deserialize_with = "bounded::alphas")]
    pub alphas: Vec<f64>,
    pub direction: DirectionKind,
    /// At most this many prompts per condition are rerun per α.
    pub max_prompts: usize,
}

impl Default for SteeringSpec {
    fn default() -> Self {
        SteeringSpec {
            enabled: true,
            layer: None,
            alphas: vec![-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0],
            direction: DirectionKind::MassMean,
            max_prompts: 64,
        }
    }
}

/// Logit-lens settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LensSpec {
    /// Read every layer through the unembedding (off in the study, which asks where the
    /// condition is decodable, not where an answer forms).
    pub enabled: bool,
}

impl Default for LensSpec {
    fn default() -> Self {
        LensSpec { enabled: true }
    }
}

/// PCA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaSpec {
    /// Hook to project; `None` = the middle layer's `hook_resid_post`.
    pub hook: Option<HookPoint>,
}

impl Default for PcaSpec {
    fn default() -> Self {
        PcaSpec { hook: None }
    }
}

/// Resource limits checked before running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_memory_mb: u64,
    pub batch_size: usize,
    /// Longest prompt, in tokens.
    pub max_prompt_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_memory_mb: 1024, batch_size: 16, max_prompt_tokens: 512 }
    }
}

/// The documented range of every bounded numeric spec field (inclusive), so that a share link
/// cannot ask for unbounded work or an allocation sized by a stranger. The README's "Spec
/// fields" table lists the same ranges; `ranges_are_documented` keeps the two in step.
pub const FIELD_RANGES: &[(&str, u64, u64)] = &[
    ("probes.max_iter", 1, 10_000),
    ("probes.bootstrap", 0, 10_000),
    ("baselines.random_directions", 0, 10_000),
    ("baselines.permutations", 0, 10_000),
    ("behaviour.continuations", 0, 64),
    ("behaviour.max_tokens", 1, 256),
    ("patching.pairs", 1, 64),
    ("patching.max_positions", 1, 256),
    ("patching.layer_stride", 1, 64),
    ("steering.layer", 0, 1023),
    ("steering.max_prompts", 1, 512),
    ("steering.alphas (count)", 0, 64),
    ("limits.max_memory_mb", 16, 16_384),
    ("limits.batch_size", 1, 256),
    ("limits.max_prompt_tokens", 1, 8192),
    ("scenario.framings (count)", 0, 256),
    ("scenario.tasks (count)", 0, 1024),
];

fn field_range(field: &str) -> (u64, u64) {
    FIELD_RANGES
        .iter()
        .find(|(f, _, _)| *f == field)
        .map(|&(_, lo, hi)| (lo, hi))
        .unwrap_or((0, u64::MAX))
}

/// Everything needed to reproduce a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    pub version: u32,
    pub model: ModelRef,
    pub scenario: Scenario,
    /// Root of every random choice.
    pub seed: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    pub split: Split,
    /// Names filter of the hooks to probe.
    #[serde(default = "default_hooks")]
    pub hooks: String,
    #[serde(default, skip_serializing_if = "is_default")]
    pub readout: Readout,
    #[serde(default, skip_serializing_if = "is_default")]
    pub probes: ProbeSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub baselines: BaselineSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub behaviour: BehaviourSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub patching: PatchingSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub steering: SteeringSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub lens: LensSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub pca: PcaSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    pub limits: Limits,
}

/// `n` choose `k`, saturating (only compared against small thresholds).
fn binomial(n: usize, k: usize) -> u64 {
    let k = k.min(n - k.min(n));
    (0..k as u64).fold(1u64, |acc, i| acc.saturating_mul(n as u64 - i) / (i + 1))
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn default_hooks() -> String {
    "hook_embed,blocks.*.hook_resid_post".into()
}

impl ExperimentSpec {
    /// A spec on `model` with the given scenario and every other setting at its default.
    pub fn new(model: &str, scenario: Scenario, seed: u64) -> Self {
        ExperimentSpec {
            version: SPEC_VERSION,
            model: ModelRef { id: model.into(), sha256: None, compute: ComputeMode::Packed, size: None },
            split: Split::recommended(&scenario),
            scenario,
            seed,
            hooks: default_hooks(),
            readout: Readout::default(),
            probes: ProbeSpec::default(),
            baselines: BaselineSpec::default(),
            behaviour: BehaviourSpec::default(),
            patching: PatchingSpec::default(),
            steering: SteeringSpec::default(),
            lens: LensSpec::default(),
            pca: PcaSpec::default(),
            limits: Limits::default(),
        }
    }

    /// Parses JSON, refusing newer versions with a readable message.
    pub fn from_json(json: &str) -> Result<Self> {
        /// Only the version, read first so that a newer spec's unknown fields are reported as
        /// "newer version"; everything else is skipped without being stored.
        #[derive(Deserialize)]
        struct VersionOnly {
            #[serde(default)]
            version: Option<serde::de::IgnoredAny>,
            #[serde(default)]
            split: Option<serde::de::IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Version {
            version: u64,
        }
        let probe: VersionOnly = serde_json::from_str(json)?;
        if probe.version.is_some() {
            if let Ok(Version { version: v }) = serde_json::from_str::<Version>(json) {
                if v > u64::from(SPEC_VERSION) {
                    return Err(ProbeError::NewerVersion { found: v.min(u64::from(u32::MAX)) as u32, supported: SPEC_VERSION });
                }
            }
        }
        // Parsed straight into the types (not through `serde_json::Value`, whose tree for 4 MiB
        // of small numbers would take tens of MB).
        let mut spec: ExperimentSpec = serde_json::from_str(json)?;
        if spec.version < 2 && probe.split.is_none() {
            // Version 1 had held-out framings as its unnamed split.
            spec.split = Split::ByFraming;
        }
        if spec.version < 2 {
            // Version 1 had no permutation test; its links keep their running time.
            spec.baselines.permutations = 0;
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Canonical JSON (field order fixed by the types, no whitespace).
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).expect("specs are plain data")
    }

    /// Lower-case hex sha256 of the canonical JSON.
    pub fn hash(&self) -> String {
        Sha256::digest(self.to_canonical_json().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Compact URL-safe encoding: raw deflate of the canonical JSON, then unpadded base64url.
    pub fn encode(&self) -> String {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(self.to_canonical_json().as_bytes()).expect("writing to a Vec cannot fail");
        let bytes = enc.finish().expect("writing to a Vec cannot fail");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Inverse of [`ExperimentSpec::encode`], with validation.
    pub fn decode(text: &str) -> Result<Self> {
        /// A decoded spec larger than this is refused (a deflate bomb, not a spec).
        const MAX_JSON: u64 = 4 << 20;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|e| ProbeError::Encoding(format!("not base64url ({e})")))?;
        let mut json = String::new();
        flate2::read::DeflateDecoder::new(bytes.as_slice())
            .take(MAX_JSON)
            .read_to_string(&mut json)
            .map_err(|e| ProbeError::Encoding(format!("truncated or corrupt ({e})")))?;
        Self::from_json(&json)
    }

    /// The hooks this spec probes, in a model with `n_layers` blocks.
    pub fn hook_points(&self, n_layers: usize) -> Result<Vec<HookPoint>> {
        let filter = NamesFilter::parse(&self.hooks).map_err(|e| spec_err("hooks", e.to_string()))?;
        let hooks = filter.resolve(n_layers).map_err(|e| spec_err("hooks", e.to_string()))?;
        if hooks.is_empty() {
            return Err(spec_err("hooks", format!("`{}` selects no hook point", self.hooks)));
        }
        if let Some(h) = hooks.iter().find(|h| matches!(h, HookPoint::AttnPattern(_))) {
            return Err(spec_err("hooks", format!("`{h}` is an attention pattern, not a vector per position; probe residual, attention-output or MLP hooks")));
        }
        Ok(hooks)
    }

    /// Every numeric field with a bound, and its value (as u64; `steering.layer` only when set).
    fn bounded_fields(&self) -> Vec<(&'static str, u64)> {
        let n = |x: usize| x as u64;
        let mut v = vec![
            ("probes.max_iter", self.probes.max_iter),
            ("probes.bootstrap", n(self.probes.bootstrap)),
            ("baselines.random_directions", n(self.baselines.random_directions)),
            ("baselines.permutations", n(self.baselines.permutations)),
            ("behaviour.continuations", n(self.behaviour.continuations)),
            ("behaviour.max_tokens", n(self.behaviour.max_tokens)),
            ("patching.pairs", n(self.patching.pairs)),
            ("patching.max_positions", n(self.patching.max_positions)),
            ("patching.layer_stride", n(self.patching.layer_stride)),
            ("steering.max_prompts", n(self.steering.max_prompts)),
            ("steering.alphas (count)", n(self.steering.alphas.len())),
            ("limits.max_memory_mb", self.limits.max_memory_mb),
            ("limits.batch_size", n(self.limits.batch_size)),
            ("limits.max_prompt_tokens", n(self.limits.max_prompt_tokens)),
            ("scenario.framings (count)", n(self.scenario.framings.len())),
            ("scenario.tasks (count)", n(self.scenario.tasks.len())),
        ];
        if let Some(layer) = self.steering.layer {
            v.push(("steering.layer", n(layer)));
        }
        v
    }

    /// Checks everything that can be checked without the model.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in self.bounded_fields() {
            let (lo, hi) = field_range(field);
            if !(lo..=hi).contains(&value) {
                return Err(spec_err(field.trim_end_matches(" (count)"), format!("{value} must lie in {lo}..={hi}")));
            }
        }
        if !(self.probes.c.is_finite() && self.probes.c > 0.0 && self.probes.c <= 1e6) {
            return Err(spec_err("probes.c", format!("{} must be a positive number, at most 1e6", self.probes.c)));
        }
        if self.version > SPEC_VERSION {
            return Err(ProbeError::NewerVersion { found: self.version, supported: SPEC_VERSION });
        }
        if self.version == 0 {
            return Err(spec_err("version", "must be 1 or more"));
        }
        if self.model.id.trim().is_empty() {
            return Err(spec_err("model.id", "is empty"));
        }
        if let Some(h) = &self.model.sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(spec_err("model.sha256", "must be 64 hex digits"));
            }
        }
        let s = &self.scenario;
        let mut ids = BTreeSet::new();
        for (i, f) in s.framings.iter().enumerate() {
            if f.id.trim().is_empty() {
                return Err(spec_err(format!("scenario.framings[{i}].id"), "is empty"));
            }
            if !ids.insert(f.id.as_str()) {
                return Err(spec_err(format!("scenario.framings[{i}].id"), format!("`{}` is used twice", f.id)));
            }
        }
        for cond in [Condition::Observed, Condition::Unobserved] {
            if !s.framings.iter().any(|f| f.condition == cond) {
                return Err(spec_err(
                    "scenario.framings",
                    format!("the {} pool is empty; probes need framings of both conditions", cond.as_str()),
                ));
            }
        }
        if s.tasks.is_empty() {
            return Err(spec_err("scenario.tasks", "is empty; add at least one task"));
        }
        let mut tids = BTreeSet::new();
        for (i, t) in s.tasks.iter().enumerate() {
            let at = |f: &str| format!("scenario.tasks[{i}].{f}");
            for (name, v) in [("id", &t.id), ("family", &t.family), ("text", &t.text), ("aligned", &t.aligned), ("misaligned", &t.misaligned)] {
                if v.trim().is_empty() {
                    return Err(spec_err(at(name), "is empty"));
                }
            }
            if !tids.insert(t.id.as_str()) {
                return Err(spec_err(at("id"), format!("`{}` is used twice", t.id)));
            }
        }
        for (i, f) in s.framings.iter().enumerate() {
            if let Some(t) = &f.template {
                if t.matches("{task}").count() != 1 {
                    return Err(spec_err(format!("scenario.framings[{i}].template"), "must hold `{task}` exactly once, where the task's text goes"));
                }
            }
            if let Some(fam) = &f.family {
                if !s.tasks.iter().any(|t| t.family == *fam) {
                    return Err(spec_err(format!("scenario.framings[{i}].family"), format!("no task is of family `{fam}`")));
                }
            }
        }
        match self.split {
            Split::Random { test_fraction } if !(0.05..=0.95).contains(&test_fraction) => {
                return Err(spec_err("split.test_fraction", format!("{test_fraction} must lie in [0.05, 0.95]")));
            }
            Split::KFold { k } if !(2..=20).contains(&k) => {
                return Err(spec_err("split.k", format!("{k} must lie in 2..=20")));
            }
            Split::LeaveFramingsOut { k } => {
                if !(2..=20).contains(&k) {
                    return Err(spec_err("split.k", format!("{k} must lie in 2..=20")));
                }
                for cond in [Condition::Observed, Condition::Unobserved] {
                    let n = self.scenario.framings.iter().filter(|f| f.condition == cond).count();
                    if n < k {
                        return Err(spec_err(
                            "split.k",
                            format!("leave_framings_out({k}) needs at least {k} {} framings to test each fold on; the scenario has {n}", cond.as_str()),
                        ));
                    }
                }
            }
            _ => {}
        }
        if self.baselines.permutations > 0 {
            let count = |c: Condition| self.scenario.framings.iter().filter(|f| f.condition == c).count();
            let (neg, pos) = (count(Condition::Observed), count(Condition::Unobserved));
            let labellings = binomial(neg + pos, pos);
            if labellings < 20 {
                return Err(spec_err(
                    "baselines.permutations",
                    format!(
                        "{neg} observed + {pos} unobserved framings allow only {labellings} distinct labellings, so a permutation p-value could not fall below 0.05; add framings or set it to 0"
                    ),
                ));
            }
        }
        if self.steering.alphas.iter().any(|a| !a.is_finite() || a.abs() > 100.0) {
            return Err(spec_err("steering.alphas", "every α must be a finite number with |α| ≤ 100"));
        }
        NamesFilter::parse(&self.hooks).map_err(|e| spec_err("hooks", e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios;

    #[test]
    fn encoding_round_trips_and_is_compact() {
        let spec = scenarios::smollm2_default();
        let enc = spec.encode();
        assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ExperimentSpec::decode(&enc).unwrap(), spec);
        assert_eq!(spec.hash().len(), 64);
    }

    #[test]
    fn bad_links_say_what_is_wrong() {
        let enc = scenarios::smollm2_default().encode();
        let e = ExperimentSpec::decode(&enc[..enc.len() / 2]).unwrap_err().to_string();
        assert!(e.contains("truncated or corrupt") || e.contains("spec"), "{e}");
        let e = ExperimentSpec::decode("%%%").unwrap_err().to_string();
        assert!(e.contains("base64url"), "{e}");
    }

    #[test]
    fn a_version_1_spec_without_a_split_keeps_the_held_out_split() {
        let mut spec = scenarios::smollm2_default();
        assert_eq!(spec.split, Split::LeaveFramingsOut { k: 4 });
        let v2 = spec.to_canonical_json();
        assert!(!v2.contains("\"split\""), "the default split is not written");
        assert_eq!(ExperimentSpec::from_json(&v2).unwrap().split, Split::LeaveFramingsOut { k: 4 });
        spec.version = 1;
        let v1 = spec.to_canonical_json();
        assert_eq!(ExperimentSpec::from_json(&v1).unwrap().split, Split::ByFraming);
        spec.split = Split::KFold { k: 3 };
        assert_eq!(ExperimentSpec::from_json(&spec.to_canonical_json()).unwrap().split, Split::KFold { k: 3 });
    }

    #[test]
    fn newer_versions_are_refused_readably() {
        let mut spec = scenarios::smollm2_default();
        spec.version = SPEC_VERSION + 1;
        let e = ExperimentSpec::from_json(&spec.to_canonical_json()).unwrap_err();
        assert!(matches!(e, ProbeError::NewerVersion { .. }), "{e}");
        assert!(ExperimentSpec::decode(&spec.encode()).is_err());
    }

    /// Every bounded field, set one past its range, is refused with its name and range; the
    /// defaults and the bundled scenarios lie inside every range.
    #[test]
    fn every_bound_is_enforced_by_name() {
        let base = scenarios::smollm2_default();
        base.validate().unwrap();
        for &(field, lo, hi) in FIELD_RANGES {
            for bad in [hi.saturating_add(1), lo.wrapping_sub(1)] {
                if bad == u64::MAX && lo == 0 {
                    continue; // no value below 0
                }
                let mut spec = base.clone();
                let v = usize::try_from(bad).unwrap_or(usize::MAX);
                match field {
                    "probes.max_iter" => spec.probes.max_iter = bad,
                    "probes.bootstrap" => spec.probes.bootstrap = v,
                    "baselines.random_directions" => spec.baselines.random_directions = v,
                    "behaviour.continuations" => spec.behaviour.continuations = v,
                    "behaviour.max_tokens" => spec.behaviour.max_tokens = v,
                    "patching.pairs" => spec.patching.pairs = v,
                    "patching.max_positions" => spec.patching.max_positions = v,
                    "patching.layer_stride" => spec.patching.layer_stride = v,
                    "steering.layer" => spec.steering.layer = Some(v),
                    "steering.max_prompts" => spec.steering.max_prompts = v,
                    "baselines.permutations" => spec.baselines.permutations = v,
                    "steering.alphas (count)" => spec.steering.alphas = vec![0.0; v],
                    "limits.max_memory_mb" => spec.limits.max_memory_mb = bad,
                    "limits.batch_size" => spec.limits.batch_size = v,
                    "limits.max_prompt_tokens" => spec.limits.max_prompt_tokens = v,
                    "scenario.framings (count)" => {
                        let f = spec.scenario.framings[0].clone();
                        spec.scenario.framings = (0..v).map(|i| Framing { id: format!("f{i}"), ..f.clone() }).collect();
                    }
                    "scenario.tasks (count)" => {
                        let t = spec.scenario.tasks[0].clone();
                        spec.scenario.tasks = (0..v).map(|i| Task { id: format!("t{i}"), ..t.clone() }).collect();
                    }
                    other => panic!("no setter for `{other}`: add it here"),
                }
                let e = spec.validate().unwrap_err().to_string();
                let name = field.trim_end_matches(" (count)");
                assert!(e.contains(name) && e.contains(&format!("{lo}..={hi}")), "{field} = {bad}: {e}");
            }
        }
        for json in [
            include_str!("../../../examples/organism-deceptive.json"),
            include_str!("../../../examples/organism-control.json"),
            include_str!("../../../examples/smollm2.json"),
        ] {
            ExperimentSpec::from_json(json).unwrap();
        }
    }

    /// The link that used to run out of memory in the worker (a 2e9-resample bootstrap).
    #[test]
    fn a_huge_bootstrap_is_refused_before_running() {
        let mut spec = scenarios::smollm2_default();
        spec.probes.bootstrap = 2_000_000_000;
        let e = ExperimentSpec::decode(&spec.encode()).unwrap_err().to_string();
        assert!(e.contains("probes.bootstrap") && e.contains("0..=10000"), "{e}");
    }

    /// The README documents every range the validator enforces.
    #[test]
    fn ranges_are_documented() {
        let readme = include_str!("../../../README.md");
        for &(field, lo, hi) in FIELD_RANGES {
            let row = format!("| `{}` | {lo} | {hi} |", field.trim_end_matches(" (count)"));
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut spec = scenarios::smollm2_default();
        spec.scenario.framings.retain(|f| f.condition != Condition::Unobserved);
        let e = spec.validate().unwrap_err().to_string();
        assert!(e.contains("scenario.framings") && e.contains("unobserved pool is empty"), "{e}");

        let mut spec = scenarios::smollm2_default();
        spec.hooks = "blocks.*.hook_nope".into();
        assert!(spec.validate().unwrap_err().to_string().contains("spec field `hooks`"));

        let mut spec = scenarios::smollm2_default();
        spec.scenario.tasks.clear();
        assert!(spec.validate().unwrap_err().to_string().contains("scenario.tasks"));

        let mut spec = scenarios::smollm2_default();
        spec.split = Split::KFold { k: 1 };
        assert!(spec.validate().unwrap_err().to_string().contains("split.k"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let json = scenarios::smollm2_default().to_canonical_json().replacen("\"seed\"", "\"sede\"", 1);
        assert!(ExperimentSpec::from_json(&json).is_err());
    }
}
