//! Nearest and bilinear resampling of the trailing spatial dims (1-d is 2-d with
//! `h = oh = 1`) of contiguous `[planes, h, w]` tensors.
//! Invariant: source indices and weights follow etpkg's interpreter (PyTorch's rules): nearest
//! takes `⌊o·in/out⌋`, bilinear computes its taps in f64 with or without `align_corners`.
#![forbid(unsafe_code)]

/// How to resample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nearest,
    Bilinear { align_corners: bool },
}

/// One resampling. `x` is `planes·h·w` elements, `y` is `planes·oh·ow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample2d {
    pub mode: Mode,
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

/// The two source indices and the weight of the second for output `o` along one dim.
#[inline]
fn linear_tap(o: usize, input: usize, output: usize, align_corners: bool) -> (usize, usize, f64) {
    let src = if align_corners {
        if output > 1 {
            o as f64 * (input - 1) as f64 / (output - 1) as f64
        } else {
            0.0
        }
    } else {
        let s = (o as f64 + 0.5) * input as f64 / output as f64 - 0.5;
        if s > 0.0 {
            s
        } else {
            0.0
        }
    };
    // `src` is non-negative, so truncation is floor.
    let i0 = (src as usize).min(input - 1);
    (i0, (i0 + 1).min(input - 1), src - i0 as f64)
}

//@variant generic
/// Universal resampling, one output at a time.
pub fn generic(p: &Upsample2d, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), p.planes * p.h * p.w);
    debug_assert_eq!(y.len(), p.planes * p.oh * p.ow);
    let (h, w) = (p.h, p.w);
    let mut i = 0;
    for plane in 0..p.planes {
        let xp = &x[plane * h * w..][..h * w];
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                y[i] = match p.mode {
                    Mode::Nearest => {
                        let sy = (oy * h / p.oh).min(h - 1);
                        let sx = (ox * w / p.ow).min(w - 1);
                        xp[sy * w + sx]
                    }
                    Mode::Bilinear { align_corners } => {
                        let (y0, y1, ly) = linear_tap(oy, h, p.oh, align_corners);
                        let (x0, x1, lx) = linear_tap(ox, w, p.ow, align_corners);
                        let v = |r: usize, c: usize| xp[r * w + c] as f64;
                        let top = (1.0 - lx) * v(y0, x0) + lx * v(y0, x1);
                        let bottom = (1.0 - lx) * v(y1, x0) + lx * v(y1, x1);
                        ((1.0 - ly) * top + ly * bottom) as f32
                    }
                };
                i += 1;
            }
        }
    }
}

/// Accepts every resampling of a non-empty input.
pub fn generic_accepts(p: &Upsample2d) -> bool {
    p.h >= 1 && p.w >= 1
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[super::meta::KernelInfo {
    name: "upsample.generic",
    family: "upsample",
    dtypes: &["f32"],
    isa: &[],
    shape: "any",
    speed: 0,
    code_bytes: 1825,
}];
//@end
