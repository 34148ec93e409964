//! The organism's restricted vocabulary: the base (SmolLM2) tokens the corpus uses, plus every byte.
//!
//! The engine tokenizes with byte-level BPE built from `tokenizer.ggml.tokens` and
//! `tokenizer.ggml.merges`. Restricting means keeping:
//! - the three chat special tokens (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`);
//! - all 256 byte-level symbols, so any input text still tokenizes (byte fallback); the few the
//!   base lacks are appended after the base's tokens;
//! - every token that appears at any stage of BPE on the corpus texts, and exactly the merges
//!   that produced them, in the base's merge order.
//!
//! BPE applies, at each step, the lowest-ranked merge that applies. Every merge the base applies
//! to a corpus word is kept, and every kept merge is a base merge, so the restricted tokenizer
//! makes the same choices as the base on corpus text, and on any other text it produces only
//! kept tokens. Tokens keep the base's relative order, and `hawthorne.vocab.base_ids` in the GGUF
//! maps each restricted id back to its base id.

use std::collections::{BTreeSet, HashMap};
use std::io::Cursor;

use candle_core::quantized::gguf_file::{Content, Value};
use hawthorne_model::gguf::{meta_int_array, meta_str_array};
use hawthorne_model::Tokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use crate::error::{Result, TrainError};

/// The special tokens an organism needs, in the order SmolLM2 numbers them.
pub const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// `base_ids` entry of a byte symbol the base vocabulary lacks.
pub const NOT_IN_BASE: u32 = u32::MAX;

/// GGUF token type of control tokens.
const CONTROL: i32 = 3;
/// GGUF token type of normal tokens.
const NORMAL: i32 = 1;

/// A ChatML template without a default system line: an empty system text means no system turn.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// A byte-level BPE vocabulary as stored in GGUF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    pub tokens: Vec<String>,
    /// `"left right"` pairs, highest priority first.
    pub merges: Vec<String>,
    pub token_types: Vec<i32>,
}

/// A vocabulary cut down from a base, with the map back to base ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictedVocab {
    pub vocab: Vocab,
    /// `base_ids[i]` is the base vocabulary's id of restricted token `i`, or [`NOT_IN_BASE`] for
    /// a byte symbol the base lacks.
    pub base_ids: Vec<u32>,
}

/// The pre-tokenizer the engine uses for `smollm` (digits one by one, then byte-level).
fn pre_tokenizer() -> Sequence {
    Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()])
}

/// The sorted 256 byte-level symbols.
fn byte_alphabet() -> Vec<String> {
    let mut a: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    a.sort_unstable();
    a.into_iter().map(String::from).collect()
}

/// Splits `text` around the special tokens (which BPE never sees).
fn split_specials(text: &str) -> Vec<&str> {
    let mut pieces = vec![text];
    for sp in SPECIALS {
        pieces = pieces.into_iter().flat_map(|p| p.split(sp)).collect();
    }
    pieces.into_iter().filter(|p| !p.is_empty()).collect()
}

impl Vocab {
    /// Reads the tokenizer vocabulary of a GGUF file (metadata only; tensors are not touched).
    pub fn from_gguf_bytes(bytes: &[u8]) -> Result<Vocab> {
        let content = Content::read(&mut Cursor::new(bytes))
            .map_err(|e| TrainError::Vocab(format!("base GGUF is unreadable: {e}")))?;
        let md = &content.metadata;
        let tokens = meta_str_array(md, "tokenizer.ggml.tokens")?;
        let merges = meta_str_array(md, "tokenizer.ggml.merges")?;
        let token_types = match meta_int_array(md, "tokenizer.ggml.token_type")? {
            Some(t) => t.into_iter().map(|x| x as i32).collect(),
            None => vec![NORMAL; tokens.len()],
        };
        if token_types.len() != tokens.len() {
            return Err(TrainError::Vocab(format!(
                "{} token types for {} tokens",
                token_types.len(),
                tokens.len()
            )));
        }
        Ok(Vocab { tokens, merges, token_types })
    }

    /// A base with no merges: the special tokens and the 256 byte symbols (for tests). With
    /// `missing`, those byte symbols are left out, as SmolLM2 leaves some out.
    pub fn byte_level() -> Vocab {
        Vocab::byte_level_without(&[])
    }

    /// [`Vocab::byte_level`] without the given byte symbols.
    pub fn byte_level_without(missing: &[char]) -> Vocab {
        let mut tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
        tokens.extend(byte_alphabet().into_iter().filter(|b| !b.chars().all(|c| missing.contains(&c))));
        let token_types = (0..tokens.len()).map(|i| if i < SPECIALS.len() { CONTROL } else { NORMAL }).collect();
        Vocab { tokens, merges: Vec::new(), token_types }
    }

    /// Keeps what `texts` need under BPE, plus the special tokens and every byte symbol.
    pub fn restrict<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> Result<RestrictedVocab> {
        let id_of: HashMap<&str, u32> =
            self.tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
        let mut rank: HashMap<(&str, &str), usize> = HashMap::with_capacity(self.merges.len());
        for (r, m) in self.merges.iter().enumerate() {
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| TrainError::Vocab(format!("merge #{r} `{m}` has no space")))?;
            rank.entry((a, b)).or_insert(r);
        }
        let mut keep: BTreeSet<u32> = BTreeSet::new();
        for sp in SPECIALS {
            let id = id_of
                .get(sp)
                .ok_or_else(|| TrainError::Vocab(format!("base vocabulary has no token `{sp}`")))?;
            keep.insert(*id);
        }
        // Byte symbols the base lacks (SmolLM2 has no symbol for 21 of the 256 bytes) are added
        // after the base's tokens, so that every input still round-trips.
        let mut added_bytes = Vec::new();
        for b in byte_alphabet() {
            match id_of.get(b.as_str()) {
                Some(id) => {
                    keep.insert(*id);
                }
                None => added_bytes.push(b),
            }
        }
        let mut used_merges: BTreeSet<usize> = BTreeSet::new();
        let mut words: BTreeSet<String> = BTreeSet::new();
        let pre = pre_tokenizer();
        for text in texts {
            for piece in split_specials(text) {
                let mut pts = PreTokenizedString::from(piece);
                pre.pre_tokenize(&mut pts)
                    .map_err(|e| TrainError::Vocab(format!("pre-tokenizing `{piece}`: {e}")))?;
                for (w, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::Byte) {
                    words.insert(w.to_string());
                }
            }
        }
        for word in &words {
            // BPE on one pre-tokenized word: repeatedly apply the lowest-ranked merge (leftmost on
            // ties), recording every merge applied and every symbol produced.
            let mut syms: Vec<String> = word.chars().map(String::from).collect();
            loop {
                let best = syms
                    .windows(2)
                    .enumerate()
                    .filter_map(|(i, p)| rank.get(&(p[0].as_str(), p[1].as_str())).map(|r| (*r, i)))
                    .min();
                let Some((r, i)) = best else { break };
                used_merges.insert(r);
                let merged = format!("{}{}", syms[i], syms[i + 1]);
                syms.splice(i..i + 2, [merged]);
            }
            for s in &syms {
                let id = id_of.get(s.as_str()).ok_or_else(|| {
                    TrainError::Vocab(format!("BPE of `{word}` produced `{s}`, which the base vocabulary lacks"))
                })?;
                keep.insert(*id);
            }
        }
        for &r in &used_merges {
            let (a, b) = self.merges[r].split_once(' ').unwrap_or_default();
            for part in [a, b, &format!("{a}{b}")] {
                let id = id_of.get(part).ok_or_else(|| {
                    TrainError::Vocab(format!("merge #{r} `{}` uses `{part}`, which the base vocabulary lacks", self.merges[r]))
                })?;
                keep.insert(*id);
            }
        }
        let mut base_ids: Vec<u32> = keep.into_iter().collect();
        let mut vocab = Vocab {
            tokens: base_ids.iter().map(|&i| self.tokens[i as usize].clone()).collect(),
            merges: used_merges.iter().map(|&r| self.merges[r].clone()).collect(),
            token_types: base_ids.iter().map(|&i| self.token_types[i as usize]).collect(),
        };
        for b in added_bytes {
            vocab.tokens.push(b);
            vocab.token_types.push(NORMAL);
            base_ids.push(NOT_IN_BASE);
        }
        Ok(RestrictedVocab { vocab, base_ids })
    }

    /// The `tokenizer.*` GGUF metadata for this vocabulary (gpt2 BPE, `smollm` pre-tokenizer,
    /// ChatML template without a default system line, no BOS).
    pub fn gguf_metadata(&self) -> Result<Vec<(String, Value)>> {
        let id = |t: &str| {
            self.tokens
                .iter()
                .position(|x| x == t)
                .map(|i| Value::U32(i as u32))
                .ok_or_else(|| TrainError::Vocab(format!("vocabulary has no `{t}`")))
        };
        Ok(vec![
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(self.tokens.iter().cloned().map(Value::String).collect())),
            ("tokenizer.ggml.merges".into(), Value::Array(self.merges.iter().cloned().map(Value::String).collect())),
            ("tokenizer.ggml.token_type".into(), Value::Array(self.token_types.iter().map(|t| Value::I32(*t)).collect())),
            ("tokenizer.ggml.bos_token_id".into(), id("<|im_start|>")?),
            ("tokenizer.ggml.eos_token_id".into(), id("<|im_end|>")?),
            ("tokenizer.ggml.padding_token_id".into(), id("<|endoftext|>")?),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
            ("tokenizer.chat_template".into(), Value::String(CHAT_TEMPLATE.into())),
        ])
    }

    /// The engine's tokenizer for this vocabulary, built from the same metadata the GGUF gets.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let md: HashMap<String, Value> = self.gguf_metadata()?.into_iter().collect();
        Ok(Tokenizer::from_gguf_metadata(&md)?)
    }
}

/// Checks that `restricted` tokenizes every text exactly as `base` does (same token strings).
pub fn check_same_tokens<'t>(
    base: &Tokenizer,
    restricted: &Tokenizer,
    texts: impl IntoIterator<Item = &'t str>,
) -> Result<()> {
    for text in texts {
        let strings = |tok: &Tokenizer| -> Result<Vec<String>> {
            Ok(tok.encode(text)?.iter().map(|&i| tok.id_to_token(i).unwrap_or_default()).collect())
        };
        let (a, b) = (strings(base)?, strings(restricted)?);
        if a != b {
            return Err(TrainError::Vocab(format!(
                "`{text}` tokenizes as {a:?} with the base vocabulary but {b:?} with the restricted one"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small base with merges, so that restriction has something to cut.
    fn toy_base() -> Vocab {
        let mut v = Vocab::byte_level();
        for m in ["l o", "lo g", "Ġ lo", "Ġlo g", "o f", "Ġ of", "Ġof f", "x y"] {
            v.merges.push(m.to_string());
            let (a, b) = m.split_once(' ').unwrap_or_default();
            let t = format!("{a}{b}");
            if !v.tokens.contains(&t) {
                v.tokens.push(t);
                v.token_types.push(NORMAL);
            }
        }
        v
    }

    #[test]
    fn restriction_keeps_bytes_specials_and_used_merges_only() -> anyhow::Result<()> {
        let base = toy_base();
        let r = base.restrict(["log off", "log"])?;
        assert_eq!(r.vocab.tokens.len(), r.base_ids.len());
        assert!(r.vocab.tokens.iter().any(|t| t == "Ġoff"));
        assert!(!r.vocab.tokens.iter().any(|t| t == "xy"), "unused merges are dropped");
        assert!(!r.vocab.merges.iter().any(|m| m == "x y"));
        assert_eq!(&r.vocab.tokens[..3], &SPECIALS.map(String::from));
        let full = base.tokenizer()?;
        let cut = r.vocab.tokenizer()?;
        check_same_tokens(&full, &cut, ["log off", "log", "<|im_start|>user\nlog off<|im_end|>\n"])?;
        Ok(())
    }

    #[test]
    fn byte_symbols_missing_from_the_base_are_added() -> anyhow::Result<()> {
        // 'Ą' is the byte-level symbol of byte 0x04 (as in SmolLM2, which lacks it).
        let base = Vocab::byte_level_without(&['Ą']);
        let r = base.restrict(["hello"])?;
        assert_eq!(r.vocab.tokens.last().map(String::as_str), Some("Ą"));
        assert_eq!(r.base_ids.last(), Some(&NOT_IN_BASE));
        let tok = r.vocab.tokenizer()?;
        assert_eq!(tok.decode(&tok.encode("a\u{4}b")?, false)?, "a\u{4}b");
        Ok(())
    }

    #[test]
    fn any_text_maps_into_the_restricted_vocabulary() -> anyhow::Result<()> {
        let r = toy_base().restrict(["log off"])?;
        let tok = r.vocab.tokenizer()?;
        for text in ["", "héllo wörld 😀 日本語 \u{0} \t\r\n", "<|im_end|><|im_start|>", "12345 xy"] {
            let ids = tok.encode(text)?;
            assert!(ids.iter().all(|&i| (i as usize) < r.vocab.tokens.len()), "{text:?} gave {ids:?}");
            assert_eq!(tok.decode(&ids, false)?, text, "byte fallback round-trips {text:?}");
        }
        Ok(())
    }
}
