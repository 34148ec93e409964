//! Parity with llama.cpp on SmolLM2: tokenizer ids and top-1 next-token predictions.
//!
//! The fixtures are produced by `fixtures/llama_cpp/generate.py` (llama-cpp-python); this test
//! only reads them, so it needs no Python.
//!
//! The asserted top-1 reference is llama.cpp run on an F32 copy of the GGUF holding the same
//! dequantised weights our engine uses. llama.cpp on the Q4_1 file itself also rounds the
//! activations to 8 bits inside its quantised matmuls, which flips the argmax at near-ties
//! (a float64 numpy pass agrees with it no better than we do); that run is printed, not asserted.

mod common;

use std::path::PathBuf;

use anyhow::{ensure, Context};
use hawthorne_model::model::argmax;
use hawthorne_model::{LogitsAt, RunOptions};

/// Smallest allowed share of positions where our argmax equals llama.cpp's.
const MIN_TOP1_AGREEMENT: f64 = 0.98;

#[derive(serde::Deserialize)]
struct TokenFixture {
    model_sha256: String,
    cases: Vec<TokenCase>,
}

#[derive(serde::Deserialize)]
struct TokenCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Top1Fixture {
    model_sha256: String,
    prompts: Vec<Top1Prompt>,
}

#[derive(serde::Deserialize)]
struct Top1Prompt {
    text: String,
    ids: Vec<u32>,
    /// llama.cpp's argmax next token after each position (F32 weights).
    top1: Vec<u32>,
    /// llama.cpp's top-1 minus top-2 logit at each position (F32 weights).
    margin: Vec<f64>,
    /// The same from llama.cpp on the Q4_1 file as it is (8-bit activations in its matmuls).
    top1_q4_1: Vec<u32>,
    margin_q4_1: Vec<f64>,
}

/// Agreement of our argmaxes with one llama.cpp run, printing every disagreement.
fn count_agreement(
    tok: &hawthorne_model::Tokenizer,
    label: &str,
    p: usize,
    logits: &[Vec<f32>],
    top1: &[u32],
    margin: &[f64],
) -> usize {
    let mut agree = 0;
    for (pos, row) in logits.iter().enumerate() {
        let (ours, theirs) = (argmax(row), top1[pos]);
        if ours == theirs {
            agree += 1;
            continue;
        }
        eprintln!(
            "[{label}] prompt {p} position {pos}: ours {ours} {:?}, llama.cpp {theirs} {:?} \
             (llama.cpp top-2 margin {:.4}, our logit gap {:.4})",
            tok.id_to_token(ours),
            tok.id_to_token(theirs),
            margin[pos],
            row[ours as usize] - row[theirs as usize],
        );
    }
    agree
}

fn read_fixture<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama_cpp")
        .join(name);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

fn check_model(sha256: &str) -> anyhow::Result<&'static hawthorne_model::Model> {
    let model = common::smollm2()?;
    ensure!(
        model.sha256 == sha256,
        "fixtures were generated from a GGUF with sha256 {sha256}, but the model file has {}",
        model.sha256
    );
    Ok(model)
}

#[test]
fn tokenizer_matches_llama_cpp() -> anyhow::Result<()> {
    let fixture: TokenFixture = read_fixture("tokens.json")?;
    let model = check_model(&fixture.model_sha256)?;
    let tok = &model.tokenizer;
    let pieces = |ids: &[u32]| -> Vec<String> {
        ids.iter()
            .map(|&id| tok.id_to_token(id).unwrap_or_else(|| format!("<{id}?>")))
            .collect()
    };
    let mut mismatches = 0;
    for case in &fixture.cases {
        let ours = tok.encode(&case.text)?;
        if ours != case.ids {
            mismatches += 1;
            eprintln!("MISMATCH for {:?}", case.text);
            eprintln!("  llama.cpp: {:?} {:?}", case.ids, pieces(&case.ids));
            eprintln!("  ours:      {:?} {:?}", ours, pieces(&ours));
        }
    }
    let total = fixture.cases.len();
    eprintln!(
        "tokenizer: {}/{total} strings match llama.cpp exactly",
        total - mismatches
    );
    ensure!(
        mismatches == 0,
        "{mismatches} of {total} strings tokenize differently from llama.cpp"
    );
    Ok(())
}

#[test]
fn top1_agrees_with_llama_cpp() -> anyhow::Result<()> {
    let fixture: Top1Fixture = read_fixture("top1.json")?;
    let model = check_model(&fixture.model_sha256)?;
    let tok = &model.tokenizer;
    let opts = RunOptions {
        logits: LogitsAt::All,
        ..Default::default()
    };
    let (mut agree, mut agree_q, mut total) = (0usize, 0usize, 0usize);
    for (p, prompt) in fixture.prompts.iter().enumerate() {
        let n = prompt.ids.len();
        ensure!(
            [
                prompt.top1.len(),
                prompt.margin.len(),
                prompt.top1_q4_1.len(),
                prompt.margin_q4_1.len()
            ] == [n; 4]
        );
        let out = model.llama.forward(std::slice::from_ref(&prompt.ids), &opts, None)?;
        let logits = out.logits.get(0)?.to_vec2::<f32>()?; // [T, V]
        let a = count_agreement(tok, "f32", p, &logits, &prompt.top1, &prompt.margin);
        let a_q = count_agreement(
            tok,
            "q4_1",
            p,
            &logits,
            &prompt.top1_q4_1,
            &prompt.margin_q4_1,
        );
        eprintln!(
            "prompt {p} ({n} tokens, {:?}…): top-1 agreement {a}/{n} (Q4_1 llama.cpp: {a_q}/{n})",
            prompt.text.chars().take(48).collect::<String>(),
        );
        (agree, agree_q, total) = (agree + a, agree_q + a_q, total + n);
    }
    eprintln!(
        "top-1 agreement with llama.cpp on the Q4_1 file (8-bit activations; not asserted): \
         {agree_q}/{total} = {:.2}%",
        100.0 * agree_q as f64 / total as f64
    );
    let rate = agree as f64 / total as f64;
    eprintln!(
        "top-1 agreement with llama.cpp (F32 weights): {agree}/{total} = {:.2}%",
        100.0 * rate
    );
    ensure!(
        rate >= MIN_TOP1_AGREEMENT,
        "top-1 agreement {:.2}% is below {:.0}%",
        100.0 * rate,
        100.0 * MIN_TOP1_AGREEMENT
    );
    Ok(())
}
