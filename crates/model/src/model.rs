//! The decoder-only transformer forward pass, written to read like the maths, with
//! TransformerLens hook points.
//!
//! One pass serves every supported family; what a family changes is data in
//! [`Family`](crate::gguf::Family) (llama.cpp keeps the same kind of table per architecture):
//! - Llama: RMSNorm → attention (RoPE on adjacent pairs) → RMSNorm → SwiGLU MLP; Llama 3.x
//!   divides RoPE frequencies by the file's `rope_freqs`;
//! - Qwen 2: Q/K/V biases, RoPE on the two halves of each head;
//! - Qwen 3: Q/K RMSNorm per head before RoPE, query width ≠ d_model;
//! - Gemma 3: embeddings × √D, Q/K norms, norms after attention and after the MLP (four per
//!   block), GELU-tanh gate, sliding-window attention with its own RoPE base on five blocks of
//!   six. The file's norm weights are used as they are, as llama.cpp does (its converter has
//!   already added Gemma's `1 +`).
//!
//! Field names mirror the GGUF checkpoint keys (`blk.{i}.attn_q.weight` → `Block::attn_q`).
//! Shapes: B = batch, T = new positions, S = all key positions (cache + new), D = d_model,
//! H = query heads, K = KV heads, E = d_head, F = d_mlp, V = vocabulary.

use candle_core::{DType, Device, Tensor};
use candle_nn::ops::{rms_norm, silu, softmax_last_dim};
use candle_nn::rotary_emb::rope_i;

use crate::error::{ModelError, Result};
use crate::gguf::{Config, GgufModel};
use candle_nn::rotary_emb::rope;
use crate::hook::{ActivationCache, HookPoint, Intervention, NamesFilter};
use crate::weights::{ComputeMode, Weight};

/// One transformer block's weights. Matrices are [`Weight`]s (packed or f32, see
/// [`ComputeMode`]); norm weights and biases are f32. Optional tensors belong to some families.
#[derive(Debug, Clone)]
pub struct Block {
    pub attn_norm: Tensor,                   // [D]
    pub attn_q: Weight,                      // [H*E, D]
    pub attn_k: Weight,                      // [K*E, D]
    pub attn_v: Weight,                      // [K*E, D]
    pub attn_q_bias: Option<Tensor>,         // [H*E]   Qwen 2
    pub attn_k_bias: Option<Tensor>,         // [K*E]   Qwen 2
    pub attn_v_bias: Option<Tensor>,         // [K*E]   Qwen 2
    pub attn_q_norm: Option<Tensor>,         // [E]     Qwen 3, Gemma 3
    pub attn_k_norm: Option<Tensor>,         // [E]     Qwen 3, Gemma 3
    pub attn_output: Weight,                 // [D, H*E]
    pub post_attention_norm: Option<Tensor>, // [D]     Gemma 3
    pub ffn_norm: Tensor,                    // [D]
    pub ffn_gate: Weight,                    // [F, D]
    pub ffn_up: Weight,                      // [F, D]
    pub ffn_down: Weight,                    // [D, F]
    pub post_ffw_norm: Option<Tensor>,       // [D]     Gemma 3
}

impl Block {
    /// The block's vectors (norm weights and biases).
    fn vectors(&self) -> impl Iterator<Item = &Tensor> {
        [&self.attn_norm, &self.ffn_norm].into_iter().chain(
            [
                &self.attn_q_bias,
                &self.attn_k_bias,
                &self.attn_v_bias,
                &self.attn_q_norm,
                &self.attn_k_norm,
                &self.post_attention_norm,
                &self.post_ffw_norm,
            ]
            .into_iter()
            .flatten(),
        )
    }
}

/// A decoder-only language model of any supported family (the name is historical: Llama is
/// the family the others are described against).
#[derive(Debug, Clone)]
pub struct Llama {
    pub cfg: Config,
    /// How the matrices are kept and multiplied.
    pub mode: ComputeMode,
    pub token_embd: Weight,  // [V, D]
    pub blk: Vec<Block>,
    pub output_norm: Tensor, // [D]
    pub output: Weight,      // [V, D]; shares `token_embd`'s storage when embeddings are tied
    /// Llama 3.x: RoPE frequency divisors, one per rotated pair (`rope_freqs.weight`, [E/2]).
    pub rope_freqs: Option<Vec<f32>>,
}

/// Keys and values of earlier positions, for incremental decoding.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>, // per block: k, v of shape [B, K, S, E]
}

impl KvCache {
    /// Number of positions already in the cache.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[2])
    }

    /// True before the first forward pass.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `len` positions of row 0, repeated for `batch` rows: the shared prefix of a
    /// batch of continuations of one cached sequence.
    pub fn prefix(&self, len: usize, batch: usize) -> Result<KvCache> {
        if len > self.len() || batch == 0 {
            return Err(ModelError::KvCacheMismatch(format!(
                "a prefix of {len} positions × {batch} rows from a cache of {} positions",
                self.len()
            )));
        }
        let take = |t: &Tensor| -> Result<Tensor> {
            Ok(t.narrow(0, 0, 1)?.narrow(2, 0, len)?.repeat((batch, 1, 1, 1))?) // [batch, K, len, E]
        };
        let layers = self.layers.iter().map(|(k, v)| Ok((take(k)?, take(v)?))).collect::<Result<Vec<_>>>()?;
        Ok(KvCache { layers })
    }
}

/// Which positions get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogitsAt {
    /// Only each sequence's last real token: `[B, V]`.
    #[default]
    Last,
    /// Every position: `[B, T, V]`.
    All,
}

/// Which positions the final block computes after its keys and values.
///
/// With [`LogitsAt::Last`] only each sequence's last real position reaches the logits, and the
/// final block is the last place where other positions matter: as keys and values. Its queries,
/// attention output, MLP and the final norm can then run on one position per sequence, which
/// removes most of that block's work (and all of it after the K/V projections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FinalBlock {
    /// Only the last position when nothing needs the others: logits at [`LogitsAt::Last`], and
    /// no hook of the final block after `hook_resid_pre`, nor `ln_final.hook_normalized`, is
    /// cached or intervened at. Otherwise every position.
    #[default]
    Auto,
    /// Every position.
    All,
    /// Only each sequence's last real position, even when final-block hooks are cached: they
    /// then hold one position per sequence (`[B, 1, D]`, patterns `[B, H, 1, S]`). Needs
    /// [`LogitsAt::Last`]; interventions at those hooks are refused.
    LastOnly,
}

/// What to record and change during a forward pass.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Hooks to record into the activation cache (opt-in).
    pub cache: NamesFilter,
    /// Changes applied at hook points as the pass goes by (after which the hook is recorded).
    pub interventions: Vec<Intervention>,
    pub logits: LogitsAt,
    pub final_block: FinalBlock,
    /// Logits for these vocabulary ids only, in this order (`[B, n]` or `[B, T, n]`); `None`
    /// for the whole vocabulary. A study's behaviour score reads two logits per prompt, and on
    /// a 262,144-token vocabulary the full unembedding was a sixth of the recording stage.
    /// The rows are dequantised and met by the f32 activations, so they can differ from the
    /// full product's (8-bit activations) by that rounding: compare scores from one path.
    pub logit_ids: Option<Vec<u32>>,
}

impl FinalBlock {
    /// Whether `hook` lies in the part of a model of `n_layers` blocks that a trimmed final block
    /// computes at the last position only: the final block after `hook_resid_pre`, and
    /// `ln_final.hook_normalized`.
    pub fn trims(hook: &HookPoint, n_layers: usize) -> bool {
        let Some(last) = n_layers.checked_sub(1) else { return false };
        *hook == HookPoint::LnFinal || (hook.layer() == Some(last) && *hook != HookPoint::ResidPre(last))
    }
}

impl RunOptions {
    /// Whether the final block (`n_layers - 1`) runs only each sequence's last position.
    fn trims_final_block(&self, n_layers: usize) -> Result<bool> {
        let Some(last) = n_layers.checked_sub(1) else { return Ok(false) };
        let trimmed = |h: &HookPoint| FinalBlock::trims(h, n_layers);
        let intervened = self.interventions.iter().any(|iv| trimmed(&iv.hook()));
        match (self.final_block, self.logits) {
            (FinalBlock::All, _) | (FinalBlock::Auto, LogitsAt::All) => Ok(false),
            (FinalBlock::LastOnly, LogitsAt::All) => Err(ModelError::Intervention {
                hook: format!("blocks.{last}"),
                reason: "FinalBlock::LastOnly needs LogitsAt::Last".into(),
            }),
            (FinalBlock::LastOnly, LogitsAt::Last) => match self.interventions.iter().find(|iv| trimmed(&iv.hook())) {
                Some(iv) => Err(ModelError::Intervention {
                    hook: iv.hook().to_string(),
                    reason: "FinalBlock::LastOnly computes this hook at the last position only".into(),
                }),
                None => Ok(true),
            },
            (FinalBlock::Auto, LogitsAt::Last) => {
                Ok(!intervened && !HookPoint::all(n_layers).iter().any(|h| trimmed(h) && self.cache.matches(h)))
            }
        }
    }
}

/// Result of a forward pass.
#[derive(Debug)]
pub struct ForwardOutput {
    /// `[B, V]` for [`LogitsAt::Last`], `[B, T, V]` for [`LogitsAt::All`].
    pub logits: Tensor,
    pub cache: ActivationCache,
    /// The real (unpadded) length of each sequence.
    pub lengths: Vec<usize>,
}

/// Per-pass state threaded through the hook points.
struct HookCtx<'a> {
    opts: &'a RunOptions,
    cache: ActivationCache,
    start_pos: usize,
}

impl HookCtx<'_> {
    /// Runs interventions registered at `point`, then records the result if requested.
    fn hook(&mut self, point: HookPoint, mut x: Tensor) -> Result<Tensor> {
        for iv in self.opts.interventions.iter().filter(|iv| iv.hook() == point) {
            x = iv.apply(&x, self.start_pos)?;
        }
        if self.opts.cache.matches(&point) {
            self.cache.insert(point, x.clone());
        }
        Ok(x)
    }
}

/// `x @ w^T` for `x: [.., in]`, `w: [out, in]` → `[.., out]`.
fn linear(x: &Tensor, w: &Weight) -> Result<Tensor> {
    w.forward(x)
}

/// `x @ w^T + bias` (no bias: [`linear`]).
fn linear_b(x: &Tensor, w: &Weight, bias: Option<&Tensor>) -> Result<Tensor> {
    let y = w.forward(x)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    })
}

impl Llama {
    /// Builds the model from a parsed GGUF file, checking every tensor's shape.
    pub fn from_gguf(g: &mut GgufModel) -> Result<Llama> {
        let cfg = g.config.clone();
        let arch = cfg.family.arch;
        let (d, v, f, e) = (cfg.d_model, cfg.d_vocab, cfg.d_mlp, cfg.d_head);
        let (qd, kvd) = (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head);
        let token_embd = g.take_matrix("token_embd.weight", [v, d])?;
        let output = match g.has("output.weight") {
            true => g.take_matrix("output.weight", [v, d])?,
            false => token_embd.clone(),
        };
        let blk = (0..cfg.n_layers)
            .map(|i| {
                let name = |n: &str| format!("blk.{i}.{n}.weight");
                // Biases are taken wherever the file has them (Qwen 2 always does).
                let bias = |g: &mut GgufModel, n: &str, len: usize| -> Result<Option<Tensor>> {
                    let key = format!("blk.{i}.{n}.bias");
                    g.has(&key).then(|| g.take(&key, &[len])).transpose()
                };
                let needed = |g: &mut GgufModel, present: bool, n: &str, len: usize| -> Result<Option<Tensor>> {
                    present.then(|| g.take(&name(n), &[len])).transpose()
                };
                Ok(Block {
                    attn_norm: g.take(&name("attn_norm"), &[d])?,
                    attn_q: g.take_matrix(&name("attn_q"), [qd, d])?,
                    attn_k: g.take_matrix(&name("attn_k"), [kvd, d])?,
                    attn_v: g.take_matrix(&name("attn_v"), [kvd, d])?,
                    attn_q_bias: bias(g, "attn_q", qd)?,
                    attn_k_bias: bias(g, "attn_k", kvd)?,
                    attn_v_bias: bias(g, "attn_v", kvd)?,
                    attn_q_norm: needed(g, arch.qk_norm(), "attn_q_norm", e)?,
                    attn_k_norm: needed(g, arch.qk_norm(), "attn_k_norm", e)?,
                    attn_output: g.take_matrix(&name("attn_output"), [d, qd])?,
                    post_attention_norm: needed(g, arch.post_norms(), "post_attention_norm", d)?,
                    ffn_norm: g.take(&name("ffn_norm"), &[d])?,
                    ffn_gate: g.take_matrix(&name("ffn_gate"), [f, d])?,
                    ffn_up: g.take_matrix(&name("ffn_up"), [f, d])?,
                    ffn_down: g.take_matrix(&name("ffn_down"), [d, f])?,
                    post_ffw_norm: needed(g, arch.post_norms(), "post_ffw_norm", d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output_norm = g.take("output_norm.weight", &[d])?;
        let rope_freqs = match g.has("rope_freqs.weight") {
            true => Some(g.take("rope_freqs.weight", &[e / 2])?.to_vec1::<f32>()?),
            false => None,
        };
        if let Some(bad) = rope_freqs.as_ref().and_then(|f| f.iter().find(|x| !(x.is_finite() && **x > 0.0))) {
            return Err(ModelError::CorruptGguf(format!("`rope_freqs.weight` holds {bad}; RoPE frequency divisors must be positive")));
        }
        Ok(Llama {
            cfg,
            mode: g.mode,
            token_embd,
            blk,
            output_norm,
            output,
            rope_freqs,
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.output_norm.device()
    }

    /// Every weight matrix with its checkpoint name (a tied unembedding appears once).
    pub fn matrices(&self) -> Vec<(String, &Weight)> {
        let mut out = vec![("token_embd.weight".to_string(), &self.token_embd)];
        if !self.output.shares_storage(&self.token_embd) {
            out.push(("output.weight".into(), &self.output));
        }
        for (i, b) in self.blk.iter().enumerate() {
            for (n, w) in [
                ("attn_q", &b.attn_q),
                ("attn_k", &b.attn_k),
                ("attn_v", &b.attn_v),
                ("attn_output", &b.attn_output),
                ("ffn_gate", &b.ffn_gate),
                ("ffn_up", &b.ffn_up),
                ("ffn_down", &b.ffn_down),
            ] {
                out.push((format!("blk.{i}.{n}.weight"), w));
            }
        }
        out
    }

    /// The same model with every matrix dequantised to f32 ([`ComputeMode::F32`]).
    pub fn dequantized(&self) -> Result<Llama> {
        let dense = |w: &Weight| -> Result<Weight> { Ok(Weight::Dense(w.dequantize()?)) };
        let token_embd = dense(&self.token_embd)?;
        let output = match self.output.shares_storage(&self.token_embd) {
            true => token_embd.clone(),
            false => dense(&self.output)?,
        };
        let blk = self
            .blk
            .iter()
            .map(|b| {
                Ok(Block {
                    attn_q: dense(&b.attn_q)?,
                    attn_k: dense(&b.attn_k)?,
                    attn_v: dense(&b.attn_v)?,
                    attn_output: dense(&b.attn_output)?,
                    ffn_gate: dense(&b.ffn_gate)?,
                    ffn_up: dense(&b.ffn_up)?,
                    ffn_down: dense(&b.ffn_down)?,
                    ..b.clone()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Llama {
            cfg: self.cfg.clone(),
            mode: ComputeMode::F32,
            token_embd,
            blk,
            output_norm: self.output_norm.clone(),
            output,
            rope_freqs: self.rope_freqs.clone(),
        })
    }

    /// Number of parameters (a tied unembedding counted once).
    pub fn n_params(&self) -> usize {
        let vectors = self.output_norm.elem_count()
            + self.blk.iter().flat_map(Block::vectors).map(Tensor::elem_count).sum::<usize>();
        vectors + self.matrices().iter().map(|(_, w)| w.elem_count()).sum::<usize>()
    }

    /// Bytes the weights hold in memory.
    pub fn weight_bytes(&self) -> usize {
        let vectors = 4 * (self.output_norm.elem_count()
            + self.blk.iter().flat_map(Block::vectors).map(Tensor::elem_count).sum::<usize>());
        vectors + self.matrices().iter().map(|(_, w)| w.storage_bytes()).sum::<usize>()
    }

    /// Runs a batch of token sequences of possibly different lengths (right-padded, masked).
    ///
    /// With `kv`, the sequences continue the cached ones (all rows must then have the same
    /// length) and the cache is extended.
    pub fn forward(
        &self,
        seqs: &[Vec<u32>],
        opts: &RunOptions,
        kv: Option<&mut KvCache>,
    ) -> Result<ForwardOutput> {
        self.forward_inner(seqs, opts, kv, false)
    }

    /// Runs sequences that all begin with one shared prefix, given as their `suffixes` (of
    /// possibly different lengths, right-padded) after `prefix`, the keys and values of that
    /// prefix as one row (from a forward pass with a [`KvCache`]).
    ///
    /// The prefix runs once instead of once per row. Logits and cached hooks cover the suffix
    /// positions only; positions inside them count from the end of the prefix. The cache is not
    /// extended (padded rows would put padding into it).
    pub fn forward_after_prefix(&self, prefix: &KvCache, suffixes: &[Vec<u32>], opts: &RunOptions) -> Result<ForwardOutput> {
        if prefix.layers.len() != self.cfg.n_layers || prefix.layers[0].0.dims()[0] != 1 {
            return Err(ModelError::KvCacheMismatch(format!(
                "a shared prefix needs one row of keys and values for each of {} blocks; got {} blocks × {} rows",
                self.cfg.n_layers,
                prefix.layers.len(),
                prefix.layers.first().map_or(0, |(k, _)| k.dims()[0])
            )));
        }
        let mut kv = prefix.prefix(prefix.len(), suffixes.len().max(1))?;
        self.forward_inner(suffixes, opts, Some(&mut kv), true)
    }

    fn forward_inner(
        &self,
        seqs: &[Vec<u32>],
        opts: &RunOptions,
        kv: Option<&mut KvCache>,
        ragged_after_cache: bool,
    ) -> Result<ForwardOutput> {
        let cfg = &self.cfg;
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let (b, t) = (seqs.len(), lengths.iter().copied().max().unwrap_or(0));
        if b == 0 || lengths.contains(&0) {
            return Err(ModelError::EmptyInput("every sequence needs at least one token".into()));
        }
        for id in seqs.iter().flatten() {
            if *id as usize >= cfg.d_vocab {
                return Err(ModelError::TokenOutOfRange { id: *id, vocab: cfg.d_vocab });
            }
        }
        for iv in &opts.interventions {
            iv.hook().check_in(cfg)?;
        }
        // A cache request for a layer the model lacks would otherwise record nothing, silently.
        opts.cache.resolve_in(cfg)?;
        let start_pos = kv.as_ref().map_or(0, |c| c.len());
        if start_pos + t > cfg.n_ctx {
            return Err(ModelError::ContextOverflow { tokens: start_pos + t, context: cfg.n_ctx });
        }
        let padded = start_pos > 0 || lengths.iter().any(|&l| l != t);
        if start_pos > 0 && !ragged_after_cache && lengths.iter().any(|&l| l != t) {
            return Err(ModelError::KvCacheMismatch(
                "sequences continuing a KV cache must all have the same length".into(),
            ));
        }
        // Checked here because candle's `cat` would only report a bare shape mismatch.
        if let Some((cached_k, _)) = kv.as_ref().and_then(|c| c.layers.first()) {
            let cached_b = cached_k.dims()[0];
            if cached_b != b {
                return Err(ModelError::KvCacheMismatch(format!(
                    "the cache holds a batch of {cached_b} sequences, but {b} were given"
                )));
            }
        }
        let dev = self.device();
        let flat: Vec<u32> = seqs
            .iter()
            .flat_map(|s| s.iter().copied().chain(std::iter::repeat(0).take(t - s.len())))
            .collect();
        let tokens = Tensor::from_vec(flat, (b, t), dev)?; // [B, T]
        let tables = self.positional(&lengths, t, start_pos, padded || t > 1)?;

        let trim = opts.trims_final_block(cfg.n_layers)?;
        let mut ctx = HookCtx { opts, cache: ActivationCache::default(), start_pos };
        let mut kv = kv;
        let embed = self.token_embd.rows(&tokens.flatten_all()?)?.reshape((b, t, cfg.d_model))?; // [B, T, D]
        let embed = match cfg.family.arch.scales_embedding() {
            true => (embed * f64::from((cfg.d_model as f32).sqrt()))?, // [B, T, D], Gemma's × √D
            false => embed,
        };
        let mut resid = ctx.hook(HookPoint::Embed, embed)?; // [B, T, D]
        for (i, blk) in self.blk.iter().enumerate() {
            let past = kv.as_deref_mut().map(|c| (c, i));
            let last_only = (trim && i + 1 == cfg.n_layers).then_some(lengths.as_slice());
            resid = self.block(i, blk, resid, tables.for_block(cfg, i), past, last_only, &mut ctx)?;
        }
        self.unembed(resid, lengths, ctx)
    }

    /// Continues a forward pass from the residual stream entering block `first_block`
    /// (`blocks.{first_block}.hook_resid_pre`, which equals the previous block's
    /// `hook_resid_post`), for right-padded sequences of the given real `lengths`.
    ///
    /// Experiments use it to avoid recomputing the blocks an intervention cannot change: a
    /// steering vector added at `blocks.{L}.hook_resid_post` leaves blocks `0..=L` as they were.
    /// Hooks before `first_block` are not visited; interventions at them are an error.
    /// `first_block == n_layers` goes straight to the final norm and unembedding.
    pub fn forward_from(
        &self,
        resid: &Tensor,
        lengths: &[usize],
        first_block: usize,
        opts: &RunOptions,
    ) -> Result<ForwardOutput> {
        self.forward_from_inner(resid, lengths, first_block, opts, None)
    }

    /// [`Llama::forward_from`] after a cached prefix: `resid` `[B, T, D]` holds positions
    /// `kv.len()..kv.len() + T` of B unpadded rows (all of length T) entering `first_block`;
    /// `kv` holds the keys and values of the earlier positions for every block (see
    /// [`KvCache::prefix`]) and is extended. Activation patching uses it: positions before the
    /// patched one are unchanged, so only the rest is recomputed.
    pub fn forward_from_cached(
        &self,
        resid: &Tensor,
        first_block: usize,
        kv: &mut KvCache,
        opts: &RunOptions,
    ) -> Result<ForwardOutput> {
        let (b, t, _) = resid.dims3()?;
        if kv.layers.len() != self.cfg.n_layers || kv.layers[0].0.dims()[0] != b {
            return Err(ModelError::KvCacheMismatch(format!(
                "the cache holds {} blocks × {} rows; the model has {} blocks and the residual {b} rows",
                kv.layers.len(),
                kv.layers.first().map_or(0, |(k, _)| k.dims()[0]),
                self.cfg.n_layers
            )));
        }
        self.forward_from_inner(resid, &vec![t; b], first_block, opts, Some(kv))
    }

    fn forward_from_inner(
        &self,
        resid: &Tensor,
        lengths: &[usize],
        first_block: usize,
        opts: &RunOptions,
        mut kv: Option<&mut KvCache>,
    ) -> Result<ForwardOutput> {
        let cfg = &self.cfg;
        let start_pos = kv.as_ref().map_or(0, |c| c.len());
        let (b, t, d) = resid.dims3()?;
        if d != cfg.d_model || b != lengths.len() || b == 0 || lengths.iter().any(|&l| l == 0 || l > t) {
            return Err(ModelError::EmptyInput(format!(
                "forward_from needs a [B, T, {}] residual with B = {} lengths in 1..=T; got {:?}",
                cfg.d_model,
                lengths.len(),
                resid.dims()
            )));
        }
        if first_block > cfg.n_layers || start_pos + t > cfg.n_ctx {
            return Err(ModelError::HookLayerOutOfRange {
                hook: format!("blocks.{first_block}.hook_resid_pre"),
                layer: first_block,
                n_layers: cfg.n_layers,
            });
        }
        for iv in &opts.interventions {
            let hook = iv.hook();
            hook.check_in(cfg)?;
            if hook.layer().is_none_or(|l| l < first_block) && hook != HookPoint::LnFinal {
                return Err(ModelError::Intervention {
                    hook: hook.to_string(),
                    reason: format!("the pass starts at block {first_block}, after this hook"),
                });
            }
        }
        opts.cache.resolve_in(cfg)?;
        let trim = opts.trims_final_block(cfg.n_layers)?;
        let tables = self.positional(lengths, t, start_pos, start_pos > 0 || lengths.iter().any(|&l| l != t) || t > 1)?;
        let mut ctx = HookCtx { opts, cache: ActivationCache::default(), start_pos };
        let mut resid = resid.clone(); // [B, T, D]
        for (i, blk) in self.blk.iter().enumerate().skip(first_block) {
            let past = kv.as_deref_mut().map(|c| (c, i));
            let last_only = (trim && i + 1 == cfg.n_layers).then_some(lengths);
            resid = self.block(i, blk, resid, tables.for_block(cfg, i), past, last_only, &mut ctx)?;
        }
        self.unembed(resid, lengths.to_vec(), ctx)
    }

    /// The final norm and the unembedding, at every position or each sequence's last one.
    fn unembed(&self, resid: Tensor, lengths: Vec<usize>, mut ctx: HookCtx<'_>) -> Result<ForwardOutput> {
        let cfg = &self.cfg;
        let opts = ctx.opts;
        let normalized = rms_norm(&resid, &self.output_norm, cfg.rms_eps as f32)?; // [B, T, D]
        let normalized = ctx.hook(HookPoint::LnFinal, normalized)?;
        // V is the vocabulary, or the `logit_ids` asked for.
        let head = |x: &Tensor| -> Result<Tensor> {
            match &opts.logit_ids {
                None => linear(x, &self.output), // [.., V]
                Some(ids) => {
                    if let Some(&id) = ids.iter().find(|&&id| id as usize >= cfg.d_vocab) {
                        return Err(ModelError::TokenOutOfRange { id, vocab: cfg.d_vocab });
                    }
                    if ids.is_empty() {
                        let mut dims = x.dims().to_vec();
                        if let Some(last) = dims.last_mut() {
                            *last = 0;
                        }
                        return Ok(Tensor::zeros(dims, x.dtype(), x.device())?); // [.., 0]
                    }
                    let ids = Tensor::new(ids.as_slice(), x.device())?; // [V]
                    let w = self.output.rows(&ids)?; // [V, D]
                    Ok(x.broadcast_matmul(&w.t()?)?) // [.., V]
                }
            }
        };
        let logits = match opts.logits {
            LogitsAt::All => head(&normalized)?, // [B, T, V]
            // The final block already kept only each sequence's last position.
            LogitsAt::Last if normalized.dims()[1] == 1 => head(&normalized.squeeze(1)?)?, // [B, V]
            LogitsAt::Last => {
                let last: Vec<Tensor> = lengths
                    .iter()
                    .enumerate()
                    .map(|(r, &l)| normalized.get(r)?.get(l - 1))
                    .collect::<candle_core::Result<_>>()?;
                head(&Tensor::stack(&last, 0)?)? // [B, V]
            }
        };
        Ok(ForwardOutput { logits, cache: ctx.cache, lengths })
    }

    /// RoPE tables and attention masks for `t` new positions after `start_pos` cached ones:
    /// the global blocks', and the sliding-window blocks' where the family has them. Masks are
    /// built when `masked` (padding, a cache, or several queries) or a window cuts keys off.
    fn positional(&self, lengths: &[usize], t: usize, start_pos: usize, masked: bool) -> Result<Positional> {
        let cfg = &self.cfg;
        let dev = self.device();
        let freqs = self.rope_freqs.as_deref();
        let tables = |theta: f32, scale: f32, window: Option<usize>| -> Result<Tables> {
            let (cos, sin) = rope_angles_with(cfg.d_head, theta, scale, freqs, start_pos, t);
            let half = cfg.d_head / 2;
            let cuts = window.is_some_and(|w| start_pos + t > w);
            Ok(Tables {
                cos: Tensor::from_vec(cos, (t, half), dev)?, // [T, E/2]
                sin: Tensor::from_vec(sin, (t, half), dev)?, // [T, E/2]
                mask: match masked || cuts {
                    true => Some(attention_mask(lengths, t, start_pos, window, dev)?), // [B, 1, T, S]
                    false => None,
                },
                window,
            })
        };
        let f = &cfg.family;
        Ok(Positional {
            global: tables(cfg.rope_theta, f.rope_scale, None)?,
            local: match (f.sliding_window, f.rope_theta_local) {
                (Some(w), theta) => Some(tables(theta.unwrap_or(cfg.rope_theta), 1.0, Some(w))?),
                (None, _) => None,
            },
        })
    }

    fn block(
        &self,
        i: usize,
        blk: &Block,
        resid: Tensor,
        tables: &Tables,
        past: Option<(&mut KvCache, usize)>,
        last_only: Option<&[usize]>,
        ctx: &mut HookCtx<'_>,
    ) -> Result<Tensor> {
        let cfg = &self.cfg;
        let arch = cfg.family.arch;
        let (b, t, _) = resid.dims3()?;
        let (h, k, e) = (cfg.n_heads, cfg.n_kv_heads, cfg.d_head);
        let eps = cfg.rms_eps as f32;
        let rotate = |x: &Tensor, cos: &Tensor, sin: &Tensor| -> Result<Tensor> {
            Ok(match arch.rope_halves() {
                true => rope(x, cos, sin)?,
                false => rope_i(x, cos, sin)?,
            })
        };
        // [B, T, heads·E] → per-head RMSNorm where the family has one → [B, heads, T, E]
        let heads = |x: Tensor, n: usize, norm: Option<&Tensor>| -> Result<Tensor> {
            let x = x.reshape((b, t, n, e))?; // [B, T, n, E]
            let x = match norm {
                Some(w) => rms_norm(&x, w, eps)?,
                None => x,
            };
            Ok(x.transpose(1, 2)?.contiguous()?) // [B, n, T, E]
        };

        let resid_pre = ctx.hook(HookPoint::ResidPre(i), resid)?; // [B, T, D]
        let x = rms_norm(&resid_pre, &blk.attn_norm, eps)?; // [B, T, D]
        let k_new = heads(linear_b(&x, &blk.attn_k, blk.attn_k_bias.as_ref())?, k, blk.attn_k_norm.as_ref())?; // [B, K, T, E]
        let v_new = heads(linear_b(&x, &blk.attn_v, blk.attn_v_bias.as_ref())?, k, None)?; // [B, K, T, E]
        let k_new = rotate(&k_new, &tables.cos, &tables.sin)?; // [B, K, T, E]
        let (keys, values) = match past {
            Some((cache, _)) if cache.layers.len() > i => {
                let (pk, pv) = &cache.layers[i];
                let keys = Tensor::cat(&[pk, &k_new], 2)?; // [B, K, S, E]
                let values = Tensor::cat(&[pv, &v_new], 2)?; // [B, K, S, E]
                cache.layers[i] = (keys.clone(), values.clone());
                (keys, values)
            }
            Some((cache, _)) => {
                cache.layers.push((k_new.clone(), v_new.clone()));
                (k_new, v_new)
            }
            None => (k_new, v_new),
        };
        // In a trimmed final block only each sequence's last position goes on past the keys
        // and values (see `FinalBlock`): one query per row, at that row's own position.
        let (x, resid_pre, cos, sin, mask, t) = match last_only {
            Some(lengths) => {
                let x = last_positions(&x, 1, lengths)?; // [B, 1, D]
                let resid_pre = last_positions(&resid_pre, 1, lengths)?; // [B, 1, D]
                let at = Tensor::from_vec(lengths.iter().map(|&l| l as u32 - 1).collect::<Vec<u32>>(), b, x.device())?; // [B]
                let cos = tables.cos.index_select(&at, 0)?.reshape((b, 1, e / 2))?; // [B, 1, E/2]
                let sin = tables.sin.index_select(&at, 0)?.reshape((b, 1, e / 2))?; // [B, 1, E/2]
                let s_len = keys.dims()[2];
                let mask = last_query_mask(lengths, s_len - t, s_len, tables.window, x.device())?; // [B, 1, 1, S]
                (x, resid_pre, cos, sin, Some(mask), 1)
            }
            None => (x, resid_pre, tables.cos.clone(), tables.sin.clone(), tables.mask.clone(), t),
        };
        let q = linear_b(&x, &blk.attn_q, blk.attn_q_bias.as_ref())?.reshape((b, t, h, e))?; // [B, T, H, E]
        let q = match &blk.attn_q_norm {
            Some(w) => rms_norm(&q, w, eps)?,
            None => q,
        };
        let q = rotate(&q.transpose(1, 2)?.contiguous()?, &cos, &sin)?; // [B, H, T, E]
        // Grouped-query attention without copying keys and values per query head: the R = H/K
        // query heads that share a KV head are adjacent, so they become R·T rows of one matmul.
        let s_len = keys.dims()[2];
        let q = q.reshape((b, k, (h / k) * t, e))?; // [B, K, R·T, E]
        let scores = q.matmul(&keys.t()?)?; // [B, K, R·T, S]
        let scores = match cfg.family.attn_scale {
            None => (scores / (e as f64).sqrt())?,
            Some(scale) => (scores * f64::from(scale))?,
        };
        let scores = scores.reshape((b, h, t, s_len))?; // [B, H, T, S]
        let scores = match &mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let pattern = softmax_last_dim(&scores)?; // [B, H, T, S]
        let pattern = ctx.hook(HookPoint::AttnPattern(i), pattern)?;
        let z = pattern.reshape((b, k, (h / k) * t, s_len))?.matmul(&values)?.reshape((b, h, t, e))?; // [B, H, T, E]
        let z = z.transpose(1, 2)?.reshape((b, t, h * e))?; // [B, T, H*E]
        let attn_out = linear(&z, &blk.attn_output)?; // [B, T, D]
        let attn_out = match &blk.post_attention_norm {
            Some(w) => ctx.hook(HookPoint::Ln1Post(i), rms_norm(&attn_out, w, eps)?)?, // [B, T, D]
            None => attn_out,
        };
        let attn_out = ctx.hook(HookPoint::AttnOut(i), attn_out)?;

        let resid_mid = (&resid_pre + &attn_out)?; // [B, T, D]
        let resid_mid = ctx.hook(HookPoint::ResidMid(i), resid_mid)?;
        let x = rms_norm(&resid_mid, &blk.ffn_norm, eps)?; // [B, T, D]
        let gate = linear(&x, &blk.ffn_gate)?; // [B, T, F]
        let gate = match arch.gelu() {
            true => gelu_tanh(&gate)?, // tanh approximation, as Gemma and llama.cpp use
            false => silu(&gate)?,
        };
        let up = linear(&x, &blk.ffn_up)?; // [B, T, F]
        let mlp_out = linear(&(gate * up)?, &blk.ffn_down)?; // [B, T, D]
        let mlp_out = match &blk.post_ffw_norm {
            Some(w) => ctx.hook(HookPoint::Ln2Post(i), rms_norm(&mlp_out, w, eps)?)?, // [B, T, D]
            None => mlp_out,
        };
        let mlp_out = ctx.hook(HookPoint::MlpOut(i), mlp_out)?;

        let resid_post = (&resid_mid + &mlp_out)?; // [B, T, D]
        ctx.hook(HookPoint::ResidPost(i), resid_post)
    }
}

/// RoPE angles and the attention mask of one kind of block (global or sliding-window) for one
/// forward pass.
struct Tables {
    cos: Tensor,          // [T, E/2]
    sin: Tensor,          // [T, E/2]
    mask: Option<Tensor>, // [B, 1, T, S]
    window: Option<usize>,
}

/// The [`Tables`] of a forward pass: global blocks', and sliding-window blocks' if any.
struct Positional {
    global: Tables,
    local: Option<Tables>,
}

impl Positional {
    fn for_block(&self, cfg: &Config, layer: usize) -> &Tables {
        match (&self.local, cfg.is_local(layer)) {
            (Some(local), true) => local,
            _ => &self.global,
        }
    }
}

/// RoPE angle tables for positions `start..start + len` of a model's global blocks, computed in
/// f64 then stored as f32: `(cos, sin)`, each `len × E/2` row-major. Public so that other
/// writers of this forward pass (the ONNX exporter) use exactly the same values.
pub fn rope_angles(cfg: &Config, start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    rope_angles_with(cfg.d_head, cfg.rope_theta, cfg.family.rope_scale, None, start, len)
}

/// RoPE angles for heads of width `d_head` with base `theta`: pair `j` at position `p` turns by
/// `(p / scale) · theta^(−2j/E) / freqs[j]` (llama.cpp's linear scaling and Llama 3's
/// frequency divisors; `scale` 1 and no `freqs` give plain RoPE).
///
/// Built per forward pass rather than once for the whole context at load time: `n_ctx` comes
/// straight from the file's metadata, and a garbled value (up to 2^31) made loading allocate
/// tens of gigabytes and abort. The per-pass cost is `len × E/2` cosines, negligible next to
/// the matmuls.
pub fn rope_angles_with(
    d_head: usize,
    theta: f32,
    scale: f32,
    freqs: Option<&[f32]>,
    start: usize,
    len: usize,
) -> (Vec<f32>, Vec<f32>) {
    let half = d_head / 2;
    let theta = f64::from(theta);
    let mut cos = Vec::with_capacity(len * half);
    let mut sin = Vec::with_capacity(len * half);
    for pos in start..start + len {
        let pos = match scale {
            1.0 => pos as f64,
            s => pos as f64 / f64::from(s),
        };
        for j in 0..half {
            let inv_freq = 1.0 / theta.powf((2 * j) as f64 / d_head as f64);
            let divisor = freqs.map_or(1.0, |f| f64::from(f[j]));
            let angle = pos * inv_freq / divisor;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// Row `lengths[r] - 1` of `x` along `dim` for each batch row `r`: `[B, .., T, ..]` → `[B, .., 1, ..]`.
fn last_positions(x: &Tensor, dim: usize, lengths: &[usize]) -> Result<Tensor> {
    let rows = lengths
        .iter()
        .enumerate()
        .map(|(r, &len)| x.narrow(0, r, 1)?.narrow(dim, len - 1, 1))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 0)?.contiguous()?)
}

/// Additive mask `[B, 1, 1, S]` for each sequence's last query alone: keys up to and including
/// it (and, with a `window`, fewer than `window` positions back) are visible, padding after it
/// is not.
fn last_query_mask(lengths: &[usize], start_pos: usize, s_len: usize, window: Option<usize>, dev: &Device) -> Result<Tensor> {
    let mut m = Vec::with_capacity(lengths.len() * s_len);
    for &len in lengths {
        let q_abs = start_pos + len - 1;
        m.extend((0..s_len).map(|s| match s <= q_abs && window.is_none_or(|w| q_abs - s < w) {
            true => 0.0f32,
            false => f32::NEG_INFINITY,
        }));
    }
    Ok(Tensor::from_vec(m, (lengths.len(), 1, 1, s_len), dev)?)
}

/// Additive mask `[B, 1, T, S]`: 0 where query `t` may attend to key `s`, −∞ where the key is
/// in the future, is padding, or (with a sliding `window`) lies `window` or more positions
/// back (llama.cpp's standard window). Right padding means no real query row is ever fully
/// masked.
fn attention_mask(lengths: &[usize], t: usize, start_pos: usize, window: Option<usize>, dev: &Device) -> Result<Tensor> {
    let s_len = start_pos + t;
    let mut m = Vec::with_capacity(lengths.len() * t * s_len);
    for &len in lengths {
        for q in 0..t {
            let q_abs = start_pos + q;
            for s in 0..s_len {
                let visible = s <= q_abs && s < start_pos + len && window.is_none_or(|w| q_abs - s < w);
                m.push(if visible { 0.0f32 } else { f32::NEG_INFINITY });
            }
        }
    }
    Ok(Tensor::from_vec(m, (lengths.len(), 1, t, s_len), dev)?.to_dtype(DType::F32)?)
}

/// GELU with the tanh approximation, `½x(1 + tanh u)` for `u = √(2/π)(x + 0.044715x³)`,
/// computed as `x·σ(2u)` (the same function: `½(1 + tanh u) = σ(2u)`) with one `exp` per value.
/// Written here because candle's `gelu` calls `tanh` per value, and libm's `tanhf` (through
/// `expm1f`) was 9% of a Gemma study's recording stage natively; `σ` also avoids `1 + tanh u`
/// cancelling for large negative inputs.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    const TWO_SQRT_2_OVER_PI: f32 = 1.595_769_1; // 2·√(2/π)
    let v: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let y: Vec<f32> = v.iter().map(|&x| x / (1.0 + (-TWO_SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).exp())).collect();
    Ok(Tensor::from_vec(y, x.dims(), x.device())?)
}

/// Softmax of a logits row in f64, for scoring and sampling outside the tensor code.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln() + max;
    logits.iter().map(|&x| x as f64 - lse).collect()
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] {
            best = i;
        }
    }
    best as u32
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_tanh_equals_candles_tanh_form() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.025).chain([-30.0, -12.0, 12.0, 30.0]).collect();
        let x = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let ours: Vec<f32> = gelu_tanh(&x).unwrap().to_vec1().unwrap();
        let candle: Vec<f32> = x.gelu().unwrap().to_vec1().unwrap();
        for ((x, a), b) in xs.iter().zip(&ours).zip(&candle) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "gelu({x}): {a} against candle's {b}");
        }
        assert_eq!(ours[400], 0.0);
        assert!(ours.iter().all(|v| v.is_finite()));
    }
}
