//! GGUF reading: validates the file, reads the architecture's metadata and loads tensors packed or as f32.
//!
//! Parsing itself is candle's (`candle_core::quantized::gguf_file`); this module adds the
//! checks candle leaves to the caller (architecture, tensor types, shape sizes) so that a
//! broken file becomes a [`ModelError`] instead of a panic.

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};

use crate::error::{ModelError, Result};
use crate::weights::{ComputeMode, Weight};

/// Hyper-parameters of a model, read from GGUF metadata (`{arch}.*` keys).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Width of one query/key/value head (`{arch}.attention.key_length`, else d_model / heads).
    pub d_head: usize,
    pub d_mlp: usize,
    pub d_vocab: usize,
    pub n_ctx: usize,
    pub rope_theta: f32,
    pub rms_eps: f64,
    /// What the family changes in the forward pass; Llama when absent (older reports).
    #[serde(default)]
    pub family: Family,
}

/// The model families the one forward pass covers, named as in `general.architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[default]
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Arch {
    /// Every supported architecture, for error messages and docs.
    pub const ALL: [Arch; 4] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// RoPE rotates the two halves of each head (llama.cpp's NEOX layout) rather than adjacent
    /// pairs (its NORM layout, which the llama converter's Q/K permutation expects).
    pub fn rope_halves(self) -> bool {
        !matches!(self, Arch::Llama)
    }

    /// Queries and keys are RMS-normalised per head before RoPE.
    pub fn qk_norm(self) -> bool {
        matches!(self, Arch::Qwen3 | Arch::Gemma3)
    }

    /// The attention and MLP outputs are RMS-normalised before they join the residual stream.
    pub fn post_norms(self) -> bool {
        matches!(self, Arch::Gemma3)
    }

    /// The MLP gate uses GELU (tanh approximation) instead of SiLU.
    pub fn gelu(self) -> bool {
        matches!(self, Arch::Gemma3)
    }

    /// The token embedding is multiplied by √d_model.
    pub fn scales_embedding(self) -> bool {
        matches!(self, Arch::Gemma3)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What distinguishes a family's forward pass from Llama's, as data (the way llama.cpp's
/// per-architecture tables are), so that every family runs the one pass in `model.rs`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Family {
    pub arch: Arch,
    /// Multiplies the queries before the scores; 1/√d_head unless the family says otherwise.
    pub attn_scale: Option<f32>,
    /// Local blocks attend to at most this many most recent positions (their own included).
    pub sliding_window: Option<usize>,
    /// With a sliding window, every `swa_period`-th block (the last of each period) is global.
    pub swa_period: usize,
    /// RoPE base of the local (sliding-window) blocks; `rope_theta` is the global blocks'.
    pub rope_theta_local: Option<f32>,
    /// Linear RoPE scaling of the global blocks: positions are divided by this.
    pub rope_scale: f32,
}

impl Default for Family {
    fn default() -> Family {
        Family { arch: Arch::Llama, attn_scale: None, sliding_window: None, swa_period: 0, rope_theta_local: None, rope_scale: 1.0 }
    }
}

impl Config {
    /// Whether block `layer` attends through a sliding window.
    pub fn is_local(&self, layer: usize) -> bool {
        let f = &self.family;
        f.sliding_window.is_some() && f.swa_period > 0 && layer % f.swa_period < f.swa_period - 1
    }

    /// The factor applied to the queries before the attention scores.
    pub fn attn_scale(&self) -> f32 {
        self.family.attn_scale.unwrap_or(1.0 / (self.d_head as f32).sqrt())
    }

    /// Width of all query heads together (≠ d_model in Qwen3 and Gemma 3).
    pub fn d_query(&self) -> usize {
        self.n_heads * self.d_head
    }
}

/// A parsed GGUF file: metadata plus tensors keyed by checkpoint name.
#[derive(Debug)]
pub struct GgufModel {
    pub metadata: HashMap<String, Value>,
    /// Two-dimensional tensors, packed or dense as the compute mode asks.
    pub matrices: HashMap<String, Weight>,
    /// Every other tensor (norm weights, …), dequantised to f32.
    pub dense: HashMap<String, Tensor>,
    pub config: Config,
    pub mode: ComputeMode,
}

/// Largest dimension we accept for one tensor axis; larger means a garbled header.
const MAX_DIM: usize = 1 << 31;

fn meta<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a Value> {
    md.get(key).ok_or_else(|| ModelError::Metadata {
        key: key.to_string(),
        reason: "missing".into(),
    })
}

fn meta_usize(md: &HashMap<String, Value>, key: &str) -> Result<usize> {
    let v = meta(md, key)?;
    let n = match v {
        Value::U8(x) => u64::from(*x),
        Value::U16(x) => u64::from(*x),
        Value::U32(x) => u64::from(*x),
        Value::U64(x) => *x,
        Value::I32(x) if *x >= 0 => *x as u64,
        Value::I64(x) if *x >= 0 => *x as u64,
        other => {
            return Err(ModelError::Metadata {
                key: key.into(),
                reason: format!("expected a non-negative integer, found {other:?}"),
            })
        }
    };
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0 && *n < MAX_DIM)
        .ok_or_else(|| ModelError::Metadata {
            key: key.into(),
            reason: format!("value {n} is out of range"),
        })
}

fn meta_f64(md: &HashMap<String, Value>, key: &str) -> Result<Option<f64>> {
    Ok(match md.get(key) {
        None => None,
        Some(Value::F32(x)) => Some(f64::from(*x)),
        Some(Value::F64(x)) => Some(*x),
        Some(other) => {
            return Err(ModelError::Metadata {
                key: key.into(),
                reason: format!("expected a float, found {other:?}"),
            })
        }
    })
}

/// Reads a string-valued metadata key.
pub fn meta_str<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a str> {
    match meta(md, key)? {
        Value::String(s) => Ok(s),
        other => Err(ModelError::Metadata {
            key: key.into(),
            reason: format!("expected a string, found {other:?}"),
        }),
    }
}

/// Reads a string-array metadata key.
pub fn meta_str_array(md: &HashMap<String, Value>, key: &str) -> Result<Vec<String>> {
    let Value::Array(items) = meta(md, key)? else {
        return Err(ModelError::Metadata {
            key: key.into(),
            reason: "expected an array of strings".into(),
        });
    };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(ModelError::Metadata {
                key: key.into(),
                reason: format!("expected strings, found {other:?}"),
            }),
        })
        .collect()
}

/// Reads an integer-array metadata key (e.g. `tokenizer.ggml.token_type`).
pub fn meta_int_array(md: &HashMap<String, Value>, key: &str) -> Result<Option<Vec<i64>>> {
    let Some(v) = md.get(key) else { return Ok(None) };
    let Value::Array(items) = v else {
        return Err(ModelError::Metadata {
            key: key.into(),
            reason: "expected an array of integers".into(),
        });
    };
    items
        .iter()
        .map(|v| match v {
            Value::I32(x) => Ok(i64::from(*x)),
            Value::U32(x) => Ok(i64::from(*x)),
            Value::I8(x) => Ok(i64::from(*x)),
            Value::U8(x) => Ok(i64::from(*x)),
            Value::I64(x) => Ok(*x),
            other => Err(ModelError::Metadata {
                key: key.into(),
                reason: format!("expected integers, found {other:?}"),
            }),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Reads an optional unsigned metadata key (e.g. a special token id).
pub fn meta_opt_u32(md: &HashMap<String, Value>, key: &str) -> Option<u32> {
    match md.get(key)? {
        Value::U32(x) => Some(*x),
        Value::I32(x) => u32::try_from(*x).ok(),
        Value::U64(x) => u32::try_from(*x).ok(),
        Value::U8(x) => Some(u32::from(*x)),
        Value::U16(x) => Some(u32::from(*x)),
        _ => None,
    }
}

fn supported(dtype: GgmlDType) -> bool {
    !matches!(dtype, GgmlDType::Q8_1 | GgmlDType::Q8K)
}

impl Config {
    fn from_metadata(md: &HashMap<String, Value>, d_vocab: usize) -> Result<Config> {
        let name = meta_str(md, "general.architecture")?;
        let arch = Arch::from_name(name).ok_or_else(|| ModelError::UnsupportedArchitecture(name.to_string()))?;
        let key = |k: &str| format!("{name}.{k}");
        let d_model = meta_usize(md, &key("embedding_length"))?;
        let n_heads = meta_usize(md, &key("attention.head_count"))?;
        let n_kv_heads = match md.get(&key("attention.head_count_kv")) {
            Some(_) => meta_usize(md, &key("attention.head_count_kv"))?,
            None => n_heads,
        };
        let d_head = match md.get(&key("attention.key_length")) {
            Some(_) => meta_usize(md, &key("attention.key_length"))?,
            None if d_model % n_heads == 0 => d_model / n_heads,
            None => {
                return Err(ModelError::Metadata {
                    key: key("attention.head_count"),
                    reason: format!("d_model {d_model} does not divide into {n_heads} heads, and no key_length is given"),
                })
            }
        };
        if n_heads % n_kv_heads != 0 {
            return Err(ModelError::Metadata {
                key: key("attention.head_count_kv"),
                reason: format!("{n_heads} query heads must divide into {n_kv_heads} KV heads"),
            });
        }
        if d_head % 2 != 0 {
            return Err(ModelError::Metadata {
                key: key("attention.key_length"),
                reason: format!("head size {d_head} must be even for RoPE"),
            });
        }
        if md.contains_key(&key("attention.value_length")) {
            let v = meta_usize(md, &key("attention.value_length"))?;
            if v != d_head {
                return Err(ModelError::Metadata {
                    key: key("attention.value_length"),
                    reason: format!("value heads of {v} differ from key heads of {d_head}; only equal widths are supported"),
                });
            }
        }
        let mut family = Family { arch, ..Family::default() };
        if arch == Arch::Gemma3 {
            family.sliding_window = Some(meta_usize(md, &key("attention.sliding_window"))?);
            family.swa_period = 6; // llama.cpp's Gemma 3 pattern: five local blocks, then one global
            family.rope_theta_local = Some(10_000.0);
            if matches!(md.get(&key("rope.scaling.type")), Some(Value::String(t)) if t == "linear") {
                family.rope_scale = meta_f64(md, &key("rope.scaling.factor"))?.unwrap_or(1.0) as f32;
            }
            // Gemma 3 27B scales queries by d_model / heads rather than the head width
            // (`query_pre_attn_scalar`), as llama.cpp does for its 62-block size.
            let n_layers = meta_usize(md, &key("block_count"))?;
            family.attn_scale = Some(match n_layers {
                62 => 1.0 / ((d_model / n_heads) as f32).sqrt(),
                _ => 1.0 / (d_head as f32).sqrt(),
            });
        }
        if family.rope_scale <= 0.0 || !family.rope_scale.is_finite() {
            return Err(ModelError::Metadata { key: key("rope.scaling.factor"), reason: format!("{} is not a positive factor", family.rope_scale) });
        }
        Ok(Config {
            n_layers: meta_usize(md, &key("block_count"))?,
            d_model,
            n_heads,
            n_kv_heads,
            d_head,
            d_mlp: meta_usize(md, &key("feed_forward_length"))?,
            d_vocab,
            n_ctx: meta_usize(md, &key("context_length"))?,
            rope_theta: meta_f64(md, &key("rope.freq_base"))?.unwrap_or(10_000.0) as f32,
            rms_eps: meta_f64(md, &key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5),
            family,
        })
    }
}

/// What a GGUF file holds and what loading it would take, read from its header alone: shown
/// before a user's own file is loaded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelCheck {
    pub name: Option<String>,
    pub config: Config,
    /// Parameters over every tensor.
    pub n_params: u64,
    /// Tensor types and how many tensors have each, most common first.
    pub tensor_types: Vec<(String, usize)>,
    /// The file's tensor bytes.
    pub tensor_bytes: u64,
    /// Bytes the largest tensor takes (copied once more while it loads).
    pub largest_tensor_bytes: u64,
    /// How prompts will be formatted (`chatml`, `gemma`, `llama3`, `plain`).
    pub chat_format: String,
}

/// The most memory the page lets a model take in its worker: wasm32 addresses 4 GiB, and the
/// tab needs room for activations and the browser's own use.
pub const BROWSER_MEMORY_LIMIT: u64 = 3 << 30;

impl ModelCheck {
    /// About how much memory the weights take in the worker once loaded, plus the largest
    /// tensor's transient copy and working room for activations.
    pub fn memory_estimate(&self) -> u64 {
        self.tensor_bytes + self.largest_tensor_bytes + (32 << 20)
    }

    /// Why the page cannot load this file, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        let need = self.memory_estimate();
        (need > BROWSER_MEMORY_LIMIT).then(|| {
            format!(
                "it needs about {:.1} GB in the browser's worker, more than the {:.0} GB a tab can use; run it with the `hawthorne` command line instead",
                need as f64 / 1e9,
                BROWSER_MEMORY_LIMIT as f64 / (1u64 << 30) as f64
            )
        })
    }
}

/// Reads a GGUF file's tensors one at a time, so that callers can report progress and yield
/// between tensors, and need not hold the whole file in memory: the loader starts from the
/// header and takes each tensor's bytes as they come (the browser worker copies them one tensor
/// at a time out of the downloaded buffer, so its memory never holds the file).
///
/// Tensors load largest first: the largest one's bytes and its packed copy are then the only
/// two large buffers alive at once, which keeps the peak (and wasm's never-shrinking memory)
/// near the size of the weights.
#[derive(Debug)]
pub struct GgufLoader {
    content: Content,
    order: Vec<String>,
    next: usize,
    mode: ComputeMode,
    matrices: HashMap<String, Weight>,
    dense: HashMap<String, Tensor>,
    config: Config,
}

/// The byte size of a tensor of `dims` in `dtype`, if the shape is possible.
fn tensor_bytes(dims: &[usize], dtype: GgmlDType) -> Option<usize> {
    // A zero dimension is refused too: candle then casts an empty buffer's dangling pointer.
    if dims.is_empty() {
        return None;
    }
    let elems = dims.iter().try_fold(1usize, |acc, d| (0 < *d && *d < MAX_DIM).then(|| acc.checked_mul(*d)).flatten())?;
    if elems % dtype.block_size() != 0 {
        return None;
    }
    (elems / dtype.block_size()).checked_mul(dtype.type_size())
}

impl GgufLoader {
    /// Reads and checks the header, metadata and tensor table. `header` is the start of the
    /// file, at least through the tensor table; the whole file will do.
    pub fn new(header: &[u8], mode: ComputeMode) -> Result<Self> {
        if header.len() < 4 || &header[..4] != b"GGUF" {
            return Err(ModelError::NotGguf(format!(
                "expected the magic bytes `GGUF` at the start, found {:?}",
                String::from_utf8_lossy(&header[..header.len().min(4)])
            )));
        }
        precheck_alignment(header)?;
        let mut reader = Cursor::new(header);
        let content = Content::read(&mut reader).map_err(|e| ModelError::CorruptGguf(e.to_string()))?;
        let tokens = meta_str_array(&content.metadata, "tokenizer.ggml.tokens")?;
        let config = Config::from_metadata(&content.metadata, tokens.len())?;
        let mut sized = Vec::with_capacity(content.tensor_infos.len());
        for (name, info) in &content.tensor_infos {
            if !supported(info.ggml_dtype) {
                return Err(ModelError::UnsupportedTensorType {
                    tensor: name.clone(),
                    dtype: format!("{:?}", info.ggml_dtype),
                });
            }
            let dims = info.shape.dims();
            let bytes = tensor_bytes(dims, info.ggml_dtype).ok_or_else(|| {
                ModelError::CorruptGguf(format!(
                    "tensor `{name}` has an impossible shape {dims:?} for {:?} blocks of {}",
                    info.ggml_dtype,
                    info.ggml_dtype.block_size()
                ))
            })?;
            sized.push((bytes, name.clone()));
        }
        sized.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(GgufLoader {
            content,
            order: sized.into_iter().map(|(_, n)| n).collect(),
            next: 0,
            mode,
            matrices: HashMap::new(),
            dense: HashMap::new(),
            config,
        })
    }

    /// What the file holds and what loading it takes, from the header read so far (the tokenizer
    /// is built too, so that an unsupported vocabulary or template is named before loading).
    pub fn check(&self) -> Result<ModelCheck> {
        let tokenizer = crate::tokenizer::Tokenizer::from_gguf_metadata(&self.content.metadata)?;
        let mut types: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        let (mut n_params, mut total_bytes, mut largest) = (0u64, 0u64, 0u64);
        for info in self.content.tensor_infos.values() {
            *types.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
            n_params += info.shape.elem_count() as u64;
            let bytes = tensor_bytes(info.shape.dims(), info.ggml_dtype).unwrap_or(0) as u64;
            total_bytes += bytes;
            largest = largest.max(bytes);
        }
        let mut tensor_types: Vec<(String, usize)> = types.into_iter().collect();
        tensor_types.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(ModelCheck {
            name: self.content.metadata.get("general.name").and_then(|v| v.to_string().ok()).cloned(),
            config: self.config.clone(),
            n_params,
            tensor_types,
            tensor_bytes: total_bytes,
            largest_tensor_bytes: largest,
            chat_format: tokenizer.chat_format.name().to_string(),
        })
    }

    /// Number of tensors in the file.
    pub fn total(&self) -> usize {
        self.order.len()
    }

    /// The model's hyper-parameters, known from the header.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the next tensor's bytes lie in the file, or `None` when all are loaded.
    pub fn next_range(&self) -> Option<std::ops::Range<u64>> {
        let name = self.order.get(self.next)?;
        let info = &self.content.tensor_infos[name];
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        let len = tensor_bytes(info.shape.dims(), info.ggml_dtype).unwrap_or(0) as u64;
        Some(start..start.saturating_add(len))
    }

    /// Loads the next tensor from exactly its bytes (the file's [`GgufLoader::next_range`]);
    /// returns how many tensors are done.
    pub fn push(&mut self, bytes: &[u8]) -> Result<usize> {
        let Some(name) = self.order.get(self.next).cloned() else {
            return Err(ModelError::CorruptGguf("every tensor is already loaded".into()));
        };
        let info = &self.content.tensor_infos[&name];
        let dims = info.shape.dims().to_vec();
        // candle reads the bytes in place as an array of blocks (`slice::from_raw_parts` over
        // `*const Block`), so they must be aligned for the block type (at most 8 bytes). A file
        // with an odd `general.alignment`, or a buffer that starts at an odd address, gets its
        // tensor copied to an aligned spot first.
        let mut spare = Vec::new();
        let bytes = if bytes.as_ptr().align_offset(8) == 0 {
            bytes
        } else {
            spare.resize(bytes.len() + 8, 0u8);
            let at = spare.as_ptr().align_offset(8).min(8);
            spare[at..at + bytes.len()].copy_from_slice(bytes);
            &spare[at..at + bytes.len()]
        };
        let q = candle_core::quantized::ggml_file::qtensor_from_ggml(info.ggml_dtype, bytes, dims.clone(), &Device::Cpu)
            .map_err(|e| ModelError::CorruptGguf(format!("tensor `{name}`: {e}")))?;
        if dims.len() == 2 {
            let w = Weight::from_qtensor(&name, q, self.mode)?;
            self.matrices.insert(name, w);
        } else {
            self.dense.insert(name, q.dequantize(&Device::Cpu)?);
        }
        self.next += 1;
        Ok(self.next)
    }

    /// Loads the next tensor out of the whole `file`; returns how many are done, or `None`
    /// when all are.
    pub fn step(&mut self, file: &[u8]) -> Result<Option<usize>> {
        let Some(range) = self.next_range() else { return Ok(None) };
        let name = &self.order[self.next];
        let bytes = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(a, b)| file.get(a..b))
            .ok_or_else(|| {
                ModelError::CorruptGguf(format!(
                    "tensor `{name}` needs bytes {}..{}, but the file has {} bytes (truncated?)",
                    range.start,
                    range.end,
                    file.len()
                ))
            })?;
        self.push(bytes).map(Some)
    }

    /// The loaded file, once every tensor is loaded.
    pub fn finish(self) -> Result<GgufModel> {
        if let Some(name) = self.order.get(self.next) {
            return Err(ModelError::CorruptGguf(format!(
                "loading stopped before tensor `{name}` ({} of {} loaded)",
                self.next,
                self.order.len()
            )));
        }
        Ok(GgufModel {
            metadata: self.content.metadata,
            matrices: self.matrices,
            dense: self.dense,
            config: self.config,
            mode: self.mode,
        })
    }
}

/// Rejects `general.alignment = 0` before candle sees the file.
///
/// candle's `Content::read` rounds the tensor-data offset up with `div_ceil(alignment)` and
/// panics on a zero divisor; the key is only known after the whole metadata section is read,
/// so this walks the metadata the same way (GGUF v1 has u32 lengths, v2/v3 u64). Any
/// structural problem ends the walk quietly: candle then reports it as a normal error.
fn precheck_alignment(bytes: &[u8]) -> Result<()> {
    struct Walk<'b> {
        bytes: &'b [u8],
        pos: usize,
        wide: bool, // u64 lengths (v2, v3) rather than u32 (v1)
    }
    impl Walk<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len())?;
            let s = &self.bytes[self.pos..end];
            self.pos = end;
            Some(s)
        }
        fn uint(&mut self, n: usize) -> Option<u64> {
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(self.take(n)?);
            Some(u64::from_le_bytes(buf))
        }
        fn len(&mut self) -> Option<usize> {
            usize::try_from(self.uint(if self.wide { 8 } else { 4 })?).ok()
        }
        /// Skips one value of GGUF type `ty`; returns it if it is an integer.
        fn value(&mut self, ty: u64, depth: usize) -> Option<Option<i128>> {
            if depth > 64 {
                return None; // candle's nesting limit
            }
            Some(match ty {
                0 | 7 => Some(i128::from(self.uint(1)?)),         // u8, bool
                1 => Some(i128::from(self.uint(1)? as u8 as i8)), // i8
                2 => Some(i128::from(self.uint(2)?)),             // u16
                3 => Some(i128::from(self.uint(2)? as u16 as i16)),
                4 => Some(i128::from(self.uint(4)?)), // u32
                5 => Some(i128::from(self.uint(4)? as u32 as i32)),
                6 => {
                    self.take(4)?; // f32
                    None
                }
                10..=12 => {
                    self.take(8)?; // u64, i64, f64
                    None
                }
                8 => {
                    let n = self.len()?;
                    self.take(n)?;
                    None
                }
                9 => {
                    let inner = self.uint(4)?;
                    let n = self.len()?;
                    for _ in 0..n {
                        self.value(inner, depth + 1)?;
                    }
                    None
                }
                _ => return None,
            })
        }
    }
    let wide = match bytes.get(4..8).map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]])) {
        Some(2 | 3) => true,
        Some(1) => false,
        _ => return Ok(()),
    };
    let mut w = Walk { bytes, pos: 8, wide };
    let mut alignment = None;
    // A walk that stops early (`None`) means a malformed file: candle reports that itself.
    let _ = (|| {
        let _tensor_count = w.len()?;
        let kv_count = w.len()?;
        for _ in 0..kv_count {
            let key_len = w.len()?;
            let mut key = w.take(key_len)?.to_vec();
            while key.last() == Some(&0) {
                key.pop(); // candle drops trailing NULs from strings
            }
            let ty = w.uint(4)?;
            let value = w.value(ty, 0)?;
            if key == b"general.alignment" {
                // candle uses the last occurrence, and only the integer types up to 32 bits.
                alignment = value.filter(|_| matches!(ty, 0..=5));
            }
        }
        Some(())
    })();
    if alignment == Some(0) {
        return Err(ModelError::CorruptGguf(
            "metadata key `general.alignment` is 0; it must be a positive number of bytes".into(),
        ));
    }
    Ok(())
}

impl GgufModel {
    /// Parses GGUF bytes, keeping matrices as `mode` asks.
    ///
    /// `on_tensor(done, total)` is called after each tensor so callers can show progress.
    pub fn parse(bytes: &[u8], mode: ComputeMode, mut on_tensor: impl FnMut(usize, usize)) -> Result<GgufModel> {
        let mut loader = GgufLoader::new(bytes, mode)?;
        let total = loader.total();
        while let Some(done) = loader.step(bytes)? {
            on_tensor(done, total);
        }
        loader.finish()
    }

    /// Whether the file has a tensor of this checkpoint name.
    pub fn has(&self, name: &str) -> bool {
        self.matrices.contains_key(name) || self.dense.contains_key(name)
    }

    /// Takes a matrix out by checkpoint name, checking its shape.
    pub fn take_matrix(&mut self, name: &str, shape: [usize; 2]) -> Result<Weight> {
        let w = match self.matrices.remove(name) {
            Some(w) => w,
            None if self.dense.contains_key(name) => {
                let actual = self.dense[name].dims().to_vec();
                return Err(ModelError::TensorShape { name: name.into(), expected: shape.to_vec(), actual });
            }
            None => return Err(ModelError::MissingTensor { name: name.into() }),
        };
        let (r, c) = w.dims();
        if [r, c] != shape {
            return Err(ModelError::TensorShape { name: name.into(), expected: shape.to_vec(), actual: vec![r, c] });
        }
        Ok(w)
    }

    /// Takes a vector (or other non-matrix tensor) out as f32, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = match self.dense.remove(name) {
            Some(t) => t,
            None => match self.matrices.remove(name) {
                Some(w) => w.dequantize()?,
                None => return Err(ModelError::MissingTensor { name: name.into() }),
            },
        };
        if t.dims() != shape {
            return Err(ModelError::TensorShape {
                name: name.into(),
                expected: shape.to_vec(),
                actual: t.dims().to_vec(),
            });
        }
        Ok(t)
    }
}
