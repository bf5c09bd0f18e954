//! Data-dependent indexing kernels: take along an axis (`numpy.take`) and `torch.gather`.
//! Invariant: every index is range-checked before any element is read with it, and a bad
//! index is an `Err(IndexError)`, never a panic or a wrapped read.
//!
//! Slice lengths, which the caller guarantees: `x` holds `numel(x)` elements, the index tensor
//! `numel(idx)` and `y` the output's numel (see each kernel).

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::shape::{split_at_axis, Elem, MultiIndex, Shape};

/// An index outside `[-size, size)` for take or `[0, size)` for gather.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexError {
    pub index: i64,
    pub size: usize,
}

impl core::fmt::Display for IndexError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "index {} is out of range for a dimension of size {}",
            self.index, self.size
        )
    }
}

/// Take: output shape `x.dims[..axis] ++ idx ++ x.dims[axis + 1..]`; only `idx`'s numel
/// matters to the kernel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TakeParams {
    pub x: Shape,
    pub axis: usize,
    pub idx_numel: usize,
}

/// Gather: the output has `idx`'s shape, which matches `x` in rank and is no larger off `axis`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GatherParams {
    pub x: Shape,
    pub idx: Shape,
    pub axis: usize,
}

//@variant take
/// `y = x.take(idx, axis)`: negative indices count from the end once. `y` has
/// `outer · idx_numel · inner` elements. All indices are checked before anything is written.
pub fn take<T: Elem>(p: &TakeParams, x: &[T], idx: &[i64], y: &mut [T]) -> Result<(), IndexError> {
    let (outer, len, inner) = split_at_axis(&p.x, p.axis);
    let resolve = |i: i64| -> Result<usize, IndexError> {
        let j = if i < 0 { i.wrapping_add(len as i64) } else { i };
        if j < 0 || j >= len as i64 {
            Err(IndexError {
                index: i,
                size: len,
            })
        } else {
            Ok(j as usize)
        }
    };
    for &i in &idx[..p.idx_numel] {
        resolve(i)?;
    }
    let mut o_off = 0;
    for o in 0..outer {
        for &i in &idx[..p.idx_numel] {
            let src = (o * len + resolve(i)?) * inner;
            y[o_off..o_off + inner].copy_from_slice(&x[src..src + inner]);
            o_off += inner;
        }
    }
    Ok(())
}

/// True when the axis is in range.
pub fn take_accepts(p: &TakeParams) -> bool {
    p.axis < p.x.rank
}
//@end

//@variant gather
/// `y = torch.gather(x, axis, idx)`: negative indices are errors, as in PyTorch. `y` has
/// `numel(idx)` elements. All indices are checked before anything is written.
pub fn gather<T: Elem>(
    p: &GatherParams,
    x: &[T],
    idx: &[i64],
    y: &mut [T],
) -> Result<(), IndexError> {
    let len = p.x.dims[p.axis];
    let n = p.idx.numel();
    if let Some(&bad) = idx[..n].iter().find(|&&k| k < 0 || k >= len as i64) {
        return Err(IndexError {
            index: bad,
            size: len,
        });
    }
    let strides = p.x.strides();
    let mut walk = MultiIndex::new(&p.idx);
    let mut flat = 0;
    while let Some(o) = walk.next_index() {
        let mut src = 0;
        for d in 0..p.x.rank {
            let i = if d == p.axis {
                idx[flat] as usize
            } else {
                o[d]
            };
            src += i * strides[d];
        }
        y[flat] = x[src];
        flat += 1;
    }
    Ok(())
}

/// True when `idx` has `x`'s rank and no dim off `axis` is larger than `x`'s.
pub fn gather_accepts(p: &GatherParams) -> bool {
    p.axis < p.x.rank
        && p.idx.rank == p.x.rank
        && (0..p.x.rank).all(|d| d == p.axis || p.idx.dims[d] <= p.x.dims[d])
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
        name: "index.take",
        family: "index",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 681,
    },
    super::meta::KernelInfo {
        name: "index.gather",
        family: "index",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 2822,
    },
];
//@end
