//! SmolLM2-135M-Instruct end to end: loads the fetched GGUF and checks a greedy chat reply.

mod common;

use hawthorne_model::{GenerateOptions, StopReason};

/// In f32 mode. (The packed mode's greedy reply to this prompt is "L'Étoile, la Marseillaise…":
/// 8-bit activations flip the first token, a near-tie; see the llama.cpp parity tests.)
#[test]
fn greedy_reply_names_paris() -> anyhow::Result<()> {
    let model = common::smollm2_f32()?;
    let prompt = model.chat_tokens("", "What is the capital of France?")?;
    let out = model.generate(&prompt, &GenerateOptions { max_tokens: 24, ..Default::default() }, |_, _| {})?;
    eprintln!("reply: {:?} ({:?})", out.text, out.stop);
    assert!(out.text.contains("Paris"), "reply was {:?}", out.text);
    assert!(matches!(out.stop, StopReason::EndOfTurn | StopReason::MaxTokens));
    Ok(())
}

/// Decoding with the KV cache (one row per step through the packed kernels) picks the tokens a
/// full forward pass over the same text picks at each position.
#[test]
fn packed_decode_with_kv_cache_agrees_with_full_passes() -> anyhow::Result<()> {
    use hawthorne_model::model::argmax;
    use hawthorne_model::{KvCache, LogitsAt, RunOptions};
    let model = common::smollm2()?;
    let prompt = model.chat_tokens("", "What is the capital of France?")?;
    let out = model.generate(&prompt, &GenerateOptions { max_tokens: 12, ..Default::default() }, |_, _| {})?;
    let mut all = prompt.clone();
    all.extend(&out.tokens);
    let full = model.llama.forward(std::slice::from_ref(&all), &RunOptions { logits: LogitsAt::All, ..Default::default() }, None)?;
    let rows = full.logits.get(0)?.to_vec2::<f32>()?;
    let picks: Vec<u32> = (prompt.len() - 1..all.len() - 1).map(|p| argmax(&rows[p])).collect();
    eprintln!("decoded {:?}\nfull    {:?}", out.tokens, picks);
    let mut kv = KvCache::default();
    let first = model.llama.forward(std::slice::from_ref(&prompt), &RunOptions::default(), Some(&mut kv))?;
    let mut step_logits = vec![first.logits.get(0)?.to_vec1::<f32>()?];
    for &t in &out.tokens[..out.tokens.len() - 1] {
        let o = model.llama.forward(&[vec![t]], &RunOptions::default(), Some(&mut kv))?;
        step_logits.push(o.logits.get(0)?.to_vec1::<f32>()?);
    }
    for (i, l) in step_logits.iter().enumerate() {
        let p = prompt.len() - 1 + i;
        let diff = l.iter().zip(&rows[p]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        eprintln!("position {p}: max |cached − full| logit {diff:.4}");
    }
    anyhow::ensure!(picks == out.tokens, "cached decoding picked {:?}, full passes {:?}", out.tokens, picks);
    Ok(())
}
