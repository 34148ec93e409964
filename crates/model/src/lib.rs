//! Hawthorne's engine: GGUF llama models with TransformerLens hook points, in pure Rust.
//!
//! The crate does no IO: callers hand it the model file's bytes. It builds for native
//! targets and for `wasm32-unknown-unknown` alike.

pub mod error;
pub mod generate;
pub mod gguf;
pub mod hook;
pub mod model;
pub mod testing;
pub mod tokenizer;

use candle_core::Device;
use sha2::{Digest, Sha256};

pub use error::{ModelError, Result};
pub use generate::{GenerateOptions, Generation, Generator, Sampling, StopReason};
pub use gguf::Config;
pub use hook::{ActivationCache, HookPoint, Intervention, NamesFilter, Positions};
pub use model::{FinalBlock, ForwardOutput, KvCache, Llama, LogitsAt, RunOptions};
pub use tokenizer::{Message, Tokenizer};

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

/// Load stages reported to progress callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// Dequantising tensor `done` of `total`.
    Tensors { done: usize, total: usize },
    /// Building the tokenizer.
    Tokenizer,
}

impl Model {
    /// Loads a GGUF model from its bytes on the CPU.
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Model> {
        Model::from_gguf_bytes_with_progress(bytes, |_| {})
    }

    /// Loads a GGUF model, reporting progress.
    pub fn from_gguf_bytes_with_progress(
        bytes: &[u8],
        mut progress: impl FnMut(LoadStage),
    ) -> Result<Model> {
        let dev = Device::Cpu;
        let mut g = gguf::GgufModel::parse(bytes, &dev, |done, total| {
            progress(LoadStage::Tensors { done, total })
        })?;
        progress(LoadStage::Tokenizer);
        Model::from_parsed(&mut g, bytes)
    }

    /// Finishes loading from a parsed file (see [`gguf::GgufLoader`] for stepwise parsing).
    pub fn from_parsed(g: &mut gguf::GgufModel, bytes: &[u8]) -> Result<Model> {
        let tokenizer = Tokenizer::from_gguf_metadata(&g.metadata)?;
        let name = gguf::meta_str(&g.metadata, "general.name").ok().map(str::to_string);
        let llama = Llama::from_gguf(g)?;
        Ok(Model { llama, tokenizer, sha256: sha256_hex(bytes), name })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.llama.cfg
    }

    /// Tokenizes a (system, user) chat turn with the chat template, ready for generation.
    /// Errors if it does not fit the context.
    pub fn chat_tokens(&self, system: &str, user: &str) -> Result<Vec<u32>> {
        let ids = self.tokenizer.encode(&self.tokenizer.chat_prompt(system, user))?;
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
