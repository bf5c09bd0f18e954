//! Binds `Kind::Conv` (not transposed) to `kernels::conv`. Invariant: the kernel's `Conv2d`
//! is built from the operands' shapes and the step's attributes, and the output shape it
//! implies must equal the recorded one before any variant runs.

use super::kernels::conv::Conv2d;
use super::step::Kind;
use super::{Ctx, OpError, Which};

/// `(in + 2·pad − dil·(k − 1) − 1) / stride + 1`, or None when the window does not fit.
fn out_len(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let span = dil.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    let num = len.checked_add(pad.checked_mul(2)?)?.checked_sub(span)?;
    Some(num / stride.max(1) + 1)
}

/// Widens a 1-d attribute `[v, _]` to the 2-d kernel's `[1, v]` (`fill` for the height).
fn two_d(spatial: u8, v: [usize; 2], fill: usize) -> [usize; 2] {
    if spatial == 1 {
        [fill, v[0]]
    } else {
        v
    }
}

fn params(c: &Ctx) -> Result<Conv2d, OpError> {
    let Kind::Conv {
        spatial,
        stride,
        padding,
        dilation,
        groups,
        ..
    } = c.step.kind
    else {
        return Err(c.wrong_kind());
    };
    c.all_f32()?;
    let s = spatial as usize;
    if !(1..=2).contains(&s) {
        return Err(c.shape_err(Which::Output, "a convolution has 1 or 2 spatial dims"));
    }
    let (x, w) = (c.shape(0), c.shape(1));
    let batched = x.rank == s + 2;
    if !batched && x.rank != s + 1 {
        return Err(c.shape_err(
            Which::Input(0),
            "x is not [N, C, *spatial] or [C, *spatial]",
        ));
    }
    if w.rank != s + 2 {
        return Err(c.shape_err(Which::Input(1), "the weight is not [O, C/groups, *kernel]"));
    }
    let xd = x.dims();
    let n = if batched { xd[0] } else { 1 };
    let c_in = xd[x.rank - s - 1];
    let (h, wd) = if s == 2 {
        (xd[x.rank - 2], xd[x.rank - 1])
    } else {
        (1, xd[x.rank - 1])
    };
    let (kh, kw) = if s == 2 {
        (w.dims[2], w.dims[3])
    } else {
        (1, w.dims[2])
    };
    let c_out = w.dims[0];
    if groups == 0 || w.dims[1] * groups != c_in || c_out % groups != 0 {
        return Err(c.shape_err(
            Which::Input(1),
            "the weight does not match x's channels and groups",
        ));
    }
    if c.n() == 3 && c.shape(2).dims() != [c_out] {
        return Err(c.shape_err(Which::Input(2), "the bias is not [O]"));
    }
    let stride = two_d(spatial, stride, 1);
    let pad = two_d(spatial, padding, 0);
    let dil = two_d(spatial, dilation, 1);
    let bad = || {
        c.shape_err(
            Which::Output,
            "the kernel window does not fit the padded input",
        )
    };
    let oh = out_len(h, kh, stride[0], pad[0], dil[0]).ok_or_else(bad)?;
    let ow = out_len(wd, kw, stride[1], pad[1], dil[1]).ok_or_else(bad)?;
    let mut want = [0usize; 4];
    let mut r = 0;
    for v in [n, c_out, oh, ow]
        .iter()
        .enumerate()
        .filter(|&(i, _)| (i != 0 || batched) && (i != 2 || s == 2))
        .map(|(_, v)| *v)
    {
        want[r] = v;
        r += 1;
    }
    c.want_out_dims(&want[..r])?;
    Ok(Conv2d {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        kh,
        kw,
        stride,
        pad,
        dil,
        groups,
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
    let w = c.f32_in(1)?;
    let b = if c.n() == 3 { Some(c.f32_in(2)?) } else { None };
    let y = c.f32_out(y)?;
    let act = c.step.act;
    //@use conv.pointwise_avx512
    if kept("conv.pointwise_avx512")
        && super::kernels::x86::avx512()
        && super::kernels::conv::pointwise_avx512_accepts(&p)
    {
        super::kernels::conv::pointwise_avx512(&p, x, w, b, y, act);
        return Ok("conv.pointwise_avx512");
    }
    //@end
    //@use conv.depthwise_avx512
    if kept("conv.depthwise_avx512")
        && super::kernels::x86::avx512()
        && super::kernels::conv::depthwise_avx512_accepts(&p)
    {
        super::kernels::conv::depthwise_avx512(&p, x, w, b, y, act);
        return Ok("conv.depthwise_avx512");
    }
    //@end
    //@use conv.winograd_avx512
    if kept("conv.winograd_avx512")
        && super::kernels::x86::avx512()
        && super::kernels::conv::winograd_avx512_accepts(&p)
    {
        super::kernels::conv::winograd_avx512(&p, x, w, b, y, act);
        return Ok("conv.winograd_avx512");
    }
    //@end
    //@use conv.stem_avx2
    if kept("conv.stem_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::conv::stem_avx2_accepts(&p)
    {
        super::kernels::conv::stem_avx2(&p, x, w, b, y, act);
        return Ok("conv.stem_avx2");
    }
    //@end
    //@use conv.im2col_avx512
    if kept("conv.im2col_avx512")
        && super::kernels::x86::avx512()
        && super::kernels::conv::im2col_avx512_accepts(&p)
    {
        super::kernels::conv::im2col_avx512(&p, x, w, b, y, act);
        return Ok("conv.im2col_avx512");
    }
    //@end
    //@use conv.winograd_avx2
    if kept("conv.winograd_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::conv::winograd_avx2_accepts(&p)
    {
        super::kernels::conv::winograd_avx2(&p, x, w, b, y, act);
        return Ok("conv.winograd_avx2");
    }
    //@end
    //@use conv.pointwise_avx2
    if kept("conv.pointwise_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::conv::pointwise_avx2_accepts(&p)
    {
        super::kernels::conv::pointwise_avx2(&p, x, w, b, y, act);
        return Ok("conv.pointwise_avx2");
    }
    //@end
    //@use conv.depthwise_avx2
    if kept("conv.depthwise_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::conv::depthwise_avx2_accepts(&p)
    {
        super::kernels::conv::depthwise_avx2(&p, x, w, b, y, act);
        return Ok("conv.depthwise_avx2");
    }
    //@end
    //@use conv.im2col_avx2
    if kept("conv.im2col_avx2")
        && super::kernels::x86::avx2()
        && super::kernels::conv::im2col_avx2_accepts(&p)
    {
        super::kernels::conv::im2col_avx2(&p, x, w, b, y, act);
        return Ok("conv.im2col_avx2");
    }
    //@end
    //@use conv.pointwise
    if kept("conv.pointwise") && super::kernels::conv::pointwise_accepts(&p) {
        super::kernels::conv::pointwise(&p, x, w, b, y, act);
        return Ok("conv.pointwise");
    }
    //@end
    //@use conv.depthwise
    if kept("conv.depthwise") && super::kernels::conv::depthwise_accepts(&p) {
        super::kernels::conv::depthwise(&p, x, w, b, y, act);
        return Ok("conv.depthwise");
    }
    //@end
    //@use conv.direct
    if kept("conv.direct") && super::kernels::conv::direct_accepts(&p) {
        super::kernels::conv::direct(&p, x, w, b, y, act);
        return Ok("conv.direct");
    }
    //@end
    //@use conv.generic
    if kept("conv.generic") && super::kernels::conv::generic_accepts(&p) {
        super::kernels::conv::generic(&p, x, w, b, y, act);
        return Ok("conv.generic");
    }
    //@end
    Err(c.err(super::Reason::NoVariant { family: "conv" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use conv.pointwise_avx512
    if super::kernels::conv::pointwise_avx512_accepts(&p) {
        found("conv.pointwise_avx512");
    }
    //@end
    //@use conv.depthwise_avx512
    if super::kernels::conv::depthwise_avx512_accepts(&p) {
        found("conv.depthwise_avx512");
    }
    //@end
    //@use conv.winograd_avx512
    if super::kernels::conv::winograd_avx512_accepts(&p) {
        found("conv.winograd_avx512");
    }
    //@end
    //@use conv.stem_avx2
    if super::kernels::conv::stem_avx2_accepts(&p) {
        found("conv.stem_avx2");
    }
    //@end
    //@use conv.im2col_avx512
    if super::kernels::conv::im2col_avx512_accepts(&p) {
        found("conv.im2col_avx512");
    }
    //@end
    //@use conv.winograd_avx2
    if super::kernels::conv::winograd_avx2_accepts(&p) {
        found("conv.winograd_avx2");
    }
    //@end
    //@use conv.pointwise_avx2
    if super::kernels::conv::pointwise_avx2_accepts(&p) {
        found("conv.pointwise_avx2");
    }
    //@end
    //@use conv.depthwise_avx2
    if super::kernels::conv::depthwise_avx2_accepts(&p) {
        found("conv.depthwise_avx2");
    }
    //@end
    //@use conv.im2col_avx2
    if super::kernels::conv::im2col_avx2_accepts(&p) {
        found("conv.im2col_avx2");
    }
    //@end
    //@use conv.pointwise
    if super::kernels::conv::pointwise_accepts(&p) {
        found("conv.pointwise");
    }
    //@end
    //@use conv.depthwise
    if super::kernels::conv::depthwise_accepts(&p) {
        found("conv.depthwise");
    }
    //@end
    //@use conv.direct
    if super::kernels::conv::direct_accepts(&p) {
        found("conv.direct");
    }
    //@end
    //@use conv.generic
    if super::kernels::conv::generic_accepts(&p) {
        found("conv.generic");
    }
    //@end
}
