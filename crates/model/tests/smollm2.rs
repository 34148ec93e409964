//! SmolLM2-135M-Instruct end to end: loads the fetched GGUF and checks a greedy chat reply.

mod common;

use hawthorne_model::{GenerateOptions, StopReason};

#[test]
fn greedy_reply_names_paris() -> anyhow::Result<()> {
    let model = common::smollm2()?;
    let prompt = model.chat_tokens("", "What is the capital of France?")?;
    let out = model.generate(&prompt, &GenerateOptions { max_tokens: 24, ..Default::default() }, |_, _| {})?;
    eprintln!("reply: {:?} ({:?})", out.text, out.stop);
    assert!(out.text.contains("Paris"), "reply was {:?}", out.text);
    assert!(matches!(out.stop, StopReason::EndOfTurn | StopReason::MaxTokens));
    Ok(())
}
