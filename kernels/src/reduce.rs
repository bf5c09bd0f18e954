//! Reductions over a set of axes (sum, mean, amax, amin, prod), variance and arg-max/min.
//! Invariant: f32 data accumulates in f64 and is rounded once, i64 sums and products wrap,
//! and max/min let NaN win, exactly as the reference interpreter does.
//!
//! keepdim does not change the output's memory, so the kernels ignore it. Slice lengths, which
//! the caller guarantees: `x` holds `numel(x)` elements and `y` the output's numel (the product
//! of the kept dims).

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::shape::{DType, Elem, Rows, Shape, MAX_RANK};

/// The reduction applied to each group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

/// Which extreme an arg-reduction finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgOp {
    Max,
    Min,
}

/// Why a reduction refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceError {
    /// max/min (or argmax/argmin) of an empty group has no identity.
    Empty,
    /// The op does not produce this output type (mean of i64, sum into bool, argmax of bool).
    Unsupported,
}

impl core::fmt::Display for ReduceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ReduceError::Empty => "max/min over an empty dimension has no identity",
            ReduceError::Unsupported => "the reduction does not produce this dtype",
        })
    }
}

/// A reduction of `x` over the dims whose bit is set in `axes` (bit d is dim d). The caller
/// turns an empty axis list, which means all dims, into all bits set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReduceParams {
    pub x: Shape,
    pub axes: u32,
}

/// Variance over `axes` (as in [`ReduceParams`]) with `correction` (0 biased, 1 unbiased).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VarParams {
    pub x: Shape,
    pub axes: u32,
    pub correction: f64,
}

/// Arg-reduction along `axis`, or over the flattened tensor when `axis` is None.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArgParams {
    pub x: Shape,
    pub axis: Option<usize>,
}

/// The walks over kept dims (one per output element) and over reduced dims (one per group
/// element), both with `x`'s strides, and the group size.
fn split_walks(x: &Shape, axes: u32) -> (Rows<1>, Rows<1>, usize) {
    let strides = x.strides();
    let (mut kept, mut red) = (Shape::SCALAR, Shape::SCALAR);
    let (mut ks, mut rs) = ([0; MAX_RANK], [0; MAX_RANK]);
    for d in 0..x.rank {
        let (s, st) = if axes & (1 << d) != 0 {
            (&mut red, &mut rs)
        } else {
            (&mut kept, &mut ks)
        };
        s.dims[s.rank] = x.dims[d];
        st[s.rank] = strides[d];
        s.rank += 1;
    }
    (Rows::new(&kept, [ks]), Rows::new(&red, [rs]), red.numel())
}

/// Calls `f(out_index, group_base)` for every output element, then the caller folds over the
/// group with [`fold_group`].
fn for_each_output(kept: &Rows<1>, mut f: impl FnMut(usize, usize)) {
    let (len, [s]) = (kept.row_len(), kept.row_strides());
    let mut out = 0;
    kept.for_each_row(|_, [b]| {
        for j in 0..len {
            f(out, b + j * s);
            out += 1;
        }
    });
}

/// Folds `f` over the group of input elements starting at `base`, in input order.
#[inline]
fn fold_group<S: Copy, A: Copy>(
    x: &[S],
    red: &Rows<1>,
    base: usize,
    init: A,
    mut f: impl FnMut(A, S) -> A,
) -> A {
    let (len, [s]) = (red.row_len(), red.row_strides());
    let mut acc = init;
    red.for_each_row(|_, [b]| {
        let start = base + b;
        if s == 1 {
            for &v in &x[start..start + len] {
                acc = f(acc, v);
            }
        } else {
            for t in 0..len {
                acc = f(acc, x[start + t * s]);
            }
        }
    });
    acc
}

/// NaN-winning max/min on f64, as PyTorch's amax/amin.
#[inline]
fn extreme(m: f64, v: f64, max: bool) -> f64 {
    if m.is_nan() || v.is_nan() {
        f64::NAN
    } else if (max && v > m) || (!max && v < m) {
        v
    } else {
        m
    }
}

//@variant reduce
/// `y = op(x)` over the reduced dims, after converting `x` to the output type `T` as the
/// reference does (sum and prod of bool or i64 give i64). f32: sum, mean, prod accumulate in
/// f64; max/min let NaN win. i64: wrapping sum and prod, max, min; mean is refused. bool: max
/// (any) and min (all) only. Max/min of an empty group is `Err(Empty)`.
pub fn reduce<S: Elem, T: Elem>(
    p: &ReduceParams,
    op: ReduceOp,
    x: &[S],
    y: &mut [T],
) -> Result<(), ReduceError> {
    let (kept, red, n) = split_walks(&p.x, p.axes);
    let extreme_op = matches!(op, ReduceOp::Max | ReduceOp::Min);
    if extreme_op && n == 0 && kept_numel(&p.x, p.axes) > 0 {
        return Err(ReduceError::Empty);
    }
    match T::DTYPE {
        DType::F32 => for_each_output(&kept, |o, base| {
            let v = match op {
                ReduceOp::Sum => fold_group(x, &red, base, 0f64, |a, v| a + v.to_f32() as f64),
                ReduceOp::Mean => {
                    fold_group(x, &red, base, 0f64, |a, v| a + v.to_f32() as f64) / n as f64
                }
                ReduceOp::Prod => fold_group(x, &red, base, 1f64, |a, v| a * v.to_f32() as f64),
                ReduceOp::Max | ReduceOp::Min => {
                    let max = op == ReduceOp::Max;
                    let first = x[base].to_f32() as f64;
                    fold_group(x, &red, base, first, |a, v| {
                        extreme(a, v.to_f32() as f64, max)
                    })
                }
            };
            y[o] = T::from_f32(v as f32);
        }),
        DType::I64 => {
            if op == ReduceOp::Mean {
                return Err(ReduceError::Unsupported);
            }
            for_each_output(&kept, |o, base| {
                let v = match op {
                    ReduceOp::Sum | ReduceOp::Mean => {
                        fold_group(x, &red, base, 0i64, |a, v| a.wrapping_add(v.to_i64()))
                    }
                    ReduceOp::Prod => {
                        fold_group(x, &red, base, 1i64, |a, v| a.wrapping_mul(v.to_i64()))
                    }
                    ReduceOp::Max => fold_group(x, &red, base, i64::MIN, |a, v| a.max(v.to_i64())),
                    ReduceOp::Min => fold_group(x, &red, base, i64::MAX, |a, v| a.min(v.to_i64())),
                };
                y[o] = T::from_i64(v);
            })
        }
        DType::Bool => {
            if !extreme_op {
                return Err(ReduceError::Unsupported);
            }
            let max = op == ReduceOp::Max;
            for_each_output(&kept, |o, base| {
                let v = fold_group(x, &red, base, !max, |a, v| {
                    if max {
                        a || v.to_bool()
                    } else {
                        a && v.to_bool()
                    }
                });
                y[o] = T::from_bool(v);
            })
        }
    }
    Ok(())
}

/// The number of output elements of a reduction.
fn kept_numel(x: &Shape, axes: u32) -> usize {
    (0..x.rank)
        .filter(|&d| axes & (1 << d) == 0)
        .map(|d| x.dims[d])
        .product()
}

/// True when every axis bit names a dim of `x`.
pub fn reduce_accepts(p: &ReduceParams) -> bool {
    p.x.rank <= MAX_RANK && p.axes >> p.x.rank == 0
}
//@end

//@variant var
/// Variance of f32 data over the reduced dims, two passes in f64; the divisor is
/// `max(N - correction, 0)`, so too few elements give inf or NaN as in PyTorch.
pub fn var(p: &VarParams, x: &[f32], y: &mut [f32]) {
    let (kept, red, n) = split_walks(&p.x, p.axes);
    for_each_output(&kept, |o, base| {
        let mean = fold_group(x, &red, base, 0f64, |a, v| a + v as f64) / n as f64;
        let ss = fold_group(x, &red, base, 0f64, |a, v| {
            let d = v as f64 - mean;
            a + d * d
        });
        y[o] = (ss / (n as f64 - p.correction).max(0.0)) as f32;
    });
}

/// True when every axis bit names a dim of `x`.
pub fn var_accepts(p: &VarParams) -> bool {
    p.x.rank <= MAX_RANK && p.axes >> p.x.rank == 0
}
//@end

//@variant arg_reduce
/// Index of the first max/min along the axis (or of the flattened tensor), written as i64.
/// NaN counts as the extreme for both and the first NaN wins, as in PyTorch. f32 and i64
/// inputs; bool is `Err(Unsupported)`, an empty axis `Err(Empty)`.
pub fn arg_reduce<T: Elem>(
    p: &ArgParams,
    op: ArgOp,
    x: &[T],
    y: &mut [i64],
) -> Result<(), ReduceError> {
    let (outer, len, inner) = match p.axis {
        Some(a) => super::shape::split_at_axis(&p.x, a),
        None => (1, p.x.numel(), 1),
    };
    if T::DTYPE == DType::Bool {
        return Err(ReduceError::Unsupported);
    }
    if len == 0 {
        return Err(ReduceError::Empty);
    }
    let max = op == ArgOp::Max;
    for o in 0..outer {
        for n in 0..inner {
            let at = |k: usize| x[(o * len + k) * inner + n];
            let mut best = 0;
            let mut bv = at(0);
            for k in 1..len {
                let c = at(k);
                let better = if T::DTYPE == DType::I64 {
                    let (c, b) = (c.to_i64(), bv.to_i64());
                    (max && c > b) || (!max && c < b)
                } else {
                    let (c, b) = (c.to_f32(), bv.to_f32());
                    !b.is_nan() && (c.is_nan() || (max && c > b) || (!max && c < b))
                };
                if better {
                    best = k;
                    bv = c;
                }
            }
            y[o * inner + n] = best as i64;
        }
    }
    Ok(())
}

/// True when the axis (if any) is in range.
pub fn arg_reduce_accepts(p: &ArgParams) -> bool {
    p.axis.is_none_or(|a| a < p.x.rank)
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
        name: "reduce.reduce",
        family: "reduce",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 8088,
    },
    super::meta::KernelInfo {
        name: "reduce.var",
        family: "reduce",
        dtypes: &["f32"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 4735,
    },
    super::meta::KernelInfo {
        name: "reduce.arg_reduce",
        family: "reduce",
        dtypes: &["f32", "i64"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 1383,
    },
];
//@end
