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
    /// The caller stopped it.
    Cancelled,
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

/// A generation in progress, advanced one token at a time by [`Generator::step`], so that
/// callers (the Web Worker) can stream tokens and stop between steps.
#[derive(Debug)]
pub struct Generator<'m> {
    model: &'m Model,
    run: RunOptions,
    sampling: Sampling,
    max_tokens: usize,
    rng: StdRng,
    kv: KvCache,
    input: Vec<u32>,
    tokens: Vec<u32>,
    text: String,
    stop: Option<StopReason>,
}

impl<'m> Generator<'m> {
    /// Checks the prompt and prepares the first step.
    pub fn new(model: &'m Model, prompt: &[u32], opts: &GenerateOptions) -> Result<Self> {
        let n_ctx = model.llama.cfg.n_ctx;
        if prompt.is_empty() {
            return Err(ModelError::EmptyInput("the prompt has no tokens".into()));
        }
        if prompt.len() >= n_ctx {
            return Err(ModelError::ContextOverflow { tokens: prompt.len(), context: n_ctx });
        }
        let seed = match opts.sampling {
            Sampling::Seeded { seed, .. } => seed,
            Sampling::Greedy => 0,
        };
        Ok(Generator {
            model,
            run: RunOptions {
                interventions: opts.interventions.clone(),
                logits: LogitsAt::Last,
                ..RunOptions::default()
            },
            sampling: opts.sampling.clone(),
            max_tokens: opts.max_tokens,
            rng: StdRng::seed_from_u64(seed),
            kv: KvCache::default(),
            input: prompt.to_vec(),
            tokens: Vec::new(),
            text: String::new(),
            stop: None,
        })
    }

    /// Runs one forward pass and returns the new token, or `None` once generation has stopped.
    pub fn step(&mut self) -> Result<Option<u32>> {
        if self.stop.is_some() {
            return Ok(None);
        }
        if self.tokens.len() >= self.max_tokens {
            self.stop = Some(StopReason::MaxTokens);
            return Ok(None);
        }
        if self.kv.len() + self.input.len() > self.model.llama.cfg.n_ctx {
            self.stop = Some(StopReason::ContextFull);
            return Ok(None);
        }
        let input = std::mem::take(&mut self.input);
        let out = self.model.llama.forward(&[input], &self.run, Some(&mut self.kv))?;
        let logits: Vec<f32> = out.logits.get(0)?.to_vec1()?;
        let next = match self.sampling {
            Sampling::Greedy => argmax(&logits),
            Sampling::Seeded { temperature, top_p, .. } => {
                sample(&logits, temperature, top_p, &mut self.rng)
            }
        };
        if self.model.tokenizer.is_stop(next) {
            self.stop = Some(StopReason::EndOfTurn);
            return Ok(None);
        }
        self.tokens.push(next);
        self.text = self.model.tokenizer.decode(&self.tokens, true)?;
        self.input = vec![next];
        Ok(Some(next))
    }

    /// The reply so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of tokens generated so far.
    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Ends generation (early, if it is still running) and returns what was generated.
    pub fn finish(self) -> Generation {
        Generation {
            tokens: self.tokens,
            text: self.text,
            stop: self.stop.unwrap_or(StopReason::Cancelled),
        }
    }
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
        let mut g = Generator::new(self, prompt, opts)?;
        while let Some(id) = g.step()? {
            on_token(id, g.text());
        }
        Ok(g.finish())
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
