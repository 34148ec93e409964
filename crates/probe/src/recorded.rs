//! Activations recorded outside the engine: the spec's prompts written out as data for another
//! engine (Hugging Face transformers or nnsight, through the Python collector), and a read-only
//! model that serves the collected readouts and answer logits back to an experiment.
//!
//! The directory format (documented for users in `python/README.md`):
//! - `manifest.json`: a [`Manifest`]: the spec's hash, the model, the collector's library
//!   versions, the readout, the hooks, every prompt's framing, task, condition and token ids in
//!   the spec's order, and the token ids of the texts the contrast set tokenizes on its own
//!   (answers and task texts);
//! - `activations/{hook}.npy`: little-endian f32 `[n_prompts, d_model]`, the readout at `hook`;
//! - `answer_logits.npy`: f32 `[n_prompts, 2]`, the next-token logits of the prompt's task's
//!   aligned and misaligned first answer tokens at the last prompt position.
//!
//! No IO here: callers hand over the files as bytes, keyed by their path inside the directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use candle_core::Tensor;
use hawthorne_model::{Config, Family, ForwardOutput, GenerateOptions, Generation, HookPoint, ModelError, RunOptions};
use serde::{Deserialize, Serialize};

use crate::backend::LanguageModel;
use crate::error::{ProbeError, Result};
use crate::spec::{ExperimentSpec, Readout};
use crate::split::make_folds;

/// `format` of a collected-activations manifest.
pub const FORMAT: &str = "hawthorne-activations";
/// `format` of the first line of a prompts file.
pub const PROMPTS_FORMAT: &str = "hawthorne-prompts";
/// Version of both formats.
pub const FORMAT_VERSION: u32 = 1;

/// The first line of `prompts.jsonl`: what the collector needs besides the prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptsHeader {
    pub format: String,
    pub format_version: u32,
    /// [`ExperimentSpec::hash`] of the spec the prompts come from; copied into the manifest.
    pub spec_hash: String,
    /// The spec's model id (the collector is told which model to load separately).
    pub spec_model: String,
    pub readout: Readout,
    pub n_prompts: usize,
    /// `limits.max_prompt_tokens`: the collector refuses longer prompts before it runs any.
    pub max_prompt_tokens: usize,
    /// Every text the contrast set tokenizes without the chat template: each task's aligned
    /// and misaligned answers (their first token scores behaviour) and its text (which locates
    /// the task's tokens for the `mean_task` readout).
    pub texts: Vec<String>,
}

/// One line of `prompts.jsonl` after the header: one prompt of the contrast set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptLine {
    pub index: usize,
    pub framing: String,
    pub condition: String,
    pub task: String,
    pub family: String,
    /// The framing's report group, if any (the study's format cross).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `train` or `test` in the first fold (as the report's prompt table has it).
    pub split: String,
    /// The fold whose test side holds this prompt, if any.
    pub test_fold: Option<usize>,
    pub held_out_framing: bool,
    /// The system turn (empty: the model's own default, if its template has one).
    pub system: String,
    /// The user turn.
    pub user: String,
    /// The task's own text inside the user turn.
    pub task_text: String,
    pub aligned: String,
    pub misaligned: String,
}

/// The spec's contrast set as data: a header and one line per prompt, in the engine's order.
pub fn prompt_lines(spec: &ExperimentSpec) -> Result<(PromptsHeader, Vec<PromptLine>)> {
    spec.validate()?;
    let sc = &spec.scenario;
    let set = crate::contrast::untokenized(spec);
    let folds = make_folds(spec, &set)?;
    let mut test_fold = vec![None; set.items.len()];
    for (k, f) in folds.iter().enumerate() {
        for &i in &f.test {
            test_fold[i].get_or_insert(k);
        }
    }
    let first_train: BTreeSet<usize> = folds.first().map(|f| f.train.iter().copied().collect()).unwrap_or_default();
    let first_test: BTreeSet<usize> = folds.first().map(|f| f.test.iter().copied().collect()).unwrap_or_default();
    let lines = set
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let f = &sc.framings[it.framing];
            let t = &sc.tasks[it.task];
            PromptLine {
                index: i,
                framing: f.id.clone(),
                condition: it.condition.as_str().into(),
                task: t.id.clone(),
                family: t.family.clone(),
                group: f.group.clone(),
                split: if first_train.contains(&i) { "train" } else if first_test.contains(&i) { "test" } else { "none" }.into(),
                test_fold: test_fold[i],
                held_out_framing: f.held_out,
                system: f.text.clone(),
                user: f.user_text(t),
                task_text: t.text.clone(),
                aligned: t.aligned.clone(),
                misaligned: t.misaligned.clone(),
            }
        })
        .collect::<Vec<_>>();
    let mut texts = BTreeSet::new();
    for t in &sc.tasks {
        texts.extend([t.aligned.clone(), t.misaligned.clone(), t.text.clone()]);
    }
    let header = PromptsHeader {
        format: PROMPTS_FORMAT.into(),
        format_version: FORMAT_VERSION,
        spec_hash: spec.hash(),
        spec_model: spec.model.id.clone(),
        readout: spec.readout,
        n_prompts: lines.len(),
        max_prompt_tokens: spec.limits.max_prompt_tokens,
        texts: texts.into_iter().collect(),
    };
    Ok((header, lines))
}

/// `prompts.jsonl`: the header line, then one JSON object per prompt.
pub fn prompts_jsonl(spec: &ExperimentSpec) -> Result<String> {
    let (header, lines) = prompt_lines(spec)?;
    let mut out = serde_json::to_string(&header)?;
    out.push('\n');
    for l in &lines {
        out.push_str(&serde_json::to_string(l)?);
        out.push('\n');
    }
    Ok(out)
}

/// The model the activations came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedModel {
    /// A hub id or a local path.
    pub id: String,
    /// The hub revision (commit), when known.
    #[serde(default)]
    pub revision: Option<String>,
    /// sha256 of the model file, when loaded from one file (a GGUF).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The dtype the forward passes ran in (`float32`, `bfloat16`, …).
    pub dtype: String,
    /// The library's name for the architecture (`llama`, `gemma3_text`, …).
    pub architecture: String,
    pub n_layers: usize,
    pub d_model: usize,
}

/// Which library collected the activations, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collector {
    /// `transformers` or `nnsight`.
    pub backend: String,
    /// Whether the passes ran remotely (nnsight's `remote=True` on NDIF).
    #[serde(default)]
    pub remote: bool,
    /// Package versions (python, torch, transformers, nnsight, numpy, hawthorne-collect).
    #[serde(default)]
    pub versions: BTreeMap<String, String>,
}

/// One collected prompt, in the spec's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectedPrompt {
    pub framing: String,
    pub task: String,
    pub condition: String,
    /// The prompt's token ids after the collector's chat template.
    pub tokens: Vec<u32>,
}

/// `manifest.json` of a collected-activations directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub spec_hash: String,
    pub model: CollectedModel,
    pub collector: Collector,
    /// `model` (the model's own chat template) or `plain` (the model has none).
    pub chat_template: String,
    pub readout: Readout,
    /// TransformerLens names of the recorded hooks, each in `activations/{hook}.npy`.
    pub hooks: Vec<String>,
    pub prompts: Vec<CollectedPrompt>,
    /// Token ids (no template, no BOS) of every text in the prompts header's `texts`.
    pub texts: BTreeMap<String, Vec<u32>>,
}

/// Path of a hook's array inside the directory.
pub fn hook_file(hook: &str) -> String {
    format!("activations/{hook}.npy")
}

/// Path of the answer logits inside the directory.
pub const ANSWER_LOGITS: &str = "answer_logits.npy";
/// Path of the manifest inside the directory.
pub const MANIFEST: &str = "manifest.json";

fn bad(msg: impl Into<String>) -> ProbeError {
    ProbeError::Activations(msg.into())
}

/// Reads a little-endian f32 NPY array that should be `[rows, cols]`. The file's size is checked
/// against that shape first: the NPY reader allocates what its header claims before reading.
fn read_npy_2d(bytes: &[u8], name: &str, (rows, cols): (usize, usize)) -> Result<(usize, usize, Vec<f32>)> {
    use ndarray_npy::ReadNpyExt;
    // An NPY header is padded to a multiple of 64 bytes and is far below this.
    const MAX_HEADER: usize = 1 << 16;
    let data = rows.saturating_mul(cols).saturating_mul(4);
    if bytes.len() < data || bytes.len() > data.saturating_add(MAX_HEADER) {
        return Err(bad(format!(
            "{name} has {} bytes, but a float32 [{rows}, {cols}] array needs {data} bytes of data plus its header",
            bytes.len()
        )));
    }
    if let Some(shape) = claimed_shape(bytes).filter(|s| *s != [rows, cols]) {
        return Err(bad(format!("{name} holds an array of shape {shape:?}, expected [{rows}, {cols}]")));
    }
    let a = ndarray::Array2::<f32>::read_npy(bytes).map_err(|e| bad(format!("{name}: not a 2-D float32 NPY array ({e})")))?;
    let (r, c) = a.dim();
    let flat = if a.is_standard_layout() { a.into_raw_vec_and_offset().0 } else { a.iter().copied().collect() };
    Ok((r, c, flat))
}

/// The shape an NPY header claims, read before the NPY reader allocates for it. Written here
/// because `ndarray-npy` allocates the claimed size before checking it against the data (a
/// damaged file could make it ask for terabytes); `None` when the header cannot be read, which
/// the reader then reports.
fn claimed_shape(bytes: &[u8]) -> Option<Vec<usize>> {
    let major = *bytes.get(6)?;
    let (len, start): (usize, usize) = match major {
        1 => (usize::from(u16::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?])), 10),
        _ => (u32::from_le_bytes([*bytes.get(8)?, *bytes.get(9)?, *bytes.get(10)?, *bytes.get(11)?]) as usize, 12),
    };
    let header = std::str::from_utf8(bytes.get(start..start.checked_add(len)?)?).ok()?;
    let after = &header[header.find("'shape'")? + "'shape'".len()..];
    let open = after.find('(')?;
    let close = after[open..].find(')')? + open;
    after[open + 1..close].split(',').map(str::trim).filter(|t| !t.is_empty()).map(|t| t.parse().ok()).collect()
}

/// Collected readouts and answer logits, checked against a spec; serves them to an
/// [`crate::Experiment`] through [`LanguageModel::recorded`].
#[derive(Debug, Clone)]
pub struct Recorded {
    pub manifest: Manifest,
    config: Config,
    /// Per recorded hook: `[n_prompts * d]`.
    readouts: BTreeMap<HookPoint, Vec<f32>>,
    /// Per prompt: (aligned, misaligned) logits.
    answer_logits: Vec<[f32; 2]>,
    /// (system, user) → token ids, for the contrast-set builder.
    chats: HashMap<(String, String), Vec<u32>>,
}

impl Recorded {
    /// Parses and checks a collected directory given as `path → bytes` (paths relative to the
    /// directory, `/`-separated). Refuses a directory that does not match `spec`: its hash,
    /// the readout, the prompt count and order, a missing hook or array, a shape, or a value
    /// that is not finite, each named.
    pub fn from_files(spec: &ExperimentSpec, files: &BTreeMap<String, Vec<u8>>) -> Result<Recorded> {
        let manifest_bytes = files.get(MANIFEST).ok_or_else(|| {
            bad(format!("no {MANIFEST} in the directory (it has {})", files.keys().take(5).cloned().collect::<Vec<_>>().join(", ")))
        })?;
        let manifest: Manifest = serde_json::from_slice(manifest_bytes).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
        if manifest.format != FORMAT {
            return Err(bad(format!("{MANIFEST} has format `{}`, expected `{FORMAT}`", manifest.format)));
        }
        if manifest.format_version > FORMAT_VERSION {
            return Err(bad(format!(
                "{MANIFEST} has format version {}, newer than the {FORMAT_VERSION} this build reads; update Hawthorne",
                manifest.format_version
            )));
        }
        let want = spec.hash();
        if manifest.spec_hash != want {
            return Err(bad(format!(
                "the activations were collected for spec {}…, but this spec hashes to {}…; run `hawthorne prompts` on this spec and collect again",
                short(&manifest.spec_hash),
                short(&want)
            )));
        }
        if manifest.readout != spec.readout {
            return Err(bad(format!("the activations hold the `{:?}` readout, the spec asks for `{:?}`", manifest.readout, spec.readout)));
        }
        let (_, lines) = prompt_lines(spec)?;
        if manifest.prompts.len() != lines.len() {
            return Err(bad(format!("{MANIFEST} lists {} prompts, the spec's contrast set has {}", manifest.prompts.len(), lines.len())));
        }
        for (i, (p, l)) in manifest.prompts.iter().zip(&lines).enumerate() {
            if (p.framing.as_str(), p.task.as_str(), p.condition.as_str()) != (l.framing.as_str(), l.task.as_str(), l.condition.as_str()) {
                return Err(bad(format!(
                    "prompt {i} is ({}, {}, {}) in {MANIFEST} but ({}, {}, {}) in the spec: the order differs",
                    p.framing, p.task, p.condition, l.framing, l.task, l.condition
                )));
            }
            if p.tokens.is_empty() {
                return Err(bad(format!("prompt {i} ({}, {}) has no tokens", p.framing, p.task)));
            }
        }
        let (n, d, n_layers) = (lines.len(), manifest.model.d_model, manifest.model.n_layers);
        if d == 0 || n_layers == 0 {
            return Err(bad(format!("{MANIFEST} gives d_model {d} and n_layers {n_layers}")));
        }
        // Every hook the experiment reads: the spec's probes (`hook_embed` among them when the
        // lexical control probes it) and each block's resid_post (steering basis, PCA).
        let mut needed: BTreeSet<HookPoint> = spec.hook_points(n_layers)?.into_iter().collect();
        needed.extend((0..n_layers).map(HookPoint::ResidPost));
        let listed: BTreeSet<&str> = manifest.hooks.iter().map(String::as_str).collect();
        let mut readouts = BTreeMap::new();
        for h in &needed {
            // resid_pre of block i is resid_post of block i − 1 (the embedding for block 0).
            let source = match *h {
                HookPoint::ResidPre(0) => HookPoint::Embed,
                HookPoint::ResidPre(i) => HookPoint::ResidPost(i - 1),
                other => other,
            };
            if !matches!(source, HookPoint::Embed | HookPoint::ResidPost(_)) {
                return Err(bad(format!(
                    "the spec reads `{h}`, but collected activations hold only hook_embed and blocks.*.hook_resid_post (and resid_pre from them)"
                )));
            }
            let name = source.to_string();
            if !listed.contains(name.as_str()) {
                return Err(bad(format!("hook `{name}` is not among the {} hooks in {MANIFEST}", manifest.hooks.len())));
            }
            let path = hook_file(&name);
            let bytes = files.get(&path).ok_or_else(|| bad(format!("{path} is missing")))?;
            let (r, c, flat) = read_npy_2d(bytes, &path, (n, d))?;
            if (r, c) != (n, d) {
                return Err(bad(format!("{path} has shape [{r}, {c}], expected [{n}, {d}] (prompts × d_model)")));
            }
            if let Some(k) = flat.iter().position(|v| !v.is_finite()) {
                let i = k / d;
                return Err(bad(format!(
                    "{path}: prompt {i} ({}, {}) has a non-finite value ({}) at component {}",
                    lines[i].framing,
                    lines[i].task,
                    flat[k],
                    k % d
                )));
            }
            readouts.insert(*h, flat);
        }
        let bytes = files.get(ANSWER_LOGITS).ok_or_else(|| bad(format!("{ANSWER_LOGITS} is missing")))?;
        let (r, c, flat) = read_npy_2d(bytes, ANSWER_LOGITS, (n, 2))?;
        if (r, c) != (n, 2) {
            return Err(bad(format!("{ANSWER_LOGITS} has shape [{r}, {c}], expected [{n}, 2] (prompts × aligned/misaligned)")));
        }
        if let Some(k) = flat.iter().position(|v| !v.is_finite()) {
            let i = k / 2;
            return Err(bad(format!("{ANSWER_LOGITS}: prompt {i} ({}, {}) has a non-finite logit", lines[i].framing, lines[i].task)));
        }
        let answer_logits = flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        let chats = lines.iter().zip(&manifest.prompts).map(|(l, p)| ((l.system.clone(), l.user.clone()), p.tokens.clone())).collect();
        let max_tokens = manifest.prompts.iter().map(|p| p.tokens.len()).max().unwrap_or(1);
        let config = Config {
            n_layers,
            d_model: d,
            n_heads: 1,
            n_kv_heads: 1,
            d_head: d,
            d_mlp: 4 * d,
            d_vocab: 2,
            n_ctx: max_tokens.max(spec.limits.max_prompt_tokens),
            rope_theta: 0.0,
            rms_eps: 0.0,
            family: Family::default(),
        };
        Ok(Recorded { manifest, config, readouts, answer_logits, chats })
    }

    /// Readouts at `hook`, `[n_prompts * d]`, if the experiment may read it.
    pub fn readout(&self, hook: &HookPoint) -> Option<&[f32]> {
        self.readouts.get(hook).map(Vec::as_slice)
    }

    /// `log p(misaligned) − log p(aligned)` of prompt `i`: the logit difference.
    pub fn behaviour_score(&self, i: usize) -> Option<f64> {
        self.answer_logits.get(i).map(|[a, m]| f64::from(*m) - f64::from(*a))
    }

    /// One line for the report: where the activations came from.
    pub fn provenance_note(&self) -> String {
        let m = &self.manifest;
        let versions: Vec<String> = m.collector.versions.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "activations collected by {}{} on {} ({}{}, {}, chat template: {}); {}",
            m.collector.backend,
            if m.collector.remote { " (remote)" } else { "" },
            m.model.id,
            m.model.architecture,
            m.model.revision.as_deref().map(|r| format!(" @ {r}")).unwrap_or_default(),
            m.model.dtype,
            m.chat_template,
            versions.join(", ")
        )
    }
}

/// Re-roots `files` at the folder holding `manifest.json` (a zip made of the folder itself has
/// every path under the folder's name); other files are dropped.
pub fn rooted(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let root = files
        .keys()
        .filter_map(|k| k.strip_suffix(MANIFEST).filter(|r| r.is_empty() || r.ends_with('/')))
        .min_by_key(|r| r.len())
        .map(str::to_string);
    match root {
        Some(r) if !r.is_empty() => files.into_iter().filter_map(|(k, v)| k.strip_prefix(&r).map(|s| (s.to_string(), v))).collect(),
        _ => files,
    }
}

/// The files of a zip archive of a collected directory, re-rooted as [`rooted`] does.
pub fn files_from_zip(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let mut files = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| bad(format!("zip entry {i}: {e}")))?;
        if f.is_dir() {
            continue;
        }
        let name = f.name().map_err(|e| bad(format!("zip entry {i}: {e}")))?.replace('\\', "/");
        // The declared size is only a hint (a damaged archive may claim anything).
        let mut buf = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0).min(64 << 20));
        f.read_to_end(&mut buf).map_err(|e| bad(format!("zip entry `{name}`: {e}")))?;
        files.insert(name, buf);
    }
    Ok(rooted(files))
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn not_live(what: &str) -> ModelError {
    ModelError::Unsupported(format!("{what} needs a live model; these are collected activations"))
}

impl LanguageModel for Recorded {
    fn config(&self) -> &Config {
        &self.config
    }

    fn sha256(&self) -> &str {
        self.manifest.model.sha256.as_deref().unwrap_or("")
    }

    fn chat_tokens(&self, system: &str, user: &str) -> Result<Vec<u32>, ModelError> {
        self.chats
            .get(&(system.to_string(), user.to_string()))
            .cloned()
            .ok_or_else(|| ModelError::Tokenizer(format!("the collector did not record the prompt ({system:?}, {user:?})")))
    }

    fn chat_format(&self) -> String {
        match self.manifest.chat_template.as_str() {
            "plain" => "plain".into(),
            _ => format!("{} chat template", self.manifest.collector.backend),
        }
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.manifest.texts.get(text).cloned().ok_or_else(|| ModelError::Tokenizer(format!("the collector did not tokenize {text:?}")))
    }

    fn token_text(&self, id: u32) -> String {
        format!("#{id}")
    }

    fn forward(&self, _seqs: &[Vec<u32>], _opts: &RunOptions) -> Result<ForwardOutput, ModelError> {
        Err(not_live("a forward pass"))
    }

    fn logit_lens(&self, _resid: &Tensor) -> Result<Tensor, ModelError> {
        Err(not_live("the logit lens"))
    }

    fn generate(&self, _prompt: &[u32], _opts: &GenerateOptions) -> Result<Generation, ModelError> {
        Err(not_live("generation"))
    }

    fn supports_patching(&self) -> bool {
        false
    }

    fn recorded(&self) -> Option<&Recorded> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::npy_f32;
    use crate::scenarios::{general_framings, general_tasks};
    use crate::spec::Scenario;
    use crate::Experiment;

    const D: usize = 4;
    const LAYERS: usize = 2;

    fn spec() -> ExperimentSpec {
        let mut s = ExperimentSpec::new("some-hub/model", Scenario { framings: general_framings(), tasks: general_tasks() }, 7);
        s.hooks = "hook_embed,blocks.*.hook_resid_post".into();
        s.baselines.random_directions = 5;
        s.baselines.permutations = 0;
        s.probes.bootstrap = 20;
        s
    }

    /// A collected directory for `spec`: block 1 carries the condition in component 0 (plus
    /// a per-prompt wobble), every other hook only the wobble; misaligned wins when unobserved.
    fn files(spec: &ExperimentSpec) -> BTreeMap<String, Vec<u8>> {
        let (header, lines) = prompt_lines(spec).unwrap();
        let n = lines.len();
        let mut hooks = vec!["hook_embed".to_string()];
        hooks.extend((0..LAYERS).map(|l| format!("blocks.{l}.hook_resid_post")));
        let mut out = BTreeMap::new();
        for (k, h) in hooks.iter().enumerate() {
            let mut a = Vec::with_capacity(n * D);
            for (i, l) in lines.iter().enumerate() {
                let watched = if l.condition == "unobserved" { 1.0 } else { 0.0 };
                for c in 0..D {
                    let wobble = ((i * 7 + c * 3) % 11) as f32 / 11.0;
                    a.push(if k == 2 && c == 0 { 3.0 * watched + 0.1 * wobble } else { wobble });
                }
            }
            out.insert(hook_file(h), npy_f32(&[n, D], &a));
        }
        let logits: Vec<f32> = lines.iter().flat_map(|l| if l.condition == "unobserved" { [0.0, 1.0] } else { [1.0, 0.0] }).collect();
        out.insert(ANSWER_LOGITS.into(), npy_f32(&[n, 2], &logits));
        let texts = header.texts.iter().enumerate().map(|(i, t)| (t.clone(), vec![100 + i as u32, 1])).collect();
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            spec_hash: header.spec_hash.clone(),
            model: CollectedModel { id: "some-hub/model".into(), revision: Some("abc".into()), sha256: None, dtype: "float32".into(), architecture: "llama".into(), n_layers: LAYERS, d_model: D },
            collector: Collector { backend: "transformers".into(), remote: false, versions: BTreeMap::new() },
            chat_template: "model".into(),
            readout: header.readout,
            hooks,
            prompts: lines.iter().map(|l| CollectedPrompt { framing: l.framing.clone(), task: l.task.clone(), condition: l.condition.clone(), tokens: vec![1, 2, 3 + l.index as u32] }).collect(),
            texts,
        };
        out.insert(MANIFEST.into(), serde_json::to_vec(&manifest).unwrap());
        out
    }

    fn edit_manifest(files: &mut BTreeMap<String, Vec<u8>>, f: impl FnOnce(&mut Manifest)) {
        let mut m: Manifest = serde_json::from_slice(&files[MANIFEST]).unwrap();
        f(&mut m);
        files.insert(MANIFEST.into(), serde_json::to_vec(&m).unwrap());
    }

    fn err(spec: &ExperimentSpec, files: &BTreeMap<String, Vec<u8>>) -> String {
        Recorded::from_files(spec, files).unwrap_err().to_string()
    }

    #[test]
    fn prompts_follow_the_contrast_order_and_every_prompt_is_tested_once() {
        let s = spec();
        let (header, lines) = prompt_lines(&s).unwrap();
        assert_eq!(header.n_prompts, lines.len());
        assert_eq!(lines.len(), crate::contrast::untokenized(&s).items.len());
        assert!(lines.iter().enumerate().all(|(i, l)| l.index == i));
        let set = crate::contrast::untokenized(&s);
        let tested: BTreeSet<usize> = make_folds(&s, &set).unwrap().iter().flat_map(|f| f.test.clone()).collect();
        assert!(!tested.is_empty());
        assert!(lines.iter().all(|l| l.test_fold.is_some() == tested.contains(&l.index)));
        assert!(lines.iter().filter(|l| l.split == "test").all(|l| l.test_fold == Some(0)));
        let text = prompts_jsonl(&s).unwrap();
        assert_eq!(text.lines().count(), lines.len() + 1);
        assert!(header.texts.contains(&"Yes".to_string()));
    }

    #[test]
    fn a_report_from_collected_activations_finds_the_planted_layer() {
        let s = spec();
        let rec = Recorded::from_files(&s, &files(&s)).unwrap();
        let report = Experiment::new(&s, &rec).unwrap().run_to_end(|_| {}).unwrap();
        let auroc = |hook: &str| report.probes.iter().find(|p| p.hook == hook).unwrap().mass_mean.auroc;
        assert!(auroc("blocks.1.hook_resid_post") > 0.99);
        assert!(auroc("blocks.0.hook_resid_post") < 0.9);
        assert_eq!(report.behaviour.all.compliance_gap, 1.0);
        assert!(report.logit_lens.is_empty() && report.patching.is_none() && report.steering.is_none());
        assert!(report.behaviour.continuations.is_empty());
        assert!(report.notes.iter().any(|n| n.contains("need a live model")), "{:?}", report.notes);
        assert!(report.notes.iter().any(|n| n.contains("collected by transformers on some-hub/model")));
        assert_eq!(report.provenance.architecture, "llama");
        assert!(report.cost.is_none());
    }

    #[test]
    fn a_directory_for_another_spec_is_refused_by_hash() {
        let s = spec();
        let f = files(&s);
        let mut other = s.clone();
        other.seed += 1;
        assert!(err(&other, &f).contains("collected for spec"), "{}", err(&other, &f));
    }

    #[test]
    fn count_order_hooks_shapes_and_values_are_named() {
        let s = spec();
        let mut f = files(&s);
        edit_manifest(&mut f, |m| {
            m.prompts.pop();
        });
        assert!(err(&s, &f).contains("prompts, the spec's contrast set has"));

        let mut f = files(&s);
        edit_manifest(&mut f, |m| m.prompts.swap(0, 1));
        assert!(err(&s, &f).contains("prompt 0 is"), "{}", err(&s, &f));

        let mut f = files(&s);
        f.remove(&hook_file("blocks.1.hook_resid_post"));
        assert!(err(&s, &f).contains("activations/blocks.1.hook_resid_post.npy is missing"));

        let mut f = files(&s);
        edit_manifest(&mut f, |m| m.hooks.retain(|h| h != "hook_embed"));
        assert!(err(&s, &f).contains("hook `hook_embed` is not among"));

        let n = prompt_lines(&s).unwrap().1.len();
        let mut f = files(&s);
        f.insert(hook_file("blocks.0.hook_resid_post"), npy_f32(&[n, D + 1], &vec![0.0; n * (D + 1)]));
        let e = err(&s, &f);
        assert!(e.contains(&format!("holds an array of shape [{n}, {}], expected [{n}, {D}]", D + 1)), "{e}");
        // Far too short for the shape.
        let mut f = files(&s);
        f.insert(hook_file("blocks.0.hook_resid_post"), npy_f32(&[2, D], &[0.0; 2 * D]));
        let e = err(&s, &f);
        assert!(e.contains(&format!("a float32 [{n}, {D}] array needs")), "{e}");

        let mut f = files(&s);
        let mut a = vec![0.5f32; n * D];
        a[3 * D + 2] = f32::NAN;
        f.insert(hook_file("blocks.0.hook_resid_post"), npy_f32(&[n, D], &a));
        let e = err(&s, &f);
        assert!(e.contains("prompt 3 (") && e.contains("non-finite"), "{e}");

        let mut f = files(&s);
        f.insert(ANSWER_LOGITS.into(), b"not an npy".to_vec());
        assert!(err(&s, &f).contains("answer_logits.npy has 10 bytes"));
        // The right size but not an NPY file, and a header that claims a huge array.
        let mut f = files(&s);
        f.insert(ANSWER_LOGITS.into(), vec![7u8; n * 2 * 4 + 128]);
        assert!(err(&s, &f).contains("not a 2-D float32 NPY array"), "{}", err(&s, &f));
        let mut f = files(&s);
        let honest = npy_f32(&[n, 2], &vec![0.0; n * 2]);
        assert_eq!(claimed_shape(&honest), Some(vec![n, 2]));
        // Same length as the honest header's shape text, so only the claim changes.
        let (from, to) = (format!("({n}, 2)"), format!("({}, 2)", "9".repeat(format!("{n}").len())));
        let at = honest.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
        let mut lying = honest.clone();
        lying[at..at + to.len()].copy_from_slice(to.as_bytes());
        f.insert(ANSWER_LOGITS.into(), lying);
        let e = err(&s, &f);
        assert!(e.contains("holds an array of shape"), "{e}");

        let mut s2 = s.clone();
        s2.hooks = "blocks.*.hook_mlp_out".into();
        let mut f = files(&s2);
        edit_manifest(&mut f, |m| m.spec_hash = s2.hash());
        assert!(err(&s2, &f).contains("hold only hook_embed and blocks.*.hook_resid_post"));
    }

    #[test]
    fn zips_of_the_folder_are_rerooted() {
        let s = spec();
        let f = files(&s);
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            for (k, v) in &f {
                z.start_file(format!("acts/{k}"), opts).unwrap();
                std::io::Write::write_all(&mut z, v).unwrap();
            }
            z.finish().unwrap();
        }
        let back = files_from_zip(buf.get_ref()).unwrap();
        assert_eq!(back, f);
        assert!(Recorded::from_files(&s, &back).is_ok());
        assert!(files_from_zip(b"nope").unwrap_err().to_string().contains("not a readable zip"));
    }
}
