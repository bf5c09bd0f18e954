//! x86-64 SIMD building blocks for the speed variants: a register-tiled f32 matrix multiply, a
//! depthwise convolution plane, 3×3 max pooling and a strided row gather, each for AVX-512
//! (`zmm`, 16 lanes) and for AVX2 with FMA (`ymm`, 8 lanes). Invariant: this is the kernel
//! library's only SIMD unsafe code, and every public function here is safe to call: it runs an
//! extension's code only after that extension's `Isa::available()` said the CPU and the OS
//! support it, and every lane it loads or stores lies inside the slices it was given (lanes
//! outside them are masked off, so the hardware never touches them).
//!
//! The public functions are generic over the extension (`gemm::<Avx512>`, `gemm::<Avx2>`), so a
//! kernel variant's instance holds one extension's code only: `conv.pointwise_avx2` brings no
//! AVX-512 instruction and runs on any x86-64-v3 CPU.
//!
//! A generated crate compiled with `+avx512f,+fma` (or `+avx2,+fma`) answers `avx512()`
//! (`avx2()`) at compile time; etpkg itself, compiled for baseline x86-64, asks the CPU once and
//! caches the answer, so its own tests run these kernels wherever the machine allows.

/// A vector extension the building blocks run on.
pub trait Isa {
    /// The extension's name in kernel variant names (`conv.im2col_avx2`).
    const NAME: &'static str;
    /// AVX-512 (16 lanes) when true, AVX2 with FMA (8 lanes) otherwise.
    const WIDE: bool;
    /// Whether the CPU has the extension and the OS saves its registers.
    fn available() -> bool;
}

/// AVX-512F with FMA: 32 registers of 16 lanes, and mask registers for ragged edges.
pub enum Avx512 {}

/// AVX2 with FMA: 16 registers of 8 lanes; ragged edges use AVX's masked moves.
pub enum Avx2 {}

impl Isa for Avx512 {
    const NAME: &'static str = "avx512";
    const WIDE: bool = true;
    #[inline]
    fn available() -> bool {
        avx512()
    }
}

impl Isa for Avx2 {
    const NAME: &'static str = "avx2";
    const WIDE: bool = false;
    #[inline]
    fn available() -> bool {
        avx2()
    }
}

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
        detect::cached() & detect::AVX512 != 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether AVX2 and FMA can be used: the CPU has them and the OS saves the YMM state.
#[inline]
pub fn avx2() -> bool {
    #[cfg(all(
        target_arch = "x86_64",
        any(target_feature = "avx2", target_feature = "avx512f"),
        target_feature = "fma"
    ))]
    {
        true
    }
    #[cfg(all(
        target_arch = "x86_64",
        not(all(
            any(target_feature = "avx2", target_feature = "avx512f"),
            target_feature = "fma"
        ))
    ))]
    {
        detect::cached() & detect::AVX2 != 0
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

    /// Bits of `cached()`: the answer is known, AVX2 with FMA is usable, AVX-512F with FMA is.
    const KNOWN: u8 = 1;
    pub const AVX2: u8 = 2;
    pub const AVX512: u8 = 4;

    /// 0 until the CPU was asked, then `KNOWN` with the usable extensions' bits.
    static STATE: AtomicU8 = AtomicU8::new(0);

    pub fn cached() -> u8 {
        match STATE.load(Ordering::Relaxed) {
            0 => {
                let bits = ask() | KNOWN;
                STATE.store(bits, Ordering::Relaxed);
                bits
            }
            s => s,
        }
    }

    #[target_feature(enable = "xsave")]
    unsafe fn xcr0() -> u64 {
        _xgetbv(0)
    }

    #[allow(unused_unsafe)]
    fn ask() -> u8 {
        // SAFETY: every x86-64 CPU has CPUID, leaf 0 gives the highest leaf, and leaf 7 is read
        // only when it exists.
        let (max, l1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
        let fma = l1.ecx & (1 << 12) != 0;
        let osxsave = l1.ecx & (1 << 27) != 0;
        let avx = l1.ecx & (1 << 28) != 0;
        if !fma || !osxsave || !avx || max < 7 {
            return 0;
        }
        // SAFETY: as above; leaf 7 exists.
        let l7 = unsafe { __cpuid_count(7, 0) };
        // SAFETY: OSXSAVE is set, so XGETBV is available.
        let xcr0 = unsafe { xcr0() };
        let mut bits = 0;
        // AVX2 needs the OS to save the SSE and AVX state (XCR0 bits 1 and 2); AVX-512 also
        // the opmask and both halves of the ZMM registers (bits 5, 6 and 7).
        if l7.ebx & (1 << 5) != 0 && xcr0 & 0x6 == 0x6 {
            bits |= AVX2;
        }
        if l7.ebx & (1 << 16) != 0 && xcr0 & 0xe6 == 0xe6 {
            bits |= AVX512;
        }
        bits
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
    /// How many of the last columns the drivers compute as dot products along K (at most
    /// `DOT_COLS`; the AVX-512 driver only when K is at most 4096): see `tail_dots`, which
    /// callers set it from.
    pub dots: usize,
}

/// Most columns a product computes as dot products (`Gemm::dots`).
pub const DOT_COLS: usize = 4;

/// `Gemm::dots` for a product over columns `start..start + n` of rows `width` wide: those of
/// its columns that fall in the rows' ragged tail (past their last whole 16 columns) when that
/// tail is at most `DOT_COLS` wide. A broadcast tile that thin has one FMA chain a row, so
/// the FMA latency, not its throughput, sets its pace; a dot product keeps K in the lanes
/// instead (mobilenet_v2's 7×7 planes, 49 columns: three tiles and one column; its 960 → 320
/// convolution took 425 instead of 530 µs alone). The
/// choice is made from a column's place in the whole row, never from the block a thread took,
/// so that splitting the columns never changes how one is rounded.
pub fn tail_dots(width: usize, start: usize, n: usize) -> usize {
    let ragged = width % 16;
    let tail = if ragged <= DOT_COLS {
        width - ragged
    } else {
        width
    };
    (start + n).saturating_sub(tail.max(start)).min(n)
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
            && self.dots <= DOT_COLS.min(self.n)
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

/// Runs `g` into `c`. Panics when the CPU lacks the extension (callers check
/// `I::available()` first) or when the shapes reach outside the slices.
pub fn gemm<I: Isa>(g: &Gemm, c: &mut [f32]) {
    assert!(I::available(), "x86::gemm needs {}", I::NAME);
    assert!(
        g.in_bounds(c),
        "x86::gemm: operands shorter than their shapes"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU supports the extension, and `in_bounds` checked every row and column the
    // tiles read or write.
    unsafe {
        drive::<I>(g, c.as_mut_ptr());
    }
}

/// Runs `g` into columns `col..col + g.n` of rows `0..g.m` of `block`'s matrix, whose row
/// stride must be `g.ldc`: the product lands in place, with no scratch tile to copy out of.
/// Panics when the CPU lacks the extension, those columns are not the block's, or the operands
/// are short.
pub fn gemm_block<I: Isa>(g: &Gemm, block: &mut super::par::ColBlock<'_>, col: usize) {
    assert!(I::available(), "x86::gemm_block needs {}", I::NAME);
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
    // SAFETY: the CPU supports the extension; A, B and the bias were checked, and every element
    // written is in rows `0..m` (all the matrix's) and columns `col..col + n`, which lie inside
    // the block's columns, which only this task holds while `block` is borrowed.
    unsafe {
        drive::<I>(g, block.as_mut_ptr().add(col));
    }
}

/// One register tile of C: `rows × cols` (at most one tile's worth) over all of K, as the
/// driver hands it to an extension's `tile_any`.
#[cfg(target_arch = "x86_64")]
struct Tile<'a> {
    rows: usize,
    cols: usize,
    k: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    c: *mut f32,
    ldc: usize,
    init: Init<'a>,
    clamp: Option<(f32, f32)>,
}

/// Runs the GEMM with the extension's driver.
///
/// # Safety
/// `I` is available and `g.in_bounds(c)` holds for the C that `c` points to.
#[cfg(target_arch = "x86_64")]
unsafe fn drive<I: Isa>(g: &Gemm, c: *mut f32) {
    if I::WIDE {
        drive_zmm(g, c);
    } else {
        ymm::gemm(g, c);
    }
}

/// The AVX-512 GEMM driver: blocks of `NC` columns of C, and in each, tiles of `MR` rows by
/// 4 × 16 lanes in turn, B read in place.
///
/// # Safety
/// AVX-512F and FMA are available and `g.in_bounds(c)` holds for the C that `c` points to.
#[cfg(target_arch = "x86_64")]
unsafe fn drive_zmm(g: &Gemm, c: *mut f32) {
    let (mr, width) = (zmm::MR, zmm::NV * zmm::L);
    let (a, b) = (g.a.as_ptr(), g.b.as_ptr());
    // The last `g.dots` columns are dot products along K (`tail_dots`), from a copy packed
    // along K; a product deeper than the copy's room computes them as broadcast tiles.
    let dots = if g.k <= zmm::DOT_K { g.dots } else { 0 };
    let broad = g.n - dots;
    let mut packed = core::mem::MaybeUninit::<[f32; zmm::DOT_K * DOT_COLS]>::uninit();
    let columns = packed.as_mut_ptr().cast::<f32>();
    let mut n0 = 0;
    while n0 < g.n {
        let nc = NC.min(g.n - n0);
        // This block's broadcast columns are `n0..n0 + nbb`, its dot columns the rest.
        let nbb = broad.clamp(n0, n0 + nc) - n0;
        // Column `d` of the dot columns, transposed: element `t` is row `t` of B.
        for d in 0..nc - nbb {
            let src = b.add(n0 + nbb + d);
            for t in 0..g.k {
                *columns.add(d * zmm::DOT_K + t) = *src.add(t * g.ldb);
            }
        }
        let mut m0 = 0;
        while m0 < g.m {
            let rows = mr.min(g.m - m0);
            let init = match g.init {
                Init::Bias(bias) => Init::Bias(&bias[m0..]),
                other => other,
            };
            let mut t = Tile {
                rows,
                cols: 0,
                k: g.k,
                a: a.add(m0 * g.lda),
                lda: g.lda,
                b,
                ldb: g.ldb,
                c,
                ldc: g.ldc,
                init,
                clamp: g.clamp,
            };
            let mut j = 0;
            while j < nbb {
                t.cols = width.min(nbb - j);
                t.b = b.add(n0 + j);
                t.c = c.add(m0 * g.ldc + n0 + j);
                zmm::tile_any(&t);
                j += t.cols;
            }
            if nbb < nc {
                t.cols = nc - nbb;
                t.b = columns;
                t.ldb = zmm::DOT_K;
                t.c = c.add(m0 * g.ldc + n0 + nbb);
                zmm::dot_any(&t);
            }
            m0 += rows;
        }
        n0 += nc;
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
/// lacks the extension, the shape is not `supported`, or the slices are short.
pub fn depthwise<I: Isa>(
    p: &Plane,
    channels: usize,
    x: &[f32],
    wk: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    clamp: Option<(f32, f32)>,
) {
    assert!(I::available(), "x86::depthwise needs {}", I::NAME);
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
    // SAFETY: the extension is available, and the lengths were checked; the loads mask off
    // every lane outside its row.
    unsafe {
        if I::WIDE {
            zmm::depthwise(p, channels, x, wk, bias, y, clamp);
        } else {
            ymm::depthwise(p, channels, x, wk, bias, y, clamp);
        }
    }
}

/// 3×3 max pooling over `planes` planes (dilation 1, horizontal stride 1 or 2): `x` is
/// `planes·h·w`, `y` is `planes·oh·ow`. Taps outside the input are ignored and a NaN tap gives
/// NaN. Panics when the CPU lacks the extension, the shape is not `supported` with a 3×3
/// window, or the slices are short.
pub fn max_pool3<I: Isa>(p: &Plane, planes: usize, x: &[f32], y: &mut [f32]) {
    assert!(I::available(), "x86::max_pool3 needs {}", I::NAME);
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
        if I::WIDE {
            zmm::max_pool3(p, planes, x, y);
        } else {
            ymm::max_pool3(p, planes, x, y);
        }
    }
}

/// Floats of `with_zeroed`'s scratch: an im2col panel of 288 taps in rows of 144 floats.
pub const SCRATCH: usize = 288 * 144;

/// 64-byte aligned scratch floats.
#[repr(C, align(64))]
struct Scratch([f32; SCRATCH]);

/// Runs `f` on the first `len` floats (at most `SCRATCH`) of a 64-byte aligned buffer on the
/// stack, zeroed; the rest of the buffer is neither zeroed nor reachable.
pub fn with_zeroed(len: usize, f: impl FnOnce(&mut [f32])) {
    assert!(len <= SCRATCH, "x86::with_zeroed: {len} floats");
    let mut scratch = core::mem::MaybeUninit::<Scratch>::uninit();
    let base = scratch.as_mut_ptr().cast::<f32>();
    // SAFETY: the `len` floats are inside the buffer and zeroed (a valid f32) before the slice
    // over them is made; the slice does not outlive the buffer.
    let used = unsafe {
        base.write_bytes(0, len);
        core::slice::from_raw_parts_mut(base, len)
    };
    f(used);
}

/// Floats of `with_zeroed_parts`' buffer: 1 MiB.
pub const PARTS: usize = 1 << 18;

/// 64-byte aligned floats for `with_zeroed_parts`.
#[repr(C, align(64))]
struct Parts([f32; PARTS]);

/// Runs `f` on three zeroed, disjoint buffers of `lens` floats (together at most `PARTS`) on the
/// stack, each starting on a cache line; only those floats are zeroed.
pub fn with_zeroed_parts<const N: usize>(lens: [usize; N], f: impl FnOnce([&mut [f32]; N])) {
    let mut starts = [0usize; N];
    let mut end = 0usize;
    for (s, &len) in starts.iter_mut().zip(&lens) {
        *s = end;
        end = end
            .checked_add(len.div_ceil(16) * 16)
            .expect("x86::with_zeroed_parts: lengths overflow");
    }
    assert!(end <= PARTS, "x86::with_zeroed_parts: {end} floats");
    let mut parts = core::mem::MaybeUninit::<Parts>::uninit();
    let base = parts.as_mut_ptr().cast::<f32>();
    // SAFETY: each range `starts[i]..starts[i] + lens[i]` lies inside the buffer (`end <=
    // PARTS`) and no two overlap (each starts past the previous one's end); each is zeroed (a
    // valid f32) before its slice is made, and the slices do not outlive the buffer.
    let slices = core::array::from_fn(|i| unsafe {
        let at = base.add(starts[i]);
        at.write_bytes(0, lens[i]);
        core::slice::from_raw_parts_mut(at, lens[i])
    });
    f(slices);
}

/// `out[ξ][l] = Σ_t k[l][t]·coef[t][ξ]`: sixteen 9-tap rows each weighed into sixteen values,
/// stored transposed (the Winograd kernel transform of sixteen channels). A broadcast
/// multiply-add per tap and row, then `transpose16`; left to LLVM, the same loops became
/// gathers across the rows. Panics when the CPU lacks the extension.
pub fn weigh16<I: Isa>(k: &[[f32; 9]; 16], coef: &[[f32; 16]; 9], out: &mut [[f32; 16]; 16]) {
    assert!(I::available(), "x86::weigh16 needs {}", I::NAME);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the extension is available; every load and store stays inside the arrays.
    unsafe {
        if I::WIDE {
            zmm::weigh16(k, coef, out);
        } else {
            ymm::weigh16(k, coef, out);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (k, coef);
    transpose16::<I>(out);
}

/// Transposes the 16×16 matrix `m` in place with the extension's shuffles (LLVM turns the plain
/// loop into gathers, which took most of the Winograd kernel transform's time on Zen 4).
/// Panics when the CPU lacks the extension.
pub fn transpose16<I: Isa>(m: &mut [[f32; 16]; 16]) {
    assert!(I::available(), "x86::transpose16 needs {}", I::NAME);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the extension is available; the loads and stores stay inside `m`.
    unsafe {
        if I::WIDE {
            zmm::transpose16(m);
        } else {
            ymm::transpose16(m);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = m;
}

/// `dst[j] = row[sx·j + off]` for stride `sx` 1 or 2, and 0 where that index falls outside
/// `row`: one row segment of an im2col panel, padding included, in masked vector loads and
/// stores. Panics when the CPU lacks the extension, `sx` is not 1 or 2, or the indices could
/// overflow.
pub fn gather_row<I: Isa>(dst: &mut [f32], row: &[f32], off: isize, sx: usize) {
    assert!(I::available(), "x86::gather_row needs {}", I::NAME);
    assert!(sx == 1 || sx == 2, "x86::gather_row: stride {sx}");
    assert!(row.len() < (1 << 30) && dst.len() < (1 << 28) && off.unsigned_abs() < (1 << 30));
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the extension is available; every load is masked to indices inside `row` and
    // every store to `dst` (the bounds above keep the index arithmetic from overflowing).
    unsafe {
        match (I::WIDE, sx) {
            (true, 1) => zmm::gather_row::<1>(dst, row, off),
            (true, _) => zmm::gather_row::<2>(dst, row, off),
            (false, 1) => ymm::gather_row::<1>(dst, row, off),
            (false, _) => ymm::gather_row::<2>(dst, row, off),
        }
    }
}

/// A 3×3 stride-2 convolution with at most `STEM_MAX_CIN` input channels, one group and
/// dilation 1 (a network's first layer, on the image): `x` is `c_in · h · w`, the weights
/// `c_out · c_in · 9`, the output `c_out` planes of `oh · ow`.
#[derive(Clone, Copy, Debug)]
pub struct Stem {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    /// `[vertical, horizontal]`, each 0 or 1.
    pub pad: [usize; 2],
    pub oh: usize,
    pub ow: usize,
}

/// Most input channels `stem_avx2` takes.
pub const STEM_MAX_CIN: usize = 4;

impl Stem {
    /// Floats between the even and the odd half of a split input row: room for the last
    /// output vector's taps and for `ymm::split_row`'s whole-vector stores.
    fn half(&self) -> usize {
        (self.ow.div_ceil(8) * 8 + 1).max((self.w + self.pad[1]) / 2 + 8 + 1)
    }

    /// Whether `stem_avx2` computes this shape: the split rows of one output row (three of
    /// each input channel) fit `with_zeroed`'s scratch.
    pub fn supported(&self) -> bool {
        (1..=STEM_MAX_CIN).contains(&self.c_in)
            && self.pad[0] <= 1
            && self.pad[1] <= 1
            && self.w < (1 << 20)
            && self.h < (1 << 20)
            && self.ow >= 1
            && self.oh >= 1
            && self.c_in * 3 * 2 * self.half() <= SCRATCH
            && (self.oh - 1) * 2 + 3 <= self.h + 2 * self.pad[0]
            && (self.ow - 1) * 2 + 3 <= self.w + 2 * self.pad[1]
    }
}

/// Computes the stem convolution `p` into `y` (`c_out` planes of `oh · ow`), with `clamp`
/// applied as `Act::Clamp` does, using AVX2 with FMA. Each output row's input rows are first
/// split by column parity, padding included, so that every stride-2 tap is a plain vector
/// load; a register tile then takes four output channels by two vectors of columns through
/// all 9·`c_in` taps. Panics when the CPU lacks AVX2 and FMA, the shape is not `supported`,
/// or the slices are short.
pub fn stem_avx2(
    p: &Stem,
    x: &[f32],
    wk: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    clamp: Option<(f32, f32)>,
) {
    assert!(Avx2::available(), "x86::stem_avx2 needs avx2");
    assert!(
        p.supported()
            && x.len() >= p.c_in * p.h * p.w
            && wk.len() >= p.c_out * p.c_in * 9
            && bias.is_none_or(|b| b.len() >= p.c_out)
            && y.len() >= p.c_out * p.oh * p.ow,
        "x86::stem_avx2: operands shorter than their shapes"
    );
    let half = p.half();
    let rows_len = p.c_in * 3 * 2 * half;
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, wk, bias, y, clamp, rows_len);
    #[cfg(target_arch = "x86_64")]
    with_zeroed(rows_len, |rows| {
        for oy in 0..p.oh {
            // SAFETY: AVX2 and FMA are available, `p.supported()` and the lengths were
            // checked above, and `rows` holds `c_in · 3` split rows.
            unsafe { ymm::stem_row(p, half, oy, x, wk, bias, rows, y, clamp) };
        }
    });
}

/// Where the `KH` input rows that output row `oy` of a depthwise or pooling plane reads start,
/// and which of them lie inside the plane.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn live_rows<const KH: usize>(p: &Plane, oy: usize) -> ([usize; KH], [bool; KH]) {
    let mut rows = [0usize; KH];
    let mut live = [false; KH];
    for ky in 0..KH {
        let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
        if iy >= 0 && iy < p.h as isize {
            live[ky] = true;
            rows[ky] = iy as usize * p.w;
        }
    }
    (rows, live)
}

/// Walks `channels` planes in blocks of `CB`, then one at a time, calling `f(first, count,
/// biases)` with `count` `CB` or 1 and the block's biases (zeros without a bias): blocks give
/// the kernels `CB` independent accumulator chains.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn channel_blocks<const CB: usize>(
    channels: usize,
    bias: Option<&[f32]>,
    mut f: impl FnMut(usize, usize, &[f32; CB]),
) {
    let bias_of = |c: usize| bias.map_or(0.0, |b| b[c]);
    let mut c = 0;
    while c + CB <= channels {
        f(c, CB, &core::array::from_fn(|i| bias_of(c + i)));
        c += CB;
    }
    while c < channels {
        let mut one = [0.0; CB];
        one[0] = bias_of(c);
        f(c, 1, &one);
        c += 1;
    }
}

/// Calls `f(x, w, bias, y)` with each channel's input plane, kernel, bias and output plane:
/// the depthwise path for kernel sizes without a compiled-in instance.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn each_plane(
    p: &Plane,
    channels: usize,
    x: &[f32],
    wk: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mut f: impl FnMut(&[f32], &[f32], f32, &mut [f32]),
) {
    let (hw, ohw, kk) = (p.h * p.w, p.oh * p.ow, p.kh * p.kw);
    for c in 0..channels {
        f(
            &x[c * hw..][..hw],
            &wk[c * kk..][..kk],
            bias.map_or(0.0, |b| b[c]),
            &mut y[c * ohw..][..ohw],
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod zmm {
    use super::{Init, Plane, Tile};
    use core::arch::x86_64::*;

    /// Rows of C per tile: 6 rows × 4 vectors is 24 accumulators, and with the four B vectors
    /// and a broadcast it fits the 32 ZMM registers. Per step of K it loads 4 vectors and 6
    /// scalars for 24 FMAs; on the conv shapes of scripts/peer_bench.py it beat 8×2, 12×2 and
    /// 4×4 by 3–10%.
    pub const MR: usize = 6;
    /// Vectors of C per tile row.
    pub const NV: usize = 4;
    /// Lanes per vector.
    pub const L: usize = 16;
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

    /// Runs one tile with the instance for its row count and vector count.
    ///
    /// # Safety
    /// AVX-512F and FMA are available, and the tile's rows and columns of A, B and C are
    /// inside the operands (the driver's caller checked).
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn tile_any(t: &Tile) {
        let masks: [__mmask16; NV] = core::array::from_fn(|v| mask(t.cols.saturating_sub(v * L)));
        let (k, a, lda, b, ldb, c, ldc) = (t.k, t.a, t.lda, t.b, t.ldb, t.c, t.ldc);
        let (init, clamp) = (t.init, t.clamp);
        macro_rules! go {
            ($r:literal) => {
                match t.cols.div_ceil(L) {
                    4 => tile::<$r, 4>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    3 => tile::<$r, 3>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    2 => tile::<$r, 2>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    _ => tile::<$r, 1>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                }
            };
        }
        match t.rows {
            6 => go!(6),
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
    }

    /// # Safety
    /// AVX-512F and FMA are available.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn weigh16(k: &[[f32; 9]; 16], coef: &[[f32; 16]; 9], out: &mut [[f32; 16]; 16]) {
        let c: [__m512; 9] = core::array::from_fn(|t| _mm512_loadu_ps(coef[t].as_ptr()));
        for (row, kl) in out.iter_mut().zip(k) {
            // Two chains, so that nine dependent multiply-adds do not set the pace.
            let mut a = _mm512_mul_ps(_mm512_set1_ps(kl[0]), c[0]);
            let mut b = _mm512_mul_ps(_mm512_set1_ps(kl[1]), c[1]);
            for t in (2..9).step_by(2) {
                a = _mm512_fmadd_ps(_mm512_set1_ps(kl[t]), c[t], a);
                if t + 1 < 9 {
                    b = _mm512_fmadd_ps(_mm512_set1_ps(kl[t + 1]), c[t + 1], b);
                }
            }
            _mm512_storeu_ps(row.as_mut_ptr(), _mm512_add_ps(a, b));
        }
    }

    /// # Safety
    /// AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose16(m: &mut [[f32; 16]; 16]) {
        let r: [__m512; 16] = core::array::from_fn(|i| _mm512_loadu_ps(m[i].as_ptr()));
        // Pairs of rows interleaved, then pairs of pairs: `u[4q + c]` holds, in each 128-bit
        // lane k, rows 4q..4q + 4 of column 4k + c.
        let mut u = [_mm512_setzero_ps(); 16];
        for q in 0..4 {
            let (a, b, c, d) = (r[4 * q], r[4 * q + 1], r[4 * q + 2], r[4 * q + 3]);
            let (t0, t1) = (_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
            let (t2, t3) = (_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
            let pd = _mm512_castps_pd;
            u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t0), pd(t2)));
            u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t0), pd(t2)));
            u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t1), pd(t3)));
            u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t1), pd(t3)));
        }
        // Column 4k + c gathers lane k of u[c], u[4 + c], u[8 + c] and u[12 + c].
        for c in 0..4 {
            let lo01 = _mm512_shuffle_f32x4::<0x44>(u[c], u[4 + c]);
            let lo23 = _mm512_shuffle_f32x4::<0x44>(u[8 + c], u[12 + c]);
            let hi01 = _mm512_shuffle_f32x4::<0xee>(u[c], u[4 + c]);
            let hi23 = _mm512_shuffle_f32x4::<0xee>(u[8 + c], u[12 + c]);
            let cols = [
                _mm512_shuffle_f32x4::<0x88>(lo01, lo23),
                _mm512_shuffle_f32x4::<0xdd>(lo01, lo23),
                _mm512_shuffle_f32x4::<0x88>(hi01, hi23),
                _mm512_shuffle_f32x4::<0xdd>(hi01, hi23),
            ];
            for (k, v) in cols.iter().enumerate() {
                _mm512_storeu_ps(m[4 * k + c].as_mut_ptr(), *v);
            }
        }
    }

    /// The deepest product whose dot-product columns `super::drive_zmm` packs (64 KiB for
    /// four columns); deeper ones compute them as broadcast tiles.
    pub const DOT_K: usize = 4096;

    /// One `R × C` tile of C as dot products along K: `t.a`'s rows (contiguous along K) times
    /// `C` columns of B packed along K, `t.ldb` floats apart. Each sum keeps sixteen partial
    /// sums in a vector's lanes, added up at the end, then adds the tile's initial value. A
    /// 7×7 plane's 49 columns otherwise end in a tile whose last vector has one live lane of 16.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn dot<const R: usize, const C: usize>(t: &Tile) {
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        let rows: [*const f32; R] = core::array::from_fn(|i| t.a.add(i * t.lda));
        let mut kk = 0;
        while kk < t.k {
            let m = mask(t.k - kk);
            let bv: [__m512; C] =
                core::array::from_fn(|j| _mm512_maskz_loadu_ps(m, t.b.add(j * t.ldb + kk)));
            for i in 0..R {
                let av = _mm512_maskz_loadu_ps(m, rows[i].add(kk));
                for j in 0..C {
                    acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
                }
            }
            kk += L;
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let at = t.c.add(i * t.ldc + j);
                let sum = _mm512_reduce_add_ps(*v);
                let mut s = match t.init {
                    Init::Zero => sum,
                    Init::Bias(bias) => *bias.get_unchecked(i) + sum,
                    Init::Load => *at + sum,
                };
                if let Some((lo, hi)) = t.clamp {
                    // As MAXPS/MINPS in `tile`: a NaN passes, `lo > hi` gives `hi`.
                    if s < lo {
                        s = lo;
                    }
                    if s > hi {
                        s = hi;
                    }
                }
                *at = s;
            }
        }
    }

    /// Runs the dot columns of a row tile (`dot`): whole row tiles with the 6-row instances,
    /// a ragged last one a row at a time; up to four columns, in pairs.
    ///
    /// # Safety
    /// As `tile_any`, with `t.b` the packed columns and `t.ldb` their stride.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn dot_any(t: &Tile) {
        let mut d = 0;
        while d < t.cols {
            let two = t.cols - d >= 2;
            let mut u = Tile {
                b: t.b.add(d * t.ldb),
                c: t.c.add(d),
                ..*t
            };
            if t.rows == MR {
                if two {
                    dot::<MR, 2>(&u)
                } else {
                    dot::<MR, 1>(&u)
                }
            } else {
                for i in 0..t.rows {
                    u.a = t.a.add(i * t.lda);
                    u.c = t.c.add(i * t.ldc + d);
                    u.init = match t.init {
                        Init::Bias(bias) => Init::Bias(&bias[i..]),
                        other => other,
                    };
                    if two {
                        dot::<1, 2>(&u)
                    } else {
                        dot::<1, 1>(&u)
                    }
                }
            }
            d += if two { 2 } else { 1 };
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
            let (rows, live) = super::live_rows::<KH>(p, oy);
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
        let kk = if MAX { 0 } else { KH * KW };
        super::channel_blocks::<CB>(channels, bias, |c, n, bv| {
            let (xs, ws, ys) = (
                x.as_ptr().add(c * p.h * p.w),
                wk.as_ptr().add(c * kk),
                y.as_mut_ptr().add(c * p.oh * p.ow),
            );
            if n == CB {
                planes_fixed::<KH, KW, SX, CB, MAX>(p, xs, ws, bv, ys, lo, hi);
            } else {
                planes_fixed::<KH, KW, SX, 1, MAX>(p, xs, ws, &[bv[0]], ys, lo, hi);
            }
        });
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
            (_, _, sx) => super::each_plane(p, channels, x, wk, bias, y, |xc, wc, bc, yc| {
                if sx == 1 {
                    plane_any::<1>(p, xc, wc, bc, yc, lo, hi);
                } else {
                    plane_any::<2>(p, xc, wc, bc, yc, lo, hi);
                }
            }),
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

/// The AVX2 instances: the same algorithms as `zmm` on 8-lane registers. AVX2 has no mask
/// registers, so ragged edges use AVX's masked moves (`vmaskmovps`), whose masked-off lanes
/// neither fault nor write, with masks held as vectors of all-ones or zero lanes.
#[cfg(target_arch = "x86_64")]
mod ymm {
    use super::{Gemm, Init, Plane, Tile};
    use core::arch::x86_64::*;

    /// Rows of C per tile: 6 rows × 2 vectors is 12 accumulators, which with the two B vectors
    /// and a broadcast fit the 16 YMM registers. (4 × 3 needs fewer broadcasts and was up to
    /// 13% faster alone, but with this tile's masks and prefetches LLVM spilled accumulators in
    /// its loop: mobilenet_v2 went from 18 to 25 ms.)
    pub const MR: usize = 6;
    /// Vectors of C per tile row.
    pub const NV: usize = 2;
    /// Lanes per vector.
    pub const L: usize = 8;
    /// How far ahead (in floats) the tiles prefetch A's rows.
    const PREFETCH: usize = 64;

    /// Eight all-ones lanes then eight zero lanes: the eight lanes from `8 − n` are the mask
    /// of the first `n` lanes.
    static ONES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// The mask of the first `lanes` lanes (all of them from 8 up).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn mask(lanes: usize) -> __m256i {
        _mm256_loadu_si256(ONES.as_ptr().add(L - lanes.min(L)).cast())
    }

    /// Lanes `t` of an 8-lane load at element `start` whose element `start + t` is in
    /// `[0, len)`, limited to the first `lanes`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn valid(start: isize, len: usize, lanes: usize) -> __m256i {
        let lo = (-start).clamp(0, L as isize) as usize;
        let hi = (len as isize - start).clamp(0, lanes.min(L) as isize) as usize;
        if lo >= hi {
            _mm256_setzero_si256()
        } else {
            _mm256_andnot_si256(mask(lo), mask(hi))
        }
    }

    /// The lanes `m` selects loaded from `at`, and `fill` in the others when `BLEND` (zeros
    /// otherwise: the masked load's own fill, which depthwise sums need).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load_fill<const BLEND: bool>(fill: __m256, m: __m256i, at: *const f32) -> __m256 {
        let v = _mm256_maskload_ps(at, m);
        if BLEND {
            _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(m))
        } else {
            v
        }
    }

    /// Stores the first `lanes` lanes of `v` at `at`: a plain store for a whole vector, since
    /// AMD's Zen cores run a masked store (`vmaskmovps`) as a slow microcoded sequence.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store(at: *mut f32, lanes: usize, v: __m256) {
        if lanes >= L {
            _mm256_storeu_ps(at, v);
        } else {
            _mm256_maskstore_ps(at, mask(lanes), v);
        }
    }

    /// A whole vector at `at` when `FULL`, else the lanes `m` selects (zeros elsewhere).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load<const FULL: bool>(m: __m256i, at: *const f32) -> __m256 {
        if FULL {
            _mm256_loadu_ps(at)
        } else {
            _mm256_maskload_ps(at, m)
        }
    }

    /// Lanes 0, 2, 4, 6 of `a` then of `b`: the even elements of 16 consecutive ones.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn evens(a: __m256, b: __m256) -> __m256 {
        // Within each 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6; then the 64-bit pairs reordered.
        let t = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(t)))
    }

    /// Lanes 1, 3, 5, 7 of `a` then of `b`: the odd elements of 16 consecutive ones.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn odds(a: __m256, b: __m256) -> __m256 {
        let t = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(t)))
    }

    /// One `R × (8·V)` tile of C, as `zmm::tile`; `FULL` tiles load and store whole vectors.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const V: usize, const FULL: bool>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        masks: [__m256i; NV],
        init: Init,
        clamp: Option<(f32, f32)>,
    ) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        match init {
            Init::Zero => {}
            Init::Bias(bias) => {
                for (i, row) in acc.iter_mut().enumerate() {
                    *row = [_mm256_set1_ps(*bias.get_unchecked(i)); V];
                }
            }
            Init::Load => {
                for (i, row) in acc.iter_mut().enumerate() {
                    for (v, x) in row.iter_mut().enumerate() {
                        *x = load::<FULL>(masks[v], c.add(i * ldc + v * L));
                    }
                }
            }
        }
        // A step should be its loads, broadcasts and FMAs and little else: on this 2-vCPU
        // host the core is at times shared with another guest's thread, and then the
        // instructions a step issues, not its FMAs, set the pace. So four steps run between
        // loop tests, the prefetch is issued once per 16 steps instead of tested every step,
        // and rows are offsets from two bases: the same unrolled loop over an array of six
        // row pointers indexed by the step ran 1.3–1.9× slower. The per-step loop this
        // replaced issued 30 instructions for 12 FMAs; in such shared phases the 1×1
        // convolutions of mobilenet_v2 took 0.74–0.92 of its time (0.95–1.01 otherwise).
        let stride = lda * 4;
        let mut lo = a;
        let mut hi = a.add(3 * lda);
        let mut bp = b;
        // The address of A's row `i` at depth offset `d` from the current step.
        macro_rules! row {
            ($i:expr, $d:expr) => {
                if $i < 3 {
                    lo.byte_add($i * stride).add($d)
                } else {
                    hi.byte_add(($i - 3) * stride).add($d)
                }
            };
        }
        macro_rules! step {
            ($d:expr) => {{
                let bq = bp.add($d * ldb);
                let mut bv = [_mm256_setzero_ps(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = load::<FULL>(masks[v], bq.add(v * L));
                }
                for i in 0..R {
                    let av = _mm256_broadcast_ss(&*row!(i, $d));
                    for v in 0..V {
                        acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
                    }
                }
            }};
        }
        let mut kk = 0;
        while kk < k {
            // As in `zmm::tile`: A's rows are separate streams the hardware prefetcher does
            // not keep up with when the weights come from memory; one prefetch a row per
            // 16 steps (a cache line).
            for i in 0..R {
                _mm_prefetch::<_MM_HINT_T0>(row!(i, PREFETCH).cast::<i8>());
            }
            let end = (kk + 16).min(k);
            while kk + 4 <= end {
                step!(0);
                step!(1);
                step!(2);
                step!(3);
                lo = lo.add(4);
                hi = hi.add(4);
                bp = bp.add(4 * ldb);
                kk += 4;
            }
            while kk < end {
                step!(0);
                lo = lo.add(1);
                hi = hi.add(1);
                bp = bp.add(ldb);
                kk += 1;
            }
        }
        if let Some((lo, hi)) = clamp {
            let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
            for row in acc.iter_mut() {
                for x in row.iter_mut() {
                    // MAXPS/MINPS return the second operand when either is NaN, so a NaN sum
                    // passes through both, as `Act::Clamp` requires.
                    *x = _mm256_min_ps(hi, _mm256_max_ps(lo, *x));
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let at = c.add(i * ldc + v * L);
                if FULL {
                    _mm256_storeu_ps(at, *x);
                } else {
                    _mm256_maskstore_ps(at, masks[v], *x);
                }
            }
        }
    }

    /// Runs one tile with the instance for its row count, vector count and raggedness. Whole
    /// tiles run inline, the others through `tile_ragged`: as one call with a jump table, the
    /// unrolled tiles were too large to inline, and the call cost the 16-deep 16 → 96
    /// expansion of mobilenet_v2 a fifth of its time.
    ///
    /// # Safety
    /// AVX2 and FMA are available, and the tile's rows and columns of A, B and C are inside
    /// the operands (the driver's caller checked).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn tile_any(t: &Tile) {
        if t.rows == MR && t.cols == NV * L {
            let (k, a, lda, b, ldb, c, ldc) = (t.k, t.a, t.lda, t.b, t.ldb, t.c, t.ldc);
            let masks = [_mm256_setzero_si256(); NV];
            tile::<MR, NV, true>(k, a, lda, b, ldb, c, ldc, masks, t.init, t.clamp);
        } else {
            tile_ragged(t);
        }
    }

    /// `tile_any` for a tile with fewer than `MR` rows or `NV · L` columns.
    ///
    /// # Safety
    /// As `tile_any`.
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    unsafe fn tile_ragged(t: &Tile) {
        let masks: [__m256i; NV] = [mask(t.cols), mask(t.cols.saturating_sub(L))];
        let (k, a, lda, b, ldb, c, ldc) = (t.k, t.a, t.lda, t.b, t.ldb, t.c, t.ldc);
        let (init, clamp) = (t.init, t.clamp);
        macro_rules! go {
            ($r:literal) => {
                match t.cols {
                    16 => tile::<$r, 2, true>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    9..=15 => tile::<$r, 2, false>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    8 => tile::<$r, 1, true>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                    _ => tile::<$r, 1, false>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                }
            };
        }
        // A whole 6-row tile never comes here; leaving its instance to `tile_any` alone keeps
        // it inlined there.
        match t.rows {
            6 => match t.cols {
                8 => tile::<6, 1, true>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                9.. => tile::<6, 2, false>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
                _ => tile::<6, 1, false>(k, a, lda, b, ldb, c, ldc, masks, init, clamp),
            },
            5 => go!(5),
            4 => go!(4),
            3 => go!(3),
            2 => go!(2),
            _ => go!(1),
        }
    }

    /// Depth of one packed block of B: most 1×1 convolutions fit one block, so a row tile of A
    /// is six whole rows of weights, one sequential stream from memory.
    const KC: usize = 512;
    /// Columns of one packed block of B: `KC × NB` floats (256 KiB) stay in L2 while every row
    /// tile of A, itself kept in L1, passes over its 16-column panels.
    const NB: usize = 8 * NV * L;

    /// The most floats of B (rows times their stride) that tiles read in place, unpacked:
    /// such a B (an im2col panel of the first convolution, 27 rows of 144) sits in L1
    /// already; read in place, the first convolution took 0.92–0.95 of its time.
    const IN_PLACE_FLOATS: usize = 4096;
    /// The deepest B that tiles read in place whatever its width, as measured: mobilenet_v2's
    /// 16 → 96 expansion at 112×112 took 0.85–0.95 of its time in place, while the 24- and
    /// 32-row expansions at 56×56 and 28×28 ran 5–12% slower.
    const IN_PLACE_K: usize = 16;
    /// A 32-byte aligned block of B, stored as `NB / 16` panels of `KC × 16` floats.
    #[repr(C, align(32))]
    struct Panels([f32; KC * NB]);

    /// The dot-product columns of a block of B (`Gemm::dots`), each `KC` floats along K.
    #[repr(C, align(32))]
    struct Columns([f32; KC * super::DOT_COLS]);

    /// The AVX2 GEMM driver. B is packed `KC` rows by `NB` columns at a time into contiguous,
    /// aligned 16-column panels on the stack; each row tile of A then sweeps all the block's
    /// panels, so its `6 × KC` floats are read from memory once and from L1 after that, and
    /// every B load is a sequential, aligned one. Read in place instead (as `drive_zmm` does),
    /// B's rows (a feature map's planes, `hw` floats apart) cost a cache miss and often a
    /// line-split load per step of K, and A was fetched again for every column tile: on Zen 3,
    /// with a quarter of the L2 of the AVX-512 machines `drive_zmm` was tuned on, mobilenet_v2's
    /// 7×7 and 14×14 convolutions ran at 35–45% of the FMA peak that way. A B that is
    /// shallow or small (`IN_PLACE_K`, `IN_PLACE_FLOATS`) is read in place. The last `g.dots`
    /// columns are packed along K instead and computed by `dot_any`, after the row tile's
    /// broadcast tiles, while its rows of A are still in L1.
    ///
    /// # Safety
    /// AVX2 and FMA are available and `g.in_bounds(c)` holds for the C that `c` points to.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm(g: &Gemm, c: *mut f32) {
        let width = NV * L;
        // Left uninitialized: a tile reads only the rows packed into it (ragged ones are
        // zero-filled), and zeroing 256 KiB per call cost more than small products.
        let mut block = core::mem::MaybeUninit::<Panels>::uninit();
        let panels = block.as_mut_ptr().cast::<f32>();
        let mut dot_block = core::mem::MaybeUninit::<Columns>::uninit();
        let columns = dot_block.as_mut_ptr().cast::<f32>();
        // Columns from `broad` on are dot products.
        let broad = g.n - g.dots;
        let in_place = g.k <= IN_PLACE_K || g.k.saturating_mul(g.ldb) <= IN_PLACE_FLOATS;
        let mut n0 = 0;
        while n0 < g.n {
            let nb = NB.min(g.n - n0);
            // This block's broadcast columns are `n0..n0 + nbb`, its dot columns the rest.
            let nbb = broad.clamp(n0, n0 + nb) - n0;
            let mut k0 = 0;
            // `k == 0` still makes one pass, to store the initial values (and clamp them).
            while k0 < g.k || (k0 == 0 && g.k == 0) {
                let kc = KC.min(g.k - k0);
                let last = k0 + kc == g.k;
                // Panel `j / 16` holds columns `n0 + j ..` of rows `k0 .. k0 + kc` (none are
                // packed when B is read in place).
                let mut j = if in_place { nbb } else { 0 };
                while j < nbb {
                    let cols = width.min(nbb - j);
                    let panel = panels.add(j * KC);
                    // Vector moves, whole rows of the panel (masked loads zero-fill a ragged
                    // one): a `memcpy` call per 64 bytes was a tenth of mobilenet_v2's time.
                    let m: [__m256i; NV] =
                        core::array::from_fn(|v| mask(cols.saturating_sub(v * L)));
                    for t in 0..kc {
                        let src = g.b.as_ptr().add((k0 + t) * g.ldb + n0 + j);
                        let dst = panel.add(t * width);
                        for (v, mv) in m.iter().enumerate() {
                            let x = if cols == width {
                                _mm256_loadu_ps(src.add(v * L))
                            } else {
                                _mm256_maskload_ps(src.add(v * L), *mv)
                            };
                            _mm256_store_ps(dst.add(v * L), x);
                        }
                    }
                    j += cols;
                }
                // Column `d` of the dot columns, transposed: element `t` is row `k0 + t`.
                for d in 0..nb - nbb {
                    let src = g.b.as_ptr().add(k0 * g.ldb + n0 + nbb + d);
                    for t in 0..kc {
                        *columns.add(d * KC + t) = *src.add(t * g.ldb);
                    }
                }
                let mut m0 = 0;
                while m0 < g.m {
                    let rows = MR.min(g.m - m0);
                    let init = match (k0, g.init) {
                        (0, Init::Bias(bias)) => Init::Bias(&bias[m0..]),
                        (0, other) => other,
                        _ => Init::Load,
                    };
                    let mut t = Tile {
                        rows,
                        cols: 0,
                        k: kc,
                        a: g.a.as_ptr().add(m0 * g.lda + k0),
                        lda: g.lda,
                        b: panels,
                        ldb: width,
                        c: c.add(m0 * g.ldc + n0),
                        ldc: g.ldc,
                        init,
                        clamp: if last { g.clamp } else { None },
                    };
                    let mut j = 0;
                    while j < nbb {
                        t.cols = width.min(nbb - j);
                        if in_place {
                            t.b = g.b.as_ptr().add(k0 * g.ldb + n0 + j);
                            t.ldb = g.ldb;
                        } else {
                            t.b = panels.add(j * KC);
                        }
                        t.c = c.add(m0 * g.ldc + n0 + j);
                        tile_any(&t);
                        j += t.cols;
                    }
                    // Pairs of dot columns, then the odd one.
                    let mut d = 0;
                    while d < nb - nbb {
                        t.cols = 2.min(nb - nbb - d);
                        t.b = columns.add(d * KC);
                        t.ldb = KC;
                        t.c = c.add(m0 * g.ldc + n0 + nbb + d);
                        dot_any(&t);
                        d += t.cols;
                    }
                    m0 += rows;
                }
                if last {
                    break;
                }
                k0 += kc;
            }
            n0 += nb;
        }
    }

    /// One `R × C` tile of C as dot products along K: `t.a`'s rows (contiguous along K) times
    /// `C` columns of B packed along K, `t.ldb` floats apart. Each sum keeps eight partial sums
    /// in a vector's lanes, added up at the end, then adds the tile's initial value.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot<const R: usize, const C: usize>(t: &Tile) {
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let rows: [*const f32; R] = core::array::from_fn(|i| t.a.add(i * t.lda));
        let full = t.k - t.k % L;
        let mut kk = 0;
        while kk < full {
            // The rows of A are separate streams, as in `tile`.
            if kk % 16 == 0 {
                for row in rows.iter() {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(kk + PREFETCH).cast::<i8>());
                }
            }
            let bv: [__m256; C] =
                core::array::from_fn(|j| _mm256_loadu_ps(t.b.add(j * t.ldb + kk)));
            for i in 0..R {
                let av = _mm256_loadu_ps(rows[i].add(kk));
                for j in 0..C {
                    acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
                }
            }
            kk += L;
        }
        if kk < t.k {
            // Both operands masked: the packed column's lanes past K were never written.
            let m = mask(t.k - kk);
            let bv: [__m256; C] =
                core::array::from_fn(|j| _mm256_maskload_ps(t.b.add(j * t.ldb + kk), m));
            for i in 0..R {
                let av = _mm256_maskload_ps(rows[i].add(kk), m);
                for j in 0..C {
                    acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
                }
            }
        }
        let clamp = t.clamp.map(|(lo, hi)| (_mm_set_ss(lo), _mm_set_ss(hi)));
        for (i, row) in acc.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let at = t.c.add(i * t.ldc + j);
                let h = _mm_add_ps(_mm256_castps256_ps128(*v), _mm256_extractf128_ps::<1>(*v));
                let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                let mut s = _mm_add_ss(h, _mm_movehdup_ps(h));
                s = match t.init {
                    Init::Zero => s,
                    Init::Bias(bias) => _mm_add_ss(_mm_set_ss(*bias.get_unchecked(i)), s),
                    Init::Load => _mm_add_ss(_mm_set_ss(*at), s),
                };
                if let Some((lo, hi)) = clamp {
                    // As in `tile`: MAXSS/MINSS return the second operand on a NaN.
                    s = _mm_min_ss(hi, _mm_max_ss(lo, s));
                }
                *at = _mm_cvtss_f32(s);
            }
        }
    }

    /// Runs one dot tile (`dot`): whole row tiles with the 6-row instance, the ragged last one
    /// a row at a time (instances for every row count took 17.6 KB of code for the one tile of
    /// a product that has them).
    ///
    /// # Safety
    /// As `tile_any`, with `t.b` the packed columns and `t.ldb` their stride.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_any(t: &Tile) {
        let two = t.cols == 2;
        if t.rows == MR {
            if two {
                dot::<MR, 2>(t)
            } else {
                dot::<MR, 1>(t)
            }
            return;
        }
        for i in 0..t.rows {
            let row = Tile {
                a: t.a.add(i * t.lda),
                c: t.c.add(i * t.ldc),
                init: match t.init {
                    Init::Bias(bias) => Init::Bias(&bias[i..]),
                    other => other,
                },
                ..*t
            };
            if two {
                dot::<1, 2>(&row)
            } else {
                dot::<1, 1>(&row)
            }
        }
    }

    /// One tap's input vector for output columns `ox0..ox0 + 8`: elements `sx·(ox0 + j) + off`
    /// of `row`, zero where they fall outside `[0, len)`. Stride 2 loads the 16 elements from
    /// `2·ox0 + off` and keeps the even ones.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tap<const SX: usize>(
        row: *const f32,
        ox0: usize,
        off: isize,
        len: usize,
        lanes: usize,
    ) -> __m256 {
        // Vectors wholly inside the row (all but the edges) load without masks: building the
        // two masks cost more than the loads.
        if SX == 1 {
            let start = ox0 as isize + off;
            if start >= 0 && lanes == L && start + L as isize <= len as isize {
                return _mm256_loadu_ps(row.offset(start));
            }
            _mm256_maskload_ps(row.wrapping_offset(start), valid(start, len, lanes))
        } else {
            let start = (2 * ox0) as isize + off;
            let far = start + L as isize;
            if start >= 0 && far + L as isize <= len as isize {
                return evens(
                    _mm256_loadu_ps(row.offset(start)),
                    _mm256_loadu_ps(row.offset(far)),
                );
            }
            let a = _mm256_maskload_ps(row.wrapping_offset(start), valid(start, len, L));
            let b = _mm256_maskload_ps(row.wrapping_offset(far), valid(far, len, L));
            evens(a, b)
        }
    }

    /// `CB` depthwise planes (or max-pooling planes with `MAX`) at once with the kernel size
    /// and horizontal stride fixed at compile time, as `zmm::planes_fixed`.
    #[target_feature(enable = "avx2,fma")]
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
        lo: __m256,
        hi: __m256,
    ) {
        let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
        let px = p.pad[1] as isize;
        let fill = if MAX {
            _mm256_set1_ps(f32::NEG_INFINITY)
        } else {
            _mm256_setzero_ps()
        };
        for oy in 0..p.oh {
            let (rows, live) = super::live_rows::<KH>(p, oy);
            let mut ox0 = 0;
            while ox0 < p.ow {
                let lanes = L.min(p.ow - ox0);
                let mut starts = [0isize; KW];
                let mut near = [_mm256_setzero_si256(); KW];
                let mut far = [_mm256_setzero_si256(); KW];
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
                        *a = _mm256_set1_ps(bias[c]);
                    }
                }
                let mut nan = [_mm256_setzero_ps(); CB];
                for ky in 0..KH {
                    if !live[ky] {
                        continue;
                    }
                    for kx in 0..KW {
                        for (c, a) in acc.iter_mut().enumerate() {
                            let at = x.add(c * hw + rows[ky]).wrapping_offset(starts[kx]);
                            let v = if SX == 1 {
                                load_fill::<MAX>(fill, near[kx], at)
                            } else {
                                let lo = load_fill::<MAX>(fill, near[kx], at);
                                let hi = load_fill::<MAX>(fill, far[kx], at.wrapping_add(L));
                                evens(lo, hi)
                            };
                            if MAX {
                                nan[c] = _mm256_or_ps(nan[c], _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
                                *a = _mm256_max_ps(*a, v);
                            } else {
                                let w = _mm256_broadcast_ss(&*wk.add(c * KH * KW + ky * KW + kx));
                                *a = _mm256_fmadd_ps(w, v, *a);
                            }
                        }
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    let v = if MAX {
                        _mm256_blendv_ps(*a, _mm256_set1_ps(f32::NAN), nan[c])
                    } else {
                        _mm256_min_ps(hi, _mm256_max_ps(lo, *a))
                    };
                    store(y.add(c * ohw + oy * p.ow + ox0), lanes, v);
                }
                ox0 += lanes;
            }
        }
    }

    /// Runs the fixed-size kernel over all channels: blocks of 8, then one at a time.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn channels_fixed<const KH: usize, const KW: usize, const SX: usize, const MAX: bool>(
        p: &Plane,
        channels: usize,
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        lo: __m256,
        hi: __m256,
    ) {
        const CB: usize = 8;
        let kk = if MAX { 0 } else { KH * KW };
        super::channel_blocks::<CB>(channels, bias, |c, n, bv| {
            let (xs, ws, ys) = (
                x.as_ptr().add(c * p.h * p.w),
                wk.as_ptr().add(c * kk),
                y.as_mut_ptr().add(c * p.oh * p.ow),
            );
            if n == CB {
                planes_fixed::<KH, KW, SX, CB, MAX>(p, xs, ws, bv, ys, lo, hi);
            } else {
                planes_fixed::<KH, KW, SX, 1, MAX>(p, xs, ws, &[bv[0]], ys, lo, hi);
            }
        });
    }

    /// Any kernel size: one plane at a time with the sizes read at run time.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn plane_any<const SX: usize>(
        p: &Plane,
        x: &[f32],
        wk: &[f32],
        bias: f32,
        y: &mut [f32],
        lo: __m256,
        hi: __m256,
    ) {
        let xp = x.as_ptr();
        for oy in 0..p.oh {
            let yrow = y.as_mut_ptr().add(oy * p.ow);
            let mut ox0 = 0;
            while ox0 < p.ow {
                let lanes = L.min(p.ow - ox0);
                let mut acc = _mm256_set1_ps(bias);
                for ky in 0..p.kh {
                    let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
                    if iy < 0 || iy >= p.h as isize {
                        continue;
                    }
                    let row = xp.add(iy as usize * p.w);
                    for kx in 0..p.kw {
                        let wv = _mm256_set1_ps(*wk.get_unchecked(ky * p.kw + kx));
                        let off = kx as isize - p.pad[1] as isize;
                        let v = tap::<SX>(row, ox0, off, p.w, lanes);
                        acc = _mm256_fmadd_ps(wv, v, acc);
                    }
                }
                acc = _mm256_min_ps(hi, _mm256_max_ps(lo, acc));
                store(yrow.add(ox0), lanes, acc);
                ox0 += lanes;
            }
        }
    }

    /// Most floats of the zero-padded copy of one input plane that `padded_planes` takes from
    /// `with_zeroed`'s scratch: 64 KiB, a 112×112 plane with its borders (larger planes take
    /// `channels_fixed`).
    const PADDED: usize = 16 * 1024;
    const _: () = assert!(PADDED <= super::SCRATCH);

    /// Where `padded_planes` keeps a padded plane's rows.
    #[derive(Clone, Copy)]
    struct Layout {
        /// The row stride.
        ps: usize,
        /// Where a row's odd columns start at stride 2 (its even ones start at 0).
        odd: usize,
        /// Floats of the whole plane, with a vector's room after the last row for the zeros
        /// `copy_row` stores past it.
        len: usize,
    }

    /// Output vectors of a row that `row_vecs` computes at once: four chains of nine FMAs,
    /// with the nine weights and the clamp bounds in registers. Against the strips this
    /// replaced, groups of four took 0.85–0.93 of the time on mobilenet_v2's planes from
    /// 112×112 to 14×14, groups of two 0.91–1.02.
    const ROW_VECS: usize = 4;

    /// `p`'s padded plane, for the 3×3 depthwise convolutions with equal strides of 1 or 2 that
    /// `padded_planes` computes; None for other shapes and for planes that do not fit `PADDED`.
    /// A row holds the input with `pad` zeros around it and room for the whole vectors the last
    /// output columns load.
    fn padded_layout(p: &Plane) -> Option<Layout> {
        if p.kh != 3 || p.kw != 3 || p.stride[0] != p.stride[1] {
            return None;
        }
        let vecs = p.ow.div_ceil(L);
        let width = p.w + 2 * p.pad[1];
        let (ps, odd) = match p.stride[1] {
            1 => (width.max(vecs * L + 2), 0),
            2 => {
                // Each half has room for `split_row`'s last whole vectors.
                let half = (vecs * L + 1).max((p.w + p.pad[1]) / 2 + L + 1);
                (2 * half, half)
            }
            _ => return None,
        };
        let len = (p.h + 2 * p.pad[0]).checked_mul(ps)? + L;
        (len <= PADDED).then_some(Layout { ps, odd, len })
    }

    /// Depthwise 3×3 planes (equal strides `S` of 1 or 2) one channel at a time through a
    /// zero-padded copy, so that every tap is a plain load, with the nine weights in registers.
    /// Each output vector is nine FMAs reading their taps from memory (`row_vecs`). Strips of
    /// four output rows that loaded each input row once for all of them issued fewer loads
    /// but more instructions (LLVM spilled weights and branched per store); one row at a
    /// time took 0.83–0.97 of their time on mobilenet_v2's planes, and 0.66–0.86 while the
    /// core was shared with another guest's thread. For stride 2 the copy splits each row
    /// into its even and odd columns, so that the strided taps are plain loads too instead of
    /// two loads and two shuffles each.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn padded_planes<const S: usize>(
        p: &Plane,
        channels: usize,
        Layout { ps, odd, .. }: Layout,
        padded: &mut [f32],
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        lo: __m256,
        hi: __m256,
    ) {
        let (hw, ohw) = (p.h * p.w, p.oh * p.ow);
        let (py, px) = (p.pad[0], p.pad[1]);
        for c in 0..channels {
            // The borders are zero from the start and only the interior is ever written.
            for iy in 0..p.h {
                let src = &x[c * hw + iy * p.w..][..p.w];
                if S == 1 {
                    // The zeros after the row land on its right border and spare columns, and
                    // on the next row's left border: all zero anyway (`padded_layout` keeps
                    // room after the last row).
                    copy_row(&mut padded[(iy + py) * ps + px..], src);
                } else {
                    let row = &mut padded[(iy + py) * ps..][..ps];
                    split_row(row, odd, px, src);
                }
            }
            let mut w = [_mm256_setzero_ps(); 9];
            for (i, v) in w.iter_mut().enumerate() {
                *v = _mm256_set1_ps(wk[c * 9 + i]);
            }
            let b = _mm256_set1_ps(bias.map_or(0.0, |b| b[c]));
            let out = &mut y[c * ohw..][..ohw];
            let vecs = p.ow.div_ceil(L);
            for oy in 0..p.oh {
                let src = padded.as_ptr().add(oy * S * ps);
                let at = out.as_mut_ptr().add(oy * p.ow);
                let last = oy + 1 == p.oh;
                let mut j = 0;
                while j + ROW_VECS <= vecs {
                    let full = !last || (j + ROW_VECS) * L <= p.ow;
                    if full {
                        row_vecs::<S, ROW_VECS, false>(src, ps, odd, j, &w, b, at, 0, lo, hi);
                    } else {
                        row_vecs::<S, ROW_VECS, true>(src, ps, odd, j, &w, b, at, p.ow, lo, hi);
                    }
                    j += ROW_VECS;
                }
                while j < vecs {
                    if !last || (j + 1) * L <= p.ow {
                        row_vecs::<S, 1, false>(src, ps, odd, j, &w, b, at, 0, lo, hi);
                    } else {
                        row_vecs::<S, 1, true>(src, ps, odd, j, &w, b, at, p.ow, lo, hi);
                    }
                    j += 1;
                }
            }
        }
    }

    /// Output vectors `j..j + N` of one output row from `src`, the padded row of its first
    /// tap row (`ps` the row stride, `odd` where the odd columns start at stride 2), stored at
    /// `at`. Each vector is nine FMAs that read their taps straight from the padded rows;
    /// `N` of them run at once so their chains overlap. A vector past the row's end stores
    /// whole, writing its spare lanes over the next row's first columns, which are stored
    /// after it, except when `MASKED`: the plane's last row stores only its first `ow` lanes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn row_vecs<const S: usize, const N: usize, const MASKED: bool>(
        src: *const f32,
        ps: usize,
        odd: usize,
        j: usize,
        w: &[__m256; 9],
        b: __m256,
        at: *mut f32,
        ow: usize,
        lo: __m256,
        hi: __m256,
    ) {
        let mut acc = [b; N];
        for ky in 0..3 {
            let row = src.add(ky * ps + j * L);
            for kx in 0..3 {
                let tap = match (S, kx) {
                    (1, _) => row.add(kx),
                    (_, 0) => row,
                    (_, 1) => row.add(odd),
                    _ => row.add(1),
                };
                for (n, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(w[ky * 3 + kx], _mm256_loadu_ps(tap.add(n * L)), *a);
                }
            }
        }
        for (n, a) in acc.iter().enumerate() {
            let v = _mm256_min_ps(hi, _mm256_max_ps(lo, *a));
            let col = (j + n) * L;
            if MASKED {
                store(at.add(col), ow.saturating_sub(col), v);
            } else {
                _mm256_storeu_ps(at.add(col), v);
            }
        }
    }

    /// Copies `src` into a padded row split by column parity: padded column `X = i + px` of
    /// source element `i` goes to `row[X / 2]` when X is even and to `row[odd + X / 2]` when
    /// it is odd. Sixteen elements at a time through two shuffles; the last chunk is loaded
    /// masked and stored whole, so zeros follow both halves (`padded_layout` leaves room for
    /// them, on the row's right border).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn split_row(row: &mut [f32], odd: usize, px: usize, src: &[f32]) {
        let n = src.len();
        // Lanes m of the even and the odd vector of a chunk from i hold elements i + 2m and
        // i + 2m + 1, which land at consecutive places from `dst(i)` and `dst(i + 1)`.
        let dst = |i: usize| {
            let x = i + px;
            (x % 2) * odd + x / 2
        };
        let last = n.saturating_sub(1) / (2 * L) * (2 * L);
        assert!(dst(last).max(dst(last + 1)) + L <= row.len());
        let (s, d) = (src.as_ptr(), row.as_mut_ptr());
        let mut i = 0;
        while i < n {
            let (a, b) = if i + 2 * L <= n {
                (_mm256_loadu_ps(s.add(i)), _mm256_loadu_ps(s.add(i + L)))
            } else {
                let left = n - i;
                (
                    _mm256_maskload_ps(s.add(i), mask(left)),
                    _mm256_maskload_ps(s.add(i + L), mask(left.saturating_sub(L))),
                )
            };
            _mm256_storeu_ps(d.add(dst(i)), evens(a, b));
            _mm256_storeu_ps(d.add(dst(i + 1)), odds(a, b));
            i += 2 * L;
        }
    }

    /// Output channels of a stem tile.
    const STEM_CB: usize = 4;
    /// Column vectors of a stem tile: with three, the twelve accumulators, three taps and a
    /// weight needed all sixteen registers and LLVM spilled accumulators in the tap loop.
    const STEM_VB: usize = 2;

    /// Output row `oy` of every channel of the stem convolution `p` into `y` (`c_out` planes
    /// of `oh · ow`): splits the row's input rows into `rows` (three a channel, `2·half` floats
    /// each), then runs the tiles.
    ///
    /// # Safety
    /// AVX2 and FMA are available, `p.supported()`, and the slices hold what
    /// `super::stem_avx2` checks; `rows` is `c_in · 3 · 2·half` floats.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn stem_row(
        p: &super::Stem,
        half: usize,
        oy: usize,
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        rows: &mut [f32],
        y: &mut [f32],
        clamp: Option<(f32, f32)>,
    ) {
        let y = y.as_mut_ptr();
        let ps = 2 * half;
        for c in 0..p.c_in {
            for ky in 0..3 {
                let row = &mut rows[(c * 3 + ky) * ps..][..ps];
                // Zeros first: the padding columns, and whatever lies past the input row.
                row.fill(0.0);
                let iy = (2 * oy + ky) as isize - p.pad[0] as isize;
                if (0..p.h as isize).contains(&iy) {
                    let src = &x[c * p.h * p.w + iy as usize * p.w..][..p.w];
                    split_row(row, half, p.pad[1], src);
                }
            }
        }
        let (lo, hi) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
        let vecs = p.ow.div_ceil(L);
        let ohw = p.oh * p.ow;
        let mut o = 0;
        while o < p.c_out {
            let cb = STEM_CB.min(p.c_out - o);
            let mut j = 0;
            while j < vecs {
                let vb = STEM_VB.min(vecs - j);
                let t = StemTile {
                    rows: rows.as_ptr().add(j * L),
                    c_in: p.c_in,
                    ps,
                    half,
                    w: wk.as_ptr().add(o * p.c_in * 9),
                    bias: bias.map(|b| b.as_ptr().add(o)),
                    y: y.add(o * ohw + oy * p.ow + j * L),
                    ld: ohw,
                    lanes: p.ow - j * L,
                    lo,
                    hi,
                };
                match (cb, vb) {
                    (STEM_CB, STEM_VB) => stem_tile::<STEM_CB, STEM_VB>(&t),
                    (STEM_CB, _) => stem_tile::<STEM_CB, 1>(&t),
                    (_, _) => {
                        for q in 0..cb {
                            let one = StemTile {
                                w: t.w.add(q * p.c_in * 9),
                                bias: t.bias.map(|b| b.add(q)),
                                y: t.y.add(q * ohw),
                                ..t
                            };
                            match vb {
                                STEM_VB => stem_tile::<1, STEM_VB>(&one),
                                _ => stem_tile::<1, 1>(&one),
                            }
                        }
                    }
                }
                j += vb;
            }
            o += cb;
        }
    }

    /// One stem tile's operands: output channels from `w` (each `c_in · 9` weights) and
    /// `bias`, column vectors of the output row from `y` (channel planes `ld` apart; `lanes`
    /// columns left in the row), taps from the split rows at `rows` (already at the tile's
    /// first column, rows `ps` apart, odd columns `half` after the even ones).
    #[derive(Clone, Copy)]
    struct StemTile {
        rows: *const f32,
        c_in: usize,
        ps: usize,
        half: usize,
        w: *const f32,
        bias: Option<*const f32>,
        y: *mut f32,
        ld: usize,
        lanes: usize,
        lo: __m256,
        hi: __m256,
    }

    /// `CB` output channels by `VB` vectors of columns of one output row: for each of the
    /// `9 · c_in` taps, `VB` plain loads from the split rows (even columns for `kx` 0 and 2,
    /// odd ones for `kx` 1) and `CB` broadcast weights.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn stem_tile<const CB: usize, const VB: usize>(t: &StemTile) {
        let mut acc = [[_mm256_setzero_ps(); VB]; CB];
        if let Some(b) = t.bias {
            for (q, a) in acc.iter_mut().enumerate() {
                *a = [_mm256_set1_ps(*b.add(q)); VB];
            }
        }
        for c in 0..t.c_in {
            for ky in 0..3 {
                let row = t.rows.add((c * 3 + ky) * t.ps);
                for kx in 0..3 {
                    let tap = match kx {
                        0 => row,
                        1 => row.add(t.half),
                        _ => row.add(1),
                    };
                    let v: [__m256; VB] = core::array::from_fn(|i| _mm256_loadu_ps(tap.add(i * L)));
                    for (q, a) in acc.iter_mut().enumerate() {
                        let wv =
                            _mm256_broadcast_ss(&*t.w.add(q * t.c_in * 9 + c * 9 + ky * 3 + kx));
                        for (ai, vi) in a.iter_mut().zip(&v) {
                            *ai = _mm256_fmadd_ps(wv, *vi, *ai);
                        }
                    }
                }
            }
        }
        for (q, a) in acc.iter().enumerate() {
            for (i, ai) in a.iter().enumerate() {
                let v = _mm256_min_ps(t.hi, _mm256_max_ps(t.lo, *ai));
                store(t.y.add(q * t.ld + i * L), t.lanes.saturating_sub(i * L), v);
            }
        }
    }

    /// Copies `src` to the start of `dst` a vector at a time, the last one loaded masked and
    /// stored whole, so up to 7 zeros follow the row in `dst`, which must have room for them. (A
    /// masked store, `vmaskmovps`, is a slow microcoded sequence on AMD's Zen cores.) The loads
    /// are `lddqu`, which LLVM does not see as plain loads: it compiled a loop of plain vector
    /// copies into a `memcpy` call per row, and without those calls the stride-1 planes of
    /// mobilenet_v2 took 0.93–0.97 of their time.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn copy_row(dst: &mut [f32], src: &[f32]) {
        let n = src.len();
        assert!(dst.len() >= n.div_ceil(L) * L);
        let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
        let whole = n / L * L;
        let mut i = 0;
        while i < whole {
            let v = _mm256_lddqu_si256(s.add(i).cast());
            _mm256_storeu_si256(d.add(i).cast(), v);
            i += L;
        }
        if whole < n {
            let v = _mm256_maskload_ps(s.add(whole), mask(n - whole));
            _mm256_storeu_ps(d.add(whole), v);
        }
    }

    /// # Safety
    /// AVX2 and FMA are available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weigh16(k: &[[f32; 9]; 16], coef: &[[f32; 16]; 9], out: &mut [[f32; 16]; 16]) {
        for half in 0..2 {
            let c: [__m256; 9] =
                core::array::from_fn(|t| _mm256_loadu_ps(coef[t][8 * half..].as_ptr()));
            for (row, kl) in out.iter_mut().zip(k) {
                let mut a = _mm256_mul_ps(_mm256_set1_ps(kl[0]), c[0]);
                let mut b = _mm256_mul_ps(_mm256_set1_ps(kl[1]), c[1]);
                for t in (2..9).step_by(2) {
                    a = _mm256_fmadd_ps(_mm256_set1_ps(kl[t]), c[t], a);
                    if t + 1 < 9 {
                        b = _mm256_fmadd_ps(_mm256_set1_ps(kl[t + 1]), c[t + 1], b);
                    }
                }
                _mm256_storeu_ps(row[8 * half..].as_mut_ptr(), _mm256_add_ps(a, b));
            }
        }
    }

    /// # Safety
    /// AVX2 is available.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose16(m: &mut [[f32; 16]; 16]) {
        // Block (bi, bj) of the result is the transpose of block (bj, bi): both off-diagonal
        // blocks are read before either is stored.
        let load = |m: &[[f32; 16]; 16], bi: usize, bj: usize| -> [__m256; 8] {
            core::array::from_fn(|i| _mm256_loadu_ps(m[8 * bi + i][8 * bj..].as_ptr()))
        };
        let blocks = [load(m, 0, 0), load(m, 0, 1), load(m, 1, 0), load(m, 1, 1)];
        for (b, r) in blocks.iter().enumerate() {
            // Rows of block (bi, bj) become columns of block (bj, bi).
            let (bi, bj) = (b / 2, b % 2);
            let mut u = [_mm256_setzero_ps(); 8];
            for q in 0..2 {
                let (a, bb, c, d) = (r[4 * q], r[4 * q + 1], r[4 * q + 2], r[4 * q + 3]);
                let (t0, t1) = (_mm256_unpacklo_ps(a, bb), _mm256_unpackhi_ps(a, bb));
                let (t2, t3) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
                let pd = _mm256_castps_pd;
                u[4 * q] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(t0), pd(t2)));
                u[4 * q + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(t0), pd(t2)));
                u[4 * q + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(t1), pd(t3)));
                u[4 * q + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(t1), pd(t3)));
            }
            // Column 4k + c: lane k of u[c] (rows 0..4) and of u[4 + c] (rows 4..8).
            for c in 0..4 {
                let lo = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
                let hi = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
                _mm256_storeu_ps(m[8 * bj + c][8 * bi..].as_mut_ptr(), lo);
                _mm256_storeu_ps(m[8 * bj + 4 + c][8 * bi..].as_mut_ptr(), hi);
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA are available, `p.supported()`, and the slices hold what
    /// `super::depthwise` checks.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn depthwise(
        p: &Plane,
        channels: usize,
        x: &[f32],
        wk: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        clamp: Option<(f32, f32)>,
    ) {
        let (lo, hi) = clamp.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
        let (lo, hi) = (_mm256_set1_ps(lo), _mm256_set1_ps(hi));
        if let Some(layout) = padded_layout(p) {
            let run = if p.stride[1] == 1 {
                padded_planes::<1>
            } else {
                padded_planes::<2>
            };
            // Only the part the plane uses is zeroed: all of it would cost more than a 7×7
            // plane's convolution.
            super::with_zeroed(layout.len, |padded| {
                run(p, channels, layout, padded, x, wk, bias, y, lo, hi)
            });
            return;
        }
        match (p.kh, p.kw, p.stride[1]) {
            (3, 3, 1) => channels_fixed::<3, 3, 1, false>(p, channels, x, wk, bias, y, lo, hi),
            (3, 3, _) => channels_fixed::<3, 3, 2, false>(p, channels, x, wk, bias, y, lo, hi),
            (5, 5, 1) => channels_fixed::<5, 5, 1, false>(p, channels, x, wk, bias, y, lo, hi),
            (5, 5, _) => channels_fixed::<5, 5, 2, false>(p, channels, x, wk, bias, y, lo, hi),
            (_, _, sx) => super::each_plane(p, channels, x, wk, bias, y, |xc, wc, bc, yc| {
                if sx == 1 {
                    plane_any::<1>(p, xc, wc, bc, yc, lo, hi);
                } else {
                    plane_any::<2>(p, xc, wc, bc, yc, lo, hi);
                }
            }),
        }
    }

    /// # Safety
    /// AVX2 and FMA are available, `p.supported()`, `p.kh == p.kw == 3`, and the slices hold
    /// what `super::max_pool3` checks.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn max_pool3(p: &Plane, planes: usize, x: &[f32], y: &mut [f32]) {
        let none = _mm256_setzero_ps();
        if p.stride[1] == 1 {
            channels_fixed::<3, 3, 1, true>(p, planes, x, &[], None, y, none, none);
        } else {
            channels_fixed::<3, 3, 2, true>(p, planes, x, &[], None, y, none, none);
        }
    }

    /// # Safety
    /// AVX2 and FMA are available, and `row`, `dst` and `off` are small enough that no index
    /// computation overflows (`super::gather_row` checks).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gather_row<const SX: usize>(dst: &mut [f32], row: &[f32], off: isize) {
        let d = dst.as_mut_ptr();
        let mut j = 0;
        while j < dst.len() {
            let lanes = L.min(dst.len() - j);
            let v = tap::<SX>(row.as_ptr(), j, off, row.len(), lanes);
            store(d.add(j), lanes, v);
            j += lanes;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

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

    /// Runs `check::<Avx512>` and `check::<Avx2>` where the CPU has them.
    macro_rules! each_isa {
        ($check:ident) => {
            if Avx512::available() {
                $check::<Avx512>();
            }
            if Avx2::available() {
                $check::<Avx2>();
            }
        };
    }

    #[test]
    fn gemm_matches_the_naive_product_on_ragged_shapes() {
        each_isa!(gemm_check);
    }

    fn gemm_check<I: Isa>() {
        // (m, n, k): ragged rows, columns and depths; 49 columns (a 7×7 plane) end in one dot
        // column, and a depth past `KC` makes the AVX2 driver add a second pass into C.
        let shapes = [
            (1, 1, 1),
            (8, 32, 5),
            (9, 33, 7),
            (13, 47, 16),
            (3, 17, 0),
            (7, 8, 3),
            (7, 49, 13),
            (6, 3, 600),
            (5, 52, 600),
        ];
        let long = |n: usize, seed: u32| -> Vec<f32> {
            (0..n.div_ceil(4096))
                .flat_map(|i| data(4096, seed + 7 * i as u32))
                .take(n)
                .collect()
        };
        for &(m, n, k) in &shapes {
            let (lda, ldb, ldc) = (k + 3, n + 5, n + 2);
            let a = long(m * lda, 1);
            let b = long(k.max(1) * ldb, 2);
            let bias = data(m, 3);
            let mut dots = vec![0, DOT_COLS.min(n), tail_dots(n, 0, n)];
            dots.dedup();
            for init in [Init::Zero, Init::Bias(&bias[..m]), Init::Load] {
                for clamp in [None, Some((-0.1, 0.2))] {
                    for &dots in &dots {
                        let g = Gemm {
                            m,
                            n,
                            k,
                            a: &a,
                            lda,
                            b: &b,
                            ldb,
                            ldc,
                            init,
                            clamp,
                            dots,
                        };
                        let mut want = long(m * ldc, 4);
                        let mut got = want.clone();
                        naive(&g, &mut want);
                        gemm::<I>(&g, &mut got);
                        // Sums of up to 600 products of terms below 0.5, in another order.
                        let tol = 1e-6 * k.max(10) as f32;
                        for (w, v) in want.iter().zip(&got) {
                            assert!(
                                (w - v).abs() <= tol,
                                "{} {m}x{n}x{k}, {dots} dot columns: {w} vs {v}",
                                I::NAME
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tail_dots_takes_only_a_thin_ragged_tail_by_its_place_in_the_row() {
        // 49 = 3·16 + 1: the last column, whichever block holds it.
        assert_eq!(tail_dots(49, 0, 49), 1);
        assert_eq!(tail_dots(49, 32, 17), 1);
        assert_eq!(tail_dots(49, 0, 48), 0);
        // 196 = 12·16 + 4, cut at 100: the block holding 192..196 takes them.
        assert_eq!(tail_dots(196, 100, 96), 4);
        assert_eq!(tail_dots(196, 0, 100), 0);
        // Tails wider than `DOT_COLS`, and none at all, stay broadcast tiles.
        assert_eq!(tail_dots(45, 0, 45), 0);
        assert_eq!(tail_dots(64, 0, 64), 0);
        assert_eq!(tail_dots(3, 0, 3), 3);
    }

    #[test]
    fn depthwise_matches_the_direct_sum() {
        each_isa!(depthwise_check);
    }

    fn depthwise_check<I: Isa>() {
        for &(c, h, w, kh, kw, sy, sx, py, px) in &[
            (1, 7, 7, 3, 3, 1, 1, 1, 1),
            (11, 9, 37, 3, 3, 2, 2, 1, 1),
            (9, 5, 20, 5, 5, 1, 1, 2, 2),
            (2, 6, 35, 3, 3, 1, 2, 0, 0),
            (3, 6, 35, 2, 3, 1, 2, 1, 0),
            (1, 8, 19, 2, 4, 1, 1, 1, 2),
            (8, 11, 40, 5, 5, 2, 2, 2, 2),
            // The padded 3×3 path: rows of whole and partial vectors, groups of four vectors
            // with none, one or a partial one left over (27 and 30 columns end the plane inside
            // a masked group), both parities of the left padding at stride 2, tiny planes.
            (3, 6, 27, 3, 3, 1, 1, 1, 1),
            (2, 9, 60, 3, 3, 2, 2, 1, 1),
            (2, 14, 16, 3, 3, 2, 2, 1, 1),
            (3, 10, 18, 3, 3, 2, 2, 0, 0),
            (2, 11, 21, 3, 3, 2, 2, 2, 2),
            (2, 6, 9, 3, 3, 1, 1, 0, 0),
            (2, 7, 30, 3, 3, 1, 1, 2, 2),
            (4, 5, 33, 3, 3, 1, 1, 1, 1),
            (1, 3, 1, 3, 3, 1, 1, 1, 1),
            (1, 2, 2, 3, 3, 2, 2, 1, 1),
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
            depthwise::<I>(
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
                        assert!(
                            (want - v).abs() <= 1e-5,
                            "{} {c} {h}x{w}: {want} vs {v}",
                            I::NAME
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn max_pool3_matches_the_window_max_and_keeps_nan() {
        each_isa!(max_pool3_check);
    }

    fn max_pool3_check<I: Isa>() {
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
            max_pool3::<I>(&p, c, &x, &mut got[..c * oh * ow]);
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
    fn transpose16_matches_the_index_swap() {
        let mut a = [[0f32; 16]; 16];
        for (i, row) in a.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (i * 16 + j) as f32;
            }
        }
        let want: [[f32; 16]; 16] = core::array::from_fn(|i| core::array::from_fn(|j| a[j][i]));
        if Avx512::available() {
            let mut m = a;
            transpose16::<Avx512>(&mut m);
            assert_eq!(m, want, "avx512");
        }
        if Avx2::available() {
            let mut m = a;
            transpose16::<Avx2>(&mut m);
            assert_eq!(m, want, "avx2");
        }
    }

    #[test]
    fn gather_row_reads_strided_elements_and_zeros_outside_the_row() {
        each_isa!(gather_row_check);
    }

    fn gather_row_check<I: Isa>() {
        let row = data(70, 9);
        for sx in [1usize, 2] {
            for n in [0usize, 1, 7, 15, 16, 17, 40] {
                for off in [-3isize, -1, 0, 2, 30, 69, 75] {
                    let mut got = [7f32; 64];
                    gather_row::<I>(&mut got[..n], &row[..70], off, sx);
                    for (j, g) in got.iter().enumerate() {
                        let at = sx as isize * j as isize + off;
                        let want = if j >= n {
                            7.0
                        } else if (0..70).contains(&at) {
                            row[at as usize]
                        } else {
                            0.0
                        };
                        assert_eq!(*g, want, "{} sx {sx} n {n} off {off} at {j}", I::NAME);
                    }
                }
            }
        }
    }
}
