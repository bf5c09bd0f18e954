//! Binds `Take` and `Gather` to `kernels::index`. Invariant: the index operand is i64, the
//! data and output share a dtype, and the output shape follows from the operands
//! (`x[..axis] ++ idx ++ x[axis + 1..]` for take, the index's shape for gather); a bad index
//! is an `OpError`.

use super::kernels::index::{GatherParams, IndexError, TakeParams};
use super::kernels::shape::MAX_RANK;
use super::step::Kind;
use super::{Ctx, DType, OpError, Reason, Which};

enum P {
    Take(TakeParams),
    Gather(GatherParams),
}

fn params(c: &Ctx) -> Result<P, OpError> {
    c.want(1, DType::I64)?;
    if c.meta(0).dtype != c.out.dtype {
        return Err(c.err(Reason::DType {
            which: Which::Output,
            got: c.out.dtype,
        }));
    }
    let (x, idx) = (c.shape(0), c.shape(1));
    match c.step.kind {
        Kind::Take { axis } => {
            if axis >= x.rank || x.rank - 1 + idx.rank > MAX_RANK {
                return Err(c.shape_err(Which::Input(0), "the axis is past x's rank"));
            }
            let mut want = [0usize; MAX_RANK];
            let xd = x.dims();
            let mut r = 0;
            for &v in xd[..axis].iter().chain(idx.dims()).chain(&xd[axis + 1..]) {
                want[r] = v;
                r += 1;
            }
            c.want_out_dims(&want[..r])?;
            Ok(P::Take(TakeParams {
                x,
                axis,
                idx_numel: idx.numel(),
            }))
        }
        Kind::Gather { axis } => {
            if c.out.shape != idx {
                return Err(c.shape_err(Which::Output, "the output shape is not the index's"));
            }
            Ok(P::Gather(GatherParams { x, idx, axis }))
        }
        _ => Err(c.wrong_kind()),
    }
}

fn index_err(c: &Ctx, e: IndexError) -> OpError {
    c.err(Reason::Index {
        index: e.index,
        size: e.size,
    })
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.none_in_place()?;
    let (x, idx) = (c.data(0)?, c.data(1)?);
    let super::Data::I64(idx) = idx else {
        return Err(c.wrong_kind());
    };
    match p {
        P::Take(p) => {
            //@use index.take
            if kept("index.take") && super::kernels::index::take_accepts(&p) {
                let r = same_type!(c, x, c.dst(y)?, |xs, ys| super::kernels::index::take(
                    &p, xs, idx, ys
                ));
                r.map_err(|e| index_err(c, e))?;
                c.post_act(y)?;
                return Ok("index.take");
            }
            //@end
        }
        P::Gather(p) => {
            //@use index.gather
            if kept("index.gather") && super::kernels::index::gather_accepts(&p) {
                let r = same_type!(c, x, c.dst(y)?, |xs, ys| super::kernels::index::gather(
                    &p, xs, idx, ys
                ));
                r.map_err(|e| index_err(c, e))?;
                c.post_act(y)?;
                return Ok("index.gather");
            }
            //@end
        }
    }
    Err(c.err(Reason::NoVariant { family: "index" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    match p {
        P::Take(p) => {
            //@use index.take
            if super::kernels::index::take_accepts(&p) {
                found("index.take");
            }
            //@end
        }
        P::Gather(p) => {
            //@use index.gather
            if super::kernels::index::gather_accepts(&p) {
                found("index.gather");
            }
            //@end
        }
    }
}
