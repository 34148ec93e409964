//! Weight matrices as the engine keeps them: packed in their GGUF quantisation (the default) or
//! dequantised to f32 (`ComputeMode::F32`, for exact work).
//!
//! A packed matrix is candle's `QTensor` (the file's blocks, copied once). It is multiplied by
//! this crate's kernels where candle has no SIMD path for its type (`kernels.rs`: Q4_1, Q5_0,
//! Q5_1) or none that serves many activation rows in wasm (`panel.rs`: Q4_K, Q6_K), and by
//! candle's quantized matmul otherwise (Q4_0, Q8_0, F16, BF16).
//! Embedding lookups dequantise only the rows they need, and a tied unembedding shares the
//! embedding's packed matrix.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::error::{ModelError, Result};
use crate::kernels::{self, Isa};
use crate::panel::{self, Source};

/// How the engine keeps and multiplies weight matrices. Recorded in every report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputeMode {
    /// Matrices stay in their GGUF quantisation and are multiplied block by block, with
    /// activations rounded to 8 bits per block of 32 as llama.cpp does.
    #[default]
    Packed,
    /// Every weight dequantised to f32 at load: exact products, about 6× the memory of Q4.
    F32,
}

impl ComputeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeMode::Packed => "packed",
            ComputeMode::F32 => "f32",
        }
    }
}

impl std::fmt::Display for ComputeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ComputeMode {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "packed" => Ok(ComputeMode::Packed),
            "f32" => Ok(ComputeMode::F32),
            other => Err(ModelError::Unsupported(format!("compute mode `{other}`: use `packed` or `f32`"))),
        }
    }
}

/// A weight matrix `[out, in]`.
#[derive(Debug, Clone)]
pub enum Weight {
    /// f32 values (F32 files, and every matrix in [`ComputeMode::F32`]).
    Dense(Tensor),
    /// The file's quantised blocks, shared between clones.
    Packed(Arc<Packed>),
}

/// A packed matrix and the kernel that multiplies it.
#[derive(Debug)]
pub struct Packed {
    q: Arc<QTensor>,
    /// This crate's kernel for the type (`kernels` for blocks of 32, `panel` for the
    /// K-quants), or `None` for candle's quantized matmul.
    source: Option<Source>,
    isa: Isa,
    rows: usize,
    cols: usize,
}

impl Weight {
    /// Wraps a tensor read from a GGUF file: kept packed when `mode` asks for it and the type is
    /// quantised (or F16/BF16), dequantised otherwise.
    pub fn from_qtensor(name: &str, q: QTensor, mode: ComputeMode) -> Result<Weight> {
        let (rows, cols) = q.shape().dims2().map_err(|_| ModelError::TensorShape {
            name: name.into(),
            expected: vec![0, 0],
            actual: q.shape().dims().to_vec(),
        })?;
        if mode == ComputeMode::F32 || q.dtype() == GgmlDType::F32 {
            return Ok(Weight::Dense(q.dequantize(&candle_core::Device::Cpu)?));
        }
        if cols % q.dtype().block_size() != 0 {
            return Err(ModelError::CorruptGguf(format!(
                "tensor `{name}`: rows of {cols} values do not divide into {:?} blocks of {}",
                q.dtype(),
                q.dtype().block_size()
            )));
        }
        let source = Source::from_ggml(q.dtype());
        Ok(Weight::Packed(Arc::new(Packed { q: Arc::new(q), source, isa: Isa::detect(), rows, cols })))
    }

    /// `[out, in]`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            Weight::Dense(t) => (t.dims()[0], t.dims()[1]),
            Weight::Packed(p) => (p.rows, p.cols),
        }
    }

    pub fn elem_count(&self) -> usize {
        let (r, c) = self.dims();
        r * c
    }

    /// Bytes held in memory.
    pub fn storage_bytes(&self) -> usize {
        match self {
            Weight::Dense(t) => t.elem_count() * 4,
            Weight::Packed(p) => p.q.storage_size_in_bytes(),
        }
    }

    /// The storage type's GGUF name (`F32`, `Q4_1`, …).
    pub fn dtype_name(&self) -> String {
        match self {
            Weight::Dense(_) => "F32".into(),
            Weight::Packed(p) => format!("{:?}", p.q.dtype()),
        }
    }

    /// Whether both are the same matrix in memory (a tied unembedding).
    pub fn shares_storage(&self, other: &Weight) -> bool {
        match (self, other) {
            (Weight::Dense(a), Weight::Dense(b)) => a.id() == b.id(),
            (Weight::Packed(a), Weight::Packed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// `x @ W^T` for `x: [.., in]` → `[.., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (out, d_in) = self.dims();
        if dims.last() != Some(&d_in) {
            let mut expected = dims.clone();
            if let Some(last) = expected.last_mut() {
                *last = d_in;
            }
            return Err(ModelError::TensorShape { name: "input of a linear layer".into(), expected, actual: dims });
        }
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = x.reshape((rows, d_in))?.contiguous()?; // [rows, in]
        let y = match self {
            Weight::Dense(w) => x2.matmul(&w.t()?)?,                            // [rows, out]
            Weight::Packed(p) if p.own_kernel(rows) => x2.apply_op1_no_bwd(p.as_ref())?, // [rows, out] // [rows, out]
            Weight::Packed(p) => x2.apply_op1_no_bwd(p.q.as_ref())?,            // [rows, out]
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = out;
        }
        Ok(y.reshape(out_dims)?)
    }

    /// Rows `ids` as f32 `[n, in]`: an embedding lookup that dequantises only those rows.
    pub fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Weight::Dense(w) => w.embedding(ids)?,
            Weight::Packed(p) => p.q.embedding(ids)?,
        })
    }

    /// The whole matrix as f32 (ONNX export, the logit lens's reference paths).
    pub fn dequantize(&self) -> Result<Tensor> {
        Ok(match self {
            Weight::Dense(w) => w.clone(),
            Weight::Packed(p) => p.q.dequantize(&candle_core::Device::Cpu)?,
        })
    }
}

impl Packed {
    /// Whether this crate's kernels multiply `rows` activation rows by this matrix: always for
    /// the blocks of 32, from `panel::MIN_ROWS` rows for the K-quants (candle's path below,
    /// with the same `Q8_K` activations).
    fn own_kernel(&self, rows: usize) -> bool {
        match self.source {
            Some(Source::Blocks(_)) => true,
            Some(Source::Q4K | Source::Q6K) => rows >= panel::MIN_ROWS,
            None => false,
        }
    }
}

impl CustomOp1 for Packed {
    fn name(&self) -> &'static str {
        "hawthorne-packed-matmul"
    }

    /// `x: [m, k]` (contiguous f32) times this `[n, k]` matrix transposed → `[m, n]`.
    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some(source) = self.source else {
            candle_core::bail!("no packed kernel for {:?}", self.q.dtype())
        };
        let CpuStorage::F32(x) = storage else {
            candle_core::bail!("packed matmul needs f32 input, got {:?}", storage.dtype())
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("packed matmul needs a contiguous input")
        };
        let (m, k) = layout.shape().dims2()?;
        if k != self.cols {
            candle_core::bail!("packed matmul: input [{m}, {k}] against a [{}, {}] matrix", self.rows, self.cols)
        }
        let w = self.q.data()?;
        let mut out = vec![0f32; m * self.rows];
        match source {
            Source::Blocks(format) => kernels::matmul(self.isa, format, &w, self.rows, k, &x[start..end], &mut out),
            Source::Q4K | Source::Q6K => panel::matmul(self.isa, source, &w, self.rows, k, &x[start..end], &mut out),
        }
        Ok((CpuStorage::F32(out), Shape::from((m, self.rows))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn packed_products_follow_the_dequantised_matrix() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.05, (96, 256), &dev)?;
        let x = Tensor::randn(0f32, 1.0, (3, 5, 256), &dev)?;
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K, GgmlDType::F16] {
            let packed = Weight::from_qtensor("w", QTensor::quantize(&w, dtype)?, ComputeMode::Packed)?;
            let dense = Weight::from_qtensor("w", QTensor::quantize(&w, dtype)?, ComputeMode::F32)?;
            assert!(matches!(packed, Weight::Packed(_)) && matches!(dense, Weight::Dense(_)));
            let (yp, yd) = (packed.forward(&x)?, dense.forward(&x)?);
            assert_eq!(yp.dims(), &[3, 5, 96]);
            let err = (yp - &yd)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = yd.abs()?.max_all()?.to_scalar::<f32>()?;
            // 8-bit activations: about 1% of the largest output.
            assert!(err <= 0.02 * scale, "{dtype:?}: max error {err} for outputs up to {scale}");
            let ids = Tensor::new(&[5u32, 0, 95], &dev)?;
            let rows = (packed.rows(&ids)? - dense.rows(&ids)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(rows, 0.0, "{dtype:?}: rows must dequantise exactly");
        }
        Ok(())
    }

    #[test]
    fn f32_files_stay_dense_and_storage_is_counted() -> anyhow::Result<()> {
        let w = Tensor::ones((4, 32), DType::F32, &candle_core::Device::Cpu)?;
        let q = Weight::from_qtensor("w", QTensor::quantize(&w, GgmlDType::F32)?, ComputeMode::Packed)?;
        assert!(matches!(q, Weight::Dense(_)));
        assert_eq!(q.storage_bytes(), 4 * 32 * 4);
        let p = Weight::from_qtensor("w", QTensor::quantize(&w, GgmlDType::Q4_1)?, ComputeMode::Packed)?;
        assert_eq!((p.storage_bytes(), p.dtype_name().as_str()), (4 * 20, "Q4_1"));
        assert!(p.shares_storage(&p.clone()) && !p.shares_storage(&q));
        Ok(())
    }
}
