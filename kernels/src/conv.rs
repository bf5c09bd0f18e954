//! 2-d convolution (1-d is 2-d with `h = kh = 1`) over contiguous NCHW tensors, grouped,
//! strided, padded and dilated, with an optional bias and a fused activation.
//! Invariant: every variant computes `y[n, o, oy, ox] = act(bias[o] + Σ x·w)` over in-bounds
//! taps only, exactly as etpkg's interpreter, accumulating in f32.
//!
//! Slice lengths for every variant: `x` is `n·c_in·h·w`, `w` is `c_out·(c_in/groups)·kh·kw`,
//! `bias` (if any) is `c_out`, `y` is `n·c_out·oh·ow`.
#![forbid(unsafe_code)]

use super::act::Act;

/// Shape and attributes of one convolution. `oh`/`ow` are the output size the caller computed
/// (`(h + 2·pad − dil·(k − 1) − 1) / stride + 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    /// `[vertical, horizontal]`, as are `pad` and `dil`.
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub dil: [usize; 2],
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Conv2d {
    /// Whether groups, strides and dilations are consistent; every variant requires it.
    pub fn valid(&self) -> bool {
        self.groups >= 1
            && self.c_in.is_multiple_of(self.groups)
            && self.c_out.is_multiple_of(self.groups)
            && self.stride[0] >= 1
            && self.stride[1] >= 1
            && self.dil[0] >= 1
            && self.dil[1] >= 1
            && self.kh >= 1
            && self.kw >= 1
    }

    fn check_lens(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &[f32]) {
        debug_assert_eq!(x.len(), self.n * self.c_in * self.h * self.w);
        debug_assert_eq!(
            w.len(),
            self.c_out * (self.c_in / self.groups) * self.kh * self.kw
        );
        debug_assert!(bias.is_none_or(|b| b.len() == self.c_out));
        debug_assert_eq!(y.len(), self.n * self.c_out * self.oh * self.ow);
    }
}

/// The output columns `ox` whose input column `ox·s + off` lies in `[0, len)`, as a half-open
/// range (empty when none do). `off` is `k·dil − pad` and may be negative.
#[inline]
fn valid_range(off: isize, s: usize, len: usize, out: usize) -> (usize, usize) {
    let s = s as isize;
    // Smallest ox with ox·s + off >= 0.
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    // Largest ox with ox·s + off <= len − 1, plus one.
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let hi = hi.min(out as isize);
    let lo = lo.min(hi);
    (lo as usize, hi as usize)
}

/// Splits `act` into the clamp an AVX-512 GEMM epilogue applies in registers (`Relu` and
/// `Clamp` with ordered bounds) and what must still run over the stored output.
fn fused_clamp(act: Act) -> (Option<(f32, f32)>, Act) {
    match act {
        Act::Relu => (Some((0.0, f32::INFINITY)), Act::None),
        Act::Clamp { min, max } if !min.is_nan() && !max.is_nan() => (Some((min, max)), Act::None),
        other => (None, other),
    }
}

/// Multiply-adds below which a block of output is not worth handing to another thread: waking
/// a worker and sharing the inputs costs a few microseconds.
const MIN_TASK_FMAS: usize = 100_000;

/// Blocks per thread when an op is split: with several, a thread that the OS runs less (the
/// machine shared with other work) leaves unclaimed blocks to the others instead of holding
/// half the op.
const BLOCKS_PER_THREAD: usize = 4;

/// How many blocks the installed splitter's threads take: none extra on one thread, so the
/// single-thread path stays one call per op.
fn max_blocks(threads: usize, per_thread: usize) -> usize {
    if threads <= 1 {
        1
    } else {
        threads * per_thread
    }
}

/// How many blocks `rows` output rows (channels) costing `fmas` multiply-adds in all split
/// into: at most `blocks`, none below `MIN_TASK_FMAS`, none smaller than an `align`-row tile.
/// 1 when splitting does not pay. `par::tile_rows` then sizes the blocks.
fn row_tasks(rows: usize, fmas: usize, blocks: usize, align: usize) -> usize {
    blocks
        .min(fmas / MIN_TASK_FMAS)
        .min(rows.div_ceil(align.max(1)))
        .max(1)
}

/// 1×1 kernel, stride 1, no padding, one group: the output plane is the input plane.
fn is_pointwise(p: &Conv2d) -> bool {
    p.valid()
        && p.kh == 1
        && p.kw == 1
        && p.stride == [1, 1]
        && p.pad == [0, 0]
        && p.groups == 1
        && p.oh == p.h
        && p.ow == p.w
}

//@variant generic
/// Universal convolution: one output at a time, taps bounds-checked individually.
pub fn generic(p: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    p.check_lens(x, w, bias, y);
    let (cg, og) = (p.c_in / p.groups, p.c_out / p.groups);
    let mut i = 0;
    for b in 0..p.n {
        for o in 0..p.c_out {
            let g = o / og;
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let mut s = bias.map_or(0.0, |bv| bv[o]);
                    for ci in 0..cg {
                        let xc = (b * p.c_in + g * cg + ci) * p.h;
                        let wc = (o * cg + ci) * p.kh;
                        for ky in 0..p.kh {
                            let iy =
                                (oy * p.stride[0] + ky * p.dil[0]) as isize - p.pad[0] as isize;
                            if iy < 0 || iy >= p.h as isize {
                                continue;
                            }
                            for kx in 0..p.kw {
                                let ix =
                                    (ox * p.stride[1] + kx * p.dil[1]) as isize - p.pad[1] as isize;
                                if ix >= 0 && ix < p.w as isize {
                                    s += x[(xc + iy as usize) * p.w + ix as usize]
                                        * w[(wc + ky) * p.kw + kx];
                                }
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

/// Accepts every consistent convolution.
pub fn generic_accepts(p: &Conv2d) -> bool {
    p.valid()
}
//@end

//@variant pointwise
/// One `R × C` register tile of the pointwise GEMM: output channels `o..o+R`, pixels
/// `q..q+C` of one image plane, summed over all input channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pw_tile<const R: usize, const C: usize>(
    c_in: usize,
    hw: usize,
    xb: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    yb: &mut [f32],
    o: usize,
    q: usize,
    act: Act,
) {
    let mut acc = [[0f32; C]; R];
    for (r, row) in acc.iter_mut().enumerate() {
        *row = [bias.map_or(0.0, |b| b[o + r]); C];
    }
    for ci in 0..c_in {
        let xs = &xb[ci * hw + q..ci * hw + q + C];
        for (r, row) in acc.iter_mut().enumerate() {
            let wv = w[(o + r) * c_in + ci];
            for (a, &xv) in row.iter_mut().zip(xs) {
                *a += wv * xv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let out = &mut yb[(o + r) * hw + q..(o + r) * hw + q + C];
        for (d, &v) in out.iter_mut().zip(row) {
            *d = act.apply(v);
        }
    }
}

/// 1×1 convolution as a register-blocked GEMM `y[o, q] = Σ w[o, c]·x[c, q]`: 4 output channels
/// × 16 pixels of accumulators, pixel blocks outermost so each block of `x` stays in L1 while
/// every output channel reads it.
pub fn pointwise(p: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    p.check_lens(x, w, bias, y);
    const R: usize = 4;
    const C: usize = 16;
    let hw = p.h * p.w;
    for b in 0..p.n {
        let xb = &x[b * p.c_in * hw..(b + 1) * p.c_in * hw];
        let yb = &mut y[b * p.c_out * hw..(b + 1) * p.c_out * hw];
        let (o_full, q_full) = (p.c_out / R * R, hw / C * C);
        let mut q = 0;
        while q < q_full {
            let mut o = 0;
            while o < o_full {
                pw_tile::<R, C>(p.c_in, hw, xb, w, bias, yb, o, q, act);
                o += R;
            }
            while o < p.c_out {
                pw_tile::<1, C>(p.c_in, hw, xb, w, bias, yb, o, q, act);
                o += 1;
            }
            q += C;
        }
        while q < hw {
            let mut o = 0;
            while o < o_full {
                pw_tile::<R, 1>(p.c_in, hw, xb, w, bias, yb, o, q, act);
                o += R;
            }
            while o < p.c_out {
                pw_tile::<1, 1>(p.c_in, hw, xb, w, bias, yb, o, q, act);
                o += 1;
            }
            q += 1;
        }
    }
}

/// 1×1 kernel, stride 1, no padding, one group.
pub fn pointwise_accepts(p: &Conv2d) -> bool {
    is_pointwise(p)
}
//@end

//@variant depthwise
/// Depthwise convolution (one input channel per output channel), any kernel: each tap adds
/// `w·x` to a whole output row over the columns where it is in bounds, so the inner loop is a
/// branch-free axpy that vectorizes for stride 1.
pub fn depthwise(p: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    p.check_lens(x, w, bias, y);
    let (sy, sx) = (p.stride[0], p.stride[1]);
    for b in 0..p.n {
        for c in 0..p.c_out {
            let xp = &x[(b * p.c_in + c) * p.h * p.w..][..p.h * p.w];
            let wp = &w[c * p.kh * p.kw..][..p.kh * p.kw];
            let yp = &mut y[(b * p.c_out + c) * p.oh * p.ow..][..p.oh * p.ow];
            let bv = bias.map_or(0.0, |bv| bv[c]);
            for oy in 0..p.oh {
                let row = &mut yp[oy * p.ow..(oy + 1) * p.ow];
                row.fill(bv);
                for ky in 0..p.kh {
                    let iy = (oy * sy + ky * p.dil[0]) as isize - p.pad[0] as isize;
                    if iy < 0 || iy >= p.h as isize {
                        continue;
                    }
                    let xr = &xp[iy as usize * p.w..][..p.w];
                    for kx in 0..p.kw {
                        let wv = wp[ky * p.kw + kx];
                        let off = (kx * p.dil[1]) as isize - p.pad[1] as isize;
                        let (lo, hi) = valid_range(off, sx, p.w, p.ow);
                        if lo >= hi {
                            continue;
                        }
                        let start = (lo as isize * sx as isize + off) as usize;
                        if sx == 1 {
                            let xs = &xr[start..start + (hi - lo)];
                            for (d, &v) in row[lo..hi].iter_mut().zip(xs) {
                                *d += wv * v;
                            }
                        } else {
                            for (j, d) in row[lo..hi].iter_mut().enumerate() {
                                *d += wv * xr[start + j * sx];
                            }
                        }
                    }
                }
                act.apply_slice(row);
            }
        }
    }
}

/// Groups equal to both channel counts (channel multiplier 1).
pub fn depthwise_accepts(p: &Conv2d) -> bool {
    p.valid() && p.groups == p.c_in && p.groups == p.c_out
}
//@end

//@variant direct
/// Direct convolution blocked over 4 output channels: each tap's input row segment is loaded
/// once and accumulated into 4 output rows, with in-bounds column ranges computed per tap so the
/// inner loop has no branches. Needs no scratch.
pub fn direct(p: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    p.check_lens(x, w, bias, y);
    const R: usize = 4;
    let (cg, og) = (p.c_in / p.groups, p.c_out / p.groups);
    let (sy, sx) = (p.stride[0], p.stride[1]);
    let (ohw, kk) = (p.oh * p.ow, p.kh * p.kw);
    for b in 0..p.n {
        for g in 0..p.groups {
            let mut o = g * og;
            while o < (g + 1) * og {
                let r = R.min((g + 1) * og - o);
                let yo = &mut y[(b * p.c_out + o) * ohw..(b * p.c_out + o + r) * ohw];
                for oy in 0..p.oh {
                    for j in 0..r {
                        let row = &mut yo[j * ohw + oy * p.ow..][..p.ow];
                        row.fill(bias.map_or(0.0, |bv| bv[o + j]));
                    }
                    for ci in 0..cg {
                        let xp = &x[(b * p.c_in + g * cg + ci) * p.h * p.w..][..p.h * p.w];
                        for ky in 0..p.kh {
                            let iy = (oy * sy + ky * p.dil[0]) as isize - p.pad[0] as isize;
                            if iy < 0 || iy >= p.h as isize {
                                continue;
                            }
                            let xr = &xp[iy as usize * p.w..][..p.w];
                            for kx in 0..p.kw {
                                let off = (kx * p.dil[1]) as isize - p.pad[1] as isize;
                                let (lo, hi) = valid_range(off, sx, p.w, p.ow);
                                if lo >= hi {
                                    continue;
                                }
                                let start = (lo as isize * sx as isize + off) as usize;
                                let mut wv = [0f32; R];
                                for (j, v) in wv.iter_mut().enumerate().take(r) {
                                    *v = w[((o + j) * cg + ci) * kk + ky * p.kw + kx];
                                }
                                if r == R {
                                    let (y0, rest) = yo.split_at_mut(ohw);
                                    let (y1, rest) = rest.split_at_mut(ohw);
                                    let (y2, y3) = rest.split_at_mut(ohw);
                                    let base = oy * p.ow;
                                    let (y0, y1, y2, y3) = (
                                        &mut y0[base + lo..base + hi],
                                        &mut y1[base + lo..base + hi],
                                        &mut y2[base + lo..base + hi],
                                        &mut y3[base + lo..base + hi],
                                    );
                                    if sx == 1 {
                                        let xs = &xr[start..start + (hi - lo)];
                                        for i in 0..xs.len() {
                                            let v = xs[i];
                                            y0[i] += wv[0] * v;
                                            y1[i] += wv[1] * v;
                                            y2[i] += wv[2] * v;
                                            y3[i] += wv[3] * v;
                                        }
                                    } else {
                                        for i in 0..y0.len() {
                                            let v = xr[start + i * sx];
                                            y0[i] += wv[0] * v;
                                            y1[i] += wv[1] * v;
                                            y2[i] += wv[2] * v;
                                            y3[i] += wv[3] * v;
                                        }
                                    }
                                } else {
                                    for (j, &wj) in wv.iter().enumerate().take(r) {
                                        let row = &mut yo[j * ohw + oy * p.ow..][lo..hi];
                                        for (i, d) in row.iter_mut().enumerate() {
                                            *d += wj * xr[start + i * sx];
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for j in 0..r {
                        act.apply_slice(&mut yo[j * ohw + oy * p.ow..][..p.ow]);
                    }
                }
                o += r;
            }
        }
    }
}

/// Accepts every consistent convolution.
pub fn direct_accepts(p: &Conv2d) -> bool {
    p.valid()
}
//@end

//@shared pointwise_avx512 pointwise_avx2
/// 1×1 convolution as one SIMD GEMM per image, `y[o, q] = Σ w[o, c]·x[c, q]`, reading x's
/// rows in place; ReLU and clamps run in registers before the store.
fn pointwise_simd<I: super::x86::Isa>(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    p.check_lens(x, w, bias, y);
    let hw = p.h * p.w;
    let (clamp, rest) = fused_clamp(act);
    let fmas = p.c_out * p.c_in * hw;
    // The AVX2 GEMM packs all of x into panels for every call, so a block of a channel split
    // should have rows enough to pay for that: with four blocks a thread whatever their size,
    // the 14×14 projections of mobilenet_v2 (96 rows) ran slower on two threads than on one.
    // Eight row tiles a block, and at most `BLOCKS_PER_THREAD` blocks a thread.
    let threads = super::par::threads();
    let row_blocks = p.c_out / (8 * 6 * threads);
    let per_thread = if I::WIDE {
        BLOCKS_PER_THREAD
    } else {
        row_blocks.clamp(1, BLOCKS_PER_THREAD)
    };
    let blocks = max_blocks(threads, per_thread);
    let rows = super::par::tile_rows(p.c_out, 6, row_tasks(p.c_out, fmas, blocks, 6));
    // Split the pixels when the planes are wide enough for it: every thread then reads only
    // its own columns of x, which the op before it (split the same way) left in its own cache,
    // instead of all of x (megabytes in the early layers). Narrow planes split the channels,
    // except, with AVX2, when there are too few of them for two blocks a thread (the 14×14
    // projections of mobilenet_v2): one block a thread, each packing all of x, left a thread
    // that the OS ran less holding up the other; blocks of 16 pixels (one GEMM tile wide) pack
    // no column twice and let the faster thread take more of them.
    let wide = super::par::pixel_blocks(hw);
    let narrow = (!I::WIDE && threads > 1 && row_blocks < 2 && hw >= 64 * threads)
        .then(|| super::par::block_width(hw, 16, BLOCKS_PER_THREAD));
    let pixel_cols = wide.or(narrow).filter(|_| fmas >= 2 * MIN_TASK_FMAS);
    for b in 0..p.n {
        let xb = &x[b * p.c_in * hw..(b + 1) * p.c_in * hw];
        let yb = &mut y[b * p.c_out * hw..(b + 1) * p.c_out * hw];
        if let Some(cols) = pixel_cols {
            super::par::for_each_col_block_mut(yb, hw, cols, &|_, block| {
                let g = super::x86::Gemm {
                    m: p.c_out,
                    n: block.end() - block.start(),
                    k: p.c_in,
                    a: w,
                    lda: p.c_in,
                    b: &xb[block.start()..],
                    ldb: hw,
                    ldc: hw,
                    init: bias.map_or(super::x86::Init::Zero, super::x86::Init::Bias),
                    clamp,
                    dots: super::x86::tail_dots(hw, block.start(), block.end() - block.start()),
                };
                let at = block.start();
                super::x86::gemm_block::<I>(&g, block, at);
                for r in 0..p.c_out {
                    rest.apply_slice(block.row(r));
                }
            });
            continue;
        }
        // Each block of output channels is a GEMM of its own over the same x.
        super::par::for_each_chunk_mut(yb, rows * hw, &|i, yc| {
            let o0 = i * rows;
            let g = super::x86::Gemm {
                m: yc.len() / hw,
                n: hw,
                k: p.c_in,
                a: &w[o0 * p.c_in..],
                lda: p.c_in,
                b: xb,
                ldb: hw,
                ldc: hw,
                init: bias.map_or(super::x86::Init::Zero, |bv| {
                    super::x86::Init::Bias(&bv[o0..])
                }),
                clamp,
                dots: super::x86::tail_dots(hw, 0, hw),
            };
            super::x86::gemm::<I>(&g, yc);
            rest.apply_slice(yc);
        });
    }
}

/// What `pointwise` accepts; the caller also checks the extension.
fn pointwise_simd_accepts(p: &Conv2d) -> bool {
    is_pointwise(p) && p.c_in >= 1
}
//@end

//@variant pointwise_avx512
/// 1×1 convolution as one AVX-512 GEMM per image (`pointwise_simd`).
pub fn pointwise_avx512(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    pointwise_simd::<super::x86::Avx512>(p, x, w, bias, y, act);
}

/// What `pointwise` accepts; the caller also checks `super::x86::avx512()`.
pub fn pointwise_avx512_accepts(p: &Conv2d) -> bool {
    pointwise_simd_accepts(p)
}
//@end

//@variant pointwise_avx2
/// 1×1 convolution as one AVX2 GEMM per image (`pointwise_simd`).
pub fn pointwise_avx2(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    pointwise_simd::<super::x86::Avx2>(p, x, w, bias, y, act);
}

/// What `pointwise` accepts; the caller also checks `super::x86::avx2()`.
pub fn pointwise_avx2_accepts(p: &Conv2d) -> bool {
    pointwise_simd_accepts(p)
}
//@end

//@shared depthwise_avx512 depthwise_avx2
/// One channel plane's geometry, as `x86::depthwise` takes it.
fn plane_of(p: &Conv2d) -> super::x86::Plane {
    super::x86::Plane {
        h: p.h,
        w: p.w,
        kh: p.kh,
        kw: p.kw,
        stride: p.stride,
        pad: p.pad,
        oh: p.oh,
        ow: p.ow,
    }
}

/// Depthwise convolution, one SIMD pass per channel plane: a vector of output columns at a
/// time, every tap a masked load (stride 2 keeps the even lanes of two loads), so borders need
/// no separate code.
fn depthwise_simd<I: super::x86::Isa>(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    p.check_lens(x, w, bias, y);
    let (clamp, rest) = fused_clamp(act);
    let plane = plane_of(p);
    let (hw, ohw, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    let (chw, cohw) = (p.c_in * hw, p.c_out * ohw);
    let blocks = max_blocks(super::par::threads(), BLOCKS_PER_THREAD);
    let chans = super::par::tile_rows(p.c_out, 8, row_tasks(p.c_out, cohw * kk, blocks, 8));
    for b in 0..p.n {
        let yb = &mut y[b * cohw..][..cohw];
        let xb = &x[b * chw..][..chw];
        // Channels are independent: each block of 8-channel groups is a pass of its own. (Bands
        // of output rows, to keep each thread on the pixels the 1×1 convolution before wrote,
        // were slower in the model as well as alone: 1.1× against 1.5× on two threads for 192
        // channels of 28×28.)
        super::par::for_each_chunk_mut(yb, chans * ohw, &|i, yc| {
            let (c0, n) = (i * chans, yc.len() / ohw);
            let bias = bias.map(|bv| &bv[c0..c0 + n]);
            let (xc, wc) = (&xb[c0 * hw..(c0 + n) * hw], &w[c0 * kk..(c0 + n) * kk]);
            super::x86::depthwise::<I>(&plane, n, xc, wc, bias, yc, clamp);
            rest.apply_slice(yc);
        });
    }
}

/// Depthwise (groups = c_in = c_out), dilation 1, horizontal stride 1 or 2; the caller also
/// checks the extension.
fn depthwise_simd_accepts(p: &Conv2d) -> bool {
    p.valid()
        && p.groups == p.c_in
        && p.groups == p.c_out
        && p.dil == [1, 1]
        && plane_of(p).supported()
}
//@end

//@variant depthwise_avx512
/// Depthwise convolution with AVX-512, 16 output columns a vector (`depthwise_simd`).
pub fn depthwise_avx512(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    depthwise_simd::<super::x86::Avx512>(p, x, w, bias, y, act);
}

/// What `depthwise_simd` accepts; the caller also checks `super::x86::avx512()`.
pub fn depthwise_avx512_accepts(p: &Conv2d) -> bool {
    depthwise_simd_accepts(p)
}
//@end

//@variant depthwise_avx2
/// Depthwise convolution with AVX2, 8 output columns a vector (`depthwise_simd`).
pub fn depthwise_avx2(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    depthwise_simd::<super::x86::Avx2>(p, x, w, bias, y, act);
}

/// What `depthwise_simd` accepts; the caller also checks `super::x86::avx2()`.
pub fn depthwise_avx2_accepts(p: &Conv2d) -> bool {
    depthwise_simd_accepts(p)
}
//@end

//@variant stem_avx2
/// The stem's geometry as `x86::stem_avx2` takes it.
fn stem_of(p: &Conv2d) -> super::x86::Stem {
    super::x86::Stem {
        c_in: p.c_in,
        h: p.h,
        w: p.w,
        c_out: p.c_out,
        pad: p.pad,
        oh: p.oh,
        ow: p.ow,
    }
}

/// A network's first convolution — 3×3, stride 2, at most 4 input channels (an image) —
/// computed directly with AVX2 (`x86::stem_avx2`), blocks of output channels split across
/// threads, as the depthwise convolution after it in mobilenet_v2 splits them: with bands of
/// output rows, each thread's channel planes were half written by the other thread, and that
/// convolution took 1.03–1.45× its time on two threads. Through im2col, the 27-row panel was
/// copied twice (built, then packed for the GEMM) for only 27 multiply-adds an output;
/// directly, the first layer of mobilenet_v2 took 0.62–0.71 of the time.
pub fn stem_avx2(p: &Conv2d, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    p.check_lens(x, w, bias, y);
    let (clamp, rest) = fused_clamp(act);
    let (chw, ohw) = (p.c_in * p.h * p.w, p.oh * p.ow);
    let kk = p.c_in * 9;
    let blocks = max_blocks(super::par::threads(), BLOCKS_PER_THREAD);
    // Blocks of 16 channels: each block splits the input rows again. At two threads, blocks of
    // 8 took the layer's share of mobilenet_v2 to 0.95 of im2col's, blocks of 16 to 0.86.
    let chans = super::par::tile_rows(
        p.c_out,
        16,
        row_tasks(p.c_out, p.c_out * ohw * kk, blocks, 16),
    );
    for b in 0..p.n {
        let xb = &x[b * chw..][..chw];
        let yb = &mut y[b * p.c_out * ohw..][..p.c_out * ohw];
        super::par::for_each_chunk_mut(yb, chans * ohw, &|i, yc| {
            let (c0, n) = (i * chans, yc.len() / ohw);
            let stem = super::x86::Stem {
                c_out: n,
                ..stem_of(p)
            };
            let bias = bias.map(|bv| &bv[c0..c0 + n]);
            super::x86::stem_avx2(&stem, xb, &w[c0 * kk..(c0 + n) * kk], bias, yc, clamp);
            rest.apply_slice(yc);
        });
    }
}

/// 3×3 kernel, stride 2, dilation 1, one group, 1 to 4 input channels, padding 0 or 1; the
/// caller also checks `super::x86::avx2()`.
pub fn stem_avx2_accepts(p: &Conv2d) -> bool {
    p.valid()
        && p.groups == 1
        && (p.kh, p.kw) == (3, 3)
        && p.stride == [2, 2]
        && p.dil == [1, 1]
        && stem_of(p).supported()
}
//@end

//@shared im2col_avx512 im2col_avx2
/// Most rows of the im2col panel per GEMM call: each call adds up to 288 taps to C. The taps
/// are cut into equal chunks (`im2col_kc`), so 3×3 convolutions of 64 and 128 channels take 2
/// and 4 passes over C instead of 3 and 5 with a short last one.
const IM2COL_KC: usize = 288;

/// Taps per GEMM call for `kdim` taps: equal chunks of at most `IM2COL_KC`, rounded up to 8.
fn im2col_kc(kdim: usize) -> usize {
    let chunks = kdim.div_ceil(IM2COL_KC).max(1);
    (kdim.div_ceil(chunks).div_ceil(8) * 8).min(IM2COL_KC)
}
/// Output pixels per panel.
const IM2COL_NC: usize = 128;
/// The panel's row stride: 16 floats past the 128 used, so consecutive rows do not fall into
/// the same L1 sets.
const IM2COL_LDB: usize = IM2COL_NC + 16;

/// Runs `f` on the first `rows` rows of a zeroed, 64-byte aligned panel (so that B's rows start
/// on cache lines) on the stack: only those rows are zeroed. Zeroing all 288 (166 KB) was 2% of
/// a 27-tap convolution's time (perf, mobilenet_v2's first layer) with one panel a call, and
/// every pixel block of a split zeroes a panel of its own.
fn with_panel(rows: usize, f: impl FnOnce(&mut [f32])) {
    const _: () = assert!(IM2COL_KC * IM2COL_LDB <= super::x86::SCRATCH);
    super::x86::with_zeroed(rows.min(IM2COL_KC) * IM2COL_LDB, f);
}

/// Fills `panel` rows `0..kc` with im2col rows `k0..k0 + kc` (tap `k = (ci·kh + ky)·kw + kx`)
/// for output pixels `n0..n0 + nc` (at most `IM2COL_NC`) of one group's input planes `xg`;
/// taps outside the input are zeros.
#[allow(clippy::too_many_arguments)]
fn im2col_pack<I: super::x86::Isa>(
    p: &Conv2d,
    xg: &[f32],
    k0: usize,
    kc: usize,
    n0: usize,
    nc: usize,
    panel: &mut [f32],
    ldb: usize,
) {
    // The panel's pixels fall into the same output-row segments `(j, oy, ox, run)` for every
    // tap, so they are found once here, not once per tap: on 7×7 planes, finding them (two
    // divisions each) cost more than the copies.
    let mut segs = [(0usize, 0usize, 0usize, 0usize); IM2COL_NC];
    let mut count = 0;
    let mut j = 0;
    // At most `IM2COL_NC` pixels, at least one a segment: the table never overflows.
    while j < nc {
        let q = n0 + j;
        let (oy, ox) = (q / p.ow, q % p.ow);
        let run = (p.ow - ox).min(nc - j);
        segs[count] = (j, oy, ox, run);
        count += 1;
        j += run;
    }
    let kk = p.kh * p.kw;
    let sx = p.stride[1];
    for r in 0..kc {
        let k = k0 + r;
        let (ci, t) = (k / kk, k % kk);
        let (ky, kx) = (t / p.kw, t % p.kw);
        let plane = &xg[ci * p.h * p.w..][..p.h * p.w];
        let offx = (kx * p.dil[1]) as isize - p.pad[1] as isize;
        let (lo, hi) = valid_range(offx, sx, p.w, p.ow);
        let dst = &mut panel[r * ldb..r * ldb + nc];
        for &(j, oy, ox, run) in &segs[..count] {
            let seg = &mut dst[j..j + run];
            let iy = (oy * p.stride[0] + ky * p.dil[0]) as isize - p.pad[0] as isize;
            if iy < 0 || iy >= p.h as isize {
                seg.fill(0.0);
                continue;
            }
            let xr = &plane[iy as usize * p.w..][..p.w];
            if sx == 1 && run >= 32 {
                // Long rows (56 wide and up): a copy call and the border fills beat masked
                // vectors by a few percent.
                let a = lo.clamp(ox, ox + run);
                let b = hi.clamp(a, ox + run);
                seg[..a - ox].fill(0.0);
                seg[b - ox..].fill(0.0);
                let first = (a as isize + offx) as usize;
                seg[a - ox..b - ox].copy_from_slice(&xr[first..first + (b - a)]);
            } else if sx <= 2 {
                // Masked vector loads and stores, the padding included: no copy call per row.
                super::x86::gather_row::<I>(seg, xr, (ox * sx) as isize + offx, sx);
            } else {
                for (i, d) in seg.iter_mut().enumerate() {
                    let ix = ((ox + i) * sx) as isize + offx;
                    *d = if ix >= 0 && ix < p.w as isize {
                        xr[ix as usize]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// Any convolution as SIMD GEMMs: per group, the weights `[o, ci·kh·kw]` times im2col panels
/// of 128 output pixels × up to 288 taps built on the stack, accumulating into y. Split over threads
/// by blocks of output pixels.
fn im2col_simd<I: super::x86::Isa>(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    p.check_lens(x, w, bias, y);
    let (cg, og) = (p.c_in / p.groups, p.c_out / p.groups);
    let kdim = cg * p.kh * p.kw;
    let step = im2col_kc(kdim);
    let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
    let (clamp, rest) = fused_clamp(act);
    // Threads take blocks of output columns (pixels): each packs only its own panels, so no
    // packing is repeated, and writes its columns of y in place.
    let blocks = max_blocks(super::par::threads(), BLOCKS_PER_THREAD)
        .min(ohw.div_ceil(IM2COL_NC))
        .min(og * kdim * ohw / MIN_TASK_FMAS)
        .max(1);
    // Too few pixels for two column blocks (late layers: 7×7 outputs, hundreds of channels):
    // blocks of at least 24 output channels instead, each repeating the (then small) packing.
    let row_blocks = if blocks > 1 {
        1
    } else {
        max_blocks(super::par::threads(), 1).min(og / 24).max(1)
    };
    let rows = super::par::tile_rows(og, 6, row_tasks(og, og * kdim * ohw, row_blocks, 6));
    for b in 0..p.n {
        for g in 0..p.groups {
            let xg = &x[(b * p.c_in + g * cg) * hw..][..cg * hw];
            let wg = &w[g * og * kdim..][..og * kdim];
            let yg = &mut y[(b * p.c_out + g * og) * ohw..][..og * ohw];
            let init0 = || {
                bias.map_or(super::x86::Init::Zero, |bv| {
                    super::x86::Init::Bias(&bv[g * og..(g + 1) * og])
                })
            };
            if blocks == 1 {
                // Blocks of output channels (one, when not split): each packs every panel.
                super::par::for_each_chunk_mut(yg, rows * ohw, &|i, yc| {
                    let (o0, m) = (i * rows, yc.len() / ohw);
                    with_panel(step, |panel| {
                        let mut n0 = 0;
                        while n0 < ohw {
                            let nc = IM2COL_NC.min(ohw - n0);
                            let mut k0 = 0;
                            while k0 < kdim {
                                let kc = step.min(kdim - k0);
                                im2col_pack::<I>(p, xg, k0, kc, n0, nc, panel, IM2COL_LDB);
                                let init = if k0 > 0 {
                                    super::x86::Init::Load
                                } else {
                                    bias.map_or(super::x86::Init::Zero, |bv| {
                                        super::x86::Init::Bias(&bv[g * og + o0..g * og + o0 + m])
                                    })
                                };
                                let gm = super::x86::Gemm {
                                    m,
                                    n: nc,
                                    k: kc,
                                    a: &wg[o0 * kdim + k0..],
                                    lda: kdim,
                                    b: &panel[..(kc - 1) * IM2COL_LDB + nc],
                                    ldb: IM2COL_LDB,
                                    ldc: ohw,
                                    init,
                                    clamp: if k0 + kc == kdim { clamp } else { None },
                                    dots: super::x86::tail_dots(ohw, n0, nc),
                                };
                                super::x86::gemm::<I>(&gm, &mut yc[n0..]);
                                k0 += kc;
                            }
                            n0 += nc;
                        }
                    });
                    rest.apply_slice(yc);
                });
                continue;
            }
            // Blocks balanced across the threads, so that they finish together: rounding
            // blocks up to whole panels left one thread a third more work on 28×28 planes, and
            // whole cache lines an eighth more on 14×14 ones (see `par::column_align`). Each block is
            // then cut into equal panels.
            let cols =
                super::par::block_width(ohw, super::par::column_align(ohw), BLOCKS_PER_THREAD);
            super::par::for_each_col_block_mut(yg, ohw, cols, &|_, block| {
                with_panel(step, |panel| {
                    let width = block.end() - block.start();
                    let per_panel = width.div_ceil(width.div_ceil(IM2COL_NC)).div_ceil(16) * 16;
                    let mut n0 = block.start();
                    while n0 < block.end() {
                        let nc = per_panel.min(block.end() - n0);
                        let mut k0 = 0;
                        while k0 < kdim {
                            let kc = step.min(kdim - k0);
                            im2col_pack::<I>(p, xg, k0, kc, n0, nc, panel, IM2COL_LDB);
                            let gm = super::x86::Gemm {
                                m: og,
                                n: nc,
                                k: kc,
                                a: &wg[k0..],
                                lda: kdim,
                                b: &panel[..(kc - 1) * IM2COL_LDB + nc],
                                ldb: IM2COL_LDB,
                                ldc: ohw,
                                init: if k0 > 0 {
                                    super::x86::Init::Load
                                } else {
                                    init0()
                                },
                                clamp: if k0 + kc == kdim { clamp } else { None },
                                dots: super::x86::tail_dots(ohw, n0, nc),
                            };
                            super::x86::gemm_block::<I>(&gm, block, n0);
                            k0 += kc;
                        }
                        n0 += nc;
                    }
                });
                for r in 0..og {
                    rest.apply_slice(block.row(r));
                }
            });
        }
    }
}

/// Every consistent convolution with at least one tap per output; the caller also checks the
/// extension.
fn im2col_simd_accepts(p: &Conv2d) -> bool {
    p.valid() && p.c_in >= 1
}
//@end

//@variant im2col_avx512
/// Any convolution as AVX-512 GEMMs over im2col panels (`im2col_simd`).
pub fn im2col_avx512(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    im2col_simd::<super::x86::Avx512>(p, x, w, bias, y, act);
}

/// What `im2col_simd` accepts; the caller also checks `super::x86::avx512()`.
pub fn im2col_avx512_accepts(p: &Conv2d) -> bool {
    im2col_simd_accepts(p)
}
//@end

//@variant im2col_avx2
/// Any convolution as AVX2 GEMMs over im2col panels (`im2col_simd`).
pub fn im2col_avx2(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    im2col_simd::<super::x86::Avx2>(p, x, w, bias, y, act);
}

/// What `im2col_simd` accepts; the caller also checks `super::x86::avx2()`.
pub fn im2col_avx2_accepts(p: &Conv2d) -> bool {
    im2col_simd_accepts(p)
}
//@end

//@shared winograd_avx512 winograd_avx2
/// Floats of a block's transformed input (16 positions × the input channels × `ldt`): 512 KiB,
/// which stays in L2 while every block of output channels passes over it.
const WINO_V: usize = 1 << 17;
/// Floats of a block of transformed weights (16 positions × `mb` rows × the input channels):
/// 256 KiB.
const WINO_U: usize = 1 << 16;
/// Most output channels per block of transformed weights: four row tiles of the AVX-512 GEMM.
const WINO_MB: usize = 24;
/// Most tiles per block.
const WINO_TB: usize = 128;
/// The fewest tiles per block, unless the block is the whole plane: with fewer, the GEMMs are
/// too narrow to pay for the transforms (14×14 planes of 256 channels took 1.5× the im2col
/// path's time in blocks of 28 tiles).
const WINO_MIN_TB: usize = 32;
/// Floats of the GEMM results of one block (16 positions × `WINO_MB` × the largest `ldt`).
const WINO_M: usize = 16 * WINO_MB * (WINO_TB + 16);
const _: () = assert!(WINO_V + WINO_U + WINO_M <= super::x86::PARTS);

/// The geometry of a Winograd F(2×2, 3×3) convolution: `th × tw` tiles of 2×2 outputs, cut
/// into blocks of `rows` tile rows and blocks of `mb` output channels. `ldt` is the row
/// stride of a block's transformed tiles and of its GEMM results: the block's tiles rounded up
/// to 16, and 16 more, so that the transforms may load and store whole groups of 16 tiles past
/// the last one.
#[derive(Clone, Copy)]
struct Wino {
    th: usize,
    tw: usize,
    rows: usize,
    ldt: usize,
    mb: usize,
    /// Input channels per chunk: all of them when a block's transformed input fits the buffer
    /// whole. Otherwise each chunk's products are transformed into outputs and added to those
    /// of the chunks before (the output transform is linear), so that no chunk's input is
    /// transformed twice.
    kc: usize,
}

/// `ldt` for blocks of `tiles` tiles.
fn wino_ldt(tiles: usize) -> usize {
    tiles.div_ceil(16) * 16 + 16
}

/// `p`'s Winograd geometry, or None when its blocks would not fit the buffers or be too small.
fn wino_of(p: &Conv2d) -> Option<Wino> {
    let (th, tw) = (p.oh.div_ceil(2), p.ow.div_ceil(2));
    if tw == 0 || th == 0 || p.c_in == 0 || tw > WINO_TB {
        return None;
    }
    let fits = |rows: usize, kc: usize| {
        (16 * kc)
            .checked_mul(wino_ldt(rows * tw))
            .is_some_and(|v| v <= WINO_V)
    };
    let most = th.min(WINO_TB / tw);
    let (rows, kc) = match (1..=most).rev().find(|&r| fits(r, p.c_in)) {
        Some(r) if r * tw >= WINO_MIN_TB || r == th => (r, p.c_in),
        // Blocks of all input channels would be too small (14×14 planes of 256 channels):
        // the largest blocks instead, in chunks of input channels (whole vectors of them).
        _ => {
            let kc = (WINO_V / (16 * wino_ldt(most * tw))) / 16 * 16;
            (kc >= 16).then_some((most, kc.min(p.c_in)))?
        }
    };
    let mb = (WINO_U / (16 * kc)).min(WINO_MB).min(p.c_out);
    (mb >= 1 && (rows * tw >= WINO_MIN_TB || rows == th)).then_some(Wino {
        th,
        tw,
        rows,
        ldt: wino_ldt(rows * tw),
        mb,
        kc,
    })
}

/// Rows of Winograd's kernel transform G: position `ξ = 4i + j` of a kernel g is
/// `Σ G[i][ky]·G[j][kx]·g[ky][kx]`.
const WINO_G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Transforms the 3×3 kernels of output channels `o0..o0 + mb` and input channels
/// `ci0..ci0 + ci_n` into `u`: position `ξ` of channel pair `(o, ci)` lands at
/// `u[(ξ·mb + o − o0)·ci_n + ci − ci0]`, so that each position is a row-major `mb × ci_n`
/// matrix (`G g Gᵀ`). Each kernel's 16 positions are one vector of
/// products with the coefficients; sixteen input channels' vectors are then transposed, so that
/// each position's sixteen channels are stored at once.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn wino_weights<I: super::x86::Isa>(
    p: &Conv2d,
    w: &[f32],
    o0: usize,
    mb: usize,
    ci0: usize,
    ci_n: usize,
    u: &mut [f32],
) {
    let coef: [[f32; 16]; 9] = core::array::from_fn(|t| {
        core::array::from_fn(|xi| WINO_G[xi / 4][t / 3] * WINO_G[xi % 4][t % 3])
    });
    for o in 0..mb {
        let wo = &w[((o0 + o) * p.c_in + ci0) * 9..][..ci_n * 9];
        let mut c0 = 0;
        while c0 < ci_n {
            let n = 16.min(ci_n - c0);
            // The channels' kernels, zero past the last channel.
            let mut kk = [[0f32; 9]; 16];
            for (k, src) in kk.iter_mut().zip(wo[c0 * 9..(c0 + n) * 9].chunks_exact(9)) {
                k.copy_from_slice(src);
            }
            // s[ξ][channel] after `weigh16`.
            let mut s = [[0f32; 16]; 16];
            super::x86::weigh16::<I>(&kk, &coef, &mut s);
            for (xi, row) in s.iter().enumerate() {
                let at = &mut u[(xi * mb + o) * ci_n + c0..][..n];
                if n == 16 {
                    // A constant length: vector moves, not a `memcpy` call.
                    at.copy_from_slice(&row[..16]);
                } else {
                    at.copy_from_slice(&row[..n]);
                }
            }
            c0 += n;
        }
    }
}

/// Transforms the input tiles of tile rows `ty0..ty0 + wg.rows` (clipped to the plane's) of
/// one image's channels `ci0..ci0 + ci_n` of `x` into `v`: position `ξ` of channel `ci`, tile
/// `j` (counted from the block's first) at `v[(ξ·ci_n + ci − ci0)·ldt + j]` (`Bᵀ d B`, Bᵀ's rows (1,0,−1,0), (0,1,1,0),
/// (0,−1,1,0), (0,1,0,−1)). Sixteen tiles of a tile row at a time, in lanes.
// Lane loops index several arrays by lane, which is what lets them vectorize.
#[allow(clippy::needless_range_loop)]
#[inline(never)]
fn wino_input(
    p: &Conv2d,
    wg: &Wino,
    x: &[f32],
    ty0: usize,
    (ci0, ci_n): (usize, usize),
    v: &mut [f32],
) {
    let (hw, ldt) = (p.h * p.w, wg.ldt);
    // A padded input row: column `c` holds input column `c − pad`. Lane groups read whole 34
    // floats, up to column `2·tw` rounded up to 32, plus 2, inside the array (`tw ≤ WINO_TB`).
    // The borders are zero from the start and only the interior `pad..pad + w` is ever
    // written (`2·tw ≥ ow = w + 2·pad − 2`, so the interior ends before the last column read).
    let mut rows = [[0f32; 2 * WINO_TB + 2]; 4];
    let inner = p.pad[1]..p.pad[1] + p.w;
    let ty_end = (ty0 + wg.rows).min(wg.th);
    for ci in 0..ci_n {
        let plane = &x[(ci0 + ci) * hw..][..hw];
        for ty in ty0..ty_end {
            for (r, row) in rows.iter_mut().enumerate() {
                let row = &mut row[inner.clone()];
                let iy = (2 * ty + r) as isize - p.pad[0] as isize;
                if iy < 0 || iy >= p.h as isize {
                    row.fill(0.0);
                } else {
                    row.copy_from_slice(&plane[iy as usize * p.w..][..p.w]);
                }
            }
            let mut tx0 = 0;
            while tx0 < wg.tw {
                let n = 16.min(wg.tw - tx0);
                let d: [&[f32; 34]; 4] =
                    core::array::from_fn(|r| rows[r][2 * tx0..2 * tx0 + 34].try_into().unwrap());
                let mut out = [[0f32; 16]; 16];
                for l in 0..16 {
                    let o = 2 * l;
                    // Bᵀ d, per column.
                    let mut s = [[0f32; 4]; 4];
                    for c in 0..4 {
                        let (d0, d1, d2, d3) = (d[0][o + c], d[1][o + c], d[2][o + c], d[3][o + c]);
                        s[0][c] = d0 - d2;
                        s[1][c] = d1 + d2;
                        s[2][c] = d2 - d1;
                        s[3][c] = d1 - d3;
                    }
                    // (Bᵀ d) B, per row.
                    for (i, r) in s.iter().enumerate() {
                        out[4 * i][l] = r[0] - r[2];
                        out[4 * i + 1][l] = r[1] + r[2];
                        out[4 * i + 2][l] = r[2] - r[1];
                        out[4 * i + 3][l] = r[1] - r[3];
                    }
                }
                // All 16 lanes are stored: those past the tile row land on the next tile row's
                // tiles, stored later, or on the row's spare 16 (`Wino::ldt`).
                let j = (ty - ty0) * wg.tw + tx0;
                for (xi, row) in out.iter().enumerate() {
                    v[(xi * ci_n + ci) * ldt + j..][..16].copy_from_slice(row);
                }
                tx0 += n;
            }
        }
    }
}

/// Where a Winograd task writes its outputs: a block of columns (pixels) of every output
/// channel, or whole planes of the output channels from `first`.
enum WinoSink<'b, 'a> {
    Cols(&'b mut super::par::ColBlock<'a>),
    Planes {
        y: &'b mut [f32],
        first: usize,
        ohw: usize,
    },
}

impl WinoSink<'_, '_> {
    /// The sink's part of output channel `o`, and the pixel its element 0 is.
    fn row(&mut self, o: usize) -> (&mut [f32], usize) {
        match self {
            WinoSink::Cols(block) => {
                let start = block.start();
                (block.row(o), start)
            }
            WinoSink::Planes { y, first, ohw } => (&mut y[(o - *first) * *ohw..][..*ohw], 0),
        }
    }
}

/// Turns the GEMM results `m` of output channels `o0..o0 + mb` and the block's tiles (tile
/// rows from `ty0`) into outputs (`Aᵀ m A`, Aᵀ's rows (1,1,1,0), (0,1,−1,−1)) in `sink`: for
/// the `first` chunk of input channels stored with the bias and clamped by `clamp`, for later
/// ones added to what is there (the caller then passes no clamp and applies the activation
/// once all chunks are in).
// Lane loops index several arrays by lane, which is what lets them vectorize.
#[allow(clippy::needless_range_loop)]
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn wino_output(
    p: &Conv2d,
    wg: &Wino,
    m: &[f32],
    o0: usize,
    mb: usize,
    bias: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
    ty0: usize,
    first: bool,
    sink: &mut WinoSink<'_, '_>,
) {
    let ldt = wg.ldt;
    let ty_end = (ty0 + wg.rows).min(wg.th);
    let clamp = clamp.map(|(min, max)| Act::Clamp { min, max });
    for o in 0..mb {
        let b = if first {
            bias.map_or(0.0, |bv| bv[o0 + o])
        } else {
            0.0
        };
        let (out, start) = sink.row(o0 + o);
        for ty in ty0..ty_end {
            // The tile row's two output rows, and room for the last group's spare lanes.
            let mut rows = [[0f32; 2 * WINO_TB + 32]; 2];
            let mut tx0 = 0;
            while tx0 < wg.tw {
                // Whole groups of 16 tiles: those past the tile row read the next row's
                // results or the spare 16 (`Wino::ldt`), and land past the output row.
                let j = (ty - ty0) * wg.tw + tx0;
                let mv: [&[f32; 16]; 16] = core::array::from_fn(|xi| {
                    m[(xi * mb + o) * ldt + j..][..16].try_into().unwrap()
                });
                let [r0, r1] = &mut rows;
                let (y0, y1): (&mut [f32; 32], &mut [f32; 32]) = (
                    (&mut r0[2 * tx0..2 * tx0 + 32]).try_into().unwrap(),
                    (&mut r1[2 * tx0..2 * tx0 + 32]).try_into().unwrap(),
                );
                for l in 0..16 {
                    let e = |i: usize, c: usize| mv[4 * i + c][l];
                    let mut q = [[0f32; 4]; 2];
                    for c in 0..4 {
                        q[0][c] = e(0, c) + e(1, c) + e(2, c);
                        q[1][c] = e(1, c) - e(2, c) - e(3, c);
                    }
                    for (r, yr) in q.iter().zip([&mut *y0, &mut *y1]) {
                        yr[2 * l] = b + r[0] + r[1] + r[2];
                        yr[2 * l + 1] = b + r[1] - r[2] - r[3];
                    }
                }
                tx0 += 16;
            }
            for (a, yr) in rows.iter().enumerate() {
                let oy = 2 * ty + a;
                if oy < p.oh {
                    let at = oy * p.ow - start;
                    let dst = &mut out[at..at + p.ow];
                    if first {
                        dst.copy_from_slice(&yr[..p.ow]);
                    } else {
                        for (d, v) in dst.iter_mut().zip(yr) {
                            *d += v;
                        }
                    }
                    if let Some(c) = clamp {
                        c.apply_slice(dst);
                    }
                }
            }
        }
    }
}

/// One Winograd task: tile rows `ty_first..ty_last` of output channels `co.0..co.1` of one
/// image (`xb`), into `sink`.
#[allow(clippy::too_many_arguments)]
fn wino_task<I: super::x86::Isa>(
    p: &Conv2d,
    wg: &Wino,
    xb: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    clamp: Option<(f32, f32)>,
    (ty_first, ty_last): (usize, usize),
    co: (usize, usize),
    sink: &mut WinoSink<'_, '_>,
) {
    // When every output channel's transformed kernels fit the buffer (64 channels in and
    // out), they are transformed once per task, not once per block of tile rows: the repeated
    // transforms were 6% of resnet18's time.
    let chunks = p.c_in.div_ceil(wg.kc);
    let all_u = chunks == 1 && 16 * (co.1 - co.0) * p.c_in <= WINO_U;
    let (nv, nu, nm) = (
        16 * wg.kc * wg.ldt,
        16 * if all_u { co.1 - co.0 } else { wg.mb } * wg.kc,
        16 * wg.mb * wg.ldt,
    );
    super::x86::with_zeroed_parts([nv, nu, nm], |[v, u, m]| {
        if all_u {
            let mut o0 = co.0;
            while o0 < co.1 {
                let mb = wg.mb.min(co.1 - o0);
                let at = &mut u[16 * (o0 - co.0) * p.c_in..];
                wino_weights::<I>(p, w, o0, mb, 0, p.c_in, at);
                o0 += mb;
            }
        }
        let mut ty0 = ty_first;
        while ty0 < ty_last {
            let rows = wg.rows.min(ty_last - ty0);
            let tiles = rows * wg.tw;
            let wb = Wino { rows, ..*wg };
            for chunk in 0..chunks {
                let (ci0, kn) = (chunk * wg.kc, wg.kc.min(p.c_in - chunk * wg.kc));
                wino_input(p, &wb, xb, ty0, (ci0, kn), v);
                let mut o0 = co.0;
                while o0 < co.1 {
                    let mb = wg.mb.min(co.1 - o0);
                    let u = if all_u {
                        &u[16 * (o0 - co.0) * p.c_in..]
                    } else {
                        wino_weights::<I>(p, w, o0, mb, ci0, kn, u);
                        &u[..]
                    };
                    for xi in 0..16 {
                        let gm = super::x86::Gemm {
                            m: mb,
                            n: tiles,
                            k: kn,
                            a: &u[xi * mb * kn..][..mb * kn],
                            lda: kn,
                            b: &v[xi * kn * wg.ldt..][..(kn - 1) * wg.ldt + tiles],
                            ldb: wg.ldt,
                            ldc: wg.ldt,
                            init: super::x86::Init::Zero,
                            clamp: None,
                            dots: 0,
                        };
                        let mx = &mut m[xi * mb * wg.ldt..][..(mb - 1) * wg.ldt + tiles];
                        super::x86::gemm::<I>(&gm, mx);
                    }
                    wino_output(p, &wb, m, o0, mb, bias, clamp, ty0, chunk == 0, sink);
                    o0 += mb;
                }
            }
            ty0 += rows;
        }
    });
}

/// 3×3 stride-1 convolution by Winograd's F(2×2, 3×3): each 4×4 input tile and each kernel is
/// transformed so that 2×2 outputs take 16 multiply-adds per channel pair instead of 36, as 16
/// GEMMs (one per position) of the transformed kernels times the transformed tiles. Threads
/// take shares of tile rows, or of output channels when the plane is one block; an output's
/// value never depends on the split.
fn winograd_simd<I: super::x86::Isa>(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    p.check_lens(x, w, bias, y);
    let wg = wino_of(p).expect("winograd_simd: shape not accepted");
    // In chunks of input channels an output is complete only after the last chunk, so the
    // whole activation runs then, over the stored outputs.
    let (clamp, rest) = if wg.kc < p.c_in {
        (None, act)
    } else {
        fused_clamp(act)
    };
    let (chw, ohw) = (p.c_in * p.h * p.w, p.oh * p.ow);
    let fmas = 16 * p.c_out * p.c_in * wg.th * wg.tw;
    let tasks = max_blocks(super::par::threads(), 1)
        .min(fmas / MIN_TASK_FMAS)
        .max(1);
    for b in 0..p.n {
        let xb = &x[b * chw..][..chw];
        let yb = &mut y[b * p.c_out * ohw..][..p.c_out * ohw];
        if wg.rows >= wg.th && tasks > 1 {
            // The plane is one block (14×14): shares of its tile rows would make the GEMMs
            // narrower, so the threads take shares of the output channels, each transforming
            // the whole input (at two threads, 1.08-1.15 of the im2col path's time split by
            // tile rows).
            let chans = super::par::tile_rows(p.c_out, 6, tasks);
            super::par::for_each_chunk_mut(yb, chans * ohw, &|i, yc| {
                let first = i * chans;
                let co = (first, first + yc.len() / ohw);
                let mut sink = WinoSink::Planes {
                    y: &mut *yc,
                    first,
                    ohw,
                };
                wino_task::<I>(p, &wg, xb, w, bias, clamp, (0, wg.th), co, &mut sink);
                rest.apply_slice(yc);
            });
            continue;
        }
        // Each task takes an equal share of whole tile rows (its columns start and end on a
        // tile row's first output row) and cuts it into blocks of at most `wg.rows`. Whole
        // blocks per task left 4 blocks to one thread and 3 to the other on 56×56 planes. A
        // tile's outputs do not depend on the block it falls in: each GEMM sums over all input
        // channels in order.
        let per_task = wg.th.div_ceil(tasks.min(wg.th)) * 2 * p.ow;
        super::par::for_each_col_block_mut(yb, ohw, per_task, &|_, block| {
            let ty_first = block.start() / (2 * p.ow);
            let ty_last = block.end().div_ceil(2 * p.ow).min(wg.th);
            let co = (0, p.c_out);
            let mut sink = WinoSink::Cols(block);
            wino_task::<I>(
                p,
                &wg,
                xb,
                w,
                bias,
                clamp,
                (ty_first, ty_last),
                co,
                &mut sink,
            );
            for r in 0..p.c_out {
                rest.apply_slice(block.row(r));
            }
        });
    }
}

/// 3×3 kernels at stride 1, dilation 1, one group, padding at most 2, at least 8 input and
/// output channels and 10×10 outputs (on 7×7 planes, 16 tiles make GEMMs one vector wide, which
/// gain too little over the transforms), whose blocks fit the buffers; the caller also checks
/// the extension.
fn winograd_simd_accepts(p: &Conv2d) -> bool {
    p.valid()
        && p.groups == 1
        && (p.kh, p.kw) == (3, 3)
        && p.stride == [1, 1]
        && p.dil == [1, 1]
        && p.pad[0] <= 2
        && p.pad[1] <= 2
        && p.c_in >= 8
        && p.c_out >= 8
        && p.oh >= 10
        && p.ow >= 10
        && wino_of(p).is_some()
}
//@end

//@variant winograd_avx512
/// 3×3 stride-1 convolution by Winograd F(2×2, 3×3) with AVX-512 GEMMs (`winograd_simd`).
pub fn winograd_avx512(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    winograd_simd::<super::x86::Avx512>(p, x, w, bias, y, act);
}

/// What `winograd_simd` accepts; the caller also checks `super::x86::avx512()`.
pub fn winograd_avx512_accepts(p: &Conv2d) -> bool {
    winograd_simd_accepts(p)
}
//@end

//@variant winograd_avx2
/// 3×3 stride-1 convolution by Winograd F(2×2, 3×3) with AVX2 GEMMs (`winograd_simd`).
pub fn winograd_avx2(
    p: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    act: Act,
) {
    winograd_simd::<super::x86::Avx2>(p, x, w, bias, y, act);
}

/// What `winograd_simd` accepts; the caller also checks `super::x86::avx2()`.
pub fn winograd_avx2_accepts(p: &Conv2d) -> bool {
    winograd_simd_accepts(p)
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function plus its `_accepts` (helpers inlined;
/// out-of-line `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`. The `_avx512` variants also count the `x86`
/// functions they reach (its tiles are inlined into them), since only they pull that code in,
/// plus their closures and the part of `par` each uses (all 5.4 KB of its block splitting for
/// pointwise and im2col, all but the column blocks for depthwise), which only variants that
/// split bring. Remeasured for the three variants after the threading changes. The `_avx2`
/// variants are measured the same way (their `ymm` tiles, with `drive` and `gemm_block`), with
/// depthwise's four kernel-size instances taken as the largest four of `channels_fixed`'s six;
/// after the strip-wise 3×3 depthwise path and the finer im2col and narrow-plane pointwise
/// splits, each changed variant moved by the change in its own instances' symbols (v0 mangling
/// tells the `Avx2` and `Avx512` instances of the shared bodies apart). The same way again after
/// the AVX2 GEMM's dot-product tail columns and in-place B (`ymm::gemm` grew by 9,079 bytes,
/// in both `_avx2` variants). Again after the AVX2 tile's four-step loop and the inlined whole
/// tiles (`ymm::gemm` grew by 13,279 bytes, in both `_avx2` GEMM variants) and the row-wise
/// AVX2 depthwise path (its two `padded_planes` instances shrank by 3,681 bytes); then the
/// ragged tiles moved out of line into `ymm::tile_ragged` (2,538 bytes fewer in all).
/// `stem_avx2` the same way: its functions, `x86::stem_avx2` and `ymm::stem_row` (its tiles
/// and `split_row` inlined), 11,375 bytes, plus the chunk splitting of `par` it uses
/// (`for_each_chunk_mut`, `for_each_block`, `tile_rows`, `block_width` and what they call),
/// 4,553 bytes. The `winograd_` variants the same way (with `-C symbol-mangling-version=v0` to
/// tell their two instances apart): each its own function, `_accepts`, closures, `wino_task`
/// and `wino_weights` instances, its `weigh16` and `transpose16`, its GEMM (`drive_zmm`,
/// `zmm::tile_any` and `zmm::dot_any`; `ymm::gemm` and `ymm::tile_ragged`), plus the code both
/// share (`wino_of`, the input and output transforms, `winograd_simd_accepts`, `Gemm`'s bound
/// checks and the chunk and column-block splitting of `par`), 17,121 bytes. The dot-product
/// columns of the AVX-512 GEMM (`zmm::dot_any`, 7,421 bytes, and 1,431 more in `drive_zmm`)
/// were added to `pointwise_avx512` and `im2col_avx512`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "conv.generic",
        family: "conv",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 2681,
    },
    super::meta::KernelInfo {
        name: "conv.direct",
        family: "conv",
        dtypes: &["f32"],
        isa: &[],
        shape: "any (4-output-channel blocked direct)",
        speed: 1,
        code_bytes: 6789,
    },
    super::meta::KernelInfo {
        name: "conv.depthwise",
        family: "conv",
        dtypes: &["f32"],
        isa: &[],
        shape: "depthwise, groups = c_in = c_out, any kernel",
        speed: 2,
        code_bytes: 5918,
    },
    super::meta::KernelInfo {
        name: "conv.pointwise",
        family: "conv",
        dtypes: &["f32"],
        isa: &[],
        shape: "1x1 kernel, stride 1, no padding, groups 1",
        speed: 3,
        code_bytes: 5243,
    },
    super::meta::KernelInfo {
        name: "conv.im2col_avx2",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "any (im2col panels times the weights, AVX2 GEMM)",
        speed: 4,
        code_bytes: 45257,
    },
    // Above `im2col_avx512`: on a Zen 4 host it took 0.55-0.70 of that variant's time on
    // mobilenet_v2's first layer at one thread (281 against 508 and 259 against 370 µs) and
    // 0.83 at two (207 against 249 µs), per-op medians in two alternating comparisons.
    super::meta::KernelInfo {
        name: "conv.stem_avx2",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "3x3 kernel, stride 2, 1 to 4 input channels, groups 1",
        speed: 8,
        code_bytes: 15928,
    },
    super::meta::KernelInfo {
        name: "conv.depthwise_avx2",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "depthwise, dilation 1, horizontal stride 1 or 2",
        speed: 5,
        code_bytes: 23548,
    },
    super::meta::KernelInfo {
        name: "conv.winograd_avx2",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "3x3 kernel, stride 1, groups 1, at least 8 channels in and out and 10x10 outputs (Winograd F(2x2,3x3), AVX2 GEMMs)",
        speed: 6,
        code_bytes: 60361,
    },
    super::meta::KernelInfo {
        name: "conv.pointwise_avx2",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx2", "fma"],
        shape: "1x1 kernel, stride 1, no padding, groups 1",
        speed: 6,
        code_bytes: 41099,
    },
    super::meta::KernelInfo {
        name: "conv.im2col_avx512",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx512f", "fma"],
        shape: "any (im2col panels times the weights, AVX-512 GEMM)",
        speed: 7,
        code_bytes: 42529,
    },
    super::meta::KernelInfo {
        name: "conv.winograd_avx512",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx512f", "fma"],
        shape: "3x3 kernel, stride 1, groups 1, at least 8 channels in and out and 10x10 outputs (Winograd F(2x2,3x3), AVX-512 GEMMs)",
        speed: 8,
        code_bytes: 52680,
    },
    super::meta::KernelInfo {
        name: "conv.depthwise_avx512",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx512f", "fma"],
        shape: "depthwise, dilation 1, horizontal stride 1 or 2",
        speed: 8,
        code_bytes: 34272,
    },
    super::meta::KernelInfo {
        name: "conv.pointwise_avx512",
        family: "conv",
        dtypes: &["f32"],
        isa: &["avx512f", "fma"],
        shape: "1x1 kernel, stride 1, no padding, groups 1",
        speed: 9,
        code_bytes: 36873,
    },
];
//@end
