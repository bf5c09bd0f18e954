//! Rules for element-wise math: unary functions, broadcasting binary ops (with their
//! `.Scalar`, in-place and `alpha` forms), `where` and `masked_fill`. Invariant: Python scalars
//! become 0-d constants, so every binary op here is tensor ⊕ tensor.

use super::args::{Ctx, Scalar};
use super::{LowerError, Lowerer, Rule};
use crate::ir::{BinaryOp, DType, Op, UnaryOp, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("exp.default", |l, c| unary(l, c, UnaryOp::Exp)),
    ("log.default", |l, c| unary(l, c, UnaryOp::Log)),
    ("sqrt.default", |l, c| unary(l, c, UnaryOp::Sqrt)),
    ("rsqrt.default", |l, c| unary(l, c, UnaryOp::Rsqrt)),
    ("neg.default", |l, c| unary(l, c, UnaryOp::Neg)),
    ("abs.default", |l, c| unary(l, c, UnaryOp::Abs)),
    ("erf.default", |l, c| unary(l, c, UnaryOp::Erf)),
    ("reciprocal.default", |l, c| {
        unary(l, c, UnaryOp::Reciprocal)
    }),
    ("floor.default", |l, c| unary(l, c, UnaryOp::Floor)),
    ("ceil.default", |l, c| unary(l, c, UnaryOp::Ceil)),
    ("round.default", |l, c| unary(l, c, UnaryOp::Round)),
    ("sign.default", |l, c| unary(l, c, UnaryOp::Sign)),
    ("sin.default", |l, c| unary(l, c, UnaryOp::Sin)),
    ("cos.default", |l, c| unary(l, c, UnaryOp::Cos)),
    ("logical_not.default", |l, c| {
        unary(l, c, UnaryOp::LogicalNot)
    }),
    ("bitwise_not.default", bitwise_not),
    ("add.Tensor", add),
    ("add_.Tensor", add),
    ("add.Scalar", add),
    ("sub.Tensor", sub),
    ("sub_.Tensor", sub),
    ("sub.Scalar", sub),
    ("rsub.Scalar", rsub),
    ("rsub.Tensor", rsub),
    ("mul.Tensor", |l, c| binary(l, c, BinaryOp::Mul)),
    ("mul_.Tensor", |l, c| binary(l, c, BinaryOp::Mul)),
    ("mul.Scalar", |l, c| binary(l, c, BinaryOp::Mul)),
    ("div.Tensor", |l, c| binary(l, c, BinaryOp::Div)),
    ("div_.Tensor", |l, c| binary(l, c, BinaryOp::Div)),
    ("div.Scalar", |l, c| binary(l, c, BinaryOp::Div)),
    ("div.Tensor_mode", div_mode),
    ("div.Scalar_mode", div_mode),
    ("floor_divide.default", |l, c| {
        binary(l, c, BinaryOp::FloorDiv)
    }),
    ("remainder.Tensor", |l, c| binary(l, c, BinaryOp::Rem)),
    ("remainder.Scalar", |l, c| binary(l, c, BinaryOp::Rem)),
    ("pow.Tensor_Scalar", pow),
    ("pow.Tensor_Tensor", pow),
    ("pow.Scalar", pow),
    ("maximum.default", |l, c| binary(l, c, BinaryOp::Maximum)),
    ("minimum.default", |l, c| binary(l, c, BinaryOp::Minimum)),
    ("eq.Tensor", |l, c| binary(l, c, BinaryOp::Eq)),
    ("eq.Scalar", |l, c| binary(l, c, BinaryOp::Eq)),
    ("ne.Tensor", |l, c| binary(l, c, BinaryOp::Ne)),
    ("ne.Scalar", |l, c| binary(l, c, BinaryOp::Ne)),
    ("lt.Tensor", |l, c| binary(l, c, BinaryOp::Lt)),
    ("lt.Scalar", |l, c| binary(l, c, BinaryOp::Lt)),
    ("le.Tensor", |l, c| binary(l, c, BinaryOp::Le)),
    ("le.Scalar", |l, c| binary(l, c, BinaryOp::Le)),
    ("gt.Tensor", |l, c| binary(l, c, BinaryOp::Gt)),
    ("gt.Scalar", |l, c| binary(l, c, BinaryOp::Gt)),
    ("ge.Tensor", |l, c| binary(l, c, BinaryOp::Ge)),
    ("ge.Scalar", |l, c| binary(l, c, BinaryOp::Ge)),
    ("logical_and.default", |l, c| binary(l, c, BinaryOp::And)),
    ("logical_or.default", |l, c| binary(l, c, BinaryOp::Or)),
    ("logical_xor.default", |l, c| binary(l, c, BinaryOp::Xor)),
    ("bitwise_and.Tensor", |l, c| bitwise(l, c, BinaryOp::And)),
    ("bitwise_or.Tensor", |l, c| bitwise(l, c, BinaryOp::Or)),
    ("bitwise_xor.Tensor", |l, c| bitwise(l, c, BinaryOp::Xor)),
    ("where.self", where_),
    ("where.ScalarSelf", where_),
    ("where.ScalarOther", where_),
    ("where.Scalar", where_),
    ("masked_fill.Scalar", masked_fill),
    ("masked_fill.Tensor", masked_fill),
    ("masked_fill_.Scalar", masked_fill),
    ("masked_fill_.Tensor", masked_fill),
];

fn unary(lw: &mut Lowerer, ctx: &Ctx, u: UnaryOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    Ok(vec![Some(lw.emit(Op::Unary(u), vec![x])?)])
}

fn bitwise_not(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    if lw.ty(x).dtype != DType::Bool {
        return Err(lw.invalid("bitwise_not is supported on bool tensors only".into()));
    }
    Ok(vec![Some(
        lw.emit(Op::Unary(UnaryOp::LogicalNot), vec![x])?,
    )])
}

/// `self ⊕ other`, where either may be a scalar (`pow.Scalar` has a scalar `self`).
fn binary(lw: &mut Lowerer, ctx: &Ctx, b: BinaryOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor_or_scalar(lw, "self")?;
    let other = if ctx.get("exponent").is_some() {
        "exponent"
    } else {
        "other"
    };
    let c = ctx.tensor_or_scalar(lw, other)?;
    Ok(vec![Some(lw.emit(Op::Binary(b), vec![a, c])?)])
}

/// Bitwise ops on bools are the logical ones; on integers they are not in the op set.
fn bitwise(lw: &mut Lowerer, ctx: &Ctx, b: BinaryOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor(lw, "self")?;
    if lw.ty(a).dtype != DType::Bool {
        return Err(lw.invalid("bitwise ops are supported on bool tensors only".into()));
    }
    binary(lw, ctx, b)
}

fn pow(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    binary(lw, ctx, BinaryOp::Pow)
}

/// `other · alpha`, leaving `other` alone when alpha is 1.
fn scaled_other(lw: &mut Lowerer, ctx: &Ctx) -> Result<ValueId, LowerError> {
    let other = ctx.tensor_or_scalar(lw, "other")?;
    match ctx.opt_scalar("alpha")? {
        None | Some(Scalar::Int(1)) | Some(Scalar::Float(1.0)) => Ok(other),
        Some(alpha) => {
            let a = lw.scalar(alpha);
            lw.emit(Op::Binary(BinaryOp::Mul), vec![other, a])
        }
    }
}

fn add(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor_or_scalar(lw, "self")?;
    let b = scaled_other(lw, ctx)?;
    Ok(vec![Some(lw.emit(Op::Binary(BinaryOp::Add), vec![a, b])?)])
}

fn sub(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor_or_scalar(lw, "self")?;
    let b = scaled_other(lw, ctx)?;
    Ok(vec![Some(lw.emit(Op::Binary(BinaryOp::Sub), vec![a, b])?)])
}

/// `rsub(self, other, alpha)` is `other - alpha · self`.
fn rsub(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut a = ctx.tensor(lw, "self")?;
    let other = ctx.tensor_or_scalar(lw, "other")?;
    if let Some(alpha) = ctx.opt_scalar("alpha")? {
        if alpha.as_f64() != 1.0 {
            let s = lw.scalar(alpha);
            a = lw.emit(Op::Binary(BinaryOp::Mul), vec![a, s])?;
        }
    }
    Ok(vec![Some(
        lw.emit(Op::Binary(BinaryOp::Sub), vec![other, a])?,
    )])
}

fn div_mode(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let op = match ctx.get("rounding_mode") {
        None => BinaryOp::Div,
        Some(_) => match ctx.string_or("rounding_mode", "")? {
            "floor" => BinaryOp::FloorDiv,
            "trunc" => BinaryOp::TruncDiv,
            other => {
                return Err(lw.invalid(format!(
                    "unknown rounding mode \"{other}\" (expected \"floor\" or \"trunc\")"
                )))
            }
        },
    };
    binary(lw, ctx, op)
}

fn where_(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let cond = ctx.tensor(lw, "condition")?;
    let a = ctx.tensor_or_scalar(lw, "self")?;
    let b = ctx.tensor_or_scalar(lw, "other")?;
    Ok(vec![Some(lw.emit(Op::Where, vec![cond, a, b])?)])
}

/// `masked_fill(x, mask, v)` is `where(mask, v, x)` with `v` cast to x's dtype, since the fill
/// never changes the result type.
fn masked_fill(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let mask = ctx.tensor(lw, "mask")?;
    let dtype = lw.ty(x).dtype;
    let v = match ctx.get("value") {
        Some(crate::pt2::schema::Argument::Tensor(_)) => {
            let t = ctx.tensor(lw, "value")?;
            lw.cast(t, dtype)?
        }
        _ => {
            let s = ctx.scalar("value")?;
            lw.filled(s, dtype, vec![])?
        }
    };
    Ok(vec![Some(lw.emit(Op::Where, vec![mask, v, x])?)])
}
