//! Parity with llama.cpp on Gemma 3 270M: tokenizer ids, top-1 next tokens and greedy text.
//!
//! The fixtures come from `fixtures/gemma3/generate.py` (llama-cpp-python on the same file);
//! this test only reads them. Two references, one per compute mode:
//! - the f32 mode is held to llama.cpp on an F32 copy of the file with an F32 KV cache: the same
//!   values, so only summation order differs (measured: logits within 0.013, mean 0.0014);
//! - the packed mode to llama.cpp on the file as it is (Q5_0, Q4_K, Q6_K, Q8_0). Both engines
//!   round activations to 8 bits inside the quantised products, but not identically, which
//!   moves logits by about 0.2 on average: argmaxes then differ at near-ties only.

mod common;

use std::path::PathBuf;

use anyhow::{ensure, Context};
use hawthorne_model::model::argmax;
use hawthorne_model::{GenerateOptions, LogitsAt, RunOptions, StopReason};

/// Smallest allowed share of positions where the f32 mode's argmax equals llama.cpp's on F32
/// weights.
const MIN_TOP1_AGREEMENT: f64 = 0.98;

/// The same for the packed mode against llama.cpp on the file. Measured 164/170 with the
/// first kernels, 159/170 = 93.5% since the panels (`panel.rs`: exact integer sums for Q5_0,
/// Q4_K and Q6_K), although those moved the engine closer to llama.cpp: mean |Δlogit| over
/// six prompts (58 positions; `fixtures/gemma3/logit_gap.py`) fell from 0.242 to 0.224. Every
/// disagreement is a near-tie (checked below), where the count moves by a few either way with
/// any change of rounding.
const MIN_TOP1_AGREEMENT_PACKED: f64 = 0.92;

/// Where the argmaxes differ, llama.cpp's own top-1/top-2 margin must be below this (a near-tie).
const MAX_DISAGREEMENT_MARGIN: f32 = 1.0;

/// Fewest leading greedy tokens the packed mode must share with llama.cpp on each prompt: the
/// first; after that a reply may part at a near-tie (since the panels, the haiku prompt parts
/// at its second token, ’ against ', 0.127 apart).
const MIN_GREEDY_PREFIX: usize = 1;

/// Where the greedy replies part, our logits for the two tokens must be this close.
const MAX_GREEDY_SPLIT_MARGIN: f32 = 0.5;

#[derive(serde::Deserialize)]
struct Tokens {
    model_sha256: String,
    cases: Vec<TokenCase>,
}

#[derive(serde::Deserialize)]
struct TokenCase {
    text: String,
    ids: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Top1 {
    model_sha256: String,
    prompts: Vec<Top1Prompt>,
}

#[derive(serde::Deserialize)]
struct Top1Prompt {
    text: String,
    ids: Vec<u32>,
    top1: Vec<u32>,
    margin: Vec<f32>,
    top1_packed: Vec<u32>,
    margin_packed: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct Greedy {
    model_sha256: String,
    cases: Vec<GreedyCase>,
}

#[derive(serde::Deserialize)]
struct GreedyCase {
    text: String,
    ids: Vec<u32>,
    greedy: Vec<u32>,
    reply: String,
}

fn read_fixture<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gemma3").join(name);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

fn model(sha256: &str) -> anyhow::Result<&'static hawthorne_model::Model> {
    let model = common::gemma3()?;
    ensure!(model.sha256 == sha256, "fixtures come from a GGUF with sha256 {sha256}, the model file has {}", model.sha256);
    Ok(model)
}

#[test]
fn gemma3_is_read_as_configured() -> anyhow::Result<()> {
    let fixture: Tokens = read_fixture("tokens.json")?;
    let cfg = model(&fixture.model_sha256)?.config();
    ensure!((cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_mlp) == (18, 640, 4, 1, 256, 2048), "{cfg:?}");
    ensure!(cfg.d_vocab == 262_144 && cfg.family.sliding_window == Some(512), "{cfg:?}");
    let local: Vec<usize> = (0..18).filter(|&i| !cfg.is_local(i)).collect();
    ensure!(local == [5, 11, 17], "global blocks are {local:?}");
    Ok(())
}

#[test]
fn tokenizer_matches_llama_cpp() -> anyhow::Result<()> {
    let fixture: Tokens = read_fixture("tokens.json")?;
    let tok = &model(&fixture.model_sha256)?.tokenizer;
    ensure!(fixture.cases.len() >= 80, "only {} strings", fixture.cases.len());
    let mut bad = 0;
    for case in &fixture.cases {
        let ours = tok.encode(&case.text)?;
        if ours != case.ids {
            bad += 1;
            eprintln!("MISMATCH {:?}\n  llama.cpp {:?}\n  ours      {:?}", case.text, case.ids, ours);
        }
    }
    eprintln!("tokenizer: {}/{} strings match llama.cpp", fixture.cases.len() - bad, fixture.cases.len());
    ensure!(bad == 0, "{bad} of {} strings tokenize differently from llama.cpp", fixture.cases.len());
    Ok(())
}

/// Share of positions where `model`'s argmax equals the reference's; every disagreement must
/// be a near-tie for the reference.
fn agreement(model: &hawthorne_model::Model, fixture: &Top1, packed: bool) -> anyhow::Result<f64> {
    let opts = RunOptions { logits: LogitsAt::All, ..Default::default() };
    let (mut agree, mut total) = (0usize, 0usize);
    for (p, prompt) in fixture.prompts.iter().enumerate() {
        let (top1, margin) = match packed {
            true => (&prompt.top1_packed, &prompt.margin_packed),
            false => (&prompt.top1, &prompt.margin),
        };
        ensure!(model.tokenizer.encode(&prompt.text)? == prompt.ids, "prompt {p} tokenizes differently");
        let out = model.llama.forward(std::slice::from_ref(&prompt.ids), &opts, None)?;
        let logits = out.logits.get(0)?.to_vec2::<f32>()?; // [T, V]
        for (pos, row) in logits.iter().enumerate() {
            let ours = argmax(row);
            total += 1;
            if ours == top1[pos] {
                agree += 1;
                continue;
            }
            eprintln!(
                "prompt {p} position {pos}: ours {ours} ({:.3}), llama.cpp {} ({:.3}), llama.cpp's margin {:.3}",
                row[ours as usize], top1[pos], row[top1[pos] as usize], margin[pos]
            );
            ensure!(
                margin[pos] < MAX_DISAGREEMENT_MARGIN,
                "prompt {p} position {pos}: llama.cpp's argmax leads by {:.3}, not a near-tie",
                margin[pos]
            );
        }
    }
    ensure!(total >= 150, "only {total} positions");
    let rate = agree as f64 / total as f64;
    eprintln!("top-1 agreement ({}): {agree}/{total} = {:.2}%", if packed { "packed" } else { "f32" }, 100.0 * rate);
    Ok(rate)
}

#[test]
fn f32_mode_top1_agrees_with_llama_cpp_on_f32_weights() -> anyhow::Result<()> {
    let fixture: Top1 = read_fixture("top1.json")?;
    model(&fixture.model_sha256)?;
    let rate = agreement(common::gemma3_f32()?, &fixture, false)?;
    ensure!(rate >= MIN_TOP1_AGREEMENT, "top-1 agreement {:.2}% is below {:.0}%", 100.0 * rate, 100.0 * MIN_TOP1_AGREEMENT);
    Ok(())
}

#[test]
fn packed_mode_top1_agrees_with_llama_cpp_on_the_file() -> anyhow::Result<()> {
    let fixture: Top1 = read_fixture("top1.json")?;
    let rate = agreement(model(&fixture.model_sha256)?, &fixture, true)?;
    ensure!(
        rate >= MIN_TOP1_AGREEMENT_PACKED,
        "top-1 agreement {:.2}% is below {:.0}%",
        100.0 * rate,
        100.0 * MIN_TOP1_AGREEMENT_PACKED
    );
    Ok(())
}

#[test]
fn greedy_text_matches_llama_cpp() -> anyhow::Result<()> {
    let fixture: Greedy = read_fixture("greedy.json")?;
    let model = model(&fixture.model_sha256)?;
    for case in &fixture.cases {
        ensure!(model.tokenizer.encode(&case.text)? == case.ids, "{:?} tokenizes differently", case.text);
        let opts = GenerateOptions { max_tokens: case.greedy.len(), ..GenerateOptions::default() };
        let gen = model.generate(&case.ids, &opts, |_, _| {})?;
        let shared = gen.tokens.iter().zip(&case.greedy).take_while(|(a, b)| a == b).count();
        eprintln!("{:?}: {shared}/{} greedy tokens shared; llama.cpp {:?}, ours {:?}", case.text, case.greedy.len(), case.reply, gen.text);
        if shared == case.greedy.len() || (gen.stop == StopReason::EndOfTurn && shared == gen.tokens.len()) {
            continue;
        }
        ensure!(shared >= MIN_GREEDY_PREFIX, "only {shared} leading greedy tokens equal llama.cpp's on {:?}", case.text);
        // Where the replies part, the two tokens must be a near-tie for us.
        let mut seq = case.ids.clone();
        seq.extend(&case.greedy[..shared]);
        let out = model.llama.forward(&[seq], &RunOptions::default(), None)?;
        let row = out.logits.get(0)?.to_vec1::<f32>()?;
        let (ours, theirs) = (gen.tokens[shared], case.greedy[shared]);
        let gap = row[ours as usize] - row[theirs as usize];
        eprintln!("  parted at token {shared}: ours {ours} leads llama.cpp's {theirs} by {gap:.3}");
        ensure!(gap < MAX_GREEDY_SPLIT_MARGIN, "at token {shared} our choice leads llama.cpp's by {gap:.3}, not a near-tie");
    }
    Ok(())
}
