//! Rules for `interpolate` (nearest and bilinear upsampling).
//! Invariant: only sizes where PyTorch's scale-based and size-based index maps agree are
//! accepted, so the core op can work from sizes alone.

use super::args::Ctx;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{Op, UpsampleMode, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("upsample_nearest1d.vec", |l, c| upsample(l, c, false)),
    ("upsample_nearest2d.vec", |l, c| upsample(l, c, false)),
    ("upsample_nearest1d.default", |l, c| upsample(l, c, false)),
    ("upsample_nearest2d.default", |l, c| upsample(l, c, false)),
    ("upsample_linear1d.vec", |l, c| upsample(l, c, true)),
    ("upsample_bilinear2d.vec", |l, c| upsample(l, c, true)),
    ("upsample_bilinear2d.default", |l, c| upsample(l, c, true)),
];

fn upsample(lw: &mut Lowerer, ctx: &Ctx, linear: bool) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(
        lw,
        if ctx.get("input").is_some() {
            "input"
        } else {
            "self"
        },
    )?;
    let in_shape = lw.ty(x).shape.clone();
    let out = lw.output_meta(ctx, 0)?;
    if out.rank() != in_shape.len() || in_shape.len() < 3 {
        return Err(lw.invalid(format!("cannot resize {in_shape:?} to {:?}", out.shape)));
    }
    let size = out.shape[2..].to_vec();
    // With explicit scale factors PyTorch maps indices by 1/scale instead of in/out; the two
    // agree when every output size is an exact multiple of the input size.
    let scales = ctx.opt_floats("scale_factors")?;
    if let Some(scales) = scales {
        for (i, s) in scales.iter().enumerate() {
            let exact = in_shape[2 + i] as f64 * s == size[i] as f64;
            if !exact {
                return Err(lw.invalid(format!(
                    "scale factor {s} does not give a whole output size; pass `size=` instead"
                )));
            }
        }
    }
    let mode = if linear {
        UpsampleMode::Bilinear {
            align_corners: ctx.bool_or("align_corners", false)?,
        }
    } else {
        UpsampleMode::Nearest
    };
    if linear && size.len() == 1 {
        // 1-d linear resampling is bilinear over a unit height: along a dim of size 1 both
        // coordinate maps land on index 0, so the result is the 1-d interpolation.
        let mut tall = in_shape.clone();
        tall.insert(2, 1);
        let x4 = lw.emit(Op::Reshape { shape: tall }, vec![x])?;
        let y4 = lw.emit(
            Op::Upsample {
                mode,
                size: vec![1, size[0]],
            },
            vec![x4],
        )?;
        return Ok(vec![Some(
            lw.emit(Op::Reshape { shape: out.shape }, vec![y4])?,
        )]);
    }
    Ok(vec![Some(lw.emit(Op::Upsample { mode, size }, vec![x])?)])
}
