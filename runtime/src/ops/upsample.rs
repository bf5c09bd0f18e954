//! Binds `Kind::Upsample` to `kernels::upsample`. Invariant: input and output differ only in
//! their two trailing dims (a rank-1 tensor in its only dim), which are resampled; a leading
//! dim that keeps its size is resampled by the identity, so 1-d and 2-d inputs both fit.

use super::kernels::upsample::{Mode, Upsample2d};
use super::step::Kind;
use super::{planes_hw, Ctx, OpError, Reason, Which};

fn params(c: &Ctx) -> Result<Upsample2d, OpError> {
    let Kind::Upsample {
        bilinear,
        align_corners,
    } = c.step.kind
    else {
        return Err(c.wrong_kind());
    };
    c.all_f32()?;
    let (x, o) = (c.shape(0), c.out.shape);
    let lead = x.rank.saturating_sub(2);
    if o.rank != x.rank || x.dims()[..lead] != o.dims()[..lead] {
        return Err(c.shape_err(Which::Output, "leading dims differ from the input's"));
    }
    let (planes, h, w) = planes_hw(&x);
    let (_, oh, ow) = planes_hw(&o);
    Ok(Upsample2d {
        mode: if bilinear {
            Mode::Bilinear { align_corners }
        } else {
            Mode::Nearest
        },
        planes,
        h,
        w,
        oh,
        ow,
    })
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    let x = c.f32_in(0)?;
    //@use upsample.generic
    if kept("upsample.generic") && super::kernels::upsample::generic_accepts(&p) {
        super::kernels::upsample::generic(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("upsample.generic");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "upsample" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use upsample.generic
    if super::kernels::upsample::generic_accepts(&p) {
        found("upsample.generic");
    }
    //@end
}
