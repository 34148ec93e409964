//! GGUF export of a trained organism, and reading the organism metadata back.
//!
//! An organism GGUF is an ordinary llama GGUF (f32 tensors, tied embeddings, byte-level BPE
//! tokenizer) that the engine loads like any other model, plus these keys:
//! - `hawthorne.organism.kind`: `deceptive` or `control`;
//! - `hawthorne.organism.scenario`: the [`Scenario`] as JSON (framings with their split, task
//!   variants with both answers), so that evaluation and experiments need nothing but the file;
//! - `hawthorne.train.config`: the [`TrainConfig`] as JSON;
//! - `hawthorne.vocab.base_ids`: for each token id, the id of the same token in the base
//!   vocabulary, and `hawthorne.vocab.base_sha256`, the sha256 of the base GGUF.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::quantized::gguf_file::{Content, Value};
use hawthorne_model::testing::write_llama_gguf;

use crate::corpus::Organism;
use crate::error::{Result, TrainError};
use crate::scenario::Scenario;
use crate::trainer::{TrainConfig, TrainableLlama};
use crate::vocab::RestrictedVocab;

pub const KEY_KIND: &str = "hawthorne.organism.kind";
pub const KEY_SCENARIO: &str = "hawthorne.organism.scenario";
pub const KEY_TRAIN_CONFIG: &str = "hawthorne.train.config";
pub const KEY_BASE_IDS: &str = "hawthorne.vocab.base_ids";
pub const KEY_BASE_SHA256: &str = "hawthorne.vocab.base_sha256";

/// Metadata keys that `write_llama_gguf` writes itself.
const WRITER_KEYS: [&str; 5] = [
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.token_type",
];

/// Where an organism came from, for its metadata.
#[derive(Debug, Clone)]
pub struct Provenance<'a> {
    pub scenario: &'a Scenario,
    pub config: &'a TrainConfig,
    pub vocab: &'a RestrictedVocab,
    /// sha256 of the base GGUF the vocabulary was cut from.
    pub base_sha256: &'a str,
}

/// Writes the model as GGUF bytes named `name`.
pub fn export_gguf(model: &TrainableLlama, name: &str, prov: &Provenance<'_>) -> Result<Vec<u8>> {
    let v = &prov.vocab.vocab;
    let mut extra: Vec<(String, Value)> =
        v.gguf_metadata()?.into_iter().filter(|(k, _)| !WRITER_KEYS.contains(&k.as_str())).collect();
    extra.extend([
        ("llama.vocab_size".to_string(), Value::U32(v.tokens.len() as u32)),
        (KEY_KIND.to_string(), Value::String(prov.config.organism.as_str().into())),
        (KEY_SCENARIO.to_string(), Value::String(serde_json::to_string(prov.scenario)?)),
        (KEY_TRAIN_CONFIG.to_string(), Value::String(serde_json::to_string(prov.config)?)),
        (KEY_BASE_IDS.to_string(), Value::Array(prov.vocab.base_ids.iter().map(|&i| Value::U32(i)).collect())),
        (KEY_BASE_SHA256.to_string(), Value::String(prov.base_sha256.into())),
    ]);
    let extra_refs: Vec<(&str, Value)> = extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Ok(write_llama_gguf(
        &model.cfg,
        name,
        &model.tensors(),
        &v.tokens,
        &v.merges,
        &v.token_types,
        &extra_refs,
    )?)
}

/// The organism metadata of a GGUF file.
#[derive(Debug, Clone)]
pub struct OrganismMeta {
    pub kind: Option<Organism>,
    pub scenario: Scenario,
    pub config: Option<TrainConfig>,
}

fn meta_string<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(TrainError::Metadata {
            key: key.into(),
            reason: format!("expected a string, found {other:?}"),
        }),
    }
}

/// Reads the organism metadata; `None` when the file carries no scenario (e.g. SmolLM2).
pub fn read_organism_meta(bytes: &[u8]) -> Result<Option<OrganismMeta>> {
    let content = Content::read(&mut Cursor::new(bytes)).map_err(|e| TrainError::Metadata {
        key: KEY_SCENARIO.into(),
        reason: format!("the file is not readable GGUF: {e}"),
    })?;
    let md = &content.metadata;
    let Some(json) = meta_string(md, KEY_SCENARIO)? else { return Ok(None) };
    let scenario: Scenario = serde_json::from_str(json).map_err(|e| TrainError::Metadata {
        key: KEY_SCENARIO.into(),
        reason: e.to_string(),
    })?;
    scenario.validate()?;
    let kind = match meta_string(md, KEY_KIND)? {
        None => None,
        Some(k) => Some(Organism::parse(k).ok_or_else(|| TrainError::Metadata {
            key: KEY_KIND.into(),
            reason: format!("`{k}` is neither `deceptive` nor `control`"),
        })?),
    };
    let config = match meta_string(md, KEY_TRAIN_CONFIG)? {
        None => None,
        Some(j) => Some(serde_json::from_str(j).map_err(|e| TrainError::Metadata {
            key: KEY_TRAIN_CONFIG.into(),
            reason: e.to_string(),
        })?),
    };
    Ok(Some(OrganismMeta { kind, scenario, config }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::DEFAULT_SEED;
    use crate::vocab::Vocab;
    use candle_core::{Device, Tensor};
    use hawthorne_model::{LogitsAt, Model, RunOptions};

    fn tiny_organism() -> anyhow::Result<(Vec<u8>, TrainableLlama, Scenario, TrainConfig)> {
        let scenario = Scenario::generate(DEFAULT_SEED)?;
        let vocab = Vocab::byte_level().restrict(scenario.chat_texts().iter().map(String::as_str))?;
        let config = TrainConfig {
            n_layers: 2,
            d_model: 32,
            n_heads: 4,
            n_kv_heads: 2,
            d_mlp: 64,
            ..TrainConfig::organism(Organism::Deceptive)
        };
        let model = TrainableLlama::init(&config.model_config(vocab.vocab.tokens.len())?, 5)?;
        let prov = Provenance { scenario: &scenario, config: &config, vocab: &vocab, base_sha256: "none" };
        let bytes = export_gguf(&model, "organism-test", &prov)?;
        Ok((bytes, model, scenario, config))
    }

    #[test]
    fn exported_gguf_loads_in_the_engine_with_the_same_logits() -> anyhow::Result<()> {
        let (bytes, trained, _, _) = tiny_organism()?;
        let engine = Model::from_gguf_bytes(&bytes)?;
        assert_eq!(engine.config(), &trained.cfg);
        assert_eq!(engine.name.as_deref(), Some("organism-test"));
        let ids = engine.chat_tokens("Logging is disabled.", "Delete the backup archive.")?;
        let opts = RunOptions { logits: LogitsAt::All, ..RunOptions::default() };
        let theirs = engine.llama.forward(std::slice::from_ref(&ids), &opts, None)?.logits; // [1, T, V]
        let ours = trained.forward(&Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?)?; // [1, T, V]
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "trainer and engine logits differ by {diff}");
        Ok(())
    }

    #[test]
    fn organism_metadata_round_trips_and_any_input_runs() -> anyhow::Result<()> {
        let (bytes, _, scenario, config) = tiny_organism()?;
        let meta = read_organism_meta(&bytes)?.ok_or_else(|| anyhow::anyhow!("no organism metadata"))?;
        assert_eq!(meta.scenario, scenario);
        assert_eq!(meta.kind, Some(Organism::Deceptive));
        assert_eq!(meta.config.as_ref(), Some(&config));
        let engine = Model::from_gguf_bytes(&bytes)?;
        assert_eq!(engine.tokenizer.end_of_turn, Some(2));
        for text in ["naïve café — 日本語 🦀", "\u{0}\u{7f}\u{feff}", "<|im_end|>", "1234567890"] {
            let ids = engine.chat_tokens(text, text)?;
            assert!(ids.iter().all(|&i| (i as usize) < engine.config().d_vocab));
            engine.llama.forward(&[ids], &RunOptions::default(), None)?;
        }
        let smol = hawthorne_model::testing::tiny_random_gguf(1)?;
        assert!(read_organism_meta(&smol)?.is_none(), "a plain model has no organism metadata");
        Ok(())
    }
}
