//! Typed TransformerLens hook points, names filters, the activation cache and interventions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::gguf::Config;

/// A named site in the forward pass, spelled exactly as TransformerLens spells it.
///
/// Tensor layouts (B = batch, T = positions, D = d_model, H = heads):
/// - `hook_embed`, `blocks.{i}.hook_resid_pre|mid|post`, `blocks.{i}.hook_attn_out`,
///   `blocks.{i}.hook_mlp_out`, `ln_final.hook_normalized`: `[B, T, D]`
/// - `blocks.{i}.attn.hook_pattern`: `[B, H, T_query, T_key]`
/// - Gemma 3 only (TransformerLens's names for its norms after attention and after the MLP):
///   `blocks.{i}.ln1_post.hook_normalized`, `blocks.{i}.ln2_post.hook_normalized`: `[B, T, D]`,
///   equal to `hook_attn_out` / `hook_mlp_out` before interventions there
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookPoint {
    Embed,
    ResidPre(usize),
    AttnPattern(usize),
    Ln1Post(usize),
    AttnOut(usize),
    ResidMid(usize),
    Ln2Post(usize),
    MlpOut(usize),
    ResidPost(usize),
    LnFinal,
}

/// The per-block hook suffixes, in forward order.
const BLOCK_SUFFIXES: [&str; 8] = [
    "hook_resid_pre",
    "attn.hook_pattern",
    "ln1_post.hook_normalized",
    "hook_attn_out",
    "hook_resid_mid",
    "ln2_post.hook_normalized",
    "hook_mlp_out",
    "hook_resid_post",
];

impl HookPoint {
    /// The block this hook belongs to, if any.
    pub fn layer(&self) -> Option<usize> {
        match *self {
            HookPoint::Embed | HookPoint::LnFinal => None,
            HookPoint::ResidPre(i)
            | HookPoint::AttnPattern(i)
            | HookPoint::Ln1Post(i)
            | HookPoint::AttnOut(i)
            | HookPoint::ResidMid(i)
            | HookPoint::Ln2Post(i)
            | HookPoint::MlpOut(i)
            | HookPoint::ResidPost(i) => Some(i),
        }
    }

    /// Which axis of the hooked tensor indexes token positions (query positions for patterns).
    pub fn position_axis(&self) -> usize {
        match self {
            HookPoint::AttnPattern(_) => 2,
            _ => 1,
        }
    }

    /// Whether this is one of the norms after attention or the MLP that only some families
    /// (Gemma 3) have.
    pub fn is_post_norm(&self) -> bool {
        matches!(self, HookPoint::Ln1Post(_) | HookPoint::Ln2Post(_))
    }

    /// Every hook point of the model `cfg` describes, in forward order: [`HookPoint::all`] plus
    /// the post-norms where the family has them.
    pub fn all_in(cfg: &Config) -> Vec<HookPoint> {
        let mut v = HookPoint::all(cfg.n_layers);
        if cfg.family.arch.post_norms() {
            let mut out = Vec::with_capacity(v.len() + 2 * cfg.n_layers);
            for h in v {
                out.push(h);
                match h {
                    HookPoint::AttnPattern(i) => out.push(HookPoint::Ln1Post(i)),
                    HookPoint::ResidMid(i) => out.push(HookPoint::Ln2Post(i)),
                    _ => {}
                }
            }
            v = out;
        }
        v
    }

    /// Refuses a hook the model `cfg` describes does not have (a post-norm outside Gemma 3, a
    /// layer beyond the last).
    pub fn check_in(&self, cfg: &Config) -> Result<()> {
        self.check_layers(cfg.n_layers)?;
        if self.is_post_norm() && !cfg.family.arch.post_norms() {
            return Err(unknown(
                &self.to_string(),
                &format!("`{}` models have no norm after attention or the MLP (Gemma 3 has)", cfg.family.arch),
            ));
        }
        Ok(())
    }

    /// Every hook point common to all families, for a model with `n_layers` blocks, in forward
    /// order (see [`HookPoint::all_in`] for one model's full list).
    pub fn all(n_layers: usize) -> Vec<HookPoint> {
        let mut v = vec![HookPoint::Embed];
        for i in 0..n_layers {
            v.extend([
                HookPoint::ResidPre(i),
                HookPoint::AttnPattern(i),
                HookPoint::AttnOut(i),
                HookPoint::ResidMid(i),
                HookPoint::MlpOut(i),
                HookPoint::ResidPost(i),
            ]);
        }
        v.push(HookPoint::LnFinal);
        v
    }

    /// Checks the layer index against the model depth.
    pub fn check_layers(&self, n_layers: usize) -> Result<()> {
        match self.layer() {
            Some(layer) if layer >= n_layers => Err(ModelError::HookLayerOutOfRange {
                hook: self.to_string(),
                layer,
                n_layers,
            }),
            _ => Ok(()),
        }
    }

    fn block_suffix(&self) -> Option<&'static str> {
        Some(match self {
            HookPoint::ResidPre(_) => BLOCK_SUFFIXES[0],
            HookPoint::AttnPattern(_) => BLOCK_SUFFIXES[1],
            HookPoint::Ln1Post(_) => BLOCK_SUFFIXES[2],
            HookPoint::AttnOut(_) => BLOCK_SUFFIXES[3],
            HookPoint::ResidMid(_) => BLOCK_SUFFIXES[4],
            HookPoint::Ln2Post(_) => BLOCK_SUFFIXES[5],
            HookPoint::MlpOut(_) => BLOCK_SUFFIXES[6],
            HookPoint::ResidPost(_) => BLOCK_SUFFIXES[7],
            HookPoint::Embed | HookPoint::LnFinal => return None,
        })
    }

    fn from_block(layer: usize, suffix: &str) -> Option<HookPoint> {
        Some(match suffix {
            "hook_resid_pre" => HookPoint::ResidPre(layer),
            "attn.hook_pattern" => HookPoint::AttnPattern(layer),
            "ln1_post.hook_normalized" => HookPoint::Ln1Post(layer),
            "hook_attn_out" => HookPoint::AttnOut(layer),
            "hook_resid_mid" => HookPoint::ResidMid(layer),
            "ln2_post.hook_normalized" => HookPoint::Ln2Post(layer),
            "hook_mlp_out" => HookPoint::MlpOut(layer),
            "hook_resid_post" => HookPoint::ResidPost(layer),
            _ => return None,
        })
    }
}

impl fmt::Display for HookPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.layer(), self.block_suffix()) {
            (HookPoint::Embed, _, _) => f.write_str("hook_embed"),
            (HookPoint::LnFinal, _, _) => f.write_str("ln_final.hook_normalized"),
            (_, Some(i), Some(suffix)) => write!(f, "blocks.{i}.{suffix}"),
            _ => unreachable!("every block hook has a layer and a suffix"),
        }
    }
}

fn unknown(name: &str, reason: &str) -> ModelError {
    ModelError::UnknownHook {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

impl FromStr for HookPoint {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "hook_embed" => return Ok(HookPoint::Embed),
            "ln_final.hook_normalized" => return Ok(HookPoint::LnFinal),
            _ => {}
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(|| {
            unknown(
                s,
                "expected `hook_embed`, `ln_final.hook_normalized` or `blocks.{i}.<hook>`",
            )
        })?;
        let (layer, suffix) = rest
            .split_once('.')
            .ok_or_else(|| unknown(s, "expected `blocks.{i}.<hook>`"))?;
        let layer: usize = layer
            .parse()
            .map_err(|_| unknown(s, &format!("layer `{layer}` is not a number")))?;
        HookPoint::from_block(layer, suffix).ok_or_else(|| {
            unknown(
                s,
                &format!(
                    "`{suffix}` is not a block hook; known: {}",
                    BLOCK_SUFFIXES.join(", ")
                ),
            )
        })
    }
}

impl Serialize for HookPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HookPoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One pattern of a names filter: a hook name where the layer may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamePattern {
    Exact(HookPoint),
    AnyLayer(&'static str),
}

/// Opt-in caching: which hook points to record, e.g. `blocks.*.hook_resid_post`.
///
/// A filter is a comma-separated list of hook names; `*` in place of a layer index matches
/// every layer. The empty filter records nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamesFilter {
    patterns: Vec<NamePattern>,
}

impl NamesFilter {
    /// Records nothing.
    pub fn none() -> Self {
        NamesFilter::default()
    }

    /// Records exactly these hooks.
    pub fn hooks(hooks: impl IntoIterator<Item = HookPoint>) -> Self {
        NamesFilter {
            patterns: hooks.into_iter().map(NamePattern::Exact).collect(),
        }
    }

    /// Parses `blocks.*.hook_resid_post,hook_embed`.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut patterns = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(suffix) = part.strip_prefix("blocks.*.") {
                let suffix = BLOCK_SUFFIXES
                    .iter()
                    .find(|known| **known == suffix)
                    .ok_or_else(|| {
                        unknown(
                            part,
                            &format!(
                                "`{suffix}` is not a block hook; known: {}",
                                BLOCK_SUFFIXES.join(", ")
                            ),
                        )
                    })?;
                patterns.push(NamePattern::AnyLayer(suffix));
            } else {
                patterns.push(NamePattern::Exact(part.parse()?));
            }
        }
        Ok(NamesFilter { patterns })
    }

    /// Whether `hook` should be recorded.
    pub fn matches(&self, hook: &HookPoint) -> bool {
        self.patterns.iter().any(|p| match p {
            NamePattern::Exact(h) => h == hook,
            NamePattern::AnyLayer(suffix) => hook.block_suffix() == Some(*suffix),
        })
    }

    /// True when nothing will be recorded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The concrete hooks this filter selects in the model `cfg` describes; a named hook the
    /// model lacks is an error.
    pub fn resolve_in(&self, cfg: &Config) -> Result<Vec<HookPoint>> {
        for p in &self.patterns {
            if let NamePattern::Exact(h) = p {
                h.check_in(cfg)?;
            }
        }
        Ok(HookPoint::all_in(cfg).into_iter().filter(|h| self.matches(h)).collect())
    }

    /// The concrete hooks common to all families this filter selects in a model of `n_layers`
    /// blocks.
    pub fn resolve(&self, n_layers: usize) -> Result<Vec<HookPoint>> {
        for p in &self.patterns {
            if let NamePattern::Exact(h) = p {
                h.check_layers(n_layers)?;
            }
        }
        Ok(HookPoint::all(n_layers)
            .into_iter()
            .filter(|h| self.matches(h))
            .collect())
    }
}

/// Activations recorded during one forward pass, keyed by hook point.
#[derive(Debug, Default, Clone)]
pub struct ActivationCache {
    map: BTreeMap<HookPoint, Tensor>,
}

impl ActivationCache {
    /// Records `t` at `hook` (used by the forward pass, and by other backends that produce
    /// activations themselves).
    pub fn insert(&mut self, hook: HookPoint, t: Tensor) {
        self.map.insert(hook, t);
    }

    /// The recorded activation, if the filter asked for it.
    pub fn get(&self, hook: &HookPoint) -> Option<&Tensor> {
        self.map.get(hook)
    }

    /// Recorded hooks in forward order.
    pub fn hooks(&self) -> impl Iterator<Item = &HookPoint> {
        self.map.keys()
    }

    /// Number of recorded hooks.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Which token positions an intervention touches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// Every position, including ones generated later.
    All,
    /// Only these absolute positions.
    Only(Vec<usize>),
}

/// A change made to the activation at a hook point, as the forward pass goes by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intervention {
    /// Steering: add `vector` (length = the hook's last dimension) at the given positions
    /// of every sequence in the batch.
    Add {
        hook: HookPoint,
        positions: Positions,
        vector: Vec<f32>,
    },
    /// Patching: overwrite the activation of batch row `row` at absolute position `position`
    /// with `value` (the hook's per-position slice, flattened: `[D]` for residual hooks,
    /// `[H * T_key]` for patterns).
    Patch {
        hook: HookPoint,
        row: usize,
        position: usize,
        value: Vec<f32>,
    },
}

impl Intervention {
    /// The hook this intervention acts on.
    pub fn hook(&self) -> HookPoint {
        match self {
            Intervention::Add { hook, .. } | Intervention::Patch { hook, .. } => *hook,
        }
    }

    /// Applies the intervention to `t`, the activation at its hook, whose positions start at
    /// absolute position `start_pos` (non-zero when a KV cache holds earlier tokens).
    pub(crate) fn apply(&self, t: &Tensor, start_pos: usize) -> Result<Tensor> {
        let hook = self.hook();
        let axis = hook.position_axis();
        let err = |reason: String| ModelError::Intervention {
            hook: hook.to_string(),
            reason,
        };
        // Move the position axis next to the batch axis: [B, T, rest...].
        let moved = if axis == 1 { t.clone() } else { t.transpose(1, axis)? };
        let dims = moved.dims().to_vec();
        let (b, n_pos) = (dims[0], dims[1]);
        let rest: usize = dims[2..].iter().product();
        let flat = moved.reshape((b, n_pos, rest))?;
        let out = match self {
            Intervention::Add {
                positions, vector, ..
            } => {
                let last = *dims.last().unwrap_or(&0);
                if vector.len() != last {
                    return Err(err(format!(
                        "steering vector has length {}, the hook's last dimension is {last}",
                        vector.len()
                    )));
                }
                let v = Tensor::from_slice(vector, last, t.device())?;
                let mask: Vec<f32> = (0..n_pos)
                    .map(|p| match positions {
                        Positions::All => 1.0,
                        Positions::Only(ps) => f32::from(ps.contains(&(start_pos + p))),
                    })
                    .collect();
                let mask = Tensor::from_vec(mask, (1, n_pos, 1), t.device())?;
                let shaped = moved.broadcast_add(&mask_shape(&mask, &moved)?.broadcast_mul(&v)?)?;
                return Ok(if axis == 1 { shaped } else { shaped.transpose(1, axis)?.contiguous()? });
            }
            Intervention::Patch {
                row,
                position,
                value,
                ..
            } => {
                if *row >= b {
                    return Err(err(format!("row {row} is outside the batch of {b}")));
                }
                if value.len() != rest {
                    return Err(err(format!(
                        "patch value has {} elements, the hook has {rest} per position (shape {dims:?})",
                        value.len()
                    )));
                }
                if *position < start_pos || *position >= start_pos + n_pos {
                    // Not in this chunk of positions: nothing to do.
                    return Ok(t.clone());
                }
                let p = position - start_pos;
                let src = Tensor::from_slice(value, (1, 1, rest), t.device())?;
                flat.contiguous()?
                    .slice_assign(&[*row..row + 1, p..p + 1, 0..rest], &src)?
            }
        };
        let out = out.reshape(dims)?;
        Ok(if axis == 1 { out } else { out.transpose(1, axis)?.contiguous()? })
    }
}

/// Reshapes a `[1, T, 1]` mask so it broadcasts against `[B, T, ...]`.
fn mask_shape(mask: &Tensor, like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1usize; like.rank()];
    shape[1] = like.dims()[1];
    Ok(mask.reshape(shape)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_round_trips_through_display_and_from_str() {
        for h in HookPoint::all(3) {
            let s = h.to_string();
            assert_eq!(s.parse::<HookPoint>().unwrap(), h, "{s}");
        }
        assert_eq!(HookPoint::ResidPost(12).to_string(), "blocks.12.hook_resid_post");
        assert_eq!(HookPoint::AttnPattern(0).to_string(), "blocks.0.attn.hook_pattern");
    }

    #[test]
    fn bad_names_say_why() {
        let e = "blocks.x.hook_resid_post".parse::<HookPoint>().unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = "blocks.1.hook_nope".parse::<HookPoint>().unwrap_err();
        assert!(e.to_string().contains("hook_resid_post"), "{e}");
        assert!("resid".parse::<HookPoint>().is_err());
    }

    #[test]
    fn filter_selects_only_requested_hooks() {
        let f = NamesFilter::parse("blocks.*.hook_resid_post, hook_embed").unwrap();
        let got = f.resolve(2).unwrap();
        assert_eq!(
            got,
            vec![HookPoint::Embed, HookPoint::ResidPost(0), HookPoint::ResidPost(1)]
        );
        assert!(NamesFilter::parse("blocks.*.hook_bogus").is_err());
        assert!(NamesFilter::parse("blocks.9.hook_resid_pre")
            .unwrap()
            .resolve(2)
            .is_err());
        assert!(NamesFilter::none().resolve(4).unwrap().is_empty());
    }

    #[test]
    fn serde_uses_the_transformerlens_name() {
        let j = serde_json::to_string(&HookPoint::MlpOut(3)).unwrap();
        assert_eq!(j, "\"blocks.3.hook_mlp_out\"");
        let back: HookPoint = serde_json::from_str(&j).unwrap();
        assert_eq!(back, HookPoint::MlpOut(3));
    }

    #[test]
    fn add_touches_only_chosen_positions() {
        let dev = candle_core::Device::Cpu;
        let t = Tensor::zeros((2, 3, 2), candle_core::DType::F32, &dev).unwrap();
        let iv = Intervention::Add {
            hook: HookPoint::ResidPost(0),
            positions: Positions::Only(vec![1]),
            vector: vec![1.0, 2.0],
        };
        let out = iv.apply(&t, 0).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(out[0][0], vec![0.0, 0.0]);
        assert_eq!(out[1][1], vec![1.0, 2.0]);
        // With a KV-cache offset of 1, absolute position 1 is local position 0.
        let out = iv.apply(&t, 1).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(out[0][0], vec![1.0, 2.0]);
        assert_eq!(out[0][1], vec![0.0, 0.0]);
    }

    #[test]
    fn patch_replaces_one_row_and_position() {
        let dev = candle_core::Device::Cpu;
        let t = Tensor::zeros((2, 3, 2), candle_core::DType::F32, &dev).unwrap();
        let iv = Intervention::Patch {
            hook: HookPoint::ResidPre(0),
            row: 1,
            position: 2,
            value: vec![5.0, 6.0],
        };
        let out = iv.apply(&t, 0).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(out[1][2], vec![5.0, 6.0]);
        assert_eq!(out[0][2], vec![0.0, 0.0]);
        let bad = Intervention::Patch {
            hook: HookPoint::ResidPre(0),
            row: 1,
            position: 2,
            value: vec![5.0],
        };
        assert!(bad.apply(&t, 0).unwrap_err().to_string().contains("2 per position"));
    }

    #[test]
    fn patterns_are_patched_along_the_query_axis() {
        let dev = candle_core::Device::Cpu;
        // [B=1, H=2, Tq=2, Tk=2]
        let t = Tensor::zeros((1, 2, 2, 2), candle_core::DType::F32, &dev).unwrap();
        let iv = Intervention::Patch {
            hook: HookPoint::AttnPattern(0),
            row: 0,
            position: 1,
            value: vec![1.0, 2.0, 3.0, 4.0],
        };
        let out = iv.apply(&t, 0).unwrap().to_vec3::<f32>();
        assert!(out.is_err()); // rank 4
        let out: Vec<f32> = iv.apply(&t, 0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        // head 0, query 1 = [1,2]; head 1, query 1 = [3,4]
        assert_eq!(out, vec![0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0]);
    }
}
