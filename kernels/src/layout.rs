//! Data-movement kernels: permute, expand, tile, concat, slice, pad, triangle, cumsum and cast,
//! and the two that create data, full and arange. Invariant: outputs hold input elements
//! (converted only by `cast`, `concat` and `cumsum`), the pad or fill value, zero or an
//! arithmetic sequence, in row-major order; no kernel reads outside its input slice.
//!
//! Every kernel is generic over [`Elem`] (f32, i64, bool stored as u8). Slice lengths: `x`
//! holds the input's `numel` elements and `y` the output's; the caller guarantees both.

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::shape::{split_at_axis, Elem, MultiIndex, Rows, Shape, MAX_RANK};

/// Copies a strided source row into `dst`; stride 1 is a memcpy and stride 0 a fill.
#[inline]
fn copy_row<T: Copy>(src: &[T], base: usize, stride: usize, dst: &mut [T]) {
    match stride {
        1 => dst.copy_from_slice(&src[base..base + dst.len()]),
        0 => dst.fill(src[base]),
        _ => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[base + i * stride];
            }
        }
    }
}

/// Why a layout kernel refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// Cumulative sums produce f32 or i64, never bool (PyTorch accumulates bool in i64).
    BoolCumsum,
}

impl core::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LayoutError::BoolCumsum => f.write_str("cumulative sum into bool"),
        }
    }
}

/// Permute: output dim i is input dim `perm[i]` (the first `x.rank` entries are used).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PermuteParams {
    pub x: Shape,
    pub perm: [usize; MAX_RANK],
}

/// Expand: broadcast `x` to `out` (right-aligned, size-1 dims grow).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpandParams {
    pub x: Shape,
    pub out: Shape,
}

/// Tile (`Tensor.repeat`): `repeats[..rank]` with `rank >= x.rank`; `x` is first padded with
/// leading 1s to `rank`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileParams {
    pub x: Shape,
    pub repeats: [usize; MAX_RANK],
    pub rank: usize,
}

/// Concat of one input: `x` is copied to positions `offset .. offset + x.dims[axis]` along
/// `axis` of `out`. The executor calls it once per input (skipping the 1-d empty inputs PyTorch
/// ignores, which have nothing to copy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConcatParams {
    pub x: Shape,
    pub out: Shape,
    pub axis: usize,
    pub offset: usize,
}

/// Slice: elements `start, start + step, ... < end` along `axis` (`end <= x.dims[axis]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SliceParams {
    pub x: Shape,
    pub axis: usize,
    pub start: usize,
    pub end: usize,
    pub step: usize,
}

/// Constant pad: `pads[d] = (before, after)` for the first `x.rank` dims; negative amounts crop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PadParams {
    pub x: Shape,
    pub pads: [(i64, i64); MAX_RANK],
    pub value: f64,
}

/// tril (`upper == false`: keep `j - i <= diagonal`) or triu (`upper`: keep
/// `j - i >= diagonal`) over the last two dims.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriangleParams {
    pub x: Shape,
    pub upper: bool,
    pub diagonal: i64,
}

/// Inclusive prefix sum along `axis`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CumsumParams {
    pub x: Shape,
    pub axis: usize,
}

/// Element type conversion of `numel` elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CastParams {
    pub numel: usize,
}

/// The output length along a sliced axis.
pub fn slice_len(start: usize, end: usize, step: usize) -> usize {
    if step == 0 || end <= start {
        0
    } else {
        (end - start).div_ceil(step)
    }
}

//@variant permute
/// `y = x.permute(perm)`. `y` has `x`'s numel.
pub fn permute<T: Elem>(p: &PermuteParams, x: &[T], y: &mut [T]) {
    let xs = p.x.strides();
    let mut out = p.x;
    let mut strides = [0; MAX_RANK];
    for i in 0..p.x.rank {
        out.dims[i] = p.x.dims[p.perm[i]];
        strides[i] = xs[p.perm[i]];
    }
    let rows = Rows::new(&out, [strides]);
    let (len, [s]) = (rows.row_len(), rows.row_strides());
    rows.for_each_row(|o, [b]| copy_row(x, b, s, &mut y[o..o + len]));
}

/// True when `perm` is a permutation of the dims of `x`.
pub fn permute_accepts(p: &PermuteParams) -> bool {
    let mut seen = [false; MAX_RANK];
    p.x.rank <= MAX_RANK
        && p.perm[..p.x.rank].iter().all(|&d| {
            let fresh = d < p.x.rank && !seen[d];
            if fresh {
                seen[d] = true;
            }
            fresh
        })
}
//@end

//@variant expand
/// `y = x.expand(out)`. `y` has `out`'s numel.
pub fn expand<T: Elem>(p: &ExpandParams, x: &[T], y: &mut [T]) {
    let Some(strides) = super::shape::broadcast_strides(&p.x, &p.out) else {
        return;
    };
    let rows = Rows::new(&p.out, [strides]);
    let (len, [s]) = (rows.row_len(), rows.row_strides());
    rows.for_each_row(|o, [b]| copy_row(x, b, s, &mut y[o..o + len]));
}

/// True when `x` broadcasts to `out`.
pub fn expand_accepts(p: &ExpandParams) -> bool {
    super::shape::broadcast_strides(&p.x, &p.out).is_some()
}
//@end

//@variant tile
/// `y = x.repeat(repeats)`. `y` has `numel(x) · Π repeats` elements.
pub fn tile<T: Elem>(p: &TileParams, x: &[T], y: &mut [T]) {
    let r = p.rank;
    let mut xin = Shape::SCALAR;
    xin.rank = r;
    xin.dims[r - p.x.rank..r].copy_from_slice(p.x.dims());
    let mut out = xin;
    for d in 0..r {
        out.dims[d] *= p.repeats[d];
    }
    if out.numel() == 0 {
        return;
    }
    if r == 0 {
        y[0] = x[0];
        return;
    }
    let strides = xin.strides();
    let in_row = xin.dims[r - 1];
    let out_row = out.dims[r - 1];
    // Walk every output row; its source is the input row at each outer index modulo the
    // input's dims, repeated `repeats[r - 1]` times.
    let mut outer = out;
    outer.rank = r - 1;
    let mut walk = MultiIndex::new(&outer);
    let mut o = 0;
    while let Some(idx) = walk.next_index() {
        let mut base = 0;
        for d in 0..r - 1 {
            base += (idx[d] % xin.dims[d]) * strides[d];
        }
        for chunk in y[o..o + out_row].chunks_exact_mut(in_row) {
            chunk.copy_from_slice(&x[base..base + in_row]);
        }
        o += out_row;
    }
}

/// True when there is a repeat count for every input dim.
pub fn tile_accepts(p: &TileParams) -> bool {
    p.rank >= p.x.rank && p.rank <= MAX_RANK
}
//@end

//@variant concat
/// Copies one concat input `x` into its slot of `y` (the whole output), converting elements
/// to the output type as `torch.cat` promotes them.
pub fn concat<S: Elem, T: Elem>(p: &ConcatParams, x: &[S], y: &mut [T]) {
    let (outer, len, inner) = split_at_axis(&p.x, p.axis);
    let out_len = p.out.dims[p.axis];
    let chunk = len * inner;
    if chunk == 0 {
        return;
    }
    for o in 0..outer {
        let dst = (o * out_len + p.offset) * inner;
        let src = &x[o * chunk..(o + 1) * chunk];
        for (d, &s) in y[dst..dst + chunk].iter_mut().zip(src) {
            *d = s.cast();
        }
    }
}

/// True when `x` matches `out` off the axis and fits its slot.
pub fn concat_accepts(p: &ConcatParams) -> bool {
    p.x.rank == p.out.rank
        && p.axis < p.x.rank
        && (0..p.x.rank).all(|d| d == p.axis || p.x.dims[d] == p.out.dims[d])
        && p.offset + p.x.dims[p.axis] <= p.out.dims[p.axis]
}
//@end

//@variant slice
/// `y = x[.., start:end:step, ..]` along `axis`. `y` has `numel(x) / len · slice_len` elements.
pub fn slice<T: Elem>(p: &SliceParams, x: &[T], y: &mut [T]) {
    let (outer, len, inner) = split_at_axis(&p.x, p.axis);
    let n = slice_len(p.start, p.end, p.step);
    let mut o_off = 0;
    for o in 0..outer {
        for j in 0..n {
            let src = (o * len + p.start + j * p.step) * inner;
            y[o_off..o_off + inner].copy_from_slice(&x[src..src + inner]);
            o_off += inner;
        }
    }
}

/// True for a positive step and an end within the dim.
pub fn slice_accepts(p: &SliceParams) -> bool {
    p.axis < p.x.rank && p.step > 0 && p.end <= p.x.dims[p.axis]
}
//@end

//@variant slice_rows
/// Slicing with step 1: each outer index copies one contiguous run of `(end − start)·inner`
/// elements, instead of `inner` elements per sliced index (which for the last axis is one
/// element per copy).
pub fn slice_rows<T: Elem>(p: &SliceParams, x: &[T], y: &mut [T]) {
    let (outer, len, inner) = split_at_axis(&p.x, p.axis);
    let run = slice_len(p.start, p.end, 1) * inner;
    if run == 0 {
        return;
    }
    for (o, yr) in y.chunks_exact_mut(run).take(outer).enumerate() {
        let src = (o * len + p.start) * inner;
        yr.copy_from_slice(&x[src..src + run]);
    }
}

/// True for step 1 and an end within the dim.
pub fn slice_rows_accepts(p: &SliceParams) -> bool {
    p.axis < p.x.rank && p.step == 1 && p.end <= p.x.dims[p.axis]
}
//@end

//@variant pad
/// Constant pad (negative pads crop). `y` has `Π (dims[d] + before + after)` elements.
pub fn pad<T: Elem>(p: &PadParams, x: &[T], y: &mut [T]) {
    let fill = T::from_f64(p.value);
    let r = p.x.rank;
    let mut out = p.x;
    for d in 0..r {
        out.dims[d] = (p.x.dims[d] as i64 + p.pads[d].0 + p.pads[d].1) as usize;
    }
    if out.numel() == 0 {
        return;
    }
    if r == 0 {
        y[0] = x[0];
        return;
    }
    let strides = p.x.strides();
    let out_row = out.dims[r - 1];
    // The output row's columns that come from the input, and where they start in the input.
    let before = p.pads[r - 1].0;
    let first = before.max(0) as usize;
    let last = (p.x.dims[r - 1] as i64 + before).clamp(0, out_row as i64) as usize;
    let src_col = (-before).max(0) as usize;
    let mut outer = out;
    outer.rank = r - 1;
    let mut walk = MultiIndex::new(&outer);
    let mut o = 0;
    while let Some(idx) = walk.next_index() {
        let row = &mut y[o..o + out_row];
        o += out_row;
        let mut base = 0;
        let mut inside = true;
        for d in 0..r - 1 {
            let s = idx[d] as i64 - p.pads[d].0;
            if s < 0 || s >= p.x.dims[d] as i64 {
                inside = false;
                break;
            }
            base += s as usize * strides[d];
        }
        if !inside || first >= last {
            row.fill(fill);
            continue;
        }
        row[..first].fill(fill);
        row[first..last].copy_from_slice(&x[base + src_col..base + src_col + (last - first)]);
        row[last..].fill(fill);
    }
}

/// True when no dim is cropped below size 0.
pub fn pad_accepts(p: &PadParams) -> bool {
    (0..p.x.rank).all(|d| p.x.dims[d] as i64 + p.pads[d].0 + p.pads[d].1 >= 0)
}
//@end

//@variant triangle
/// tril / triu over the last two dims; elements outside the triangle become zero.
pub fn triangle<T: Elem>(p: &TriangleParams, x: &[T], y: &mut [T]) {
    let r = p.x.rank;
    let (rows, cols) = (p.x.dims[r - 2], p.x.dims[r - 1]);
    if p.x.numel() == 0 {
        return;
    }
    let zero = T::default();
    for (k, (yr, xr)) in y
        .chunks_exact_mut(cols)
        .zip(x.chunks_exact(cols))
        .enumerate()
    {
        let i = (k % rows) as i64;
        // Column j is kept when j - i <= diagonal (tril) or j - i >= diagonal (triu).
        let edge = (i + p.diagonal).clamp(-1, cols as i64);
        let (keep_lo, keep_hi) = if p.upper {
            (edge.max(0) as usize, cols)
        } else {
            (0, (edge + 1).clamp(0, cols as i64) as usize)
        };
        for (j, (d, &s)) in yr.iter_mut().zip(xr).enumerate() {
            *d = if j >= keep_lo && j < keep_hi { s } else { zero };
        }
    }
}

/// True for rank >= 2.
pub fn triangle_accepts(p: &TriangleParams) -> bool {
    p.x.rank >= 2
}
//@end

//@variant cumsum
/// Inclusive prefix sum along `axis`, in the output type: f32 accumulates in f64 (as the
/// reference does) and i64 wraps. Bool outputs are refused.
pub fn cumsum<S: Elem, T: Elem>(p: &CumsumParams, x: &[S], y: &mut [T]) -> Result<(), LayoutError> {
    let (outer, len, inner) = split_at_axis(&p.x, p.axis);
    match T::DTYPE {
        super::shape::DType::Bool => return Err(LayoutError::BoolCumsum),
        super::shape::DType::F32 => {
            for o in 0..outer {
                for n in 0..inner {
                    let mut acc = 0f64;
                    for k in 0..len {
                        let i = (o * len + k) * inner + n;
                        acc += x[i].to_f32() as f64;
                        y[i] = T::from_f32(acc as f32);
                    }
                }
            }
        }
        super::shape::DType::I64 => {
            for o in 0..outer {
                for n in 0..inner {
                    let mut acc = 0i64;
                    for k in 0..len {
                        let i = (o * len + k) * inner + n;
                        acc = acc.wrapping_add(x[i].to_i64());
                        y[i] = T::from_i64(acc);
                    }
                }
            }
        }
    }
    Ok(())
}

/// True when the axis is in range (the dtype check is the kernel's `Err`).
pub fn cumsum_accepts(p: &CumsumParams) -> bool {
    p.axis < p.x.rank
}
//@end

//@variant cast
/// Element type conversion: float to integer truncates toward zero, anything to bool is
/// `!= 0`, bool to a number is 0 or 1. `x` and `y` have `numel` elements.
pub fn cast<S: Elem, T: Elem>(p: &CastParams, x: &[S], y: &mut [T]) {
    for (d, &s) in y[..p.numel].iter_mut().zip(&x[..p.numel]) {
        *d = s.cast();
    }
}

/// Always true: every pair of element types converts.
pub fn cast_accepts(_p: &CastParams) -> bool {
    true
}
//@end

//@variant full
/// Every element of `y` is `value`, converted as PyTorch converts a Python scalar.
pub fn full<T: Elem>(value: f64, y: &mut [T]) {
    y.fill(T::from_f64(value));
}

/// Always true: every element type holds a converted scalar.
pub fn full_accepts(_value: f64) -> bool {
    true
}
//@end

//@variant arange
/// `y[i] = start + i·step`, computed in f64 and then converted (exact for integers below
/// 2^53, as every i64 sequence a program can hold in memory is).
pub fn arange<T: Elem>(start: f64, step: f64, y: &mut [T]) {
    for (i, d) in y.iter_mut().enumerate() {
        *d = T::from_f64(start + step * i as f64);
    }
}

/// True for finite bounds and a numeric (not bool) output element type.
pub fn arange_accepts(start: f64, step: f64, out: super::shape::DType) -> bool {
    start.is_finite() && step.is_finite() && out != super::shape::DType::Bool
}
//@end

//@meta
/// `code_bytes`: measured on x86_64 by instantiating each variant (f32 where generic) behind
/// one `#[no_mangle]` wrapper in a scratch `staticlib` crate built with `--release`, `lto`,
/// `codegen-units = 1`, `panic = "abort"`, then summing `nm -S` sizes over the functions
/// reachable from the wrapper (relocations in `objdump -dr`), core's panic paths excluded.
/// Shared helpers a variant reaches (`crate::math`, `crate::act`, the row walker) are counted
/// in every variant that reaches them.
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "layout.permute",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 3064,
    },
    super::meta::KernelInfo {
        name: "layout.expand",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 3195,
    },
    super::meta::KernelInfo {
        name: "layout.tile",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 2350,
    },
    super::meta::KernelInfo {
        name: "layout.concat",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 607,
    },
    super::meta::KernelInfo {
        name: "layout.slice",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 742,
    },
    super::meta::KernelInfo {
        name: "layout.slice_rows",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "step 1 (contiguous runs)",
        speed: 1,
        code_bytes: 2415,
    },
    super::meta::KernelInfo {
        name: "layout.pad",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 2971,
    },
    super::meta::KernelInfo {
        name: "layout.triangle",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 1271,
    },
    super::meta::KernelInfo {
        name: "layout.cumsum",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 510,
    },
    super::meta::KernelInfo {
        name: "layout.cast",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 152,
    },
    super::meta::KernelInfo {
        name: "layout.full",
        family: "layout",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 110,
    },
    super::meta::KernelInfo {
        name: "layout.arange",
        family: "layout",
        dtypes: &["f32", "i64"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 293,
    },
];
//@end
