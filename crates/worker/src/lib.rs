//! The Web Worker that owns the engine, and the only crate that knows the page ↔ worker protocol.
//!
//! - [`protocol`]: the serde message types both sides exchange.
//! - [`engine`]: the request handlers, plain Rust, tested natively.
//! - `agent` (wasm32 only): the yew-agent reactor that fetches model bytes, drives the engine
//!   in small steps so progress streams out and cancellation gets in, and the codec.

pub mod engine;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
pub mod agent;

pub use protocol::{ChatRequest, LoadPhase, ModelInfo, Request, Response};
