//! Binds `Kind::Where` to `kernels::where_`. Invariant: the condition is a bool tensor that
//! never shares the output's bytes, and every operand broadcasts to the recorded output.

use super::kernels::shape::broadcast_shapes;
use super::kernels::where_::WhereParams;
use super::step::Kind;
use super::{Ctx, DType, OpError, Reason, Which};

fn params(c: &Ctx) -> Result<WhereParams, OpError> {
    if c.step.kind != Kind::Where {
        return Err(c.wrong_kind());
    }
    c.want(0, DType::Bool)?;
    let (cond, a, b) = (c.shape(0), c.shape(1), c.shape(2));
    let all = broadcast_shapes(&cond, &a).and_then(|s| broadcast_shapes(&s, &b));
    if all != Some(c.out.shape) {
        return Err(c.shape_err(Which::Output, "the output is not the operands' broadcast"));
    }
    if !matches!(c.step.act, super::Act::None) {
        c.want_out(DType::F32)?;
    }
    Ok(WhereParams {
        cond,
        a,
        b,
        out: c.out.shape,
    })
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.not_in_place(0)?;
    c.in_place_like_output(1)?;
    c.in_place_like_output(2)?;
    let cond = match c.data(0)? {
        super::Data::Bool(v) => v,
        _ => {
            return Err(c.err(Reason::DType {
                which: Which::Input(0),
                got: c.meta(0).dtype,
            }))
        }
    };
    let (a, b) = (c.data(1)?.src(), c.data(2)?.src());
    //@use where_.select
    if kept("where_.select") && super::kernels::where_::select_accepts(&p) {
        super::kernels::where_::select(&p, cond, a, b, c.dst(y)?).map_err(|_| {
            c.err(Reason::Kernel(
                "the operands do not broadcast to the output",
            ))
        })?;
        c.post_act(y)?;
        return Ok("where_.select");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "where_" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use where_.select
    if super::kernels::where_::select_accepts(&p) {
        found("where_.select");
    }
    //@end
}
