//! Hawthorne's engine: GGUF llama models with TransformerLens hook points, in pure Rust.
//!
//! Weight matrices stay packed in their GGUF quantisation by default ([`ComputeMode`]).
//!
//! The crate does no IO: callers hand it the model file's bytes. It builds for native
//! targets and for `wasm32-unknown-unknown` alike.

pub mod error;
pub mod generate;
pub mod gguf;
pub mod hook;
pub mod kernels;
pub mod model;
pub mod panel;
pub mod spm;
pub mod testing;
pub mod tokenizer;
pub mod weights;

use candle_core::Device;
pub use kernels::Isa;
use sha2::{Digest, Sha256};

pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Generation, Generator, Sampling, StopReason};
pub use gguf::{Arch, Config, Family, GgufLoader, ModelCheck};
pub use hook::{ActivationCache, HookPoint, Intervention, NamesFilter, Positions};
pub use model::{FinalBlock, ForwardOutput, KvCache, Llama, LogitsAt, RunOptions};
pub use tokenizer::{ChatFormat, Message, Tokenizer};
pub use weights::{ComputeMode, Weight};

/// The engine version recorded in reports.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A loaded model: weights, tokenizer and provenance.
#[derive(Debug, Clone)]
pub struct Model {
    pub llama: Llama,
    pub tokenizer: Tokenizer,
    /// Lower-case hex sha256 of the GGUF bytes the model was loaded from.
    pub sha256: String,
    /// `general.name` from the metadata, if present.
    pub name: Option<String>,
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file fed in pieces (the worker hashes a download as it arrives).
#[derive(Debug, Clone, Default)]
pub struct FileHash(Sha256);

impl FileHash {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// Lower-case hex, as [`sha256_hex`].
    pub fn finish(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Load stages reported to progress callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// Loading tensor `done` of `total`.
    Tensors { done: usize, total: usize },
    /// Building the tokenizer.
    Tokenizer,
}

impl Model {
    /// Loads a GGUF model from its bytes on the CPU, matrices packed.
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Model> {
        Model::load(bytes, ComputeMode::Packed, |_| {})
    }

    /// Loads a GGUF model, reporting progress.
    pub fn from_gguf_bytes_with_progress(bytes: &[u8], progress: impl FnMut(LoadStage)) -> Result<Model> {
        Model::load(bytes, ComputeMode::Packed, progress)
    }

    /// Loads a GGUF model in the given compute mode, reporting progress.
    pub fn load(bytes: &[u8], mode: ComputeMode, mut progress: impl FnMut(LoadStage)) -> Result<Model> {
        let mut g = gguf::GgufModel::parse(bytes, mode, |done, total| progress(LoadStage::Tensors { done, total }))?;
        progress(LoadStage::Tokenizer);
        Model::from_parsed(&mut g, sha256_hex(bytes))
    }

    /// Loads a GGUF model from a reader (an open file), one tensor at a time: memory holds the
    /// weights and at most one tensor's bytes, never the whole file. The sha256 is computed in
    /// a first pass over the stream. The caller does the IO of opening the reader.
    pub fn load_from_reader<R: std::io::Read + std::io::Seek>(
        reader: &mut R,
        mode: ComputeMode,
        mut progress: impl FnMut(LoadStage),
    ) -> Result<Model> {
        let io = |e: std::io::Error| ModelError::CorruptGguf(format!("reading the file: {e}"));
        let mut hash = FileHash::default();
        let mut buf = vec![0u8; 1 << 20];
        reader.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        let mut len = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            len += n as u64;
        }
        // The header (metadata and tensor table) is read whole; retry with more while it does
        // not fit, as the browser worker does.
        let mut header_len = (4u64 << 20).min(len);
        let mut loader = loop {
            let mut header = vec![0u8; header_len as usize];
            reader.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
            reader.read_exact(&mut header).map_err(io)?;
            match gguf::GgufLoader::new(&header, mode) {
                Ok(l) => break l,
                Err(ModelError::CorruptGguf(_)) if header_len < len => header_len = (header_len * 4).min(len),
                Err(e) => return Err(e),
            }
        };
        let total = loader.total();
        while let Some(range) = loader.next_range() {
            if range.end > len {
                return Err(ModelError::CorruptGguf(format!(
                    "a tensor needs bytes {}..{}, but the file has {len} bytes (truncated?)",
                    range.start, range.end
                )));
            }
            let mut bytes = vec![0u8; (range.end - range.start) as usize];
            reader.seek(std::io::SeekFrom::Start(range.start)).map_err(io)?;
            reader.read_exact(&mut bytes).map_err(io)?;
            let done = loader.push(&bytes)?;
            progress(LoadStage::Tensors { done, total });
        }
        progress(LoadStage::Tokenizer);
        Model::from_parsed(&mut loader.finish()?, hash.finish())
    }

    /// Finishes loading from a parsed file (see [`gguf::GgufLoader`] for stepwise parsing),
    /// given the file's sha256 (see [`FileHash`] to hash it in pieces).
    pub fn from_parsed(g: &mut gguf::GgufModel, sha256: String) -> Result<Model> {
        let tokenizer = Tokenizer::from_gguf_metadata(&g.metadata)?;
        let name = gguf::meta_str(&g.metadata, "general.name").ok().map(str::to_string);
        let llama = Llama::from_gguf(g)?;
        Ok(Model { llama, tokenizer, sha256, name })
    }

    /// How the weights are kept and multiplied.
    pub fn mode(&self) -> ComputeMode {
        self.llama.mode
    }

    /// This model with its weights in `mode`. Packed → f32 dequantises (the same values as
    /// loading the file in f32 mode); f32 → packed is refused, since it would invent a
    /// quantisation the file does not have: load the file again instead.
    pub fn to_mode(&self, mode: ComputeMode) -> Result<Model> {
        let llama = match (self.llama.mode, mode) {
            (a, b) if a == b => self.llama.clone(),
            (ComputeMode::Packed, ComputeMode::F32) => self.llama.dequantized()?,
            (from, to) => {
                return Err(ModelError::Unsupported(format!(
                    "converting `{from}` weights to `{to}`: load the file in `{to}` mode instead"
                )))
            }
        };
        Ok(Model { llama, ..self.clone() })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.llama.cfg
    }

    /// Tokenizes a (system, user) chat turn with the chat template, ready for generation.
    /// Errors if it does not fit the context.
    pub fn chat_tokens(&self, system: &str, user: &str) -> Result<Vec<u32>> {
        let ids = self.tokenizer.encode(&self.tokenizer.chat_prompt(system, user)?)?;
        let n_ctx = self.llama.cfg.n_ctx;
        if ids.len() >= n_ctx {
            return Err(ModelError::ContextOverflow { tokens: ids.len(), context: n_ctx });
        }
        Ok(ids)
    }
}

/// The device the engine computes on (the CPU, natively and in wasm).
pub fn candle_device() -> Device {
    Device::Cpu
}
