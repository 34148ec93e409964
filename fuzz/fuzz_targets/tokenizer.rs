//! Fuzzes the tokenizer of the tiny random model: encoding any text and decoding any ids.
//!
//! The first input byte picks the mode. Even: the rest is text (lossily UTF-8); encoding must
//! succeed, give in-vocabulary ids, and decode back to the same text (the vocabulary holds
//! every byte, so byte-level BPE is lossless). Odd: the rest is little-endian u16 ids, some
//! past the vocabulary; decoding must succeed exactly when every id is in range.

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

fuzz_target!(|data: &[u8]| {
    let tok = tokenizer();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let text = String::from_utf8_lossy(rest);
        let ids = tok.encode(&text).expect("encoding never fails");
        assert!(
            ids.iter().all(|&id| (id as usize) < tok.vocab_size()),
            "id out of range: {ids:?}"
        );
        let back = tok.decode(&ids, false).expect("decoding encoded ids");
        assert_eq!(back, text, "round trip changed the text");
        let _ = tok.decode(&ids, true).expect("decoding without specials");
        let prompt = tok.chat_prompt(&text, &text);
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
