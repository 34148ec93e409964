//! The engine's forward pass written out as an ONNX graph (opset 17, plain decomposed ops), so
//! that any ONNX runtime (Python, JS, C++) runs Hawthorne's models with their residual streams
//! exposed and steerable.
//!
//! Interface (B = batch, T = tokens, L = layers, D = d_model, V = vocabulary):
//! - inputs `input_ids [B,T]` (int64), `attention_mask [B,T]` (int64, 1 = token, 0 = right
//!   padding) and `steer [L,D]` (float; row `i` is added to `blocks.{i}.hook_resid_post` at
//!   every position, so zeros are a no-op);
//! - outputs `logits [B,T,V]` and `resid [L+1,B,T,D]`: `hook_embed` then every
//!   `blocks.{i}.hook_resid_post` (after steering), stacked;
//! - with a [`MonitorHead`], also `probe_score [B,T]` = `direction · resid + bias` at the
//!   head's hook: positive reads as "unobserved".
//!
//! Node outputs inside blocks are named after TransformerLens hooks
//! (`blocks.0.attn.hook_pattern`, `blocks.0.hook_resid_mid`, …), so a graph viewer shows the
//! same vocabulary as the rest of Hawthorne. The maths mirrors `hawthorne_model::model` line by
//! line; the parity tests hold the two together.
//!
//! The ONNX protobuf types come from the `onnx-protobuf` crate (generated from onnx.proto);
//! the graph itself is built here because no maintained Rust crate builds ONNX graphs.

use candle_core::Tensor;
use hawthorne_model::{Config, HookPoint, Model, Weight};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto;
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::error::{OnnxError, Result};

/// The opset the graph uses (ReduceMean's axes are still an attribute here).
pub const OPSET: i64 = 17;
/// ONNX IR version matching opset 17.
const IR_VERSION: i64 = 8;
/// A protobuf message cannot exceed 2 GiB; larger models would need external data files.
const MAX_PROTO_BYTES: usize = (1 << 31) - 1;

/// A trained linear probe to run inside the graph: `probe_score = direction · x + bias` where
/// `x` is the residual stream at `hook` (`hook_embed` or `blocks.{i}.hook_resid_post`).
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorHead {
    pub hook: HookPoint,
    /// `[D]`.
    pub direction: Vec<f32>,
    pub bias: f32,
    /// Where the probe came from, stored in the model's metadata.
    pub description: String,
}

/// What to add to the exported graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOptions {
    pub monitor: Option<MonitorHead>,
}

/// Exports `model` as ONNX protobuf bytes.
pub fn export(model: &Model, opts: &ExportOptions) -> Result<Vec<u8>> {
    let cfg = model.config();
    check_expressible(cfg)?;
    if model.llama.rope_freqs.is_some() {
        return Err(OnnxError::Unsupported("Llama 3 RoPE frequency divisors (`rope_freqs`) are not exported yet".into()));
    }
    let mut g = Graph::default();
    let l = &model.llama;
    let (d, e, h, k) = (cfg.d_model as i64, cfg.d_head as i64, cfg.n_heads as i64, cfg.n_kv_heads as i64);
    let resid_index = |hook: HookPoint| match hook {
        HookPoint::Embed => Ok(0),
        HookPoint::ResidPost(i) if i < cfg.n_layers => Ok(i + 1),
        other => Err(OnnxError::Unsupported(format!(
            "a monitor head reads hook_embed or blocks.{{0..{}}}.hook_resid_post, not {other}",
            cfg.n_layers
        ))),
    };
    let monitor = match &opts.monitor {
        Some(m) if m.direction.len() != cfg.d_model => {
            return Err(OnnxError::Unsupported(format!(
                "the monitor direction has {} values but d_model is {}",
                m.direction.len(),
                cfg.d_model
            )))
        }
        Some(m) => Some((resid_index(m.hook)?, m)),
        None => None,
    };

    // Shared pieces: T, RoPE tables for positions 0..T, the additive attention mask.
    let t_len = g.node("Shape", &["input_ids"], vec![attr_int("start", 1), attr_int("end", 2)]); // [1]
    // `[n_ctx, E/2, 1]`: the engine's own tables, so exported and native logits agree to rounding.
    let (cos_table, sin_table) = hawthorne_model::model::rope_angles(cfg, 0, cfg.n_ctx);
    let cos_full = g.init_f32("rope.cos", &[cfg.n_ctx as i64, e / 2, 1], &cos_table);
    let sin_full = g.init_f32("rope.sin", &[cfg.n_ctx as i64, e / 2, 1], &sin_table);
    let zero_1d = g.init_i64("const.zero_1d", &[1], &[0]);
    let axis0 = g.init_i64("const.axis0", &[1], &[0]);
    let cos = g.node("Slice", &[&cos_full, &zero_1d, &t_len, &axis0], vec![]); // [T, E/2, 1]
    let sin = g.node("Slice", &[&sin_full, &zero_1d, &t_len, &axis0], vec![]); // [T, E/2, 1]
    let tt = g.node("Concat", &[&t_len, &t_len], vec![attr_int("axis", 0)]); // [2]
    let ones = g.node("ConstantOfShape", &[&tt], vec![attr_tensor("value", scalar_f32(1.0))]); // [T, T]
    let causal = g.node("Trilu", &[&ones], vec![attr_int("upper", 0)]); // [T, T], 1 on and below the diagonal
    let causal = g.node("Cast", &[&causal], vec![attr_int("to", DataType::BOOL as i64)]);
    let axes12 = g.init_i64("const.axes12", &[2], &[1, 2]);
    let keys = g.node("Unsqueeze", &["attention_mask", &axes12], vec![]); // [B, 1, 1, T]
    let keys = g.node("Cast", &[&keys], vec![attr_int("to", DataType::BOOL as i64)]);
    let visible = g.node("And", &[&causal, &keys], vec![]); // [B, 1, T, T]
    let zero = g.init_f32("const.zero", &[], &[0.0]);
    let neg_inf = g.init_f32("const.neg_inf", &[], &[f32::NEG_INFINITY]);
    let mask = g.node("Where", &[&visible, &zero, &neg_inf], vec![]); // [B, 1, T, T]
    let sqrt_e = g.init_f32("const.sqrt_d_head", &[], &[(cfg.d_head as f64).sqrt() as f32]);
    let eps = g.init_f32("const.rms_eps", &[], &[cfg.rms_eps as f32]);
    let q_shape = g.init_i64("const.q_shape", &[4], &[0, 0, h, e]);
    let kv_shape = g.init_i64("const.kv_shape", &[4], &[0, 0, k, e]);
    let pairs_shape = g.init_i64("const.rope_pairs", &[5], &[0, 0, 0, e / 2, 2]);
    let heads_shape = g.init_i64("const.head_shape", &[4], &[0, 0, 0, e]);
    let rep_shape = g.init_i64("const.kv_repeat", &[5], &[1, 1, h / k, 1, 1]);
    let grouped_shape = g.init_i64("const.grouped_shape", &[4], &[0, h, -1, e]);
    let z_shape = g.init_i64("const.z_shape", &[3], &[0, 0, h * e]);
    let axis_2 = g.init_i64("const.axis2", &[1], &[2]);

    // ONNX holds f32 weights: packed matrices are dequantised here.
    let embed_w = g.init_tensor("token_embd.weight", &l.token_embd.dequantize()?, false)?; // [V, D]
    let embed = g.node_named("hook_embed", "Gather", &[&embed_w, "input_ids"], vec![attr_int("axis", 0)]); // [B, T, D]
    let mut resids = vec![embed.clone()];
    let mut resid = embed;
    for (i, blk) in l.blk.iter().enumerate() {
        let w = |g: &mut Graph, name: &str, t: &Weight| g.init_tensor(&format!("blk.{i}.{name}.weight^T"), &t.dequantize()?, true);
        let hook = |name: &str| format!("blocks.{i}.{name}");
        let resid_pre = resid; // [B, T, D]
        let attn_norm = g.init_tensor(&format!("blk.{i}.attn_norm.weight"), &blk.attn_norm, false)?;
        let x = g.rms_norm(&resid_pre, &attn_norm, &eps); // [B, T, D]
        let wq = w(&mut g, "attn_q", &blk.attn_q)?;
        let wk = w(&mut g, "attn_k", &blk.attn_k)?;
        let wv = w(&mut g, "attn_v", &blk.attn_v)?;
        let q = g.heads(&x, &wq, &q_shape); // [B, H, T, E]
        let k_new = g.heads(&x, &wk, &kv_shape); // [B, K, T, E]
        let v_new = g.heads(&x, &wv, &kv_shape); // [B, K, T, E]
        let q = g.rope(&q, &cos, &sin, &pairs_shape, &heads_shape); // [B, H, T, E]
        let k_new = g.rope(&k_new, &cos, &sin, &pairs_shape, &heads_shape); // [B, K, T, E]
        let (keys, values) = match h / k {
            1 => (k_new, v_new),
            _ => (
                g.repeat_kv(&k_new, &axis_2, &rep_shape, &grouped_shape), // [B, H, T, E]
                g.repeat_kv(&v_new, &axis_2, &rep_shape, &grouped_shape), // [B, H, T, E]
            ),
        };
        let keys_t = g.node("Transpose", &[&keys], vec![attr_ints("perm", &[0, 1, 3, 2])]); // [B, H, E, T]
        let scores = g.node("MatMul", &[&q, &keys_t], vec![]); // [B, H, T, T]
        let scores = g.node("Div", &[&scores, &sqrt_e], vec![]);
        let scores = g.node("Add", &[&scores, &mask], vec![]);
        let pattern = g.node_named(&hook("attn.hook_pattern"), "Softmax", &[&scores], vec![attr_int("axis", -1)]); // [B, H, T, T]
        let z = g.node("MatMul", &[&pattern, &values], vec![]); // [B, H, T, E]
        let z = g.node("Transpose", &[&z], vec![attr_ints("perm", &[0, 2, 1, 3])]); // [B, T, H, E]
        let z = g.node("Reshape", &[&z, &z_shape], vec![]); // [B, T, H*E]
        let wo = w(&mut g, "attn_output", &blk.attn_output)?;
        let attn_out = g.node_named(&hook("hook_attn_out"), "MatMul", &[&z, &wo], vec![]); // [B, T, D]

        let resid_mid = g.node_named(&hook("hook_resid_mid"), "Add", &[&resid_pre, &attn_out], vec![]); // [B, T, D]
        let ffn_norm = g.init_tensor(&format!("blk.{i}.ffn_norm.weight"), &blk.ffn_norm, false)?;
        let x = g.rms_norm(&resid_mid, &ffn_norm, &eps); // [B, T, D]
        let wg = w(&mut g, "ffn_gate", &blk.ffn_gate)?;
        let wu = w(&mut g, "ffn_up", &blk.ffn_up)?;
        let wd = w(&mut g, "ffn_down", &blk.ffn_down)?;
        let gate = g.node("MatMul", &[&x, &wg], vec![]); // [B, T, F]
        let gate_sig = g.node("Sigmoid", &[&gate], vec![]);
        let gate = g.node("Mul", &[&gate, &gate_sig], vec![]); // silu
        let up = g.node("MatMul", &[&x, &wu], vec![]); // [B, T, F]
        let act = g.node("Mul", &[&gate, &up], vec![]); // [B, T, F]
        let mlp_out = g.node_named(&hook("hook_mlp_out"), "MatMul", &[&act, &wd], vec![]); // [B, T, D]

        let resid_post = g.node("Add", &[&resid_mid, &mlp_out], vec![]); // [B, T, D]
        let layer = g.init_i64(&format!("const.layer{i}"), &[], &[i as i64]);
        let steer_i = g.node("Gather", &["steer", &layer], vec![attr_int("axis", 0)]); // [D]
        resid = g.node_named(&hook("hook_resid_post"), "Add", &[&resid_post, &steer_i], vec![]); // [B, T, D]
        resids.push(resid.clone());
    }
    let output_norm = g.init_tensor("output_norm.weight", &l.output_norm, false)?;
    let normalized = g.rms_norm(&resid, &output_norm, &eps); // [B, T, D]
    let normalized = g.node_named("ln_final.hook_normalized", "Identity", &[&normalized], vec![]);
    if l.output.shares_storage(&l.token_embd) {
        // Tied unembedding: reuse the embedding matrix through Gemm(transB) on [B*T, D]
        // instead of storing a transposed copy of the largest tensor.
        let flat_shape = g.init_i64("const.flat_rows", &[2], &[-1, d]);
        let flat = g.node("Reshape", &[&normalized, &flat_shape], vec![]); // [B*T, D]
        let logits = g.node("Gemm", &[&flat, &embed_w], vec![attr_int("transB", 1)]); // [B*T, V]
        let bt = g.node("Shape", &["input_ids"], vec![]); // [2]
        let v = g.init_i64("const.vocab", &[1], &[cfg.d_vocab as i64]);
        let out_shape = g.node("Concat", &[&bt, &v], vec![attr_int("axis", 0)]); // [3]
        g.node_named("logits", "Reshape", &[&logits, &out_shape], vec![]); // [B, T, V]
    } else {
        let wout = g.init_tensor("output.weight^T", &l.output.dequantize()?, true)?; // [D, V]
        g.node_named("logits", "MatMul", &[&normalized, &wout], vec![]); // [B, T, V]
    }
    let axis0_init = axis0.clone();
    let stacked: Vec<String> = resids.iter().map(|r| g.node("Unsqueeze", &[r, &axis0_init], vec![])).collect();
    let stacked_refs: Vec<&str> = stacked.iter().map(String::as_str).collect();
    g.node_named("resid", "Concat", &stacked_refs, vec![attr_int("axis", 0)]); // [L+1, B, T, D]

    let mut outputs = vec![
        value_info("logits", DataType::FLOAT, &[Dim::B, Dim::T, Dim::N(cfg.d_vocab)]),
        value_info("resid", DataType::FLOAT, &[Dim::N(cfg.n_layers + 1), Dim::B, Dim::T, Dim::N(cfg.d_model)]),
    ];
    let mut meta = vec![
        ("hawthorne.model_sha256", model.sha256.clone()),
        ("hawthorne.model_name", model.name.clone().unwrap_or_default()),
        (
            "hawthorne.interface",
            "inputs input_ids[B,T] int64, attention_mask[B,T] int64 (right padding), steer[L,D] float; \
             outputs logits[B,T,V], resid[L+1,B,T,D] = hook_embed then blocks.{i}.hook_resid_post"
                .to_string(),
        ),
        ("hawthorne.tokenizer_json", model.tokenizer.to_json()?),
        ("hawthorne.chat_prompt", model.tokenizer.chat_prompt("{system}", "{user}")?),
        ("hawthorne.add_bos", model.tokenizer.add_bos.to_string()),
    ];
    if let Some((idx, m)) = monitor {
        let dir = g.init_f32("monitor.direction", &[d], &m.direction);
        let bias = g.init_f32("monitor.bias", &[], &[m.bias]);
        let dot = g.node("MatMul", &[&resids[idx], &dir], vec![]); // [B, T]
        g.node_named("probe_score", "Add", &[&dot, &bias], vec![]); // [B, T]
        outputs.push(value_info("probe_score", DataType::FLOAT, &[Dim::B, Dim::T]));
        meta.push(("hawthorne.monitor.hook", m.hook.to_string()));
        meta.push(("hawthorne.monitor", m.description.clone()));
    }

    let graph = GraphProto {
        name: "hawthorne".into(),
        node: g.nodes,
        initializer: g.inits,
        input: vec![
            value_info("input_ids", DataType::INT64, &[Dim::B, Dim::T]),
            value_info("attention_mask", DataType::INT64, &[Dim::B, Dim::T]),
            value_info("steer", DataType::FLOAT, &[Dim::N(cfg.n_layers), Dim::N(cfg.d_model)]),
        ],
        output: outputs,
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }],
        producer_name: "hawthorne".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        metadata_props: meta
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key: key.into(), value, ..Default::default() })
            .collect(),
        ..Default::default()
    };
    let size = proto.compute_size() as usize;
    if size > MAX_PROTO_BYTES {
        return Err(OnnxError::Unsupported(format!(
            "the graph would be {size} bytes, over protobuf's 2 GiB limit (external weight files are not supported)"
        )));
    }
    proto.write_to_bytes().map_err(|e| OnnxError::Protobuf(e.to_string()))
}

/// Shapes the graph's reshapes and RoPE cannot handle, refused with the values involved.
fn check_expressible(cfg: &Config) -> Result<()> {
    let bad = |why: String| Err(OnnxError::Unsupported(why));
    if cfg.family.arch != hawthorne_model::gguf::Arch::Llama {
        return bad(format!("the exporter writes the llama architecture only; this model is `{}`", cfg.family.arch));
    }
    if cfg.d_head % 2 != 0 {
        return bad(format!("RoPE needs an even d_head, got {}", cfg.d_head));
    }
    if cfg.n_kv_heads == 0 || cfg.n_heads % cfg.n_kv_heads != 0 {
        return bad(format!("{} query heads cannot share {} KV heads evenly", cfg.n_heads, cfg.n_kv_heads));
    }
    // The RoPE tables are stored for the whole context: refuse contexts whose tables alone
    // would be unreasonable (n_ctx × d_head floats).
    if cfg.n_ctx.saturating_mul(cfg.d_head) > 1 << 26 {
        return bad(format!("a context of {} tokens × d_head {} makes RoPE tables too large", cfg.n_ctx, cfg.d_head));
    }
    Ok(())
}

/// Nodes and initializers being collected, with generated names for intermediate values.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    counter: usize,
}

impl Graph {
    /// Adds a one-output node and returns its output's (generated) name.
    fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.counter += 1;
        let name = format!("{}_{}", op.to_lowercase(), self.counter);
        self.node_named(&name, op, inputs, attrs)
    }

    /// Adds a node whose output has the given name.
    fn node_named(&mut self, output: &str, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: format!("{op}:{output}"),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        output.to_string()
    }

    fn init_f32(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.inits.push(TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::FLOAT as i32,
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    fn init_i64(&mut self, name: &str, dims: &[i64], data: &[i64]) -> String {
        self.inits.push(TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::INT64 as i32,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name.to_string()
    }

    /// A weight as an initializer; `transpose` stores `[out, in]` as `[in, out]` for `x @ W^T`.
    fn init_tensor(&mut self, name: &str, t: &Tensor, transpose: bool) -> Result<String> {
        let t = if transpose { t.t()?.contiguous()? } else { t.clone() };
        let dims: Vec<i64> = t.dims().iter().map(|&x| x as i64).collect();
        let data = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.init_f32(name, &dims, &data))
    }

    /// `x / sqrt(mean(x², last axis) + eps) * weight`, as the engine's fused RMSNorm.
    fn rms_norm(&mut self, x: &str, weight: &str, eps: &str) -> String {
        let sq = self.node("Mul", &[x, x], vec![]);
        let ms = self.node("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]); // [.., 1]
        let ms = self.node("Add", &[&ms, eps], vec![]);
        let rms = self.node("Sqrt", &[&ms], vec![]);
        let x = self.node("Div", &[x, &rms], vec![]);
        self.node("Mul", &[&x, weight], vec![])
    }

    /// `x @ W^T` split into heads: `[B, T, D]` → `[B, heads, T, E]`.
    fn heads(&mut self, x: &str, w_t: &str, shape: &str) -> String {
        let y = self.node("MatMul", &[x, w_t], vec![]); // [B, T, heads*E]
        let y = self.node("Reshape", &[&y, shape], vec![]); // [B, T, heads, E]
        self.node("Transpose", &[&y], vec![attr_ints("perm", &[0, 2, 1, 3])]) // [B, heads, T, E]
    }

    /// Interleaved RoPE (`candle_nn::rotary_emb::rope_i`): pairs `(x[2j], x[2j+1])` rotate by
    /// the angle of frequency `j`.
    fn rope(&mut self, x: &str, cos: &str, sin: &str, pairs: &str, heads: &str) -> String {
        let xp = self.node("Reshape", &[x, pairs], vec![]); // [B, h, T, E/2, 2]
        self.counter += 1;
        let (x0, x1) = (format!("rope_even_{}", self.counter), format!("rope_odd_{}", self.counter));
        self.nodes.push(NodeProto {
            input: vec![xp],
            output: vec![x0.clone(), x1.clone()],
            name: format!("Split:{x0}"),
            op_type: "Split".into(),
            attribute: vec![attr_int("axis", -1)],
            ..Default::default()
        }); // [B, h, T, E/2, 1] each
        let a = self.node("Mul", &[&x0, cos], vec![]);
        let b = self.node("Mul", &[&x1, sin], vec![]);
        let o0 = self.node("Sub", &[&a, &b], vec![]);
        let a = self.node("Mul", &[&x0, sin], vec![]);
        let b = self.node("Mul", &[&x1, cos], vec![]);
        let o1 = self.node("Add", &[&a, &b], vec![]);
        let o = self.node("Concat", &[&o0, &o1], vec![attr_int("axis", -1)]); // [B, h, T, E/2, 2]
        self.node("Reshape", &[&o, heads], vec![]) // [B, h, T, E]
    }

    /// `[B, K, T, E]` → `[B, H, T, E]`, each KV head repeated for its query heads.
    fn repeat_kv(&mut self, x: &str, axis2: &str, rep: &str, grouped: &str) -> String {
        let y = self.node("Unsqueeze", &[x, axis2], vec![]); // [B, K, 1, T, E]
        let y = self.node("Expand", &[&y, rep], vec![]); // [B, K, H/K, T, E]
        self.node("Reshape", &[&y, grouped], vec![]) // [B, H, T, E]
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { name: name.into(), type_: AttributeType::INT.into(), i, ..Default::default() }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), type_: AttributeType::INTS.into(), ints: ints.to_vec(), ..Default::default() }
}

fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { name: name.into(), type_: AttributeType::TENSOR.into(), t: Some(t).into(), ..Default::default() }
}

fn scalar_f32(x: f32) -> TensorProto {
    TensorProto { dims: vec![1], data_type: DataType::FLOAT as i32, float_data: vec![x], ..Default::default() }
}

/// A symbolic (`B`, `T`) or fixed dimension.
#[derive(Clone, Copy)]
enum Dim {
    B,
    T,
    N(usize),
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::B => dimension::Value::DimParam("batch".into()),
                Dim::T => dimension::Value::DimParam("tokens".into()),
                Dim::N(n) => dimension::Value::DimValue(*n as i64),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: elem as i32,
        shape: Some(TensorShapeProto { dim, ..Default::default() }).into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }).into(),
        ..Default::default()
    }
}
