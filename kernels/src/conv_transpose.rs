//! Transposed 2-d convolution (1-d is 2-d with `h = kh = 1`) over contiguous NCHW tensors,
//! grouped, strided, padded, dilated, with output padding folded into `oh`/`ow`, an optional
//! bias and a fused activation. Invariant: `y[n, o, oy, ox] = act(bias[o] + Σ x[n, c, iy, ix]·
//! w[c, o mod (c_out/groups), ky, kx])` over all `iy·s + ky·d − p = oy` (likewise x), as
//! etpkg's interpreter computes, accumulated in f32.
//!
//! Slice lengths: `x` is `n·c_in·h·w`, `w` is `c_in·(c_out/groups)·kh·kw`, `bias` (if any) is
//! `c_out`, `y` is `n·c_out·oh·ow`.
#![forbid(unsafe_code)]

use super::act::Act;

/// Shape and attributes of one transposed convolution; `oh`/`ow` include output padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dil: [usize; 2],
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

/// The input index `i` with `i·s + k·d − p == o`, if there is one in `[0, len)`.
#[inline]
fn source(o: usize, k: usize, s: usize, d: usize, p: usize, len: usize) -> Option<usize> {
    let num = (o + p) as isize - (k * d) as isize;
    if num < 0 || num % s as isize != 0 {
        return None;
    }
    let i = (num / s as isize) as usize;
    (i < len).then_some(i)
}

//@variant generic
/// Universal transposed convolution as a gather: each output sums the taps that reach it, so
/// bias and activation are applied once, with no scratch.
pub fn generic(
    p: &ConvTranspose2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    debug_assert_eq!(x.len(), p.n * p.c_in * p.h * p.w);
    debug_assert_eq!(w.len(), p.c_in * (p.c_out / p.groups) * p.kh * p.kw);
    debug_assert_eq!(y.len(), p.n * p.c_out * p.oh * p.ow);
    let (cg, og) = (p.c_in / p.groups, p.c_out / p.groups);
    let mut i = 0;
    for b in 0..p.n {
        for o in 0..p.c_out {
            let (g, oo) = (o / og, o % og);
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let mut s = bias.map_or(0.0, |bv| bv[o]);
                    for ky in 0..p.kh {
                        let Some(iy) = source(oy, ky, p.stride[0], p.dil[0], p.pad[0], p.h) else {
                            continue;
                        };
                        for kx in 0..p.kw {
                            let Some(ix) = source(ox, kx, p.stride[1], p.dil[1], p.pad[1], p.w)
                            else {
                                continue;
                            };
                            for ci in 0..cg {
                                let c = g * cg + ci;
                                s += x[((b * p.c_in + c) * p.h + iy) * p.w + ix]
                                    * w[((c * og + oo) * p.kh + ky) * p.kw + kx];
                            }
                        }
                    }
                    y[i] = act.apply(s);
                    i += 1;
                }
            }
        }
    }
}

/// Accepts every consistent transposed convolution.
pub fn generic_accepts(p: &ConvTranspose2d) -> bool {
    p.groups >= 1
        && p.c_in.is_multiple_of(p.groups)
        && p.c_out.is_multiple_of(p.groups)
        && p.stride[0] >= 1
        && p.stride[1] >= 1
        && p.dil[0] >= 1
        && p.dil[1] >= 1
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[super::meta::KernelInfo {
    name: "conv_transpose.generic",
    family: "conv_transpose",
    dtypes: &["f32"],
    isa: &[],
    shape: "any",
    speed: 0,
    code_bytes: 3662,
}];
//@end
