//! Products on weight rows unpacked once ("panels"): the prefill path (eight activation rows or
//! more) for the packed formats Q4_1, Q5_0, Q5_1 and the K-quants Q4_K and Q6_K.
//!
//! Why this module exists:
//! - The tiles in `kernels` unpack a block (nibbles, fifth bits, f16 scales) once per tile of
//!   four activation rows. In wasm that unpacking, and Q5_0's separate offset term, cost about
//!   as much as the multiplications. A panel holds one weight row as i8 plus its scales (`k`
//!   bytes and a float per 16 or 32 weights), and stays in L1 while every activation row of
//!   the product meets it.
//! - candle 0.11 multiplies the K-quants in wasm one (weight row, activation row) pair at a
//!   time, unpacking the 256-weight block for each pair and widening to 32 bits every 8
//!   products. Gemma 3's file keeps a third of its multiply-adds in Q4_K and Q6_K. Here they
//!   take the same panels from eight activation rows (decode keeps candle's path), with
//!   activations quantised as llama.cpp's `Q8_K` (a scale per 256) for both paths.
//!
//! Every implementation (scalar, AVX2, simd128) sums a block's products in integers (exact),
//! then applies the same float operations in the same order, with no fused multiply-add. The
//! three give the same bits, so the CLI and the page compute the same numbers; the tests check
//! it. Four activation rows go at a time: their four integer sums are gathered into one vector
//! and scaled together. In wasm the products run on values widened to i16 through
//! `i32x4.dot_i16x8_s`.
#![allow(unsafe_code)]

use crate::kernels::{f16_at, quantize_row, quantize_row_k, unpack_block_into, Format, Isa, Q8Block, BLOCK};

/// Where a panel's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// Blocks of 32 (`kernels::Format`).
    Blocks(Format),
    /// Q4_K: 256 weights in 144 bytes, `w = d·sc_j·q − dmin·m_j` per 32 (`q` 0..=15).
    Q4K,
    /// Q6_K: 256 weights in 210 bytes, `w = d·sc_k·(q − 32)` per 16.
    Q6K,
}

impl Source {
    /// The source for a GGUF tensor type, if this module multiplies it.
    pub fn from_ggml(dtype: candle_core::quantized::GgmlDType) -> Option<Source> {
        use candle_core::quantized::GgmlDType as G;
        match dtype {
            G::Q4K => Some(Source::Q4K),
            G::Q6K => Some(Source::Q6K),
            _ => Format::from_ggml(dtype).map(Source::Blocks),
        }
    }

    /// (weights, bytes) per stored block.
    pub const fn block(self) -> (usize, usize) {
        match self {
            Source::Blocks(f) => (BLOCK, f.block_bytes()),
            Source::Q4K => (256, 144),
            Source::Q6K => (256, 210),
        }
    }
}

/// One weight row unpacked: i8 weights and their scales.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// The weights as i8 (Q5_0's `q − 16`, Q6_K's `q − 32`, the others' `q`).
    pub q: Vec<i8>,
    /// A scale per block of 32 weights, or per 16 when `halves`.
    pub d: Vec<f32>,
    pub halves: bool,
    /// Per block of 32: the offset's coefficient (empty when the format has none).
    pub m: Vec<f32>,
    /// Whether the offset multiplies the exact `d_x·Σa` (the K-quants, as llama.cpp's exact
    /// Q8_K sums) rather than `Q8Block::s` (Q4_1 and Q5_1, as llama.cpp's Q8_1).
    pub exact_sums: bool,
}

/// Q4_K's 6-bit scale and min of sub-block `j` (llama.cpp's `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

impl Panel {
    /// Unpacks one weight row (whole blocks of `src`), reusing this panel's buffers.
    pub fn fill(&mut self, isa: Isa, src: Source, row: &[u8]) {
        let (per, bytes) = src.block();
        let n = row.len() / bytes;
        self.q.clear();
        self.d.clear();
        self.m.clear();
        match src {
            Source::Blocks(fmt) => {
                self.halves = false;
                self.exact_sums = false;
                self.q.resize(n * per, 0);
                for (b, dst) in row.chunks_exact(bytes).zip(self.q.chunks_exact_mut(BLOCK)) {
                    unpack_block_into(isa, fmt, b, dst);
                    self.d.push(f16_at(b, 0));
                    if fmt != Format::Q5_0 {
                        self.m.push(f16_at(b, 2));
                    }
                }
            }
            Source::Q4K => {
                self.halves = false;
                self.exact_sums = true;
                for b in row.chunks_exact(bytes) {
                    let (d, dmin, scales, qs) = (f16_at(b, 0), f16_at(b, 2), &b[4..16], &b[16..144]);
                    // Four groups of 64: the low nibbles of 32 bytes, then their high nibbles.
                    for (g, q) in qs.chunks_exact(32).enumerate() {
                        for (j, shift) in [(2 * g, 0), (2 * g + 1, 4)] {
                            let (sc, m) = scale_min_k4(j, scales);
                            self.q.extend(q.iter().map(|&v| ((v >> shift) & 0x0f) as i8));
                            self.d.push(d * f32::from(sc));
                            self.m.push(-(dmin * f32::from(m)));
                        }
                    }
                }
            }
            Source::Q6K => {
                self.halves = true;
                self.exact_sums = false;
                for b in row.chunks_exact(bytes) {
                    let (ql, qh, scales, d) = (&b[..128], &b[128..192], &b[192..208], f16_at(b, 208));
                    // Two halves of 128; in each, four groups of 32 take 4 low bits from `ql`
                    // and 2 high bits from `qh`, and a scale per 16.
                    for h in 0..2 {
                        let (ql, qh, sc) = (&ql[64 * h..64 * h + 64], &qh[32 * h..32 * h + 32], &scales[8 * h..8 * h + 8]);
                        for g in 0..4 {
                            let (low, shift) = match g {
                                0 => (&ql[..32], 0),
                                1 => (&ql[32..], 0),
                                2 => (&ql[..32], 4),
                                _ => (&ql[32..], 4),
                            };
                            for l in 0..32 {
                                let v = ((low[l] >> shift) & 0x0f) | (((qh[l] >> (2 * g)) & 3) << 4);
                                self.q.push(v as i8 - 32);
                            }
                            self.d.push(d * f32::from(sc[2 * g] as i8));
                            self.d.push(d * f32::from(sc[2 * g + 1] as i8));
                        }
                    }
                }
            }
        }
    }

    /// Blocks of 32 weights.
    fn blocks(&self) -> usize {
        self.q.len() / BLOCK
    }

    fn offset_sum(&self, y: &Q8Block) -> f32 {
        if self.exact_sums {
            y.d * y.isum as f32
        } else {
            y.s
        }
    }
}

/// One panel with one activation row, portably: the reference the SIMD paths equal bit for
/// bit. For Q5_0 it also equals `kernels::dot_scalar` (`Σ (q − 16)·a = Σ q·a − 16·Σ a`).
pub fn dot_scalar(p: &Panel, a: &[Q8Block]) -> f32 {
    let dot = |q: &[i8], x: &[i8]| -> i32 { q.iter().zip(x).map(|(&q, &x)| i32::from(q) * i32::from(x)).sum() };
    let mut sum = 0f32;
    for (i, (q, y)) in p.q.chunks_exact(BLOCK).zip(a).enumerate() {
        if p.halves {
            sum += p.d[2 * i] * y.d * dot(&q[..16], &y.qs[..16]) as f32;
            sum += p.d[2 * i + 1] * y.d * dot(&q[16..], &y.qs[16..]) as f32;
        } else {
            sum += p.d[i] * y.d * dot(q, &y.qs) as f32;
        }
        if let Some(m) = p.m.get(i) {
            sum += m * p.offset_sum(y);
        }
    }
    sum
}

/// One panel with four activation rows (see [`dot_scalar`], which each lane equals).
pub fn dot4(isa: Isa, p: &Panel, a: [&[Q8Block]; 4]) -> [f32; 4] {
    let n = a.iter().fold(p.blocks(), |n, r| n.min(r.len()));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 was detected; the panel and every row hold `n` blocks.
        Isa::Avx2 if crate::kernels::avx2_available() => unsafe { avx2::dot4(p, a, n) },
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => {
            let w16: Vec<i16> = p.q.iter().map(|&v| i16::from(v)).collect();
            let x16 = a.map(simd128::widen_rows);
            simd128::dot4_wide(p, &w16, a, [&x16[0], &x16[1], &x16[2], &x16[3]])
        }
        _ => a.map(|r| dot_scalar(p, &r[..n])),
    }
}

/// Activation rows from which a product is worth unpacking weight rows into panels: the blocks
/// of 32 take `kernels`' tiles below it, the K-quants candle's quantized matmul (for decode,
/// where unpacking a row for a single dot product made Gemma's 32 tokens 35% slower).
pub const MIN_ROWS: usize = 8;

/// Weight rows unpacked together: their panels stay in cache while each group of four
/// activation rows meets all of them.
const PANELS_PER_PASS: usize = 16;

/// Each weight row unpacked once into a panel, then met by every activation row, four at a
/// time (the last group repeats its final row rather than taking a slower one-row path);
/// `put(j, i, v)` stores weight row `j` · activation row `i`.
///
/// Blocked as a matrix product should be: a pass takes [`PANELS_PER_PASS`] weight rows, and
/// every group of four activation rows meets those panels while it sits in L1. Meeting every
/// activation row with one panel at a time streamed the whole activation matrix (hundreds of
/// KB for a study's batch) from L3 once per weight row.
pub fn product(isa: Isa, src: Source, w_rows: &[&[u8]], rows: &[&[Q8Block]], mut put: impl FnMut(usize, usize, f32)) {
    let m = rows.len();
    let mut panels = vec![Panel::default(); PANELS_PER_PASS.min(w_rows.len())];
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if isa == Isa::Simd128 {
        // Every activation row widened to i16 once, and each panel after its fill.
        let x16: Vec<Vec<i16>> = rows.iter().map(|r| simd128::widen_rows(r)).collect();
        let mut w16 = vec![Vec::new(); panels.len()];
        for (pass, w_pass) in w_rows.chunks(PANELS_PER_PASS).enumerate() {
            for ((panel, wide), w_row) in panels.iter_mut().zip(w16.iter_mut()).zip(w_pass) {
                panel.fill(isa, src, w_row);
                wide.clear();
                wide.extend(panel.q.iter().map(|&v| i16::from(v)));
            }
            for i in (0..m).step_by(4) {
                let at = |r: usize| (i + r).min(m - 1);
                let a = [rows[at(0)], rows[at(1)], rows[at(2)], rows[at(3)]];
                let x = [&x16[at(0)][..], &x16[at(1)][..], &x16[at(2)][..], &x16[at(3)][..]];
                for (k, (panel, wide)) in panels.iter().zip(&w16).take(w_pass.len()).enumerate() {
                    let four = simd128::dot4_wide(panel, wide, a, x);
                    for (r, v) in four.iter().enumerate().take(m - i) {
                        put(pass * PANELS_PER_PASS + k, i + r, *v);
                    }
                }
            }
        }
        return;
    }
    for (pass, w_pass) in w_rows.chunks(PANELS_PER_PASS).enumerate() {
        for (panel, w_row) in panels.iter_mut().zip(w_pass) {
            panel.fill(isa, src, w_row);
        }
        for i in (0..m).step_by(4) {
            let at = |r: usize| rows[(i + r).min(m - 1)];
            let a = [at(0), at(1), at(2), at(3)];
            for (k, panel) in panels.iter().take(w_pass.len()).enumerate() {
                let four = dot4(isa, panel, a);
                for (r, v) in four.iter().enumerate().take(m - i) {
                    put(pass * PANELS_PER_PASS + k, i + r, *v);
                }
            }
        }
    }
}

/// Activations as llama.cpp quantises them for `src`: `Q8_K` (a scale per 256) for the
/// K-quants, 8-bit blocks of 32 otherwise.
pub fn quantize(src: Source, x: &[f32], out: &mut Vec<Q8Block>) {
    match src {
        Source::Blocks(_) => quantize_row(x, out),
        Source::Q4K | Source::Q6K => quantize_row_k(x, out),
    }
}

/// Output rows each rayon task computes.
const ROWS_PER_TASK: usize = 64;

/// `out[i, j] = Σ_k x[i, k] · w[j, k]` for `x: [m, k]` (f32) and `w: [n, k]` packed as `src`,
/// writing `out: [m, n]`; `k` must be a whole number of `src` blocks. Splits weight rows
/// across rayon's pool when it has more than one thread and the product is large.
pub fn matmul(isa: Isa, src: Source, w: &[u8], n: usize, k: usize, x: &[f32], out: &mut [f32]) {
    let (per, bytes) = src.block();
    debug_assert!(k % per == 0 && w.len() == n * k / per * bytes);
    let m = x.len() / k;
    let kb = k / BLOCK;
    let mut acts = Vec::with_capacity(m * kb);
    for row in x.chunks_exact(k) {
        quantize(src, row, &mut acts);
    }
    let rows: Vec<&[Q8Block]> = acts.chunks_exact(kb).collect();
    let w_rows: Vec<&[u8]> = w.chunks_exact(k / per * bytes).collect();
    if rayon::current_num_threads() <= 1 || n < 2 * ROWS_PER_TASK || n * k * m < 1 << 20 {
        product(isa, src, &w_rows, &rows, |j, i, v| out[i * n + j] = v);
        return;
    }
    use rayon::prelude::*;
    let mut t = vec![0f32; n * m]; // [n, m]
    // One task per thread: in the browser's threaded worker, many small tasks cost more in
    // waking and waiting than they gained.
    let per_task = n.div_ceil(rayon::current_num_threads()).max(ROWS_PER_TASK);
    t.par_chunks_mut(per_task * m).enumerate().for_each(|(c, dst)| {
        let first = c * per_task;
        let count = dst.len() / m;
        product(isa, src, &w_rows[first..first + count], &rows, |j, i, v| dst[j * m + i] = v);
    });
    for (j, col) in t.chunks_exact(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * n + j] = *v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Panel, Q8Block};
    use std::arch::x86_64::*;

    /// `[Σ s0, Σ s1, Σ s2, Σ s3]` of four vectors of partial sums.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sums4(s: [__m128i; 4]) -> __m128i {
        _mm_hadd_epi32(_mm_hadd_epi32(s[0], s[1]), _mm_hadd_epi32(s[2], s[3]))
    }

    /// Four rows' products with one block: the integer sums of elements 0..16 and 16..32.
    /// `|w|` (unsigned) meets `x` with `w`'s sign, so maddubs serves signed weights (pairs
    /// ≤ 2·32·127, no saturation); lanes 0–3 of the i32 result cover elements 0..16.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn halves(w: __m256i, y: &Q8Block) -> (__m128i, __m128i) {
        let x = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
        let prod = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
        (_mm256_castsi256_si128(prod), _mm256_extracti128_si256(prod, 1))
    }

    /// # Safety
    /// AVX2 must be present; the panel and every row of `a` hold `n` blocks.
    #[target_feature(enable = "avx2")]
    pub unsafe fn dot4(p: &Panel, a: [&[Q8Block]; 4], n: usize) -> [f32; 4] {
        debug_assert!(p.q.len() >= n * 32 && a.iter().all(|r| r.len() >= n));
        let mut acc = _mm_setzero_ps();
        for i in 0..n {
            let w = _mm256_loadu_si256(p.q.as_ptr().add(i * 32) as *const __m256i);
            let y = [a[0].get_unchecked(i), a[1].get_unchecked(i), a[2].get_unchecked(i), a[3].get_unchecked(i)];
            let dx = _mm_setr_ps(y[0].d, y[1].d, y[2].d, y[3].d);
            let (l0, h0) = halves(w, y[0]);
            let (l1, h1) = halves(w, y[1]);
            let (l2, h2) = halves(w, y[2]);
            let (l3, h3) = halves(w, y[3]);
            if p.halves {
                let lo = _mm_cvtepi32_ps(sums4([l0, l1, l2, l3]));
                let hi = _mm_cvtepi32_ps(sums4([h0, h1, h2, h3]));
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(*p.d.get_unchecked(2 * i)), dx), lo));
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(*p.d.get_unchecked(2 * i + 1)), dx), hi));
            } else {
                let both = [_mm_add_epi32(l0, h0), _mm_add_epi32(l1, h1), _mm_add_epi32(l2, h2), _mm_add_epi32(l3, h3)];
                let s = _mm_cvtepi32_ps(sums4(both));
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(*p.d.get_unchecked(i)), dx), s));
            }
            if let Some(&m) = p.m.get(i) {
                let sums = if p.exact_sums {
                    _mm_mul_ps(dx, _mm_cvtepi32_ps(_mm_setr_epi32(y[0].isum, y[1].isum, y[2].isum, y[3].isum)))
                } else {
                    _mm_setr_ps(y[0].s, y[1].s, y[2].s, y[3].s)
                };
                acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(m), sums));
            }
        }
        let mut out = [0f32; 4];
        _mm_storeu_ps(out.as_mut_ptr(), acc);
        out
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::{Panel, Q8Block};
    use core::arch::wasm32::*;

    /// `[Σ s0, Σ s1, Σ s2, Σ s3]` of four vectors of partial sums.
    fn sums4(s0: v128, s1: v128, s2: v128, s3: v128) -> v128 {
        let a = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s0, s1), i32x4_shuffle::<2, 6, 3, 7>(s0, s1));
        let b = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(s2, s3), i32x4_shuffle::<2, 6, 3, 7>(s2, s3));
        i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(a, b), i32x4_shuffle::<2, 3, 6, 7>(a, b))
    }

    /// A row of activation blocks as i16, 32 per block.
    pub fn widen_rows(a: &[Q8Block]) -> Vec<i16> {
        a.iter().flat_map(|y| y.qs.iter().map(|&v| i16::from(v))).collect()
    }

    fn load16(b: &[i16]) -> v128 {
        let b: &[i16; 8] = b[..8].try_into().expect("8 values");
        // SAFETY: `b` is 16 readable bytes; `v128_load` accepts any alignment.
        unsafe { v128_load(b.as_ptr() as *const v128) }
    }

    /// The panel (widened to i16, `w16`) with four activation rows (their blocks `a` and
    /// their values widened, `x16`). Products go through `i32x4.dot_i16x8_s` (one `pmaddwd`
    /// on x86), half the instructions of widening i8 products; sums stay exact. Written with
    /// named values rather than arrays of `v128`: V8 kept such arrays in memory.
    pub fn dot4_wide(p: &Panel, w16: &[i16], a: [&[Q8Block]; 4], x16: [&[i16]; 4]) -> [f32; 4] {
        let n = a.iter().fold(p.q.len() / 32, |n, r| n.min(r.len()));
        let mut acc = f32x4_splat(0.0);
        let [a0, a1, a2, a3] = a;
        let [x0, x1, x2, x3] = x16.map(|x| &x[..n * 32]);
        let w16 = &w16[..n * 32];
        for i in 0..n {
            let w = &w16[i * 32..i * 32 + 32];
            let (wa, wb, wc, wd) = (load16(&w[..8]), load16(&w[8..16]), load16(&w[16..24]), load16(&w[24..]));
            // (elements 0..16, elements 16..32) of one row, as four i32 partial sums each.
            let halves = |x: &[i16]| {
                let x = &x[i * 32..i * 32 + 32];
                (
                    i32x4_add(i32x4_dot_i16x8(wa, load16(&x[..8])), i32x4_dot_i16x8(wb, load16(&x[8..16]))),
                    i32x4_add(i32x4_dot_i16x8(wc, load16(&x[16..24])), i32x4_dot_i16x8(wd, load16(&x[24..]))),
                )
            };
            let (l0, h0) = halves(x0);
            let (l1, h1) = halves(x1);
            let (l2, h2) = halves(x2);
            let (l3, h3) = halves(x3);
            let (y0, y1, y2, y3) = (&a0[i], &a1[i], &a2[i], &a3[i]);
            let dx = f32x4(y0.d, y1.d, y2.d, y3.d);
            if p.halves {
                let l = f32x4_convert_i32x4(sums4(l0, l1, l2, l3));
                let h = f32x4_convert_i32x4(sums4(h0, h1, h2, h3));
                acc = f32x4_add(acc, f32x4_mul(f32x4_mul(f32x4_splat(p.d[2 * i]), dx), l));
                acc = f32x4_add(acc, f32x4_mul(f32x4_mul(f32x4_splat(p.d[2 * i + 1]), dx), h));
            } else {
                let s = sums4(i32x4_add(l0, h0), i32x4_add(l1, h1), i32x4_add(l2, h2), i32x4_add(l3, h3));
                acc = f32x4_add(acc, f32x4_mul(f32x4_mul(f32x4_splat(p.d[i]), dx), f32x4_convert_i32x4(s)));
            }
            if let Some(&m) = p.m.get(i) {
                let sums = if p.exact_sums {
                    f32x4_mul(dx, f32x4_convert_i32x4(i32x4(y0.isum, y1.isum, y2.isum, y3.isum)))
                } else {
                    f32x4(y0.s, y1.s, y2.s, y3.s)
                };
                acc = f32x4_add(acc, f32x4_mul(f32x4_splat(m), sums));
            }
        }
        [f32x4_extract_lane::<0>(acc), f32x4_extract_lane::<1>(acc), f32x4_extract_lane::<2>(acc), f32x4_extract_lane::<3>(acc)]
    }
}

/// Checks `isa`'s panels against [`dot_scalar`] (bit for bit) and against the dequantised
/// weights (within activation rounding) on random blocks of every source. Returns the number
/// of cases, or the first mismatch. Run by the native unit tests and the wasm tests.
pub fn compare_with_scalar(isa: Isa, seed: u64) -> Result<usize, String> {
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dev = Device::Cpu;
    let mut cases = 0;
    for (dtype, src) in [
        (GgmlDType::Q4_1, Source::Blocks(Format::Q4_1)),
        (GgmlDType::Q5_0, Source::Blocks(Format::Q5_0)),
        (GgmlDType::Q5_1, Source::Blocks(Format::Q5_1)),
        (GgmlDType::Q4K, Source::Q4K),
        (GgmlDType::Q6K, Source::Q6K),
    ] {
        for (rows_w, k) in [(3, 256), (5, 512)] {
            let w: Vec<f32> = (0..rows_w * k).map(|_| rng.random_range(-0.1f32..0.1)).collect();
            let wt = Tensor::from_vec(w, (rows_w, k), &dev).map_err(|e| e.to_string())?;
            let q = QTensor::quantize(&wt, dtype).map_err(|e| e.to_string())?;
            let bytes = q.data().map_err(|e| e.to_string())?.to_vec();
            let deq: Vec<f32> = q.dequantize(&dev).and_then(|t| t.flatten_all()?.to_vec1()).map_err(|e| e.to_string())?;
            let m = 6;
            let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            let mut acts = Vec::new();
            for row in x.chunks_exact(k) {
                quantize(src, row, &mut acts);
            }
            let rows: Vec<&[Q8Block]> = acts.chunks_exact(k / BLOCK).collect();
            let row_bytes = bytes.len() / rows_w;
            for (j, w_row) in bytes.chunks_exact(row_bytes).enumerate() {
                let (mut ours, mut reference) = (Panel::default(), Panel::default());
                ours.fill(isa, src, w_row);
                reference.fill(Isa::Scalar, src, w_row);
                if ours.q != reference.q || ours.d != reference.d || ours.m != reference.m {
                    return Err(format!("{src:?}: {} unpacks row {j} differently from the scalar code", isa.name()));
                }
                // The panel's weights are the dequantised row.
                let panel_w: Vec<f32> = (0..k)
                    .map(|e| {
                        let scale = if ours.halves { ours.d[e / 16] } else { ours.d[e / BLOCK] };
                        scale * f32::from(ours.q[e]) + ours.m.get(e / BLOCK).copied().unwrap_or(0.0)
                    })
                    .collect();
                for (e, (a, b)) in panel_w.iter().zip(&deq[j * k..(j + 1) * k]).enumerate() {
                    if (a - b).abs() > 1e-6 * (1.0 + b.abs()) {
                        return Err(format!("{src:?} row {j} weight {e}: the panel holds {a}, candle dequantises {b}"));
                    }
                }
                for i in 0..m - 3 {
                    let four = dot4(isa, &ours, [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]]);
                    for r in 0..4 {
                        let want = dot_scalar(&reference, rows[i + r]);
                        if four[r].to_bits() != want.to_bits() {
                            return Err(format!("{src:?} row {j}·{}: {} gives {}, scalar {want}", i + r, isa.name(), four[r]));
                        }
                        let exact: f32 = deq[j * k..(j + 1) * k].iter().zip(&x[(i + r) * k..(i + r + 1) * k]).map(|(a, b)| a * b).sum();
                        if (want - exact).abs() > 0.02 * (1.0 + exact.abs()) {
                            return Err(format!("{src:?} row {j}·{}: {want} against the dequantised {exact}", i + r));
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_equal_the_scalar_reference_and_the_dequantised_weights() {
        let n = compare_with_scalar(Isa::detect(), 17).unwrap_or_else(|e| panic!("{e}"));
        assert!(n >= 5 * 8 * 3, "{n} cases");
        compare_with_scalar(Isa::Scalar, 17).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn products_do_not_depend_on_the_thread_count() {
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        let dev = Device::Cpu;
        let (n, k, m) = (300, 512, 12);
        let w = Tensor::randn(0f32, 0.1, (n, k), &dev).unwrap();
        let x: Vec<f32> = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (dtype, src) in [(GgmlDType::Q4K, Source::Q4K), (GgmlDType::Q5_0, Source::Blocks(Format::Q5_0))] {
            let bytes = QTensor::quantize(&w, dtype).unwrap().data().unwrap().to_vec();
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut out = vec![0f32; m * n];
                pool.install(|| match src {
                    Source::Blocks(fmt) => crate::kernels::matmul(Isa::detect(), fmt, &bytes, n, k, &x, &mut out),
                    _ => matmul(Isa::detect(), src, &bytes, n, k, &x, &mut out),
                });
                out
            };
            let one = run(1);
            for threads in [2, 3] {
                assert!(run(threads).iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "{src:?} on {threads} threads");
            }
        }
    }

    #[test]
    fn matmul_equals_row_by_row_panels_with_every_row_count() {
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        let dev = Device::Cpu;
        let (n, k) = (37, 512);
        let w = Tensor::randn(0f32, 0.1, (n, k), &dev).unwrap();
        for (dtype, src) in [(GgmlDType::Q4K, Source::Q4K), (GgmlDType::Q6K, Source::Q6K), (GgmlDType::Q5_0, Source::Blocks(Format::Q5_0))] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let bytes = q.data().unwrap().to_vec();
            for m in [1, 3, 4, 9] {
                let x: Vec<f32> = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap().flatten_all().unwrap().to_vec1().unwrap();
                let mut out = vec![0f32; m * n];
                matmul(Isa::detect(), src, &bytes, n, k, &x, &mut out);
                for i in 0..m {
                    let mut a = Vec::new();
                    quantize(src, &x[i * k..(i + 1) * k], &mut a);
                    for j in 0..n {
                        let mut p = Panel::default();
                        p.fill(Isa::Scalar, src, &bytes[j * bytes.len() / n..(j + 1) * bytes.len() / n]);
                        assert_eq!(out[i * n + j].to_bits(), dot_scalar(&p, &a).to_bits(), "{src:?} m={m} [{i},{j}]");
                    }
                }
            }
        }
    }
}
