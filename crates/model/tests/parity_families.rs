//! Each supported architecture against llama.cpp, without downloading its weights: a tiny
//! random-weight GGUF per family, written by `testing::tiny_family_gguf` in that family's
//! layout, loaded by both engines (`fixtures/families/generate.py` holds llama.cpp's logits).

use std::path::PathBuf;

use anyhow::{ensure, Context};
use hawthorne_model::gguf::Arch;
use hawthorne_model::{ComputeMode, HookPoint, LogitsAt, Model, NamesFilter, RunOptions};

/// Largest allowed |ours − llama.cpp| over every logit, relative to the largest |logit| of the
/// model. Both run F32 weights and an F32 KV cache, so only summation order (and llama.cpp's
/// f16 GELU table for Gemma) differs. Measured: 2.6e-6 (llama with `rope_freqs`), 2.5e-6
/// (qwen2), 2.3e-6 (qwen3), 2.3e-4 (gemma3).
const MAX_REL_DIFF: f32 = 1e-3;

#[derive(serde::Deserialize)]
struct Fixture {
    text: String,
    models: std::collections::BTreeMap<String, Reference>,
}

#[derive(serde::Deserialize)]
struct Reference {
    sha256: String,
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families")
}

fn load(arch: Arch) -> anyhow::Result<(Model, Reference)> {
    let text = std::fs::read_to_string(fixture_dir().join("logits.json"))?;
    let mut fixture: Fixture = serde_json::from_str(&text)?;
    let reference = fixture.models.remove(arch.name()).with_context(|| format!("no reference for {arch}"))?;
    let committed = std::fs::read(fixture_dir().join(format!("{}.gguf", arch.name())))?;
    let generated = hawthorne_model::testing::tiny_family_gguf(arch, 7)?;
    ensure!(
        committed == generated,
        "fixtures/families/{arch}.gguf differs from what the generator writes: rerun \
         `cargo run -p hawthorne-model --example family_fixtures` and the fixture script"
    );
    let model = Model::load(&generated, ComputeMode::Packed, |_| {})?;
    ensure!(model.sha256 == reference.sha256, "the reference logits come from another {arch} file");
    ensure!(model.tokenizer.encode(&fixture.text)? == reference.ids, "{arch}: tokenisation differs from llama.cpp's");
    Ok((model, reference))
}

fn check(arch: Arch) -> anyhow::Result<()> {
    let (model, reference) = load(arch)?;
    ensure!(model.config().family.arch == arch);
    let opts = RunOptions { logits: LogitsAt::All, ..Default::default() };
    let out = model.llama.forward(std::slice::from_ref(&reference.ids), &opts, None)?;
    let ours = out.logits.get(0)?.to_vec2::<f32>()?;
    ensure!(ours.len() == reference.logits.len());
    let scale = reference.logits.iter().flatten().fold(0f32, |m, x| m.max(x.abs()));
    let worst = ours
        .iter()
        .flatten()
        .zip(reference.logits.iter().flatten())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("{arch}: {} positions, max |Δlogit| {worst:.2e} of max |logit| {scale:.2} (relative {:.2e})", ours.len(), worst / scale);
    ensure!(worst / scale <= MAX_REL_DIFF, "{arch}: logits differ from llama.cpp's by {worst} (max |logit| {scale})");
    Ok(())
}

#[test]
fn llama_with_rope_freqs_matches_llama_cpp() -> anyhow::Result<()> {
    check(Arch::Llama)
}

#[test]
fn qwen2_matches_llama_cpp() -> anyhow::Result<()> {
    check(Arch::Qwen2)
}

#[test]
fn qwen3_matches_llama_cpp() -> anyhow::Result<()> {
    check(Arch::Qwen3)
}

#[test]
fn gemma3_matches_llama_cpp() -> anyhow::Result<()> {
    check(Arch::Gemma3)
}

/// The family-specific pieces are really used: without them the logits move.
#[test]
fn family_features_change_the_output() -> anyhow::Result<()> {
    let (model, reference) = load(Arch::Gemma3)?;
    let opts = RunOptions { logits: LogitsAt::All, ..Default::default() };
    let base = model.llama.forward(std::slice::from_ref(&reference.ids), &opts, None)?.logits;
    let mut no_window = model.llama.clone();
    no_window.cfg.family.sliding_window = None;
    let full = no_window.forward(std::slice::from_ref(&reference.ids), &opts, None)?.logits;
    let moved = (base - full)?.abs()?.max_all()?.to_scalar::<f32>()?;
    ensure!(moved > 1e-3, "the sliding window changed nothing ({moved})");

    let (llama, reference) = load(Arch::Llama)?;
    let base = llama.llama.forward(std::slice::from_ref(&reference.ids), &opts, None)?.logits;
    let mut plain = llama.llama.clone();
    plain.rope_freqs = None;
    let without = plain.forward(std::slice::from_ref(&reference.ids), &opts, None)?.logits;
    let moved = (base - without)?.abs()?.max_all()?.to_scalar::<f32>()?;
    ensure!(moved > 1e-3, "rope_freqs changed nothing ({moved})");
    Ok(())
}

/// Gemma's extra hooks exist under TransformerLens's names and equal the outputs they norm;
/// other families refuse them by name.
#[test]
fn post_norm_hooks_follow_transformer_lens() -> anyhow::Result<()> {
    let (gemma, reference) = load(Arch::Gemma3)?;
    let opts = RunOptions { cache: NamesFilter::parse("blocks.*.ln1_post.hook_normalized,blocks.2.hook_attn_out,blocks.2.ln2_post.hook_normalized,blocks.2.hook_mlp_out")?, ..Default::default() };
    let out = gemma.llama.forward(std::slice::from_ref(&reference.ids), &opts, None)?;
    ensure!(out.cache.len() == 6 + 3, "cached {} hooks", out.cache.len());
    let get = |h: HookPoint| out.cache.get(&h).with_context(|| format!("{h} not cached"));
    let same = |a: HookPoint, b: HookPoint| -> anyhow::Result<f32> { Ok((get(a)? - get(b)?)?.abs()?.max_all()?.to_scalar::<f32>()?) };
    ensure!(same(HookPoint::Ln1Post(2), HookPoint::AttnOut(2))? == 0.0);
    ensure!(same(HookPoint::Ln2Post(2), HookPoint::MlpOut(2))? == 0.0);
    ensure!("blocks.3.ln1_post.hook_normalized".parse::<HookPoint>()? == HookPoint::Ln1Post(3));

    let (qwen, reference) = load(Arch::Qwen2)?;
    let opts = RunOptions { cache: NamesFilter::hooks([HookPoint::Ln1Post(0)]), ..Default::default() };
    let err = qwen.llama.forward(std::slice::from_ref(&reference.ids), &opts, None).unwrap_err().to_string();
    ensure!(err.contains("blocks.0.ln1_post.hook_normalized") && err.contains("qwen2"), "{err}");
    Ok(())
}

/// The experiments' shortcuts give the plain pass's numbers on every family: incremental
/// decoding with a KV cache (past Gemma's sliding window), continuing from a block's residual
/// with steering, a patched pass after a cached prefix, a shared prefix computed once, and the
/// final block at the last position only.
#[test]
fn shortcuts_equal_the_full_pass_on_every_family() -> anyhow::Result<()> {
    use hawthorne_model::{FinalBlock, Intervention, KvCache, Positions};
    for arch in Arch::ALL {
        let (model, reference) = load(arch)?;
        let m = &model.llama;
        let cfg = model.config();
        let seq = reference.ids[..14].to_vec(); // longer than Gemma's window of 4
        let scale = 1e-4 * reference.logits.iter().flatten().fold(1f32, |a, x| a.max(x.abs()));
        let diff = |a: &candle_core::Tensor, b: &candle_core::Tensor| -> anyhow::Result<f32> {
            ensure!(a.dims() == b.dims(), "{arch}: shapes {:?} vs {:?}", a.dims(), b.dims());
            Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
        };
        let all = RunOptions { logits: LogitsAt::All, ..Default::default() };
        let full = m.forward(std::slice::from_ref(&seq), &all, None)?.logits; // [1, T, V]

        // KV cache: a prefill of 5, then one token at a time.
        let mut kv = KvCache::default();
        m.forward(&[seq[..5].to_vec()], &RunOptions::default(), Some(&mut kv))?;
        for p in 5..seq.len() {
            let out = m.forward(&[vec![seq[p]]], &RunOptions::default(), Some(&mut kv))?;
            let d = diff(&out.logits.get(0)?, &full.get(0)?.get(p)?)?;
            ensure!(d <= scale, "{arch}: decoded position {p} differs by {d}");
        }

        // forward_from with steering equals the full steered pass.
        let layer = cfg.n_layers / 2;
        let vector: Vec<f32> = (0..cfg.d_model).map(|j| (j as f32 * 0.37).sin()).collect();
        let steer = Intervention::Add { hook: HookPoint::ResidPost(layer), positions: Positions::All, vector: vector.clone() };
        let steered = m.forward(std::slice::from_ref(&seq), &RunOptions { interventions: vec![steer], logits: LogitsAt::All, ..Default::default() }, None)?;
        let base = m.forward(std::slice::from_ref(&seq), &RunOptions { cache: NamesFilter::hooks([HookPoint::ResidPost(layer)]), ..Default::default() }, None)?;
        let resid = base.cache.get(&HookPoint::ResidPost(layer)).context("cached")?;
        let resid = resid.broadcast_add(&candle_core::Tensor::from_vec(vector, cfg.d_model, resid.device())?)?;
        let from = m.forward_from(&resid, &[seq.len()], layer + 1, &all)?;
        ensure!(diff(&steered.logits, &from.logits)? <= scale, "{arch}: forward_from differs");
        ensure!(diff(&steered.logits, &full)? > scale, "{arch}: steering changed nothing");

        // A patched pass after a cached prefix equals the full patched pass.
        let p = 9;
        let value: Vec<f32> = (0..cfg.d_model).map(|j| (j as f32 * 0.11).cos()).collect();
        let patch = Intervention::Patch { hook: HookPoint::ResidPre(layer), row: 0, position: p, value: value.clone() };
        let patched = m.forward(std::slice::from_ref(&seq), &RunOptions { interventions: vec![patch], ..Default::default() }, None)?;
        let mut kv = KvCache::default();
        let clean = m.forward(std::slice::from_ref(&seq), &RunOptions { cache: NamesFilter::hooks([HookPoint::ResidPre(layer)]), ..Default::default() }, Some(&mut kv))?;
        let mut rows = clean.cache.get(&HookPoint::ResidPre(layer)).context("cached")?.get(0)?.narrow(0, p, seq.len() - p)?.to_vec2::<f32>()?;
        rows[0] = value;
        let suffix = candle_core::Tensor::from_vec(rows.concat(), (1, seq.len() - p, cfg.d_model), &candle_core::Device::Cpu)?;
        let mut prefix = kv.prefix(p, 1)?;
        let out = m.forward_from_cached(&suffix, layer, &mut prefix, &RunOptions::default())?;
        ensure!(diff(&patched.logits, &out.logits)? <= scale, "{arch}: the patched pass after a cached prefix differs");

        // A shared prefix computed once, and the final block at the last position only.
        let mut kv = KvCache::default();
        m.forward(&[seq[..6].to_vec()], &RunOptions::default(), Some(&mut kv))?;
        let suffixes = vec![seq[6..].to_vec(), seq[6..9].to_vec()];
        let shared = m.forward_after_prefix(&kv, &suffixes, &RunOptions { final_block: FinalBlock::LastOnly, ..Default::default() })?;
        let whole = m.forward(&[seq.clone(), seq[..9].to_vec()], &RunOptions { final_block: FinalBlock::All, ..Default::default() }, None)?;
        ensure!(diff(&shared.logits, &whole.logits)? <= scale, "{arch}: the shared-prefix pass differs");
        eprintln!("{arch}: KV cache, forward_from, cached-prefix patching, shared prefix and final-block trimming agree");
    }
    Ok(())
}
