//! Binds `Reduce`, `Var` and `ArgReduce` to `kernels::reduce`. Invariant: the recorded output
//! shape is the input's with the reduced dims removed (or kept as 1 with `keepdim`), checked
//! before a kernel runs; reductions never run in place.

use super::kernels::reduce::{ArgOp, ArgParams, ReduceError, ReduceOp, ReduceParams, VarParams};
use super::kernels::shape::{Shape, MAX_RANK};
use super::step::{Kind, Reduce};
use super::{Ctx, DType, OpError, Reason, Which};

/// What the step reduces with: the kernel's parameters.
enum P {
    Reduce(ReduceParams, ReduceOp),
    Var(VarParams),
    Arg(ArgParams, ArgOp),
}

/// Errs unless the output is `x` without the dims in `axes` (kept as 1 with `keepdim`).
fn check_out(c: &Ctx, x: &Shape, axes: u32, keepdim: bool) -> Result<(), OpError> {
    let mut want = [0usize; MAX_RANK];
    let mut r = 0;
    for d in 0..x.rank {
        if axes & (1 << d) == 0 {
            want[r] = x.dims[d];
            r += 1;
        } else if keepdim {
            want[r] = 1;
            r += 1;
        }
    }
    c.want_out_dims(&want[..r])
}

/// The axis bit set with "0 = every dim" resolved, or an error for a bit past the rank.
fn axes_of(c: &Ctx, x: &Shape, axes: u32) -> Result<u32, OpError> {
    let all = if x.rank >= 32 {
        u32::MAX
    } else {
        (1u32 << x.rank) - 1
    };
    if axes == 0 {
        Ok(all)
    } else if axes & !all != 0 {
        Err(c.shape_err(Which::Input(0), "a reduced axis is past the input's rank"))
    } else {
        Ok(axes)
    }
}

fn params(c: &Ctx) -> Result<P, OpError> {
    let x = c.shape(0);
    match c.step.kind {
        Kind::Reduce { op, axes, keepdim } => {
            let axes = axes_of(c, &x, axes)?;
            check_out(c, &x, axes, keepdim)?;
            let op = match op {
                Reduce::Sum => ReduceOp::Sum,
                Reduce::Mean => ReduceOp::Mean,
                Reduce::Max => ReduceOp::Max,
                Reduce::Min => ReduceOp::Min,
                Reduce::Prod => ReduceOp::Prod,
            };
            Ok(P::Reduce(ReduceParams { x, axes }, op))
        }
        Kind::Var {
            axes,
            correction,
            keepdim,
        } => {
            c.all_f32()?;
            let axes = axes_of(c, &x, axes)?;
            check_out(c, &x, axes, keepdim)?;
            Ok(P::Var(VarParams {
                x,
                axes,
                correction,
            }))
        }
        Kind::ArgReduce { max, axis, keepdim } => {
            if !(c.is(0, DType::F32) || c.is(0, DType::I64)) {
                c.want(0, DType::F32)?;
            }
            c.want_out(DType::I64)?;
            let axis = if axis < 0 {
                None
            } else if (axis as usize) < x.rank {
                Some(axis as usize)
            } else {
                return Err(c.shape_err(Which::Input(0), "the axis is past the input's rank"));
            };
            let bits = axis.map_or(axes_of(c, &x, 0)?, |a| 1 << a);
            check_out(c, &x, bits, keepdim)?;
            let op = if max { ArgOp::Max } else { ArgOp::Min };
            Ok(P::Arg(ArgParams { x, axis }, op))
        }
        _ => Err(c.wrong_kind()),
    }
}

fn kernel_err(c: &Ctx, e: ReduceError) -> OpError {
    c.err(Reason::Kernel(match e {
        ReduceError::Empty => "max/min over an empty dimension has no identity",
        ReduceError::Unsupported => "the reduction does not produce this dtype",
    }))
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.not_in_place(0)?;
    let x = c.data(0)?;
    match p {
        P::Reduce(p, op) => {
            //@use reduce.reduce
            if kept("reduce.reduce") && super::kernels::reduce::reduce_accepts(&p) {
                let r = any_types!(c, x, c.dst(y)?, |xs, ys| {
                    super::kernels::reduce::reduce(&p, op, xs, ys)
                });
                r.map_err(|e| kernel_err(c, e))?;
                c.post_act(y)?;
                return Ok("reduce.reduce");
            }
            //@end
        }
        P::Var(p) => {
            //@use reduce.var
            if kept("reduce.var") && super::kernels::reduce::var_accepts(&p) {
                super::kernels::reduce::var(&p, c.f32_in(0)?, c.f32_out(y)?);
                c.post_act(y)?;
                return Ok("reduce.var");
            }
            //@end
        }
        P::Arg(p, op) => {
            //@use reduce.arg_reduce
            if kept("reduce.arg_reduce") && super::kernels::reduce::arg_reduce_accepts(&p) {
                let y = match c.dst(y)? {
                    super::kernels::shape::Dst::I64(y) => y,
                    _ => return Err(c.wrong_kind()),
                };
                let r = match x {
                    super::Data::F32(xs) => super::kernels::reduce::arg_reduce(&p, op, xs, y),
                    super::Data::I64(xs) => super::kernels::reduce::arg_reduce(&p, op, xs, y),
                    _ => Err(ReduceError::Unsupported),
                };
                r.map_err(|e| kernel_err(c, e))?;
                return Ok("reduce.arg_reduce");
            }
            //@end
        }
    }
    Err(c.err(Reason::NoVariant { family: "reduce" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    match p {
        P::Reduce(p, _) => {
            //@use reduce.reduce
            if super::kernels::reduce::reduce_accepts(&p) {
                found("reduce.reduce");
            }
            //@end
        }
        P::Var(p) => {
            //@use reduce.var
            if super::kernels::reduce::var_accepts(&p) {
                found("reduce.var");
            }
            //@end
        }
        P::Arg(p, _) => {
            //@use reduce.arg_reduce
            if super::kernels::reduce::arg_reduce_accepts(&p) {
                found("reduce.arg_reduce");
            }
            //@end
        }
    }
}
