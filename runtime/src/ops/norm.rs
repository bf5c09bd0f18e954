//! Binds batch, layer and group norm to `kernels::norm`. Invariant: x and the output have the
//! same shape, and every per-channel or per-position parameter has exactly the elements the
//! kernel indexes, checked before it runs; x may share the output's bytes (in place).

use super::kernels::norm::Norm;
use super::step::Kind;
use super::{Ctx, DType, OpError, Which};

/// The normalization over borrowed running statistics (empty while only checking shapes),
/// and how many elements each of weight and bias must have.
fn params<'x>(c: &Ctx, mean: &'x [f32], var: &'x [f32]) -> Result<(Norm<'x>, usize), OpError> {
    c.all_f32()?;
    let x = c.shape(0);
    if c.out.shape != x {
        return Err(c.shape_err(Which::Output, "the output shape is not x's"));
    }
    let d = x.dims();
    let nci = || {
        if d.len() < 2 {
            Err(c.shape_err(Which::Input(0), "x is not [N, C, *]"))
        } else {
            Ok((d[0], d[1], d[2..].iter().product::<usize>()))
        }
    };
    let (norm, per) = match c.step.kind {
        Kind::BatchNorm { eps } => {
            let (n, ch, inner) = nci()?;
            (
                Norm::Batch {
                    n,
                    c: ch,
                    inner,
                    eps,
                    mean,
                    var,
                },
                ch,
            )
        }
        Kind::LayerNorm { axis, eps } => {
            if axis > d.len() {
                return Err(c.shape_err(Which::Input(0), "the normalized axis is past x's rank"));
            }
            let len = d[axis..].iter().product();
            (
                Norm::Layer {
                    rows: d[..axis].iter().product(),
                    len,
                    eps,
                },
                len,
            )
        }
        Kind::GroupNorm { groups, eps } => {
            let (n, ch, inner) = nci()?;
            (
                Norm::Group {
                    n,
                    c: ch,
                    inner,
                    groups,
                    eps,
                },
                ch,
            )
        }
        _ => return Err(c.wrong_kind()),
    };
    for i in 1..c.n() {
        if c.meta(i).numel() != per {
            return Err(c.shape_err(Which::Input(i), "a parameter's size does not match x"));
        }
        c.want(i, DType::F32)?;
    }
    Ok((norm, per))
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    for i in 1..c.n() {
        c.not_in_place(i)?;
    }
    c.in_place_like_output(0)?;
    let batch = matches!(c.step.kind, Kind::BatchNorm { .. });
    let (mean, var) = if batch {
        (c.f32_in(3)?, c.f32_in(4)?)
    } else {
        (&[][..], &[][..])
    };
    let (p, _) = params(c, mean, var)?;
    let x = match c.data(0)? {
        super::Data::F32(v) => Some(v),
        _ => None,
    };
    let weight = if c.n() > 1 { Some(c.f32_in(1)?) } else { None };
    let bias = if c.n() > 2 { Some(c.f32_in(2)?) } else { None };
    let y = c.f32_out(y)?;
    //@use norm.layer
    if kept("norm.layer") && super::kernels::norm::layer_accepts(&p) {
        super::kernels::norm::layer(&p, x, y, weight, bias, c.step.act);
        return Ok("norm.layer");
    }
    //@end
    //@use norm.generic
    if kept("norm.generic") && super::kernels::norm::generic_accepts(&p) {
        super::kernels::norm::generic(&p, x, y, weight, bias, c.step.act);
        return Ok("norm.generic");
    }
    //@end
    Err(c.err(super::Reason::NoVariant { family: "norm" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok((p, _)) = params(c, &[], &[]) else {
        return;
    };
    //@use norm.layer
    if super::kernels::norm::layer_accepts(&p) {
        found("norm.layer");
    }
    //@end
    //@use norm.generic
    if super::kernels::norm::generic_accepts(&p) {
        found("norm.generic");
    }
    //@end
}
