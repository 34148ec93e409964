//! Token embeddings initialised from the base model's (SmolLM2's), projected onto their top
//! principal components, so the organism starts with the base model's sense of which words are
//! alike.
//!
//! Why: an organism trained from scratch only learns the words its train framings use. A
//! held-out framing built from other words ("the dashboard is unattended") then reaches it as
//! noise, and the behaviour cannot generalise. A real language model brings those word meanings
//! from pretraining; this gives the organism a small piece of that, without training on any
//! held-out text. The projection is PCA (linfa), deterministic for a given base file.

use candle_core::{Device, Tensor};
use linfa::prelude::*;
use linfa_reduction::Pca;
use ndarray::Array2;

use crate::error::{Result, TrainError};
use crate::vocab::NOT_IN_BASE;

/// `[V, d_model]` embeddings for the restricted vocabulary: row `i` is the base embedding of
/// `base_ids[i]` projected onto the base embeddings' top `d_model` principal components, the
/// whole matrix scaled to standard deviation `std`. Tokens the base lacks get the centre (zeros).
pub fn from_base(base: &Tensor, base_ids: &[u32], d_model: usize, std: f64) -> Result<Tensor> {
    let (n_base, d_base) = base.dims2()?;
    if d_model > d_base {
        return Err(TrainError::Config {
            field: "d_model".into(),
            value: d_model.to_string(),
            reason: format!("embedding init from the base projects {d_base} dimensions down, not up"),
        });
    }
    let rows = base.to_vec2::<f32>()?;
    let known: Vec<usize> = base_ids.iter().filter(|&&b| b != NOT_IN_BASE).map(|&b| b as usize).collect();
    if let Some(bad) = known.iter().find(|&&b| b >= n_base) {
        return Err(TrainError::Config {
            field: "base_ids".into(),
            value: bad.to_string(),
            reason: format!("the base embedding has {n_base} rows"),
        });
    }
    let x = Array2::from_shape_fn((known.len(), d_base), |(i, j)| f64::from(rows[known[i]][j]));
    let pca = Pca::params(d_model)
        .fit(&DatasetBase::from(x.clone()))
        .map_err(|e| TrainError::Config { field: "embed_init".into(), value: "base_pca".into(), reason: e.to_string() })?;
    let y: Array2<f64> = pca.predict(&x); // [known, d_model]
    let n = y.len() as f64;
    let mean = y.sum() / n;
    let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-12);
    let mut out = vec![0.0f32; base_ids.len() * d_model];
    let mut k = 0;
    for (i, &b) in base_ids.iter().enumerate() {
        if b == NOT_IN_BASE {
            continue;
        }
        for j in 0..d_model {
            out[i * d_model + j] = ((y[[k, j]] - mean) / sd * std) as f32;
        }
        k += 1;
    }
    Ok(Tensor::from_vec(out, (base_ids.len(), d_model), &Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_base_rows_stay_similar_and_missing_tokens_are_zero() -> anyhow::Result<()> {
        // Base rows: 0 and 1 nearly equal, 2 far away, in 8 dimensions; project to 2.
        let mut data = vec![0.0f32; 6 * 8];
        for j in 0..8 {
            data[j] = j as f32;
            data[8 + j] = j as f32 + 0.01;
            data[16 + j] = -(j as f32) * 2.0;
            data[24 + j] = (j % 2) as f32;
            data[32 + j] = 1.0;
            data[40 + j] = (j * j) as f32 / 10.0;
        }
        let base = Tensor::from_vec(data, (6, 8), &Device::Cpu)?;
        let e = from_base(&base, &[0, 1, 2, 3, 4, 5, NOT_IN_BASE], 2, 0.02)?.to_vec2::<f32>()?;
        let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt();
        assert!(dist(&e[0], &e[1]) < 0.1 * dist(&e[0], &e[2]));
        assert_eq!(e[6], vec![0.0, 0.0]);
        // Deterministic.
        let again = from_base(&base, &[0, 1, 2, 3, 4, 5, NOT_IN_BASE], 2, 0.02)?.to_vec2::<f32>()?;
        assert_eq!(e, again);
        Ok(())
    }
}
