//! Normalizations — inference batch norm, layer norm and group norm — with an optional fused
//! activation. Invariant: each computes `act((x − mean)·(1/√(var + eps))·weight + bias)` as
//! etpkg's interpreter does; layer and group statistics are accumulated in f64 (biased variance).
#![forbid(unsafe_code)]

use super::act::Act;
use super::math;

/// Which normalization, with its shape. Every tensor is contiguous; `x` and `y` have the same
/// length, given per kind below.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm<'a> {
    /// `x` is `[n, c, inner]`; per-channel running statistics `mean`, `var` are `[c]`, as are
    /// weight and bias.
    Batch {
        n: usize,
        c: usize,
        inner: usize,
        eps: f32,
        mean: &'a [f32],
        var: &'a [f32],
    },
    /// `x` is `[rows, len]`, normalized per row; weight and bias are `[len]`.
    Layer { rows: usize, len: usize, eps: f32 },
    /// `x` is `[n, c, inner]`; channels split into `groups`, statistics per (image, group);
    /// weight and bias are `[c]`.
    Group {
        n: usize,
        c: usize,
        inner: usize,
        groups: usize,
        eps: f32,
    },
}

impl Norm<'_> {
    /// Elements of `x` and `y`.
    pub fn len(&self) -> usize {
        match *self {
            Norm::Batch { n, c, inner, .. } | Norm::Group { n, c, inner, .. } => n * c * inner,
            Norm::Layer { rows, len, .. } => rows * len,
        }
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Mean and biased variance of `v` in f64 (two passes, so large means do not cancel).
fn moments(v: &[f32]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&e| e as f64).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&e| (e as f64 - mean) * (e as f64 - mean))
        .sum::<f64>()
        / n;
    (mean, var)
}

//@variant generic
/// Universal normalization. `x = None` reads the input from `y` (in place, as the memory planner
/// runs it); otherwise `x` has `p.len()` elements. `weight`/`bias` of `None` mean 1 and 0.
pub fn generic(
    p: &Norm,
    x: Option<&[f32]>,
    y: &mut [f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    act: Act,
) {
    debug_assert_eq!(y.len(), p.len());
    debug_assert!(x.is_none_or(|x| x.len() == y.len()));
    if let Some(x) = x {
        y.copy_from_slice(x);
    }
    let wb = |ch: usize| {
        (
            weight.map_or(1.0, |w| w[ch] as f64),
            bias.map_or(0.0, |b| b[ch] as f64),
        )
    };
    match *p {
        Norm::Batch {
            c,
            inner,
            eps,
            mean,
            var,
            ..
        } => {
            for (i, plane) in y.chunks_mut(inner.max(1)).enumerate() {
                let ch = i % c;
                let (w, b) = wb(ch);
                let inv = 1.0 / math::sqrt_f64(var[ch] as f64 + eps as f64);
                let (m, s, b) = (mean[ch], (inv * w) as f32, b as f32);
                for v in plane {
                    *v = act.apply((*v - m) * s + b);
                }
            }
        }
        Norm::Layer { len, eps, .. } => {
            for row in y.chunks_mut(len.max(1)) {
                let (mean, var) = moments(row);
                let inv = 1.0 / math::sqrt_f64(var + eps as f64);
                for (k, v) in row.iter_mut().enumerate() {
                    let (w, b) = wb(k);
                    *v = act.apply(((*v as f64 - mean) * inv * w + b) as f32);
                }
            }
        }
        Norm::Group {
            c,
            inner,
            groups,
            eps,
            ..
        } => {
            let cg = c / groups;
            for (k, block) in y.chunks_mut((cg * inner).max(1)).enumerate() {
                let (mean, var) = moments(block);
                let inv = 1.0 / math::sqrt_f64(var + eps as f64);
                let first = (k % groups) * cg;
                for (i, v) in block.iter_mut().enumerate() {
                    let (w, b) = wb(first + i / inner.max(1));
                    *v = act.apply(((*v as f64 - mean) * inv * w + b) as f32);
                }
            }
        }
    }
}

/// Accepts every normalization whose groups divide its channels.
pub fn generic_accepts(p: &Norm) -> bool {
    match *p {
        Norm::Group { c, groups, .. } => groups >= 1 && c.is_multiple_of(groups),
        Norm::Batch { c, .. } => c >= 1,
        Norm::Layer { .. } => true,
    }
}
//@end

//@variant layer
/// Lanes of the row sums.
const NL: usize = 16;

/// Sum of `v` in `NL` partial sums, reduced pairwise, so LLVM vectorizes it.
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (chunks, tail) = v.as_chunks::<NL>();
    let mut acc = [0f32; NL];
    for ch in chunks {
        for l in 0..NL {
            acc[l] += f(ch[l]);
        }
    }
    let mut w = NL;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    acc[0] + tail.iter().map(|&e| f(e)).sum::<f32>()
}

/// `1/√v` rounded to f32: Newton's iteration for the reciprocal square root from the
/// exponent-halving first guess (within 3.5%), four steps to f64 precision and no division;
/// zero, infinity and NaN take the exact path.
#[inline(always)]
fn inv_sqrt(v: f64) -> f32 {
    if !(v > 0.0 && v < f64::INFINITY) {
        return (1.0 / math::sqrt_f64(v)) as f32;
    }
    let mut y = f64::from_bits(0x5fe6_eb50_c7b5_37a9 - (v.to_bits() >> 1));
    for _ in 0..4 {
        y *= 1.5 - 0.5 * v * y * y;
    }
    y as f32
}

/// Layer norm in f32, vectorized along each row: mean, then the biased variance of the
/// centred row (two passes, so a large mean does not cancel), then one fused scale-and-shift
/// pass and the activation with the fast approximations. `x`, `weight` and `bias` as for
/// [`generic`]; accepts only `Norm::Layer`.
pub fn layer(
    p: &Norm,
    x: Option<&[f32]>,
    y: &mut [f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    act: Act,
) {
    debug_assert_eq!(y.len(), p.len());
    let Norm::Layer { len, eps, .. } = *p else {
        return;
    };
    if let Some(x) = x {
        y.copy_from_slice(x);
    }
    if len == 0 {
        return;
    }
    let nf = len as f32;
    for row in y.chunks_exact_mut(len) {
        let mean = lane_sum(row, |e| e) / nf;
        let var = lane_sum(row, |e| (e - mean) * (e - mean)) / nf;
        let inv = inv_sqrt(var as f64 + eps as f64);
        match (weight, bias) {
            (Some(w), Some(b)) => {
                for ((v, &wv), &bv) in row.iter_mut().zip(w).zip(b) {
                    *v = (*v - mean) * inv * wv + bv;
                }
            }
            _ => {
                for (k, v) in row.iter_mut().enumerate() {
                    let wv = weight.map_or(1.0, |w| w[k]);
                    let bv = bias.map_or(0.0, |b| b[k]);
                    *v = (*v - mean) * inv * wv + bv;
                }
            }
        }
        act.apply_slice_fast(row);
    }
}

/// Accepts layer norms.
pub fn layer_accepts(p: &Norm) -> bool {
    matches!(p, Norm::Layer { .. })
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "norm.generic",
        family: "norm",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 3152,
    },
    super::meta::KernelInfo {
        name: "norm.layer",
        family: "norm",
        dtypes: &["f32"],
        isa: &[],
        shape: "layer norm (f32, vectorized rows)",
        speed: 2,
        code_bytes: 1968,
    },
];
//@end
