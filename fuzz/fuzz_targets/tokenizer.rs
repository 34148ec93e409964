//! Fuzzes the tokenizers of the tiny random models: encoding any text and decoding any ids.
//!
//! The first input byte picks the vocabulary and the mode. Bit 2 clear: the byte-level BPE of
//! the tiny random Llama; set: the SentencePiece vocabulary (bytes and a few merges, with
//! scores) of the tiny random Gemma 3. Even: the rest is text (lossily UTF-8); encoding must
//! succeed, give in-vocabulary ids, and decode back to the same text (both vocabularies hold
//! every byte; SentencePiece turns a literal `▁` into a space, so texts holding one are only
//! checked for the spaces). Odd: the rest is little-endian u16 ids, some past the vocabulary;
//! decoding must succeed exactly when every id is in range.

#![no_main]

use std::sync::OnceLock;

use hawthorne_model::{Model, Tokenizer};
use libfuzzer_sys::fuzz_target;

fn tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let bytes = hawthorne_model::testing::tiny_random_gguf(0).expect("tiny model bytes");
        Model::from_gguf_bytes(&bytes)
            .expect("tiny model loads")
            .tokenizer
    })
}

fn sentencepiece() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let bytes = hawthorne_model::testing::tiny_family_gguf(hawthorne_model::Arch::Gemma3, 7).expect("tiny gemma bytes");
        Model::from_gguf_bytes(&bytes)
            .expect("tiny gemma loads")
            .tokenizer
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tok = if mode & 4 == 0 { tokenizer() } else { sentencepiece() };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let ids = tok.encode_text(&text).expect("encoding never fails");
        assert!(
            ids.iter().all(|&id| (id as usize) < tok.vocab_size()),
            "id out of range: {ids:?}"
        );
        let back = tok.decode(&ids, false).expect("decoding encoded ids");
        match mode & 4 {
            0 => assert_eq!(back, text, "round trip changed the text"),
            _ => assert_eq!(back, text.replace('\u{2581}', " "), "round trip changed the text"),
        }
        let _ = tok.decode(&ids, true).expect("decoding without specials");
        let prompt = tok.chat_prompt(&text, &text).expect("both files have a format the engine applies");
        let _ = tok.encode(&prompt).expect("encoding a chat prompt");
    } else {
        let ids: Vec<u32> = rest
            .chunks_exact(2)
            .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])) % 300)
            .collect();
        let in_range = ids.iter().all(|&id| (id as usize) < tok.vocab_size());
        let skip = mode & 2 != 0;
        match tok.decode(&ids, skip) {
            Ok(_) => assert!(in_range, "decoded out-of-range ids {ids:?}"),
            Err(e) => assert!(!in_range, "failed on in-range ids {ids:?}: {e}"),
        }
    }
});
