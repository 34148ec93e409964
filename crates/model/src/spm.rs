//! SentencePiece-style tokenisation from a GGUF vocabulary with scores (`tokenizer.ggml.model =
//! llama`: Gemma, Llama 1/2, Mistral), matching llama.cpp token for token.
//!
//! Written here rather than taken from the `tokenizers` crate: GGUF keeps SentencePiece
//! vocabularies as tokens with scores and no merge list, and `tokenizers` offers either BPE
//! driven by a merge list or the Unigram (Viterbi) model. Neither is llama.cpp's algorithm,
//! which repeatedly merges the adjacent pair whose joined text is the highest-scoring token,
//! then spells anything left outside the vocabulary as `<0xXX>` byte tokens. Parity with
//! llama.cpp is tested on Gemma 3's 262,144-token vocabulary (`tests/parity_gemma3.rs`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{ModelError, Result};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TYPE_UNKNOWN: i64 = 2;
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_BYTE: i64 = 6;

/// SentencePiece's visible space.
const SPACE: char = '\u{2581}';

/// A SentencePiece vocabulary with llama.cpp's merge-by-score tokeniser.
#[derive(Debug, Clone)]
pub struct Spm {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i64>,
    ids: HashMap<String, u32>,
    /// `<0xXX>` token of each byte, if the vocabulary has it.
    bytes: Vec<Option<u32>>,
    /// Control, unknown and user-defined tokens, longest text first: these are cut out of the
    /// text before the merges (user-defined always, the others when special tokens are parsed).
    specials: Vec<u32>,
    unknown: Option<u32>,
    add_space_prefix: bool,
}

/// One piece of text between special tokens, or a special token.
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// A candidate merge of two adjacent symbols; the heap's top is the highest score, then the
/// leftmost (llama.cpp's `llm_bigram_spm` order).
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}

/// A run of the text: byte `start`, `len` bytes (0 once merged into its left neighbour).
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl Spm {
    /// Builds the vocabulary from `tokenizer.ggml.tokens`, `.scores` and `.token_type`.
    pub fn new(
        tokens: Vec<String>,
        scores: Option<Vec<f32>>,
        types: Option<Vec<i64>>,
        unknown: Option<u32>,
        add_space_prefix: bool,
    ) -> Result<Spm> {
        let n = tokens.len();
        let scores = scores.unwrap_or_else(|| vec![0.0; n]);
        let types = types.unwrap_or_else(|| vec![1; n]);
        if scores.len() != n || types.len() != n {
            return Err(ModelError::Tokenizer(format!(
                "the vocabulary has {n} tokens but {} scores and {} token types",
                scores.len(),
                types.len()
            )));
        }
        let mut ids = HashMap::with_capacity(n);
        let mut bytes = vec![None; 256];
        for (i, t) in tokens.iter().enumerate() {
            // The first token of a given text wins, as in llama.cpp's `token_to_id` map.
            ids.entry(t.clone()).or_insert(i as u32);
            if types[i] == TYPE_BYTE {
                if let Some(b) = t.strip_prefix("<0x").and_then(|h| h.strip_suffix('>')).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    bytes[b as usize].get_or_insert(i as u32);
                }
            }
        }
        let mut specials: Vec<u32> = (0..n as u32)
            .filter(|&i| matches!(types[i as usize], TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED) && !tokens[i as usize].is_empty())
            .collect();
        specials.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()).then(a.cmp(&b)));
        Ok(Spm { tokens, scores, types, ids, bytes, specials, unknown, add_space_prefix })
    }

    /// Number of tokens in the vocabulary.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True for an empty vocabulary.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of a token's exact text.
    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    /// The text of a token as stored.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether `id` is a control token (skipped when decoding without specials).
    pub fn is_control(&self, id: u32) -> bool {
        matches!(self.types.get(id as usize), Some(&TYPE_CONTROL) | Some(&TYPE_UNKNOWN))
    }

    /// Tokenises `text` as llama.cpp does with `parse_special`: special tokens are cut out
    /// first (user-defined ones always), each remaining piece has its spaces made `▁` (and a
    /// leading `▁` when the vocabulary asks for one after a special token or at the start),
    /// then is merged by score.
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        let mut fragments = vec![Fragment::Text(text)];
        for &id in &self.specials {
            if !parse_special && self.types[id as usize] != TYPE_USER_DEFINED {
                continue;
            }
            let pattern = self.tokens[id as usize].as_str();
            if !fragments.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(pattern))) {
                continue;
            }
            let mut out = Vec::with_capacity(fragments.len() + 2);
            for f in fragments {
                match f {
                    Fragment::Token(_) => out.push(f),
                    Fragment::Text(mut rest) => {
                        while let Some(at) = rest.find(pattern) {
                            if at > 0 {
                                out.push(Fragment::Text(&rest[..at]));
                            }
                            out.push(Fragment::Token(id));
                            rest = &rest[at + pattern.len()..];
                        }
                        if !rest.is_empty() {
                            out.push(Fragment::Text(rest));
                        }
                    }
                }
            }
            fragments = out;
        }
        let mut ids = Vec::new();
        let mut after_special = true;
        for f in fragments {
            match f {
                Fragment::Token(id) => {
                    ids.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    let mut piece = String::with_capacity(t.len() + 3);
                    if self.add_space_prefix && after_special {
                        piece.push(SPACE);
                    }
                    piece.extend(t.chars().map(|c| if c == ' ' { SPACE } else { c }));
                    self.merge(&piece, &mut ids)?;
                    after_special = false;
                }
            }
        }
        Ok(ids)
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize` on one escaped piece of text.
    fn merge(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let mut symbols: Vec<Symbol> = starts
            .iter()
            .enumerate()
            .map(|(k, &start)| Symbol {
                start,
                len: starts.get(k + 1).copied().unwrap_or(text.len()) - start,
                prev: k.checked_sub(1),
                next: (k + 1 < starts.len()).then_some(k + 1),
            })
            .collect();
        let mut queue = BinaryHeap::new();
        let try_pair = |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left: Option<usize>, right: Option<usize>| {
            let (Some(l), Some(r)) = (left, right) else { return };
            let (a, b) = (symbols[l], symbols[r]);
            let joined = &text[a.start..b.start + b.len];
            if let Some(&id) = self.ids.get(joined) {
                queue.push(Bigram { left: l, right: r, score: self.scores[id as usize], len: joined.len() });
            }
        };
        for k in 1..symbols.len() {
            try_pair(&symbols, &mut queue, Some(k - 1), Some(k));
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
            // Skip pairs made stale by an earlier merge.
            if l.len == 0 || r.len == 0 || l.len + r.len != bigram.len {
                continue;
            }
            symbols[bigram.left].len += r.len;
            symbols[bigram.right].len = 0;
            symbols[bigram.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(bigram.left);
            }
            try_pair(&symbols, &mut queue, symbols[bigram.left].prev, Some(bigram.left));
            try_pair(&symbols, &mut queue, Some(bigram.left), symbols[bigram.left].next);
        }
        let mut at = (!symbols.is_empty()).then_some(0);
        while let Some(k) = at {
            let s = symbols[k];
            let piece = &text[s.start..s.start + s.len];
            match self.ids.get(piece) {
                Some(&id) => out.push(id),
                // Merged symbols are always tokens, so this is a single character outside
                // the vocabulary: spelt as its UTF-8 bytes.
                None => {
                    for b in piece.bytes() {
                        match self.bytes[b as usize].or(self.unknown) {
                            Some(id) => out.push(id),
                            None => {
                                return Err(ModelError::Tokenizer(format!(
                                    "`{piece}` is not in the vocabulary, which has no <0x{b:02X}> byte token and no unknown token"
                                )))
                            }
                        }
                    }
                }
            }
            at = s.next;
        }
        Ok(())
    }

    /// Decodes ids to text: `▁` becomes a space, byte tokens become their bytes; control
    /// tokens are dropped when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::new();
        for &id in ids {
            let Some(text) = self.tokens.get(id as usize) else {
                return Err(ModelError::TokenOutOfRange { id, vocab: self.tokens.len() });
            };
            match self.types[id as usize] {
                TYPE_BYTE => match self.bytes.iter().position(|b| *b == Some(id)) {
                    Some(b) => bytes.push(b as u8),
                    None => bytes.extend_from_slice(text.as_bytes()),
                },
                TYPE_CONTROL | TYPE_UNKNOWN if skip_special => {}
                _ => {
                    for c in text.chars() {
                        let c = if c == SPACE { ' ' } else { c };
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Spm {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into(), "<ctrl>".into(), "  ".into()];
        let mut types = vec![TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL, TYPE_CONTROL, TYPE_USER_DEFINED];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(TYPE_BYTE);
        }
        for (t, _) in [("▁", 0), ("h", 0), ("e", 0), ("l", 0), ("o", 0), ("he", 0), ("ll", 0), ("hell", 0), ("hello", 0), ("▁hello", 0), ("lo", 0)] {
            tokens.push(t.into());
            types.push(1);
        }
        let mut scores = vec![0.0; tokens.len()];
        for (i, t) in tokens.iter().enumerate() {
            scores[i] = match t.as_str() {
                "he" => -1.0,
                "ll" => -2.0,
                "lo" => -1.5,
                "hell" => -3.0,
                "hello" => -4.0,
                "▁hello" => -5.0,
                _ => -10.0,
            };
        }
        Spm::new(tokens, Some(scores), Some(types), Some(0), false).unwrap()
    }

    fn id(v: &Spm, t: &str) -> u32 {
        v.token_to_id(t).unwrap()
    }

    #[test]
    fn merges_by_score_then_left() {
        let v = vocab();
        // "he" (−1) merges first, then "lo" (−1.5) beats "ll" (−2): h e l l o → he l lo; "hell"
        // can no longer form, and "hello" needs "hell"+"o".
        assert_eq!(v.encode("hello", true).unwrap(), vec![id(&v, "he"), id(&v, "l"), id(&v, "lo")]);
        assert_eq!(v.encode(" hello", true).unwrap(), vec![id(&v, "▁"), id(&v, "he"), id(&v, "l"), id(&v, "lo")]);
    }

    #[test]
    fn bytes_for_unknown_characters_and_specials_cut_out() {
        let v = vocab();
        let ids = v.encode("é<ctrl>h", true).unwrap();
        assert_eq!(ids, vec![5 + 0xC3, 5 + 0xA9, id(&v, "<ctrl>"), id(&v, "h")]);
        // Control tokens are text unless specials are parsed; user-defined ones always split.
        let plain = v.encode("<ctrl>", false).unwrap();
        assert!(!plain.contains(&id(&v, "<ctrl>")));
        assert_eq!(v.encode("h  e", false).unwrap(), vec![id(&v, "h"), id(&v, "  "), id(&v, "e")]);
        assert_eq!(v.decode(&ids, false).unwrap(), "é<ctrl>h");
        assert_eq!(v.decode(&ids, true).unwrap(), "éh");
    }

    #[test]
    fn mismatched_lengths_are_refused() {
        let err = Spm::new(vec!["a".into(), "b".into()], Some(vec![0.0]), None, None, false).unwrap_err();
        assert!(err.to_string().contains("2 tokens but 1 scores"), "{err}");
    }
}
