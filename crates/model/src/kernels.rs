//! Matrix products on packed GGUF blocks of 32 weights (Q4_1, Q5_0, Q5_1): the SIMD kernels
//! candle lacks, with a scalar reference.
//!
//! Why this module exists: candle 0.11 multiplies Q4_0, Q8_0 and the K-quants with SIMD
//! (AVX2 detected at run time, `simd128` in wasm), and the engine uses those paths as they are
//! (see `weights.rs`). Its `vec_dot` for Q4_1, Q5_0 and Q5_1 is scalar on every platform, and
//! those are exactly the types of SmolLM2's matrices (Q4_1) and of Gemma 3's (Q5_0): decode ran
//! at 7–10 tok/s on them. So this module adds, for those three types only:
//! - activation quantisation to 8-bit blocks of 32 with a shared scale, as llama.cpp does
//!   (`Q8_1`: the scale and the scaled sum rounded to f16), so results follow llama.cpp's;
//! - one dot product per platform: AVX2 + FMA on x86_64 (detected at run time), `simd128` in
//!   wasm (chosen at compile time: the wasm build enables it), and a scalar fallback that is
//!   also the reference the SIMD versions are tested against;
//! - a matrix driver that splits output rows across rayon's pool when it has more than one
//!   thread (natively, and in the browser when the page is cross-origin isolated).
//!
//! Every block stores its weights as unsigned integers `q` with a scale `d` and an offset:
//! `w = d·q + m` (Q4_1, Q5_1, with a stored `m`) or `w = d·(q − 16)` (Q5_0). With activations
//! `x ≈ d_x·a`, one block contributes `d·d_x·Σ q·a + m·(d_x·Σ a)`, or `d·d_x·(Σ q·a − 16·Σ a)`.
//!
//! The SIMD paths need `unsafe` for the intrinsics' loads and for calling a function compiled
//! for a feature the caller has only detected; this module and `panel.rs` are the
//! only ones of the crate allowed it.
#![allow(unsafe_code)]

use half::f16;

// Activation rows from which a product unpacks each weight row once into a panel.
use crate::panel::{Source, MIN_ROWS as PANEL_MIN_ROWS};

/// Weights per block in every format here.
pub const BLOCK: usize = 32;

/// A packed block format that this module multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `{d: f16, m: f16, qs: [u8; 16]}`: 4-bit `q`, `w = d·q + m`.
    Q4_1,
    /// `{d: f16, qh: u32, qs: [u8; 16]}`: 5-bit `q` (high bits in `qh`), `w = d·(q − 16)`.
    Q5_0,
    /// `{d: f16, m: f16, qh: u32, qs: [u8; 16]}`: 5-bit `q`, `w = d·q + m`.
    Q5_1,
}

impl Format {
    /// The format of a GGUF tensor type, if this module multiplies it.
    pub fn from_ggml(dtype: candle_core::quantized::GgmlDType) -> Option<Format> {
        use candle_core::quantized::GgmlDType as G;
        match dtype {
            G::Q4_1 => Some(Format::Q4_1),
            G::Q5_0 => Some(Format::Q5_0),
            G::Q5_1 => Some(Format::Q5_1),
            _ => None,
        }
    }

    /// Bytes per block of 32 weights.
    pub const fn block_bytes(self) -> usize {
        match self {
            Format::Q4_1 => 20,
            Format::Q5_0 => 22,
            Format::Q5_1 => 24,
        }
    }
}

/// 32 activations quantised to 8 bits: `x ≈ d·qs`.
#[derive(Debug, Clone, Copy)]
pub struct Q8Block {
    pub qs: [i8; BLOCK],
    /// The scale, rounded to f16 as llama.cpp stores it.
    pub d: f32,
    /// `Σ qs`, exact.
    pub isum: i32,
    /// `d·Σ qs` rounded to f16 (llama.cpp's `Q8_1::s`), used with the stored offset `m`.
    pub s: f32,
}

/// Quantises `x` (a multiple of 32 long) into blocks, as llama.cpp's `quantize_row_q8_1`.
pub fn quantize_row(x: &[f32], out: &mut Vec<Q8Block>) {
    for chunk in x.chunks_exact(BLOCK) {
        let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; BLOCK];
        let mut isum = 0i32;
        for (q, v) in qs.iter_mut().zip(chunk) {
            *q = round_half_away(v * id) as i8;
            isum += i32::from(*q);
        }
        let s = f16::from_f32(d * isum as f32).to_f32();
        out.push(Q8Block { qs, d: f16::from_f32(d).to_f32(), isum, s });
    }
}

/// Quantises `x` (a multiple of 256 long) as llama.cpp's and candle's `Q8_K` for the
/// K-quants: one scale per 256 values, `d = max / −127` for the value of largest magnitude
/// (kept as f32), `q = round(x / d)`; written as eight blocks of 32 sharing that scale, so the
/// panels multiply both kinds of activations alike.
pub fn quantize_row_k(x: &[f32], out: &mut Vec<Q8Block>) {
    for chunk in x.chunks_exact(256) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in chunk {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let (iscale, d) = if amax == 0.0 { (0.0, 0.0) } else { (-127.0 / max, max / -127.0) };
        // candle and llama.cpp store `1 / iscale`; computed the same way here.
        let d = if amax == 0.0 { d } else { 1.0 / iscale };
        for block in chunk.chunks_exact(BLOCK) {
            let mut qs = [0i8; BLOCK];
            let mut isum = 0i32;
            for (q, v) in qs.iter_mut().zip(block) {
                *q = round_half_away(iscale * v).clamp(-128, 127) as i8;
                isum += i32::from(*q);
            }
            out.push(Q8Block { qs, d, isum, s: d * isum as f32 });
        }
    }
}

/// C's `roundf` (halves away from zero), saturated to −128..=127 as the old `as i8` cast was,
/// a NaN giving 0. Written out because `f32::round` is a libm call natively without SSE4.1 and
/// in wasm (3% of a study's time): the truncating conversion is one instruction, and `r − t`
/// is exact at these magnitudes.
#[inline(always)]
fn round_half_away(r: f32) -> i32 {
    let r = r.clamp(-128.0, 127.0); // a NaN stays NaN, and converts to 0
    let t = r as i32;
    let frac = r - t as f32;
    t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)
}

pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// IEEE half → single, exact for every value. Written here rather than taken from `half`,
/// whose portable conversion (the only one in wasm, which has no F16C) branches on every case
/// and cost more than the block's arithmetic: shifting the exponent and mantissa into place and
/// multiplying by 2^112 rebias normals and subnormals alike.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let rest = u32::from(h & 0x7fff);
    let magnitude = if rest >= 0x7c00 {
        f32::from_bits(0x7f80_0000 | ((rest & 0x3ff) << 13)) // infinity, NaN
    } else {
        f32::from_bits(rest << 13) * f32::from_bits(0x7780_0000) // × 2^112
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// One block's unsigned weights `q` (0..=31), its scale `d` and offset `m` (0 for Q5_0).
pub fn unpack(fmt: Format, b: &[u8]) -> ([u8; BLOCK], f32, f32) {
    let (d, m, qh, qs) = match fmt {
        Format::Q4_1 => (f16_at(b, 0), f16_at(b, 2), 0u32, &b[4..20]),
        Format::Q5_0 => (f16_at(b, 0), 0.0, u32::from_le_bytes([b[2], b[3], b[4], b[5]]), &b[6..22]),
        Format::Q5_1 => (f16_at(b, 0), f16_at(b, 2), u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..24]),
    };
    let mut q = [0u8; BLOCK];
    for j in 0..16 {
        // Element j holds the low nibble of byte j, element j + 16 the high nibble; bit e of
        // `qh` is element e's fifth bit.
        q[j] = (qs[j] & 0x0f) | ((((qh >> j) & 1) as u8) << 4);
        q[j + 16] = (qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
    }
    (q, d, m)
}

/// The block's contribution given `Σ q·a`.
#[inline(always)]
fn block_value(fmt: Format, sumi: i32, d: f32, m: f32, a: &Q8Block) -> f32 {
    match fmt {
        Format::Q5_0 => d * a.d * (sumi - 16 * a.isum) as f32,
        Format::Q4_1 | Format::Q5_1 => d * a.d * sumi as f32 + m * a.s,
    }
}

/// The block's offset term alone (its value with `Σ q·a = 0`), which the SIMD paths add apart
/// from their vector sums. Written out rather than as `block_value(fmt, 0, ..)`: `0.0 · x` is
/// not 0 for every float, so the compiler kept two multiplies per block.
#[inline(always)]
fn block_offset(fmt: Format, d: f32, m: f32, a: &Q8Block) -> f32 {
    match fmt {
        Format::Q5_0 => d * a.d * (-16 * a.isum) as f32,
        Format::Q4_1 | Format::Q5_1 => m * a.s,
    }
}

/// Dot product of one packed weight row with quantised activations: the portable reference.
pub fn dot_scalar(fmt: Format, w: &[u8], a: &[Q8Block]) -> f32 {
    let mut sum = 0f32;
    for (b, y) in w.chunks_exact(fmt.block_bytes()).zip(a) {
        let (q, d, m) = unpack(fmt, b);
        let sumi: i32 = q.iter().zip(&y.qs).map(|(&q, &a)| i32::from(q) * i32::from(a)).sum();
        sum += block_value(fmt, sumi, d, m, y);
    }
    sum
}

/// Which implementation [`dot`] uses on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Scalar,
    /// x86_64 AVX2 + FMA + F16C, detected at run time.
    Avx2,
    /// wasm32 `simd128`, enabled at compile time.
    Simd128,
}

impl Isa {
    /// The best implementation available here.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c") {
            return Isa::Avx2;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return Isa::Simd128;
        #[allow(unreachable_code)]
        Isa::Scalar
    }

    /// Whether this implementation runs on this machine.
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2_available(),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 => false,
            Isa::Simd128 => Isa::detect() == Isa::Simd128,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2+fma+f16c",
            Isa::Simd128 => "simd128",
        }
    }
}

/// Dot products of `W` weight rows with `R` activation rows (`out[k][r]`), with the chosen
/// implementation; scalar if `isa` is not available here.
pub fn dot_tile<const W: usize, const R: usize>(isa: Isa, fmt: Format, w: [&[u8]; W], a: [&[Q8Block]; R]) -> [[f32; R]; W] {
    let n = a.iter().fold(usize::MAX, |n, r| n.min(r.len()));
    let n = w.iter().fold(n, |n, r| n.min(r.len() / fmt.block_bytes()));
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if avx2_available() => {
            // SAFETY: AVX2, FMA and F16C were detected on this CPU; `dot_tile` reads `n` whole
            // blocks of each weight row and of each activation row, which all hold that many.
            unsafe { avx2::dot_tile::<W, R>(fmt, w, a, n) }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 if W == 1 && R == 1 => {
            let bb = fmt.block_bytes();
            let mut out = [[0f32; R]; W];
            out[0][0] = simd128::dot(fmt, &w[0][..n * bb], &a[0][..n]);
            out
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 if W == 1 && R == 4 => {
            let mut out = [[0f32; R]; W];
            out[0].copy_from_slice(&simd128::dot4(fmt, w[0], [a[0], a[1], a[2], a[3]], n));
            out
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => simd128::dot_tile::<W, R>(fmt, w, a, n),
        _ => w.map(|w| a.map(|r| dot_scalar(fmt, &w[..n * fmt.block_bytes()], &r[..n]))),
    }
}

/// Dot products of one weight row with `R` activation rows (see [`dot_tile`]).
pub fn dot_rows<const R: usize>(isa: Isa, fmt: Format, w: &[u8], a: [&[Q8Block]; R]) -> [f32; R] {
    dot_tile::<1, R>(isa, fmt, [w], a)[0]
}

/// Dot product of one weight row with one activation row (see [`dot_rows`]).
pub fn dot(isa: Isa, fmt: Format, w: &[u8], a: &[Q8Block]) -> f32 {
    dot_rows::<1>(isa, fmt, w, [a])[0]
}

/// One block of `fmt` as 32 i8 weights for a [`crate::panel::Panel`]: `q`, minus 16 for Q5_0
/// (whose blocks then need no offset term), with `isa`'s unpacking.
pub(crate) fn unpack_block_into(isa: Isa, fmt: Format, b: &[u8], dst: &mut [i8]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected; `b` is one whole block and `dst` 32 bytes.
        Isa::Avx2 if avx2_available() => unsafe { avx2::unpack_into(fmt, b, dst) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => simd128::unpack_into(fmt, b, dst),
        _ => {
            let bias = if fmt == Format::Q5_0 { 16 } else { 0 };
            let (q, _, _) = unpack(fmt, b);
            for (d, q) in dst.iter_mut().zip(q) {
                *d = q as i8 - bias;
            }
        }
    }
}

/// Whether AVX2, FMA and F16C are present; std caches the answer, so this is two loads.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") && std::is_x86_feature_detected!("f16c")
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{block_offset, Format, Q8Block};
    use std::arch::x86_64::*;

    /// The 32 unsigned weights of one block as bytes, element e in byte e.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weights(fmt: Format, b: *const u8) -> __m256i {
        let (qs_at, qh_at) = match fmt {
            Format::Q4_1 => (4, None),
            Format::Q5_0 => (6, Some(2)),
            Format::Q5_1 => (8, Some(4)),
        };
        let qs = _mm_loadu_si128(b.add(qs_at) as *const __m128i);
        let low = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(qs, low);
        let hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low);
        let q = _mm256_set_m128i(hi, lo);
        match qh_at {
            None => q,
            Some(at) => {
                let qh = (b.add(at) as *const u32).read_unaligned();
                // Byte e takes byte e/8 of `qh`, keeps bit e%8, and becomes 0x10 where it was set.
                let spread = _mm256_shuffle_epi8(
                    _mm256_set1_epi32(qh as i32),
                    _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0),
                );
                let bit = _mm256_set1_epi64x(0x8040201008040201u64 as i64);
                let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
                _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
            }
        }
    }

    /// The block's scale `d` and offset `m` (0 for Q5_0), converted by F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scales(fmt: Format, b: *const u8) -> (f32, f32) {
        let halves = (b as *const u32).read_unaligned(); // d, then m (or qh's low half)
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(halves as i32));
        let d = _mm_cvtss_f32(v);
        let m = match fmt {
            Format::Q5_0 => 0.0,
            _ => _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1)),
        };
        (d, m)
    }

    /// One block's weights into a panel (see `crate::panel::Panel`): `q`, minus 16 for Q5_0.
    ///
    /// # Safety
    /// AVX2 must be present; `b` is one whole block of `fmt`, `dst` 32 bytes.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn unpack_into(fmt: Format, b: &[u8], dst: &mut [i8]) {
        debug_assert!(b.len() >= fmt.block_bytes() && dst.len() >= 32);
        let q = weights(fmt, b.as_ptr());
        let q = if fmt == Format::Q5_0 { _mm256_sub_epi8(q, _mm256_set1_epi8(16)) } else { q };
        _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, q);
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum(acc: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// Dot products of `W` weight rows with `R` activation rows: each weight block is unpacked
    /// once and met by every activation row, each activation block loaded once for every
    /// weight row (decode runs 4 × 1 tiles, prefill 2 × 4).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C; every row of `w` holds `n` whole blocks of
    /// `fmt` and every row of `a` at least `n` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_tile<const W: usize, const R: usize>(
        fmt: Format,
        w: [&[u8]; W],
        a: [&[Q8Block]; R],
        n: usize,
    ) -> [[f32; R]; W] {
        let bb = fmt.block_bytes();
        debug_assert!(w.iter().all(|r| r.len() >= n * bb) && a.iter().all(|r| r.len() >= n));
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); R]; W];
        let mut offsets = [[0f32; R]; W];
        for i in 0..n {
            let mut q = [_mm256_setzero_si256(); W];
            let mut dm = [(0f32, 0f32); W];
            for k in 0..W {
                let b = w[k].as_ptr().add(i * bb);
                q[k] = weights(fmt, b);
                dm[k] = scales(fmt, b);
            }
            for r in 0..R {
                let y = a[r].get_unchecked(i);
                let x = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
                for k in 0..W {
                    // u8 × i8 pairs summed to i16 (at most 2·31·127, no saturation), then i32.
                    let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], x), ones);
                    acc[k][r] = _mm256_fmadd_ps(_mm256_set1_ps(dm[k].0 * y.d), _mm256_cvtepi32_ps(p), acc[k][r]);
                    // The offset term, exactly as the scalar reference computes it.
                    offsets[k][r] += block_offset(fmt, dm[k].0, dm[k].1, y);
                }
            }
        }
        let mut out = [[0f32; R]; W];
        for k in 0..W {
            for r in 0..R {
                out[k][r] = hsum(acc[k][r]) + offsets[k][r];
            }
        }
        out
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{block_offset, f16_at, Format, Q8Block};
    use core::arch::wasm32::*;

    fn load(b: &[u8]) -> v128 {
        let b: &[u8; 16] = b[..16].try_into().expect("16 bytes");
        // SAFETY: `b` is 16 readable bytes; `v128_load` accepts any alignment.
        unsafe { v128_load(b.as_ptr() as *const v128) }
    }

    fn load_i8(b: &[i8]) -> v128 {
        let b: &[i8; 16] = b[..16].try_into().expect("16 bytes");
        // SAFETY: as in `load`.
        unsafe { v128_load(b.as_ptr() as *const v128) }
    }

    /// Bytes with 0x10 where bit e of `bits` (16 bits) is set.
    fn high_bits(bits: u32) -> v128 {
        let spread = u8x16_swizzle(u32x4_splat(bits), u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
        let bit = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        v128_and(u8x16_eq(v128_and(spread, bit), bit), u8x16_splat(0x10))
    }

    /// Σ over 16 lanes of u8 `q` (≤ 31, so also a valid i8) × i8 `x`, as four i32 partial sums.
    fn dot16(q: v128, x: v128) -> v128 {
        let lo = i16x8_extmul_low_i8x16(q, x);
        let hi = i16x8_extmul_high_i8x16(q, x);
        i32x4_add(i32x4_extadd_pairwise_i16x8(lo), i32x4_extadd_pairwise_i16x8(hi))
    }

    /// One block's weights as two halves (elements 0..16, 16..32), its scale and offset.
    fn unpack(fmt: Format, b: &[u8]) -> (v128, v128, f32, f32) {
        let (qs_at, qh_at) = match fmt {
            Format::Q4_1 => (4, None),
            Format::Q5_0 => (6, Some(2)),
            Format::Q5_1 => (8, Some(4)),
        };
        let qs = load(&b[qs_at..]);
        let mut lo = v128_and(qs, u8x16_splat(0x0f));
        let mut hi = u8x16_shr(qs, 4);
        if let Some(at) = qh_at {
            let qh = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            lo = v128_or(lo, high_bits(qh & 0xffff));
            hi = v128_or(hi, high_bits(qh >> 16));
        }
        let m = match fmt {
            Format::Q5_0 => 0.0,
            _ => f16_at(b, 2),
        };
        (lo, hi, f16_at(b, 0), m)
    }

    /// One weight row with one activation row (decode), block by block.
    pub fn dot(fmt: Format, w: &[u8], a: &[Q8Block]) -> f32 {
        let mut acc = f32x4_splat(0.0);
        let mut offsets = 0f32;
        for (b, y) in w.chunks_exact(fmt.block_bytes()).zip(a) {
            let (lo, hi, d, m) = unpack(fmt, b);
            let sum = i32x4_add(dot16(lo, load_i8(&y.qs[..16])), dot16(hi, load_i8(&y.qs[16..])));
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(sum), f32x4_splat(d * y.d)));
            offsets += block_offset(fmt, d, m, y);
        }
        f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc) + f32x4_extract_lane::<2>(acc)
            + f32x4_extract_lane::<3>(acc)
            + offsets
    }

    /// One weight row with four activation rows (prefill): each block unpacked once. Written
    /// out with named accumulators: V8 kept arrays of v128 in memory.
    pub fn dot4(fmt: Format, w: &[u8], a: [&[Q8Block]; 4], n: usize) -> [f32; 4] {
        let bb = fmt.block_bytes();
        let (mut c0, mut c1, mut c2, mut c3) = (f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0), f32x4_splat(0.0));
        let mut offsets = [0f32; 4];
        let [a0, a1, a2, a3] = a;
        for (i, b) in w[..n * bb].chunks_exact(bb).enumerate() {
            let (lo, hi, d, m) = unpack(fmt, b);
            let step = |acc: v128, y: &Q8Block, off: &mut f32| {
                let sum = i32x4_add(dot16(lo, load_i8(&y.qs[..16])), dot16(hi, load_i8(&y.qs[16..])));
                *off += block_offset(fmt, d, m, y);
                f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(sum), f32x4_splat(d * y.d)))
            };
            c0 = step(c0, &a0[i], &mut offsets[0]);
            c1 = step(c1, &a1[i], &mut offsets[1]);
            c2 = step(c2, &a2[i], &mut offsets[2]);
            c3 = step(c3, &a3[i], &mut offsets[3]);
        }
        let h = |v: v128| f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v);
        [h(c0) + offsets[0], h(c1) + offsets[1], h(c2) + offsets[2], h(c3) + offsets[3]]
    }

    /// One block's weights into a panel (see `crate::panel::Panel`): `q`, minus 16 for Q5_0.
    pub fn unpack_into(fmt: Format, b: &[u8], dst: &mut [i8]) {
        let (mut lo, mut hi, _, _) = unpack(fmt, b);
        if fmt == Format::Q5_0 {
            lo = i8x16_sub(lo, i8x16_splat(16));
            hi = i8x16_sub(hi, i8x16_splat(16));
        }
        let dst: &mut [i8; 32] = (&mut dst[..32]).try_into().expect("32 bytes");
        // SAFETY: `dst` is 32 writable bytes; `v128_store` accepts any alignment.
        unsafe {
            v128_store(dst.as_mut_ptr() as *mut v128, lo);
            v128_store(dst.as_mut_ptr().add(16) as *mut v128, hi);
        }
    }

    /// As `avx2::dot_tile`: `W` weight rows × `R` activation rows over `n` blocks.
    pub fn dot_tile<const W: usize, const R: usize>(fmt: Format, w: [&[u8]; W], a: [&[Q8Block]; R], n: usize) -> [[f32; R]; W] {
        let bb = fmt.block_bytes();
        let mut acc = [[f32x4_splat(0.0); R]; W];
        let mut offsets = [[0f32; R]; W];
        for i in 0..n {
            let q = w.map(|row| unpack(fmt, &row[i * bb..(i + 1) * bb]));
            for r in 0..R {
                let y = &a[r][i];
                let (x_lo, x_hi) = (load_i8(&y.qs[..16]), load_i8(&y.qs[16..]));
                for k in 0..W {
                    let (lo, hi, d, m) = q[k];
                    let sum = i32x4_add(dot16(lo, x_lo), dot16(hi, x_hi));
                    acc[k][r] = f32x4_add(acc[k][r], f32x4_mul(f32x4_convert_i32x4(sum), f32x4_splat(d * y.d)));
                    offsets[k][r] += block_offset(fmt, d, m, y);
                }
            }
        }
        let mut out = [[0f32; R]; W];
        for k in 0..W {
            for r in 0..R {
                let v = acc[k][r];
                out[k][r] = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v)
                    + f32x4_extract_lane::<3>(v)
                    + offsets[k][r];
            }
        }
        out
    }
}

/// Threads the matrix driver splits work across (rayon's pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Products with fewer multiply-adds than this run on the calling thread. In the browser's
/// threaded worker on 2 cores, splitting SmolLM2's decode products (at most 576 × 1536 ≈ 0.9 M)
/// across the pool made decode slower than one thread (11.8 against 15.3 tok/s,
/// bench/RESULTS.md); prefill's products (≥ 128 × 576 × 576 ≈ 42 M) gain from the split.
const PARALLEL_MACS: usize = 1 << 20;


/// Output rows each rayon task computes.
const ROWS_PER_TASK: usize = 64;

/// `out[i, j] = Σ_k x[i, k] · w[j, k]` for `x: [m, k]` (f32, row-major) and `w: [n, k]` packed
/// in `fmt`, writing `out: [m, n]`. `k` must be a multiple of 32 and the slices exactly sized.
pub fn matmul(isa: Isa, fmt: Format, w: &[u8], n: usize, k: usize, x: &[f32], out: &mut [f32]) {
    debug_assert!(k % BLOCK == 0 && w.len() == n * k / BLOCK * fmt.block_bytes());
    let m = x.len() / k;
    let kb = k / BLOCK;
    let row_bytes = kb * fmt.block_bytes();
    let mut acts = Vec::with_capacity(m * kb);
    for row in x.chunks_exact(k) {
        quantize_row(row, &mut acts);
    }
    let rows: Vec<&[Q8Block]> = acts.chunks_exact(kb).collect();
    // Tiles of weight rows × activation rows, the weight rows staying in L1 while they meet
    // every activation row. AVX2 takes 2 × 4 tiles when there are four rows or more, else
    // 4 × 1; in wasm, V8 ran tiles of several weight rows 2.6× slower than one row at a time
    // (arrays of v128 values were not kept in registers), so simd128 takes 1 × 4 and 1 × 1.
    let wide = isa == Isa::Avx2;
    let rows_into = |first: usize, dst: &mut [f32]| {
        let w_rows: Vec<&[u8]> = w[first * row_bytes..].chunks_exact(row_bytes).take(dst.len() / m).collect();
        if m >= PANEL_MIN_ROWS {
            crate::panel::product(isa, Source::Blocks(fmt), &w_rows, &rows, |j, i, v| dst[j * m + i] = v);
            return;
        }
        let mut j = 0;
        if m >= 4 && wide {
            while j + 2 <= w_rows.len() {
                let mut i = 0;
                while i + 4 <= m {
                    let t = dot_tile::<2, 4>(isa, fmt, [w_rows[j], w_rows[j + 1]], [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]]);
                    for (k, row) in t.iter().enumerate() {
                        dst[(j + k) * m + i..(j + k) * m + i + 4].copy_from_slice(row);
                    }
                    i += 4;
                }
                for r in i..m {
                    let t = dot_tile::<2, 1>(isa, fmt, [w_rows[j], w_rows[j + 1]], [rows[r]]);
                    dst[j * m + r] = t[0][0];
                    dst[(j + 1) * m + r] = t[1][0];
                }
                j += 2;
            }
        } else if wide {
            while j + 4 <= w_rows.len() {
                for (r, a) in rows.iter().enumerate() {
                    let t = dot_tile::<4, 1>(isa, fmt, [w_rows[j], w_rows[j + 1], w_rows[j + 2], w_rows[j + 3]], [a]);
                    for k in 0..4 {
                        dst[(j + k) * m + r] = t[k][0];
                    }
                }
                j += 4;
            }
        }
        for (jj, w_row) in w_rows.iter().enumerate().skip(j) {
            let out = &mut dst[jj * m..(jj + 1) * m];
            let mut i = 0;
            while i + 4 <= m {
                out[i..i + 4].copy_from_slice(&dot_rows::<4>(isa, fmt, w_row, [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]]));
                i += 4;
            }
            for r in i..m {
                out[r] = dot(isa, fmt, w_row, rows[r]);
            }
        }
    };
    let threads = rayon::current_num_threads();
    let serial = threads <= 1 || n * m < 2 * ROWS_PER_TASK || n * k * m < PARALLEL_MACS;
    if serial && m >= PANEL_MIN_ROWS {
        // Straight into `out: [m, n]`, without the transposed copy.
        let w_rows: Vec<&[u8]> = w.chunks_exact(row_bytes).collect();
        crate::panel::product(isa, Source::Blocks(fmt), &w_rows, &rows, |j, i, v| out[i * n + j] = v);
        return;
    }
    if serial {
        // No pool hand-off on one thread, nor for a small product: waking the pool costs more
        // than the matrix-vector products of a small model's decode step.
        if m == 1 {
            rows_into(0, out);
        } else {
            let mut t = vec![0f32; n * m];
            rows_into(0, &mut t);
            transpose_into(&t, n, m, out);
        }
        return;
    }
    use rayon::prelude::*;
    // Prefill: one task per thread (in the browser's threaded worker, many small tasks cost
    // more in waking and waiting than they gained).
    let per_task = if m >= PANEL_MIN_ROWS { n.div_ceil(threads).max(ROWS_PER_TASK) } else { ROWS_PER_TASK };
    let task = |(c, dst): (usize, &mut [f32])| rows_into(c * per_task, dst);
    if m == 1 {
        out.par_chunks_mut(per_task).enumerate().for_each(task);
    } else {
        let mut t = vec![0f32; n * m];
        t.par_chunks_mut(per_task * m).enumerate().for_each(task);
        transpose_into(&t, n, m, out);
    }
}

/// `out[i, j] = t[j, i]` for `t: [n, m]`.
fn transpose_into(t: &[f32], n: usize, m: usize, out: &mut [f32]) {
    for (j, col) in t.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * n + j] = *v;
        }
    }
}

/// Random blocks of `fmt` (random bytes, scales in ±`scale`), for kernel tests.
pub fn random_blocks(fmt: Format, n_blocks: usize, scale: f32, rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    use rand::Rng;
    let mut out = Vec::new();
    for _ in 0..n_blocks {
        let mut b = vec![0u8; fmt.block_bytes()];
        rng.fill(&mut b[..]);
        b[..2].copy_from_slice(&f16::from_f32(scale * rng.random_range(-1.0..1.0)).to_le_bytes());
        if matches!(fmt, Format::Q4_1 | Format::Q5_1) {
            b[2..4].copy_from_slice(&f16::from_f32(scale * rng.random_range(-1.0..1.0)).to_le_bytes());
        }
        out.extend(b);
    }
    out
}

/// Checks `isa`'s dot products against [`dot_scalar`] on random blocks of every format: odd
/// block counts, a single block, and scales from 1e-4 to near the f16 maximum, one and four
/// rows at a time. Returns the number of cases, or the first mismatch. Run by the native unit
/// tests and by the wasm tests in Chromium.
pub fn compare_with_scalar(isa: Isa, seed: u64) -> Result<usize, String> {
    use crate::panel::{Panel, Source};
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut cases = 0;
    for fmt in [Format::Q4_1, Format::Q5_0, Format::Q5_1] {
        for (n_blocks, scale) in [(1, 1.0), (3, 1e-4), (7, 1.0), (18, 60000.0), (33, 0.02), (48, 1.0)] {
            let w = random_blocks(fmt, n_blocks, scale, &mut rng);
            let mut rows = Vec::new();
            for _ in 0..4 {
                let x: Vec<f32> = (0..n_blocks * BLOCK).map(|_| rng.random_range(-3.0..3.0) * scale.min(100.0)).collect();
                let mut a = Vec::new();
                quantize_row(&x, &mut a);
                rows.push(a);
            }
            let four = dot_rows::<4>(isa, fmt, &w, [&rows[0], &rows[1], &rows[2], &rows[3]]);
            let panel_four = {
                let mut panel = Panel::default();
                panel.fill(isa, Source::Blocks(fmt), &w);
                crate::panel::dot4(isa, &panel, [&rows[0], &rows[1], &rows[2], &rows[3]])
            };
            let mut scalar_panel = Panel::default();
            scalar_panel.fill(Isa::Scalar, Source::Blocks(fmt), &w);
            for (r, a) in rows.iter().enumerate() {
                let reference = dot_scalar(fmt, &w, a);
                // Only the float summation order differs between implementations.
                let bound = (1e-5 * reference.abs().max(1.0) * (n_blocks as f32).sqrt()).max(1e-5 * scale * scale);
                if fmt == Format::Q5_0 && crate::panel::dot_scalar(&scalar_panel, a).to_bits() != reference.to_bits() {
                    return Err(format!("{fmt:?} × {n_blocks} blocks: the scalar panel differs from dot_scalar"));
                }
                for (how, got) in [("one row", dot(isa, fmt, &w, a)), ("four rows", four[r]), ("a panel", panel_four[r])] {
                    if (got - reference).abs() > bound {
                        return Err(format!(
                            "{fmt:?} × {n_blocks} blocks at scale {scale} ({how}): {} gives {got}, scalar {reference}",
                            isa.name()
                        ));
                    }
                    cases += 1;
                }
            }
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The weights as f64, from the formats' definition rather than [`unpack`]'s code path.
    fn dequantize(fmt: Format, w: &[u8]) -> Vec<f64> {
        let mut out = Vec::new();
        for b in w.chunks_exact(fmt.block_bytes()) {
            let d = f64::from(f16_at(b, 0));
            let (m, qh, qs): (f64, u32, &[u8]) = match fmt {
                Format::Q4_1 => (f64::from(f16_at(b, 2)), 0, &b[4..]),
                Format::Q5_0 => (-16.0 * d, u32::from_le_bytes(b[2..6].try_into().unwrap()), &b[6..]),
                Format::Q5_1 => (f64::from(f16_at(b, 2)), u32::from_le_bytes(b[4..8].try_into().unwrap()), &b[8..]),
            };
            let mut block = [0f64; 32];
            for j in 0..16 {
                let h0 = ((qh >> j) & 1) << 4;
                let h1 = ((qh >> (j + 16)) & 1) << 4;
                block[j] = f64::from(u32::from(qs[j] & 15) | h0) * d + m;
                block[j + 16] = f64::from(u32::from(qs[j] >> 4) | h1) * d + m;
            }
            out.extend(block);
        }
        out
    }

    const FORMATS: [Format; 3] = [Format::Q4_1, Format::Q5_0, Format::Q5_1];

    #[test]
    fn simd_equals_scalar_on_random_blocks() {
        let n = compare_with_scalar(Isa::detect(), 7).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 18, "{n} cases");
    }

    #[test]
    fn scalar_matches_dequantised_weights_within_activation_rounding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for fmt in FORMATS {
            let n_blocks = 9;
            let w = random_blocks(fmt, n_blocks, 0.05, &mut rng);
            let x: Vec<f32> = (0..n_blocks * 32).map(|_| rng.random_range(-2.0..2.0)).collect();
            let wf = dequantize(fmt, &w);
            let exact: f64 = wf.iter().zip(&x).map(|(w, x)| w * f64::from(*x)).sum();
            let mut a = Vec::new();
            quantize_row(&x, &mut a);
            let got = f64::from(dot_scalar(fmt, &w, &a));
            // Each activation is off by at most half a step (amax/254) plus the f16 rounding of
            // the scale; bound the error by Σ|w|·step.
            let bound: f64 = wf.chunks(32).zip(x.chunks(32)).map(|(wb, xb)| {
                let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
                wb.iter().map(|w| w.abs()).sum::<f64>() * (amax / 254.0 + amax * 1e-3)
            }).sum::<f64>() + 1e-3;
            assert!((got - exact).abs() <= bound, "{fmt:?}: {got} vs exact {exact} (bound {bound})");
        }
    }

    #[test]
    fn unpack_follows_the_gguf_layout() {
        // Q5_1 with d = 1, m = 0.5, qs byte j = j | (15 - j) << 4, qh = 0xAAAA5555.
        let mut b = vec![0u8; 24];
        b[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[4..8].copy_from_slice(&0xAAAA5555u32.to_le_bytes());
        for j in 0..16 {
            b[8 + j] = (j as u8) | ((15 - j as u8) << 4);
        }
        let (q, d, m) = unpack(Format::Q5_1, &b);
        assert_eq!((d, m), (1.0, 0.5));
        for j in 0..16 {
            assert_eq!(q[j], j as u8 | (((0x5555 >> j) & 1) << 4) as u8);
            assert_eq!(q[j + 16], (15 - j as u8) | (((0xAAAA >> j) & 1) << 4) as u8);
        }
    }

    #[test]
    fn matmul_equals_row_by_row_dots_with_one_and_many_rows() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (n, k) = (150, 96);
        for fmt in FORMATS {
            let w = random_blocks(fmt, n * k / 32, 0.1, &mut rng);
            for m in [1, 5, 8, 13] {
                let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let mut out = vec![0f32; m * n];
                matmul(Isa::detect(), fmt, &w, n, k, &x, &mut out);
                for i in 0..m {
                    let mut a = Vec::new();
                    quantize_row(&x[i * k..(i + 1) * k], &mut a);
                    for j in 0..n {
                        let want = dot_scalar(fmt, &w[j * k / 32 * fmt.block_bytes()..(j + 1) * k / 32 * fmt.block_bytes()], &a);
                        assert!((out[i * n + j] - want).abs() <= 1e-4 * want.abs().max(1.0), "{fmt:?} m={m} [{i},{j}]");
                    }
                }
            }
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_half() {
        for h in 0..=u16::MAX {
            let (ours, theirs) = (f16_to_f32(h), f16::from_bits(h).to_f32());
            assert!(ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()), "{h:#06x}: {ours} vs {theirs}");
        }
    }

    #[test]
    fn rounding_follows_c_roundf() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let edge = [0.5f32, -0.5, 1.5, -1.5, 2.5, 126.5, -126.5, 127.0, -127.0, 0.49999997, -0.49999997, 0.0, -0.0];
        for r in edge.into_iter().chain((0..10_000).map(|_| rng.random_range(-127.0f32..127.0))) {
            assert_eq!(round_half_away(r), r.round() as i32, "{r}");
        }
        assert_eq!(round_half_away(f32::NAN), 0);
        // Out of range (an activation scale that underflowed): saturated, as `as i8` did.
        assert_eq!((round_half_away(f32::INFINITY), round_half_away(-1e30), round_half_away(300.4)), (127, -128, 127));
    }

    #[test]
    fn all_zero_activations_give_the_offset_free_zero() {
        let mut a = Vec::new();
        quantize_row(&[0.0; 32], &mut a);
        assert_eq!((a[0].d, a[0].isum, a[0].s), (0.0, 0, 0.0));
    }
}
