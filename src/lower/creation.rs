//! Rules for tensor factories (`arange`, `full`, `zeros`, `ones`, `*_like`, `scalar_tensor`).
//! Invariant: shapes are static, so every factory folds to a constant at lowering time, with
//! the dtype and shape the archive recorded.

use super::args::{Ctx, Scalar};
use super::{LowerError, Lowerer, Rule};
use crate::ir::{DType, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("arange.default", arange),
    ("arange.start", arange),
    ("arange.start_step", arange),
    ("full.default", |l, c| fill(l, c, None)),
    ("full_like.default", |l, c| fill(l, c, None)),
    ("new_full.default", |l, c| fill(l, c, None)),
    ("scalar_tensor.default", |l, c| fill(l, c, Some("s"))),
    ("zeros.default", |l, c| constant(l, c, Scalar::Int(0))),
    ("zeros_like.default", |l, c| constant(l, c, Scalar::Int(0))),
    ("new_zeros.default", |l, c| constant(l, c, Scalar::Int(0))),
    ("ones.default", |l, c| constant(l, c, Scalar::Int(1))),
    ("ones_like.default", |l, c| constant(l, c, Scalar::Int(1))),
    ("new_ones.default", |l, c| constant(l, c, Scalar::Int(1))),
];

fn constant(lw: &mut Lowerer, ctx: &Ctx, s: Scalar) -> Result<Vec<Option<ValueId>>, LowerError> {
    let ty = lw.output_meta(ctx, 0)?;
    Ok(vec![Some(lw.filled(s, ty.dtype, ty.shape)?)])
}

fn fill(
    lw: &mut Lowerer,
    ctx: &Ctx,
    arg: Option<&str>,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let s = ctx.scalar(arg.unwrap_or("fill_value"))?;
    constant(lw, ctx, s)
}

/// `start, start + step, ...` below `end`; the element count must match the archive's.
fn arange(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let start = ctx.opt_scalar("start")?.unwrap_or(Scalar::Int(0));
    let end = ctx.scalar("end")?;
    let step = ctx.opt_scalar("step")?.unwrap_or(Scalar::Int(1));
    let ty = lw.output_meta(ctx, 0)?;
    let (s, e, st) = (start.as_f64(), end.as_f64(), step.as_f64());
    if st == 0.0 {
        return Err(lw.invalid("arange step must not be zero".into()));
    }
    let n = ((e - s) / st).ceil().max(0.0) as usize;
    if ty.shape != [n] {
        return Err(lw.invalid(format!(
            "arange({s}, {e}, {st}) has {n} elements, but the archive records shape {:?}",
            ty.shape
        )));
    }
    let mut bytes = Vec::with_capacity(n * ty.dtype.size());
    for i in 0..n {
        let v = match (start, step) {
            (Scalar::Int(a), Scalar::Int(b)) if ty.dtype == DType::I64 => {
                Scalar::Int(a + b * i as i64)
            }
            _ => Scalar::Float(s + st * i as f64),
        };
        let one = v
            .encode_as(ty.dtype)
            .ok_or_else(|| lw.invalid(format!("arange of dtype {} is not supported", ty.dtype)))?;
        bytes.extend(one);
    }
    Ok(vec![Some(lw.constant(ty, bytes))])
}
