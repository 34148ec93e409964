//! ONNX Runtime through `ort`: a session over an exported graph with its interface checked, and
//! [`OrtModel`], an experiment backend that runs every forward pass in ONNX Runtime.
//!
//! `libonnxruntime` is loaded at run time (`ort`'s `load-dynamic`), from `ORT_DYLIB_PATH` or
//! the copy `cargo xtask setup-ort` puts in `target/onnxruntime/`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use candle_core::{Device, Tensor};
use hawthorne_model::{
    Config, ForwardOutput, GenerateOptions, Generation, HookPoint, Intervention, LogitsAt, Model, ModelError, Positions,
    RunOptions, Sampling, StopReason,
};
use hawthorne_probe::LanguageModel;
use ort::session::Session;
use ort::value::{Tensor as OrtTensor, TensorElementType, ValueType};

use crate::error::{OnnxError, Result};
use crate::export::{export, ExportOptions};

/// The ONNX Runtime release the setup step fetches and the code is tested against.
pub const ORT_VERSION: &str = "1.32.0";

/// Where `cargo xtask setup-ort` puts the library, relative to the workspace root.
pub const ORT_LIB_RELATIVE: &str = "target/onnxruntime/libonnxruntime.so.1.32.0";

/// The library to load: `ORT_DYLIB_PATH`, else the setup step's copy in this workspace.
pub fn library_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(ORT_LIB_RELATIVE),
    }
}

/// The process's one ONNX Runtime environment (ONNX Runtime allows only one).
fn environment() -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();
    let path = library_path();
    let env = ENV.get_or_init(|| {
        if !path.exists() {
            return Err("no such file".to_string());
        }
        let builder = ort::init_from(&path).map_err(|e| e.to_string())?;
        builder.with_name("hawthorne").build().map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|reason| OnnxError::MissingRuntime { path: path.display().to_string(), reason: reason.clone() })
}

/// What one run of the exported graph returns, as flat row-major arrays.
#[derive(Debug, Clone)]
pub struct OrtOutputs {
    /// `[B, T, V]`.
    pub logits: Vec<f32>,
    /// `[L+1, B, T, D]`: `hook_embed` then every `blocks.{i}.hook_resid_post`.
    pub resid: Vec<f32>,
    /// `[B, T]` when the graph has a monitor head.
    pub probe_score: Option<Vec<f32>>,
    pub batch: usize,
    pub tokens: usize,
}

/// A session over a Hawthorne ONNX graph, with its inputs and outputs checked.
#[derive(Debug)]
pub struct OrtSession {
    session: Mutex<Session>,
    n_layers: usize,
    d_model: usize,
    d_vocab: usize,
    has_monitor: bool,
}

impl OrtSession {
    /// Loads ONNX bytes into ONNX Runtime (one intra-op thread, like the rest of Hawthorne's
    /// measurements) and checks that they have Hawthorne's interface.
    pub fn from_bytes(bytes: &[u8]) -> Result<OrtSession> {
        let env = environment()?;
        let session = Session::builder(env)?
            .with_intra_threads(1)
            .map_err(ort::Error::from)?
            .commit_from_memory(bytes)?;
        let dims = |outlets: &[ort::value::Outlet], name: &str, ty: TensorElementType| -> Result<Vec<i64>> {
            let outlet = outlets
                .iter()
                .find(|o| o.name() == name)
                .ok_or_else(|| OnnxError::Interface(format!("no `{name}` (found {})", names(outlets))))?;
            match outlet.dtype() {
                ValueType::Tensor { ty: t, shape, .. } if *t == ty => Ok(shape.to_vec()),
                other => Err(OnnxError::Interface(format!("`{name}` should be a {ty:?} tensor, found {other:?}"))),
            }
        };
        let ids = dims(session.inputs(), "input_ids", TensorElementType::Int64)?;
        let mask = dims(session.inputs(), "attention_mask", TensorElementType::Int64)?;
        let steer = dims(session.inputs(), "steer", TensorElementType::Float32)?;
        let logits = dims(session.outputs(), "logits", TensorElementType::Float32)?;
        let resid = dims(session.outputs(), "resid", TensorElementType::Float32)?;
        let has_monitor = session.outputs().iter().any(|o| o.name() == "probe_score");
        if ids.len() != 2 || mask.len() != 2 || steer.len() != 2 || logits.len() != 3 || resid.len() != 4 {
            return Err(OnnxError::Interface(format!(
                "expected input_ids[B,T], attention_mask[B,T], steer[L,D], logits[B,T,V], resid[L+1,B,T,D]; \
                 found ranks {}, {}, {}, {}, {}",
                ids.len(),
                mask.len(),
                steer.len(),
                logits.len(),
                resid.len()
            )));
        }
        let (n_layers, d_model, d_vocab) = (steer[0], steer[1], logits[2]);
        if n_layers < 1 || d_model < 1 || d_vocab < 1 || resid[0] != n_layers + 1 || resid[3] != d_model {
            return Err(OnnxError::Interface(format!(
                "steer is [{n_layers}, {d_model}] but resid is {resid:?} and logits {logits:?}"
            )));
        }
        Ok(OrtSession {
            session: Mutex::new(session),
            n_layers: n_layers as usize,
            d_model: d_model as usize,
            d_vocab: d_vocab as usize,
            has_monitor,
        })
    }

    /// Loads an ONNX file.
    pub fn from_file(path: &Path) -> Result<OrtSession> {
        let bytes = std::fs::read(path)
            .map_err(|e| OnnxError::Interface(format!("cannot read {}: {e}", path.display())))?;
        OrtSession::from_bytes(&bytes)
    }

    pub fn n_layers(&self) -> usize {
        self.n_layers
    }

    pub fn d_model(&self) -> usize {
        self.d_model
    }

    pub fn has_monitor(&self) -> bool {
        self.has_monitor
    }

    /// Runs right-padded token sequences with `steer` (`[L, D]` flattened; `None` = zeros).
    pub fn run(&self, seqs: &[Vec<u32>], steer: Option<&[f32]>) -> Result<OrtOutputs> {
        let (b, t) = (seqs.len(), seqs.iter().map(Vec::len).max().unwrap_or(0));
        if b == 0 || seqs.iter().any(Vec::is_empty) {
            return Err(OnnxError::Model(ModelError::EmptyInput("every sequence needs at least one token".into())));
        }
        if let Some(id) = seqs.iter().flatten().find(|&&id| id as usize >= self.d_vocab) {
            return Err(OnnxError::Model(ModelError::TokenOutOfRange { id: *id, vocab: self.d_vocab }));
        }
        let (l, d) = (self.n_layers, self.d_model);
        let steer = match steer {
            Some(s) if s.len() != l * d => {
                return Err(OnnxError::Interface(format!("steer has {} values, expected {l} × {d}", s.len())))
            }
            Some(s) => s.to_vec(),
            None => vec![0.0; l * d],
        };
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for s in seqs {
            ids.extend(s.iter().map(|&x| i64::from(x)).chain(std::iter::repeat_n(0, t - s.len())));
            mask.extend(std::iter::repeat_n(1i64, s.len()).chain(std::iter::repeat_n(0, t - s.len())));
        }
        let inputs = ort::inputs![
            "input_ids" => OrtTensor::from_array(([b, t], ids))?,
            "attention_mask" => OrtTensor::from_array(([b, t], mask))?,
            "steer" => OrtTensor::from_array(([l, d], steer))?,
        ];
        let mut session = self.session.lock().map_err(|_| OnnxError::Interface("a previous run panicked".into()))?;
        let out = session.run(inputs)?;
        let take = |name: &str, want: usize| -> Result<Vec<f32>> {
            let (_, data) = out[name].try_extract_tensor::<f32>()?;
            if data.len() != want {
                return Err(OnnxError::Interface(format!("`{name}` has {} values, expected {want}", data.len())));
            }
            Ok(data.to_vec())
        };
        let logits = take("logits", b * t * self.d_vocab)?;
        let resid = take("resid", (l + 1) * b * t * d)?;
        let probe_score = match self.has_monitor {
            true => Some(take("probe_score", b * t)?),
            false => None,
        };
        Ok(OrtOutputs { logits, resid, probe_score, batch: b, tokens: t })
    }
}

fn names(outlets: &[ort::value::Outlet]) -> String {
    outlets.iter().map(|o| format!("`{}`", o.name())).collect::<Vec<_>>().join(", ")
}

/// An experiment backend whose forward passes run in ONNX Runtime on the model's exported graph.
///
/// The candle [`Model`] is kept for what is not a forward pass: the tokenizer and chat
/// template, and the logit lens (the final norm and unembedding applied to residuals that ONNX
/// Runtime produced). Steering is expressed through the graph's `steer` input; patching is
/// not, so [`LanguageModel::supports_patching`] is false and experiments skip it with a note.
#[derive(Debug)]
pub struct OrtModel {
    pub model: Model,
    pub session: OrtSession,
}

impl OrtModel {
    /// Exports `model` (in memory) and loads the graph into ONNX Runtime.
    pub fn new(model: Model) -> Result<OrtModel> {
        let bytes = export(&model, &ExportOptions::default())?;
        let session = OrtSession::from_bytes(&bytes)?;
        Ok(OrtModel { model, session })
    }

    /// The `[L, D]` steer input equivalent to `interventions`, or an error naming what the
    /// graph cannot express.
    fn steer_input(&self, interventions: &[Intervention]) -> std::result::Result<Option<Vec<f32>>, ModelError> {
        let cfg = self.model.config();
        let mut steer: Option<Vec<f32>> = None;
        for iv in interventions {
            match iv {
                Intervention::Add { hook: HookPoint::ResidPost(i), positions: Positions::All, vector }
                    if *i < cfg.n_layers && vector.len() == cfg.d_model =>
                {
                    let s = steer.get_or_insert_with(|| vec![0.0; cfg.n_layers * cfg.d_model]);
                    for (dst, src) in s[i * cfg.d_model..(i + 1) * cfg.d_model].iter_mut().zip(vector) {
                        *dst += src;
                    }
                }
                other => {
                    return Err(ModelError::Unsupported(format!(
                        "the ONNX graph can only add a vector at every position of blocks.{{i}}.hook_resid_post; \
                         it cannot express {}",
                        describe(other)
                    )))
                }
            }
        }
        Ok(steer)
    }
}

fn describe(iv: &Intervention) -> String {
    match iv {
        Intervention::Add { hook, positions, vector } => {
            format!("adding a {}-vector at {hook} ({positions:?})", vector.len())
        }
        Intervention::Patch { hook, .. } => format!("patching {hook}"),
    }
}

fn ort_err(e: OnnxError) -> ModelError {
    match e {
        OnnxError::Model(m) => m,
        other => ModelError::Backend(other.to_string()),
    }
}

impl LanguageModel for OrtModel {
    fn config(&self) -> &Config {
        self.model.config()
    }

    fn sha256(&self) -> &str {
        &self.model.sha256
    }

    fn chat_format(&self) -> String {
        self.model.tokenizer.chat_format.name().to_string()
    }

    fn chat_tokens(&self, system: &str, user: &str) -> std::result::Result<Vec<u32>, ModelError> {
        self.model.chat_tokens(system, user)
    }

    fn encode(&self, text: &str) -> std::result::Result<Vec<u32>, ModelError> {
        self.model.tokenizer.encode_text(text)
    }

    fn token_text(&self, id: u32) -> String {
        LanguageModel::token_text(&self.model, id)
    }

    fn forward(&self, seqs: &[Vec<u32>], opts: &RunOptions) -> std::result::Result<ForwardOutput, ModelError> {
        let cfg = self.model.config().clone();
        let hooks = opts.cache.resolve(cfg.n_layers)?;
        if let Some(h) = hooks.iter().find(|h| !matches!(h, HookPoint::Embed | HookPoint::ResidPost(_))) {
            return Err(ModelError::Unsupported(format!(
                "the ONNX graph outputs hook_embed and blocks.{{i}}.hook_resid_post only, not {h}"
            )));
        }
        let steer = self.steer_input(&opts.interventions)?;
        let out = self.session.run(seqs, steer.as_deref()).map_err(ort_err)?;
        let (b, t, d, v) = (out.batch, out.tokens, cfg.d_model, cfg.d_vocab);
        let dev = Device::Cpu;
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let logits = match opts.logits {
            LogitsAt::All => Tensor::from_vec(out.logits, (b, t, v), &dev)?, // [B, T, V]
            LogitsAt::Last => {
                let rows: Vec<f32> = lengths
                    .iter()
                    .enumerate()
                    .flat_map(|(r, &len)| out.logits[(r * t + len - 1) * v..(r * t + len) * v].iter().copied())
                    .collect();
                Tensor::from_vec(rows, (b, v), &dev)? // [B, V]
            }
        };
        // The graph computes the whole vocabulary; keep the columns asked for.
        let logits = match &opts.logit_ids {
            None => logits,
            Some(ids) => {
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= v) {
                    return Err(ModelError::TokenOutOfRange { id, vocab: v });
                }
                logits.index_select(&Tensor::new(ids.as_slice(), &dev)?, logits.rank() - 1)?
            }
        };
        let mut cache = hawthorne_model::ActivationCache::default();
        let stride = b * t * d;
        for h in hooks {
            let idx = match h {
                HookPoint::Embed => 0,
                HookPoint::ResidPost(i) => i + 1,
                _ => continue,
            };
            let slab = out.resid[idx * stride..(idx + 1) * stride].to_vec();
            cache.insert(h, Tensor::from_vec(slab, (b, t, d), &dev)?); // [B, T, D]
        }
        Ok(ForwardOutput { logits, cache, lengths })
    }

    fn logit_lens(&self, resid: &Tensor) -> std::result::Result<Tensor, ModelError> {
        LanguageModel::logit_lens(&self.model, resid)
    }

    /// Generation without a KV cache: every step reruns the whole sequence in ONNX Runtime.
    /// Slow for long replies, exact for the short continuations experiments ask for.
    fn generate(&self, prompt: &[u32], opts: &GenerateOptions) -> std::result::Result<Generation, ModelError> {
        if !matches!(opts.sampling, Sampling::Greedy) {
            return Err(ModelError::Unsupported("the ONNX Runtime backend generates greedily only".into()));
        }
        let steer = self.steer_input(&opts.interventions)?;
        let mut seq = prompt.to_vec();
        let mut tokens = Vec::new();
        let mut stop = StopReason::MaxTokens;
        for _ in 0..opts.max_tokens {
            if seq.len() >= self.model.config().n_ctx {
                stop = StopReason::ContextFull;
                break;
            }
            let out = self.session.run(std::slice::from_ref(&seq), steer.as_deref()).map_err(ort_err)?;
            let v = self.model.config().d_vocab;
            let last = &out.logits[(seq.len() - 1) * v..seq.len() * v];
            let next = hawthorne_model::model::argmax(last);
            if self.model.tokenizer.is_stop(next) {
                stop = StopReason::EndOfTurn;
                break;
            }
            tokens.push(next);
            seq.push(next);
        }
        let text = self.model.tokenizer.decode(&tokens, true).unwrap_or_default();
        Ok(Generation { tokens, text, stop })
    }

    fn supports_patching(&self) -> bool {
        false
    }
}
