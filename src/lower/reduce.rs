//! Rules for reductions (`sum`, `mean`, `amax`, `max.dim`, `argmax`, `var`, `std`, `any`, ...)
//! and `cumsum`. Invariant: axes are normalized, sorted and unique before an op is emitted.

use super::args::Ctx;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{ArgOp, DType, Op, ReduceOp, UnaryOp, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("sum.dim_IntList", |l, c| reduce(l, c, ReduceOp::Sum)),
    ("sum.default", |l, c| reduce(l, c, ReduceOp::Sum)),
    ("mean.dim", |l, c| reduce(l, c, ReduceOp::Mean)),
    ("mean.default", |l, c| reduce(l, c, ReduceOp::Mean)),
    ("prod.dim_int", |l, c| reduce(l, c, ReduceOp::Prod)),
    ("prod.default", |l, c| reduce(l, c, ReduceOp::Prod)),
    ("amax.default", |l, c| reduce(l, c, ReduceOp::Max)),
    ("amin.default", |l, c| reduce(l, c, ReduceOp::Min)),
    ("max.default", |l, c| reduce(l, c, ReduceOp::Max)),
    ("min.default", |l, c| reduce(l, c, ReduceOp::Min)),
    ("max.dim", |l, c| {
        extreme_with_index(l, c, ReduceOp::Max, ArgOp::Max)
    }),
    ("min.dim", |l, c| {
        extreme_with_index(l, c, ReduceOp::Min, ArgOp::Min)
    }),
    ("argmax.default", |l, c| arg_reduce(l, c, ArgOp::Max)),
    ("argmin.default", |l, c| arg_reduce(l, c, ArgOp::Min)),
    ("var.correction", |l, c| variance(l, c, false)),
    ("var.dim", |l, c| variance(l, c, false)),
    ("var.default", |l, c| variance(l, c, false)),
    ("std.correction", |l, c| variance(l, c, true)),
    ("std.dim", |l, c| variance(l, c, true)),
    ("std.default", |l, c| variance(l, c, true)),
    ("any.dim", |l, c| boolean(l, c, ReduceOp::Max)),
    ("any.dims", |l, c| boolean(l, c, ReduceOp::Max)),
    ("any.default", |l, c| boolean(l, c, ReduceOp::Max)),
    ("all.dim", |l, c| boolean(l, c, ReduceOp::Min)),
    ("all.dims", |l, c| boolean(l, c, ReduceOp::Min)),
    ("all.default", |l, c| boolean(l, c, ReduceOp::Min)),
    ("cumsum.default", cumsum),
];

/// Normalizes a possibly negative axis against `rank` (a 0-d tensor accepts 0 and -1).
pub(super) fn axis(lw: &Lowerer, a: i64, rank: usize) -> Result<usize, LowerError> {
    let r = rank.max(1) as i64;
    let n = if a < 0 { a + r } else { a };
    if n < 0 || n >= r {
        return Err(lw.invalid(format!(
            "dimension {a} is out of range for a rank-{rank} tensor"
        )));
    }
    Ok(n as usize)
}

/// Normalized, sorted, unique axes; empty stays empty (meaning all axes).
pub(super) fn axes(lw: &Lowerer, dims: &[i64], rank: usize) -> Result<Vec<usize>, LowerError> {
    let mut v = dims
        .iter()
        .map(|&d| axis(lw, d, rank))
        .collect::<Result<Vec<_>, _>>()?;
    v.sort_unstable();
    v.dedup();
    // A 0-d tensor reduced over "its" axis is reduced over nothing.
    if rank == 0 {
        v.clear();
    }
    Ok(v)
}

/// The `dim` argument, which is an int, an int list, or absent (all axes) depending on the op.
fn dims_arg(ctx: &Ctx) -> Result<Vec<i64>, LowerError> {
    Ok(ctx.opt_ints("dim")?.unwrap_or_default())
}

fn reduce(lw: &mut Lowerer, ctx: &Ctx, op: ReduceOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut x = ctx.tensor(lw, "self")?;
    if let Some(d) = ctx.opt_dtype("dtype")? {
        x = lw.cast(x, d)?;
    }
    let rank = lw.ty(x).rank();
    let axes = axes(lw, &dims_arg(ctx)?, rank)?;
    let keepdim = ctx.bool_or("keepdim", false)?;
    Ok(vec![Some(
        lw.emit(Op::Reduce { op, axes, keepdim }, vec![x])?,
    )])
}

/// `max.dim` / `min.dim`: the values and the indices of the extremes.
fn extreme_with_index(
    lw: &mut Lowerer,
    ctx: &Ctx,
    op: ReduceOp,
    arg: ArgOp,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    let keepdim = ctx.bool_or("keepdim", false)?;
    let values = lw.emit(
        Op::Reduce {
            op,
            axes: vec![a],
            keepdim,
        },
        vec![x],
    )?;
    let indices = lw.emit(
        Op::ArgReduce {
            op: arg,
            axis: Some(a),
            keepdim,
        },
        vec![x],
    )?;
    Ok(vec![Some(values), Some(indices)])
}

fn arg_reduce(lw: &mut Lowerer, ctx: &Ctx, op: ArgOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let rank = lw.ty(x).rank();
    let a = match ctx.opt_int("dim")? {
        Some(d) => Some(axis(lw, d, rank)?),
        None => None,
    };
    let keepdim = ctx.bool_or("keepdim", false)?;
    Ok(vec![Some(lw.emit(
        Op::ArgReduce {
            op,
            axis: a,
            keepdim,
        },
        vec![x],
    )?)])
}

/// `var` and `std` in their three overloads: `correction=` (a scalar, default 1), or
/// `unbiased=` (a bool, default true).
fn variance(lw: &mut Lowerer, ctx: &Ctx, std: bool) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let rank = lw.ty(x).rank();
    let axes = axes(lw, &dims_arg(ctx)?, rank)?;
    let correction = match ctx.opt_scalar("correction")? {
        Some(c) => c.as_f64(),
        None => {
            if ctx.bool_or("unbiased", true)? {
                1.0
            } else {
                0.0
            }
        }
    };
    let keepdim = ctx.bool_or("keepdim", false)?;
    let mut y = lw.emit(
        Op::Var {
            axes,
            correction,
            keepdim,
        },
        vec![x],
    )?;
    if std {
        y = lw.emit(Op::Unary(UnaryOp::Sqrt), vec![y])?;
    }
    Ok(vec![Some(y)])
}

/// `any` / `all` as max / min over 0-or-1 integers, then back to bool.
fn boolean(lw: &mut Lowerer, ctx: &Ctx, op: ReduceOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let truth = lw.cast(x, DType::Bool)?;
    let ints = lw.cast(truth, DType::I64)?;
    let rank = lw.ty(x).rank();
    let axes = axes(lw, &dims_arg(ctx)?, rank)?;
    let keepdim = ctx.bool_or("keepdim", false)?;
    let r = lw.emit(Op::Reduce { op, axes, keepdim }, vec![ints])?;
    Ok(vec![Some(lw.cast(r, DType::Bool)?)])
}

fn cumsum(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut x = ctx.tensor(lw, "self")?;
    if let Some(d) = ctx.opt_dtype("dtype")? {
        x = lw.cast(x, d)?;
    }
    let a = axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    Ok(vec![Some(lw.emit(Op::Cumsum { axis: a }, vec![x])?)])
}
