//! Rules for gathering by index (`embedding`, `index_select`, `index.Tensor`, `gather`).
//! Invariant: index tensors are i64 by the time they reach a core op.

use super::args::Ctx;
use super::reduce::axis;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{DType, Op, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("embedding.default", embedding),
    ("index_select.default", index_select),
    ("index.Tensor", index),
    ("gather.default", gather),
];

fn as_index(lw: &mut Lowerer, v: ValueId) -> Result<ValueId, LowerError> {
    match lw.ty(v).dtype {
        DType::I64 => Ok(v),
        DType::I32 | DType::I16 | DType::I8 | DType::U8 => lw.cast(v, DType::I64),
        d => Err(lw.invalid(format!("index tensors must be integers, found {d}"))),
    }
}

fn embedding(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let w = ctx.tensor(lw, "weight")?;
    let idx = ctx.tensor(lw, "indices")?;
    let idx = as_index(lw, idx)?;
    Ok(vec![Some(lw.emit(Op::Take { axis: 0 }, vec![w, idx])?)])
}

fn index_select(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    let idx = ctx.tensor(lw, "index")?;
    let idx = as_index(lw, idx)?;
    Ok(vec![Some(lw.emit(Op::Take { axis: a }, vec![x, idx])?)])
}

/// Advanced indexing with a single integer index tensor (`x[:, idx]`); several index tensors
/// or boolean masks are refused with a clear error.
fn index(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let indices = ctx.opt_tensors(lw, "indices")?;
    let given: Vec<(usize, ValueId)> = indices
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let [(a, idx)] = given[..] else {
        return Err(lw.invalid(format!(
            "indexing with {} index tensors; only a single integer index tensor is supported",
            given.len()
        )));
    };
    if lw.ty(idx).dtype == DType::Bool {
        return Err(lw.invalid(
            "boolean-mask indexing has a data-dependent shape; use `torch.where` instead".into(),
        ));
    }
    let idx = as_index(lw, idx)?;
    Ok(vec![Some(lw.emit(Op::Take { axis: a }, vec![x, idx])?)])
}

fn gather(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    let idx = ctx.tensor(lw, "index")?;
    let idx = as_index(lw, idx)?;
    Ok(vec![Some(lw.emit(Op::Gather { axis: a }, vec![x, idx])?)])
}
