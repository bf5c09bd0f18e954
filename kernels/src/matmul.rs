//! Matrix products — `linear`, `torch.matmul` with batch broadcasting, and `addmm` — as one
//! batched GEMM `y = act(alpha · a·op(b) + beta · bias)` over contiguous row-major matrices.
//! Invariant: every variant computes the same sums as etpkg's interpreter (accumulated in f32),
//! and with `beta == 0` the bias is never read, so NaN in it does not leak (PyTorch's rule).
//!
//! Slice lengths: `a` holds the broadcast source matrices `[.., m, k]` (its batch layout given
//! by `a_batch_stride`), `b` likewise `[.., k, n]` (or `[.., n, k]` when `b_trans`), `bias` (if
//! any) is indexed `i·bias_stride[0] + j·bias_stride[1]`, `y` is `batch_len()·m·n`.
#![forbid(unsafe_code)]

use super::act::Act;

/// Batch rank the broadcasting index handles; callers fold extra leading dims of size 1 away.
pub const MAX_BATCH: usize = 4;

/// One batched matrix product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    /// Output batch dims, right-aligned with leading 1s (e.g. `[1, 1, 2, 8]`).
    pub batch: [usize; MAX_BATCH],
    /// Element stride of `a`'s matrices along each batch dim; 0 where `a` is broadcast.
    pub a_batch_stride: [usize; MAX_BATCH],
    /// Element stride of `b`'s matrices along each batch dim; 0 where `b` is broadcast.
    pub b_batch_stride: [usize; MAX_BATCH],
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// `b` is stored `[n, k]` (a linear layer's weight) instead of `[k, n]`.
    pub b_trans: bool,
    pub alpha: f32,
    pub beta: f32,
    /// Element strides of the bias along output rows and columns (0 to broadcast).
    pub bias_stride: [usize; 2],
}

impl Gemm {
    /// `y[rows, n] = x[rows, k] · w[n, k]ᵀ (+ bias[n])`, PyTorch's `linear`.
    pub fn linear(rows: usize, k: usize, n: usize) -> Gemm {
        Gemm {
            batch: [1; MAX_BATCH],
            a_batch_stride: [0; MAX_BATCH],
            b_batch_stride: [0; MAX_BATCH],
            m: rows,
            k,
            n,
            b_trans: true,
            alpha: 1.0,
            beta: 1.0,
            bias_stride: [0, 1],
        }
    }

    /// `y[n, m] = beta · bias + alpha · a[n, k] · b[k, m]` with the bias broadcast through
    /// `bias_stride`, PyTorch's `addmm` (here `m` rows, `n` columns).
    pub fn addmm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        beta: f32,
        bias_stride: [usize; 2],
    ) -> Gemm {
        Gemm {
            batch: [1; MAX_BATCH],
            a_batch_stride: [0; MAX_BATCH],
            b_batch_stride: [0; MAX_BATCH],
            m,
            k,
            n,
            b_trans: false,
            alpha,
            beta,
            bias_stride,
        }
    }

    /// Number of output matrices.
    pub fn batch_len(&self) -> usize {
        self.batch.iter().product()
    }

    /// Offsets of the `a` and `b` matrices that output matrix `i` multiplies.
    #[inline]
    pub fn operands(&self, mut i: usize) -> (usize, usize) {
        let (mut oa, mut ob) = (0, 0);
        for d in (0..MAX_BATCH).rev() {
            let size = self.batch[d].max(1);
            let c = i % size;
            i /= size;
            oa += c * self.a_batch_stride[d];
            ob += c * self.b_batch_stride[d];
        }
        (oa, ob)
    }

    /// Finishes one output element from its dot product.
    #[inline(always)]
    fn finish(&self, dot: f32, bias: Option<&[f32]>, i: usize, j: usize, act: Act) -> f32 {
        let mut v = self.alpha * dot;
        if let Some(b) = bias {
            if self.beta != 0.0 {
                v += self.beta * b[i * self.bias_stride[0] + j * self.bias_stride[1]];
            }
        }
        act.apply(v)
    }
}

//@variant generic
/// Universal GEMM: one dot product per output element.
pub fn generic(p: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    debug_assert_eq!(y.len(), p.batch_len() * p.m * p.n);
    let (m, k, n) = (p.m, p.k, p.n);
    for bi in 0..p.batch_len() {
        let (oa, ob) = p.operands(bi);
        for i in 0..m {
            for j in 0..n {
                let mut s = 0f32;
                for t in 0..k {
                    let bv = if p.b_trans {
                        b[ob + j * k + t]
                    } else {
                        b[ob + t * n + j]
                    };
                    s += a[oa + i * k + t] * bv;
                }
                y[(bi * m + i) * n + j] = p.finish(s, bias, i, j, act);
            }
        }
    }
}

/// Accepts every product.
pub fn generic_accepts(_p: &Gemm) -> bool {
    true
}
//@end

//@variant tiled
/// Columns per cache block: a `k × NB` panel of `b` stays in L2 while row tiles sweep it.
const NB: usize = 64;

/// Depth of a k block: a `KC × C` strip of `b` (16 KiB) stays in L1 across a row tile.
const KC: usize = 256;

/// `R × C` output tile of `a·b` (b stored `[k, n]`): C-wide rows of `b` are broadcast-multiplied
/// by R values of `a`, so the accumulators form R vectors LLVM keeps in registers.
// Never inlined: compiled alone, each tile keeps its accumulators in registers; inlined into
// the sweep, register pressure made LLVM spill them every iteration.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn tile_nn<const R: usize, const C: usize>(
    p: &Gemm,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    (i, j): (usize, usize),
    (k0, k1): (usize, usize),
    act: Act,
) {
    let (k, n) = (p.k, p.n);
    let mut acc = [[0f32; C]; R];
    if k0 > 0 {
        // A later k block continues the partial sums the earlier blocks stored in `y`.
        for (r, row) in acc.iter_mut().enumerate() {
            row.copy_from_slice(&y[(i + r) * n + j..(i + r) * n + j + C]);
        }
    }
    for t in k0..k1 {
        let bs = &b[t * n + j..t * n + j + C];
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a[(i + r) * k + t];
            for (s, &bv) in row.iter_mut().zip(bs) {
                *s += av * bv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &s) in row.iter().enumerate() {
            y[(i + r) * n + j + c] = if k1 == k {
                p.finish(s, bias, i + r, j + c, act)
            } else {
                s
            };
        }
    }
}

/// Lanes of the dot-product accumulators for `b_trans` tiles.
const L: usize = 8;

/// `R × C` output tile of `a·bᵀ` (b stored `[n, k]`): both operands are read along `k`, so the
/// dot products accumulate in `L`-lane vectors that are summed at the end.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn tile_nt<const R: usize, const C: usize>(
    p: &Gemm,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    (i, j): (usize, usize),
    (k0, k1): (usize, usize),
    act: Act,
) {
    let (k, n) = (p.k, p.n);
    let kl = k0 + (k1 - k0) / L * L;
    let mut acc = [[[0f32; L]; C]; R];
    let mut t = k0;
    while t < kl {
        for (r, accr) in acc.iter_mut().enumerate() {
            let av = &a[(i + r) * k + t..(i + r) * k + t + L];
            for (c, lanes) in accr.iter_mut().enumerate() {
                let bv = &b[(j + c) * k + t..(j + c) * k + t + L];
                for l in 0..L {
                    lanes[l] += av[l] * bv[l];
                }
            }
        }
        t += L;
    }
    for (r, accr) in acc.iter().enumerate() {
        for (c, lanes) in accr.iter().enumerate() {
            let at = (i + r) * n + j + c;
            // A later k block continues the partial sum an earlier block stored in `y`.
            let mut s = if k0 > 0 { y[at] } else { 0.0 };
            for &v in lanes {
                s += v;
            }
            for t in kl..k1 {
                s += a[(i + r) * k + t] * b[(j + c) * k + t];
            }
            y[at] = if k1 == k {
                p.finish(s, bias, i + r, j + c, act)
            } else {
                s
            };
        }
    }
}

/// One output tile at `(i, j)`.
type TileFn =
    fn(&Gemm, &[f32], &[f32], Option<&[f32]>, &mut [f32], (usize, usize), (usize, usize), Act);

/// Sweeps the output of one matrix in `R × C` tiles with edge tiles of width and height 1.
#[allow(clippy::too_many_arguments)]
fn sweep<const R: usize, const C: usize>(
    p: &Gemm,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    tile: TileFn,
    tile_r1: TileFn,
    tile_c1: TileFn,
    tile_11: TileFn,
    act: Act,
) {
    let (m, n, k) = (p.m, p.n, p.k);
    let (m_full, n_full) = (m / R * R, n / C * C);
    let mut jb = 0;
    while jb < n {
        let j_end = (jb + NB).min(n);
        let mut k0 = 0;
        // `k == 0` still needs one pass to write `finish(0)` everywhere.
        while k0 < k || (k0 == 0 && k == 0) {
            let k1 = (k0 + KC).min(k);
            let mut i = 0;
            while i < m {
                let rows_full = i < m_full;
                let mut j = jb;
                while j < j_end {
                    let cols_full = j + C <= j_end && j < n_full;
                    let at = (i, j);
                    match (rows_full, cols_full) {
                        (true, true) => tile(p, a, b, bias, y, at, (k0, k1), act),
                        (true, false) => tile_c1(p, a, b, bias, y, at, (k0, k1), act),
                        (false, true) => tile_r1(p, a, b, bias, y, at, (k0, k1), act),
                        (false, false) => tile_11(p, a, b, bias, y, at, (k0, k1), act),
                    }
                    j += if cols_full { C } else { 1 };
                }
                i += if rows_full { R } else { 1 };
            }
            if k1 == k {
                break;
            }
            k0 = k1;
        }
        jb = j_end;
    }
}

/// Cache-blocked (k blocks of `KC`, column panels of `NB`), register-tiled GEMM: 4×16 accumulator tiles for `a·b`, 2×4 tiles of 8-lane
/// dot products for `a·bᵀ`, written as fixed-size array loops so LLVM vectorizes them for the
/// target's vector width.
pub fn tiled(p: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    debug_assert_eq!(y.len(), p.batch_len() * p.m * p.n);
    let (m, k, n) = (p.m, p.k, p.n);
    for bi in 0..p.batch_len() {
        let (oa, ob) = p.operands(bi);
        let am = &a[oa..oa + m * k];
        let bm = &b[ob..ob + k * n];
        let ym = &mut y[bi * m * n..(bi + 1) * m * n];
        if p.b_trans {
            sweep::<2, 4>(
                p,
                am,
                bm,
                bias,
                ym,
                tile_nt::<2, 4>,
                tile_nt::<1, 4>,
                tile_nt::<2, 1>,
                tile_nt::<1, 1>,
                act,
            );
        } else {
            sweep::<4, 16>(
                p,
                am,
                bm,
                bias,
                ym,
                tile_nn::<4, 16>,
                tile_nn::<1, 16>,
                tile_nn::<4, 1>,
                tile_nn::<1, 1>,
                act,
            );
        }
    }
}

/// Accepts every product.
pub fn tiled_accepts(_p: &Gemm) -> bool {
    true
}
//@end

//@variant dot
/// Accumulator lanes of the dot-product tiles: one AVX-512 register, two AVX2 ones.
const DL: usize = 16;

/// Sum of the lanes, pairwise, so LLVM reduces with shuffles.
#[inline(always)]
fn hsum(v: &[f32; DL]) -> f32 {
    let mut h = [0f32; DL / 2];
    for l in 0..DL / 2 {
        h[l] = v[l] + v[l + DL / 2];
    }
    let mut q = [0f32; DL / 4];
    for l in 0..DL / 4 {
        q[l] = h[l] + h[l + DL / 4];
    }
    (q[0] + q[2]) + (q[1] + q[3])
}

/// `acc += a·b` lane by lane: one vector multiply-add once LLVM has the lanes side by side.
#[inline(always)]
fn fma_lanes(acc: &mut [f32; DL], a: &[f32; DL], b: &[f32; DL]) {
    let mut v = *acc;
    for l in 0..DL {
        v[l] += a[l] * b[l];
    }
    *acc = v;
}

/// The `R × C` dot products of rows `i..i+R` of `a` (`[m, k]`) with rows `j..j+C` of `b`
/// (`[n, k]`), accumulated in `DL`-lane vectors along `k` and reduced once at the end.
// Never inlined, like the tiled variant's tiles: compiled alone, the accumulators stay in
// registers.
#[inline(never)]
fn dot_tile<const R: usize, const C: usize>(
    a: &[f32],
    b: &[f32],
    k: usize,
    (i, j): (usize, usize),
) -> [[f32; C]; R] {
    let ar: [&[f32]; R] = core::array::from_fn(|r| &a[(i + r) * k..(i + r + 1) * k]);
    let br: [&[f32]; C] = core::array::from_fn(|c| &b[(j + c) * k..(j + c + 1) * k]);
    let kl = k / DL * DL;
    // Whole `DL`-lane chunks as arrays, so the lane loops carry no bounds checks.
    let ac: [&[[f32; DL]]; R] = core::array::from_fn(|r| ar[r].as_chunks::<DL>().0);
    let bc: [&[[f32; DL]]; C] = core::array::from_fn(|c| br[c].as_chunks::<DL>().0);
    let mut acc = [[[0f32; DL]; C]; R];
    for s in 0..kl / DL {
        let av: [&[f32; DL]; R] = core::array::from_fn(|r| &ac[r][s]);
        let bv: [&[f32; DL]; C] = core::array::from_fn(|c| &bc[c][s]);
        for r in 0..R {
            for c in 0..C {
                fma_lanes(&mut acc[r][c], av[r], bv[c]);
            }
        }
    }
    let mut out = [[0f32; C]; R];
    for r in 0..R {
        for c in 0..C {
            let mut s = hsum(&acc[r][c]);
            for t in kl..k {
                s += ar[r][t] * br[c][t];
            }
            out[r][c] = s;
        }
    }
    out
}

/// Rows `i..i+R` of one output matrix: `R × 4` tiles, then single columns.
#[inline(never)]
fn dot_rows<const R: usize>(a: &[f32], b: &[f32], y: &mut [f32], k: usize, n: usize, i: usize) {
    let n4 = n / 4 * 4;
    let mut j = 0;
    while j < n4 {
        let t = dot_tile::<R, 4>(a, b, k, (i, j));
        for (r, row) in t.iter().enumerate() {
            y[(i + r) * n + j..(i + r) * n + j + 4].copy_from_slice(row);
        }
        j += 4;
    }
    while j < n {
        let t = dot_tile::<R, 1>(a, b, k, (i, j));
        for (r, row) in t.iter().enumerate() {
            y[(i + r) * n + j] = row[0];
        }
        j += 1;
    }
}

/// Scales a finished output row, adds its bias and applies the activation with the fast
/// approximations, all vectorized along the row.
#[inline(always)]
fn finish_row(p: &Gemm, row: &mut [f32], bias: Option<&[f32]>, i: usize, act: Act) {
    if p.alpha != 1.0 {
        row.iter_mut().for_each(|v| *v *= p.alpha);
    }
    if let Some(b) = bias {
        if p.beta != 0.0 {
            let [s0, s1] = p.bias_stride;
            if s1 == 1 && p.beta == 1.0 {
                let br = &b[i * s0..i * s0 + row.len()];
                row.iter_mut().zip(br).for_each(|(v, &bv)| *v += bv);
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    *v += p.beta * b[i * s0 + j * s1];
                }
            }
        }
    }
    act.apply_slice_fast(row);
}

/// GEMM for `b` stored `[n, k]` (linear layers' weights), as dot products along the
/// contiguous `k` of both operands: 4×4 tiles of 16-lane accumulators, reduced once per output,
/// then the bias and the activation (fast GELU/SiLU) applied per row while it is in cache.
pub fn dot(p: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    debug_assert_eq!(y.len(), p.batch_len() * p.m * p.n);
    let (m, k, n) = (p.m, p.k, p.n);
    for bi in 0..p.batch_len() {
        let (oa, ob) = p.operands(bi);
        let am = &a[oa..oa + m * k];
        let bm = &b[ob..ob + n * k];
        let ym = &mut y[bi * m * n..(bi + 1) * m * n];
        let mut i = 0;
        while i < m {
            let rows = if i + 4 <= m { 4 } else { 1 };
            if rows == 4 {
                dot_rows::<4>(am, bm, ym, k, n, i);
            } else {
                dot_rows::<1>(am, bm, ym, k, n, i);
            }
            for r in i..i + rows {
                finish_row(p, &mut ym[r * n..(r + 1) * n], bias, r, act);
            }
            i += rows;
        }
    }
}

/// Accepts products whose `b` is stored `[n, k]`.
pub fn dot_accepts(p: &Gemm) -> bool {
    p.b_trans
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined, plus the tiled
/// variant's out-of-line `tile_*` and the dot variant's `dot_rows`/`dot_tile` instances; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "matmul.generic",
        family: "matmul",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 3372,
    },
    super::meta::KernelInfo {
        name: "matmul.tiled",
        family: "matmul",
        dtypes: &["f32"],
        isa: &[],
        shape: "any (register-tiled, cache-blocked)",
        speed: 2,
        code_bytes: 31043,
    },
    super::meta::KernelInfo {
        name: "matmul.dot",
        family: "matmul",
        dtypes: &["f32"],
        isa: &[],
        shape: "b stored [n, k] (linear weights); fast GELU/SiLU",
        speed: 3,
        code_bytes: 12946,
    },
];
//@end
