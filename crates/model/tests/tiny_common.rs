//! The shared forward-pass snapshot of the tiny random model used by the native and wasm tests.

use hawthorne_model::{HookPoint, LogitsAt, Model, NamesFilter, RunOptions};

/// Logits at every position and `hook_resid_post` of every layer, flattened.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
    pub resid_post: Vec<Vec<f32>>,
}

pub fn run() -> anyhow::Result<Snapshot> {
    let bytes = hawthorne_model::testing::tiny_random_gguf(42)?;
    let model = Model::from_gguf_bytes(&bytes)?;
    let tokens = model.tokenizer.encode(&model.tokenizer.chat_prompt("This chat is logged.", "Héllo, wörld! 123 🙂")?)?;
    let n_layers = model.config().n_layers;
    let opts = RunOptions {
        cache: NamesFilter::parse("blocks.*.hook_resid_post")?,
        logits: LogitsAt::All,
        ..RunOptions::default()
    };
    let out = model.llama.forward(std::slice::from_ref(&tokens), &opts, None)?;
    let logits = out.logits.flatten_all()?.to_vec1()?;
    let resid_post = (0..n_layers)
        .map(|i| {
            let t = out.cache.get(&HookPoint::ResidPost(i)).ok_or_else(|| anyhow::anyhow!("missing layer {i}"))?;
            Ok(t.flatten_all()?.to_vec1()?)
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Snapshot { tokens, logits, resid_post })
}

pub fn max_abs_diff(a: &Snapshot, b: &Snapshot) -> anyhow::Result<f32> {
    anyhow::ensure!(a.tokens == b.tokens, "token ids differ: {:?} vs {:?}", a.tokens, b.tokens);
    anyhow::ensure!(a.logits.len() == b.logits.len(), "logit counts differ");
    let mut worst = 0f32;
    for (x, y) in a.logits.iter().zip(&b.logits) {
        worst = worst.max((x - y).abs());
    }
    for (la, lb) in a.resid_post.iter().zip(&b.resid_post) {
        anyhow::ensure!(la.len() == lb.len(), "resid sizes differ");
        for (x, y) in la.iter().zip(lb) {
            worst = worst.max((x - y).abs());
        }
    }
    Ok(worst)
}
