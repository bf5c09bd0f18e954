//! Element-wise unary kernels over f32, i64 and bool, out of place or in place. Invariant:
//! the input is converted to the output dtype first (logical_not excepted, which reads the
//! input's own truthiness) and each element is computed on its own, as the reference does.
//!
//! Slice lengths, which the caller guarantees: `x` and `y` hold `p.numel` elements. In place,
//! `x` is `InOut` and `y` holds the input.

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::act::Act;
use super::math;
use super::shape::{load, DType, Dst, Elem, Operand, Src, CHUNK};

/// The unary op, as etpkg's IR names it, with its attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Neg,
    Abs,
    Erf,
    Reciprocal,
    Floor,
    Ceil,
    /// Half to even.
    Round,
    /// `(0 < x) - (x < 0)`: NaN gives 0.
    Sign,
    Sin,
    Cos,
    LogicalNot,
    Silu,
    Hardswish,
    Hardsigmoid,
    Gelu {
        tanh: bool,
    },
    /// Clamp to `[min, max]`; a NaN bound or input gives NaN, `min > max` gives `max`.
    Clamp {
        min: Option<f64>,
        max: Option<f64>,
    },
    LeakyRelu {
        slope: f64,
    },
    Elu {
        alpha: f64,
    },
}

/// The op, the element count and the input and output dtypes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnaryParams {
    pub op: UnaryOp,
    pub numel: usize,
    pub x_dtype: DType,
    pub out_dtype: DType,
}

/// Why a unary kernel refused to run (nothing is written then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryError {
    /// The op is not computed in the output dtype (e.g. exp on i64, any arithmetic on bool).
    Unsupported,
    /// A clamp bound on i64 data that is not an integer (PyTorch would promote to float).
    FractionalBound,
}

impl core::fmt::Display for UnaryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UnaryError::Unsupported => "the op is not computed in this dtype",
            UnaryError::FractionalBound => "a fractional clamp bound on i64 data",
        })
    }
}

/// `min(max(x, lo), hi)` with PyTorch's NaN rule, compared in f64 as the reference does so a
/// bound that is not an f32 value clamps the same elements.
#[inline(always)]
fn clamp_f32(x: f32, lo: Option<f64>, hi: Option<f64>) -> f32 {
    let mut y = x as f64;
    if let Some(b) = lo {
        if b.is_nan() || y.is_nan() {
            return f32::NAN;
        }
        if y < b {
            y = b;
        }
    }
    if let Some(b) = hi {
        if b.is_nan() || y.is_nan() {
            return f32::NAN;
        }
        if y > b {
            y = b;
        }
    }
    y as f32
}

/// The op on one f32 element.
#[inline(always)]
pub fn f32_op(op: UnaryOp, x: f32) -> f32 {
    match op {
        // ReLU is clamp_min(x, 0) in PyTorch, which lets NaN through.
        UnaryOp::Relu => {
            if x > 0.0 || x.is_nan() {
                x
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => math::sigmoid(x),
        UnaryOp::Tanh => math::tanh(x),
        UnaryOp::Exp => math::exp(x),
        UnaryOp::Log => math::ln(x),
        UnaryOp::Sqrt => math::sqrt(x),
        UnaryOp::Rsqrt => math::rsqrt(x),
        UnaryOp::Neg => -x,
        UnaryOp::Abs => f32::from_bits(x.to_bits() & 0x7fff_ffff),
        UnaryOp::Erf => math::erf(x),
        UnaryOp::Reciprocal => 1.0 / x,
        UnaryOp::Floor => math::floor(x),
        UnaryOp::Ceil => math::ceil(x),
        UnaryOp::Round => math::round_half_even(x),
        UnaryOp::Sign => ((0.0 < x) as i8 - (x < 0.0) as i8) as f32,
        UnaryOp::Sin => math::sin(x),
        UnaryOp::Cos => math::cos(x),
        UnaryOp::LogicalNot => (x == 0.0) as u8 as f32,
        UnaryOp::Silu => Act::Silu.apply(x),
        UnaryOp::Hardswish => Act::Hardswish.apply(x),
        UnaryOp::Hardsigmoid => Act::Hardsigmoid.apply(x),
        UnaryOp::Gelu { tanh } => Act::Gelu { tanh }.apply(x),
        UnaryOp::Clamp { min, max } => clamp_f32(x, min, max),
        // The product is formed in f64 so it is rounded once, as in the reference.
        UnaryOp::LeakyRelu { slope } => {
            if x >= 0.0 {
                x
            } else {
                (slope * x as f64) as f32
            }
        }
        UnaryOp::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                (alpha * (math::exp(x) - 1.0) as f64) as f32
            }
        }
    }
}

/// An integer clamp bound, or an error for a fractional or NaN one.
fn int_bound(b: Option<f64>) -> Result<Option<i64>, UnaryError> {
    match b {
        None => Ok(None),
        Some(v) if (v as i64) as f64 == v => Ok(Some(v as i64)),
        Some(_) => Err(UnaryError::FractionalBound),
    }
}

/// The ops PyTorch keeps integral on i64; rounding ops are the identity and overflow wraps.
#[derive(Clone, Copy)]
enum IntOp {
    Neg,
    Abs,
    Relu,
    Sign,
    Identity,
    Clamp(Option<i64>, Option<i64>),
}

impl IntOp {
    fn of(op: UnaryOp) -> Result<IntOp, UnaryError> {
        Ok(match op {
            UnaryOp::Neg => IntOp::Neg,
            UnaryOp::Abs => IntOp::Abs,
            UnaryOp::Relu => IntOp::Relu,
            UnaryOp::Sign => IntOp::Sign,
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => IntOp::Identity,
            UnaryOp::Clamp { min, max } => IntOp::Clamp(int_bound(min)?, int_bound(max)?),
            _ => return Err(UnaryError::Unsupported),
        })
    }

    #[inline(always)]
    fn apply(self, x: i64) -> i64 {
        match self {
            IntOp::Neg => x.wrapping_neg(),
            IntOp::Abs => x.wrapping_abs(),
            IntOp::Relu => x.max(0),
            IntOp::Sign => x.signum(),
            IntOp::Identity => x,
            IntOp::Clamp(lo, hi) => {
                let x = lo.map_or(x, |lo| x.max(lo));
                hi.map_or(x, |hi| x.min(hi))
            }
        }
    }
}

//@variant unary
/// `y = op(x)` for f32, i64 and bool data. `x` may be `Src::InOut` (in place: `y` holds the
/// input, which then has the output's dtype). f32 outputs take every op; i64 outputs neg, abs,
/// relu, sign, floor/ceil/round (identity) and clamp with integer bounds; logical_not reads
/// the input's truthiness and writes 0/1 in any output dtype; everything else is
/// `Err(Unsupported)`, checked before anything is written.
pub fn unary(p: &UnaryParams, x: Src<'_>, y: Dst<'_>) -> Result<(), UnaryError> {
    let n = p.numel;
    if p.op == UnaryOp::LogicalNot {
        // Truthiness comes from the input's own dtype (0.5 is true), so load as bool first.
        match y {
            Dst::F32(y) => chunks::<u8, f32>(&x, &mut y[..n], |v| (v == 0) as u8 as f32),
            Dst::I64(y) => chunks::<u8, i64>(&x, &mut y[..n], |v| (v == 0) as i64),
            Dst::Bool(y) => chunks::<u8, u8>(&x, &mut y[..n], |v| (v == 0) as u8),
        }
        return Ok(());
    }
    match y {
        Dst::F32(y) => chunks::<f32, f32>(&x, &mut y[..n], |v| f32_op(p.op, v)),
        Dst::I64(y) => {
            let op = IntOp::of(p.op)?;
            chunks::<i64, i64>(&x, &mut y[..n], |v| op.apply(v))
        }
        Dst::Bool(_) => return Err(UnaryError::Unsupported),
    }
    Ok(())
}

/// Converts `x` to `P` chunk by chunk and writes `f` of each element into `y`.
#[inline(always)]
fn chunks<P: Elem, T: Elem>(x: &Src<'_>, y: &mut [T], f: impl Fn(P) -> T) {
    let mut buf = [P::default(); CHUNK];
    let mut j = 0;
    while j < y.len() {
        let n = (y.len() - j).min(CHUNK);
        let out = &mut y[j..j + n];
        load(x, j, 1, out, &mut buf[..n]);
        for i in 0..n {
            out[i] = f(buf[i]);
        }
        j += n;
    }
}

/// Always true: unsupported dtype combinations are the kernel's `Err`.
pub fn unary_accepts(_p: &UnaryParams) -> bool {
    true
}
//@end

//@variant unary_f32
/// `y = op(x)` on f32 data into f32, one loop per op so each can vectorize; `x` may be
/// `Operand::InOut` (in place).
pub fn unary_f32(p: &UnaryParams, x: Operand<'_, f32>, y: &mut [f32]) {
    let y = &mut y[..p.numel];
    match p.op {
        UnaryOp::Relu => map_f32(x, y, |v| f32_op(UnaryOp::Relu, v)),
        UnaryOp::Sigmoid => map_f32(x, y, math::sigmoid),
        UnaryOp::Tanh => map_f32(x, y, math::tanh),
        UnaryOp::Exp => map_f32(x, y, math::exp),
        UnaryOp::Neg => map_f32(x, y, |v| -v),
        UnaryOp::Abs => map_f32(x, y, |v| f32_op(UnaryOp::Abs, v)),
        UnaryOp::Reciprocal => map_f32(x, y, |v| 1.0 / v),
        UnaryOp::Silu => map_f32(x, y, |v| Act::Silu.apply(v)),
        UnaryOp::Hardswish => map_f32(x, y, |v| Act::Hardswish.apply(v)),
        UnaryOp::Hardsigmoid => map_f32(x, y, |v| Act::Hardsigmoid.apply(v)),
        UnaryOp::Clamp { min, max } => map_f32(x, y, |v| clamp_f32(v, min, max)),
        op => map_f32(x, y, |v| f32_op(op, v)),
    }
}

#[inline(always)]
fn map_f32(x: Operand<'_, f32>, y: &mut [f32], f: impl Fn(f32) -> f32) {
    match x {
        Operand::Slice(x) => {
            let n = y.len();
            for (d, &s) in y.iter_mut().zip(&x[..n]) {
                *d = f(s);
            }
        }
        Operand::InOut => {
            for d in y.iter_mut() {
                *d = f(*d);
            }
        }
    }
}

/// True for f32 input and output and any op but logical_not.
pub fn unary_f32_accepts(p: &UnaryParams) -> bool {
    p.x_dtype == DType::F32 && p.out_dtype == DType::F32 && p.op != UnaryOp::LogicalNot
}
//@end

//@meta
/// `code_bytes`: measured on x86_64 by instantiating each variant (f32 where generic) behind
/// one `#[no_mangle]` wrapper in a scratch `staticlib` crate built with `--release`, `lto`,
/// `codegen-units = 1`, `panic = "abort"`, then summing `nm -S` sizes over the functions
/// reachable from the wrapper (relocations in `objdump -dr`), core's panic paths excluded.
/// Shared helpers a variant reaches (`crate::math`, `crate::act`, the row walker) are counted
/// in every variant that reaches them.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "unary.unary",
        family: "unary",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 19684,
    },
    super::meta::KernelInfo {
        name: "unary.unary_f32",
        family: "unary",
        dtypes: &["f32"],
        isa: &[],
        shape: "f32 in and out, not logical_not",
        speed: 1,
        code_bytes: 12799,
    },
];
//@end
