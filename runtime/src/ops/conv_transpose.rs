//! Binds `Kind::Conv` with `transposed` to `kernels::conv_transpose`. Invariant: the output
//! size `(in − 1)·stride − 2·pad + dil·(k − 1) + output_padding + 1` computed from the
//! operands and attributes must equal the recorded output shape before the kernel runs.

use super::kernels::conv_transpose::ConvTranspose2d;
use super::step::Kind;
use super::{Ctx, OpError, Which};

fn out_len(
    len: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dil: usize,
    extra: usize,
) -> Option<usize> {
    let full = len
        .checked_sub(1)?
        .checked_mul(stride)?
        .checked_add(dil.checked_mul(k.checked_sub(1)?)?)?
        .checked_add(extra)?
        .checked_add(1)?;
    full.checked_sub(pad.checked_mul(2)?)
}

fn two_d(spatial: u8, v: [usize; 2], fill: usize) -> [usize; 2] {
    if spatial == 1 {
        [fill, v[0]]
    } else {
        v
    }
}

fn params(c: &Ctx) -> Result<ConvTranspose2d, OpError> {
    let Kind::Conv {
        spatial,
        stride,
        padding,
        dilation,
        output_padding,
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
        return Err(c.shape_err(Which::Input(1), "the weight is not [C, O/groups, *kernel]"));
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
    if groups == 0 || w.dims[0] != c_in || c_in % groups != 0 {
        return Err(c.shape_err(
            Which::Input(1),
            "the weight does not match x's channels and groups",
        ));
    }
    let c_out = w.dims[1] * groups;
    if c.n() == 3 && c.shape(2).dims() != [c_out] {
        return Err(c.shape_err(Which::Input(2), "the bias is not [O]"));
    }
    let stride = two_d(spatial, stride, 1);
    let pad = two_d(spatial, padding, 0);
    let dil = two_d(spatial, dilation, 1);
    let extra = two_d(spatial, output_padding, 0);
    let bad = || c.shape_err(Which::Output, "the output size is negative");
    if stride.contains(&0) || dil.contains(&0) || kh == 0 || kw == 0 {
        return Err(c.shape_err(Which::Input(1), "zero stride, dilation or kernel size"));
    }
    let oh = out_len(h, kh, stride[0], pad[0], dil[0], extra[0]).ok_or_else(bad)?;
    let ow = out_len(wd, kw, stride[1], pad[1], dil[1], extra[1]).ok_or_else(bad)?;
    let all = [n, c_out, oh, ow];
    let mut want = [0usize; 4];
    let mut r = 0;
    for (i, &v) in all.iter().enumerate() {
        if (i != 0 || batched) && (i != 2 || s == 2) {
            want[r] = v;
            r += 1;
        }
    }
    c.want_out_dims(&want[..r])?;
    Ok(ConvTranspose2d {
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
    //@use conv_transpose.generic
    if kept("conv_transpose.generic") && super::kernels::conv_transpose::generic_accepts(&p) {
        super::kernels::conv_transpose::generic(&p, x, w, b, y, c.step.act);
        return Ok("conv_transpose.generic");
    }
    //@end
    Err(c.err(super::Reason::NoVariant {
        family: "conv_transpose",
    }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use conv_transpose.generic
    if super::kernels::conv_transpose::generic_accepts(&p) {
        found("conv_transpose.generic");
    }
    //@end
}
