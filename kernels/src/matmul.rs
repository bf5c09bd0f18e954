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

/// Multiply-adds from which a one-row product is split across threads: below it, waking a
/// worker costs more than streaming the weights alone.
const GEMV_SPLIT_FMAS: usize = 200_000;

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

/// One matrix of `a·bᵀ` (b stored `[n, k]`) in 2×4 tiles of dot products. A single row (a
/// classifier's linear layer) is a matrix-vector product with nothing to reuse: it streams each
/// row of b whole, four at a time, instead of in k blocks, which made the memory prefetchers
/// jump between rows (0.75 against 0.3 ms for mobilenet_v2's 1280×1000 classifier on AVX2).
fn sweep_nt(p: &Gemm, a: &[f32], b: &[f32], bias: Option<&[f32]>, y: &mut [f32], act: Act) {
    if p.m == 1 {
        let mut j = 0;
        while j < p.n {
            if j + 4 <= p.n {
                tile_nt::<1, 4>(p, a, b, bias, y, (0, j), (0, p.k), act);
                j += 4;
            } else {
                tile_nt::<1, 1>(p, a, b, bias, y, (0, j), (0, p.k), act);
                j += 1;
            }
        }
        return;
    }
    sweep::<2, 4>(
        p,
        a,
        b,
        bias,
        y,
        tile_nt::<2, 4>,
        tile_nt::<1, 4>,
        tile_nt::<2, 1>,
        tile_nt::<1, 1>,
        act,
    );
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
        // One output row (a classifier's linear layer) streams all of `b` from memory for few
        // multiply-adds: threads take blocks of its columns, so each streams its own rows of b.
        if p.b_trans && m == 1 && k * n >= GEMV_SPLIT_FMAS && super::par::threads() > 1 {
            let cols = super::par::block_width(n, 16, 2);
            super::par::for_each_chunk_mut(ym, cols, &|c, part| {
                let j0 = c * cols;
                let sub = Gemm {
                    n: part.len(),
                    ..*p
                };
                let bias = bias.map(|bv| &bv[(j0 * p.bias_stride[1]).min(bv.len())..]);
                sweep_nt(&sub, am, &bm[j0 * k..], bias, part, act);
            });
            continue;
        }
        if p.b_trans {
            sweep_nt(p, am, bm, bias, ym, act);
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
/// Depth of one k block: a `KB × 16` panel of transposed `a` rows (4 KiB) lives on the stack.
/// Small, because safe code zero-fills the whole panel for every row block: at 256 the fill
/// was a quarter of the variant's time on 16-row products.
const KB: usize = 64;

/// Output columns per tile: four accumulator vectors plus one panel vector.
const CT: usize = 4;

/// `acc += w·v` lane by lane.
#[inline(always)]
fn axpy<const L: usize>(acc: &mut [f32; L], w: f32, v: &[f32; L]) {
    for l in 0..L {
        acc[l] += w * v[l];
    }
}

/// Columns `j..j+4` of the product of an `L`-row panel (`at[t][l]` = row `l`, depth `t`) with
/// `b` (`[n, k]`, depths `k0..k0+at.len()`): per depth step one panel vector is multiplied by
/// four broadcast weights. Written with zipped iterators and named accumulators, so there is
/// no bounds check and no inner loop for LLVM to keep in memory.
#[inline(never)]
fn panel_tile4<const L: usize>(
    at: &[[f32; L]],
    b: &[f32],
    k: usize,
    k0: usize,
    j: usize,
) -> [[f32; L]; CT] {
    let kb = at.len();
    let row = |c: usize| &b[(j + c) * k + k0..(j + c) * k + k0 + kb];
    let (b0, b1, b2, b3) = (row(0), row(1), row(2), row(3));
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; L], [0f32; L], [0f32; L], [0f32; L]);
    for ((((av, &w0), &w1), &w2), &w3) in at.iter().zip(b0).zip(b1).zip(b2).zip(b3) {
        axpy(&mut a0, w0, av);
        axpy(&mut a1, w1, av);
        axpy(&mut a2, w2, av);
        axpy(&mut a3, w3, av);
    }
    [a0, a1, a2, a3]
}

/// Column `j` of the same product, for the columns past the last whole group of four.
#[inline(never)]
fn panel_tile1<const L: usize>(
    at: &[[f32; L]],
    b: &[f32],
    k: usize,
    k0: usize,
    j: usize,
) -> [f32; L] {
    let b0 = &b[j * k + k0..j * k + k0 + at.len()];
    let mut a0 = [0f32; L];
    for (av, &w0) in at.iter().zip(b0) {
        axpy(&mut a0, w0, av);
    }
    a0
}

/// One block of up to `L` rows `i0..i0+rows` of one output matrix: `a`'s rows are transposed
/// into a stack panel one k block at a time, swept against every column of `b`, and the
/// partial sums scattered into `y` (added to the earlier k blocks' sums).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn panel_rows<const L: usize>(
    a: &[f32],
    b: &[f32],
    y: &mut [f32],
    k: usize,
    n: usize,
    i0: usize,
    rows: usize,
) {
    let mut panel = [[0f32; L]; KB];
    let n8 = n / CT * CT;
    let mut k0 = 0;
    // `k == 0` still needs one pass to write the zero sums.
    while k0 < k || (k0 == 0 && k == 0) {
        let kb = (k - k0).min(KB);
        let at = &mut panel[..kb];
        for (l, arow) in a[i0 * k..(i0 + rows) * k].chunks_exact(k).enumerate() {
            for (t, &v) in arow[k0..k0 + kb].iter().enumerate() {
                at[t][l] = v;
            }
        }
        let at = &panel[..kb];
        let first = k0 == 0;
        let mut scatter = |j: usize, col: &[f32; L]| {
            for (l, &v) in col[..rows].iter().enumerate() {
                let o = &mut y[(i0 + l) * n + j];
                *o = if first { v } else { *o + v };
            }
        };
        let mut j = 0;
        while j < n8 {
            let t = panel_tile4::<L>(at, b, k, k0, j);
            for (c, col) in t.iter().enumerate() {
                scatter(j + c, col);
            }
            j += CT;
        }
        while j < n {
            scatter(j, &panel_tile1::<L>(at, b, k, k0, j));
            j += 1;
        }
        k0 += KB;
        if k0 >= k {
            break;
        }
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

/// GEMM for `b` stored `[n, k]` (linear layers' weights). Blocks of 16 rows of `a` (8 or 4
/// for a short last block) are transposed into a stack panel, so the inner loop multiplies a
/// 16-row vector by broadcast weights with every accumulator in a register; then the bias and
/// the activation (fast GELU/SiLU) are applied per row while it is in cache.
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
            let rows = (m - i).min(16);
            match rows {
                9.. => panel_rows::<16>(am, bm, ym, k, n, i, rows),
                5..=8 => panel_rows::<8>(am, bm, ym, k, n, i, rows),
                _ => panel_rows::<4>(am, bm, ym, k, n, i, rows),
            }
            for r in i..i + rows {
                finish_row(p, &mut ym[r * n..(r + 1) * n], bias, r, act);
            }
            i += rows;
        }
    }
}

/// Accepts products whose `b` is stored `[n, k]` with at least 8 rows: a row block is 16 rows,
/// and with fewer than half of them used `tiled` was faster (a 1-row 1280→1000 classifier took
/// 1.04 ms here against `tiled`'s 0.27 ms).
pub fn dot_accepts(p: &Gemm) -> bool {
    p.b_trans && p.m >= 8
}
//@end

//@meta
/// Code sizes: `.text` bytes of each variant's function (helpers inlined, plus the tiled
/// variant's out-of-line `tile_*` and the dot variant's `panel_rows`/`panel_tile*` instances; out-of-line
/// `crate::act`/`crate::math` calls not counted) from
/// `cargo rustc --release -p etpkg-kernels --lib -- --emit=obj -C codegen-units=1` for the default
/// x86_64 target, read with `nm --size-sort -S`. `par`, which `tiled` splits one-row products
/// through, is counted with the conv variants (see `conv::VARIANTS`).
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
        code_bytes: 32535,
    },
    super::meta::KernelInfo {
        name: "matmul.dot",
        family: "matmul",
        dtypes: &["f32"],
        isa: &[],
        shape: "b stored [n, k] (linear weights); fast GELU/SiLU",
        speed: 3,
        code_bytes: 20273,
    },
];
//@end
