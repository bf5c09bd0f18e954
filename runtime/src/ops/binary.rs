//! Binds `Kind::Binary` to `kernels::binary`. Invariant: the output shape is the broadcast of
//! the operands' shapes, the fused activation travels in the kernel's parameters, and an
//! in-place operand has the output's dtype and shape.

use super::kernels::binary::{BinaryError, BinaryOp, BinaryParams};
use super::kernels::shape::broadcast_shapes;
use super::step::{Binary, Kind};
use super::{Ctx, OpError, Reason, Which};

fn op_of(b: Binary) -> BinaryOp {
    match b {
        Binary::Add => BinaryOp::Add,
        Binary::Sub => BinaryOp::Sub,
        Binary::Mul => BinaryOp::Mul,
        Binary::Div => BinaryOp::Div,
        Binary::FloorDiv => BinaryOp::FloorDiv,
        Binary::TruncDiv => BinaryOp::TruncDiv,
        Binary::Rem => BinaryOp::Rem,
        Binary::Pow => BinaryOp::Pow,
        Binary::Maximum => BinaryOp::Maximum,
        Binary::Minimum => BinaryOp::Minimum,
        Binary::Eq => BinaryOp::Eq,
        Binary::Ne => BinaryOp::Ne,
        Binary::Lt => BinaryOp::Lt,
        Binary::Le => BinaryOp::Le,
        Binary::Gt => BinaryOp::Gt,
        Binary::Ge => BinaryOp::Ge,
        Binary::And => BinaryOp::And,
        Binary::Or => BinaryOp::Or,
        Binary::Xor => BinaryOp::Xor,
    }
}

fn params(c: &Ctx) -> Result<BinaryParams, OpError> {
    let Kind::Binary(b) = c.step.kind else {
        return Err(c.wrong_kind());
    };
    let (a, bs) = (c.shape(0), c.shape(1));
    if broadcast_shapes(&a, &bs) != Some(c.out.shape) {
        return Err(c.shape_err(Which::Output, "the output is not the operands' broadcast"));
    }
    if !matches!(c.step.act, super::Act::None) {
        c.want_out(super::DType::F32)?;
    }
    Ok(BinaryParams {
        op: op_of(b),
        a,
        b: bs,
        out: c.out.shape,
        a_dtype: c.meta(0).dtype,
        b_dtype: c.meta(1).dtype,
        out_dtype: c.out.dtype,
        act: c.step.act,
    })
}

fn kernel_err(c: &Ctx, e: BinaryError) -> OpError {
    c.err(Reason::Kernel(match e {
        BinaryError::DivisionByZero => "integer division by zero",
        BinaryError::NegativePower => "integer to a negative power",
        BinaryError::Unsupported => "the op does not produce this dtype from these inputs",
        BinaryError::Shape => "the operands do not broadcast to the output",
    }))
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.in_place_like_output(0)?;
    c.in_place_like_output(1)?;
    //@use binary.binary_f32_same
    if kept("binary.binary_f32_same") && super::kernels::binary::binary_f32_same_accepts(&p) {
        let (a, b) = (c.f32_operand(0)?, c.f32_operand(1)?);
        super::kernels::binary::binary_f32_same(&p, a, b, c.f32_out(y)?);
        return Ok("binary.binary_f32_same");
    }
    //@end
    //@use binary.binary_f32_scalar
    if kept("binary.binary_f32_scalar") && super::kernels::binary::binary_f32_scalar_accepts(&p) {
        let (a, b) = (c.f32_operand(0)?, c.f32_operand(1)?);
        super::kernels::binary::binary_f32_scalar(&p, a, b, c.f32_out(y)?);
        return Ok("binary.binary_f32_scalar");
    }
    //@end
    //@use binary.binary_f32_channel
    if kept("binary.binary_f32_channel") && super::kernels::binary::binary_f32_channel_accepts(&p) {
        let (a, b) = (c.f32_operand(0)?, c.f32_operand(1)?);
        super::kernels::binary::binary_f32_channel(&p, a, b, c.f32_out(y)?);
        return Ok("binary.binary_f32_channel");
    }
    //@end
    //@use binary.binary
    if kept("binary.binary") && super::kernels::binary::binary_accepts(&p) {
        let (a, b) = (c.data(0)?.src(), c.data(1)?.src());
        super::kernels::binary::binary(&p, a, b, c.dst(y)?).map_err(|e| kernel_err(c, e))?;
        return Ok("binary.binary");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "binary" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use binary.binary_f32_same
    if super::kernels::binary::binary_f32_same_accepts(&p) {
        found("binary.binary_f32_same");
    }
    //@end
    //@use binary.binary_f32_scalar
    if super::kernels::binary::binary_f32_scalar_accepts(&p) {
        found("binary.binary_f32_scalar");
    }
    //@end
    //@use binary.binary_f32_channel
    if super::kernels::binary::binary_f32_channel_accepts(&p) {
        found("binary.binary_f32_channel");
    }
    //@end
    //@use binary.binary
    if super::kernels::binary::binary_accepts(&p) {
        found("binary.binary");
    }
    //@end
}
