//! The probe crate's single error type; messages name the spec field or the shape at fault.

use thiserror::Error;

/// Everything that can go wrong between an experiment spec and its report.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// The spec is invalid; `field` is a JSON path such as `scenario.framings[3].text`.
    #[error("spec field `{field}`: {reason}")]
    Spec { field: String, reason: String },
    #[error("this spec has version {found}, newer than the {supported} this build understands; update Hawthorne to open it")]
    NewerVersion { found: u32, supported: u32 },
    #[error("share link is not a valid encoded spec: {0}")]
    Encoding(String),
    #[error("spec JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the split `{split}` leaves only one class in the {part} set ({n} prompts, all {class}); probes need both conditions on each side")]
    OneClass {
        split: String,
        part: &'static str,
        n: usize,
        class: &'static str,
    },
    #[error("the experiment needs about {needed_mb} MB for activations, over the {limit_mb} MB limit (`limits.max_memory_mb`); use fewer hooks, framings or tasks")]
    TooLarge { needed_mb: u64, limit_mb: u64 },
    #[error("model: {0}")]
    Model(#[from] hawthorne_model::ModelError),
    #[error("probe fitting at `{hook}`: {reason}")]
    Fit { hook: String, reason: String },
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A collected-activations directory that cannot serve this spec (see [`crate::recorded`]).
    #[error("collected activations: {0}")]
    Activations(String),
    #[error("the run was cancelled")]
    Cancelled,
}

impl From<candle_core::Error> for ProbeError {
    fn from(e: candle_core::Error) -> Self {
        ProbeError::Model(hawthorne_model::ModelError::from(e))
    }
}

/// Result alias for this crate.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// Shorthand for a spec error.
pub(crate) fn spec_err(field: impl Into<String>, reason: impl Into<String>) -> ProbeError {
    ProbeError::Spec { field: field.into(), reason: reason.into() }
}
