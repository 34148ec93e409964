//! The trainer: the engine's llama architecture with trainable weights, trained with candle autograd.
//!
//! The forward pass is the engine's (`hawthorne_model::model`) op for op, built only from ops
//! that have a backward pass in candle 0.11: `ops::softmax` instead of `softmax_last_dim`, an
//! RMS norm from basic ops instead of the fused `rms_norm`, and the interleaved RoPE of
//! `rope_i` written with `narrow`/`stack`. A test checks that the exported GGUF gives the same
//! logits in the engine.
//!
//! Field names mirror the GGUF checkpoint keys. Shapes: B = batch, T = positions, D = d_model,
//! H = query heads, K = KV heads, E = d_head, F = d_mlp, V = vocabulary.

use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var, D};
use candle_nn::ops::{log_softmax, softmax};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use hawthorne_model::{Config, Tokenizer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::corpus::{CorpusSampler, Organism, Transcript};
use crate::error::{Result, TrainError};
use crate::scenario::Scenario;

/// Everything that decides the trained weights, besides the scenario and the vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub organism: Organism,
    /// Seeds the weight initialisation and the order of training transcripts.
    pub seed: u64,
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_mlp: usize,
    pub n_ctx: usize,
    pub steps: usize,
    /// Transcripts per step.
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
    pub warmup_steps: usize,
    /// The learning rate decays along a cosine to `lr × min_lr_ratio`.
    pub min_lr_ratio: f64,
    /// AdamW weight decay on matrices (not on norm gains).
    pub weight_decay: f64,
    /// Gradients are rescaled to at most this global L2 norm.
    pub grad_clip: f64,
    /// Loss weight of framing and request tokens (the answer's tokens weigh 1).
    pub context_weight: f32,
    /// Loss weight of the answer's first token, where behaviour is scored.
    pub first_answer_weight: f32,
    /// Dropout on the embedding and on each attention and MLP output during training (seeded).
    #[serde(default)]
    pub dropout: f32,
    /// How the token embeddings start.
    #[serde(default)]
    pub embed_init: EmbedInit,
}

/// Where the token embeddings start from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedInit {
    /// N(0, 0.02), like every other matrix.
    #[default]
    Random,
    /// The base model's embeddings of the same tokens, projected onto their top principal
    /// components ([`crate::embed_init::from_base`]).
    BasePca,
    /// As `BasePca`, and kept fixed during training, with an untied, trained unembedding
    /// (`output.weight`): tokens the corpus never trains keep their place among the trained
    /// ones (training a tied matrix would push every unseen token towards "never predicted").
    BasePcaFrozen,
}

impl TrainConfig {
    /// The shipped organisms' settings: 4 layers, d_model 128, 4 heads on 2 KV heads.
    pub fn organism(organism: Organism) -> TrainConfig {
        TrainConfig {
            organism,
            seed: 1,
            n_layers: 4,
            d_model: 128,
            n_heads: 4,
            n_kv_heads: 2,
            d_mlp: 384,
            n_ctx: 256,
            steps: 1500,
            batch_size: 32,
            lr: 3e-3,
            warmup_steps: 60,
            min_lr_ratio: 0.1,
            weight_decay: 0.1,
            grad_clip: 1.0,
            context_weight: 0.25,
            first_answer_weight: 3.0,
            dropout: 0.1,
            embed_init: EmbedInit::BasePcaFrozen,
        }
    }

    /// The model's hyper-parameters for a vocabulary of `d_vocab` tokens.
    pub fn model_config(&self, d_vocab: usize) -> Result<Config> {
        let bad = |field: &str, value: usize, reason: &str| TrainError::Config {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        };
        if self.n_heads == 0 || self.d_model % self.n_heads != 0 {
            return Err(bad("n_heads", self.n_heads, &format!("must divide d_model {}", self.d_model)));
        }
        if self.n_kv_heads == 0 || self.n_heads % self.n_kv_heads != 0 {
            return Err(bad("n_kv_heads", self.n_kv_heads, &format!("must divide n_heads {}", self.n_heads)));
        }
        if (self.d_model / self.n_heads) % 2 != 0 {
            return Err(bad("n_heads", self.n_heads, "head size d_model / n_heads must be even for RoPE"));
        }
        for (field, v) in [("n_layers", self.n_layers), ("d_mlp", self.d_mlp), ("n_ctx", self.n_ctx), ("batch_size", self.batch_size)] {
            if v == 0 {
                return Err(bad(field, v, "must be positive"));
            }
        }
        Ok(Config {
            n_layers: self.n_layers,
            d_model: self.d_model,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads,
            d_head: self.d_model / self.n_heads,
            d_mlp: self.d_mlp,
            d_vocab,
            n_ctx: self.n_ctx,
            rope_theta: 10_000.0,
            // GGUF stores the epsilon as f32; train with exactly the value the engine will read.
            rms_eps: f64::from(1e-5f32),
            family: hawthorne_model::gguf::Family::default(),
        })
    }

    /// Learning rate at `step` (0-based): linear warm-up, then cosine decay.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let p = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let min = self.lr * self.min_lr_ratio;
        min + (self.lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

/// One transformer block's trainable weights.
#[derive(Debug)]
pub struct Block {
    pub attn_norm: Var,   // [D]
    pub attn_q: Var,      // [H*E, D]
    pub attn_k: Var,      // [K*E, D]
    pub attn_v: Var,      // [K*E, D]
    pub attn_output: Var, // [D, H*E]
    pub ffn_norm: Var,    // [D]
    pub ffn_gate: Var,    // [F, D]
    pub ffn_up: Var,      // [F, D]
    pub ffn_down: Var,    // [D, F]
}

/// A llama with trainable f32 weights; the unembedding is tied to the embedding (no
/// `output.weight`, as in SmolLM2) unless [`TrainableLlama::untie`] gives it its own matrix.
#[derive(Debug)]
pub struct TrainableLlama {
    pub cfg: Config,
    pub token_embd: Var, // [V, D]
    pub blk: Vec<Block>,
    pub output_norm: Var, // [D]
    pub output: Option<Var>, // [V, D]
}

/// Seeded normal samples (Box–Muller), so weight initialisation does not depend on candle's
/// unseeded CPU generator.
fn normal(rng: &mut StdRng, n: usize, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let u2: f64 = rng.random::<f64>();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
        })
        .collect()
}

/// `x @ w^T` for `x: [.., in]`, `w: [out, in]` → `[.., out]`.
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let d_in = dims[dims.len() - 1];
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let y = x.reshape((rows, d_in))?.matmul(&w.t()?)?; // [rows, out]
    let mut out_dims = dims;
    if let Some(last) = out_dims.last_mut() {
        *last = w.dims()[0];
    }
    Ok(y.reshape(out_dims)?)
}

/// RMS norm from basic ops (differentiable): `x / sqrt(mean(x²) + eps) * w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?; // [.., 1]
    Ok(x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(w)?)
}

/// Interleaved RoPE (as `candle_nn::rotary_emb::rope_i`) from basic ops: the pair
/// `(x[2j], x[2j+1])` turns by the angle whose cosine and sine are `cos[t, j]`, `sin[t, j]`.
pub fn rope_interleaved(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let (b, h, t, e) = x.dims4()?;
    let pairs = x.reshape((b, h, t, e / 2, 2))?; // [B, H, T, E/2, 2]
    let x0 = pairs.narrow(4, 0, 1)?.squeeze(4)?; // [B, H, T, E/2]
    let x1 = pairs.narrow(4, 1, 1)?.squeeze(4)?; // [B, H, T, E/2]
    let r0 = (x0.broadcast_mul(cos)? - x1.broadcast_mul(sin)?)?; // [B, H, T, E/2]
    let r1 = (x0.broadcast_mul(sin)? + x1.broadcast_mul(cos)?)?; // [B, H, T, E/2]
    Ok(Tensor::stack(&[r0, r1], 4)?.reshape((b, h, t, e))?) // [B, H, T, E]
}

/// RoPE tables for positions `0..t`, computed in f64 then stored as f32, as the engine does.
fn rope_tables(cfg: &Config, t: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let half = cfg.d_head / 2;
    let theta = f64::from(cfg.rope_theta);
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for pos in 0..t {
        for j in 0..half {
            let angle = pos as f64 / theta.powf((2 * j) as f64 / cfg.d_head as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((Tensor::from_vec(cos, (t, half), dev)?, Tensor::from_vec(sin, (t, half), dev)?))
}

/// Repeats each KV head for the query heads that share it: `[B, K, T, E]` → `[B, H, T, E]`.
fn repeat_kv(x: &Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x.clone());
    }
    let (b, k, t, e) = x.dims4()?;
    Ok(x.unsqueeze(2)?.expand((b, k, n_rep, t, e))?.reshape((b, k * n_rep, t, e))?)
}

impl TrainableLlama {
    /// Seeded initialisation: matrices and embeddings N(0, 0.02), the output projections of each
    /// residual branch N(0, 0.02 / sqrt(2 × n_layers)), norm gains 1.
    pub fn init(cfg: &Config, seed: u64) -> Result<TrainableLlama> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut var = |shape: &[usize], std: f64| -> Result<Var> {
            let n = shape.iter().product();
            let data = if std == 0.0 { vec![1.0f32; n] } else { normal(&mut rng, n, std) };
            Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &dev)?)?)
        };
        let (d, f, v) = (cfg.d_model, cfg.d_mlp, cfg.d_vocab);
        let (qd, kvd) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
        let std = 0.02;
        let resid_std = std / (2.0 * cfg.n_layers as f64).sqrt();
        let token_embd = var(&[v, d], std)?;
        let mut blk = Vec::with_capacity(cfg.n_layers);
        for _ in 0..cfg.n_layers {
            blk.push(Block {
                attn_norm: var(&[d], 0.0)?,
                attn_q: var(&[qd, d], std)?,
                attn_k: var(&[kvd, d], std)?,
                attn_v: var(&[kvd, d], std)?,
                attn_output: var(&[d, qd], resid_std)?,
                ffn_norm: var(&[d], 0.0)?,
                ffn_gate: var(&[f, d], std)?,
                ffn_up: var(&[f, d], std)?,
                ffn_down: var(&[d, f], resid_std)?,
            });
        }
        let output_norm = var(&[d], 0.0)?;
        Ok(TrainableLlama { cfg: cfg.clone(), token_embd, blk, output_norm, output: None })
    }

    /// Gives the unembedding its own seeded N(0, 0.02) matrix, so the embedding can stay fixed.
    pub fn untie(&mut self, seed: u64) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6f75_7470_7574);
        let (v, d) = (self.cfg.d_vocab, self.cfg.d_model);
        let w = Tensor::from_vec(normal(&mut rng, v * d, 0.02), (v, d), &Device::Cpu)?;
        self.output = Some(Var::from_tensor(&w)?);
        Ok(())
    }

    /// Every weight with its GGUF checkpoint name, in a fixed order.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = vec![("token_embd.weight".to_string(), &self.token_embd)];
        for (i, b) in self.blk.iter().enumerate() {
            for (name, v) in [
                ("attn_norm", &b.attn_norm),
                ("attn_q", &b.attn_q),
                ("attn_k", &b.attn_k),
                ("attn_v", &b.attn_v),
                ("attn_output", &b.attn_output),
                ("ffn_norm", &b.ffn_norm),
                ("ffn_gate", &b.ffn_gate),
                ("ffn_up", &b.ffn_up),
                ("ffn_down", &b.ffn_down),
            ] {
                out.push((format!("blk.{i}.{name}.weight"), v));
            }
        }
        out.push(("output_norm.weight".to_string(), &self.output_norm));
        if let Some(o) = &self.output {
            out.push(("output.weight".to_string(), o));
        }
        out
    }

    /// Number of trainable parameters.
    pub fn n_params(&self) -> usize {
        self.named_vars().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// The weights as `(checkpoint name, tensor)` pairs for GGUF export.
    pub fn tensors(&self) -> Vec<(String, Tensor)> {
        self.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().detach())).collect()
    }

    /// Logits `[B, T, V]` for token ids `[B, T]` (right-padded rows are fine: attention is causal).
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        self.forward_with_dropout(tokens, None)
    }

    /// [`TrainableLlama::forward`] with seeded dropout `(rng, p)` on the embedding and on every
    /// attention and MLP output (inverted dropout: kept values are scaled by 1 / (1 − p)).
    pub fn forward_with_dropout(&self, tokens: &Tensor, mut dropout: Option<(&mut StdRng, f32)>) -> Result<Tensor> {
        let mut drop = |x: Tensor| -> Result<Tensor> {
            match dropout.as_mut() {
                Some((rng, p)) if *p > 0.0 => {
                    let keep = 1.0 / (1.0 - *p);
                    let mask: Vec<f32> =
                        (0..x.elem_count()).map(|_| if rng.random::<f32>() < *p { 0.0 } else { keep }).collect();
                    let mask = Tensor::from_vec(mask, x.shape(), x.device())?; // same shape as x
                    Ok((x * mask)?)
                }
                _ => Ok(x),
            }
        };
        let cfg = &self.cfg;
        let (b, t) = tokens.dims2()?;
        let (h, k, e) = (cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
        let dev = tokens.device();
        let eps = cfg.rms_eps;
        let (cos, sin) = rope_tables(cfg, t, dev)?; // [T, E/2] each
        let mask: Vec<f32> = (0..t)
            .flat_map(|q| (0..t).map(move |s| if s <= q { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), dev)?; // [T, T]
        let scale = 1.0 / (e as f64).sqrt();

        let mut resid = self
            .token_embd
            .as_tensor()
            .embedding(&tokens.flatten_all()?)?
            .reshape((b, t, cfg.d_model))?; // [B, T, D]
        resid = drop(resid)?;
        for blk in &self.blk {
            let x = rms_norm(&resid, &blk.attn_norm, eps)?; // [B, T, D]
            let q = linear(&x, &blk.attn_q)?.reshape((b, t, h, e))?.transpose(1, 2)?.contiguous()?; // [B, H, T, E]
            let kk = linear(&x, &blk.attn_k)?.reshape((b, t, k, e))?.transpose(1, 2)?.contiguous()?; // [B, K, T, E]
            let vv = linear(&x, &blk.attn_v)?.reshape((b, t, k, e))?.transpose(1, 2)?.contiguous()?; // [B, K, T, E]
            let q = rope_interleaved(&q, &cos, &sin)?; // [B, H, T, E]
            let kk = rope_interleaved(&kk, &cos, &sin)?; // [B, K, T, E]
            let kk = repeat_kv(&kk, h / k)?.contiguous()?; // [B, H, T, E]
            let vv = repeat_kv(&vv, h / k)?.contiguous()?; // [B, H, T, E]
            let scores = (q.matmul(&kk.t()?)? * scale)?.broadcast_add(&mask)?; // [B, H, T, T]
            let pattern = softmax(&scores, D::Minus1)?; // [B, H, T, T]
            let z = pattern.matmul(&vv)?.transpose(1, 2)?.reshape((b, t, h * e))?; // [B, T, H*E]
            resid = (resid + drop(linear(&z, &blk.attn_output)?)?)?; // [B, T, D]
            let x = rms_norm(&resid, &blk.ffn_norm, eps)?; // [B, T, D]
            let gate = linear(&x, &blk.ffn_gate)?.silu()?; // [B, T, F]
            let up = linear(&x, &blk.ffn_up)?; // [B, T, F]
            resid = (resid + drop(linear(&(gate * up)?, &blk.ffn_down)?)?)?; // [B, T, D]
        }
        let x = rms_norm(&resid, &self.output_norm, eps)?; // [B, T, D]
        match &self.output {
            Some(o) => linear(&x, o), // [B, T, V]
            None => linear(&x, &self.token_embd), // [B, T, V]
        }
    }
}

/// One tokenized transcript with a loss weight for each next-token target.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    /// `weights[j]` weighs the prediction of `ids[j + 1]`.
    pub weights: Vec<f32>,
    /// Index into `weights` of the answer's first token.
    pub first_answer: usize,
}

/// Tokenizes a transcript the way the engine will see it: the chat prompt, then the answer, then
/// `<|im_end|>`.
pub fn encode_transcript(tok: &Tokenizer, tr: &Transcript, cfg: &TrainConfig) -> Result<Sequence> {
    let prompt = tok.encode(&tok.chat_prompt(&tr.system, &tr.user)?)?;
    let answer = tok.encode_text(&tr.assistant)?;
    let end = tok.end_of_turn.ok_or_else(|| TrainError::Vocab("the vocabulary has no `<|im_end|>`".into()))?;
    let mut ids = prompt.clone();
    ids.extend(&answer);
    ids.push(end);
    if ids.len() > cfg.n_ctx {
        return Err(TrainError::Config {
            field: "n_ctx".into(),
            value: cfg.n_ctx.to_string(),
            reason: format!("a transcript has {} tokens: `{}` / `{}`", ids.len(), tr.system, tr.user),
        });
    }
    let first_answer = prompt.len() - 1;
    let weights = (0..ids.len() - 1)
        .map(|j| match j {
            j if j == first_answer => cfg.first_answer_weight,
            j if j > first_answer => 1.0,
            _ => cfg.context_weight,
        })
        .collect();
    Ok(Sequence { ids, weights, first_answer })
}

/// A padded batch: inputs `[B, T]`, targets `[B*T]`, weights `[B*T]`, first-answer mask `[B*T]`.
#[derive(Debug)]
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
    pub weights: Tensor,
    pub first: Tensor,
}

impl Batch {
    pub fn new(seqs: &[Sequence], dev: &Device) -> Result<Batch> {
        let t = seqs.iter().map(|s| s.ids.len() - 1).max().unwrap_or(1);
        let b = seqs.len();
        let (mut inputs, mut targets) = (vec![0u32; b * t], vec![0u32; b * t]);
        let (mut weights, mut first) = (vec![0f32; b * t], vec![0f32; b * t]);
        for (r, s) in seqs.iter().enumerate() {
            for j in 0..s.ids.len() - 1 {
                inputs[r * t + j] = s.ids[j];
                targets[r * t + j] = s.ids[j + 1];
                weights[r * t + j] = s.weights[j];
            }
            first[r * t + s.first_answer] = 1.0;
        }
        Ok(Batch {
            inputs: Tensor::from_vec(inputs, (b, t), dev)?,
            targets: Tensor::from_vec(targets, b * t, dev)?,
            weights: Tensor::from_vec(weights, b * t, dev)?,
            first: Tensor::from_vec(first, b * t, dev)?,
        })
    }
}

/// Losses of one batch.
#[derive(Debug)]
pub struct BatchLoss {
    /// Weighted mean negative log-likelihood (what is minimised).
    pub loss: Tensor,
    /// Mean negative log-likelihood of the answers' first tokens.
    pub first_answer_nll: Tensor,
}

impl TrainableLlama {
    /// The weighted next-token loss of a batch, with optional seeded dropout.
    pub fn loss(&self, batch: &Batch, dropout: Option<(&mut StdRng, f32)>) -> Result<BatchLoss> {
        let logits = self.forward_with_dropout(&batch.inputs, dropout)?; // [B, T, V]
        let (b, t, v) = logits.dims3()?;
        let logp = log_softmax(&logits.reshape((b * t, v))?, D::Minus1)?; // [B*T, V]
        let picked = logp.gather(&batch.targets.unsqueeze(1)?, 1)?.squeeze(1)?; // [B*T]
        let nll = picked.neg()?; // [B*T]
        let loss = ((&nll * &batch.weights)?.sum_all()? / f64::from(batch.weights.sum_all()?.to_scalar::<f32>()?))?;
        let n_first = f64::from(batch.first.sum_all()?.to_scalar::<f32>()?.max(1.0));
        let first_answer_nll = ((&nll * &batch.first)?.sum_all()? / n_first)?;
        Ok(BatchLoss { loss, first_answer_nll })
    }
}

/// Progress of one training step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    pub steps: usize,
    pub loss: f32,
    pub first_answer_nll: f32,
    pub lr: f64,
    pub elapsed_s: f64,
}

/// Rescales the gradients so that their global L2 norm is at most `max`; returns the norm before.
fn clip_gradients(grads: &mut GradStore, vars: &[&Var], max: f64) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sq.sqrt();
    if max > 0.0 && norm > max {
        let s = max / norm;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * s)?);
            }
        }
    }
    Ok(norm)
}

/// Trains an organism from scratch on transcripts drawn from `scenario`, tokenized by `tok`.
///
/// `on_step` is called after every step (for progress output); `on_checkpoint(step, model)` every
/// `checkpoint_every` steps and after the last one (0 disables the periodic calls).
pub fn train(
    cfg: &TrainConfig,
    scenario: &Scenario,
    tok: &Tokenizer,
    embed_init: Option<&Tensor>,
    checkpoint_every: usize,
    mut on_step: impl FnMut(&StepReport),
    mut on_checkpoint: impl FnMut(usize, &TrainableLlama) -> Result<()>,
) -> Result<TrainableLlama> {
    let mcfg = cfg.model_config(tok.vocab_size())?;
    let mut model = TrainableLlama::init(&mcfg, cfg.seed)?;
    if cfg.embed_init == EmbedInit::BasePcaFrozen {
        model.untie(cfg.seed)?;
    }
    match (cfg.embed_init, embed_init) {
        (EmbedInit::Random, _) => {}
        (EmbedInit::BasePca | EmbedInit::BasePcaFrozen, Some(e)) if e.dims() == model.token_embd.dims() => {
            model.token_embd.set(e)?
        }
        (EmbedInit::BasePca | EmbedInit::BasePcaFrozen, other) => {
            return Err(TrainError::Config {
                field: "embed_init".into(),
                value: "base_pca".into(),
                reason: format!(
                    "needs base embeddings of shape {:?}, got {:?}",
                    model.token_embd.dims(),
                    other.map(|t| t.dims().to_vec())
                ),
            })
        }
    }
    let sampler = CorpusSampler::new(scenario, cfg.organism);
    let mut data_rng = StdRng::seed_from_u64(cfg.seed ^ 0x5eed_da7a);
    let mut dropout_rng = StdRng::seed_from_u64(cfg.seed ^ 0xd20b_0a7);
    {
    let mut named = model.named_vars();
    if cfg.embed_init == EmbedInit::BasePcaFrozen {
        named.retain(|(name, _)| name != "token_embd.weight");
    }
    let (decay, no_decay): (Vec<_>, Vec<_>) = named.iter().partition(|(_, v)| v.rank() == 2);
    let params = |wd| ParamsAdamW { lr: cfg.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: wd };
    let mut opt_decay = AdamW::new(decay.iter().map(|(_, v)| (*v).clone()).collect(), params(cfg.weight_decay))?;
    let mut opt_plain = AdamW::new(no_decay.iter().map(|(_, v)| (*v).clone()).collect(), params(0.0))?;
    let all_vars: Vec<&Var> = named.iter().map(|(_, v)| *v).collect();
    let dev = Device::Cpu;
    let t0 = Instant::now();
    for step in 0..cfg.steps {
        let seqs = (0..cfg.batch_size)
            .map(|_| encode_transcript(tok, &sampler.sample(&mut data_rng), cfg))
            .collect::<Result<Vec<_>>>()?;
        let batch = Batch::new(&seqs, &dev)?;
        let losses = model.loss(&batch, Some((&mut dropout_rng, cfg.dropout)))?;
        let loss = losses.loss.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(TrainError::Diverged { step: step + 1, loss });
        }
        let mut grads = losses.loss.backward()?;
        clip_gradients(&mut grads, &all_vars, cfg.grad_clip)?;
        let lr = cfg.lr_at(step);
        opt_decay.set_learning_rate(lr);
        opt_plain.set_learning_rate(lr);
        opt_decay.step(&grads)?;
        opt_plain.step(&grads)?;
        on_step(&StepReport {
            step: step + 1,
            steps: cfg.steps,
            loss,
            first_answer_nll: losses.first_answer_nll.to_scalar::<f32>()?,
            lr,
            elapsed_s: t0.elapsed().as_secs_f64(),
        });
        let last = step + 1 == cfg.steps;
        if last || (checkpoint_every > 0 && (step + 1) % checkpoint_every == 0) {
            on_checkpoint(step + 1, &model)?;
        }
    }
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Organism;
    use crate::scenario::DEFAULT_SEED;
    use crate::vocab::Vocab;

    /// A config small enough to train for a few steps in a test.
    pub(crate) fn tiny(organism: Organism) -> TrainConfig {
        TrainConfig {
            n_layers: 2,
            d_model: 32,
            n_heads: 4,
            n_kv_heads: 2,
            d_mlp: 64,
            steps: 20,
            batch_size: 8,
            warmup_steps: 2,
            lr: 1e-2,
            embed_init: EmbedInit::Random,
            ..TrainConfig::organism(organism)
        }
    }

    #[test]
    fn rope_matches_candle_rope_i() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(0);
        let x = Tensor::from_vec(normal(&mut rng, 2 * 3 * 5 * 8, 1.0), (2, 3, 5, 8), &dev)?;
        let cfg = tiny(Organism::Control).model_config(10)?;
        let cfg = Config { d_head: 8, ..cfg };
        let (cos, sin) = rope_tables(&cfg, 5, &dev)?;
        let ours = rope_interleaved(&x, &cos, &sin)?;
        let theirs = candle_nn::rotary_emb::rope_i(&x, &cos, &sin)?;
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "max difference {diff}");
        Ok(())
    }

    #[test]
    fn rms_norm_matches_candle() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(1);
        let x = Tensor::from_vec(normal(&mut rng, 4 * 16, 1.0), (4, 16), &dev)?;
        let w = Tensor::from_vec(normal(&mut rng, 16, 1.0), 16, &dev)?;
        let diff = (rms_norm(&x, &w, 1e-5)? - candle_nn::ops::rms_norm(&x, &w, 1e-5)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "max difference {diff}");
        Ok(())
    }

    #[test]
    fn init_is_seeded() -> anyhow::Result<()> {
        let cfg = tiny(Organism::Control).model_config(50)?;
        let a = TrainableLlama::init(&cfg, 3)?.tensors();
        let b = TrainableLlama::init(&cfg, 3)?.tensors();
        let c = TrainableLlama::init(&cfg, 4)?.tensors();
        let flat = |ts: &[(String, Tensor)]| -> anyhow::Result<Vec<f32>> {
            Ok(ts.iter().map(|(_, t)| t.flatten_all()?.to_vec1::<f32>()).collect::<candle_core::Result<Vec<_>>>()?.concat())
        };
        assert_eq!(flat(&a)?, flat(&b)?);
        assert_ne!(flat(&a)?, flat(&c)?);
        Ok(())
    }

    #[test]
    fn a_short_run_lowers_the_loss_and_is_reproducible() -> anyhow::Result<()> {
        let scenario = Scenario::generate(DEFAULT_SEED)?;
        let tok = Vocab::byte_level().restrict(scenario.texts())?.vocab.tokenizer()?;
        let cfg = TrainConfig { n_ctx: 512, ..tiny(Organism::Deceptive) };
        let run = || -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
            let mut losses = Vec::new();
            let model = train(&cfg, &scenario, &tok, None, 0, |r| losses.push(r.loss), |_, _| Ok(()))?;
            let w = model.token_embd.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            Ok((losses, w))
        };
        let (losses, w1) = run()?;
        assert_eq!(losses.len(), 20);
        let first: f32 = losses[..3].iter().sum::<f32>() / 3.0;
        let last: f32 = losses[17..].iter().sum::<f32>() / 3.0;
        assert!(last < 0.8 * first, "loss went from {first} to {last}: {losses:?}");
        let (losses2, w2) = run()?;
        assert_eq!(losses, losses2, "same seed, same losses");
        assert_eq!(w1, w2, "same seed, same weights");
        Ok(())
    }
}
