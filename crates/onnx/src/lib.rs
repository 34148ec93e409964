//! ONNX interop: export any model the engine loads as an ONNX graph with every layer's residual
//! stream as an output, a steering input and an optional probe "monitor" head; and run ONNX
//! Runtime (through `ort`) as a native experiment backend and as a parity oracle.
//!
//! Native only: `ort` loads `libonnxruntime` dynamically, which has no place in the browser
//! worker. The engine and probe crates know nothing of this crate.

mod error;
pub mod export;
pub mod runtime;

pub use error::{OnnxError, Result};
pub use export::{export, ExportOptions, MonitorHead};
pub use runtime::{OrtModel, OrtOutputs, OrtSession};
