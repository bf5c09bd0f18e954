//! Binds the data-movement steps (`Reshape`, `Permute`, `Expand`, `Tile`, `Concat`, `Slice`,
//! `Cast`, `Pad`, `Triangle`, `Cumsum`) and the creation steps (`Full`, `Arange`) to
//! `kernels::layout`, one variant per step kind. A `Split` is checked as the `Slice` of its
//! first piece (the executor runs one slice per piece).
//! Invariant: the output shape that the step's attributes imply equals the recorded one
//! before a kernel runs; only `cast`, `concat` and `cumsum` change the element type, and a
//! reshape (a copy through `layout.cast`) whose input already sits in the output copies
//! nothing.

use super::kernels::layout::{
    slice_len, CastParams, ConcatParams, CumsumParams, ExpandParams, PadParams, PermuteParams,
    SliceParams, TileParams, TriangleParams,
};
use super::kernels::shape::{Shape, MAX_RANK};
use super::step::Kind;
use super::{Ctx, OpError, Reason, Which};

enum P {
    Reshape(CastParams),
    Permute(PermuteParams),
    Expand(ExpandParams),
    Tile(TileParams),
    Concat(usize),
    Slice(SliceParams),
    Cast(CastParams),
    Pad(PadParams),
    Triangle(TriangleParams),
    Cumsum(CumsumParams),
    Fill(f64),
    Arange(f64, f64),
}

/// Errs unless the output has the input's dtype.
fn same_dtype(c: &Ctx) -> Result<(), OpError> {
    if c.meta(0).dtype == c.out.dtype {
        Ok(())
    } else {
        Err(c.err(Reason::DType {
            which: Which::Output,
            got: c.out.dtype,
        }))
    }
}

/// The input `i` of a concat that PyTorch skips: a 1-d empty tensor joined to a tensor of
/// another rank.
fn skipped(c: &Ctx, i: usize) -> bool {
    let s = c.shape(i);
    s.rank == 1 && s.dims[0] == 0 && c.out.shape.rank != 1
}

fn concat_params(c: &Ctx, axis: usize, i: usize, offset: usize) -> ConcatParams {
    ConcatParams {
        x: c.shape(i),
        out: c.out.shape,
        axis,
        offset,
    }
}

fn params(c: &Ctx) -> Result<P, OpError> {
    // The creation steps read no operand: the output's shape and dtype say everything.
    match c.step.kind {
        Kind::Full { value } => return Ok(P::Fill(value)),
        Kind::Arange { start, step } => {
            if c.out.shape.rank != 1 {
                return Err(c.shape_err(Which::Output, "an arange output is 1-d"));
            }
            return Ok(P::Arange(start, step));
        }
        _ => {}
    }
    let x = c.shape(0);
    let mut want = x;
    let p = match c.step.kind {
        Kind::Reshape => {
            same_dtype(c)?;
            if x.numel() != c.out.numel() {
                return Err(c.shape_err(Which::Output, "a reshape keeps the element count"));
            }
            want = c.out.shape;
            P::Reshape(CastParams { numel: x.numel() })
        }
        Kind::Permute { perm } => {
            same_dtype(c)?;
            let perm = perm.as_slice();
            if perm.len() != x.rank {
                return Err(
                    c.shape_err(Which::Input(0), "the permutation's length is not x's rank")
                );
            }
            let mut pp = [0usize; MAX_RANK];
            for (i, &d) in perm.iter().enumerate() {
                if d < 0 || d as usize >= x.rank {
                    return Err(c.shape_err(Which::Input(0), "a permuted dim is past x's rank"));
                }
                pp[i] = d as usize;
                want.dims[i] = x.dims[d as usize];
            }
            P::Permute(PermuteParams { x, perm: pp })
        }
        Kind::Expand => {
            same_dtype(c)?;
            want = c.out.shape;
            P::Expand(ExpandParams {
                x,
                out: c.out.shape,
            })
        }
        Kind::Tile { repeats } => {
            same_dtype(c)?;
            let r = repeats.as_slice();
            if r.len() < x.rank || r.iter().any(|&v| v < 0) {
                return Err(c.shape_err(Which::Input(0), "fewer repeats than x's dims"));
            }
            let mut reps = [1usize; MAX_RANK];
            want = Shape::SCALAR;
            want.rank = r.len();
            let off = r.len() - x.rank;
            for (d, &v) in r.iter().enumerate() {
                reps[d] = v as usize;
                let xd = if d < off { 1 } else { x.dims[d - off] };
                want.dims[d] = xd * v as usize;
            }
            P::Tile(TileParams {
                x,
                repeats: reps,
                rank: r.len(),
            })
        }
        Kind::Concat { axis } => {
            let o = c.out.shape;
            if axis >= o.rank {
                return Err(c.shape_err(Which::Output, "the axis is past the output's rank"));
            }
            let mut offset = 0;
            for i in 0..c.n() {
                if skipped(c, i) {
                    continue;
                }
                let p = concat_params(c, axis, i, offset);
                if p.x.rank != o.rank || (0..o.rank).any(|d| d != axis && p.x.dims[d] != o.dims[d])
                {
                    return Err(c.shape_err(Which::Input(i), "does not match the other inputs"));
                }
                offset += p.x.dims[axis];
            }
            if offset != o.dims[axis] {
                return Err(c.shape_err(Which::Output, "the inputs do not fill the output"));
            }
            want = o;
            P::Concat(axis)
        }
        Kind::Slice {
            axis,
            start,
            end,
            step,
        } => {
            same_dtype(c)?;
            if axis >= x.rank || step == 0 || end > x.dims[axis] {
                return Err(c.shape_err(Which::Input(0), "the slice is outside x"));
            }
            want.dims[axis] = slice_len(start, end, step);
            P::Slice(SliceParams {
                x,
                axis,
                start,
                end,
                step,
            })
        }
        Kind::Split { axis } => {
            same_dtype(c)?;
            if axis >= x.rank || c.out.shape.rank != x.rank {
                return Err(c.shape_err(Which::Input(0), "the split axis is outside x"));
            }
            let end = c.out.shape.dims[axis];
            if end > x.dims[axis] {
                return Err(c.shape_err(Which::Output, "the first piece is longer than x"));
            }
            want.dims[axis] = end;
            P::Slice(SliceParams {
                x,
                axis,
                start: 0,
                end,
                step: 1,
            })
        }
        Kind::Cast => P::Cast(CastParams { numel: x.numel() }),
        Kind::Pad { pads, value } => {
            same_dtype(c)?;
            let mut pp = [(0i64, 0i64); MAX_RANK];
            for d in 0..x.rank {
                pp[d] = (pads[2 * d] as i64, pads[2 * d + 1] as i64);
                let n = x.dims[d] as i64 + pp[d].0 + pp[d].1;
                if n < 0 {
                    return Err(c.shape_err(Which::Input(0), "a pad crops more than the dim"));
                }
                want.dims[d] = n as usize;
            }
            P::Pad(PadParams { x, pads: pp, value })
        }
        Kind::Triangle { upper, diagonal } => {
            same_dtype(c)?;
            P::Triangle(TriangleParams { x, upper, diagonal })
        }
        Kind::Cumsum { axis } => {
            if axis >= x.rank {
                return Err(c.shape_err(Which::Input(0), "the axis is past x's rank"));
            }
            P::Cumsum(CumsumParams { x, axis })
        }
        _ => return Err(c.wrong_kind()),
    };
    c.want_out_dims(want.dims())?;
    Ok(p)
}

//@use layout.concat
/// Whether the concat kernel accepts every (not skipped) input at its offset.
fn concat_accepted(c: &Ctx, axis: usize) -> bool {
    let mut offset = 0;
    let mut all = true;
    for i in 0..c.n() {
        if !skipped(c, i) {
            let p = concat_params(c, axis, i, offset);
            all &= super::kernels::layout::concat_accepts(&p);
            offset += p.x.dims[axis];
        }
    }
    all
}
//@end

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    if !matches!(p, P::Reshape(_)) {
        c.none_in_place()?;
    }
    match p {
        P::Fill(value) => {
            //@use layout.full
            if kept("layout.full") && super::kernels::layout::full_accepts(value) {
                match c.dst(y)? {
                    super::kernels::shape::Dst::F32(ys) => super::kernels::layout::full(value, ys),
                    super::kernels::shape::Dst::I64(ys) => super::kernels::layout::full(value, ys),
                    super::kernels::shape::Dst::Bool(ys) => super::kernels::layout::full(value, ys),
                }
                return Ok("layout.full");
            }
            //@end
        }
        P::Arange(start, step) => {
            //@use layout.arange
            if kept("layout.arange")
                && super::kernels::layout::arange_accepts(start, step, c.out.dtype)
            {
                match c.dst(y)? {
                    super::kernels::shape::Dst::F32(ys) => {
                        super::kernels::layout::arange(start, step, ys)
                    }
                    super::kernels::shape::Dst::I64(ys) => {
                        super::kernels::layout::arange(start, step, ys)
                    }
                    super::kernels::shape::Dst::Bool(_) => {}
                }
                return Ok("layout.arange");
            }
            //@end
        }
        P::Reshape(p) => {
            //@use layout.cast
            if kept("layout.cast") && super::kernels::layout::cast_accepts(&p) {
                // An in-place reshape already holds its result: the bytes do not move.
                if !matches!(c.data(0)?, super::Data::InOut) {
                    any_types!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                        super::kernels::layout::cast(&p, xs, ys)
                    });
                }
                c.post_act(y)?;
                return Ok("layout.cast");
            }
            //@end
        }
        P::Permute(p) => {
            //@use layout.permute
            if kept("layout.permute") && super::kernels::layout::permute_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::permute(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.permute");
            }
            //@end
        }
        P::Expand(p) => {
            //@use layout.expand
            if kept("layout.expand") && super::kernels::layout::expand_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::expand(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.expand");
            }
            //@end
        }
        P::Tile(p) => {
            //@use layout.tile
            if kept("layout.tile") && super::kernels::layout::tile_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::tile(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.tile");
            }
            //@end
        }
        P::Concat(axis) => {
            //@use layout.concat
            if kept("layout.concat") && concat_accepted(c, axis) {
                {
                    let mut offset = 0;
                    for i in 0..c.n() {
                        if skipped(c, i) {
                            continue;
                        }
                        let p = concat_params(c, axis, i, offset);
                        any_types!(c, c.data(i)?, c.dst(y)?, |xs, ys| {
                            super::kernels::layout::concat(&p, xs, ys)
                        });
                        offset += p.x.dims[axis];
                    }
                    c.post_act(y)?;
                    return Ok("layout.concat");
                }
            }
            //@end
        }
        P::Slice(p) => {
            //@use layout.slice_rows
            if kept("layout.slice_rows") && super::kernels::layout::slice_rows_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::slice_rows(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.slice_rows");
            }
            //@end
            //@use layout.slice
            if kept("layout.slice") && super::kernels::layout::slice_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::slice(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.slice");
            }
            //@end
        }
        P::Cast(p) => {
            //@use layout.cast
            if kept("layout.cast") && super::kernels::layout::cast_accepts(&p) {
                any_types!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::cast(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.cast");
            }
            //@end
        }
        P::Pad(p) => {
            //@use layout.pad
            if kept("layout.pad") && super::kernels::layout::pad_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::pad(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.pad");
            }
            //@end
        }
        P::Triangle(p) => {
            //@use layout.triangle
            if kept("layout.triangle") && super::kernels::layout::triangle_accepts(&p) {
                same_type!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::triangle(&p, xs, ys)
                });
                c.post_act(y)?;
                return Ok("layout.triangle");
            }
            //@end
        }
        P::Cumsum(p) => {
            //@use layout.cumsum
            if kept("layout.cumsum") && super::kernels::layout::cumsum_accepts(&p) {
                let r = any_types!(c, c.data(0)?, c.dst(y)?, |xs, ys| {
                    super::kernels::layout::cumsum(&p, xs, ys)
                });
                r.map_err(|_| c.err(Reason::Kernel("cumulative sum into bool")))?;
                c.post_act(y)?;
                return Ok("layout.cumsum");
            }
            //@end
        }
    }
    Err(c.err(Reason::NoVariant { family: "layout" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    match p {
        P::Fill(value) => {
            //@use layout.full
            if super::kernels::layout::full_accepts(value) {
                found("layout.full");
            }
            //@end
        }
        P::Arange(start, step) => {
            //@use layout.arange
            if super::kernels::layout::arange_accepts(start, step, c.out.dtype) {
                found("layout.arange");
            }
            //@end
        }
        P::Reshape(p) | P::Cast(p) => {
            //@use layout.cast
            if super::kernels::layout::cast_accepts(&p) {
                found("layout.cast");
            }
            //@end
        }
        P::Permute(p) => {
            //@use layout.permute
            if super::kernels::layout::permute_accepts(&p) {
                found("layout.permute");
            }
            //@end
        }
        P::Expand(p) => {
            //@use layout.expand
            if super::kernels::layout::expand_accepts(&p) {
                found("layout.expand");
            }
            //@end
        }
        P::Tile(p) => {
            //@use layout.tile
            if super::kernels::layout::tile_accepts(&p) {
                found("layout.tile");
            }
            //@end
        }
        P::Concat(axis) => {
            //@use layout.concat
            if concat_accepted(c, axis) {
                found("layout.concat");
            }
            //@end
        }
        P::Slice(p) => {
            //@use layout.slice_rows
            if super::kernels::layout::slice_rows_accepts(&p) {
                found("layout.slice_rows");
            }
            //@end
            //@use layout.slice
            if super::kernels::layout::slice_accepts(&p) {
                found("layout.slice");
            }
            //@end
        }
        P::Pad(p) => {
            //@use layout.pad
            if super::kernels::layout::pad_accepts(&p) {
                found("layout.pad");
            }
            //@end
        }
        P::Triangle(p) => {
            //@use layout.triangle
            if super::kernels::layout::triangle_accepts(&p) {
                found("layout.triangle");
            }
            //@end
        }
        P::Cumsum(p) => {
            //@use layout.cumsum
            if super::kernels::layout::cumsum_accepts(&p) {
                found("layout.cumsum");
            }
            //@end
        }
    }
}
