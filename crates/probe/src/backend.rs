//! The one small boundary between experiments and a model: tokenize, forward with hooks and
//! interventions, read residuals through the unembedding, generate.
//!
//! The candle engine implements it; other backends (ONNX Runtime) can implement it too and
//! say which interventions they cannot express.

use candle_core::Tensor;
use hawthorne_model::{ComputeMode, Config, ForwardOutput, GenerateOptions, Generation, KvCache, LogitsAt, Model, ModelError, RunOptions};

/// What an experiment needs from a model.
pub trait LanguageModel {
    fn config(&self) -> &Config;
    /// sha256 of the model file.
    fn sha256(&self) -> &str;
    /// How the weights are kept and multiplied (recorded in the report).
    fn compute_mode(&self) -> ComputeMode {
        ComputeMode::F32
    }
    /// A (system, user) chat turn as prompt tokens ending where the answer starts.
    fn chat_tokens(&self, system: &str, user: &str) -> Result<Vec<u32>, ModelError>;
    /// How [`LanguageModel::chat_tokens`] formats prompts (`chatml`, `gemma`, `llama3`, `plain`).
    fn chat_format(&self) -> String {
        "chatml".into()
    }
    /// Plain tokenization (no template, no BOS): answers and text inside a prompt.
    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError>;
    /// The text of one token, for labels.
    fn token_text(&self, id: u32) -> String;
    /// A batched forward pass with caching and interventions.
    fn forward(&self, seqs: &[Vec<u32>], opts: &RunOptions) -> Result<ForwardOutput, ModelError>;
    /// The logit lens: `[n, D]` residual vectors → `[n, V]` log-probabilities through the final
    /// norm and the unembedding.
    fn logit_lens(&self, resid: &Tensor) -> Result<Tensor, ModelError>;
    fn generate(&self, prompt: &[u32], opts: &GenerateOptions) -> Result<Generation, ModelError>;
    /// Activations recorded elsewhere (by the Python collector) instead of forward passes: the
    /// experiment reads its readouts and answer logits from here and skips the stages that
    /// need a live model (logit lens, continuations, patching, steering).
    fn recorded(&self) -> Option<&crate::recorded::Recorded> {
        None
    }
    /// Whether [`hawthorne_model::Intervention::Patch`] is supported.
    fn supports_patching(&self) -> bool {
        true
    }
    /// Whether [`LanguageModel::forward_from`] works; experiments then skip recomputing the
    /// blocks an intervention cannot change.
    fn supports_forward_from(&self) -> bool {
        false
    }
    /// Continues a forward pass from the residual stream `[B, T, D]` entering block
    /// `first_block`, for right-padded sequences of the given lengths.
    fn forward_from(
        &self,
        _resid: &Tensor,
        _lengths: &[usize],
        _first_block: usize,
        _opts: &RunOptions,
    ) -> Result<ForwardOutput, ModelError> {
        Err(ModelError::Unsupported("continuing a forward pass from a residual".into()))
    }
    /// Runs one sequence and returns its keys and values at every block (for
    /// [`LanguageModel::forward_from_cached`]); only when `supports_forward_from`.
    fn cache_sequence(&self, _tokens: &[u32]) -> Result<KvCache, ModelError> {
        Err(ModelError::Unsupported("caching keys and values".into()))
    }
    /// Runs sequences that all start with `prefix`, given as their `suffixes`: the prefix runs
    /// once for the whole batch. Logits and cached hooks cover the suffix positions only; only
    /// when `supports_forward_from` (see `Llama::forward_after_prefix`).
    fn forward_after_prefix(&self, _prefix: &[u32], _suffixes: &[Vec<u32>], _opts: &RunOptions) -> Result<ForwardOutput, ModelError> {
        Err(ModelError::Unsupported("running a batch after a shared prefix".into()))
    }
    /// [`LanguageModel::forward_after_prefix`], also returning the prefix's own pass under
    /// `prefix_opts` (the hooks it caches): one pass over the prefix serves both.
    fn forward_with_prefix(
        &self,
        _prefix: &[u32],
        _suffixes: &[Vec<u32>],
        _prefix_opts: &RunOptions,
        _opts: &RunOptions,
    ) -> Result<(ForwardOutput, ForwardOutput), ModelError> {
        Err(ModelError::Unsupported("running a batch after a shared prefix".into()))
    }
    /// [`LanguageModel::forward_from`] for unpadded rows after a cached prefix (see
    /// `Llama::forward_from_cached`).
    fn forward_from_cached(
        &self,
        _resid: &Tensor,
        _first_block: usize,
        _kv: &mut KvCache,
        _opts: &RunOptions,
    ) -> Result<ForwardOutput, ModelError> {
        Err(ModelError::Unsupported("continuing a forward pass after a cached prefix".into()))
    }
}

impl LanguageModel for Model {
    fn config(&self) -> &Config {
        Model::config(self)
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    fn compute_mode(&self) -> ComputeMode {
        self.mode()
    }

    fn chat_tokens(&self, system: &str, user: &str) -> Result<Vec<u32>, ModelError> {
        Model::chat_tokens(self, system, user)
    }

    fn chat_format(&self) -> String {
        self.tokenizer.chat_format.name().to_string()
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer.encode_text(text)
    }

    fn token_text(&self, id: u32) -> String {
        self.tokenizer.decode(&[id], false).unwrap_or_else(|_| format!("#{id}"))
    }

    fn forward(&self, seqs: &[Vec<u32>], opts: &RunOptions) -> Result<ForwardOutput, ModelError> {
        self.llama.forward(seqs, opts, None)
    }

    fn logit_lens(&self, resid: &Tensor) -> Result<Tensor, ModelError> {
        let l = &self.llama;
        let normed = candle_nn_rms_norm(resid, &l.output_norm, l.cfg.rms_eps as f32)?; // [n, D]
        let logits = l.output.forward(&normed)?; // [n, V]
        Ok(log_softmax_rows(&logits)?)
    }

    fn generate(&self, prompt: &[u32], opts: &GenerateOptions) -> Result<Generation, ModelError> {
        Model::generate(self, prompt, opts, |_, _| {})
    }

    fn supports_forward_from(&self) -> bool {
        true
    }

    fn forward_from(
        &self,
        resid: &Tensor,
        lengths: &[usize],
        first_block: usize,
        opts: &RunOptions,
    ) -> Result<ForwardOutput, ModelError> {
        self.llama.forward_from(resid, lengths, first_block, opts)
    }

    fn cache_sequence(&self, tokens: &[u32]) -> Result<KvCache, ModelError> {
        let mut kv = KvCache::default();
        // Only the keys and values are wanted: no logits (a full vocabulary's unembedding).
        let opts = RunOptions { logits: LogitsAt::Last, logit_ids: Some(Vec::new()), ..RunOptions::default() };
        self.llama.forward(&[tokens.to_vec()], &opts, Some(&mut kv))?;
        Ok(kv)
    }

    fn forward_from_cached(
        &self,
        resid: &Tensor,
        first_block: usize,
        kv: &mut KvCache,
        opts: &RunOptions,
    ) -> Result<ForwardOutput, ModelError> {
        self.llama.forward_from_cached(resid, first_block, kv, opts)
    }

    fn forward_after_prefix(&self, prefix: &[u32], suffixes: &[Vec<u32>], opts: &RunOptions) -> Result<ForwardOutput, ModelError> {
        let kv = self.cache_sequence(prefix)?;
        self.llama.forward_after_prefix(&kv, suffixes, opts)
    }

    fn forward_with_prefix(
        &self,
        prefix: &[u32],
        suffixes: &[Vec<u32>],
        prefix_opts: &RunOptions,
        opts: &RunOptions,
    ) -> Result<(ForwardOutput, ForwardOutput), ModelError> {
        let mut kv = KvCache::default();
        let head = self.llama.forward(&[prefix.to_vec()], prefix_opts, Some(&mut kv))?;
        let tail = self.llama.forward_after_prefix(&kv, suffixes, opts)?;
        Ok((head, tail))
    }
}

/// RMS norm over the last dimension (the engine's own formula, in tensor ops).
fn candle_nn_rms_norm(x: &Tensor, weight: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(candle_core::D::Minus1)?; // [n, 1]
    x.broadcast_div(&(ms + f64::from(eps))?.sqrt()?)?.broadcast_mul(weight)
}

/// Row-wise log-softmax of `[n, V]`.
fn log_softmax_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(candle_core::D::Minus1)?;
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(candle_core::D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}
