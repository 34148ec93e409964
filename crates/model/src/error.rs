//! The model crate's single error type; every message names the shape or value at fault.

use thiserror::Error;

/// Everything that can go wrong while loading or running a model.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    #[error("GGUF file is truncated or corrupt: {0}")]
    CorruptGguf(String),
    #[error("unsupported architecture `{0}`: supported are llama, qwen2, qwen3 and gemma3")]
    UnsupportedArchitecture(String),
    #[error("unsupported tensor type {dtype} for `{tensor}`: supported are F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants")]
    UnsupportedTensorType { tensor: String, dtype: String },
    #[error("GGUF metadata key `{key}` is missing or has the wrong type: {reason}")]
    Metadata { key: String, reason: String },
    #[error("tensor `{name}` is missing from the GGUF file")]
    MissingTensor { name: String },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("prompt of {tokens} tokens does not fit the context of {context} tokens")]
    ContextOverflow { tokens: usize, context: usize },
    #[error("empty input: {0}")]
    EmptyInput(String),
    #[error("KV cache mismatch: {0}")]
    KvCacheMismatch(String),
    #[error("unknown hook point `{name}`: {reason}")]
    UnknownHook { name: String, reason: String },
    #[error("hook point `{hook}` refers to layer {layer}, but the model has {n_layers} layers")]
    HookLayerOutOfRange {
        hook: String,
        layer: usize,
        n_layers: usize,
    },
    #[error("intervention at `{hook}`: {reason}")]
    Intervention { hook: String, reason: String },
    #[error("not supported by this backend: {0}")]
    Unsupported(String),
    #[error("backend failed: {0}")]
    Backend(String),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// Result alias for this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
