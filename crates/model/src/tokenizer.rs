//! Byte-level BPE tokenizer built from GGUF metadata, plus the ChatML chat template.
//!
//! Built on the `tokenizers` crate rather than candle's GGUF tokenizer, which splits
//! SmolLM2's `smollm` pre-tokenizer differently from llama.cpp.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper};

use crate::error::{ModelError, Result};
use crate::gguf::{meta_int_array, meta_opt_u32, meta_str, meta_str_array};

/// GGUF token types that are control/special tokens (llama.cpp: CONTROL = 3, USER_DEFINED = 4).
const SPECIAL_TOKEN_TYPES: [i64; 2] = [3, 4];

/// The default system line of SmolLM2's chat template, used when no system text is given.
pub const SMOLLM_DEFAULT_SYSTEM: &str =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// One message of a chat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A tokenizer with the model's special tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// Token id that ends a turn (`<|im_end|>`), if the vocabulary has it.
    pub end_of_turn: Option<u32>,
    /// End-of-sequence id from the metadata.
    pub eos: Option<u32>,
    /// Beginning-of-sequence id from the metadata.
    pub bos: Option<u32>,
    /// Whether the GGUF asks for a BOS token in front of every prompt.
    pub add_bos: bool,
    /// The default system line for chats with no system message.
    pub default_system: Option<String>,
    vocab_size: usize,
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_gguf_metadata(md: &HashMap<String, Value>) -> Result<Tokenizer> {
        let model = meta_str(md, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(ModelError::Tokenizer(format!(
                "tokenizer model `{model}` is not supported; only byte-level BPE (`gpt2`) is"
            )));
        }
        let tokens = meta_str_array(md, "tokenizer.ggml.tokens")?;
        let merges = meta_str_array(md, "tokenizer.ggml.merges")?;
        let types = meta_int_array(md, "tokenizer.ggml.token_type")?;
        let pre = md
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("default", String::as_str);
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merges: Merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| ModelError::Tokenizer(format!("merge `{m}` has no space")))
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        // `smollm` (and the plain gpt2 family) split digits one by one before byte-level BPE.
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tok: PreTokenizerWrapper = match pre {
            "smollm" | "starcoder" | "refact" | "default" => {
                Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            }
            _ => byte_level.into(),
        };
        inner.with_pre_tokenizer(Some(pre_tok));
        inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
        let specials: Vec<AddedToken> = match &types {
            Some(types) => tokens
                .iter()
                .zip(types)
                .filter(|(_, ty)| SPECIAL_TOKEN_TYPES.contains(ty))
                .map(|(t, _)| AddedToken::from(t.clone(), true))
                .collect(),
            None => Vec::new(),
        };
        let _added = inner.add_special_tokens(specials);
        let end_of_turn = inner.token_to_id("<|im_end|>");
        let add_bos = matches!(md.get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(true)));
        let default_system = md
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .filter(|t| t.contains(SMOLLM_DEFAULT_SYSTEM))
            .map(|_| SMOLLM_DEFAULT_SYSTEM.to_string());
        Ok(Tokenizer {
            inner,
            end_of_turn,
            eos: meta_opt_u32(md, "tokenizer.ggml.eos_token_id"),
            bos: meta_opt_u32(md, "tokenizer.ggml.bos_token_id"),
            add_bos,
            default_system,
            vocab_size: tokens.len(),
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Tokenizes `text`; special tokens written in the text (e.g. `<|im_start|>`) are parsed.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// The tokenizer in Hugging Face `tokenizer.json` form, for use outside Hawthorne (e.g. with
    /// the Python `tokenizers` package next to an exported ONNX graph). BOS is not part of it:
    /// see [`Tokenizer::add_bos`].
    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Decodes ids to text, keeping special tokens when `skip_special` is false.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(ModelError::TokenOutOfRange {
                id: *bad,
                vocab: self.vocab_size,
            });
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The text of one token id as stored in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Whether `id` ends the assistant's turn.
    pub fn is_stop(&self, id: u32) -> bool {
        Some(id) == self.end_of_turn || Some(id) == self.eos
    }

    /// Applies the ChatML template: `<|im_start|>{role}\n{content}<|im_end|>\n` per message,
    /// inserting the model's default system line when the chat has no system message,
    /// and ending with `<|im_start|>assistant\n` when `add_generation_prompt`.
    pub fn apply_chat_template(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        if let (Some(sys), Some(first)) = (&self.default_system, messages.first()) {
            if first.role != "system" {
                out.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
            }
        }
        for m in messages {
            out.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
        }
        if add_generation_prompt {
            out.push_str("<|im_start|>assistant\n");
        }
        out
    }

    /// Convenience: a (system, user) chat as prompt text ready for generation.
    /// An empty system text means "use the model's default system line".
    pub fn chat_prompt(&self, system: &str, user: &str) -> String {
        let mut msgs = Vec::new();
        if !system.is_empty() {
            msgs.push(Message::new("system", system));
        }
        msgs.push(Message::new("user", user));
        self.apply_chat_template(&msgs, true)
    }
}
