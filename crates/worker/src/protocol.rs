//! Messages between the page and the worker. Both directions are plain serde data.

use hawthorne_model::{ComputeMode, Config, Generation, Sampling};
use hawthorne_probe::{CostEstimate, ExperimentSpec, Report, Stage};
use serde::{Deserialize, Serialize};

/// A chat turn to run: the framing is the system prompt, the request the user turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Caller-chosen id echoed in every response about this chat.
    pub id: u64,
    /// System text (the framing). Empty means the model's default system line.
    pub system: String,
    /// The user's request.
    pub user: String,
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Steer along the last run's observed→unobserved direction while generating.
    #[serde(default)]
    pub steer: Option<SteerSetting>,
}

/// Adds α × (mean residual norm) × the unit mass-mean direction at `blocks.{layer}.hook_resid_post`
/// on every position. Needs a finished run on the loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SteerSetting {
    pub layer: usize,
    pub alpha: f64,
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Fetch the GGUF at `url` (inside the worker) and load it.
    Load { url: String },
    /// Read only the header of the GGUF at `url` (a user's file as a `blob:` URL, or a link)
    /// and say what it holds and whether it can load: [`Response::Inspected`].
    Inspect { url: String },
    /// Run a chat turn; replies stream as [`Response::ChatToken`].
    Chat(ChatRequest),
    /// Run an experiment spec on the loaded model; progress streams as
    /// [`Response::RunProgress`]. With a budget, a spec estimated above it (seconds on a slow
    /// laptop) is not run: the worker answers [`Response::RunNeedsConsent`] instead.
    Run {
        id: u64,
        spec: Box<ExperimentSpec>,
        #[serde(default)]
        budget_s: Option<f64>,
    },
    /// Build `spec`'s report from activations collected by another engine (the Python
    /// collector, `python/hawthorne_collect`) instead of running the loaded model: `files`
    /// are (path inside the collected directory, URL to fetch) pairs, or a single zip of the
    /// directory. Progress and the report come as for [`Request::Run`].
    RunCollected { id: u64, spec: Box<ExperimentSpec>, files: Vec<(String, String)> },
    /// Score every token of a (framing, request) prompt with the last run's probe direction at
    /// `blocks.{layer}.hook_resid_post`.
    TokenScores { id: u64, system: String, user: String, layer: usize },
    /// Send one of the last finished run's arrays as NPY bytes ([`Response::Array`]).
    Export { id: u64, array: ArrayKind },
    /// Stop the chat or run with this id after the current step.
    Cancel { id: u64 },
}

/// The arrays a finished run can export as NPY (little-endian f32), in the report's orders:
/// hooks as in `report.probes`, prompts as in `report.prompts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrayKind {
    /// Readout activations, `[n_hooks, n_prompts, d_model]`.
    Activations,
    /// Unit mass-mean directions (observed → unobserved), `[n_hooks, d_model]`.
    MassMean,
    /// Unit logistic-probe directions, `[n_hooks, d_model]`.
    Logistic,
}

impl ArrayKind {
    /// File name for the download.
    pub fn file_name(self) -> &'static str {
        match self {
            ArrayKind::Activations => "hawthorne-activations.npy",
            ArrayKind::MassMean => "hawthorne-directions-mass-mean.npy",
            ArrayKind::Logistic => "hawthorne-directions-logistic.npy",
        }
    }
}

/// Which part of loading a progress message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// Bytes arriving over the network; `total` is known when the server sends a length.
    Download,
    /// Tensors being dequantised.
    Tensors,
    /// Building the tokenizer and weights.
    Finalize,
}

/// What the page shows about a loaded model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub url: String,
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
    pub config: Config,
    pub n_params: u64,
    /// How the weights are kept: packed in their GGUF types, or f32.
    pub compute: ComputeMode,
    /// Bytes the weights take in memory.
    pub weight_bytes: u64,
    /// The matmul kernels' instruction set (`simd128`, `avx2+fma`, `scalar`).
    pub kernel: String,
    /// Threads the matmuls use.
    pub threads: u32,
    pub load_ms: f64,
    /// Size of the worker's wasm linear memory after loading, when running in a browser.
    pub wasm_memory_bytes: Option<u64>,
    /// How prompts are formatted (`chatml`, `gemma`, `llama3`, or `plain` for a base model).
    #[serde(default)]
    pub chat_format: String,
}

/// Residual norm of the last prompt token, per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerNorms {
    /// Hook names, `hook_embed` then `blocks.{i}.hook_resid_post`.
    pub hooks: Vec<String>,
    pub norms: Vec<f32>,
    /// Number of prompt tokens (the norm is read at position `n_tokens - 1`).
    pub n_tokens: usize,
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// The worker is up and waiting for requests.
    Ready,
    LoadProgress { phase: LoadPhase, done: u64, total: Option<u64> },
    Loaded(ModelInfo),
    LoadFailed { url: String, message: String },
    /// What a file holds, read from its header; `refusal` says why it cannot load here.
    Inspected { url: String, check: Box<hawthorne_model::gguf::ModelCheck>, memory_estimate: u64, refusal: Option<String> },
    InspectFailed { url: String, message: String },
    /// Norms of the prompt's last token, sent before generation starts.
    ChatNorms { id: u64, norms: LayerNorms },
    /// The reply so far.
    ChatToken { id: u64, text: String },
    ChatDone {
        id: u64,
        generation: Generation,
        /// Wall time of the whole request (norms, prefill and decoding).
        ms: f64,
        /// Decoding speed after the first token.
        tokens_per_s: f64,
        prompt_tokens: usize,
        /// Time of the prompt's forward pass (which also yields the first token).
        prefill_ms: f64,
    },
    ChatFailed { id: u64, message: String },
    /// What the run will cost, sent before its first step.
    RunEstimate { id: u64, cost: CostEstimate },
    /// The run was not started: its estimate is above the budget it was sent with.
    RunNeedsConsent { id: u64, cost: CostEstimate, budget_s: f64 },
    RunProgress { id: u64, stage: Stage, done: u64, total: u64 },
    /// The report crosses the boundary as one JSON string: decoding it field by field through
    /// `serde-wasm-bindgen` took ~40 ms of the page's main thread for the default spec.
    RunDone {
        id: u64,
        #[serde(with = "as_json")]
        report: Box<Report>,
    },
    RunFailed { id: u64, message: String },
    /// Per-token projection on the unit observed→unobserved direction, in units of the layer's
    /// mean residual norm (positive = reads as unobserved).
    TokenScores { id: u64, layer: usize, tokens: Vec<String>, scores: Vec<f32> },
    TokenScoresFailed { id: u64, message: String },
    /// NPY bytes of the requested array (a `Uint8Array` on the JS side).
    Array {
        id: u64,
        array: ArrayKind,
        #[serde(with = "serde_bytes")]
        npy: Vec<u8>,
    },
    ExportFailed { id: u64, message: String },
}

/// Serde adapter: a value as a JSON string (see `Response::RunDone`).
mod as_json {
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&serde_json::to_string(value).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}
