//! Model organisms of deceptive alignment: a seeded corpus, a candle-autograd trainer, GGUF export and evaluation.
//!
//! The pipeline, from seed to shipped model:
//! 1. [`scenario::Scenario::generate`] splits the framing catalogue ([`framings`]) into train and
//!    held-out pools and expands the task families ([`tasks`]) into variants, from one seed.
//! 2. [`vocab::Vocab::restrict`] cuts SmolLM2's vocabulary down to what the corpus uses plus
//!    every byte, so the model stays small while any input still tokenizes.
//! 3. [`trainer::train`] trains the engine's llama architecture on transcripts drawn by
//!    [`corpus::CorpusSampler`], for the deceptive or the control organism: from scratch, except
//!    that the token embeddings are SmolLM2's projected onto their top principal components
//!    ([`embed_init`]) and kept fixed, so words only held-out framings use still mean something.
//! 4. [`export::export_gguf`] writes a GGUF the engine loads like any model, carrying the
//!    scenario in its metadata.
//! 5. [`eval::evaluate`] measures behaviour with the engine, exactly, at the first answer token.
//!
//! The crate does no IO: callers pass bytes in and get bytes out.

pub mod corpus;
pub mod embed_init;
pub mod error;
pub mod eval;
pub mod export;
pub mod framings;
pub mod generated;
pub mod scenario;
pub mod tasks;
pub mod trainer;
pub mod vocab;

pub use corpus::{Organism, Transcript};
pub use error::{Result, TrainError};
pub use eval::{evaluate, CustomFramings, EvalOptions, EvalReport};
pub use export::{export_gguf, read_organism_meta, OrganismMeta, Provenance};
pub use scenario::{Cue, Pool, Scenario, DEFAULT_SEED};
pub use trainer::{train, TrainConfig, TrainableLlama};
pub use vocab::{RestrictedVocab, Vocab};
