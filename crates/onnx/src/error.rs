//! The crate's one error type; messages name the shapes, values and commands involved.

/// Everything export and ONNX Runtime can fail at.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error("cannot express this model in ONNX: {0}")]
    Unsupported(String),
    #[error("the ONNX file does not match what Hawthorne expects: {0}")]
    Interface(String),
    #[error(
        "ONNX Runtime library not found at {path}: run `cargo xtask setup-ort` (or set ORT_DYLIB_PATH to a libonnxruntime.so 1.32): {reason}"
    )]
    MissingRuntime { path: String, reason: String },
    #[error("ONNX Runtime: {0}")]
    Ort(#[from] ort::Error),
    #[error("encoding the ONNX protobuf: {0}")]
    Protobuf(String),
    #[error(transparent)]
    Model(#[from] hawthorne_model::ModelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, OnnxError>;
