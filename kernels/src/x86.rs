//! AVX-512 building blocks for the speed variants: a register-tiled f32 matrix multiply and a
//! depthwise convolution plane. Invariant: this is the kernel library's only unsafe code, and
//! every public function here is safe to call: it runs its AVX-512 code only after `avx512()`
//! said the CPU and the OS support it, and every lane it loads or stores lies inside the slices
//! it was given (lanes outside them are masked off, so the hardware never touches them).
//!
//! A generated crate compiled with `+avx512f,+fma` answers `avx512()` at compile time; etpkg
//! itself, compiled for baseline x86-64, asks the CPU once and caches the answer, so its own
//! tests run these kernels wherever the machine allows.

/// Whether AVX-512F and FMA can be used: the CPU has them and the OS saves the ZMM state.
#[inline]
pub fn avx512() -> bool {
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx512f",
        target_feature = "fma"
    ))]
    {
        true
    }
    #[cfg(all(
        target_arch = "x86_64",
        not(all(target_feature = "avx512f", target_feature = "fma"))
    ))]
    {
        detect::cached()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(all(
    target_arch = "x86_64",
    not(all(target_feature = "avx512f", target_feature = "fma"))
))]
mod detect {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    use core::sync::atomic::{AtomicU8, Ordering};

    /// 0: not asked yet, 1: unsupported, 2: supported.
    static STATE: AtomicU8 = AtomicU8::new(0);

    pub fn cached() -> bool {
        match STATE.load(Ordering::Relaxed) {
            0 => {
                let yes = ask();
                STATE.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
            s => s == 2,
        }
    }

    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        _xgetbv(0)
    }

    #[allow(unused_unsafe)]
    fn ask() -> bool {
        // SAFETY: every x86-64 CPU has CPUID, leaf 0 gives the highest leaf, and leaf 7 is read
        // only when it exists.
        let (max, l1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
        let fma = l1.ecx & (1 << 12) != 0;
        let osxsave = l1.ecx & (1 << 27) != 0;
        if !fma || !osxsave || max < 7 {
            return false;
        }
        // SAFETY: as above; leaf 7 exists.
        let l7 = unsafe { __cpuid_count(7, 0) };
        if l7.ebx & (1 << 16) == 0 {
            return false;
        }
        // SAFETY: OSXSAVE is set, so XGETBV is available. The OS must save the SSE, AVX, opmask
        // and both halves of the ZMM registers (XCR0 bits 1, 2, 5, 6, 7).
        let xcr0 = unsafe { xcr0() };
        xcr0 & 0xe6 == 0xe6
    }
}

/// How a GEMM tile's accumulators start.
#[derive(Clone, Copy, Debug)]
pub enum Init<'a> {
    /// From zero.
    Zero,
    /// From `bias[row]`, one value per row of C.
    Bias(&'a [f32]),
    /// From C's current values, to add another slice of K to them.
    Load,
}

/// `C = clamp(init + A·B)` with `A` `m × k` (row stride `lda`), `B` `k × n` (row stride `ldb`) and
/// `C` `m × n` (row stride `ldc`), all row-major f32. `clamp` is `(min, max)`, applied with
/// `Act::Clamp`'s rules (NaN passes through; `min > max` gives `max`); `None` stores the sums.
pub struct Gemm<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: &'a [f32],
    pub lda: usize,
    pub b: &'a [f32],
    pub ldb: usize,
    pub ldc: usize,
    pub init: Init<'a>,
    pub clamp: Option<(f32, f32)>,
}

impl Gemm<'_> {
    /// Whether every element the product touches lies inside the slices.
    fn in_bounds(&self, c: &[f32]) -> bool {
        self.operands_in_bounds()
            && (self.m == 0 || self.n == 0 || c.len() >= (self.m - 1) * self.ldc + self.n)
    }

    /// Whether every element of A, B and the bias that the product reads lies inside the
    /// slices, and C's rows (stride `ldc`) can be addressed without overflow.
    fn operands_in_bounds(&self) -> bool {
        let need = |rows: usize, ld: usize, cols: usize| {
            rows == 0
                || cols == 0
                || (rows - 1)
                    .checked_mul(ld)
                    .and_then(|v| v.checked_add(cols))
                    .is_some()
        };
        let end = |rows: usize, ld: usize, cols: usize| (rows - 1) * ld + cols;
        if self.m == 0 || self.n == 0 {
            return true;
        }
        if !need(self.m, self.lda, self.k)
            || !need(self.k, self.ldb, self.n)
            || !need(self.m, self.ldc, self.n)
        {
            return false;
        }
        let bias_ok = match self.init {
            Init::Bias(b) => b.len() >= self.m,
            _ => true,
        };
        bias_ok
            && (self.k == 0
                || (self.a.len() >= end(self.m, self.lda, self.k)
                    && self.b.len() >= end(self.k, self.ldb, self.n)))
            && self.lda >= self.k
            && self.ldb >= self.n
            && self.ldc >= self.n
    }
}

/// Columns of C per block: the block of B it reads (`k × NC`) stays in L2 while every row tile
/// of A passes over it.
const NC: usize = 256;

/// Runs `g` into `c`. Panics when the CPU lacks AVX-512 (callers check `avx512()` first) or
/// when the shapes reach outside the slices.
pub fn gemm(g: &Gemm, c: &mut [f32]) {
    assert!(avx512(), "x86::gemm needs AVX-512F and FMA");
    assert!(
        g.in_bounds(c),
        "x86::gemm: operands shorter than their shapes"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU supports AVX-512F and FMA, and `in_bounds` checked every row and column
    // the tiles read or write.
    unsafe {
        imp::gemm(g, c.as_mut_ptr());
    }
}

/// Runs `g` into columns `col..col + g.n` of rows `0..g.m` of `block`'s matrix, whose row
/// stride must be `g.ldc`: the product lands in place, with no scratch tile to copy out of.
/// Panics when the CPU lacks AVX-512, those columns are not the block's, or the operands are
/// short.
pub fn gemm_block(g: &Gemm, block: &mut super::par::ColBlock<'_>, col: usize) {
    assert!(avx512(), "x86::gemm_block needs AVX-512F and FMA");
    assert!(
        g.operands_in_bounds()
            && g.ldc == block.ld()
            && g.m <= block.rows()
            && col >= block.start()
            && col.checked_add(g.n).is_some_and(|e| e <= block.end()),
        "x86::gemm_block: operands shorter than their shapes or outside the block"
    );
    if g.m == 0 || g.n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU supports AVX-512F and FMA; A, B and the bias were checked, and every
    // element written is in rows `0..m` (all the matrix's) and columns `col..col + n`, which
    // lie inside the block's columns, which only this task holds while `block` is borrowed.
    unsafe {
        imp::gemm(g, block.as_mut_ptr().add(col));
    }
}

/// One channel plane of a depthwise convolution: `y[oy, ox] = clamp(bias + Σ w[ky, kx] ·
/// x[oy·sy + ky − py, ox·sx + kx − px])` over in-bounds taps, dilation 1.
pub struct Plane {
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    /// `[vertical, horizontal]`; the horizontal stride is 1 or 2.
    pub stride: [usize; 2],
    pub pad: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

impl Plane {
    /// Whether `depthwise_plane` computes this shape.
    pub fn supported(&self) -> bool {
        (1..=2).contains(&self.stride[1]) && self.stride[0] >= 1 && self.kh >= 1 && self.kw >= 1
    }
}

/// Runs a depthwise convolution over `channels` planes: `x` is `channels·h·w`, `wk` is
/// `channels·kh·kw`, `bias` (if any) is `channels`, `y` is `channels·oh·ow`. Panics when the CPU
/// lacks AVX-512, the shape is not `supported`, or the slices are short.
pub fn depthwise(
    p: &Plane,
    channels: usize,
    x: &[f32],
    wk: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    clamp: Option<(f32, f32)>,
) {
    assert!(avx512(), "x86::depthwise needs AVX-512F and FMA");
    assert!(p.supported(), "x86::depthwise: unsupported shape");
    assert!(
        x.len() >= channels * p.h * p.w
            && wk.len() >= channels * p.kh * p.kw
            && bias.is_none_or(|b| b.len() >= channels)
            && y.len() >= channels * p.oh * p.ow,
        "x86::depthwise: operands shorter than their shapes"
    );
    // Every tap's start column must fit an isize with room for a 32-lane load.
    assert!(p.w < (1 << 30) && p.ow < (1 << 29));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = clamp;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 is available, and the lengths were checked; the loads mask off every lane
    // outside its row.
    unsafe {
        imp::depthwise(p, channels, x, wk, bias, y, clamp);
    }
}

/// 3×3 max pooling over `planes` planes (dilation 1, horizontal stride 1 or 2): `x` is
/// `planes·h·w`, `y` is `planes·oh·ow`. Taps outside the input are ignored and a NaN tap gives
/// NaN. Panics when the CPU lacks AVX-512, the shape is not `supported` with a 3×3 window, or
/// the slices are short.
pub fn max_pool3(p: &Plane, planes: usize, x: &[f32], y: &mut [f32]) {
    assert!(avx512(), "x86::max_pool3 needs AVX-512F and FMA");
    assert!(
        p.supported() && p.kh == 3 && p.kw == 3,
        "x86::max_pool3: unsupported shape"
    );
    assert!(
        x.len() >= planes * p.h * p.w && y.len() >= planes * p.oh * p.ow,
        "x86::max_pool3: operands shorter than their shapes"
    );
    assert!(p.w < (1 << 30) && p.ow < (1 << 29));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `depthwise`; the weights and bias are never read when pooling.
    unsafe {
        imp::max_pool3(p, planes, x, y);
    }
}

/// `dst[j] = row[sx·j + off]` for stride `sx` 1 or 2, and 0 where that index falls outside
/// `row`: one row segment of an im2col panel, padding included, in masked vector loads and
/// stores. Panics when the CPU lacks AVX-512, `sx` is not 1 or 2, or the indices could overflow.
pub fn gather_row(dst: &mut [f32], row: &[f32], off: isize, sx: usize) {
    assert!(avx512(), "x86::gather_row needs AVX-512F");
    assert!(sx == 1 || sx == 2, "x86::gather_row: stride {sx}");
    assert!(row.len() < (1 << 30) && dst.len() < (1 << 28) && off.unsigned_abs() < (1 << 30));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512 is available; every load is masked to indices inside `row` and every
    // store to `dst` (the bounds above keep the index arithmetic from overflowing).
    unsafe {
        if sx == 1 {
            imp::gather_row::<1>(dst, row, off);
        } else {
            imp::gather_row::<2>(dst, row, off);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::{Gemm, Init, Plane, NC};
    use core::arch::x86_64::*;

    /// Rows of C per tile: 6 rows × 4 vectors is 24 accumulators, and with the four B vectors
    /// and a broadcast it fits the 32 ZMM registers. Per step of K it loads 4 vectors and 6
    /// scalars for 24 FMAs; on the conv shapes of scripts/peer_bench.py it beat 8×2, 12×2 and
    /// 4×4 by 3–10%.
    const MR: usize = 6;
    /// Vectors of C per tile row.
    const NV: usize = 4;
    /// Lanes per vector.
    const L: usize = 16;
    /// How far ahead (in floats) the tiles prefetch A's rows.
    const PREFETCH: usize = 64;

    #[inline(always)]
    fn mask(lanes: usize) -> __mmask16 {
        if lanes >= L {
            0xffff
        } else {
            ((1u32 << lanes) - 1) as __mmask16
        }
    }

    /// One `R × (16·V)` tile of C: `k` steps of rank-1 updates with A's rows broadcast and B's
    /// row loaded (masked to the tile's columns), then the epilogue.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const V: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        masks: [__mmask16; NV],
        init: Init,
        clamp: Option<(f32, f32)>,
    ) {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        match init {
            Init::Zero => {}
            Init::Bias(bias) => {
                for (i, row) in acc.iter_mut().enumerate() {
                    *row = [_mm512_set1_ps(*bias.get_unchecked(i)); V];
                }
            }
            Init::Load => {
                for (i, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = _mm512_maskz_loadu_ps(masks[v], c.add(i * ldc + v * L));
                    }
                }
            }
        }
        let rows: [*const f32; R] = core::array::from_fn(|i| a.add(i * lda));
        let mut bp = b;
        for kk in 0..k {
            // A's rows are R separate streams of K floats; when the weights come from memory
            // (large layers, each weight used for few columns) the hardware prefetcher does
            // not keep up, so fetch each row a few cache lines ahead, once per line.
            if kk % 16 == 0 {
                for row in rows.iter() {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(kk + PREFETCH).cast::<i8>());
                }
            }
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_maskz_loadu_ps(masks[v], bp.add(v * L));
            }
            for i in 0..R {
                let av = _mm512_set1_ps(*rows[i].add(kk));
                for v in 0..V {
                    acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
                }
            }
            bp = bp.add(ldb);
        }
        if let Some((lo, hi)) = clamp {
            let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
            for row in acc.iter_mut() {
                for x in row.iter_mut() {
                    // MAXPS/MINPS return the second operand when either is NaN, so a NaN sum
                    // passes through both, as `Act::Clamp` requires.
                    *x = _mm512_min_ps(hi, _mm512_max_ps(lo, *x));
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(c.add(i * ldc + v * L), masks[v], *x);
            }
        }
    }

    /// Dispatches one tile to the instance for its row count and vector count.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile_any(
        rows: usize,
        cols: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        init: Init,
        clamp: Option<(f32, f32)>,
    ) {
        let masks: [__mmask16; NV] = core::array::from_fn(|v| mask(cols.saturating_sub(v * L)));
        macro_rules! go {
            ($r:literal) => {
                match cols.div_ceil(L) {
                    4 => tile::<$r, 4>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    3 => tile::<$r, 3>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    2 => tile::<$r, 2>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    _ => tile::<$r, 1>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                }
            };
        }
        match rows {
            6 => go!(6),
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
    }

    /// # Safety
    /// AVX-512F and FMA are available and `g.in_bounds(c)` holds for the C that `c` points to.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn gemm(g: &Gemm, c: *mut f32) {
        let (a, b) = (g.a.as_ptr(), g.b.as_ptr());
        let mut n0 = 0;
        while n0 < g.n {
            let nc = NC.min(g.n - n0);
            let mut m0 = 0;
            while m0 < g.m {
                let rows = MR.min(g.m - m0);
                let init = match g.init {
                    Init::Bias(bias) => Init::Bias(&bias[m0..]),
                    other => other,
                };
                let mut j = 0;
                while j < nc {
                    let cols = (NV * L).min(nc - j);
                    tile_any(
                        rows,
                        cols,
                        g.k,
                        a.add(m0 * g.lda),
                        g.lda,
                        b.add(n0 + j),
                        g.ldb,
                        c.add(m0 * g.ldc + n0 + j),
                        g.ldc,
                        init,
                        g.clamp,
                    );
                    j += cols;
                }
                m0 += rows;
            }
            n0 += nc;
        }
    }

    /// Lanes `t` of a 16-lane load at element `start` whose element `start + t` is in `[0, len)`,
    /// limited to the first `lanes`.
    #[inline(always)]
    fn valid(start: isize, len: usize, lanes: usize) -> __mmask16 {
        let lo = (-start).clamp(0, L as isize) as usize;
        let hi = (len as isize - start).clamp(0, lanes.min(L) as isize) as usize;
        if lo >= hi {
            0
        } else {
            mask(hi) & !mask(lo)
        }
    }

    /// One tap's input vector for output columns `ox0..ox0 + 16`: elements `sx·(ox0 + j) + off`
    /// of `row`, zero where they fall outside `[0, len)`. Stride 2 loads the 32 elements from
    /// `2·ox0 + off` and keeps the even lanes.
    #[target_feature(enable = "avx512f,fma")]
    #[inline]
    unsafe fn tap<const SX: usize>(
        row: *const f32,
        ox0: usize,
        off: isize,
        len: usize,
        lanes: usize,
    ) -> __m512 {
        if SX == 1 {
            let start = ox0 as isize + off;
            _mm512_maskz_loadu_ps(valid(start, len, lanes), row.wrapping_offset(start))
        } else {
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let start = (2 * ox0) as isize + off;
            let far = start + L as isize;
            let a = _mm512_maskz_loadu_ps(valid(start, len, L), row.wrapping_offset(start));
            let b = _mm512_maskz_loadu_ps(valid(far, len, L), row.wrapping_offset(far));
            _mm512_permutex2var_ps(a, even, b)
        }
    }

    /// `CB` depthwise planes at once (planes `hw` apart in x, `ohw` in y, kernels `KH·KW` in
    /// wk) with the kernel size and horizontal stride fixed at compile time: the CB
    /// accumulators are independent, so the FMAs overlap instead of waiting on each other.
    /// With `MAX` it is max pooling instead: no weights or bias, taps outside the input are
    /// ignored (loaded as −inf), and a NaN tap makes the output NaN.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn planes_fixed<
        const KH: usize,
        const KW: usize,
        const SX: usize,
        const CB: usize,
        const MAX: bool,
    >(
        p: &Plane,
        x: *const f32,
        wk: *const f32,
        bias: &[f32; CB],
        y: *mut f32,
        lo: __m512,
        hi: __m512,
    ) {
        let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
        let px = p.pad[1] as isize;
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let fill = if MAX {
            _mm512_set1_ps(f32::NEG_INFINITY)
        } else {
            _mm512_setzero_ps()
        };
        for oy in 0..p.oh {
            let mut rows = [0usize; KH];
            let mut live = [false; KH];
            for ky in 0..KH {
                let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
                if iy >= 0 && iy < p.h as isize {
                    live[ky] = true;
                    rows[ky] = iy as usize * p.w;
                }
            }
            let mut ox0 = 0;
            while ox0 < p.ow {
                let lanes = L.min(p.ow - ox0);
                // The masks depend only on the column block and kx, so they are computed once
                // per block rather than once per tap.
                let mut starts = [0isize; KW];
                let mut near = [0 as __mmask16; KW];
                let mut far = [0 as __mmask16; KW];
                for kx in 0..KW {
                    let start = (SX * ox0) as isize + kx as isize - px;
                    starts[kx] = start;
                    if SX == 1 {
                        near[kx] = valid(start, p.w, lanes);
                    } else {
                        near[kx] = valid(start, p.w, L);
                        far[kx] = valid(start + L as isize, p.w, L);
                    }
                }
                let mut acc = [fill; CB];
                if !MAX {
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_set1_ps(bias[c]);
                    }
                }
                let mut nan = [0 as __mmask16; CB];
                for ky in 0..KH {
                    if !live[ky] {
                        continue;
                    }
                    for kx in 0..KW {
                        for (c, a) in acc.iter_mut().enumerate() {
                            let at = x.add(c * hw + rows[ky]).wrapping_offset(starts[kx]);
                            let v = if SX == 1 {
                                _mm512_mask_loadu_ps(fill, near[kx], at)
                            } else {
                                let lo = _mm512_mask_loadu_ps(fill, near[kx], at);
                                let hi = _mm512_mask_loadu_ps(fill, far[kx], at.wrapping_add(L));
                                _mm512_permutex2var_ps(lo, even, hi)
                            };
                            if MAX {
                                nan[c] |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                                *a = _mm512_max_ps(*a, v);
                            } else {
                                let w = _mm512_set1_ps(*wk.add(c * KH * KW + ky * KW + kx));
                                *a = _mm512_fmadd_ps(w, v, *a);
                            }
                        }
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    let v = if MAX {
                        _mm512_mask_mov_ps(*a, nan[c], _mm512_set1_ps(f32::NAN))
                    } else {
                        _mm512_min_ps(hi, _mm512_max_ps(lo, *a))
                    };
                    _mm512_mask_storeu_ps(y.add(c * ohw + oy * p.ow + ox0), mask(lanes), v);
                }
                ox0 += lanes;
            }
        }
    }

    /// Runs the fixed-size kernel over all channels: blocks of 8, then one at a time.
    #[target_feature(enable = "avx512f,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn channels_fixed<const KH: usize, const KW: usize, const SX: usize, const MAX: bool>(
        p: &Plane,
        channels: usize,
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        lo: __m512,
        hi: __m512,
    ) {
        const CB: usize = 8;
        let (hw, ohw, kk) = (p.h * p.w, p.oh * p.ow, KH * KW);
        let bias_of = |c: usize| bias.map_or(0.0, |b| b[c]);
        let mut c = 0;
        while c + CB <= channels {
            let mut bv = [0f32; CB];
            for (i, v) in bv.iter_mut().enumerate() {
                *v = bias_of(c + i);
            }
            planes_fixed::<KH, KW, SX, CB, MAX>(
                p,
                x.as_ptr().add(c * hw),
                wk.as_ptr().add(c * kk),
                &bv,
                y.as_mut_ptr().add(c * ohw),
                lo,
                hi,
            );
            c += CB;
        }
        while c < channels {
            planes_fixed::<KH, KW, SX, 1, MAX>(
                p,
                x.as_ptr().add(c * hw),
                wk.as_ptr().add(c * kk),
                &[bias_of(c)],
                y.as_mut_ptr().add(c * ohw),
                lo,
                hi,
            );
            c += 1;
        }
    }

    /// Any kernel size: the same loop with the sizes read at run time.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn plane_any<const SX: usize>(
        p: &Plane,
        x: &[f32],
        wk: &[f32],
        bias: f32,
        y: &mut [f32],
        lo: __m512,
        hi: __m512,
    ) {
        let xp = x.as_ptr();
        for oy in 0..p.oh {
            let yrow = y.as_mut_ptr().add(oy * p.ow);
            let mut ox0 = 0;
            while ox0 < p.ow {
                let lanes = L.min(p.ow - ox0);
                let mut acc = _mm512_set1_ps(bias);
                for ky in 0..p.kh {
                    let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
                    if iy < 0 || iy >= p.h as isize {
                        continue;
                    }
                    let row = xp.add(iy as usize * p.w);
                    for kx in 0..p.kw {
                        let wv = _mm512_set1_ps(*wk.get_unchecked(ky * p.kw + kx));
                        let v = tap::<SX>(row, ox0, kx as isize - p.pad[1] as isize, p.w, lanes);
                        acc = _mm512_fmadd_ps(wv, v, acc);
                    }
                }
                acc = _mm512_min_ps(hi, _mm512_max_ps(lo, acc));
                _mm512_mask_storeu_ps(yrow.add(ox0), mask(lanes), acc);
                ox0 += lanes;
            }
        }
    }

    /// # Safety
    /// AVX-512F and FMA are available, `p.supported()`, and the slices hold what
    /// `super::depthwise` checks.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn depthwise(
        p: &Plane,
        channels: usize,
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        clamp: Option<(f32, f32)>,
    ) {
        let (lo, hi) = match clamp {
            Some((lo, hi)) => (_mm512_set1_ps(lo), _mm512_set1_ps(hi)),
            None => (
                _mm512_set1_ps(f32::NEG_INFINITY),
                _mm512_set1_ps(f32::INFINITY),
            ),
        };
        match (p.kh, p.kw, p.stride[1]) {
            (3, 3, 1) => channels_fixed::<3, 3, 1, false>(p, channels, x, wk, bias, y, lo, hi),
            (3, 3, _) => channels_fixed::<3, 3, 2, false>(p, channels, x, wk, bias, y, lo, hi),
            (5, 5, 1) => channels_fixed::<5, 5, 1, false>(p, channels, x, wk, bias, y, lo, hi),
            (5, 5, _) => channels_fixed::<5, 5, 2, false>(p, channels, x, wk, bias, y, lo, hi),
            (_, _, sx) => {
                let (hw, ohw, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
                for c in 0..channels {
                    let xc = &x[c * hw..][..hw];
                    let wc = &wk[c * kk..][..kk];
                    let bc = bias.map_or(0.0, |b| b[c]);
                    let yc = &mut y[c * ohw..][..ohw];
                    if sx == 1 {
                        plane_any::<1>(p, xc, wc, bc, yc, lo, hi);
                    } else {
                        plane_any::<2>(p, xc, wc, bc, yc, lo, hi);
                    }
                }
            }
        }
    }

    /// # Safety
    /// AVX-512F and FMA are available, `p.supported()`, `p.kh == p.kw == 3`, and the slices
    /// hold what `super::max_pool` checks.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn max_pool3(p: &Plane, planes: usize, x: &[f32], y: &mut [f32]) {
        let none = _mm512_setzero_ps();
        if p.stride[1] == 1 {
            channels_fixed::<3, 3, 1, true>(p, planes, x, &[], None, y, none, none);
        } else {
            channels_fixed::<3, 3, 2, true>(p, planes, x, &[], None, y, none, none);
        }
    }

    /// # Safety
    /// AVX-512F is available, and `row`, `dst` and `off` are small enough that no index
    /// computation overflows (`super::gather_row` checks).
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn gather_row<const SX: usize>(dst: &mut [f32], row: &[f32], off: isize) {
        let d = dst.as_mut_ptr();
        let mut j = 0;
        while j < dst.len() {
            let lanes = L.min(dst.len() - j);
            let v = tap::<SX>(row.as_ptr(), j, off, row.len(), lanes);
            _mm512_mask_storeu_ps(d.add(j), mask(lanes), v);
            j += lanes;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn naive(g: &Gemm, c: &mut [f32]) {
        for i in 0..g.m {
            for j in 0..g.n {
                let mut s = match g.init {
                    Init::Zero => 0.0,
                    Init::Bias(b) => b[i],
                    Init::Load => c[i * g.ldc + j],
                };
                for kk in 0..g.k {
                    s += g.a[i * g.lda + kk] * g.b[kk * g.ldb + j];
                }
                if let Some((lo, hi)) = g.clamp {
                    s = if s.is_nan() { s } else { s.max(lo).min(hi) };
                }
                c[i * g.ldc + j] = s;
            }
        }
    }

    fn data(n: usize, seed: u32) -> [f32; 4096] {
        let mut out = [0f32; 4096];
        let mut s = seed;
        for v in out.iter_mut().take(n) {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *v = ((s >> 8) as f32 / (1u32 << 24) as f32) - 0.5;
        }
        out
    }

    #[test]
    fn gemm_matches_the_naive_product_on_ragged_shapes() {
        if !avx512() {
            return;
        }
        for &(m, n, k) in &[(1, 1, 1), (8, 32, 5), (9, 33, 7), (13, 47, 16), (3, 17, 0)] {
            let (lda, ldb, ldc) = (k + 3, n + 5, n + 2);
            let a = data(m * lda, 1);
            let b = data(k.max(1) * ldb, 2);
            let bias = data(m, 3);
            for init in [Init::Zero, Init::Bias(&bias[..m]), Init::Load] {
                for clamp in [None, Some((-0.1, 0.2))] {
                    let g = Gemm {
                        m,
                        n,
                        k,
                        a: &a[..m * lda],
                        lda,
                        b: &b[..k.max(1) * ldb],
                        ldb,
                        ldc,
                        init,
                        clamp,
                    };
                    let mut want = data(m * ldc, 4);
                    let mut got = want;
                    naive(&g, &mut want[..m * ldc]);
                    gemm(&g, &mut got[..m * ldc]);
                    for (w, v) in want.iter().zip(&got) {
                        assert!((w - v).abs() <= 1e-5, "{m}x{n}x{k}: {w} vs {v}");
                    }
                }
            }
        }
    }

    #[test]
    fn depthwise_matches_the_direct_sum() {
        if !avx512() {
            return;
        }
        for &(c, h, w, kh, kw, sy, sx, py, px) in &[
            (1, 7, 7, 3, 3, 1, 1, 1, 1),
            (11, 9, 37, 3, 3, 2, 2, 1, 1),
            (9, 5, 20, 5, 5, 1, 1, 2, 2),
            (2, 6, 35, 3, 3, 1, 2, 0, 0),
            (3, 6, 35, 2, 3, 1, 2, 1, 0),
            (1, 8, 19, 2, 4, 1, 1, 1, 2),
            (8, 11, 40, 5, 5, 2, 2, 2, 2),
        ] {
            let oh = (h + 2 * py - kh) / sy + 1;
            let ow = (w + 2 * px - kw) / sx + 1;
            let x = data(c * h * w, 5);
            let wk = data(c * kh * kw, 6);
            let bias = data(c, 7);
            let p = Plane {
                h,
                w,
                kh,
                kw,
                stride: [sy, sx],
                pad: [py, px],
                oh,
                ow,
            };
            let mut got = [0f32; 4096];
            let clamp = Some((-0.3, 0.6));
            depthwise(
                &p,
                c,
                &x,
                &wk,
                Some(&bias[..c]),
                &mut got[..c * oh * ow],
                clamp,
            );
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = bias[ch];
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * sy + ky) as isize - py as isize;
                                let ix = (ox * sx + kx) as isize - px as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    let xv = x[ch * h * w + iy as usize * w + ix as usize];
                                    s += wk[ch * kh * kw + ky * kw + kx] * xv;
                                }
                            }
                        }
                        let want = s.clamp(-0.3, 0.6);
                        let v = got[(ch * oh + oy) * ow + ox];
                        assert!((want - v).abs() <= 1e-5, "{c} {h}x{w}: {want} vs {v}");
                    }
                }
            }
        }
    }

    #[test]
    fn max_pool3_matches_the_window_max_and_keeps_nan() {
        if !avx512() {
            return;
        }
        for &(c, h, w, s, pad) in &[(9, 12, 37, 2, 1), (3, 7, 20, 1, 1), (2, 9, 18, 2, 0)] {
            let oh = (h + 2 * pad - 3) / s + 1;
            let ow = (w + 2 * pad - 3) / s + 1;
            let mut x = data(c * h * w, 8);
            x[5] = f32::NAN;
            let p = Plane {
                h,
                w,
                kh: 3,
                kw: 3,
                stride: [s, s],
                pad: [pad, pad],
                oh,
                ow,
            };
            let mut got = [0f32; 4096];
            max_pool3(&p, c, &x, &mut got[..c * oh * ow]);
            for ch in 0..c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut m = f32::NEG_INFINITY;
                        let mut nan = false;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let iy = (oy * s + ky) as isize - pad as isize;
                                let ix = (ox * s + kx) as isize - pad as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    let v = x[ch * h * w + iy as usize * w + ix as usize];
                                    nan |= v.is_nan();
                                    m = m.max(v);
                                }
                            }
                        }
                        let v = got[(ch * oh + oy) * ow + ox];
                        if nan {
                            assert!(v.is_nan());
                        } else {
                            assert_eq!(v, m);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn gather_row_reads_strided_elements_and_zeros_outside_the_row() {
        if !avx512() {
            return;
        }
        let row = data(70, 9);
        for sx in [1usize, 2] {
            for n in [0usize, 1, 7, 15, 16, 17, 40] {
                for off in [-3isize, -1, 0, 2, 30, 69, 75] {
                    let mut got = [7f32; 64];
                    gather_row(&mut got[..n], &row[..70], off, sx);
                    for (j, g) in got.iter().enumerate() {
                        let at = sx as isize * j as isize + off;
                        let want = if j >= n {
                            7.0
                        } else if (0..70).contains(&at) {
                            row[at as usize]
                        } else {
                            0.0
                        };
                        assert_eq!(*g, want, "sx {sx} n {n} off {off} at {j}");
                    }
                }
            }
        }
    }
}
