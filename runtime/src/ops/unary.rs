//! Binds element-wise unary steps (`Unary`, `LeakyRelu`, `Elu`, `Clamp`) to `kernels::unary`.
//! Invariant: input and output have the same shape; an in-place input has the output's dtype
//! too, which is the only form the kernels' `InOut` operand takes.

use super::kernels::unary::{UnaryError, UnaryOp, UnaryParams};
use super::step::{Kind, Unary};
use super::{Ctx, DType, OpError, Reason, Which};

fn op_of(k: &Kind) -> Option<UnaryOp> {
    Some(match *k {
        Kind::Unary(u) => match u {
            Unary::Relu => UnaryOp::Relu,
            Unary::Sigmoid => UnaryOp::Sigmoid,
            Unary::Tanh => UnaryOp::Tanh,
            Unary::Exp => UnaryOp::Exp,
            Unary::Log => UnaryOp::Log,
            Unary::Sqrt => UnaryOp::Sqrt,
            Unary::Rsqrt => UnaryOp::Rsqrt,
            Unary::Neg => UnaryOp::Neg,
            Unary::Abs => UnaryOp::Abs,
            Unary::Erf => UnaryOp::Erf,
            Unary::Reciprocal => UnaryOp::Reciprocal,
            Unary::Floor => UnaryOp::Floor,
            Unary::Ceil => UnaryOp::Ceil,
            Unary::Round => UnaryOp::Round,
            Unary::Sign => UnaryOp::Sign,
            Unary::Sin => UnaryOp::Sin,
            Unary::Cos => UnaryOp::Cos,
            Unary::LogicalNot => UnaryOp::LogicalNot,
            Unary::Silu => UnaryOp::Silu,
            Unary::Hardswish => UnaryOp::Hardswish,
            Unary::Hardsigmoid => UnaryOp::Hardsigmoid,
            Unary::Gelu { tanh } => UnaryOp::Gelu { tanh },
        },
        Kind::LeakyRelu { slope } => UnaryOp::LeakyRelu {
            slope: slope as f64,
        },
        Kind::Elu { alpha } => UnaryOp::Elu {
            alpha: alpha as f64,
        },
        // An infinite bound is an absent one (the step's encoding of `None`).
        Kind::Clamp { min, max } => UnaryOp::Clamp {
            min: (min != f64::NEG_INFINITY).then_some(min),
            max: (max != f64::INFINITY).then_some(max),
        },
        _ => return None,
    })
}

fn params(c: &Ctx) -> Result<UnaryParams, OpError> {
    let op = op_of(&c.step.kind).ok_or_else(|| c.wrong_kind())?;
    if c.shape(0) != c.out.shape {
        return Err(c.shape_err(Which::Output, "the output shape is not the input's"));
    }
    if !matches!(c.step.act, super::Act::None) {
        c.want_out(DType::F32)?;
    }
    Ok(UnaryParams {
        op,
        numel: c.out.numel(),
        x_dtype: c.meta(0).dtype,
        out_dtype: c.out.dtype,
    })
}

fn kernel_err(c: &Ctx, e: UnaryError) -> OpError {
    c.err(Reason::Kernel(match e {
        UnaryError::Unsupported => "the op is not computed in this dtype",
        UnaryError::FractionalBound => "a fractional clamp bound on i64 data",
    }))
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.in_place_like_output(0)?;
    let x = c.data(0)?;
    //@use unary.unary_f32
    if kept("unary.unary_f32") && super::kernels::unary::unary_f32_accepts(&p) {
        let x = c.f32_operand(0)?;
        super::kernels::unary::unary_f32(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("unary.unary_f32");
    }
    //@end
    //@use unary.unary
    if kept("unary.unary") && super::kernels::unary::unary_accepts(&p) {
        super::kernels::unary::unary(&p, x.src(), c.dst(y)?).map_err(|e| kernel_err(c, e))?;
        c.post_act(y)?;
        return Ok("unary.unary");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "unary" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use unary.unary_f32
    if super::kernels::unary::unary_f32_accepts(&p) {
        found("unary.unary_f32");
    }
    //@end
    //@use unary.unary
    if super::kernels::unary::unary_accepts(&p) {
        found("unary.unary");
    }
    //@end
}
