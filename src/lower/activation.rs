//! Rules for activations and softmax. Invariant: each activation is one `Unary` (or `Softmax`)
//! op, so a later pass can fuse it into its producer.

use super::args::Ctx;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{BinaryOp, Op, UnaryOp, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("relu.default", relu),
    ("relu_.default", relu),
    ("relu6.default", relu6),
    ("relu6_.default", relu6),
    ("hardtanh.default", hardtanh),
    ("hardtanh_.default", hardtanh),
    ("hardswish.default", hardswish),
    ("hardswish_.default", hardswish),
    ("hardsigmoid.default", hardsigmoid),
    ("hardsigmoid_.default", hardsigmoid),
    ("silu.default", silu),
    ("silu_.default", silu),
    ("gelu.default", gelu),
    ("gelu_.default", gelu),
    ("sigmoid.default", sigmoid),
    ("sigmoid_.default", sigmoid),
    ("tanh.default", tanh),
    ("tanh_.default", tanh),
    ("leaky_relu.default", leaky_relu),
    ("leaky_relu_.default", leaky_relu),
    ("elu.default", elu),
    ("elu_.default", elu),
    ("clamp.default", clamp),
    ("clamp_.default", clamp),
    ("clamp.Tensor", clamp_tensor),
    ("clamp_min.default", clamp_min),
    ("clamp_max.default", clamp_max),
    ("softmax.int", softmax),
    ("_softmax.default", softmax),
    ("log_softmax.int", log_softmax),
    ("_log_softmax.default", log_softmax),
];

fn unary(lw: &mut Lowerer, ctx: &Ctx, u: UnaryOp) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    Ok(vec![Some(lw.emit(Op::Unary(u), vec![x])?)])
}

fn relu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Relu)
}

fn relu6(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(
        lw,
        ctx,
        UnaryOp::Clamp {
            min: Some(0.0),
            max: Some(6.0),
        },
    )
}

fn hardtanh(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let min = ctx.opt_scalar("min_val")?.map_or(-1.0, |s| s.as_f64());
    let max = ctx.opt_scalar("max_val")?.map_or(1.0, |s| s.as_f64());
    unary(
        lw,
        ctx,
        UnaryOp::Clamp {
            min: Some(min),
            max: Some(max),
        },
    )
}

fn hardswish(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Hardswish)
}

fn hardsigmoid(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Hardsigmoid)
}

fn silu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Silu)
}

fn gelu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let tanh = match ctx.string_or("approximate", "none")? {
        "none" => false,
        "tanh" => true,
        other => {
            return Err(lw.invalid(format!(
                "unknown GELU approximation \"{other}\" (expected \"none\" or \"tanh\")"
            )))
        }
    };
    unary(lw, ctx, UnaryOp::Gelu { tanh })
}

fn sigmoid(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Sigmoid)
}

fn tanh(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    unary(lw, ctx, UnaryOp::Tanh)
}

fn leaky_relu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let slope = ctx
        .opt_scalar("negative_slope")?
        .map_or(0.01, |s| s.as_f64());
    unary(lw, ctx, UnaryOp::LeakyRelu { slope })
}

fn elu(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let alpha = ctx.opt_scalar("alpha")?.map_or(1.0, |s| s.as_f64());
    let scale = ctx.opt_scalar("scale")?.map_or(1.0, |s| s.as_f64());
    let input_scale = ctx.opt_scalar("input_scale")?.map_or(1.0, |s| s.as_f64());
    let x = ctx.tensor(lw, "self")?;
    Ok(vec![Some(super::composite::scaled_elu(
        lw,
        x,
        alpha,
        scale,
        input_scale,
    )?)])
}

fn clamp(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let min = ctx.opt_scalar("min")?.map(|s| s.as_f64());
    let max = ctx.opt_scalar("max")?.map(|s| s.as_f64());
    unary(lw, ctx, UnaryOp::Clamp { min, max })
}

fn clamp_min(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let min = Some(ctx.scalar("min")?.as_f64());
    unary(lw, ctx, UnaryOp::Clamp { min, max: None })
}

fn clamp_max(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let max = Some(ctx.scalar("max")?.as_f64());
    unary(lw, ctx, UnaryOp::Clamp { min: None, max })
}

/// `clamp(x, min_tensor, max_tensor)` is `minimum(maximum(x, min), max)`.
fn clamp_tensor(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut y = ctx.tensor(lw, "self")?;
    if let Some(lo) = ctx.opt_tensor(lw, "min")? {
        y = lw.emit(Op::Binary(BinaryOp::Maximum), vec![y, lo])?;
    }
    if let Some(hi) = ctx.opt_tensor(lw, "max")? {
        y = lw.emit(Op::Binary(BinaryOp::Minimum), vec![y, hi])?;
    }
    Ok(vec![Some(y)])
}

fn softmax_like(
    lw: &mut Lowerer,
    ctx: &Ctx,
    log: bool,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut x = ctx.tensor(lw, "self")?;
    if let Some(d) = ctx.opt_dtype("dtype")? {
        x = lw.cast(x, d)?;
    }
    let axis = super::reduce::axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    Ok(vec![Some(lw.emit(Op::Softmax { axis, log }, vec![x])?)])
}

fn softmax(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    softmax_like(lw, ctx, false)
}

fn log_softmax(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    softmax_like(lw, ctx, true)
}
