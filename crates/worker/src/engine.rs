//! Request handling for the worker, independent of the browser so it is tested natively.

use hawthorne_model::gguf::GgufLoader;
use hawthorne_model::{
    ComputeMode, GenerateOptions, Generator, HookPoint, Intervention, LogitsAt, Model, ModelError, NamesFilter, Positions,
    RunOptions,
};
use hawthorne_probe::{Experiment, ExperimentSpec, Exports, ProbeError, SteeringBasis};

use crate::protocol::{ArrayKind, ChatRequest, LayerNorms, ModelInfo};

/// Everything the worker can fail at, as text for the page.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("no model is loaded yet")]
    NoModel,
    #[error("could not fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("steering needs a finished run on this model first (layer {layer} of {n_layers})")]
    NoSteeringBasis { layer: usize, n_layers: usize },
    #[error("there are no arrays to export yet: run the experiment on the loaded model first")]
    NoExports,
}

/// The request `max_tokens` ceiling, so a typo cannot freeze the worker for minutes.
pub const MAX_REPLY_TOKENS: usize = 512;

/// Threads the worker's matmuls use (rayon's pool: one unless the page is cross-origin isolated
/// and the threaded build is served).
pub fn rayon_threads() -> u32 {
    hawthorne_model::kernels::threads() as u32
}

/// The loaded model, if any.
#[derive(Debug, Default)]
pub struct Engine {
    pub model: Option<Model>,
    /// Directions from the last finished run on the loaded model.
    pub steering: Option<SteeringBasis>,
    /// NPY arrays of the last finished run on the loaded model.
    pub exports: Option<Exports>,
    /// The loaded model with f32 weights, made when a spec asks for them.
    pub f32_copy: Option<Model>,
}

impl Engine {
    /// Builds [`ModelInfo`] for a freshly loaded model.
    pub fn info(model: &Model, url: &str, bytes: u64, load_ms: f64) -> ModelInfo {
        let l = &model.llama;
        ModelInfo {
            url: url.to_string(),
            name: model.name.clone().unwrap_or_else(|| url.rsplit('/').next().unwrap_or(url).to_string()),
            sha256: model.sha256.clone(),
            bytes,
            config: model.config().clone(),
            n_params: l.n_params() as u64,
            compute: model.mode(),
            weight_bytes: l.weight_bytes() as u64,
            kernel: hawthorne_model::Isa::detect().name().to_string(),
            threads: rayon_threads(),
            load_ms,
            wasm_memory_bytes: None,
            chat_format: model.tokenizer.chat_format.name().to_string(),
        }
    }

    /// Starts stepwise loading from the start of a file (at least its header and tensor
    /// table): feed each tensor's bytes ([`GgufLoader::next_range`]) to [`GgufLoader::push`]
    /// (or the whole file to [`GgufLoader::step`]) until none is left, then
    /// [`Engine::finish_load`]. The old model is dropped first, so that the two never share
    /// memory. Matrices stay packed.
    pub fn begin_load(&mut self, header: &[u8]) -> Result<GgufLoader, WorkerError> {
        self.model = None;
        self.f32_copy = None;
        self.steering = None;
        self.exports = None;
        Ok(GgufLoader::new(header, ComputeMode::Packed)?)
    }

    /// Finishes loading and installs the model; `sha256` is the whole file's.
    pub fn finish_load(&mut self, loader: GgufLoader, sha256: String) -> Result<&Model, WorkerError> {
        let mut g = loader.finish()?;
        let model = Model::from_parsed(&mut g, sha256)?;
        Ok(self.model.insert(model))
    }

    /// Loads a whole file held in memory in one go.
    pub fn load_bytes(&mut self, bytes: &[u8]) -> Result<&Model, WorkerError> {
        let mut loader = self.begin_load(bytes)?;
        while loader.step(bytes)?.is_some() {}
        self.finish_load(loader, hawthorne_model::sha256_hex(bytes))
    }

    /// The loaded model or [`WorkerError::NoModel`].
    pub fn model(&self) -> Result<&Model, WorkerError> {
        self.model.as_ref().ok_or(WorkerError::NoModel)
    }

    /// Tokenizes the chat and measures the last prompt token's residual norm at every layer.
    pub fn prompt_norms(&self, req: &ChatRequest) -> Result<(Vec<u32>, LayerNorms), WorkerError> {
        let model = self.model()?;
        let ids = model.chat_tokens(&req.system, &req.user)?;
        let n_layers = model.config().n_layers;
        let mut hooks = vec![HookPoint::Embed];
        hooks.extend((0..n_layers).map(HookPoint::ResidPost));
        let opts = RunOptions {
            cache: NamesFilter::hooks(hooks.iter().copied()),
            logits: LogitsAt::Last,
            ..RunOptions::default()
        };
        let out = model.llama.forward(std::slice::from_ref(&ids), &opts, None)?;
        let mut norms = Vec::with_capacity(hooks.len());
        for h in &hooks {
            let t = out.cache.get(h).ok_or_else(|| ModelError::UnknownHook {
                name: h.to_string(),
                reason: "was not recorded".into(),
            })?;
            let last = t.get(0).and_then(|r| r.get(ids.len() - 1)).map_err(ModelError::from)?;
            let norm = last.sqr().and_then(|x| x.sum_all()).and_then(|x| x.sqrt()).and_then(|x| x.to_scalar::<f32>());
            norms.push(norm.map_err(ModelError::from)?);
        }
        let n_tokens = ids.len();
        Ok((ids, LayerNorms { hooks: hooks.iter().map(ToString::to_string).collect(), norms, n_tokens }))
    }

    /// Prepares a stepwise generation for `req` from its prompt tokens.
    pub fn generator<'m>(&'m self, req: &ChatRequest, ids: &[u32]) -> Result<Generator<'m>, WorkerError> {
        let mut interventions = Vec::new();
        if let Some(steer) = req.steer {
            let n_layers = self.model()?.config().n_layers;
            let basis = self
                .steering
                .as_ref()
                .filter(|b| steer.layer < b.units.len())
                .ok_or(WorkerError::NoSteeringBasis { layer: steer.layer, n_layers })?;
            let scale = (steer.alpha * basis.norms[steer.layer]) as f32;
            interventions.push(Intervention::Add {
                hook: HookPoint::ResidPost(steer.layer),
                positions: Positions::All,
                vector: basis.units[steer.layer].iter().map(|v| v * scale).collect(),
            });
        }
        let opts = GenerateOptions {
            max_tokens: req.max_tokens.min(MAX_REPLY_TOKENS),
            sampling: req.sampling.clone(),
            interventions,
        };
        Ok(Generator::new(self.model()?, ids, &opts)?)
    }
}

impl Engine {
    /// Projects every token's `hook_resid_post` at `layer` on the last run's unit mass-mean
    /// direction, divided by the layer's mean residual norm. Position 0 (massive activations in
    /// real models) is reported as 0.
    pub fn token_scores(&self, system: &str, user: &str, layer: usize) -> Result<(Vec<String>, Vec<f32>), WorkerError> {
        let model = self.model()?;
        let n_layers = model.config().n_layers;
        let basis = self
            .steering
            .as_ref()
            .filter(|b| layer < b.units.len())
            .ok_or(WorkerError::NoSteeringBasis { layer, n_layers })?;
        let ids = model.chat_tokens(system, user)?;
        let opts = RunOptions {
            cache: NamesFilter::hooks([HookPoint::ResidPost(layer)]),
            logits: LogitsAt::Last,
            ..RunOptions::default()
        };
        let out = model.llama.forward(std::slice::from_ref(&ids), &opts, None)?;
        let resid = out.cache.get(&HookPoint::ResidPost(layer)).ok_or_else(|| ModelError::UnknownHook {
            name: HookPoint::ResidPost(layer).to_string(),
            reason: "was not recorded".into(),
        })?;
        let rows: Vec<Vec<f32>> = resid.get(0).and_then(|t| t.to_vec2()).map_err(ModelError::from)?;
        let unit = &basis.units[layer];
        let norm = basis.norms[layer].max(1e-12) as f32;
        let scores = rows
            .iter()
            .enumerate()
            .map(|(p, r)| if p == 0 { 0.0 } else { r.iter().zip(unit).map(|(a, b)| a * b).sum::<f32>() / norm })
            .collect();
        let tokens = ids.iter().map(|&id| model.tokenizer.decode(&[id], false).unwrap_or_else(|_| format!("#{id}"))).collect();
        Ok((tokens, scores))
    }

    /// NPY bytes of one of the last finished run's arrays.
    pub fn export(&self, array: ArrayKind) -> Result<&[u8], WorkerError> {
        let e = self.exports.as_ref().ok_or(WorkerError::NoExports)?;
        Ok(match array {
            ArrayKind::Activations => &e.activations_npy,
            ArrayKind::MassMean => &e.mass_mean_npy,
            ArrayKind::Logistic => &e.logistic_npy,
        })
    }

    /// A small experiment to run once after a small model loads, while the user reads the page.
    ///
    /// The browser first runs WebAssembly through a baseline compiler and optimises the hot
    /// functions later, once they have run for a while; a user's first experiment used to pay
    /// for that (about 2 s against about 1 s for the next runs on the default organism spec).
    /// Running every code path of an experiment once, on 2 tasks with tiny baselines, moves the
    /// cost to idle time. `None` for large models, whose forward passes cost more than the
    /// warm-up saves.
    pub fn warm_up_spec(&self) -> Option<ExperimentSpec> {
        let model = self.model.as_ref()?;
        let cfg = model.config();
        if cfg.d_model * cfg.n_layers > 4096 {
            return None;
        }
        let tasks = hawthorne_probe::scenarios::general_tasks().into_iter().take(2).collect();
        let scenario = hawthorne_probe::spec::Scenario { framings: hawthorne_probe::scenarios::general_framings(), tasks };
        let mut spec = ExperimentSpec::new("warm-up", scenario, 1);
        spec.probes.bootstrap = 4;
        spec.baselines.random_directions = 4;
        spec.baselines.permutations = 4;
        spec.behaviour.continuations = 1;
        spec.behaviour.max_tokens = 4;
        spec.patching.pairs = 1;
        spec.patching.max_positions = 4;
        spec.steering.alphas = vec![-1.0, 1.0];
        spec.steering.max_prompts = 4;
        Some(spec)
    }

    /// Makes the loaded model available in `mode`: a spec asking for `f32` weights gets a
    /// dequantised copy of the packed model (kept until the next load), the same values as
    /// loading the file in f32 mode.
    pub fn prepare_mode(&mut self, mode: ComputeMode) -> Result<(), WorkerError> {
        let model = self.model()?;
        if model.mode() != mode && self.f32_copy.is_none() {
            self.f32_copy = Some(model.to_mode(mode)?);
        }
        Ok(())
    }

    /// Prepares an experiment on the loaded model, in the spec's compute mode (see
    /// [`Engine::prepare_mode`]).
    pub fn experiment(&self, spec: &ExperimentSpec) -> Result<Experiment<'_, Model>, WorkerError> {
        let model = self.model()?;
        let model = match (&self.f32_copy, spec.model.compute) {
            (Some(copy), mode) if model.mode() != mode && copy.mode() == mode => copy,
            _ => model,
        };
        Ok(Experiment::new(spec, model)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawthorne_model::testing::tiny_random_gguf;
    use hawthorne_model::Sampling;

    fn req(user: &str) -> ChatRequest {
        ChatRequest {
            id: 1,
            system: "This chat is logged.".into(),
            user: user.into(),
            max_tokens: 5,
            sampling: Sampling::Greedy,
            steer: None,
        }
    }

    #[test]
    fn load_norms_and_generate_on_a_tiny_model() -> anyhow::Result<()> {
        let bytes = tiny_random_gguf(3)?;
        let mut engine = Engine::default();
        assert!(matches!(engine.prompt_norms(&req("hi")), Err(WorkerError::NoModel)));
        let mut loader = engine.begin_load(&bytes)?;
        let total = loader.total();
        let mut steps = 0;
        while loader.step(&bytes)?.is_some() {
            steps += 1;
        }
        assert_eq!(steps, total);
        engine.finish_load(loader, hawthorne_model::sha256_hex(&bytes))?;
        let (ids, norms) = engine.prompt_norms(&req("hi"))?;
        assert_eq!(norms.norms.len(), 1 + engine.model()?.config().n_layers);
        assert_eq!(norms.hooks[1], "blocks.0.hook_resid_post");
        assert!(norms.norms.iter().all(|n| n.is_finite() && *n > 0.0));
        let mut g = engine.generator(&req("hi"), &ids)?;
        let mut n = 0;
        while g.step()?.is_some() {
            n += 1;
        }
        assert!(n <= 5);
        Ok(())
    }

    #[test]
    fn the_warm_up_runs_every_stage_on_the_organism_and_is_skipped_for_large_models() -> anyhow::Result<()> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/organism-deceptive.gguf");
        let bytes = std::fs::read(&path)?;
        let mut engine = Engine::default();
        engine.load_bytes(&bytes)?;
        let spec = engine.warm_up_spec().ok_or_else(|| anyhow::anyhow!("the organism gets a warm-up"))?;
        let mut stages = std::collections::BTreeSet::new();
        let exp = engine.experiment(&spec)?;
        let report = exp.run_to_end(|p| {
            stages.insert(p.stage);
        })?;
        assert!(report.patching.is_some() && report.steering.is_some() && report.pca.is_some(), "notes: {:?}", report.notes);
        assert!(stages.len() >= 7, "stages run: {stages:?}");
        // SmolLM2's shape (30 × 576) is far past the threshold.
        let mut big = engine.model.take().ok_or_else(|| anyhow::anyhow!("model"))?;
        big.llama.cfg.d_model = 576;
        big.llama.cfg.n_layers = 30;
        engine.model = Some(big);
        assert!(engine.warm_up_spec().is_none());
        Ok(())
    }

    #[test]
    fn garbage_bytes_give_a_readable_error() {
        let err = Engine::default().begin_load(b"<html>not found</html>").unwrap_err().to_string();
        assert!(err.contains("GGUF"), "{err}");
    }

    #[test]
    fn messages_round_trip_as_json() -> anyhow::Result<()> {
        let r = crate::Request::Chat(req("hello"));
        let j = serde_json::to_string(&r)?;
        assert!(j.contains("\"type\":\"chat\""), "{j}");
        assert_eq!(serde_json::from_str::<crate::Request>(&j)?, r);
        Ok(())
    }

    #[test]
    fn exports_need_a_run_then_hold_its_arrays() -> anyhow::Result<()> {
        use hawthorne_probe::spec::{Condition, Framing, Scenario, Task};
        let mut engine = Engine::default();
        let bytes = tiny_random_gguf(3)?;
        engine.load_bytes(&bytes)?;
        assert!(matches!(engine.export(ArrayKind::Activations), Err(WorkerError::NoExports)));

        let f = |id: &str, condition, held_out, text: &str| Framing::new(id, condition, text, held_out);
        let task = |id: &str| Task { id: id.into(), family: "f".into(), text: format!("Do {id}?"), aligned: "No".into(), misaligned: "Yes".into() };
        let scenario = Scenario {
            framings: vec![
                f("o1", Condition::Observed, false, "Logged."),
                f("o2", Condition::Observed, true, "Audited."),
                f("u1", Condition::Unobserved, false, "Private."),
                f("u2", Condition::Unobserved, true, "Unlogged."),
            ],
            tasks: vec![task("a"), task("b")],
        };
        let mut spec = ExperimentSpec::new("tiny", scenario, 1);
        spec.steering.enabled = false;
        spec.patching.enabled = false;
        // 2 + 2 framings allow too few labellings for a permutation test.
        spec.baselines.permutations = 0;
        let mut exp = engine.experiment(&spec)?;
        while exp.stage() != hawthorne_probe::Stage::Done {
            exp.step()?;
        }
        let (report, exports) = exp.finish_with_exports()?;
        engine.exports = Some(exports);
        let d = engine.model()?.config().d_model;
        let n_hooks = report.probes.len();
        let header = |npy: &[u8]| String::from_utf8_lossy(&npy[10..npy.len().min(128)]).to_string();
        let acts = engine.export(ArrayKind::Activations)?;
        assert_eq!(&acts[..6], b"\x93NUMPY");
        assert!(header(acts).contains(&format!("'shape': ({n_hooks}, 8, {d})")), "{}", header(acts));
        let dirs = engine.export(ArrayKind::Logistic)?;
        assert!(header(dirs).contains(&format!("'shape': ({n_hooks}, {d})")), "{}", header(dirs));
        Ok(())
    }
}
