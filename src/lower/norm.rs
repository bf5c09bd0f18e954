//! Rules for normalizations (batch, layer and group norm, each in its composite and its
//! `native_*` form). Invariant: absent affine parameters become explicit ones and zeros.

use super::args::{Ctx, Scalar};
use super::{LowerError, Lowerer, Rule};
use crate::ir::{Op, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("batch_norm.default", batch_norm),
    ("native_batch_norm.default", batch_norm),
    ("_native_batch_norm_legit_no_training.default", batch_norm),
    ("layer_norm.default", layer_norm),
    ("native_layer_norm.default", layer_norm),
    ("group_norm.default", group_norm),
    ("native_group_norm.default", group_norm),
];

/// The affine weight and bias, or ones and zeros of `[c]` in the input's dtype.
pub(super) fn affine(
    lw: &mut Lowerer,
    ctx: &Ctx,
    x: ValueId,
    shape: Vec<usize>,
) -> Result<(ValueId, ValueId), LowerError> {
    let dtype = lw.ty(x).dtype;
    let w = match ctx.opt_tensor(lw, "weight")? {
        Some(w) => w,
        None => lw.filled(Scalar::Float(1.0), dtype, shape.clone())?,
    };
    let b = match ctx.opt_tensor(lw, "bias")? {
        Some(b) => b,
        None => lw.filled(Scalar::Float(0.0), dtype, shape)?,
    };
    Ok((w, b))
}

/// The node's first output is the normalized tensor; the saved statistics that the `native_*`
/// forms also return have no lowering.
fn first_of(ctx: &Ctx, y: ValueId) -> Vec<Option<ValueId>> {
    let mut outs = vec![Some(y)];
    outs.resize(ctx.output_count().max(1), None);
    outs
}

fn batch_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    if ctx.bool_or("training", false)? {
        return Err(lw.invalid(
            "batch norm in training mode; call `model.eval()` before `torch.export.export`".into(),
        ));
    }
    let x = ctx.tensor(lw, "input")?;
    let xs = &lw.ty(x).shape;
    if xs.len() < 2 {
        return Err(lw.invalid(format!("batch norm input must have rank ≥ 2, found {xs:?}")));
    }
    let c = xs[1];
    let (mean, var) =
        match (
            ctx.opt_tensor(lw, "running_mean")?,
            ctx.opt_tensor(lw, "running_var")?,
        ) {
            (Some(m), Some(v)) => (m, v),
            _ => return Err(lw.invalid(
                "batch norm without running statistics normalizes with batch statistics, which \
                 inference cannot do; set `track_running_stats=True`"
                    .into(),
            )),
        };
    let (w, b) = affine(lw, ctx, x, vec![c])?;
    let eps = ctx.float_or("eps", 1e-5)?;
    let y = lw.emit(Op::BatchNorm { eps }, vec![x, w, b, mean, var])?;
    Ok(first_of(ctx, y))
}

fn layer_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "input")?;
    let shape = ctx.ints("normalized_shape")?;
    let rank = lw.ty(x).rank();
    if shape.is_empty() || shape.len() > rank || shape.iter().any(|&d| d < 0) {
        return Err(lw.invalid(format!(
            "bad normalized_shape {shape:?} for a rank-{rank} input"
        )));
    }
    let normalized: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let (w, b) = affine(lw, ctx, x, normalized)?;
    let eps = ctx.float_or("eps", 1e-5)?;
    let y = lw.emit(
        Op::LayerNorm {
            axis: rank - shape.len(),
            eps,
        },
        vec![x, w, b],
    )?;
    Ok(first_of(ctx, y))
}

fn group_norm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "input")?;
    let xs = &lw.ty(x).shape;
    if xs.len() < 2 {
        return Err(lw.invalid(format!("group norm input must have rank ≥ 2, found {xs:?}")));
    }
    let c = xs[1];
    let groups = match ctx.opt_int("num_groups")? {
        Some(g) => g,
        None => ctx.int("group")?,
    };
    if groups < 1 {
        return Err(lw.invalid(format!("group count must be positive, found {groups}")));
    }
    let (w, b) = affine(lw, ctx, x, vec![c])?;
    let eps = ctx.float_or("eps", 1e-5)?;
    let y = lw.emit(
        Op::GroupNorm {
            groups: groups as usize,
            eps,
        },
        vec![x, w, b],
    )?;
    Ok(first_of(ctx, y))
}
