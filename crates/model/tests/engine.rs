//! Engine behaviour on the tiny random model: batching, KV cache, hooks, interventions and generation.
//!
//! Everything here runs on `testing::tiny_random_gguf`, so it needs no model download and
//! finishes in a few seconds.

// Native: the wasm build is checked against native numbers by `tests/wasm.rs`.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};
use candle_core::{IndexOp, Tensor};
use hawthorne_model::testing::tiny_random_gguf;
use hawthorne_model::{
    FinalBlock, ForwardOutput, GenerateOptions, Generator, HookPoint, Intervention, KvCache, LogitsAt, Model,
    ModelError, NamesFilter, Positions, RunOptions, Sampling,
};

/// Largest difference tolerated between two computations that should agree exactly in maths.
const TOL: f32 = 1e-5;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let bytes = tiny_random_gguf(7).expect("tiny model bytes");
        Model::from_gguf_bytes(&bytes).expect("tiny model loads")
    })
}

/// Deterministic pseudo-random token ids in range (no RNG crate needed in the test).
fn tokens(len: usize, salt: u32) -> Vec<u32> {
    let vocab = model().config().d_vocab as u32;
    (0..len as u32)
        .map(|i| (i * 37 + salt * 101 + 11) % vocab)
        .collect()
}

fn every_hook() -> NamesFilter {
    NamesFilter::hooks(HookPoint::all(model().config().n_layers))
}

fn run(seqs: &[Vec<u32>], opts: &RunOptions) -> Result<ForwardOutput> {
    Ok(model().llama.forward(seqs, opts, None)?)
}

fn all_logits(cache: NamesFilter) -> RunOptions {
    RunOptions {
        cache,
        logits: LogitsAt::All,
        ..RunOptions::default()
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    ensure!(
        a.dims() == b.dims(),
        "shapes differ: {:?} vs {:?}",
        a.dims(),
        b.dims()
    );
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

fn hook(out: &ForwardOutput, h: HookPoint) -> Result<&Tensor> {
    out.cache
        .get(&h)
        .with_context(|| format!("{h} was not cached"))
}

#[test]
fn batched_prefill_equals_running_each_prompt_alone() -> Result<()> {
    let prompts = vec![tokens(5, 1), tokens(12, 2), tokens(1, 3), tokens(9, 4)];
    let opts = all_logits(every_hook());
    let batch = run(&prompts, &opts)?;
    assert_eq!(batch.lengths, vec![5, 12, 1, 9]);
    let t_max = 12;
    for (r, p) in prompts.iter().enumerate() {
        let len = p.len();
        let alone = run(std::slice::from_ref(p), &opts)?;
        let d = max_abs_diff(&batch.logits.i((r, ..len))?, &alone.logits.i(0)?)?;
        assert!(d <= TOL, "row {r}: logits differ by {d}");
        for h in HookPoint::all(model().config().n_layers) {
            let (b, a) = (hook(&batch, h)?, hook(&alone, h)?);
            let d = match h {
                HookPoint::AttnPattern(_) => {
                    // Keys past the row's length are padding: they must get no attention.
                    let pad = b.i((r, .., ..len, len..))?;
                    if len < t_max {
                        let leak = pad.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
                        assert_eq!(leak, 0.0, "row {r}: {h} attends to padding");
                    }
                    max_abs_diff(&b.i((r, .., ..len, ..len))?, &a.i(0)?)?
                }
                _ => max_abs_diff(&b.i((r, ..len))?, &a.i(0)?)?,
            };
            assert!(d <= TOL, "row {r}: {h} differs by {d}");
        }
    }
    Ok(())
}

#[test]
fn kv_cache_decoding_equals_a_full_forward_pass() -> Result<()> {
    let seqs = vec![tokens(11, 5), tokens(11, 6)];
    let hooks = NamesFilter::parse("blocks.*.hook_resid_post,ln_final.hook_normalized")?;
    let full = run(&seqs, &all_logits(hooks.clone()))?;

    // A prefill of 4 tokens, a chunk of 3, then one token at a time.
    let mut kv = KvCache::default();
    let mut start = 0;
    for end in [4, 7, 8, 9, 10, 11] {
        let chunk: Vec<Vec<u32>> = seqs.iter().map(|s| s[start..end].to_vec()).collect();
        let out = model()
            .llama
            .forward(&chunk, &all_logits(hooks.clone()), Some(&mut kv))?;
        assert_eq!(kv.len(), end);
        let d = max_abs_diff(&out.logits, &full.logits.i((.., start..end))?)?;
        assert!(d <= TOL, "positions {start}..{end}: logits differ by {d}");
        for h in hooks.resolve(model().config().n_layers)? {
            let d = max_abs_diff(hook(&out, h)?, &hook(&full, h)?.i((.., start..end))?)?;
            assert!(d <= TOL, "positions {start}..{end}: {h} differs by {d}");
        }
        start = end;
    }

    // Last-position logits while decoding one token at a time, as the generator does.
    let mut kv = KvCache::default();
    let last = RunOptions::default();
    model()
        .llama
        .forward(&[seqs[0][..6].to_vec()], &last, Some(&mut kv))?;
    for (p, &tok) in seqs[0].iter().enumerate().skip(6) {
        let out = model().llama.forward(&[vec![tok]], &last, Some(&mut kv))?;
        let d = max_abs_diff(&out.logits.i(0)?, &full.logits.i((0, p))?)?;
        assert!(d <= TOL, "decoded position {p}: logits differ by {d}");
    }
    Ok(())
}

#[test]
fn names_filter_caches_only_requested_hooks() -> Result<()> {
    let seqs = vec![tokens(6, 7)];
    let n_layers = model().config().n_layers;

    let out = run(
        &seqs,
        &RunOptions {
            cache: NamesFilter::none(),
            ..RunOptions::default()
        },
    )?;
    assert!(
        out.cache.is_empty(),
        "empty filter cached {:?}",
        out.cache.hooks().collect::<Vec<_>>()
    );

    let filter = NamesFilter::parse("blocks.1.hook_resid_post, hook_embed")?;
    let out = run(
        &seqs,
        &RunOptions {
            cache: filter,
            ..RunOptions::default()
        },
    )?;
    let got: Vec<HookPoint> = out.cache.hooks().copied().collect();
    assert_eq!(got, vec![HookPoint::Embed, HookPoint::ResidPost(1)]);

    let filter = NamesFilter::parse("blocks.*.attn.hook_pattern")?;
    let out = run(
        &seqs,
        &RunOptions {
            cache: filter,
            ..RunOptions::default()
        },
    )?;
    let got: Vec<HookPoint> = out.cache.hooks().copied().collect();
    assert_eq!(
        got,
        (0..n_layers)
            .map(HookPoint::AttnPattern)
            .collect::<Vec<_>>()
    );

    let out = run(
        &seqs,
        &RunOptions {
            cache: every_hook(),
            ..RunOptions::default()
        },
    )?;
    assert_eq!(out.cache.len(), 2 + 6 * n_layers);
    Ok(())
}

#[test]
fn hook_shapes_are_as_documented_and_patterns_are_causal_distributions() -> Result<()> {
    let cfg = model().config().clone();
    let seqs = vec![tokens(7, 8), tokens(4, 9)];
    let out = run(&seqs, &all_logits(every_hook()))?;
    let (b, t) = (2, 7);
    assert_eq!(out.logits.dims(), &[b, t, cfg.d_vocab]);
    for h in HookPoint::all(cfg.n_layers) {
        let x = hook(&out, h)?;
        match h {
            HookPoint::AttnPattern(_) => {
                assert_eq!(x.dims(), &[b, cfg.n_heads, t, t], "{h}");
                let p: Vec<f32> = x.flatten_all()?.to_vec1()?;
                for (row, seq) in seqs.iter().enumerate() {
                    let len = seq.len();
                    for head in 0..cfg.n_heads {
                        for q in 0..len {
                            let base = ((row * cfg.n_heads + head) * t + q) * t;
                            let probs = &p[base..base + t];
                            let sum: f32 = probs.iter().sum();
                            assert!(
                                (sum - 1.0).abs() <= 1e-5,
                                "{h} row {row} head {head} query {q}: sums to {sum}"
                            );
                            for (k, &w) in probs.iter().enumerate().skip(q + 1) {
                                assert_eq!(w, 0.0, "{h} row {row} head {head}: query {q} attends to future key {k}");
                            }
                        }
                    }
                }
            }
            _ => assert_eq!(x.dims(), &[b, t, cfg.d_model], "{h}"),
        }
    }
    let last = run(&seqs, &RunOptions::default())?;
    assert_eq!(last.logits.dims(), &[b, cfg.d_vocab]);
    Ok(())
}

#[test]
fn steering_at_resid_post_changes_logits_exactly_like_adding_by_hand() -> Result<()> {
    let d = model().config().d_model;
    let seqs = vec![tokens(8, 10), tokens(5, 11)];
    let at = HookPoint::ResidPost(0);
    let vector: Vec<f32> = (0..d).map(|i| ((i as f32) * 0.37).sin()).collect();
    let base = run(
        &seqs,
        &all_logits(NamesFilter::hooks([at, HookPoint::ResidPre(1)])),
    )?;
    let steer = Intervention::Add {
        hook: at,
        positions: Positions::All,
        vector: vector.clone(),
    };
    let steered = run(
        &seqs,
        &RunOptions {
            interventions: vec![steer],
            ..all_logits(NamesFilter::hooks([at, HookPoint::ResidPre(1)]))
        },
    )?;

    let change = max_abs_diff(&steered.logits, &base.logits)?;
    assert!(
        change > 1e-2,
        "steering changed the logits by only {change}"
    );

    // The hook records the steered value, and the next block reads it.
    let v = Tensor::from_slice(&vector, d, model().llama.device())?;
    let by_hand = hook(&base, at)?.broadcast_add(&v)?;
    assert!(max_abs_diff(hook(&steered, at)?, &by_hand)? <= TOL);
    assert!(max_abs_diff(hook(&steered, HookPoint::ResidPre(1))?, &by_hand)? <= TOL);

    // Writing baseline + vector into every position by hand gives the same logits.
    let mut patches = Vec::new();
    for row in 0..seqs.len() {
        for position in 0..seqs[0].len() {
            let value: Vec<f32> = by_hand.i((row, position))?.to_vec1()?;
            patches.push(Intervention::Patch {
                hook: at,
                row,
                position,
                value,
            });
        }
    }
    let patched = run(
        &seqs,
        &RunOptions {
            interventions: patches,
            ..all_logits(NamesFilter::none())
        },
    )?;
    for (row, s) in seqs.iter().enumerate() {
        let len = s.len();
        let diff = max_abs_diff(
            &patched.logits.i((row, ..len))?,
            &steered.logits.i((row, ..len))?,
        )?;
        assert!(
            diff <= TOL,
            "row {row}: steering and adding by hand differ by {diff}"
        );
    }
    Ok(())
}

#[test]
fn patching_a_runs_own_activation_back_is_a_no_op() -> Result<()> {
    let seqs = vec![tokens(6, 12), tokens(6, 13)];
    let hooks = [
        HookPoint::ResidMid(1),
        HookPoint::AttnPattern(0),
        HookPoint::Embed,
    ];
    let base = run(&seqs, &all_logits(NamesFilter::hooks(hooks)))?;
    for h in hooks {
        let cached = hook(&base, h)?;
        let mut patches = Vec::new();
        for row in 0..2 {
            for position in 0..6 {
                let slice = match h {
                    HookPoint::AttnPattern(_) => cached.i((row, .., position))?, // [H, T_key]
                    _ => cached.i((row, position))?,
                };
                let value: Vec<f32> = slice.flatten_all()?.to_vec1()?;
                patches.push(Intervention::Patch {
                    hook: h,
                    row,
                    position,
                    value,
                });
            }
        }
        let out = run(
            &seqs,
            &RunOptions {
                interventions: patches,
                ..all_logits(NamesFilter::none())
            },
        )?;
        let d = max_abs_diff(&out.logits, &base.logits)?;
        assert!(
            d <= TOL,
            "patching {h} with its own values changed the logits by {d}"
        );
    }
    Ok(())
}

#[test]
fn patching_position_p_leaves_earlier_positions_alone() -> Result<()> {
    let d = model().config().d_model;
    let seqs = vec![tokens(9, 14)];
    let base = run(&seqs, &all_logits(NamesFilter::none()))?;
    for h in [
        HookPoint::ResidPre(0),
        HookPoint::ResidPost(0),
        HookPoint::AttnOut(1),
    ] {
        for p in [0, 4, 8] {
            let value: Vec<f32> = (0..d)
                .map(|i| (i as f32 * 0.71 + p as f32).cos() * 3.0)
                .collect();
            let iv = Intervention::Patch {
                hook: h,
                row: 0,
                position: p,
                value,
            };
            let out = run(
                &seqs,
                &RunOptions {
                    interventions: vec![iv],
                    ..all_logits(NamesFilter::none())
                },
            )?;
            if p > 0 {
                let before = max_abs_diff(&out.logits.i((.., ..p))?, &base.logits.i((.., ..p))?)?;
                assert!(
                    before <= TOL,
                    "{h} patched at {p} changed earlier logits by {before}"
                );
            }
            let at = max_abs_diff(&out.logits.i((.., p))?, &base.logits.i((.., p))?)?;
            assert!(
                at > 1e-3,
                "{h} patched at {p} did not change the logits there ({at})"
            );
        }
    }
    Ok(())
}

#[test]
fn seeded_generation_is_reproducible() -> Result<()> {
    let m = model();
    let prompt = m.chat_tokens("This chat is logged.", "Say something.")?;
    let opts = |seed| GenerateOptions {
        max_tokens: 24,
        sampling: Sampling::Seeded {
            seed,
            temperature: 4.0,
            top_p: 1.0,
        },
        interventions: Vec::new(),
    };
    let a = m.generate(&prompt, &opts(3), |_, _| {})?;
    let b = m.generate(&prompt, &opts(3), |_, _| {})?;
    assert_eq!(a, b);
    assert!(!a.tokens.is_empty(), "generation stopped at once: {a:?}");
    let c = m.generate(&prompt, &opts(4), |_, _| {})?;
    assert_ne!(a.tokens, c.tokens, "seeds 3 and 4 gave the same tokens");

    // Stepping a generator by hand gives the same result as `generate`.
    let mut g = Generator::new(m, &prompt, &opts(3))?;
    while g.step()?.is_some() {}
    assert_eq!(g.finish(), a);

    // Greedy generation follows the argmax of a full forward pass.
    let greedy = m.generate(
        &prompt,
        &GenerateOptions {
            max_tokens: 6,
            ..GenerateOptions::default()
        },
        |_, _| {},
    )?;
    let mut seq = prompt.clone();
    for &tok in &greedy.tokens {
        let logits: Vec<f32> = run(&[seq.clone()], &RunOptions::default())?
            .logits
            .i(0)?
            .to_vec1()?;
        assert_eq!(hawthorne_model::model::argmax(&logits), tok);
        seq.push(tok);
    }
    Ok(())
}

#[test]
fn out_of_range_hook_layer_is_a_clear_error() -> Result<()> {
    let n_layers = model().config().n_layers;
    let d = model().config().d_model;
    let seqs = vec![tokens(3, 15)];
    let bad = HookPoint::ResidPost(n_layers + 3);
    let check = |e: ModelError| {
        let msg = e.to_string();
        assert!(matches!(e, ModelError::HookLayerOutOfRange { .. }), "{msg}");
        assert!(
            msg.contains("blocks.5.hook_resid_post") && msg.contains("2 layers"),
            "{msg}"
        );
    };
    let steer = Intervention::Add {
        hook: bad,
        positions: Positions::All,
        vector: vec![0.0; d],
    };
    let opts = RunOptions {
        interventions: vec![steer],
        ..RunOptions::default()
    };
    check(
        model()
            .llama
            .forward(&seqs, &opts, None)
            .expect_err("steering layer 5 of 2"),
    );

    let opts = RunOptions {
        cache: NamesFilter::hooks([bad]),
        ..RunOptions::default()
    };
    check(
        model()
            .llama
            .forward(&seqs, &opts, None)
            .expect_err("caching layer 5 of 2"),
    );

    check(
        NamesFilter::parse("blocks.5.hook_resid_post")?
            .resolve(n_layers)
            .expect_err("resolve"),
    );
    Ok(())
}

#[test]
fn forward_from_a_layer_equals_the_full_pass_with_the_same_steering() -> Result<()> {
    let m = model();
    let n_layers = m.config().n_layers;
    let d = m.config().d_model;
    let seqs = vec![tokens(9, 1), tokens(5, 2), tokens(7, 3)];
    let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let vector: Vec<f32> = (0..d).map(|j| (j as f32 * 0.37).sin()).collect();
    for layer in 0..n_layers {
        for logits in [LogitsAt::All, LogitsAt::Last] {
            let steer = Intervention::Add { hook: HookPoint::ResidPost(layer), positions: Positions::All, vector: vector.clone() };
            let full = run(&seqs, &RunOptions { interventions: vec![steer], logits, ..RunOptions::default() })?;
            // The unsteered residual at that layer, then the rest of the pass from it, steered.
            let cache = NamesFilter::hooks(vec![HookPoint::ResidPost(layer)]);
            let base = run(&seqs, &RunOptions { cache, logits, ..RunOptions::default() })?;
            let resid = hook(&base, HookPoint::ResidPost(layer))?;
            let v = Tensor::from_vec(vector.clone(), d, resid.device())?;
            let steered = resid.broadcast_add(&v)?;
            let from = m.llama.forward_from(&steered, &lengths, layer + 1, &RunOptions { logits, ..RunOptions::default() })?;
            let diff = max_abs_diff(&full.logits, &from.logits)?;
            ensure!(diff <= TOL, "layer {layer}, {logits:?}: forward_from differs by {diff}");
        }
    }
    // An intervention the pass has already gone past is refused by name.
    let resid = hook(&run(&seqs, &RunOptions { cache: every_hook(), ..RunOptions::default() })?, HookPoint::ResidPost(0))?.clone();
    let early = Intervention::Add { hook: HookPoint::ResidPost(0), positions: Positions::All, vector };
    let err = m.llama.forward_from(&resid, &lengths, 1, &RunOptions { interventions: vec![early], ..RunOptions::default() });
    ensure!(matches!(err, Err(ModelError::Intervention { .. })), "{err:?}");
    Ok(())
}

#[test]
fn forward_from_a_cached_prefix_equals_the_full_patched_pass() -> Result<()> {
    let m = model();
    let n_layers = m.config().n_layers;
    let d = m.config().d_model;
    let seq = tokens(11, 4);
    let len = seq.len();
    // The clean pass, with its keys and values and the residual entering every block.
    let mut kv = KvCache::default();
    let cache = NamesFilter::hooks((0..n_layers).map(HookPoint::ResidPre).collect::<Vec<_>>());
    let clean = m.llama.forward(std::slice::from_ref(&seq), &RunOptions { cache, ..RunOptions::default() }, Some(&mut kv))?;
    let value: Vec<f32> = (0..d).map(|j| (j as f32 * 0.11).cos()).collect();
    for block in 0..n_layers {
        for p in [1, 5, len - 1] {
            let patch = Intervention::Patch { hook: HookPoint::ResidPre(block), row: 0, position: p, value: value.clone() };
            let full = run(std::slice::from_ref(&seq), &RunOptions { interventions: vec![patch], ..RunOptions::default() })?;
            // Positions p.. of the clean residual, position p replaced, after the cached prefix;
            // two identical rows to check the prefix is shared across the batch.
            let suffix = hook(&clean, HookPoint::ResidPre(block))?.get(0)?.narrow(0, p, len - p)?; // [T', D]
            let mut rows = suffix.to_vec2::<f32>()?;
            rows[0] = value.clone();
            let flat: Vec<f32> = rows.iter().flatten().copied().collect();
            let one = Tensor::from_vec(flat, (1, len - p, d), suffix.device())?;
            let resid = Tensor::cat(&[&one, &one], 0)?; // [2, T', D]
            let mut prefix = kv.prefix(p, 2)?;
            let out = m.llama.forward_from_cached(&resid, block, &mut prefix, &RunOptions::default())?;
            for row in 0..2 {
                let diff = max_abs_diff(&full.logits.get(0)?, &out.logits.get(row)?)?;
                ensure!(diff <= TOL, "block {block}, position {p}, row {row}: differs by {diff}");
            }
        }
    }
    ensure!(kv.prefix(len + 1, 1).is_err(), "a prefix longer than the cache is refused");
    Ok(())
}

#[test]
fn a_final_block_run_at_the_last_position_only_gives_the_same_logits_and_hooks() -> Result<()> {
    let m = model();
    let n_layers = m.config().n_layers;
    let last = n_layers - 1;
    let seqs = vec![tokens(9, 1), tokens(5, 2), tokens(7, 3), tokens(1, 4)];
    let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let full = run(&seqs, &RunOptions { cache: every_hook(), logits: LogitsAt::Last, final_block: FinalBlock::All, ..RunOptions::default() })?;
    // Auto trims when nothing looks at the final block's other positions.
    let auto = run(&seqs, &RunOptions { logits: LogitsAt::Last, ..RunOptions::default() })?;
    let diff = max_abs_diff(&full.logits, &auto.logits)?;
    ensure!(diff <= TOL, "trimmed logits differ by {diff}");
    // LastOnly records the final block's hooks at each row's last position.
    let only = run(&seqs, &RunOptions { cache: every_hook(), logits: LogitsAt::Last, final_block: FinalBlock::LastOnly, ..RunOptions::default() })?;
    ensure!(max_abs_diff(&full.logits, &only.logits)? <= TOL, "LastOnly logits differ");
    for h in [HookPoint::AttnPattern(last), HookPoint::AttnOut(last), HookPoint::ResidMid(last), HookPoint::MlpOut(last), HookPoint::ResidPost(last), HookPoint::LnFinal] {
        let (a, b) = (hook(&full, h)?, hook(&only, h)?);
        for (r, &len) in lengths.iter().enumerate() {
            let want = match h {
                HookPoint::AttnPattern(_) => a.get(r)?.narrow(1, len - 1, 1)?, // [H, 1, S]
                _ => a.get(r)?.narrow(0, len - 1, 1)?,                        // [1, D]
            };
            let diff = max_abs_diff(&want, &b.get(r)?)?;
            ensure!(diff <= TOL, "{h}, row {r}: last position differs by {diff}");
        }
    }
    // Hooks before the trimmed part are whole.
    for h in [HookPoint::ResidPre(last), HookPoint::ResidPost(0)] {
        ensure!(max_abs_diff(hook(&full, h)?, hook(&only, h)?)? == 0.0, "{h} changed");
    }
    // A cached final-block hook or an intervention there keeps every position under Auto.
    let cached = run(&seqs, &RunOptions { cache: NamesFilter::hooks(vec![HookPoint::MlpOut(last)]), logits: LogitsAt::Last, ..RunOptions::default() })?;
    ensure!(hook(&cached, HookPoint::MlpOut(last))?.dims()[1] == 9, "Auto trimmed a cached hook");
    // With a KV cache, the trimmed pass still stores every position's keys and values.
    let (mut kv_a, mut kv_b) = (KvCache::default(), KvCache::default());
    let prompt = vec![tokens(6, 5)];
    let next = vec![tokens(1, 6)];
    m.llama.forward(&prompt, &RunOptions { final_block: FinalBlock::All, ..RunOptions::default() }, Some(&mut kv_a))?;
    m.llama.forward(&prompt, &RunOptions::default(), Some(&mut kv_b))?;
    let a = m.llama.forward(&next, &RunOptions { final_block: FinalBlock::All, ..RunOptions::default() }, Some(&mut kv_a))?;
    let b = m.llama.forward(&next, &RunOptions::default(), Some(&mut kv_b))?;
    ensure!(max_abs_diff(&a.logits, &b.logits)? <= TOL, "decoding after a trimmed prefill differs");
    // What cannot be trimmed is refused by name.
    let err = m.llama.forward(&seqs, &RunOptions { logits: LogitsAt::All, final_block: FinalBlock::LastOnly, ..RunOptions::default() }, None);
    ensure!(matches!(err, Err(ModelError::Intervention { .. })), "{err:?}");
    let iv = Intervention::Add { hook: HookPoint::ResidMid(last), positions: Positions::All, vector: vec![0.0; m.config().d_model] };
    let err = m.llama.forward(&seqs, &RunOptions { interventions: vec![iv], final_block: FinalBlock::LastOnly, ..RunOptions::default() }, None);
    ensure!(matches!(err, Err(ModelError::Intervention { .. })), "{err:?}");
    Ok(())
}

#[test]
fn a_shared_prefix_run_once_equals_running_each_whole_sequence() -> Result<()> {
    let m = model();
    let n_layers = m.config().n_layers;
    let prefix = tokens(6, 9);
    let suffixes = vec![tokens(4, 1), tokens(1, 2), tokens(7, 3)];
    let whole: Vec<Vec<u32>> = suffixes.iter().map(|s| [prefix.clone(), s.clone()].concat()).collect();
    let cache = NamesFilter::hooks((0..n_layers).map(HookPoint::ResidPost).collect::<Vec<_>>());
    let full = run(&whole, &RunOptions { cache: cache.clone(), final_block: FinalBlock::All, ..RunOptions::default() })?;
    let mut kv = KvCache::default();
    m.llama.forward(std::slice::from_ref(&prefix), &RunOptions::default(), Some(&mut kv))?;
    for final_block in [FinalBlock::All, FinalBlock::LastOnly] {
        let out = m.llama.forward_after_prefix(&kv, &suffixes, &RunOptions { cache: cache.clone(), final_block, ..RunOptions::default() })?;
        let diff = max_abs_diff(&full.logits, &out.logits)?;
        ensure!(diff <= TOL, "{final_block:?}: logits differ by {diff}");
        for l in 0..n_layers {
            let (a, b) = (hook(&full, HookPoint::ResidPost(l))?, hook(&out, HookPoint::ResidPost(l))?);
            for (r, s) in suffixes.iter().enumerate() {
                let trimmed = final_block == FinalBlock::LastOnly && l == n_layers - 1;
                let (from, n, at) = if trimmed { (prefix.len() + s.len() - 1, 1, 0) } else { (prefix.len(), s.len(), 0) };
                let diff = max_abs_diff(&a.get(r)?.narrow(0, from, n)?, &b.get(r)?.narrow(0, at, n)?)?;
                ensure!(diff <= TOL, "{final_block:?}, layer {l}, row {r}: differs by {diff}");
            }
        }
    }
    ensure!(kv.len() == prefix.len(), "the prefix cache is left as it was");
    let two_rows = kv.prefix(kv.len(), 2)?;
    let err = m.llama.forward_after_prefix(&two_rows, &suffixes, &RunOptions::default());
    ensure!(matches!(err, Err(ModelError::KvCacheMismatch(_))), "{err:?}");
    Ok(())
}
