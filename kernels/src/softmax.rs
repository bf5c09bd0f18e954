//! Softmax and log-softmax along one axis of a contiguous tensor.
//! Invariant: computes what etpkg's interpreter computes: the line's maximum is subtracted
//! first, sums are accumulated in f64, and a NaN anywhere in a line makes the whole line NaN.
#![forbid(unsafe_code)]

use super::math;

/// The tensor seen as `[outer, len, inner]` with the softmax axis in the middle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
    /// Log-softmax instead of softmax.
    pub log: bool,
}

//@variant generic
/// Universal softmax. `x` and `y` both have `outer·len·inner` elements.
pub fn generic(p: &Softmax, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), p.outer * p.len * p.inner);
    debug_assert_eq!(y.len(), x.len());
    let (len, inner) = (p.len, p.inner);
    for o in 0..p.outer {
        for n in 0..inner {
            let at = |k: usize| (o * len + k) * inner + n;
            let mut max = f64::NEG_INFINITY;
            for k in 0..len {
                let v = x[at(k)] as f64;
                if v.is_nan() || v > max {
                    max = v;
                    if v.is_nan() {
                        break;
                    }
                }
            }
            let mut sum = 0f64;
            for k in 0..len {
                sum += math::exp_f64(x[at(k)] as f64 - max);
            }
            let lse = math::ln_f64(sum);
            for k in 0..len {
                let shifted = x[at(k)] as f64 - max;
                y[at(k)] = if p.log {
                    (shifted - lse) as f32
                } else {
                    (math::exp_f64(shifted) / sum) as f32
                };
            }
        }
    }
}

/// Accepts every softmax.
pub fn generic_accepts(_p: &Softmax) -> bool {
    true
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[super::meta::KernelInfo {
    name: "softmax.generic",
    family: "softmax",
    dtypes: &["f32"],
    isa: &[],
    shape: "any",
    speed: 0,
    code_bytes: 1883,
}];
//@end
