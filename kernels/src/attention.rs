//! Scaled dot-product attention `softmax(q·kᵀ·scale + mask) · v` with batch broadcasting, an
//! optional bool or float mask and causal masking. Invariant: computes what etpkg's interpreter
//! computes: a row whose scores are all −inf (fully masked) gives zeros, a NaN score makes its
//! row NaN, and the softmax is taken after subtracting the row's maximum.
//!
//! Slice lengths: `q` holds the `[.., l, e]` matrices addressed by `q_batch_stride`, `k` the
//! `[.., s, e]` ones, `v` the `[.., s, ev]` ones; `y` is `batch_len()·l·ev`; the caller's
//! scratch `scores` must hold at least `s` elements.
#![forbid(unsafe_code)]

use super::math;

/// Batch rank the broadcasting index handles.
pub const MAX_BATCH: usize = 4;

/// An attention mask broadcast to `[batch.., l, s]` through `Sdpa::mask_stride`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mask<'a> {
    None,
    /// `true` keeps a score, `false` masks it to −inf.
    Bool(&'a [bool]),
    /// Added to the scaled scores.
    Float(&'a [f32]),
}

/// One attention.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sdpa {
    /// Output batch dims, right-aligned with leading 1s.
    pub batch: [usize; MAX_BATCH],
    /// Element strides of each operand's matrices along the batch dims (0 to broadcast).
    pub q_batch_stride: [usize; MAX_BATCH],
    pub k_batch_stride: [usize; MAX_BATCH],
    pub v_batch_stride: [usize; MAX_BATCH],
    /// Element strides of the mask along `[batch.., l, s]` (0 to broadcast).
    pub mask_stride: [usize; MAX_BATCH + 2],
    pub l: usize,
    pub s: usize,
    pub e: usize,
    pub ev: usize,
    /// Usually `1/√e` (see [`Sdpa::default_scale`]).
    pub scale: f32,
    /// Mask scores with key index `j > i`.
    pub causal: bool,
}

impl Sdpa {
    /// PyTorch's default scale `1/√e`.
    pub fn default_scale(e: usize) -> f32 {
        (1.0 / math::sqrt_f64(e as f64)) as f32
    }

    /// Number of output matrices.
    pub fn batch_len(&self) -> usize {
        self.batch.iter().product()
    }
}

//@variant generic
/// Universal attention, one query row at a time; `scores` is scratch of at least `p.s`
/// elements.
pub fn generic(
    p: &Sdpa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Mask,
    y: &mut [f32],
    scores: &mut [f32],
) {
    debug_assert_eq!(y.len(), p.batch_len() * p.l * p.ev);
    debug_assert!(scores.len() >= p.s);
    let (l, s, e, ev) = (p.l, p.s, p.e, p.ev);
    let scores = &mut scores[..s];
    for bi in 0..p.batch_len() {
        let (mut oq, mut ok, mut ov, mut om) = (0, 0, 0, 0);
        let mut rest = bi;
        for d in (0..MAX_BATCH).rev() {
            let size = p.batch[d].max(1);
            let c = rest % size;
            rest /= size;
            oq += c * p.q_batch_stride[d];
            ok += c * p.k_batch_stride[d];
            ov += c * p.v_batch_stride[d];
            om += c * p.mask_stride[d];
        }
        for i in 0..l {
            let qr = &q[oq + i * e..oq + (i + 1) * e];
            let mut max = f32::NEG_INFINITY;
            let mut any_nan = false;
            for (j, sc) in scores.iter_mut().enumerate() {
                let kr = &k[ok + j * e..ok + (j + 1) * e];
                let mut dot = 0f32;
                for (a, b) in qr.iter().zip(kr) {
                    dot += a * b;
                }
                let mut x = dot * p.scale;
                if p.causal && j > i {
                    x = f32::NEG_INFINITY;
                }
                let mi = om + i * p.mask_stride[MAX_BATCH] + j * p.mask_stride[MAX_BATCH + 1];
                match mask {
                    Mask::None => {}
                    Mask::Bool(m) => {
                        if !m[mi] {
                            x = f32::NEG_INFINITY;
                        }
                    }
                    Mask::Float(m) => x += m[mi],
                }
                any_nan |= x.is_nan();
                max = max.max(x);
                *sc = x;
            }
            let out = &mut y[(bi * l + i) * ev..(bi * l + i + 1) * ev];
            if max == f32::NEG_INFINITY && !any_nan {
                out.fill(0.0);
                continue;
            }
            let mut total = 0f64;
            for sc in scores.iter_mut() {
                *sc = math::exp_f64((*sc - max) as f64) as f32;
                total += *sc as f64;
            }
            out.fill(0.0);
            for (j, &w) in scores.iter().enumerate() {
                let vr = &v[ov + j * ev..ov + (j + 1) * ev];
                for (o, &vv) in out.iter_mut().zip(vr) {
                    *o += w * vv;
                }
            }
            let inv = (1.0 / total) as f32;
            for o in out.iter_mut() {
                *o *= inv;
            }
        }
    }
}

/// Accepts every attention.
pub fn generic_accepts(_p: &Sdpa) -> bool {
    true
}
//@end

//@variant fast
/// Lanes of the dot-product accumulators.
const FL: usize = 16;

/// Elements of the stack copy of `k` transposed (4 KiB, zero-filled once per call); larger
/// `s·e` use dot products.
const KT_CAP: usize = 1024;

/// Offsets of batch `bi`'s q, k, v and mask matrices. Never inlined: inlined, LLVM sank its
/// integer divisions into the inner loops of [`fast`].
#[inline(never)]
fn batch_offsets(p: &Sdpa, bi: usize) -> [usize; 4] {
    let mut o = [0usize; 4];
    let mut rest = bi;
    for d in (0..MAX_BATCH).rev() {
        let size = p.batch[d].max(1);
        let c = rest % size;
        rest /= size;
        o[0] += c * p.q_batch_stride[d];
        o[1] += c * p.k_batch_stride[d];
        o[2] += c * p.v_batch_stride[d];
        o[3] += c * p.mask_stride[d];
    }
    o
}

/// The largest score ignoring NaN (as the generic variant's running `f32::max` does), and
/// whether any score is NaN, in `FL` lanes so the scan vectorizes.
#[inline(always)]
fn max_and_nan(v: &[f32]) -> (f32, bool) {
    let (chunks, tail) = v.as_chunks::<FL>();
    let mut m = [f32::NEG_INFINITY; FL];
    let mut nan = [false; FL];
    for ch in chunks {
        for l in 0..FL {
            // A NaN compares false, so it never becomes the maximum.
            m[l] = if ch[l] > m[l] { ch[l] } else { m[l] };
            nan[l] |= ch[l].is_nan();
        }
    }
    let mut max = m
        .iter()
        .fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a });
    let mut any_nan = nan.iter().any(|&b| b);
    for &x in tail {
        max = if x > max { x } else { max };
        any_nan |= x.is_nan();
    }
    (max, any_nan)
}

/// Sum of `v` in `FL` partial sums reduced pairwise, so it vectorizes.
#[inline(always)]
fn lane_sum(v: &[f32]) -> f32 {
    let (chunks, tail) = v.as_chunks::<FL>();
    let mut acc = [0f32; FL];
    for ch in chunks {
        for l in 0..FL {
            acc[l] += ch[l];
        }
    }
    let mut w = FL;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0] + tail.iter().sum::<f32>()
}

/// `a·b` over equal-length rows, in `FL`-lane partial sums reduced pairwise at the end.
#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let (ac, at) = a.as_chunks::<FL>();
    let (bc, bt) = b.as_chunks::<FL>();
    let mut acc = [0f32; FL];
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..FL {
            acc[l] += x[l] * y[l];
        }
    }
    let mut w = FL;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    let mut s = acc[0];
    for (x, y) in at.iter().zip(bt) {
        s += x * y;
    }
    s
}

/// Attention with vectorized dot products and `math::fast_exp`, sums in f32; the same
/// masking, fully-masked-row and NaN rules as the generic variant. `scores` is scratch of at
/// least `p.s` elements.
pub fn fast(
    p: &Sdpa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Mask,
    y: &mut [f32],
    scores: &mut [f32],
) {
    debug_assert_eq!(y.len(), p.batch_len() * p.l * p.ev);
    debug_assert!(scores.len() >= p.s);
    let (l, s, e, ev) = (p.l, p.s, p.e, p.ev);
    let scores = &mut scores[..s];
    // With few keys, `k` transposed to `[e, s]` on the stack lets a query's scores be computed
    // along the keys, one vector multiply-add per query element, instead of one reduced dot
    // product per key.
    let mut kt = [0f32; KT_CAP];
    // Rows of the transposed keys padded to whole `FL`-lane chunks (the padding stays zero).
    let sp = s.div_ceil(FL) * FL;
    let transposed = sp * e <= KT_CAP && s > 0;
    for bi in 0..p.batch_len() {
        let [oq, ok, ov, om] = batch_offsets(p, bi);
        let km = &k[ok..ok + s * e];
        let vm = &v[ov..ov + s * ev];
        if transposed {
            for (j, kr) in km.chunks_exact(e.max(1)).enumerate().take(s) {
                for (t, &kv) in kr.iter().enumerate() {
                    kt[t * sp + j] = kv;
                }
            }
        }
        for i in 0..l {
            let qr = &q[oq + i * e..oq + (i + 1) * e];
            if transposed {
                // `FL` keys at a time, accumulated in a register array along the rows of the
                // zero-padded transposed keys.
                for (c, chunk) in scores.chunks_mut(FL).enumerate() {
                    let mut acc = [0f32; FL];
                    for (&w, ktr) in qr.iter().zip(kt[..e * sp].chunks_exact(sp)) {
                        let (kc, _) = ktr[c * FL..].as_chunks::<FL>();
                        for l in 0..FL {
                            acc[l] += w * kc[0][l];
                        }
                    }
                    for (sc, &a) in chunk.iter_mut().zip(&acc) {
                        *sc = a * p.scale;
                    }
                }
            } else {
                for (j, sc) in scores.iter_mut().enumerate() {
                    *sc = dot_lanes(qr, &km[j * e..(j + 1) * e]) * p.scale;
                }
            }
            if p.causal && i + 1 < s {
                scores[i + 1..].fill(f32::NEG_INFINITY);
            }
            let row = om + i * p.mask_stride[MAX_BATCH];
            let js = p.mask_stride[MAX_BATCH + 1];
            match mask {
                Mask::None => {}
                Mask::Bool(m) => {
                    for (j, sc) in scores.iter_mut().enumerate() {
                        if !m[row + j * js] {
                            *sc = f32::NEG_INFINITY;
                        }
                    }
                }
                Mask::Float(m) => {
                    for (j, sc) in scores.iter_mut().enumerate() {
                        *sc += m[row + j * js];
                    }
                }
            }
            let (max, any_nan) = max_and_nan(scores);
            let out = &mut y[(bi * l + i) * ev..(bi * l + i + 1) * ev];
            if max == f32::NEG_INFINITY && !any_nan {
                out.fill(0.0);
                continue;
            }
            // Exponentials in their own loop, which vectorizes; summing in the same loop would
            // make it a serial f32 reduction and keep `fast_exp` scalar.
            for sc in scores.iter_mut() {
                *sc = math::fast_exp(*sc - max);
            }
            let total = lane_sum(scores);
            let inv = 1.0 / total;
            // `FL` output columns at a time in a register array; a narrower last chunk in
            // memory.
            for (c, oc) in out.chunks_mut(FL).enumerate() {
                let c0 = c * FL;
                if oc.len() == FL {
                    let mut acc = [0f32; FL];
                    for (j, &w) in scores.iter().enumerate() {
                        let (vc, _) = vm[j * ev + c0..].as_chunks::<FL>();
                        for l in 0..FL {
                            acc[l] += w * vc[0][l];
                        }
                    }
                    for (o, &a) in oc.iter_mut().zip(&acc) {
                        *o = a * inv;
                    }
                } else {
                    oc.fill(0.0);
                    for (j, &w) in scores.iter().enumerate() {
                        let vr = &vm[j * ev + c0..j * ev + c0 + oc.len()];
                        for (o, &vv) in oc.iter_mut().zip(vr) {
                            *o += w * vv;
                        }
                    }
                    for o in oc.iter_mut() {
                        *o *= inv;
                    }
                }
            }
        }
    }
}

/// Accepts every attention.
pub fn fast_accepts(_p: &Sdpa) -> bool {
    true
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined, plus the fast
/// variant's out-of-line `batch_offsets`; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "attention.generic",
        family: "attention",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 4871,
    },
    super::meta::KernelInfo {
        name: "attention.fast",
        family: "attention",
        dtypes: &["f32"],
        isa: &[],
        shape: "any (vectorized, fast exp)",
        speed: 2,
        code_bytes: 6915,
    },
];
//@end
