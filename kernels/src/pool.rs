//! Max and average pooling (1-d is 2-d with `h = kh = 1`), fixed-window or adaptive, over
//! contiguous `[planes, h, w]` tensors. Invariant: windows, divisors and NaN rules are those of
//! etpkg's interpreter (PyTorch's): max propagates NaN and ignores padding; average sums in f64
//! over in-bounds taps and divides by the override, the padded window size, or the tap count.
#![forbid(unsafe_code)]

/// Max or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// One pooling. `x` is `planes·h·w` elements, `y` is `planes·oh·ow`; `oh`/`ow` are the output
/// size the caller computed (including `ceil_mode`'s extra window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kind: PoolKind,
    /// `n·c` (or `c` for unbatched input).
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    /// Adaptive pooling: window i along a dim covers `[⌊i·in/out⌋, ⌈(i+1)·in/out⌉)`, and the
    /// fields below are ignored.
    pub adaptive: bool,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    /// Max only (average pooling has dilation 1).
    pub dil: [usize; 2],
    /// Avg only: padded positions count in the divisor.
    pub count_include_pad: bool,
    /// Avg only: a fixed divisor replacing the window size; 0 for none.
    pub divisor_override: usize,
}

/// The in-bounds input range `[lo, hi)` and the padded window size of window `o` along one dim
/// for average pooling.
#[inline]
fn avg_range(o: usize, k: usize, s: usize, p: usize, len: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((len + p) as isize);
    let lo = start.max(0);
    let hi = end.min(len as isize).max(lo);
    (lo as usize, hi as usize, (end - start).max(0) as usize)
}

/// Adaptive window `o` of `out` over `len` inputs.
#[inline]
fn adaptive_range(o: usize, out: usize, len: usize) -> (usize, usize) {
    (o * len / out, ((o + 1) * len).div_ceil(out))
}

//@variant generic
/// Universal pooling, one output at a time.
pub fn generic(p: &Pool2d, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), p.planes * p.h * p.w);
    debug_assert_eq!(y.len(), p.planes * p.oh * p.ow);
    let (h, w) = (p.h, p.w);
    let mut i = 0;
    for plane in 0..p.planes {
        let xp = &x[plane * h * w..][..h * w];
        for oy in 0..p.oh {
            for ox in 0..p.ow {
                y[i] = if p.adaptive {
                    let (y0, y1) = adaptive_range(oy, p.oh, h);
                    let (x0, x1) = adaptive_range(ox, p.ow, w);
                    let count = (y1 - y0) * (x1 - x0);
                    reduce(p.kind, xp, w, (y0, y1), (x0, x1), count as f64)
                } else if p.kind == PoolKind::Max {
                    let mut m = f32::NEG_INFINITY;
                    for ky in 0..p.kh {
                        let iy = (oy * p.stride[0] + ky * p.dil[0]) as isize - p.pad[0] as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        for kx in 0..p.kw {
                            let ix =
                                (ox * p.stride[1] + kx * p.dil[1]) as isize - p.pad[1] as isize;
                            if ix >= 0 && ix < w as isize {
                                let v = xp[iy as usize * w + ix as usize];
                                if v.is_nan() || v > m {
                                    m = v;
                                }
                                if m.is_nan() {
                                    break;
                                }
                            }
                        }
                    }
                    m
                } else {
                    let (y0, y1, ph) = avg_range(oy, p.kh, p.stride[0], p.pad[0], h);
                    let (x0, x1, pw) = avg_range(ox, p.kw, p.stride[1], p.pad[1], w);
                    let div = if p.divisor_override > 0 {
                        p.divisor_override
                    } else if p.count_include_pad {
                        ph * pw
                    } else {
                        (y1 - y0) * (x1 - x0)
                    };
                    reduce(PoolKind::Avg, xp, w, (y0, y1), (x0, x1), div as f64)
                };
                i += 1;
            }
        }
    }
}

/// Max (NaN-propagating, −inf when empty) or the f64 sum over `div` of a box of one plane.
fn reduce(
    kind: PoolKind,
    xp: &[f32],
    w: usize,
    (y0, y1): (usize, usize),
    (x0, x1): (usize, usize),
    div: f64,
) -> f32 {
    match kind {
        PoolKind::Max => {
            let mut m = f32::NEG_INFINITY;
            for iy in y0..y1 {
                for &v in &xp[iy * w + x0..iy * w + x1] {
                    if v.is_nan() || v > m {
                        m = v;
                    }
                    if m.is_nan() {
                        return m;
                    }
                }
            }
            m
        }
        PoolKind::Avg => {
            let mut s = 0f64;
            for iy in y0..y1 {
                for &v in &xp[iy * w + x0..iy * w + x1] {
                    s += v as f64;
                }
            }
            (s / div) as f32
        }
    }
}

/// Accepts every pooling with positive kernel, stride and dilation (any for adaptive).
pub fn generic_accepts(p: &Pool2d) -> bool {
    p.adaptive
        || (p.kh >= 1
            && p.kw >= 1
            && p.stride[0] >= 1
            && p.stride[1] >= 1
            && p.dil[0] >= 1
            && p.dil[1] >= 1
            && (p.kind == PoolKind::Max || p.dil == [1, 1]))
}
//@end

//@shared max3_avx512 max3_avx2
/// 3×3 max pooling with SIMD, a vector of output columns and several planes at once.
fn max3_simd<I: super::x86::Isa>(p: &Pool2d, x: &[f32], y: &mut [f32]) {
    let plane = super::x86::Plane {
        h: p.h,
        w: p.w,
        kh: p.kh,
        kw: p.kw,
        stride: p.stride,
        pad: p.pad,
        oh: p.oh,
        ow: p.ow,
    };
    let ohw = p.oh * p.ow;
    // Threads take blocks of planes; a small pooling stays on one thread.
    let per = if super::par::threads() > 1 && p.planes * ohw >= 2 * MAX3_MIN_TASK {
        super::par::block_width(p.planes, 1, 2)
    } else {
        p.planes.max(1)
    };
    let hw = p.h * p.w;
    super::par::for_each_chunk_mut(y, per * ohw, &|i, part| {
        let n = part.len() / ohw.max(1);
        super::x86::max_pool3::<I>(&plane, n, &x[i * per * hw..][..n * hw], part);
    });
}

/// Outputs per task below which a max pooling is not worth splitting.
const MAX3_MIN_TASK: usize = 32 * 1024;

/// Max pooling over a fixed 3×3 window, dilation 1, horizontal stride 1 or 2; the caller also
/// checks the extension.
fn max3_simd_accepts(p: &Pool2d) -> bool {
    p.kind == PoolKind::Max
        && !p.adaptive
        && p.kh == 3
        && p.kw == 3
        && p.dil == [1, 1]
        && p.stride[0] >= 1
        && (1..=2).contains(&p.stride[1])
}
//@end

//@variant max3_avx512
/// 3×3 max pooling with AVX-512, 16 output columns a vector (`max3_simd`).
pub fn max3_avx512(p: &Pool2d, x: &[f32], y: &mut [f32]) {
    max3_simd::<super::x86::Avx512>(p, x, y);
}

/// What `max3_simd` accepts; the caller also checks `super::x86::avx512()`.
pub fn max3_avx512_accepts(p: &Pool2d) -> bool {
    max3_simd_accepts(p)
}
//@end

//@variant max3_avx2
/// 3×3 max pooling with AVX2, 8 output columns a vector (`max3_simd`).
pub fn max3_avx2(p: &Pool2d, x: &[f32], y: &mut [f32]) {
    max3_simd::<super::x86::Avx2>(p, x, y);
}

/// What `max3_simd` accepts; the caller also checks `super::x86::avx2()`.
pub fn max3_avx2_accepts(p: &Pool2d) -> bool {
    max3_simd_accepts(p)
}
//@end

//@variant global_avg
/// Planes per task below which a global average is not worth splitting.
const GLOBAL_AVG_MIN_TASK: usize = 16 * 1024;

/// Global average pooling (adaptive to 1×1): each plane's f64 sum over its elements divided by
/// their count. Eight f64 partial sums per plane (lane `l` takes elements `l, l + 8, ...`) let
/// the compiler vectorize the sum, unlike one running sum; the order is fixed, so results do
/// not depend on the thread count. Threads take blocks of planes.
pub fn global_avg(p: &Pool2d, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), p.planes * p.h * p.w);
    debug_assert_eq!(y.len(), p.planes);
    let hw = p.h * p.w;
    let per = if super::par::threads() > 1 && p.planes * hw >= 2 * GLOBAL_AVG_MIN_TASK {
        super::par::block_width(p.planes, 1, 2)
    } else {
        p.planes.max(1)
    };
    super::par::for_each_chunk_mut(y, per, &|i, part| {
        for (j, out) in part.iter_mut().enumerate() {
            let plane = &x[(i * per + j) * hw..][..hw];
            let mut lanes = [0f64; 8];
            let mut chunks = plane.chunks_exact(8);
            for c in &mut chunks {
                for (l, v) in lanes.iter_mut().zip(c) {
                    *l += *v as f64;
                }
            }
            for (l, v) in lanes.iter_mut().zip(chunks.remainder()) {
                *l += *v as f64;
            }
            let s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
                + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
            *out = (s / hw as f64) as f32;
        }
    });
}

/// Adaptive average pooling to a 1×1 output over non-empty planes.
pub fn global_avg_accepts(p: &Pool2d) -> bool {
    p.kind == PoolKind::Avg && p.adaptive && p.oh == 1 && p.ow == 1 && p.h * p.w > 0
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`. The `_avx512` variants also count the `x86`
/// functions they reach (its tiles are inlined into them), since only they pull that code in;
/// `max3_avx2` likewise its `ymm` instances.
/// `par`, which `max3_avx512` and `global_avg` split through, is counted with the conv
/// variants (see `conv::VARIANTS`); a program without threads drops it at link time.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "pool.generic",
        family: "pool",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 3461,
    },
    super::meta::KernelInfo {
        name: "pool.max3_avx512",
        family: "pool",
        dtypes: &["f32"],
        isa: &["avx512f", "fma"],
        shape: "max, 3x3 window, dilation 1, horizontal stride 1 or 2",
        speed: 2,
        code_bytes: 9062,
    },
    super::meta::KernelInfo {
        name: "pool.max3_avx2",
        family: "pool",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "max, 3x3 window, dilation 1, horizontal stride 1 or 2",
        speed: 1,
        code_bytes: 8365,
    },
    super::meta::KernelInfo {
        name: "pool.global_avg",
        family: "pool",
        dtypes: &["f32"],
        isa: &[],
        shape: "average, adaptive to 1x1",
        speed: 1,
        code_bytes: 1590,
    },
];
//@end
