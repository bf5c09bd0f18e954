//! Rules for pooling (max, average, adaptive; 1-d and 2-d; with or without indices).
//! Invariant: an empty `stride` means the kernel size, as in ATen.

use super::args::Ctx;
use super::conv::per_dim;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{Op, PoolAttrs, PoolKind, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("max_pool1d.default", |l, c| pool(l, c, PoolKind::Max, 1)),
    ("max_pool2d.default", |l, c| pool(l, c, PoolKind::Max, 2)),
    ("max_pool1d_with_indices.default", |l, c| {
        pool(l, c, PoolKind::Max, 1)
    }),
    ("max_pool2d_with_indices.default", |l, c| {
        pool(l, c, PoolKind::Max, 2)
    }),
    ("avg_pool1d.default", |l, c| pool(l, c, PoolKind::Avg, 1)),
    ("avg_pool2d.default", |l, c| pool(l, c, PoolKind::Avg, 2)),
    ("adaptive_avg_pool1d.default", |l, c| {
        adaptive(l, c, PoolKind::Avg, 1)
    }),
    ("adaptive_avg_pool2d.default", |l, c| {
        adaptive(l, c, PoolKind::Avg, 2)
    }),
    ("_adaptive_avg_pool2d.default", |l, c| {
        adaptive(l, c, PoolKind::Avg, 2)
    }),
    ("adaptive_max_pool1d.default", |l, c| {
        adaptive(l, c, PoolKind::Max, 1)
    }),
    ("adaptive_max_pool2d.default", |l, c| {
        adaptive(l, c, PoolKind::Max, 2)
    }),
];

/// The pooled tensor, plus `None` for an indices output nobody may read.
fn with_unused_indices(ctx: &Ctx, y: ValueId) -> Vec<Option<ValueId>> {
    let mut outs = vec![Some(y)];
    outs.resize(ctx.output_count().max(1), None);
    outs
}

fn pool(
    lw: &mut Lowerer,
    ctx: &Ctx,
    kind: PoolKind,
    dims: usize,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let kernel = per_dim(lw, "kernel_size", ctx.ints("kernel_size")?, dims)?;
    let stride = ctx.ints_or("stride", &[])?;
    let stride = if stride.is_empty() {
        kernel.clone()
    } else {
        per_dim(lw, "stride", stride, dims)?
    };
    let divisor_override = match ctx.opt_int("divisor_override")? {
        Some(d) if d <= 0 => {
            return Err(lw.invalid(format!("divisor_override must be positive, found {d}")))
        }
        d => d.map(|d| d as usize),
    };
    let attrs = PoolAttrs {
        kind,
        kernel,
        stride,
        padding: per_dim(lw, "padding", ctx.ints_or("padding", &[0])?, dims)?,
        dilation: per_dim(lw, "dilation", ctx.ints_or("dilation", &[1])?, dims)?,
        ceil_mode: ctx.bool_or("ceil_mode", false)?,
        count_include_pad: ctx.bool_or("count_include_pad", true)?,
        divisor_override,
    };
    let y = lw.emit(Op::Pool(attrs), vec![x])?;
    Ok(with_unused_indices(ctx, y))
}

fn adaptive(
    lw: &mut Lowerer,
    ctx: &Ctx,
    kind: PoolKind,
    dims: usize,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let output_size = per_dim(lw, "output_size", ctx.ints("output_size")?, dims)?;
    let y = lw.emit(Op::AdaptivePool { kind, output_size }, vec![x])?;
    Ok(with_unused_indices(ctx, y))
}
