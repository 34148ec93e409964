//! Text generation with a KV cache: greedy or seeded sampling, stopping at the end of the turn.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::hook::Intervention;
use crate::model::{argmax, KvCache, LogitsAt, RunOptions};
use crate::Model;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sampling {
    /// Always the most likely token.
    Greedy,
    /// Temperature + nucleus sampling from a seeded generator: the same seed gives the same text.
    Seeded { seed: u64, temperature: f32, top_p: f32 },
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfTurn,
    MaxTokens,
    ContextFull,
}

/// Options for [`Model::generate`].
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Applied at every step (prompt and generated tokens alike).
    pub interventions: Vec<Intervention>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions { max_tokens: 64, sampling: Sampling::Greedy, interventions: Vec::new() }
    }
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Generated token ids, without the stop token.
    pub tokens: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
}

/// Draws a token from `logits` at `temperature` among the smallest set of tokens whose
/// probability mass reaches `top_p`. Written here (a few lines) rather than pulling in
/// candle-transformers, whose sampler is not seeded the same way on every platform.
fn sample(logits: &[f32], temperature: f32, top_p: f32, rng: &mut StdRng) -> u32 {
    if temperature <= 0.0 {
        return argmax(logits);
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> = logits
        .iter()
        .enumerate()
        .map(|(i, &x)| (i as u32, f64::from((x - max) / temperature).exp()))
        .collect();
    let total: f64 = probs.iter().map(|p| p.1).sum();
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (i, p) in probs.iter().enumerate() {
        kept += p.1 / total;
        if kept >= f64::from(top_p) {
            cut = i + 1;
            break;
        }
    }
    let probs = &probs[..cut];
    let mass: f64 = probs.iter().map(|p| p.1).sum();
    let mut r = rng.random::<f64>() * mass;
    for (id, p) in probs {
        r -= p;
        if r <= 0.0 {
            return *id;
        }
    }
    probs[probs.len() - 1].0
}

impl Model {
    /// Generates a reply to `prompt` (token ids, usually from a chat template).
    ///
    /// `on_token(id, text_so_far)` is called after each token, for streaming.
    pub fn generate(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut on_token: impl FnMut(u32, &str),
    ) -> Result<Generation> {
        let n_ctx = self.llama.cfg.n_ctx;
        if prompt.is_empty() {
            return Err(ModelError::EmptyInput("the prompt has no tokens".into()));
        }
        if prompt.len() >= n_ctx {
            return Err(ModelError::ContextOverflow { tokens: prompt.len(), context: n_ctx });
        }
        let mut rng = match opts.sampling {
            Sampling::Seeded { seed, .. } => StdRng::seed_from_u64(seed),
            Sampling::Greedy => StdRng::seed_from_u64(0),
        };
        let run = RunOptions {
            interventions: opts.interventions.clone(),
            logits: LogitsAt::Last,
            ..RunOptions::default()
        };
        let mut kv = KvCache::default();
        let mut input = prompt.to_vec();
        let mut tokens = Vec::new();
        let mut text = String::new();
        let stop = loop {
            if tokens.len() >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if kv.len() + input.len() > n_ctx {
                break StopReason::ContextFull;
            }
            let out = self.llama.forward(&[input], &run, Some(&mut kv))?;
            let logits: Vec<f32> = out.logits.get(0)?.to_vec1()?;
            let next = match opts.sampling {
                Sampling::Greedy => argmax(&logits),
                Sampling::Seeded { temperature, top_p, .. } => {
                    sample(&logits, temperature, top_p, &mut rng)
                }
            };
            if self.tokenizer.is_stop(next) {
                break StopReason::EndOfTurn;
            }
            tokens.push(next);
            text = self.tokenizer.decode(&tokens, true)?;
            on_token(next, &text);
            input = vec![next];
        };
        Ok(Generation { tokens, text, stop })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_seeded_and_respects_top_p() {
        let logits = vec![0.0, 1.0, 2.0, 3.0];
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20).map(|_| sample(&logits, 1.0, 0.9, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        // top_p = 0 keeps only the best token.
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..20).all(|_| sample(&logits, 1.0, 0.0, &mut rng) == 3));
        // temperature 0 is greedy.
        assert_eq!(sample(&logits, 0.0, 1.0, &mut rng), 3);
    }
}
