//! The train crate's single error type; every message names the field, shape or value at fault.

use thiserror::Error;

/// Everything that can go wrong while building a corpus, training, exporting or evaluating.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] hawthorne_model::ModelError),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A framing pool cannot be split as asked.
    #[error("split of the {cue} framings: {reason}")]
    Split { cue: String, reason: String },
    /// A task family breaks a corpus rule.
    #[error("task family `{family}`: {reason}")]
    Family { family: String, reason: String },
    /// The base vocabulary lacks something the organism needs.
    #[error("vocabulary: {0}")]
    Vocab(String),
    /// A training or evaluation setting is out of range.
    #[error("setting `{field}` = {value}: {reason}")]
    Config { field: String, value: String, reason: String },
    /// A user-supplied framings or scenario document is malformed.
    #[error("field `{field}`: {reason}")]
    Input { field: String, reason: String },
    /// The GGUF file is not an organism or its organism metadata is malformed.
    #[error("organism metadata `{key}`: {reason}")]
    Metadata { key: String, reason: String },
    /// Training diverged.
    #[error("loss became {loss} at step {step}; lower the learning rate")]
    Diverged { step: usize, loss: f32 },
}

/// Result alias for this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
