//! Fuzzes the GGUF reader: any bytes must load or fail with an error, never panic.
//!
//! A file that loads is then run once (forward pass, tokenizer), since a garbled but
//! well-formed file can still carry odd hyper-parameters into the engine.

#![no_main]

use hawthorne_model::{LogitsAt, Model, RunOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_gguf_bytes(data) else {
        return;
    };
    let opts = RunOptions {
        logits: LogitsAt::All,
        ..RunOptions::default()
    };
    let _ = model.llama.forward(&[vec![0, 1, 2], vec![1]], &opts, None);
    let _ = model.llama.forward(&[vec![0, 1, 2, 0, 1, 2, 0, 1, 2]], &RunOptions::default(), None);
    if let Ok(ids) = model.tokenizer.encode("Hello <|im_end|> <start_of_turn> 123  \n\n") {
        let _ = model.tokenizer.decode(&ids, false);
    }
    let _ = model.chat_tokens("", "Hi");
});
