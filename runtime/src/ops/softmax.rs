//! Binds `Kind::Softmax` to `kernels::softmax`. Invariant: input and output are f32 of the
//! same shape and the axis is one of their dims (a 0-d tensor is one line of one element).

use super::kernels::shape::split_at_axis;
use super::kernels::softmax::Softmax;
use super::step::Kind;
use super::{Ctx, OpError, Reason, Which};

fn params(c: &Ctx) -> Result<Softmax, OpError> {
    let Kind::Softmax { axis, log } = c.step.kind else {
        return Err(c.wrong_kind());
    };
    c.all_f32()?;
    let x = c.shape(0);
    if x != c.out.shape {
        return Err(c.shape_err(Which::Output, "the output shape is not the input's"));
    }
    let (outer, len, inner) = if x.rank == 0 && axis == 0 {
        (1, 1, 1)
    } else if axis < x.rank {
        split_at_axis(&x, axis)
    } else {
        return Err(c.shape_err(Which::Input(0), "the axis is past the input's rank"));
    };
    Ok(Softmax {
        outer,
        len,
        inner,
        log,
    })
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    let x = c.f32_in(0)?;
    //@use softmax.generic
    if kept("softmax.generic") && super::kernels::softmax::generic_accepts(&p) {
        super::kernels::softmax::generic(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("softmax.generic");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "softmax" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use softmax.generic
    if super::kernels::softmax::generic_accepts(&p) {
        found("softmax.generic");
    }
    //@end
}
