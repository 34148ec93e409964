//! Hawthorne's science core: from an experiment spec to a report that says where "being
//! observed" is linearly decodable and where the model's behaviour forks.
//!
//! Pure Rust with no IO: the caller supplies a loaded model and writes the outputs.

pub mod backend;
pub mod contrast;
pub mod cost;
pub mod error;
pub mod eval_awareness;
pub mod experiment;
pub mod lexical;
pub mod metrics;
pub mod probes;
pub mod recorded;
pub mod report;
pub mod scenarios;
pub mod spec;
pub mod split;
pub mod study;

pub use backend::LanguageModel;
pub use cost::CostEstimate;
pub use error::{ProbeError, Result};
pub use experiment::{Experiment, Exports, Progress, Stage, SteeringBasis};
pub use recorded::Recorded;
pub use report::Report;
pub use spec::{Condition, ExperimentSpec, SPEC_VERSION};
