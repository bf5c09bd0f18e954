//! Rules for ATen ops with no core op of their own, expressed through several core ops
//! (`log1p`, `softplus`, `fmod`, `logsumexp`, vector norms, instance norm, batch statistics,
//! `baddbmm`, `flip`, `roll`, ...). Invariant: each expansion is PyTorch's definition written out,
//! so the reference interpreter checks it like any other graph.

use super::args::{Ctx, Scalar};
use super::reduce::{axes, axis};
use super::{LowerError, Lowerer, Rule};
use crate::ir::{BinaryOp, DType, Op, ReduceOp, TensorType, UnaryOp, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("log1p.default", log1p),
    ("square.default", square),
    ("softplus.default", softplus),
    ("fmod.Scalar", fmod),
    ("fmod.Tensor", fmod),
    ("logsumexp.default", logsumexp),
    ("linalg_vector_norm.default", vector_norm),
    ("instance_norm.default", instance_norm),
    ("_native_batch_norm_legit.no_stats", batch_stats_norm),
    ("_native_batch_norm_legit.default", batch_stats_norm),
    ("baddbmm.default", baddbmm),
    ("dot.default", |l, c| product(l, c, "tensor")),
    ("mv.default", |l, c| product(l, c, "vec")),
    ("mT.default", m_t),
    ("__and__.Tensor", |l, c| logical(l, c, BinaryOp::And)),
    ("__or__.Tensor", |l, c| logical(l, c, BinaryOp::Or)),
    ("__xor__.Tensor", |l, c| logical(l, c, BinaryOp::Xor)),
    ("__invert__.default", invert),
    ("flip.default", flip),
    ("mish.default", mish),
    ("expm1.default", expm1),
    ("log_sigmoid.default", log_sigmoid),
    ("prelu.default", prelu),
    ("_prelu_kernel.default", prelu),
    ("glu.default", glu),
    ("pixel_shuffle.default", pixel_shuffle),
    ("selu.default", selu),
    ("celu.default", celu),
    ("__lshift__.Scalar", |l, c| shift(l, c, true)),
    ("__rshift__.Scalar", |l, c| shift(l, c, false)),
    ("bitwise_left_shift.Tensor_Scalar", |l, c| shift(l, c, true)),
    ("bitwise_right_shift.Tensor_Scalar", |l, c| {
        shift(l, c, false)
    }),
    ("expand_as.default", expand_as),
    ("roll.default", roll),
];

impl Lowerer<'_> {
    pub(super) fn bin(
        &mut self,
        op: BinaryOp,
        a: ValueId,
        b: ValueId,
    ) -> Result<ValueId, LowerError> {
        self.emit(Op::Binary(op), vec![a, b])
    }

    pub(super) fn un(&mut self, u: UnaryOp, x: ValueId) -> Result<ValueId, LowerError> {
        self.emit(Op::Unary(u), vec![x])
    }

    /// A 0-d constant of `v`'s dtype, so mixing it in never changes the result type.
    pub(super) fn like(&mut self, v: ValueId, s: f64) -> Result<ValueId, LowerError> {
        let dtype = self.ty(v).dtype;
        self.filled(Scalar::Float(s), dtype, vec![])
    }

    /// A constant 1-d i64 index vector.
    pub(super) fn indices(&mut self, idx: &[i64]) -> ValueId {
        let bytes = idx.iter().flat_map(|i| i.to_le_bytes()).collect();
        self.constant(TensorType::new(DType::I64, vec![idx.len()]), bytes)
    }
}

fn one(out: ValueId) -> Result<Vec<Option<ValueId>>, LowerError> {
    Ok(vec![Some(out)])
}

fn float_input(lw: &mut Lowerer, ctx: &Ctx) -> Result<ValueId, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    if lw.ty(x).dtype.is_float() {
        Ok(x)
    } else {
        lw.cast(x, DType::F32)
    }
}

fn log1p(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let c = lw.like(x, 1.0)?;
    let s = lw.bin(BinaryOp::Add, x, c)?;
    one(lw.un(UnaryOp::Log, s)?)
}

fn square(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let x = if lw.ty(x).dtype == DType::Bool {
        lw.cast(x, DType::I64)?
    } else {
        x
    };
    one(lw.bin(BinaryOp::Mul, x, x)?)
}

/// `softplus(x) = log(1 + exp(βx)) / β`, and `x` itself where `βx > threshold`.
fn softplus(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let beta = ctx.opt_scalar("beta")?.map_or(1.0, |s| s.as_f64());
    let threshold = ctx.opt_scalar("threshold")?.map_or(20.0, |s| s.as_f64());
    one(softplus_of(lw, x, beta, threshold)?)
}

fn softplus_of(
    lw: &mut Lowerer,
    x: ValueId,
    beta: f64,
    threshold: f64,
) -> Result<ValueId, LowerError> {
    let b = lw.like(x, beta)?;
    let bx = lw.bin(BinaryOp::Mul, x, b)?;
    let e = lw.un(UnaryOp::Exp, bx)?;
    let c1 = lw.like(x, 1.0)?;
    let s = lw.bin(BinaryOp::Add, e, c1)?;
    let l = lw.un(UnaryOp::Log, s)?;
    let soft = lw.bin(BinaryOp::Div, l, b)?;
    let t = lw.like(x, threshold)?;
    let over = lw.bin(BinaryOp::Gt, bx, t)?;
    lw.emit(Op::Where, vec![over, x, soft])
}

/// `fmod(a, b) = a − trunc(a / b) · b` (the remainder takes the dividend's sign).
fn fmod(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor(lw, "self")?;
    let b = ctx.tensor_or_scalar(lw, "other")?;
    let q = lw.bin(BinaryOp::TruncDiv, a, b)?;
    let qb = lw.bin(BinaryOp::Mul, q, b)?;
    one(lw.bin(BinaryOp::Sub, a, qb)?)
}

/// `log Σ exp(x) = m + log Σ exp(x − m)` with `m` the maximum, taken as 0 where it is
/// infinite so that all −∞ rows give −∞ rather than NaN (PyTorch's rule).
fn logsumexp(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let rank = lw.ty(x).rank();
    let ax = axes(lw, &ctx.ints_or("dim", &[])?, rank)?;
    let keepdim = ctx.bool_or("keepdim", false)?;
    let m = lw.emit(
        Op::Reduce {
            op: ReduceOp::Max,
            axes: ax.clone(),
            keepdim: true,
        },
        vec![x],
    )?;
    let am = lw.un(UnaryOp::Abs, m)?;
    let inf = lw.like(m, f64::INFINITY)?;
    let is_inf = lw.bin(BinaryOp::Eq, am, inf)?;
    let zero = lw.like(m, 0.0)?;
    let m = lw.emit(Op::Where, vec![is_inf, zero, m])?;
    let d = lw.bin(BinaryOp::Sub, x, m)?;
    let e = lw.un(UnaryOp::Exp, d)?;
    let s = lw.emit(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: ax.clone(),
            keepdim,
        },
        vec![e],
    )?;
    let l = lw.un(UnaryOp::Log, s)?;
    let m = if keepdim {
        m
    } else {
        let shape = lw.ty(l).shape.clone();
        lw.emit(Op::Reshape { shape }, vec![m])?
    };
    one(lw.bin(BinaryOp::Add, l, m)?)
}

/// `‖x‖_p` over `dim`: the usual special cases for p = 0, 1, 2, ±∞, else `(Σ|x|^p)^(1/p)`.
fn vector_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut x = float_input(lw, ctx)?;
    if let Some(d) = ctx.opt_dtype("dtype")? {
        x = lw.cast(x, d)?;
    }
    let p = ctx.opt_scalar("ord")?.map_or(2.0, |s| s.as_f64());
    let rank = lw.ty(x).rank();
    let ax = axes(lw, &ctx.opt_ints("dim")?.unwrap_or_default(), rank)?;
    let keepdim = ctx.bool_or("keepdim", false)?;
    let reduce = |lw: &mut Lowerer, op, v| {
        lw.emit(
            Op::Reduce {
                op,
                axes: ax.clone(),
                keepdim,
            },
            vec![v],
        )
    };
    let a = lw.un(UnaryOp::Abs, x)?;
    let y = if p == f64::INFINITY {
        reduce(lw, ReduceOp::Max, a)?
    } else if p == f64::NEG_INFINITY {
        reduce(lw, ReduceOp::Min, a)?
    } else if p == 0.0 {
        let z = lw.like(x, 0.0)?;
        let nz = lw.bin(BinaryOp::Ne, x, z)?;
        let nz = lw.cast(nz, lw.ty(x).dtype)?;
        reduce(lw, ReduceOp::Sum, nz)?
    } else if p == 1.0 {
        reduce(lw, ReduceOp::Sum, a)?
    } else if p == 2.0 {
        let sq = lw.bin(BinaryOp::Mul, x, x)?;
        let s = reduce(lw, ReduceOp::Sum, sq)?;
        lw.un(UnaryOp::Sqrt, s)?
    } else {
        let pc = lw.like(x, p)?;
        let pw = lw.bin(BinaryOp::Pow, a, pc)?;
        let s = reduce(lw, ReduceOp::Sum, pw)?;
        let inv = lw.like(x, 1.0 / p)?;
        lw.bin(BinaryOp::Pow, s, inv)?
    };
    one(y)
}

/// Instance norm with input statistics is group norm with one group per channel; with running
/// statistics it is batch norm.
fn instance_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "input")?;
    let shape = lw.ty(x).shape.clone();
    if shape.len() < 3 {
        return Err(lw.invalid(format!(
            "instance norm needs [N, C, *spatial], found {shape:?}"
        )));
    }
    let c = shape[1];
    let (w, b) = super::norm::affine(lw, ctx, x, vec![c])?;
    let eps = ctx.float_or("eps", 1e-5)?;
    if ctx.bool_or("use_input_stats", true)? {
        return one(lw.emit(Op::GroupNorm { groups: c, eps }, vec![x, w, b])?);
    }
    let mean = ctx.tensor(lw, "running_mean")?;
    let var = ctx.tensor(lw, "running_var")?;
    one(lw.emit(Op::BatchNorm { eps }, vec![x, w, b, mean, var])?)
}

/// Batch norm with batch statistics (`_native_batch_norm_legit` in training form, which
/// decomposed instance norm uses): normalize every channel over the batch and spatial dims.
fn batch_stats_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "input")?;
    let shape = lw.ty(x).shape.clone();
    if shape.len() < 2 {
        return Err(lw.invalid(format!("batch norm needs [N, C, *], found {shape:?}")));
    }
    if ctx.get("running_mean").is_some() && !ctx.bool_or("training", false)? {
        let mean = ctx.tensor(lw, "running_mean")?;
        let var = ctx.tensor(lw, "running_var")?;
        let (w, b) = super::norm::affine(lw, ctx, x, vec![shape[1]])?;
        let eps = ctx.float_or("eps", 1e-5)?;
        let y = lw.emit(Op::BatchNorm { eps }, vec![x, w, b, mean, var])?;
        return Ok(vec![Some(y), None, None]);
    }
    let eps = ctx.float_or("eps", 1e-5)?;
    let ax: Vec<usize> = (0..shape.len()).filter(|&d| d != 1).collect();
    let mean = lw.emit(
        Op::Reduce {
            op: ReduceOp::Mean,
            axes: ax.clone(),
            keepdim: true,
        },
        vec![x],
    )?;
    let var = lw.emit(
        Op::Var {
            axes: ax,
            correction: 0.0,
            keepdim: true,
        },
        vec![x],
    )?;
    let e = lw.like(var, eps)?;
    let ve = lw.bin(BinaryOp::Add, var, e)?;
    let r = lw.un(UnaryOp::Rsqrt, ve)?;
    let d = lw.bin(BinaryOp::Sub, x, mean)?;
    let mut y = lw.bin(BinaryOp::Mul, d, r)?;
    let mut bshape = vec![1; shape.len()];
    bshape[1] = shape[1];
    if let Some(w) = ctx.opt_tensor(lw, "weight")? {
        let w = lw.emit(
            Op::Reshape {
                shape: bshape.clone(),
            },
            vec![w],
        )?;
        y = lw.bin(BinaryOp::Mul, y, w)?;
    }
    if let Some(b) = ctx.opt_tensor(lw, "bias")? {
        let b = lw.emit(Op::Reshape { shape: bshape }, vec![b])?;
        y = lw.bin(BinaryOp::Add, y, b)?;
    }
    Ok(vec![Some(y), None, None])
}

/// `baddbmm(s, a, b) = β·s + α·(a @ b)`.
fn baddbmm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let s = ctx.tensor(lw, "self")?;
    let a = ctx.tensor(lw, "batch1")?;
    let b = ctx.tensor(lw, "batch2")?;
    let mut p = lw.emit(Op::MatMul, vec![a, b])?;
    let alpha = ctx.opt_scalar("alpha")?.map_or(1.0, |s| s.as_f64());
    let beta = ctx.opt_scalar("beta")?.map_or(1.0, |s| s.as_f64());
    if alpha != 1.0 {
        let c = lw.like(p, alpha)?;
        p = lw.bin(BinaryOp::Mul, p, c)?;
    }
    if beta == 0.0 {
        return one(p);
    }
    let mut s = s;
    if beta != 1.0 {
        let c = lw.like(s, beta)?;
        s = lw.bin(BinaryOp::Mul, s, c)?;
    }
    one(lw.bin(BinaryOp::Add, s, p)?)
}

fn product(lw: &mut Lowerer, ctx: &Ctx, other: &str) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor(lw, "self")?;
    let b = ctx.tensor(lw, other)?;
    one(lw.emit(Op::MatMul, vec![a, b])?)
}

fn m_t(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let r = lw.ty(x).rank();
    if r < 2 {
        return Err(lw.invalid(format!("mT needs a tensor of rank ≥ 2, found rank {r}")));
    }
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    one(lw.emit(Op::Permute { perm }, vec![x])?)
}

/// Python's `&`, `|`, `^` on tensors; supported on bools, where they are the logical ops.
fn logical(lw: &mut Lowerer, ctx: &Ctx, op: BinaryOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor(lw, "self")?;
    let b = ctx.tensor_or_scalar(lw, "other")?;
    if lw.ty(a).dtype != DType::Bool || lw.ty(b).dtype != DType::Bool {
        return Err(lw.invalid("bitwise `&`, `|`, `^` are supported on bool tensors only".into()));
    }
    one(lw.bin(op, a, b)?)
}

fn invert(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    if lw.ty(x).dtype != DType::Bool {
        return Err(lw.invalid("`~` is supported on bool tensors only".into()));
    }
    one(lw.un(UnaryOp::LogicalNot, x)?)
}

/// Reversal along each dim, as a gather with a constant reversed index.
fn flip(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut y = ctx.tensor(lw, "self")?;
    let rank = lw.ty(y).rank();
    for d in ctx.ints("dims")? {
        let a = axis(lw, d, rank)?;
        let n = lw.ty(y).shape[a] as i64;
        let idx: Vec<i64> = (0..n).rev().collect();
        let i = lw.indices(&idx);
        y = lw.emit(Op::Take { axis: a }, vec![y, i])?;
    }
    one(y)
}

/// `roll`: element i moves to (i + shift) mod n, as a gather with a constant index. With no
/// dims the tensor is rolled as if flattened.
fn roll(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let shifts = ctx.ints("shifts")?;
    let dims = ctx.ints_or("dims", &[])?;
    let shape = lw.ty(x).shape.clone();
    let (mut y, dims) = if dims.is_empty() {
        let flat = lw.emit(
            Op::Reshape {
                shape: vec![lw.ty(x).numel()],
            },
            vec![x],
        )?;
        (flat, vec![0])
    } else {
        (x, dims)
    };
    if shifts.len() != dims.len() {
        return Err(lw.invalid(format!(
            "roll: {} shifts for {} dims",
            shifts.len(),
            dims.len()
        )));
    }
    let rank = lw.ty(y).rank();
    for (&s, &d) in shifts.iter().zip(&dims) {
        let a = axis(lw, d, rank)?;
        let n = lw.ty(y).shape[a] as i64;
        if n == 0 {
            continue;
        }
        let idx: Vec<i64> = (0..n).map(|i| (i - s).rem_euclid(n)).collect();
        let i = lw.indices(&idx);
        y = lw.emit(Op::Take { axis: a }, vec![y, i])?;
    }
    if lw.ty(y).shape != shape {
        y = lw.emit(Op::Reshape { shape }, vec![y])?;
    }
    one(y)
}

/// `mish(x) = x · tanh(softplus(x))`.
fn mish(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    // PyTorch's mish uses softplus with its defaults, β = 1 and threshold 20.
    let sp = softplus_of(lw, x, 1.0, 20.0)?;
    let t = lw.un(UnaryOp::Tanh, sp)?;
    one(lw.bin(BinaryOp::Mul, x, t)?)
}

/// The general ELU: `scale · x` for x > 0, else `scale · α · (exp(input_scale · x) − 1)`.
pub(super) fn scaled_elu(
    lw: &mut Lowerer,
    x: ValueId,
    alpha: f64,
    scale: f64,
    input_scale: f64,
) -> Result<ValueId, LowerError> {
    if scale == 1.0 && input_scale == 1.0 {
        return lw.un(UnaryOp::Elu { alpha }, x);
    }
    let is = lw.like(x, input_scale)?;
    let xi = lw.bin(BinaryOp::Mul, x, is)?;
    let e = lw.un(UnaryOp::Exp, xi)?;
    let c1 = lw.like(x, 1.0)?;
    let em1 = lw.bin(BinaryOp::Sub, e, c1)?;
    let sa = lw.like(x, scale * alpha)?;
    let neg = lw.bin(BinaryOp::Mul, em1, sa)?;
    let sc = lw.like(x, scale)?;
    let pos = lw.bin(BinaryOp::Mul, x, sc)?;
    let z = lw.like(x, 0.0)?;
    let gt = lw.bin(BinaryOp::Gt, x, z)?;
    lw.emit(Op::Where, vec![gt, pos, neg])
}

fn selu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    // The constants of Klambauer et al. (2017), as PyTorch defines SELU.
    const ALPHA: f64 = 1.673_263_242_354_377_3;
    const SCALE: f64 = 1.050_700_987_355_480_5;
    let x = float_input(lw, ctx)?;
    one(scaled_elu(lw, x, ALPHA, SCALE, 1.0)?)
}

/// `celu(x, α) = max(0, x) + min(0, α(exp(x/α) − 1))`, which is ELU with input scale 1/α.
fn celu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let alpha = ctx.opt_scalar("alpha")?.map_or(1.0, |s| s.as_f64());
    if alpha == 0.0 {
        return Err(lw.invalid("celu needs a non-zero alpha".into()));
    }
    one(scaled_elu(lw, x, alpha, 1.0, 1.0 / alpha)?)
}

/// Integer shifts by a constant: `x << k = x · 2^k` and `x >> k = floor(x / 2^k)` (arithmetic).
fn shift(lw: &mut Lowerer, ctx: &Ctx, left: bool) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    if lw.ty(x).dtype != DType::I64 {
        return Err(lw.invalid("shifts are supported on i64 tensors only".into()));
    }
    let k = match ctx.scalar("other")? {
        Scalar::Int(k) if (0..63).contains(&k) => k,
        other => {
            return Err(lw.invalid(format!(
                "shift amount {other:?} must be an integer in 0..63"
            )))
        }
    };
    let p = lw.filled(Scalar::Int(1i64 << k), DType::I64, vec![])?;
    let op = if left {
        BinaryOp::Mul
    } else {
        BinaryOp::FloorDiv
    };
    one(lw.bin(op, x, p)?)
}

fn expand_as(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let other = ctx.tensor(lw, "other")?;
    let shape = lw.ty(other).shape.clone();
    one(lw.emit(Op::Expand { shape }, vec![x])?)
}

fn expm1(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let e = lw.un(UnaryOp::Exp, x)?;
    let c1 = lw.like(x, 1.0)?;
    one(lw.bin(BinaryOp::Sub, e, c1)?)
}

/// `log σ(x) = min(x, 0) − log(1 + exp(−|x|))`, the form that never overflows.
fn log_sigmoid(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = float_input(lw, ctx)?;
    let z = lw.like(x, 0.0)?;
    let m = lw.bin(BinaryOp::Minimum, x, z)?;
    let a = lw.un(UnaryOp::Abs, x)?;
    let na = lw.un(UnaryOp::Neg, a)?;
    let e = lw.un(UnaryOp::Exp, na)?;
    let c1 = lw.like(x, 1.0)?;
    let s = lw.bin(BinaryOp::Add, e, c1)?;
    let l = lw.un(UnaryOp::Log, s)?;
    one(lw.bin(BinaryOp::Sub, m, l)?)
}

/// `prelu(x, w) = x` where positive, else `w · x`, with `w` per channel (dim 1) or shared.
fn prelu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let w = ctx.tensor(lw, "weight")?;
    let rank = lw.ty(x).rank();
    let wn = lw.ty(w).numel();
    let w = if wn > 1 && rank >= 2 && lw.ty(w).rank() == 1 {
        let mut shape = vec![1; rank];
        shape[1] = wn;
        lw.emit(Op::Reshape { shape }, vec![w])?
    } else {
        w
    };
    let z = lw.like(x, 0.0)?;
    let pos = lw.bin(BinaryOp::Gt, x, z)?;
    let neg = lw.bin(BinaryOp::Mul, x, w)?;
    one(lw.emit(Op::Where, vec![pos, x, neg])?)
}

/// `glu(x, dim) = a · σ(b)` with `a`, `b` the two halves of `x` along `dim`.
fn glu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int_or("dim", -1)?, lw.ty(x).rank())?;
    let n = lw.ty(x).shape[a];
    if !n.is_multiple_of(2) {
        return Err(lw.invalid(format!("glu halves dim {a}, which has odd size {n}")));
    }
    let h = n / 2;
    let first = lw.emit(
        Op::Slice {
            axis: a,
            start: 0,
            end: h,
            step: 1,
        },
        vec![x],
    )?;
    let second = lw.emit(
        Op::Slice {
            axis: a,
            start: h,
            end: n,
            step: 1,
        },
        vec![x],
    )?;
    let g = lw.un(UnaryOp::Sigmoid, second)?;
    one(lw.bin(BinaryOp::Mul, first, g)?)
}

/// `[N, C·r², H, W] → [N, C, H·r, W·r]` as reshape, permute, reshape.
fn pixel_shuffle(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let r = ctx.int("upscale_factor")?;
    let s = lw.ty(x).shape.clone();
    if r <= 0 || s.len() != 4 || !s[1].is_multiple_of((r * r) as usize) {
        return Err(lw.invalid(format!("pixel_shuffle by {r} does not fit shape {s:?}")));
    }
    let r = r as usize;
    let c = s[1] / (r * r);
    let y = lw.emit(
        Op::Reshape {
            shape: vec![s[0], c, r, r, s[2], s[3]],
        },
        vec![x],
    )?;
    let y = lw.emit(
        Op::Permute {
            perm: vec![0, 1, 4, 2, 5, 3],
        },
        vec![y],
    )?;
    one(lw.emit(
        Op::Reshape {
            shape: vec![s[0], c, s[2] * r, s[3] * r],
        },
        vec![y],
    )?)
}
