//! Broadcasting binary kernels: arithmetic, comparisons and logical ops, with an optional fused
//! activation on f32 results. Invariant: arithmetic happens in the output dtype, comparisons in
//! the promoted input dtype, and integer faults are `Err`, never panics — as in the reference.
//!
//! Slice lengths, which the caller guarantees: a slice operand holds its shape's numel and `y`
//! the output's numel. An operand may be `InOut` (it lives in `y`) when it has the output's
//! shape and dtype: the memory planner runs element-wise ops in place.

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::act::Act;
use super::shape::{load, operand_strides, DType, Dst, Elem, Operand, Rows, Shape, Src, CHUNK};

/// The binary op, as etpkg's IR names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// True division (an integer output is refused; the IR gives i64 / i64 an f32 output).
    Div,
    FloorDiv,
    TruncDiv,
    /// Python-style remainder (sign of the divisor).
    Rem,
    Pow,
    /// NaN-propagating, as torch.maximum.
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Xor,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }
}

/// What a binary kernel needs to know: the op, operand and output shapes and dtypes, and the
/// activation fused onto f32 results (`Act::None` for none).
#[derive(Clone, Copy, Debug)]
pub struct BinaryParams {
    pub op: BinaryOp,
    pub a: Shape,
    pub b: Shape,
    pub out: Shape,
    pub a_dtype: DType,
    pub b_dtype: DType,
    pub out_dtype: DType,
    pub act: Act,
}

/// Why a binary kernel stopped. The output is partly written when it returns an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryError {
    /// Integer floor_div, trunc_div or rem by zero.
    DivisionByZero,
    /// An integer raised to a negative power.
    NegativePower,
    /// The op does not produce this output dtype from these inputs (bool sub, i64 true
    /// division, bitwise ops on floats, an activation on a non-f32 result).
    Unsupported,
    /// The operands do not broadcast to the output (or an `InOut` operand lacks its shape).
    Shape,
}

impl core::fmt::Display for BinaryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BinaryError::DivisionByZero => "integer division by zero",
            BinaryError::NegativePower => "integer to a negative power",
            BinaryError::Unsupported => "the op does not produce this dtype from these inputs",
            BinaryError::Shape => "the operands do not broadcast to the output",
        })
    }
}

/// Float arithmetic in f32, operation for operation as the reference (and PyTorch's CPU
/// kernels) compute it. Comparisons and logical ops never reach here.
#[inline(always)]
pub fn float_op(op: BinaryOp, p: f32, q: f32) -> f32 {
    match op {
        BinaryOp::Add => p + q,
        BinaryOp::Sub => p - q,
        BinaryOp::Mul => p * q,
        BinaryOp::Div => p / q,
        BinaryOp::FloorDiv => floor_div_f32(p, q),
        BinaryOp::TruncDiv => super::math::trunc(p / q),
        BinaryOp::Rem => {
            // fmod is exact; shifting by the divisor moves the result to the divisor's sign.
            let m = p % q;
            if m != 0.0 && (q < 0.0) != (m < 0.0) {
                m + q
            } else {
                m
            }
        }
        BinaryOp::Pow => super::math::powf(p, q),
        BinaryOp::Maximum => {
            if p.is_nan() || q.is_nan() {
                f32::NAN
            } else {
                p.max(q)
            }
        }
        BinaryOp::Minimum => {
            if p.is_nan() || q.is_nan() {
                f32::NAN
            } else {
                p.min(q)
            }
        }
        _ => f32::NAN,
    }
}

/// PyTorch's `div_floor_floating`: floor(p / q) from the exact fmod, so a quotient just below
/// an integer is not rounded up to it first.
fn floor_div_f32(p: f32, q: f32) -> f32 {
    if q == 0.0 {
        return p / q;
    }
    let m = p % q;
    let mut div = (p - m) / q;
    if m != 0.0 && (q < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0f32.copysign(p / q);
    }
    let f = super::math::floor(div);
    if div - f > 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// One side of an f32 row: a slice, one value, or the output itself.
#[derive(Clone, Copy)]
enum Side<'a> {
    Slice(&'a [f32]),
    Scalar(f32),
    Out,
}

/// `y[i] = f(a[i], b[i])` over one row, with the loop shape chosen once per row so that
/// the compiler can vectorize each shape.
#[inline(always)]
fn map_row<F: Fn(f32, f32) -> f32>(f: F, a: Side<'_>, b: Side<'_>, y: &mut [f32]) {
    let n = y.len();
    match (a, b) {
        (Side::Slice(a), Side::Slice(b)) => {
            for ((y, &a), &b) in y.iter_mut().zip(&a[..n]).zip(&b[..n]) {
                *y = f(a, b);
            }
        }
        (Side::Slice(a), Side::Scalar(s)) => {
            for (y, &a) in y.iter_mut().zip(&a[..n]) {
                *y = f(a, s);
            }
        }
        (Side::Scalar(s), Side::Slice(b)) => {
            for (y, &b) in y.iter_mut().zip(&b[..n]) {
                *y = f(s, b);
            }
        }
        (Side::Out, Side::Slice(b)) => {
            for (y, &b) in y.iter_mut().zip(&b[..n]) {
                *y = f(*y, b);
            }
        }
        (Side::Slice(a), Side::Out) => {
            for (y, &a) in y.iter_mut().zip(&a[..n]) {
                *y = f(a, *y);
            }
        }
        (Side::Out, Side::Scalar(s)) => {
            for y in y.iter_mut() {
                *y = f(*y, s);
            }
        }
        (Side::Scalar(s), Side::Out) => {
            for y in y.iter_mut() {
                *y = f(s, *y);
            }
        }
        (Side::Out, Side::Out) => {
            for y in y.iter_mut() {
                *y = f(*y, *y);
            }
        }
        (Side::Scalar(s), Side::Scalar(t)) => y.fill(f(s, t)),
    }
}

/// One f32 row of an arithmetic op, then the fused activation.
#[inline]
fn f32_row(op: BinaryOp, act: Act, a: Side<'_>, b: Side<'_>, y: &mut [f32]) {
    if act == Act::Relu {
        // ReLU (after a residual add) in the same pass: a second pass read the whole output
        // again, which for resnet18's 800 KB feature maps came from L3. Same rule as
        // `Act::apply`: NaN < 0 is false, so NaN passes through.
        let relu = |v: f32| if v < 0.0 { 0.0 } else { v };
        match op {
            BinaryOp::Add => map_row(|p, q| relu(p + q), a, b, y),
            BinaryOp::Sub => map_row(|p, q| relu(p - q), a, b, y),
            BinaryOp::Mul => map_row(|p, q| relu(p * q), a, b, y),
            BinaryOp::Div => map_row(|p, q| relu(p / q), a, b, y),
            _ => map_row(|p, q| relu(float_op(op, p, q)), a, b, y),
        }
        return;
    }
    match op {
        BinaryOp::Add => map_row(|p, q| p + q, a, b, y),
        BinaryOp::Sub => map_row(|p, q| p - q, a, b, y),
        BinaryOp::Mul => map_row(|p, q| p * q, a, b, y),
        BinaryOp::Div => map_row(|p, q| p / q, a, b, y),
        _ => map_row(|p, q| float_op(op, p, q), a, b, y),
    }
    if !matches!(act, Act::None) {
        act.apply_slice(y);
    }
}

/// True for the ops the f32 speed variants compute (arithmetic, not comparison or logical).
fn f32_arith(p: &BinaryParams) -> bool {
    p.a_dtype == DType::F32
        && p.b_dtype == DType::F32
        && p.out_dtype == DType::F32
        && !p.op.is_comparison()
        && !p.op.is_logical()
}

fn side<'a>(o: &Operand<'a, f32>, at: usize, len: usize) -> Side<'a> {
    match *o {
        Operand::Slice(v) => Side::Slice(&v[at..at + len]),
        Operand::InOut => Side::Out,
    }
}

/// Integer arithmetic with Python's rounding conventions; overflow wraps as in PyTorch.
#[inline]
fn int_op(op: BinaryOp, p: i64, q: i64) -> Result<i64, BinaryError> {
    let nonzero = |q: i64| {
        if q == 0 {
            Err(BinaryError::DivisionByZero)
        } else {
            Ok(q)
        }
    };
    Ok(match op {
        BinaryOp::Add => p.wrapping_add(q),
        BinaryOp::Sub => p.wrapping_sub(q),
        BinaryOp::Mul => p.wrapping_mul(q),
        BinaryOp::FloorDiv => {
            let q = nonzero(q)?;
            let d = p.wrapping_div(q);
            if p.wrapping_rem(q) != 0 && ((p < 0) != (q < 0)) {
                d - 1
            } else {
                d
            }
        }
        BinaryOp::TruncDiv => p.wrapping_div(nonzero(q)?),
        BinaryOp::Rem => {
            let q = nonzero(q)?;
            let r = p.wrapping_rem(q);
            if r != 0 && ((r < 0) != (q < 0)) {
                r + q
            } else {
                r
            }
        }
        BinaryOp::Pow => {
            if q < 0 {
                return Err(BinaryError::NegativePower);
            }
            let (mut result, mut base, mut e) = (1i64, p, q as u64);
            while e > 0 {
                if e & 1 == 1 {
                    result = result.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                e >>= 1;
            }
            result
        }
        BinaryOp::Maximum => p.max(q),
        BinaryOp::Minimum => p.min(q),
        _ => return Err(BinaryError::Unsupported),
    })
}

//@variant binary
/// `y = op(a, b)` for any broadcastable shapes and f32/i64/bool operands. Arithmetic converts
/// both operands to the output dtype; comparisons compare in the promoted input dtype (f32 if
/// either is f32, else i64 if either is i64, else bool) and write 0/1 converted to the output;
/// and/or/xor act on truthiness into a bool output, or bitwise on non-float operands into i64.
/// Bool arithmetic: add and maximum are or, mul and minimum are and, the rest `Unsupported`.
/// The activation applies to f32 results only (`Unsupported` otherwise).
pub fn binary(p: &BinaryParams, a: Src<'_>, b: Src<'_>, y: Dst<'_>) -> Result<(), BinaryError> {
    let act_none = matches!(p.act, Act::None);
    if !act_none && p.out_dtype != DType::F32 {
        return Err(BinaryError::Unsupported);
    }
    let op = p.op;
    if op.is_comparison() {
        let promoted = if p.a_dtype == DType::F32 || p.b_dtype == DType::F32 {
            DType::F32
        } else if p.a_dtype == DType::I64 || p.b_dtype == DType::I64 {
            DType::I64
        } else {
            DType::Bool
        };
        return match (promoted, y) {
            (DType::F32, y) => compare_into::<f32>(p, a, b, y),
            (DType::I64, y) => compare_into::<i64>(p, a, b, y),
            (DType::Bool, y) => compare_into::<u8>(p, a, b, y),
        };
    }
    if op.is_logical() {
        let logic = |x: u8, y: u8| -> u8 {
            match op {
                BinaryOp::And => x & y,
                BinaryOp::Or => x | y,
                _ => x ^ y,
            }
        };
        return match y {
            Dst::Bool(y) => drive::<u8, u8>(p, a, b, y, |x, q, out| {
                for i in 0..out.len() {
                    out[i] = logic(x[i], q[i]);
                }
                Ok(())
            }),
            Dst::I64(y) if p.a_dtype != DType::F32 && p.b_dtype != DType::F32 => {
                drive::<i64, i64>(p, a, b, y, |x, q, out| {
                    for i in 0..out.len() {
                        out[i] = match op {
                            BinaryOp::And => x[i] & q[i],
                            BinaryOp::Or => x[i] | q[i],
                            _ => x[i] ^ q[i],
                        };
                    }
                    Ok(())
                })
            }
            _ => Err(BinaryError::Unsupported),
        };
    }
    match y {
        Dst::F32(y) => drive::<f32, f32>(p, a, b, y, |x, q, out| {
            f32_row(op, p.act, Side::Slice(x), Side::Slice(q), out);
            Ok(())
        }),
        Dst::I64(y) => {
            if op == BinaryOp::Div {
                return Err(BinaryError::Unsupported);
            }
            drive::<i64, i64>(p, a, b, y, |x, q, out| {
                for i in 0..out.len() {
                    out[i] = int_op(op, x[i], q[i])?;
                }
                Ok(())
            })
        }
        Dst::Bool(y) => {
            let f = match op {
                BinaryOp::Add | BinaryOp::Maximum => |x: u8, q: u8| x | q,
                BinaryOp::Mul | BinaryOp::Minimum => |x: u8, q: u8| x & q,
                _ => return Err(BinaryError::Unsupported),
            };
            drive::<u8, u8>(p, a, b, y, |x, q, out| {
                for i in 0..out.len() {
                    out[i] = f(x[i], q[i]);
                }
                Ok(())
            })
        }
    }
}

/// A comparison in element type `P`, written into whatever the output dtype is.
fn compare_into<P: Elem + PartialOrd>(
    p: &BinaryParams,
    a: Src<'_>,
    b: Src<'_>,
    y: Dst<'_>,
) -> Result<(), BinaryError> {
    let op = p.op;
    let cmp = move |x: P, q: P| -> bool {
        match op {
            BinaryOp::Eq => x == q,
            BinaryOp::Ne => x != q,
            BinaryOp::Lt => x < q,
            BinaryOp::Le => x <= q,
            BinaryOp::Gt => x > q,
            _ => x >= q,
        }
    };
    match y {
        Dst::Bool(y) => drive::<P, u8>(p, a, b, y, |x, q, out| {
            for i in 0..out.len() {
                out[i] = cmp(x[i], q[i]) as u8;
            }
            Ok(())
        }),
        Dst::F32(y) => drive::<P, f32>(p, a, b, y, |x, q, out| {
            for i in 0..out.len() {
                out[i] = cmp(x[i], q[i]) as u8 as f32;
            }
            Ok(())
        }),
        Dst::I64(y) => drive::<P, i64>(p, a, b, y, |x, q, out| {
            for i in 0..out.len() {
                out[i] = cmp(x[i], q[i]) as i64;
            }
            Ok(())
        }),
    }
}

/// Walks the broadcast in rows and chunks, converting both operands to `P`, and lets `f`
/// write each output chunk. Stops at the first error.
fn drive<P: Elem, T: Elem>(
    p: &BinaryParams,
    a: Src<'_>,
    b: Src<'_>,
    y: &mut [T],
    mut f: impl FnMut(&[P], &[P], &mut [T]) -> Result<(), BinaryError>,
) -> Result<(), BinaryError> {
    let sa = operand_strides(&a, &p.a, &p.out).ok_or(BinaryError::Shape)?;
    let sb = operand_strides(&b, &p.b, &p.out).ok_or(BinaryError::Shape)?;
    let rows = Rows::new(&p.out, [sa, sb]);
    let (len, [as_, bs]) = (rows.row_len(), rows.row_strides());
    let mut ba = [P::default(); CHUNK];
    let mut bb = [P::default(); CHUNK];
    let mut result = Ok(());
    rows.for_each_row(|o, [abase, bbase]| {
        let mut j = 0;
        while j < len && result.is_ok() {
            let n = (len - j).min(CHUNK);
            let out = &mut y[o + j..o + j + n];
            load(&a, abase + j * as_, as_, out, &mut ba[..n]);
            load(&b, bbase + j * bs, bs, out, &mut bb[..n]);
            result = f(&ba[..n], &bb[..n], out);
            j += n;
        }
    });
    result
}

/// Always true: the universal variant takes every shape and dtype combination the IR gives
/// (unsupported combinations are its `Err`).
pub fn binary_accepts(_p: &BinaryParams) -> bool {
    true
}
//@end

//@variant binary_f32_same
/// f32 arithmetic on same-shape operands (no broadcasting), one contiguous loop, with the
/// fused activation. Either operand (or both) may be `InOut`.
pub fn binary_f32_same(p: &BinaryParams, a: Operand<'_, f32>, b: Operand<'_, f32>, y: &mut [f32]) {
    let n = p.out.numel();
    let y = &mut y[..n];
    let threads = super::par::threads();
    if threads <= 1 || n < 2 * SAME_MIN_TASK {
        f32_row(p.op, p.act, side(&a, 0, n), side(&b, 0, n), y);
        return;
    }
    // Feature maps (rank 3 or more) that the convolutions around them split by pixels split
    // the same way, by the same column blocks of each `h·w` plane (`par::pixel_blocks`), so
    // that each thread adds what it wrote itself; anything else splits into contiguous blocks.
    let dims = p.out.dims();
    let plane = if dims.len() >= 3 {
        dims[dims.len() - 2] * dims[dims.len() - 1]
    } else {
        0
    };
    if let Some(cols) = super::par::pixel_blocks(plane) {
        super::par::for_each_col_block_mut(y, plane, cols, &|_, block| {
            let (start, len) = (block.start(), block.end() - block.start());
            for r in 0..n / plane {
                let at = r * plane + start;
                let part = block.row(r);
                f32_row(p.op, p.act, side(&a, at, len), side(&b, at, len), part);
            }
        });
        return;
    }
    let chunk = super::par::block_width(n, 16, 2);
    super::par::for_each_chunk_mut(y, chunk, &|i, part| {
        let at = i * chunk;
        f32_row(
            p.op,
            p.act,
            side(&a, at, part.len()),
            side(&b, at, part.len()),
            part,
        );
    });
}

/// Elements per task below which a same-shape op is not worth splitting.
const SAME_MIN_TASK: usize = 4 * 1024;

/// True for f32 arithmetic whose operands both have the output's shape.
pub fn binary_f32_same_accepts(p: &BinaryParams) -> bool {
    f32_arith(p) && p.a == p.out && p.b == p.out
}
//@end

//@variant binary_f32_scalar
/// f32 arithmetic with one single-element operand (e.g. `x * 0.5`, `1 - x`), with the fused
/// activation. The other operand has the output's shape and may be `InOut`.
pub fn binary_f32_scalar(
    p: &BinaryParams,
    a: Operand<'_, f32>,
    b: Operand<'_, f32>,
    y: &mut [f32],
) {
    let n = p.out.numel();
    let scalar = |o: &Operand<'_, f32>| match *o {
        Operand::Slice(v) => Side::Scalar(v[0]),
        Operand::InOut => Side::Out,
    };
    let (sa, sb) = if p.b.numel() == 1 && p.a == p.out {
        (side(&a, 0, n), scalar(&b))
    } else {
        (scalar(&a), side(&b, 0, n))
    };
    f32_row(p.op, p.act, sa, sb, &mut y[..n]);
}

/// True for f32 arithmetic where one operand has one element and the other the output's
/// shape.
pub fn binary_f32_scalar_accepts(p: &BinaryParams) -> bool {
    f32_arith(p)
        && p.out.numel() > 0
        && ((p.b.numel() == 1 && p.a == p.out && p.b.rank <= p.out.rank)
            || (p.a.numel() == 1 && p.b == p.out && p.a.rank <= p.out.rank))
}
//@end

//@variant binary_f32_channel
/// f32 arithmetic where one operand has the output's shape and the other broadcasts along
/// some dims, e.g. a per-channel `[C, 1, 1]` bias on `[N, C, H, W]` or a `[W]` row on
/// `[N, H, W]`, with the fused activation. Each coalesced row is one vectorizable loop against
/// a contiguous row or a single value. The full operand may be `InOut`.
pub fn binary_f32_channel(
    p: &BinaryParams,
    a: Operand<'_, f32>,
    b: Operand<'_, f32>,
    y: &mut [f32],
) {
    let a_full = p.a == p.out;
    let (full, small, small_shape) = if a_full { (a, b, &p.b) } else { (b, a, &p.a) };
    let Some(ss) = super::shape::broadcast_strides(small_shape, &p.out) else {
        return;
    };
    let rows = Rows::new(&p.out, [ss]);
    let (len, [s]) = (rows.row_len(), rows.row_strides());
    rows.for_each_row(|o, [base]| {
        let fs = side(&full, o, len);
        // An `InOut` small operand has the output's shape (both operands are full), so it
        // reads the output row in place.
        let sm = match small {
            Operand::InOut => Side::Out,
            Operand::Slice(sv) if s == 0 => Side::Scalar(sv[base]),
            Operand::Slice(sv) => Side::Slice(&sv[base..base + len]),
        };
        let (x, q) = if a_full { (fs, sm) } else { (sm, fs) };
        f32_row(p.op, p.act, x, q, &mut y[o..o + len]);
    });
}

/// True for f32 arithmetic where one operand has the output's shape and the other broadcasts
/// to it (its innermost coalesced row is then contiguous or a single value).
pub fn binary_f32_channel_accepts(p: &BinaryParams) -> bool {
    if !f32_arith(p) {
        return false;
    }
    let small = if p.a == p.out {
        &p.b
    } else if p.b == p.out {
        &p.a
    } else {
        return false;
    };
    match super::shape::broadcast_strides(small, &p.out) {
        Some(ss) => Rows::new(&p.out, [ss]).row_strides()[0] <= 1,
        None => false,
    }
}
//@end

//@meta
/// `code_bytes`: measured on x86_64 by instantiating each variant (f32 where generic) behind
/// one `#[no_mangle]` wrapper in a scratch `staticlib` crate built with `--release`, `lto`,
/// `codegen-units = 1`, `panic = "abort"`, then summing `nm -S` sizes over the functions
/// reachable from the wrapper (relocations in `objdump -dr`), core's panic paths excluded.
/// Shared helpers a variant reaches (`crate::math`, `crate::act`, the row walker) are counted
/// in every variant that reaches them, except `par` (which `binary_f32_same` splits through),
/// counted with the conv variants (see `conv::VARIANTS`).
pub const VARIANTS: &[super::meta::KernelInfo] = &[
    super::meta::KernelInfo {
        name: "binary.binary",
        family: "binary",
        dtypes: &["f32", "i64", "bool"],
        isa: &[],
        shape: "any",
        speed: 0,
        code_bytes: 61647,
    },
    super::meta::KernelInfo {
        name: "binary.binary_f32_same",
        family: "binary",
        dtypes: &["f32"],
        isa: &[],
        shape: "f32 arithmetic, both operands of the output shape",
        speed: 2,
        code_bytes: 17188,
    },
    super::meta::KernelInfo {
        name: "binary.binary_f32_scalar",
        family: "binary",
        dtypes: &["f32"],
        isa: &[],
        shape: "f32 arithmetic, one single-element operand",
        speed: 2,
        code_bytes: 15580,
    },
    super::meta::KernelInfo {
        name: "binary.binary_f32_channel",
        family: "binary",
        dtypes: &["f32"],
        isa: &[],
        shape: "f32 arithmetic, one operand of the output shape, the other broadcast",
        speed: 1,
        code_bytes: 17183,
    },
];
//@end
