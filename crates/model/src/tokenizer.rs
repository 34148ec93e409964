//! The tokenizer and chat format a GGUF file describes.
//!
//! - Byte-level BPE (`tokenizer.ggml.model = gpt2`: SmolLM2, Qwen, Llama 3) is built on the
//!   `tokenizers` crate rather than candle's GGUF tokenizer, which splits SmolLM2's `smollm`
//!   pre-tokenizer differently from llama.cpp.
//! - SentencePiece vocabularies with scores (`llama`: Gemma) use [`crate::spm`].
//! - The chat format is recognised from `tokenizer.chat_template` (ChatML, Gemma's turns,
//!   Llama 3's headers); a file without a template (a base model) gets a plain-text format.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper};

use crate::error::{ModelError, Result};
use crate::gguf::{meta_int_array, meta_opt_u32, meta_str, meta_str_array};
use crate::spm::Spm;

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

/// How a (system, user) chat becomes prompt text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "template")]
pub enum ChatFormat {
    /// `<|im_start|>{role}\n{content}<|im_end|>\n` (SmolLM2, Qwen).
    ChatMl,
    /// `<start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n` (Gemma:
    /// no system role, so the system text opens the user's turn).
    Gemma,
    /// `<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>` (Llama 3).
    Llama3,
    /// No chat template in the file and no ChatML markers in its vocabulary (a base model):
    /// `{system}\n\nUser: {user}\nAssistant:`.
    Plain,
    /// A template this engine does not recognise (its opening characters); applying it fails.
    Unsupported(String),
}

impl ChatFormat {
    /// Recognises the format from `tokenizer.chat_template`.
    pub fn detect(template: Option<&str>) -> ChatFormat {
        match template {
            None => ChatFormat::Plain,
            Some(t) if t.trim().is_empty() => ChatFormat::Plain,
            Some(t) if t.contains("<|im_start|>") => ChatFormat::ChatMl,
            Some(t) if t.contains("<start_of_turn>") => ChatFormat::Gemma,
            Some(t) if t.contains("<|start_header_id|>") => ChatFormat::Llama3,
            Some(t) => ChatFormat::Unsupported(t.chars().take(60).collect()),
        }
    }

    /// A short name for reports and the page.
    pub fn name(&self) -> &'static str {
        match self {
            ChatFormat::ChatMl => "chatml",
            ChatFormat::Gemma => "gemma",
            ChatFormat::Llama3 => "llama3",
            ChatFormat::Plain => "plain",
            ChatFormat::Unsupported(_) => "unsupported",
        }
    }
}

/// The vocabulary and its tokenisation algorithm.
#[derive(Debug, Clone)]
enum Vocabulary {
    Bpe(Box<tokenizers::Tokenizer>),
    Spm(Spm),
}

/// A tokenizer with the model's special tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: Vocabulary,
    /// How chats become prompt text.
    pub chat_format: ChatFormat,
    /// Token id that ends a turn (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`), if the vocabulary has it.
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
        let template = md.get("tokenizer.chat_template").and_then(|v| v.to_string().ok()).map(String::as_str);
        let chat_format = ChatFormat::detect(template);
        let add_bos_default = model == "llama"; // llama.cpp's default for SentencePiece vocabularies
        let add_bos = match md.get("tokenizer.ggml.add_bos_token") {
            Some(Value::Bool(b)) => *b,
            _ => add_bos_default,
        };
        let (inner, vocab_size) = match model {
            "gpt2" => Self::bpe(md)?,
            "llama" => {
                let tokens = meta_str_array(md, "tokenizer.ggml.tokens")?;
                let n = tokens.len();
                let scores = meta_f32_array(md, "tokenizer.ggml.scores")?;
                let types = meta_int_array(md, "tokenizer.ggml.token_type")?;
                let add_space_prefix = !matches!(md.get("tokenizer.ggml.add_space_prefix"), Some(Value::Bool(false)));
                let unknown = meta_opt_u32(md, "tokenizer.ggml.unknown_token_id");
                (Vocabulary::Spm(Spm::new(tokens, scores, types, unknown, add_space_prefix)?), n)
            }
            other => {
                return Err(ModelError::Tokenizer(format!(
                    "tokenizer model `{other}` is not supported; supported are byte-level BPE (`gpt2`) and SentencePiece (`llama`)"
                )))
            }
        };
        let id = |t: &str| match &inner {
            Vocabulary::Bpe(b) => b.token_to_id(t),
            Vocabulary::Spm(s) => s.token_to_id(t),
        };
        // A file with no template whose vocabulary has ChatML's turn markers is a ChatML model
        // (llama.cpp's own default template); otherwise it is a base model.
        let chat_format = match chat_format {
            ChatFormat::Plain if template.is_none() && id("<|im_start|>").is_some() && id("<|im_end|>").is_some() => ChatFormat::ChatMl,
            other => other,
        };
        let end_of_turn = match chat_format {
            ChatFormat::Gemma => id("<end_of_turn>"),
            ChatFormat::Llama3 => id("<|eot_id|>"),
            _ => id("<|im_end|>"),
        };
        let default_system = template
            .filter(|t| t.contains(SMOLLM_DEFAULT_SYSTEM))
            .map(|_| SMOLLM_DEFAULT_SYSTEM.to_string());
        Ok(Tokenizer {
            inner,
            chat_format,
            end_of_turn,
            eos: meta_opt_u32(md, "tokenizer.ggml.eos_token_id"),
            bos: meta_opt_u32(md, "tokenizer.ggml.bos_token_id"),
            add_bos,
            default_system,
            vocab_size,
        })
    }

    /// Byte-level BPE from the vocabulary and merges.
    fn bpe(md: &HashMap<String, Value>) -> Result<(Vocabulary, usize)> {
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
        Ok((Vocabulary::Bpe(Box::new(inner)), tokens.len()))
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Tokenizes a prompt: BOS first when the file asks for it, then [`Tokenizer::encode_text`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.extend(self.bos);
        }
        ids.extend(self.encode_text(text)?);
        Ok(ids)
    }

    /// Tokenizes `text` as it stands, with no BOS (an answer, or text inside a prompt); special
    /// tokens written in the text (e.g. `<|im_start|>`) are parsed.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        match &self.inner {
            Vocabulary::Bpe(b) => {
                let enc = b.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
                Ok(enc.get_ids().to_vec())
            }
            Vocabulary::Spm(s) => s.encode(text, true),
        }
    }

    /// The tokenizer in Hugging Face `tokenizer.json` form, for use outside Hawthorne (e.g. with
    /// the Python `tokenizers` package next to an exported ONNX graph). BOS is not part of it:
    /// see [`Tokenizer::add_bos`].
    pub fn to_json(&self) -> Result<String> {
        match &self.inner {
            Vocabulary::Bpe(b) => b.to_string(false).map_err(|e| ModelError::Tokenizer(e.to_string())),
            Vocabulary::Spm(_) => Err(ModelError::Unsupported(
                "a tokenizer.json for a SentencePiece vocabulary (only byte-level BPE vocabularies are exported)".into(),
            )),
        }
    }

    /// Decodes ids to text, keeping special tokens when `skip_special` is false.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(ModelError::TokenOutOfRange {
                id: *bad,
                vocab: self.vocab_size,
            });
        }
        match &self.inner {
            Vocabulary::Bpe(b) => b.decode(ids, skip_special).map_err(|e| ModelError::Tokenizer(e.to_string())),
            Vocabulary::Spm(s) => s.decode(ids, skip_special),
        }
    }

    /// The text of one token id as stored in the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        match &self.inner {
            Vocabulary::Bpe(b) => b.id_to_token(id),
            Vocabulary::Spm(s) => s.id_to_token(id).map(str::to_string),
        }
    }

    /// Whether `id` ends the assistant's turn.
    pub fn is_stop(&self, id: u32) -> bool {
        Some(id) == self.end_of_turn || Some(id) == self.eos
    }

    /// Applies the file's chat format to `messages`, ending with the assistant's opening when
    /// `add_generation_prompt`. ChatML inserts the model's default system line when the chat
    /// has none; Gemma and the plain format put the system text before the first user turn.
    pub fn apply_chat_template(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let mut out = String::new();
        match &self.chat_format {
            ChatFormat::ChatMl => {
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
            }
            ChatFormat::Gemma => {
                let mut system = None;
                for m in messages {
                    match m.role.as_str() {
                        "system" => system = Some(m.content.as_str()),
                        role => {
                            let role = if role == "assistant" { "model" } else { role };
                            let content = match system.take() {
                                Some(sys) => format!("{sys}\n\n{}", m.content),
                                None => m.content.clone(),
                            };
                            out.push_str(&format!("<start_of_turn>{role}\n{content}<end_of_turn>\n"));
                        }
                    }
                }
                if add_generation_prompt {
                    out.push_str("<start_of_turn>model\n");
                }
            }
            ChatFormat::Llama3 => {
                for m in messages {
                    out.push_str(&format!("<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>", m.role, m.content));
                }
                if add_generation_prompt {
                    out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
                }
            }
            ChatFormat::Plain => {
                for m in messages {
                    match m.role.as_str() {
                        "system" => out.push_str(&format!("{}\n\n", m.content)),
                        "user" => out.push_str(&format!("User: {}\n", m.content)),
                        _ => out.push_str(&format!("Assistant: {}\n", m.content)),
                    }
                }
                if add_generation_prompt {
                    out.push_str("Assistant:");
                }
            }
            ChatFormat::Unsupported(start) => {
                return Err(ModelError::Tokenizer(format!(
                    "the file's chat template (starting `{start}`) is not one this engine can apply; known are ChatML, Gemma's turns and Llama 3's headers"
                )))
            }
        }
        Ok(out)
    }

    /// Convenience: a (system, user) chat as prompt text ready for generation.
    /// An empty system text means "use the model's default system line".
    pub fn chat_prompt(&self, system: &str, user: &str) -> Result<String> {
        let mut msgs = Vec::new();
        if !system.is_empty() {
            msgs.push(Message::new("system", system));
        }
        msgs.push(Message::new("user", user));
        self.apply_chat_template(&msgs, true)
    }
}

/// Reads an optional float-array metadata key (`tokenizer.ggml.scores`).
fn meta_f32_array(md: &HashMap<String, Value>, key: &str) -> Result<Option<Vec<f32>>> {
    let Some(v) = md.get(key) else { return Ok(None) };
    let Value::Array(items) = v else {
        return Err(ModelError::Metadata { key: key.into(), reason: "expected an array of floats".into() });
    };
    items
        .iter()
        .map(|v| match v {
            Value::F32(x) => Ok(*x),
            Value::F64(x) => Ok(*x as f32),
            other => Err(ModelError::Metadata { key: key.into(), reason: format!("expected floats, found {other:?}") }),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
