//! Rules for convolutions (`conv1d`, `conv2d`, `convolution`, `conv_transpose*`).
//! Invariant: attribute lists always have one entry per spatial dim.

use super::args::Ctx;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{ConvAttrs, Op, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("conv1d.default", |l, c| conv(l, c, Some(false))),
    ("conv2d.default", |l, c| conv(l, c, Some(false))),
    ("conv1d.padding", conv_nd_padding_mode),
    ("conv2d.padding", conv_nd_padding_mode),
    ("convolution.default", |l, c| conv(l, c, None)),
    ("conv_transpose1d.default", |l, c| conv(l, c, Some(true))),
    ("conv_transpose2d.input", |l, c| conv(l, c, Some(true))),
];

/// Expands a schema list such as `int[2] stride=1` to one entry per spatial dim: a single
/// value applies to every dim.
pub(super) fn per_dim(
    lw: &Lowerer,
    name: &str,
    v: Vec<i64>,
    dims: usize,
) -> Result<Vec<usize>, LowerError> {
    let v = if v.len() == 1 { vec![v[0]; dims] } else { v };
    if v.len() != dims || v.iter().any(|&x| x < 0) {
        return Err(lw.invalid(format!(
            "`{name}` should hold {dims} non-negative values, found {v:?}"
        )));
    }
    Ok(v.into_iter().map(|x| x as usize).collect())
}

fn spatial_dims(lw: &Lowerer, weight: ValueId) -> Result<usize, LowerError> {
    let rank = lw.ty(weight).rank();
    if !(3..=4).contains(&rank) {
        return Err(lw.invalid(format!(
            "only 1-d and 2-d convolutions are supported; the weight has rank {rank}"
        )));
    }
    Ok(rank - 2)
}

fn inputs(lw: &Lowerer, ctx: &Ctx) -> Result<(ValueId, ValueId, Vec<ValueId>), LowerError> {
    let x = ctx.tensor(lw, "input")?;
    let w = ctx.tensor(lw, "weight")?;
    let mut ins = vec![x, w];
    if let Some(b) = ctx.opt_tensor(lw, "bias")? {
        ins.push(b);
    }
    Ok((x, w, ins))
}

fn groups(lw: &Lowerer, ctx: &Ctx) -> Result<usize, LowerError> {
    let g = ctx.int_or("groups", 1)?;
    if g < 1 {
        return Err(lw.invalid(format!("`groups` must be at least 1, found {g}")));
    }
    Ok(g as usize)
}

/// `padding="same"` or `"valid"`. "same" with an odd total padding pads one more element at
/// the end, as PyTorch does; that asymmetric part becomes an explicit `Pad`.
fn conv_nd_padding_mode(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let (x, w, mut ins) = inputs(lw, ctx)?;
    let n = spatial_dims(lw, w)?;
    let stride = per_dim(lw, "stride", ctx.ints_or("stride", &[1])?, n)?;
    let dilation = per_dim(lw, "dilation", ctx.ints_or("dilation", &[1])?, n)?;
    let mode = ctx.string_or("padding", "valid")?;
    let mut padding = vec![0; n];
    match mode {
        "valid" => {}
        "same" => {
            if stride.iter().any(|&s| s != 1) {
                return Err(lw.invalid("padding=\"same\" needs stride 1".into()));
            }
            let wshape = lw.ty(w).shape.clone();
            let rank = lw.ty(x).rank();
            let mut extra = vec![(0i64, 0i64); rank];
            for i in 0..n {
                let total = dilation[i] * (wshape[2 + i] - 1);
                padding[i] = total / 2;
                extra[rank - n + i] = (0, (total - 2 * (total / 2)) as i64);
            }
            if extra.iter().any(|&(_, a)| a > 0) {
                ins[0] = lw.emit(
                    Op::Pad {
                        pads: extra,
                        value: 0.0,
                    },
                    vec![x],
                )?;
            }
        }
        other => {
            return Err(lw.invalid(format!(
                "unknown padding mode \"{other}\" (expected \"same\" or \"valid\")"
            )))
        }
    }
    let attrs = ConvAttrs {
        stride,
        padding,
        dilation,
        groups: groups(lw, ctx)?,
        transposed: false,
        output_padding: vec![0; n],
    };
    Ok(vec![Some(lw.emit(Op::Conv(attrs), ins)?)])
}

/// Every convolution overload. `transposed` is fixed by the overload (`conv2d`,
/// `conv_transpose2d`) or, for `convolution`, read from its argument; omitted lists take the
/// schema defaults, which are the same across overloads.
fn conv(
    lw: &mut Lowerer,
    ctx: &Ctx,
    transposed: Option<bool>,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let (_, w, ins) = inputs(lw, ctx)?;
    let n = spatial_dims(lw, w)?;
    let transposed = match transposed {
        Some(t) => t,
        None => ctx.bool_or("transposed", false)?,
    };
    let output_padding = ctx.ints_or("output_padding", &[0])?;
    let attrs = ConvAttrs {
        stride: per_dim(lw, "stride", ctx.ints_or("stride", &[1])?, n)?,
        padding: per_dim(lw, "padding", ctx.ints_or("padding", &[0])?, n)?,
        dilation: per_dim(lw, "dilation", ctx.ints_or("dilation", &[1])?, n)?,
        groups: groups(lw, ctx)?,
        transposed,
        output_padding: per_dim(lw, "output_padding", output_padding, n)?,
    };
    Ok(vec![Some(lw.emit(Op::Conv(attrs), ins)?)])
}
