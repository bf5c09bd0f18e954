//! Binds `Pool` and `AdaptivePool` to `kernels::pool`. Invariant: the output size follows
//! PyTorch's pooling rule (with `ceil_mode`'s dropped last window) or, for adaptive pooling,
//! is the output's trailing dims, and the leading dims of input and output agree.

use super::kernels::pool::{Pool2d, PoolKind as K};
use super::step::{Kind, PoolKind};
use super::{planes_hw, Ctx, OpError, Reason, Which};

/// PyTorch's pooling output length, or None when no window fits.
fn out_len(len: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    if k == 0 || s == 0 || d == 0 {
        return None;
    }
    let span = d.checked_mul(k - 1)?.checked_add(1)?;
    let padded = len.checked_add(p.checked_mul(2)?)?;
    let num = padded
        .checked_add(if ceil { s - 1 } else { 0 })?
        .checked_sub(span)?;
    let mut out = num / s + 1;
    if ceil && (out - 1) * s >= len + p {
        out -= 1;
    }
    (out >= 1).then_some(out)
}

fn kind_of(k: PoolKind) -> K {
    match k {
        PoolKind::Max => K::Max,
        PoolKind::Avg => K::Avg,
    }
}

fn params(c: &Ctx) -> Result<Pool2d, OpError> {
    c.all_f32()?;
    let x = c.shape(0);
    let o = c.out.shape;
    match c.step.kind {
        Kind::AdaptivePool { kind } => {
            let (planes, h, w) = planes_hw(&x);
            let (op, oh, ow) = planes_hw(&o);
            let lead = x.rank.saturating_sub(2);
            if o.rank != x.rank || x.dims()[..lead] != o.dims()[..lead] || op != planes {
                return Err(c.shape_err(Which::Output, "leading dims differ from the input's"));
            }
            Ok(Pool2d {
                kind: kind_of(kind),
                planes,
                h,
                w,
                oh,
                ow,
                adaptive: true,
                kh: 1,
                kw: 1,
                stride: [1, 1],
                pad: [0, 0],
                dil: [1, 1],
                count_include_pad: false,
                divisor_override: 0,
            })
        }
        Kind::Pool {
            kind,
            spatial,
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
            count_include_pad,
            divisor_override,
        } => {
            let s = spatial as usize;
            if !(1..=2).contains(&s) || x.rank < s + 1 || x.rank > s + 2 {
                return Err(c.shape_err(
                    Which::Input(0),
                    "x is not [N, C, *spatial] or [C, *spatial]",
                ));
            }
            let wide = |v: [usize; 2], fill: usize| if s == 1 { [fill, v[0]] } else { v };
            let (k, st, p, d) = (
                wide(kernel, 1),
                wide(stride, 1),
                wide(padding, 0),
                wide(dilation, 1),
            );
            let (planes, h, w) = if s == 2 {
                planes_hw(&x)
            } else {
                let d = x.dims();
                (d[..d.len() - 1].iter().product(), 1, d[d.len() - 1])
            };
            let bad = || c.shape_err(Which::Output, "no pooling window fits the padded input");
            let oh = out_len(h, k[0], st[0], p[0], d[0], ceil_mode).ok_or_else(bad)?;
            let ow = out_len(w, k[1], st[1], p[1], d[1], ceil_mode).ok_or_else(bad)?;
            let mut want = x;
            if s == 2 {
                want.dims[x.rank - 2] = oh;
            }
            want.dims[x.rank - 1] = ow;
            c.want_out_dims(want.dims())?;
            Ok(Pool2d {
                kind: kind_of(kind),
                planes,
                h,
                w,
                oh,
                ow,
                adaptive: false,
                kh: k[0],
                kw: k[1],
                stride: st,
                pad: p,
                dil: d,
                count_include_pad,
                divisor_override,
            })
        }
        _ => Err(c.wrong_kind()),
    }
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    let x = c.f32_in(0)?;
    //@use pool.max3_avx512
    if kept("pool.max3_avx512")
        && super::kernels::x86::avx512()
        && super::kernels::pool::max3_avx512_accepts(&p)
    {
        super::kernels::pool::max3_avx512(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("pool.max3_avx512");
    }
    //@end
    //@use pool.max3_avx2
    if kept("pool.max3_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::pool::max3_avx2_accepts(&p)
    {
        super::kernels::pool::max3_avx2(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("pool.max3_avx2");
    }
    //@end
    //@use pool.global_avg
    if kept("pool.global_avg") && super::kernels::pool::global_avg_accepts(&p) {
        super::kernels::pool::global_avg(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("pool.global_avg");
    }
    //@end
    //@use pool.generic
    if kept("pool.generic") && super::kernels::pool::generic_accepts(&p) {
        super::kernels::pool::generic(&p, x, c.f32_out(y)?);
        c.post_act(y)?;
        return Ok("pool.generic");
    }
    //@end
    Err(c.err(Reason::NoVariant { family: "pool" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use pool.max3_avx512
    if super::kernels::pool::max3_avx512_accepts(&p) {
        found("pool.max3_avx512");
    }
    //@end
    //@use pool.max3_avx2
    if super::kernels::pool::max3_avx2_accepts(&p) {
        found("pool.max3_avx2");
    }
    //@end
    //@use pool.global_avg
    if super::kernels::pool::global_avg_accepts(&p) {
        found("pool.global_avg");
    }
    //@end
    //@use pool.generic
    if super::kernels::pool::generic_accepts(&p) {
        found("pool.generic");
    }
    //@end
}
