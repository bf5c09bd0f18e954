//! Static shape and dtype inference over the core op set. Invariant: `infer` returns exactly the
//! type PyTorch gives the op's output, or an `InferError` naming the violated rule, never a panic.
//!
//! The importer runs this over every lowered node and compares the result with the type the
//! archive recorded, so each rule mirrors PyTorch's own checks (as of PyTorch 2.x on CPU),
//! including the dtype restrictions of its kernels: a graph PyTorch could not have produced is
//! reported here rather than miscompiled later.

use super::{
    BinaryOp, ConvAttrs, DType, Op, PoolAttrs, PoolKind, ReduceOp, TensorType, UnaryOp,
    UpsampleMode,
};
use thiserror::Error;

/// Why an op cannot be applied to the given input types.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{op}: {message}")]
pub struct InferError {
    /// The op's short name (`Op::name`).
    pub op: &'static str,
    /// What is wrong, in terms of the inputs and attributes the user can inspect.
    pub message: String,
}

type Result<T> = std::result::Result<T, InferError>;

/// Returns early with an `InferError` for `$cx` unless `$cond` holds.
macro_rules! ensure {
    ($cx:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($cx.error(format!($($fmt)+)));
        }
    };
}

/// The op being checked, so that every message carries its name.
#[derive(Clone, Copy)]
struct Cx {
    op: &'static str,
}

impl Cx {
    fn error(self, message: String) -> InferError {
        InferError {
            op: self.op,
            message,
        }
    }

    /// Checks the input count: `required` names the mandatory inputs and `optional` the trailing
    /// ones that may be left off.
    fn arity<'a>(
        self,
        inputs: &[&'a TensorType],
        required: &[&str],
        optional: &[&str],
    ) -> Result<Vec<&'a TensorType>> {
        let (min, max) = (required.len(), required.len() + optional.len());
        if inputs.len() < min || inputs.len() > max {
            let mut names: Vec<String> = required.iter().map(|s| s.to_string()).collect();
            names.extend(optional.iter().map(|s| format!("optional {s}")));
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(self.error(format!(
                "takes {expected} input(s) ({}), got {}",
                names.join(", "),
                inputs.len()
            )));
        }
        Ok(inputs.to_vec())
    }

    /// Checks that `axis` indexes a tensor of `rank` dims. PyTorch lets dim-taking ops treat a
    /// 0-d tensor as if it had one dim, so axis 0 is accepted there when `scalar_ok`.
    fn axis(self, axis: usize, rank: usize, scalar_ok: bool) -> Result<()> {
        let limit = if scalar_ok { rank.max(1) } else { rank };
        ensure!(
            self,
            axis < limit,
            "axis {axis} is out of range for a rank-{rank} input"
        );
        Ok(())
    }

    /// Multiplies sizes, reporting overflow instead of wrapping.
    /// Checks an exact input count and hands the inputs back as an array.
    fn exact<'a, const N: usize>(
        self,
        inputs: &[&'a TensorType],
        names: [&str; N],
    ) -> Result<[&'a TensorType; N]> {
        self.arity(inputs, &names, &[])?;
        Ok(std::array::from_fn(|i| inputs[i]))
    }

    /// Widens a size or attribute for output-size formulas that may go negative. Values are
    /// capped at 2^62 (no tensor that large fits in memory), so that the few products and sums
    /// in those formulas cannot overflow i128.
    fn wide(self, what: &str, x: usize) -> Result<i128> {
        ensure!(
            self,
            x <= 1 << 62,
            "{what} {x} is too large to describe a real tensor"
        );
        Ok(x as i128)
    }

    fn numel(self, shape: &[usize]) -> Result<usize> {
        shape.iter().try_fold(1usize, |acc, &d| {
            acc.checked_mul(d).ok_or_else(|| {
                self.error(format!(
                    "shape {} has more elements than fit in memory",
                    dims(shape)
                ))
            })
        })
    }

    /// Broadcasts two shapes with PyTorch's (numpy's) rule: right-aligned, equal sizes or 1.
    fn broadcast(self, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
        let rank = a.len().max(b.len());
        let mut out = vec![0; rank];
        for (i, o) in out.iter_mut().enumerate() {
            // Index i of the output lines up with index i - (rank - len) of each operand.
            let da = (i + a.len()).checked_sub(rank).map_or(1, |j| a[j]);
            let db = (i + b.len()).checked_sub(rank).map_or(1, |j| b[j]);
            *o = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(self.error(format!(
                    "shapes {} and {} do not broadcast: size {da} vs {db} at dim {i} of the \
                     broadcast shape",
                    dims(a),
                    dims(b)
                )));
            };
        }
        Ok(out)
    }

    fn require_float(self, what: &str, t: &TensorType) -> Result<()> {
        ensure!(
            self,
            t.dtype.is_float(),
            "{what} is {t}, but PyTorch implements {} for floating-point dtypes only; cast it \
             first",
            self.op
        );
        Ok(())
    }

    fn reject_bool(self, what: &str, t: &TensorType) -> Result<()> {
        ensure!(
            self,
            t.dtype != DType::Bool,
            "{what} is {t}, but PyTorch does not implement {} for bool; cast it first",
            self.op
        );
        Ok(())
    }

    fn same_dtype(self, what: &str, t: &TensorType, base: &str, b: &TensorType) -> Result<()> {
        ensure!(
            self,
            t.dtype == b.dtype,
            "{what} is {t} but {base} is {b}; PyTorch requires them to have the same dtype"
        );
        Ok(())
    }

    /// The dtype rule for normalization parameters: the input's dtype, or f32 beside an f16 or
    /// bf16 input (PyTorch's mixed-precision CPU kernels accept exactly that pairing).
    fn norm_param(self, what: &str, p: &TensorType, x: &TensorType) -> Result<()> {
        let mixed_ok = matches!(x.dtype, DType::F16 | DType::BF16) && p.dtype == DType::F32;
        ensure!(
            self,
            p.dtype == x.dtype || mixed_ok,
            "{what} is {p} but the input is {x}; parameters must match the input's dtype \
             (or be f32 for an f16/bf16 input)"
        );
        Ok(())
    }

    fn shape_is(self, what: &str, t: &TensorType, want: &[usize]) -> Result<()> {
        ensure!(
            self,
            t.shape == want,
            "{what} has shape {} but must be {}",
            dims(&t.shape),
            dims(want)
        );
        Ok(())
    }
}

/// Formats a shape the way the messages show it: `[2, 3]`.
fn dims(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// PyTorch's dtype categories; a higher category absorbs a lower one in promotion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Category {
    Bool,
    Integer,
    Float,
}

fn category(d: DType) -> Category {
    match d {
        DType::Bool => Category::Bool,
        DType::U8 | DType::I8 | DType::I16 | DType::I32 | DType::I64 => Category::Integer,
        DType::F16 | DType::BF16 | DType::F32 | DType::F64 => Category::Float,
    }
}

/// `torch.promote_types` over etpkg's dtypes.
fn promote_types(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (category(a), category(b)) {
        (Category::Bool, _) => b,
        (_, Category::Bool) => a,
        (Category::Integer, Category::Float) => b,
        (Category::Float, Category::Integer) => a,
        (Category::Integer, Category::Integer) => match (a, b) {
            // u8 and i8 each hold values the other cannot, so the pair needs i16.
            (U8, I8) | (I8, U8) => I16,
            (U8, x) | (x, U8) => x,
            // Signed integers: the wider one wins; the enum order is by width.
            _ => a.max(b),
        },
        (Category::Float, Category::Float) => match (a, b) {
            // Neither half type holds the other's range and precision, so the pair needs f32.
            (F16, BF16) | (BF16, F16) => F32,
            (F16 | BF16, x) | (x, F16 | BF16) => x,
            _ => a.max(b),
        },
    }
}

/// PyTorch's result type for an element-wise op over `operands`, with its 0-d rule: a 0-d
/// operand only decides the dtype when its category is higher than every dimensioned operand's.
/// Returns `None` for no operands.
fn result_type_of(operands: &[&TensorType]) -> Option<DType> {
    let fold = |zero_dim: bool| {
        operands
            .iter()
            .filter(|t| (t.rank() == 0) == zero_dim)
            .map(|t| t.dtype)
            .reduce(promote_types)
    };
    match (fold(false), fold(true)) {
        (Some(d), Some(z)) if category(z) > category(d) => Some(z),
        (Some(d), _) => Some(d),
        (None, z) => z,
    }
}

/// PyTorch's result type (`torch.result_type`) of a binary element-wise op on `a` and `b`.
pub fn result_type(a: &TensorType, b: &TensorType) -> DType {
    result_type_of(&[a, b]).expect("two operands always have a result type")
}

/// The output type of `op` applied to inputs of types `inputs`, or why the op cannot apply.
pub fn infer(op: &Op, inputs: &[&TensorType]) -> Result<TensorType> {
    let cx = Cx { op: op.name() };
    match op {
        Op::Conv(a) => conv(cx, a, inputs),
        Op::Linear => linear(cx, inputs),
        Op::MatMul => matmul(cx, inputs),
        Op::Addmm { .. } => addmm(cx, inputs),
        Op::BatchNorm { .. } => batch_norm(cx, inputs),
        Op::LayerNorm { axis, .. } => layer_norm(cx, *axis, inputs),
        Op::GroupNorm { groups, .. } => group_norm(cx, *groups, inputs),
        Op::Sdpa { causal, .. } => sdpa(cx, *causal, inputs),
        Op::Unary(u) => unary(cx, *u, inputs),
        Op::Binary(b) => binary(cx, *b, inputs),
        Op::Where => where_(cx, inputs),
        Op::Softmax { axis, .. } => {
            let [x] = cx.exact(inputs, ["x"])?;
            cx.axis(*axis, x.rank(), true)?;
            cx.require_float("the input", x)?;
            Ok(x.clone())
        }
        Op::Reduce { op, axes, keepdim } => reduce(cx, *op, axes, *keepdim, inputs),
        Op::Var { axes, keepdim, .. } => {
            let [x] = cx.exact(inputs, ["x"])?;
            cx.require_float("the input", x)?;
            let shape = reduced_shape(cx, &x.shape, axes, *keepdim)?;
            Ok(TensorType::new(x.dtype, shape))
        }
        Op::ArgReduce { axis, keepdim, .. } => arg_reduce(cx, *axis, *keepdim, inputs),
        Op::Pool(p) => pool(cx, p, inputs),
        Op::AdaptivePool { output_size, .. } => adaptive_pool(cx, output_size, inputs),
        Op::Reshape { shape } => {
            let [x] = cx.exact(inputs, ["x"])?;
            let (have, want) = (cx.numel(&x.shape)?, cx.numel(shape)?);
            ensure!(
                cx,
                have == want,
                "cannot reshape {} ({have} elements) to {} ({want} elements)",
                dims(&x.shape),
                dims(shape)
            );
            Ok(TensorType::new(x.dtype, shape.clone()))
        }
        Op::Permute { perm } => permute(cx, perm, inputs),
        Op::Expand { shape } => expand(cx, shape, inputs),
        Op::Tile { repeats } => tile(cx, repeats, inputs),
        Op::Concat { axis } => concat(cx, *axis, inputs),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => slice(cx, *axis, *start, *end, *step, inputs),
        Op::Take { axis } => take(cx, *axis, inputs),
        Op::Gather { axis } => gather(cx, *axis, inputs),
        Op::Cast { to } => {
            let [x] = cx.exact(inputs, ["x"])?;
            Ok(TensorType::new(*to, x.shape.clone()))
        }
        Op::Pad { pads, .. } => pad(cx, pads, inputs),
        Op::Triangle { .. } => {
            let [x] = cx.exact(inputs, ["x"])?;
            ensure!(
                cx,
                x.rank() >= 2,
                "input must have at least 2 dims, got shape {}",
                dims(&x.shape)
            );
            Ok(x.clone())
        }
        Op::Cumsum { axis } => {
            let [x] = cx.exact(inputs, ["x"])?;
            cx.axis(*axis, x.rank(), true)?;
            Ok(TensorType::new(sum_dtype(x.dtype), x.shape.clone()))
        }
        Op::Upsample { mode, size } => upsample(cx, *mode, size, inputs),
        Op::Fused { op, act } => {
            // The activation sees the producer's result, so its rules apply to that type.
            let produced = infer(op, inputs)?;
            infer(&Op::Unary(act.unary()), &[&produced])
        }
    }
}

/// Sums and products of bools and integers accumulate in i64, as in PyTorch.
fn sum_dtype(d: DType) -> DType {
    if d.is_float() {
        d
    } else {
        DType::I64
    }
}

fn unary(cx: Cx, u: UnaryOp, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    let dtype = match u {
        // Transcendental functions compute in floating point; PyTorch gives integer and bool
        // inputs its default float dtype.
        UnaryOp::Sigmoid
        | UnaryOp::Tanh
        | UnaryOp::Exp
        | UnaryOp::Log
        | UnaryOp::Sqrt
        | UnaryOp::Rsqrt
        | UnaryOp::Erf
        | UnaryOp::Reciprocal
        | UnaryOp::Sin
        | UnaryOp::Cos => {
            if x.dtype.is_float() {
                x.dtype
            } else {
                DType::F32
            }
        }
        // These activation kernels exist for floating-point dtypes only; PyTorch raises
        // "not implemented for 'Long'" rather than promoting.
        UnaryOp::Silu
        | UnaryOp::Hardswish
        | UnaryOp::Hardsigmoid
        | UnaryOp::Gelu { .. }
        | UnaryOp::Elu { .. }
        | UnaryOp::LeakyRelu { .. } => {
            cx.require_float("the input", x)?;
            x.dtype
        }
        UnaryOp::Relu
        | UnaryOp::Neg
        | UnaryOp::Abs
        | UnaryOp::Floor
        | UnaryOp::Ceil
        | UnaryOp::Round
        | UnaryOp::Clamp { .. } => {
            cx.reject_bool("the input", x)?;
            x.dtype
        }
        UnaryOp::Sign => x.dtype,
        UnaryOp::LogicalNot => DType::Bool,
    };
    Ok(TensorType::new(dtype, x.shape.clone()))
}

fn binary(cx: Cx, b: BinaryOp, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x, y] = cx.exact(inputs, ["a", "b"])?;
    let shape = cx.broadcast(&x.shape, &y.shape)?;
    let promoted = result_type(x, y);
    let dtype = match b {
        BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::And
        | BinaryOp::Or
        | BinaryOp::Xor => DType::Bool,
        BinaryOp::Div if !promoted.is_float() => DType::F32,
        BinaryOp::Sub => {
            ensure!(
                cx,
                x.dtype != DType::Bool && y.dtype != DType::Bool,
                "PyTorch does not subtract bool tensors (got {x} and {y}); use logical_xor or \
                 logical_not, or cast to an integer first"
            );
            promoted
        }
        BinaryOp::FloorDiv | BinaryOp::TruncDiv | BinaryOp::Rem | BinaryOp::Pow => {
            ensure!(
                cx,
                promoted != DType::Bool,
                "both inputs are bool ({x} and {y}), and PyTorch does not implement {} for \
                 bool; cast to an integer first",
                cx.op
            );
            promoted
        }
        _ => promoted,
    };
    Ok(TensorType::new(dtype, shape))
}

fn where_(cx: Cx, inputs: &[&TensorType]) -> Result<TensorType> {
    let [c, a, b] = cx.exact(inputs, ["cond", "a", "b"])?;
    ensure!(
        cx,
        c.dtype == DType::Bool,
        "the condition is {c}, but it must be bool; compare it (e.g. `!= 0`) first"
    );
    let shape = cx.broadcast(&cx.broadcast(&c.shape, &a.shape)?, &b.shape)?;
    Ok(TensorType::new(result_type(a, b), shape))
}

/// Validates `axes` (sorted, unique, in range) and returns the reduced shape.
fn reduced_shape(cx: Cx, shape: &[usize], axes: &[usize], keepdim: bool) -> Result<Vec<usize>> {
    for (i, &a) in axes.iter().enumerate() {
        cx.axis(a, shape.len(), true)?;
        ensure!(
            cx,
            i == 0 || axes[i - 1] < a,
            "axes {axes:?} must be sorted and unique"
        );
    }
    let reduced = |d: usize| axes.is_empty() || axes.contains(&d);
    Ok(if keepdim {
        (0..shape.len())
            .map(|d| if reduced(d) { 1 } else { shape[d] })
            .collect()
    } else {
        (0..shape.len())
            .filter(|&d| !reduced(d))
            .map(|d| shape[d])
            .collect()
    })
}

fn reduce(
    cx: Cx,
    op: ReduceOp,
    axes: &[usize],
    keepdim: bool,
    inputs: &[&TensorType],
) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    let shape = reduced_shape(cx, &x.shape, axes, keepdim)?;
    let dtype = match op {
        ReduceOp::Sum | ReduceOp::Prod => sum_dtype(x.dtype),
        ReduceOp::Mean => {
            cx.require_float("the input", x)?;
            x.dtype
        }
        ReduceOp::Max | ReduceOp::Min => {
            // There is no identity for max/min, so PyTorch refuses to reduce an empty extent.
            if axes.is_empty() {
                ensure!(
                    cx,
                    cx.numel(&x.shape)? > 0,
                    "cannot reduce an empty tensor of shape {} over all axes; name the axes",
                    dims(&x.shape)
                );
            } else if let Some(&a) = axes.iter().find(|&&a| x.shape.get(a) == Some(&0)) {
                return Err(cx.error(format!(
                    "cannot reduce axis {a} of shape {}: it has size 0",
                    dims(&x.shape)
                )));
            }
            x.dtype
        }
    };
    Ok(TensorType::new(dtype, shape))
}

fn arg_reduce(
    cx: Cx,
    axis: Option<usize>,
    keepdim: bool,
    inputs: &[&TensorType],
) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    cx.reject_bool("the input", x)?;
    let shape = match axis {
        None => {
            ensure!(
                cx,
                cx.numel(&x.shape)? > 0,
                "cannot take the index over an empty tensor of shape {}",
                dims(&x.shape)
            );
            if keepdim {
                vec![1; x.rank()]
            } else {
                vec![]
            }
        }
        Some(a) => {
            cx.axis(a, x.rank(), true)?;
            ensure!(
                cx,
                x.shape.get(a) != Some(&0),
                "cannot take the index along axis {a} of shape {}: it has size 0",
                dims(&x.shape)
            );
            reduced_shape(cx, &x.shape, &[a], keepdim)?
        }
    };
    Ok(TensorType::new(DType::I64, shape))
}

fn conv(cx: Cx, a: &ConvAttrs, inputs: &[&TensorType]) -> Result<TensorType> {
    let args = cx.arity(inputs, &["x", "weight"], &["bias"])?;
    let (x, w, bias) = (args[0], args[1], args.get(2).copied());
    ensure!(
        cx,
        matches!(w.rank(), 3 | 4),
        "weight must have rank 3 (1-d conv) or 4 (2-d conv), got shape {}",
        dims(&w.shape)
    );
    let sp = w.rank() - 2;
    ensure!(
        cx,
        x.rank() == sp + 2,
        "input must be [N, C, {}spatial] to match a rank-{} weight, got shape {}",
        if sp == 1 { "" } else { "2 × " },
        w.rank(),
        dims(&x.shape)
    );
    for (name, v) in [
        ("stride", &a.stride),
        ("padding", &a.padding),
        ("dilation", &a.dilation),
    ] {
        ensure!(
            cx,
            v.len() == sp,
            "{name} has {} entries but the conv has {sp} spatial dim(s)",
            v.len()
        );
    }
    if a.transposed {
        ensure!(
            cx,
            a.output_padding.len() == sp,
            "output_padding has {} entries but the conv has {sp} spatial dim(s)",
            a.output_padding.len()
        );
    } else {
        ensure!(
            cx,
            a.output_padding.iter().all(|&p| p == 0),
            "output_padding {:?} is only meaningful for a transposed conv",
            a.output_padding
        );
    }
    ensure!(cx, a.groups >= 1, "groups must be at least 1, got 0");
    ensure!(
        cx,
        a.stride.iter().all(|&s| s >= 1),
        "stride {:?} must be positive",
        a.stride
    );
    ensure!(
        cx,
        a.dilation.iter().all(|&d| d >= 1),
        "dilation {:?} must be positive",
        a.dilation
    );
    let kernel = &w.shape[2..];
    ensure!(
        cx,
        kernel.iter().all(|&k| k >= 1),
        "kernel size {} must be positive (weight shape {})",
        dims(kernel),
        dims(&w.shape)
    );
    cx.reject_bool("the input", x)?;
    cx.same_dtype("the weight", w, "the input", x)?;
    let (c, g) = (x.shape[1], a.groups);
    let out_channels = if a.transposed {
        ensure!(
            cx,
            w.shape[0] % g == 0,
            "weight dim 0 ({}) must be divisible by groups {g}",
            w.shape[0]
        );
        ensure!(
            cx,
            c == w.shape[0],
            "input has {c} channels but the transposed weight expects {} (weight shape {})",
            w.shape[0],
            dims(&w.shape)
        );
        w.shape[1].checked_mul(g)
    } else {
        ensure!(
            cx,
            w.shape[0] >= 1,
            "weight has 0 output channels (shape {})",
            dims(&w.shape)
        );
        ensure!(
            cx,
            w.shape[0] % g == 0,
            "weight dim 0 ({} output channels) must be divisible by groups {g}",
            w.shape[0]
        );
        ensure!(
            cx,
            w.shape[1].checked_mul(g) == Some(c),
            "input has {c} channels but weight expects {} × groups {g}",
            w.shape[1]
        );
        Some(w.shape[0])
    }
    .ok_or_else(|| cx.error("output channel count overflows".into()))?;
    if let Some(b) = bias {
        cx.same_dtype("the bias", b, "the input", x)?;
        cx.shape_is("the bias", b, &[out_channels])?;
    }
    let mut shape = vec![x.shape[0], out_channels];
    for (i, (&n, &k)) in x.shape[2..].iter().zip(kernel).enumerate() {
        let (n, k, s, p, d) = (
            cx.wide("input size", n)?,
            cx.wide("kernel size", k)?,
            cx.wide("stride", a.stride[i])?,
            cx.wide("padding", a.padding[i])?,
            cx.wide("dilation", a.dilation[i])?,
        );
        let span = d * (k - 1) + 1;
        let out = if a.transposed {
            let op = cx.wide("output_padding", a.output_padding[i])?;
            ensure!(
                cx,
                op < s || op < d,
                "output_padding {op} in spatial dim {i} must be smaller than the stride {s} or \
                 the dilation {d}"
            );
            let out = (n - 1) * s - 2 * p + span - 1 + op + 1;
            ensure!(
                cx,
                out >= 1,
                "spatial dim {i} of size {n} gives output size {out}, which is too small"
            );
            out
        } else {
            ensure!(
                cx,
                n + 2 * p >= span,
                "spatial dim {i}: the padded input size {} is smaller than the dilated kernel \
                 size {span}",
                n + 2 * p
            );
            (n + 2 * p - span) / s + 1
        };
        shape.push(
            usize::try_from(out)
                .map_err(|_| cx.error(format!("spatial dim {i}: output size {out} overflows")))?,
        );
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn linear(cx: Cx, inputs: &[&TensorType]) -> Result<TensorType> {
    let args = cx.arity(inputs, &["x", "weight"], &["bias"])?;
    let (x, w, bias) = (args[0], args[1], args.get(2).copied());
    ensure!(
        cx,
        x.rank() >= 1,
        "input must have at least 1 dim, got a 0-d tensor"
    );
    ensure!(
        cx,
        w.rank() == 2,
        "weight must be [M, K], got shape {}",
        dims(&w.shape)
    );
    cx.reject_bool("the input", x)?;
    cx.same_dtype("the weight", w, "the input", x)?;
    let k = x.shape[x.rank() - 1];
    ensure!(
        cx,
        w.shape[1] == k,
        "input has {k} features (shape {}) but weight expects {} (shape {})",
        dims(&x.shape),
        w.shape[1],
        dims(&w.shape)
    );
    let m = w.shape[0];
    if let Some(b) = bias {
        cx.same_dtype("the bias", b, "the input", x)?;
        cx.shape_is("the bias", b, &[m])?;
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().expect("rank checked above") = m;
    Ok(TensorType::new(x.dtype, shape))
}

fn matmul(cx: Cx, inputs: &[&TensorType]) -> Result<TensorType> {
    let [a, b] = cx.exact(inputs, ["a", "b"])?;
    ensure!(
        cx,
        a.rank() >= 1 && b.rank() >= 1,
        "both operands need at least 1 dim, got shapes {} and {}",
        dims(&a.shape),
        dims(&b.shape)
    );
    cx.reject_bool("the first operand", a)?;
    cx.same_dtype("the second operand", b, "the first", a)?;
    // A 1-d left operand is a row vector and a 1-d right operand a column vector; the dim added
    // to make them matrices is removed from the result.
    let (am, ak) = if a.rank() == 1 {
        (None, a.shape[0])
    } else {
        (Some(a.shape[a.rank() - 2]), a.shape[a.rank() - 1])
    };
    let (bk, bn) = if b.rank() == 1 {
        (b.shape[0], None)
    } else {
        (b.shape[b.rank() - 2], Some(b.shape[b.rank() - 1]))
    };
    ensure!(
        cx,
        ak == bk,
        "shapes {} and {} cannot be multiplied: inner sizes {ak} and {bk} differ",
        dims(&a.shape),
        dims(&b.shape)
    );
    let batch_a = &a.shape[..a.rank().saturating_sub(2)];
    let batch_b = &b.shape[..b.rank().saturating_sub(2)];
    let mut shape = cx.broadcast(batch_a, batch_b)?;
    shape.extend(am);
    shape.extend(bn);
    Ok(TensorType::new(a.dtype, shape))
}

fn addmm(cx: Cx, inputs: &[&TensorType]) -> Result<TensorType> {
    let [bias, a, b] = cx.exact(inputs, ["bias", "a", "b"])?;
    ensure!(
        cx,
        a.rank() == 2 && b.rank() == 2,
        "a and b must be matrices, got shapes {} and {}",
        dims(&a.shape),
        dims(&b.shape)
    );
    ensure!(
        cx,
        a.shape[1] == b.shape[0],
        "shapes {} and {} cannot be multiplied: inner sizes {} and {} differ",
        dims(&a.shape),
        dims(&b.shape),
        a.shape[1],
        b.shape[0]
    );
    cx.reject_bool("a", a)?;
    cx.same_dtype("b", b, "a", a)?;
    cx.same_dtype("the bias", bias, "a", a)?;
    let out = vec![a.shape[0], b.shape[1]];
    expand_to(cx, "the bias", &bias.shape, &out)?;
    Ok(TensorType::new(a.dtype, out))
}

/// Checks that `shape` expands to `target` (right-aligned; only size-1 dims grow, no new rank
/// beyond the target's).
fn expand_to(cx: Cx, what: &str, shape: &[usize], target: &[usize]) -> Result<()> {
    ensure!(
        cx,
        shape.len() <= target.len(),
        "{what} has shape {}, which has more dims than the target {}",
        dims(shape),
        dims(target)
    );
    let lead = target.len() - shape.len();
    for (i, &d) in shape.iter().enumerate() {
        let t = target[lead + i];
        ensure!(
            cx,
            d == t || d == 1,
            "{what} has shape {}, which does not expand to {}: size {d} at dim {i} is neither \
             {t} nor 1",
            dims(shape),
            dims(target)
        );
    }
    Ok(())
}

fn batch_norm(cx: Cx, inputs: &[&TensorType]) -> Result<TensorType> {
    let args = cx.arity(
        inputs,
        &["x", "weight", "bias", "running_mean", "running_var"],
        &[],
    )?;
    let x = args[0];
    ensure!(
        cx,
        x.rank() >= 2,
        "input must be [N, C, ...], got shape {}",
        dims(&x.shape)
    );
    cx.require_float("the input", x)?;
    let c = x.shape[1];
    for (name, p) in ["weight", "bias", "running mean", "running var"]
        .iter()
        .zip(&args[1..])
    {
        cx.shape_is(name, p, &[c])?;
        cx.norm_param(name, p, x)?;
        cx.same_dtype(name, p, "the weight", args[1])?;
    }
    Ok(x.clone())
}

fn layer_norm(cx: Cx, axis: usize, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x, w, b] = cx.exact(inputs, ["x", "weight", "bias"])?;
    ensure!(
        cx,
        axis < x.rank(),
        "axis {axis} leaves nothing to normalize in a rank-{} input",
        x.rank()
    );
    cx.require_float("the input", x)?;
    let normalized = &x.shape[axis..];
    for (name, p) in [("the weight", w), ("the bias", b)] {
        cx.shape_is(name, p, normalized)?;
        cx.norm_param(name, p, x)?;
    }
    cx.same_dtype("the bias", b, "the weight", w)?;
    Ok(x.clone())
}

fn group_norm(cx: Cx, groups: usize, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x, w, b] = cx.exact(inputs, ["x", "weight", "bias"])?;
    ensure!(
        cx,
        x.rank() >= 2,
        "input must be [N, C, ...], got shape {}",
        dims(&x.shape)
    );
    cx.require_float("the input", x)?;
    let c = x.shape[1];
    ensure!(
        cx,
        groups >= 1 && c % groups == 0,
        "input has {c} channels, which do not divide into {groups} groups"
    );
    for (name, p) in [("the weight", w), ("the bias", b)] {
        cx.shape_is(name, p, &[c])?;
        cx.norm_param(name, p, x)?;
    }
    cx.same_dtype("the bias", b, "the weight", w)?;
    Ok(x.clone())
}

fn sdpa(cx: Cx, causal: bool, inputs: &[&TensorType]) -> Result<TensorType> {
    let args = cx.arity(inputs, &["q", "k", "v"], &["mask"])?;
    let (q, k, v, mask) = (args[0], args[1], args[2], args.get(3).copied());
    ensure!(
        cx,
        q.rank() >= 2 && k.rank() >= 2 && v.rank() >= 2,
        "q, k and v need at least 2 dims, got shapes {}, {} and {}",
        dims(&q.shape),
        dims(&k.shape),
        dims(&v.shape)
    );
    cx.require_float("q", q)?;
    cx.same_dtype("k", k, "q", q)?;
    cx.same_dtype("v", v, "q", q)?;
    let (qr, kr, vr) = (q.rank(), k.rank(), v.rank());
    let (l, e) = (q.shape[qr - 2], q.shape[qr - 1]);
    let (s, ke) = (k.shape[kr - 2], k.shape[kr - 1]);
    let (vs, ev) = (v.shape[vr - 2], v.shape[vr - 1]);
    ensure!(
        cx,
        ke == e,
        "q has embedding size {e} but k has {ke} (shapes {} and {})",
        dims(&q.shape),
        dims(&k.shape)
    );
    ensure!(
        cx,
        vs == s,
        "k has {s} positions but v has {vs} (shapes {} and {})",
        dims(&k.shape),
        dims(&v.shape)
    );
    // The math reference computes softmax(q @ kᵀ) @ v, so batch dims broadcast across all three.
    let batch = cx.broadcast(
        &cx.broadcast(&q.shape[..qr - 2], &k.shape[..kr - 2])?,
        &v.shape[..vr - 2],
    )?;
    if let Some(m) = mask {
        ensure!(
            cx,
            !causal,
            "an explicit mask cannot be combined with causal masking"
        );
        ensure!(
            cx,
            m.dtype == DType::Bool || m.dtype == DType::F32 || m.dtype == q.dtype,
            "the mask is {m}, but it must be bool, f32 or q's dtype {}",
            q.dtype
        );
        let mut scores = batch.clone();
        scores.extend([l, s]);
        expand_to(cx, "the mask", &m.shape, &scores)?;
    }
    let mut shape = batch;
    shape.extend([l, ev]);
    Ok(TensorType::new(q.dtype, shape))
}

/// Splits a pooling input into its leading dims (`[N, C]` or `[C]`) and checks the rank.
fn pooled_input(cx: Cx, x: &TensorType, sp: usize) -> Result<(&[usize], &[usize])> {
    ensure!(
        cx,
        x.rank() == sp + 1 || x.rank() == sp + 2,
        "input must be [N, C, *spatial] or [C, *spatial] with {sp} spatial dim(s), got shape {}",
        dims(&x.shape)
    );
    Ok(x.shape.split_at(x.rank() - sp))
}

fn pool(cx: Cx, p: &PoolAttrs, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    let sp = p.kernel.len();
    ensure!(
        cx,
        matches!(sp, 1 | 2),
        "kernel {:?} must have 1 or 2 entries",
        p.kernel
    );
    for (name, v) in [
        ("stride", &p.stride),
        ("padding", &p.padding),
        ("dilation", &p.dilation),
    ] {
        ensure!(
            cx,
            v.len() == sp,
            "{name} {v:?} must have {sp} entries, like the kernel {:?}",
            p.kernel
        );
    }
    let (lead, spatial) = pooled_input(cx, x, sp)?;
    match p.kind {
        PoolKind::Max => cx.reject_bool("the input", x)?,
        PoolKind::Avg => {
            ensure!(
                cx,
                x.dtype.is_float() || x.dtype == DType::I64,
                "the input is {x}, but PyTorch implements avg_pool for floating-point and i64 \
                 only; cast it first"
            );
            ensure!(
                cx,
                p.dilation.iter().all(|&d| d == 1),
                "avg pooling has no dilation, got {:?}",
                p.dilation
            );
            ensure!(
                cx,
                p.divisor_override != Some(0),
                "divisor_override must not be zero"
            );
        }
    }
    // The batch dim may be empty; channels and spatial dims may not.
    let non_batch = if lead.len() == 2 {
        &x.shape[1..]
    } else {
        &x.shape[..]
    };
    ensure!(
        cx,
        !non_batch.contains(&0),
        "input shape {} has an empty non-batch dim",
        dims(&x.shape)
    );
    let mut shape = lead.to_vec();
    for (i, (&n, &k)) in spatial.iter().zip(&p.kernel).enumerate() {
        let (n, k, s, pad, d) = (
            cx.wide("input size", n)?,
            cx.wide("kernel size", k)?,
            cx.wide("stride", p.stride[i])?,
            cx.wide("padding", p.padding[i])?,
            cx.wide("dilation", p.dilation[i])?,
        );
        ensure!(
            cx,
            k >= 1 && s >= 1 && d >= 1,
            "kernel {:?}, stride {:?} and dilation {:?} must be positive",
            p.kernel,
            p.stride,
            p.dilation
        );
        ensure!(
            cx,
            pad <= k / 2,
            "padding {pad} in spatial dim {i} is more than half the kernel size {k}"
        );
        let numerator = n + 2 * pad - d * (k - 1) - 1 + if p.ceil_mode { s - 1 } else { 0 };
        let mut out = numerator.div_euclid(s) + 1;
        // With ceil_mode the last window must still start inside the input or left padding.
        if p.ceil_mode && (out - 1) * s >= n + pad {
            out -= 1;
        }
        ensure!(
            cx,
            out >= 1,
            "spatial dim {i} of size {n} gives output size {out}, which is too small for \
             kernel {k} (dilation {d}, padding {pad}, stride {s})"
        );
        shape.push(
            usize::try_from(out)
                .map_err(|_| cx.error(format!("spatial dim {i}: output size {out} overflows")))?,
        );
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn adaptive_pool(cx: Cx, output_size: &[usize], inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    let sp = output_size.len();
    ensure!(
        cx,
        (1..=3).contains(&sp),
        "output_size {output_size:?} must have 1 to 3 entries"
    );
    let (lead, spatial) = pooled_input(cx, x, sp)?;
    cx.require_float("the input", x)?;
    ensure!(
        cx,
        !spatial.contains(&0),
        "input shape {} has an empty spatial dim",
        dims(&x.shape)
    );
    let mut shape = lead.to_vec();
    shape.extend_from_slice(output_size);
    Ok(TensorType::new(x.dtype, shape))
}

fn permute(cx: Cx, perm: &[usize], inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    ensure!(
        cx,
        perm.len() == x.rank(),
        "perm {perm:?} has {} entries but the input has rank {}",
        perm.len(),
        x.rank()
    );
    let mut seen = vec![false; perm.len()];
    for &p in perm {
        ensure!(
            cx,
            p < perm.len() && !seen[p],
            "perm {perm:?} is not a permutation of 0..{}",
            perm.len()
        );
        seen[p] = true;
    }
    let shape = perm.iter().map(|&p| x.shape[p]).collect();
    Ok(TensorType::new(x.dtype, shape))
}

fn expand(cx: Cx, shape: &[usize], inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    expand_to(cx, "the input", &x.shape, shape)?;
    cx.numel(shape)?;
    Ok(TensorType::new(x.dtype, shape.to_vec()))
}

fn tile(cx: Cx, repeats: &[usize], inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    ensure!(
        cx,
        repeats.len() >= x.rank(),
        "repeats {repeats:?} has fewer entries than the input's rank {}",
        x.rank()
    );
    let lead = repeats.len() - x.rank();
    let mut shape = Vec::with_capacity(repeats.len());
    for (i, &r) in repeats.iter().enumerate() {
        let d = if i < lead { 1 } else { x.shape[i - lead] };
        shape.push(
            d.checked_mul(r)
                .ok_or_else(|| cx.error(format!("dim {i}: {d} × {r} repeats overflows")))?,
        );
    }
    cx.numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn concat(cx: Cx, axis: usize, inputs: &[&TensorType]) -> Result<TensorType> {
    ensure!(cx, !inputs.is_empty(), "needs at least one input");
    let first = inputs[0];
    for (i, t) in inputs.iter().enumerate() {
        ensure!(
            cx,
            t.rank() >= 1,
            "input {i} is 0-d, and 0-d tensors cannot be concatenated"
        );
        ensure!(
            cx,
            t.rank() == first.rank(),
            "input {i} has shape {} but input 0 has shape {}; ranks must match",
            dims(&t.shape),
            dims(&first.shape)
        );
    }
    cx.axis(axis, first.rank(), false)?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for (i, t) in inputs.iter().enumerate() {
        for d in 0..shape.len() {
            ensure!(
                cx,
                d == axis || t.shape[d] == first.shape[d],
                "input {i} has shape {} but input 0 has shape {}; they may differ only on \
                 axis {axis}",
                dims(&t.shape),
                dims(&first.shape)
            );
        }
        shape[axis] = shape[axis]
            .checked_add(t.shape[axis])
            .ok_or_else(|| cx.error("concatenated size overflows".into()))?;
    }
    let dtype = result_type_of(inputs).expect("inputs checked non-empty");
    Ok(TensorType::new(dtype, shape))
}

fn slice(
    cx: Cx,
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
    inputs: &[&TensorType],
) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    cx.axis(axis, x.rank(), false)?;
    ensure!(cx, step >= 1, "step must be at least 1, got 0");
    let dim = x.shape[axis];
    ensure!(
        cx,
        start <= end && end <= dim,
        "range {start}..{end} is not within axis {axis} of size {dim}"
    );
    let mut shape = x.shape.clone();
    shape[axis] = (end - start).div_ceil(step);
    Ok(TensorType::new(x.dtype, shape))
}

fn index_dtype(cx: Cx, idx: &TensorType) -> Result<()> {
    ensure!(
        cx,
        matches!(idx.dtype, DType::I64 | DType::I32),
        "the index is {idx}, but indices must be i64 or i32"
    );
    Ok(())
}

fn take(cx: Cx, axis: usize, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x, idx] = cx.exact(inputs, ["x", "indices"])?;
    cx.axis(axis, x.rank(), false)?;
    index_dtype(cx, idx)?;
    let mut shape = x.shape[..axis].to_vec();
    shape.extend_from_slice(&idx.shape);
    shape.extend_from_slice(&x.shape[axis + 1..]);
    cx.numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn gather(cx: Cx, axis: usize, inputs: &[&TensorType]) -> Result<TensorType> {
    let [x, idx] = cx.exact(inputs, ["x", "index"])?;
    ensure!(
        cx,
        idx.rank() == x.rank(),
        "the index has rank {} but the input has rank {}; they must match",
        idx.rank(),
        x.rank()
    );
    cx.axis(axis, x.rank(), true)?;
    index_dtype(cx, idx)?;
    for d in (0..x.rank()).filter(|&d| d != axis) {
        ensure!(
            cx,
            idx.shape[d] <= x.shape[d],
            "the index shape {} is larger than the input shape {} at dim {d}",
            dims(&idx.shape),
            dims(&x.shape)
        );
    }
    Ok(TensorType::new(x.dtype, idx.shape.clone()))
}

fn pad(cx: Cx, pads: &[(i64, i64)], inputs: &[&TensorType]) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    ensure!(
        cx,
        pads.len() == x.rank(),
        "pads has {} entries but the input has rank {}",
        pads.len(),
        x.rank()
    );
    let mut shape = Vec::with_capacity(pads.len());
    for (i, (&d, &(before, after))) in x.shape.iter().zip(pads).enumerate() {
        // Three terms of at most 2^64 cannot overflow i128.
        let out = d as i128 + i128::from(before) + i128::from(after);
        ensure!(
            cx,
            out >= 0,
            "dim {i} of size {d} padded by ({before}, {after}) would have size {out}"
        );
        shape.push(
            usize::try_from(out)
                .map_err(|_| cx.error(format!("dim {i}: padded size {out} overflows")))?,
        );
    }
    cx.numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

fn upsample(
    cx: Cx,
    mode: UpsampleMode,
    size: &[usize],
    inputs: &[&TensorType],
) -> Result<TensorType> {
    let [x] = cx.exact(inputs, ["x"])?;
    let sp = size.len();
    match mode {
        UpsampleMode::Nearest => ensure!(
            cx,
            (1..=3).contains(&sp),
            "size {size:?} must have 1 to 3 entries"
        ),
        UpsampleMode::Bilinear { .. } => ensure!(
            cx,
            sp == 2,
            "bilinear resampling needs 2 spatial sizes, got {size:?}"
        ),
    }
    ensure!(
        cx,
        x.rank() == sp + 2,
        "input must be [N, C, *spatial] with {sp} spatial dim(s), got shape {}",
        dims(&x.shape)
    );
    ensure!(
        cx,
        x.dtype.is_float() || x.dtype == DType::U8,
        "the input is {x}, but PyTorch resamples floating-point and u8 tensors only; cast it \
         first"
    );
    ensure!(
        cx,
        !x.shape[1..].contains(&0) && !size.contains(&0),
        "input sizes {} and output sizes {size:?} must be non-zero (apart from the batch)",
        dims(&x.shape)
    );
    let mut shape = x.shape[..2].to_vec();
    shape.extend_from_slice(size);
    cx.numel(&shape)?;
    Ok(TensorType::new(x.dtype, shape))
}

#[cfg(test)]
mod tests {
    //! Expected types and failures were checked against PyTorch 2.13 on CPU
    //! (`torch.result_type`, the functional ops, and their error messages).

    use super::*;
    use crate::ir::{ArgOp, PoolKind};
    use DType::*;

    fn t(d: DType, s: &[usize]) -> TensorType {
        TensorType::new(d, s.to_vec())
    }

    fn f(s: &[usize]) -> TensorType {
        t(F32, s)
    }

    fn conv(stride: &[usize], padding: &[usize], dilation: &[usize], groups: usize) -> Op {
        Op::Conv(ConvAttrs {
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            groups,
            transposed: false,
            output_padding: vec![0; stride.len()],
        })
    }

    fn conv_t(
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        groups: usize,
        output_padding: &[usize],
    ) -> Op {
        Op::Conv(ConvAttrs {
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            groups,
            transposed: true,
            output_padding: output_padding.to_vec(),
        })
    }

    fn pool(
        kind: PoolKind,
        kernel: &[usize],
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        ceil_mode: bool,
    ) -> Op {
        Op::Pool(PoolAttrs {
            kind,
            kernel: kernel.to_vec(),
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            ceil_mode,
            count_include_pad: true,
            divisor_override: None,
        })
    }

    fn max_pool(k: &[usize], s: &[usize], p: &[usize], d: &[usize], ceil: bool) -> Op {
        pool(PoolKind::Max, k, s, p, d, ceil)
    }

    fn avg_pool(k: &[usize], s: &[usize], p: &[usize], ceil: bool) -> Op {
        pool(PoolKind::Avg, k, s, p, &vec![1; k.len()], ceil)
    }

    fn un(u: UnaryOp) -> Op {
        Op::Unary(u)
    }

    fn bin(b: BinaryOp) -> Op {
        Op::Binary(b)
    }

    fn reduce(op: ReduceOp, axes: &[usize], keepdim: bool) -> Op {
        Op::Reduce {
            op,
            axes: axes.to_vec(),
            keepdim,
        }
    }

    fn check_ok(cases: &[(Op, Vec<TensorType>, TensorType)]) {
        for (op, ins, want) in cases {
            let refs: Vec<&TensorType> = ins.iter().collect();
            match infer(op, &refs) {
                Ok(got) => assert_eq!(&got, want, "{op:?} on {ins:?}"),
                Err(e) => panic!("{op:?} on {ins:?} should give {want} but failed: {e}"),
            }
        }
    }

    fn check_err(cases: &[(Op, Vec<TensorType>, &str)]) {
        for (op, ins, needle) in cases {
            let refs: Vec<&TensorType> = ins.iter().collect();
            match infer(op, &refs) {
                Ok(got) => panic!("{op:?} on {ins:?} should fail ({needle}) but gave {got}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with(&format!("{}: ", op.name())),
                        "{msg:?} does not name the op {}",
                        op.name()
                    );
                    assert!(
                        msg.contains(needle),
                        "{op:?} on {ins:?}: message {msg:?} does not mention {needle:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn result_type_matches_torch() {
        // (a dtype, a shape, b dtype, b shape, torch.result_type(a, b))
        type Case = (
            &'static str,
            &'static [usize],
            &'static str,
            &'static [usize],
            &'static str,
        );
        let cases: &[Case] = &[
            ("i32", &[2], "i64", &[], "i32"),
            ("i32", &[2], "f64", &[], "f64"),
            ("f16", &[2], "f64", &[], "f16"),
            ("bool", &[2], "i32", &[], "i32"),
            ("bool", &[2], "f16", &[], "f16"),
            ("f16", &[2], "bf16", &[2], "f32"),
            ("f16", &[], "bf16", &[], "f32"),
            ("u8", &[2], "i8", &[2], "i16"),
            ("u8", &[], "i8", &[], "i16"),
            ("i32", &[], "f16", &[], "f16"),
            ("i64", &[0], "f64", &[], "f64"),
            ("f32", &[2], "i64", &[], "f32"),
            ("bf16", &[2], "f32", &[2], "f32"),
            ("i8", &[2], "u8", &[], "i8"),
            ("bool", &[], "bool", &[2], "bool"),
            ("i16", &[3], "i32", &[3], "i32"),
            ("u8", &[2], "i16", &[2], "i16"),
            ("f64", &[2], "f16", &[2], "f64"),
            ("u8", &[2], "i64", &[], "u8"),
            ("i64", &[], "f16", &[3], "f16"),
            ("bool", &[], "i8", &[], "i8"),
            ("u8", &[1], "bool", &[], "u8"),
            ("bf16", &[], "i64", &[4], "bf16"),
            ("i8", &[], "u8", &[2, 2], "u8"),
        ];
        for &(a, sa, b, sb, want) in cases {
            let ta = t(DType::from_name(a).unwrap(), sa);
            let tb = t(DType::from_name(b).unwrap(), sb);
            let want = DType::from_name(want).unwrap();
            assert_eq!(result_type(&ta, &tb), want, "{ta} with {tb}");
            assert_eq!(result_type(&tb, &ta), want, "{tb} with {ta}");
        }
    }

    #[test]
    fn conv_ok() {
        check_ok(&[
            (
                conv(&[2, 1], &[1, 0], &[1, 2], 2),
                vec![f(&[2, 6, 9, 11]), f(&[4, 3, 3, 2])],
                f(&[2, 4, 5, 9]),
            ),
            (
                conv(&[2], &[2], &[3], 4),
                vec![f(&[1, 4, 16]), f(&[8, 1, 5])],
                f(&[1, 8, 4]),
            ),
            (
                conv(&[1, 1], &[0, 0], &[1, 1], 1),
                vec![f(&[1, 3, 5, 5]), f(&[6, 3, 5, 5]), f(&[6])],
                f(&[1, 6, 1, 1]),
            ),
            (
                conv(&[3], &[1], &[2], 1),
                vec![f(&[1, 2, 10]), f(&[4, 2, 3])],
                f(&[1, 4, 3]),
            ),
            (
                conv(&[1, 1], &[0, 0], &[1, 1], 1),
                vec![t(I64, &[1, 2, 4, 4]), t(I64, &[3, 2, 3, 3])],
                t(I64, &[1, 3, 2, 2]),
            ),
            (
                conv(&[1, 1], &[0, 0], &[1, 1], 1),
                vec![f(&[0, 2, 4, 4]), f(&[3, 2, 3, 3])],
                f(&[0, 3, 2, 2]),
            ),
            (
                conv_t(&[2, 2], &[1, 1], &[1, 1], 2, &[1, 1]),
                vec![f(&[1, 4, 5, 5]), f(&[4, 3, 3, 3]), f(&[6])],
                f(&[1, 6, 10, 10]),
            ),
            (
                conv_t(&[3], &[2], &[2], 1, &[1]),
                vec![f(&[2, 6, 7]), f(&[6, 2, 4])],
                f(&[2, 2, 22]),
            ),
            (
                conv_t(&[1, 2], &[0, 1], &[3, 1], 1, &[2, 0]),
                vec![f(&[1, 2, 3, 4]), f(&[2, 5, 2, 3])],
                f(&[1, 5, 8, 7]),
            ),
            (
                conv_t(&[1, 1], &[0, 0], &[2, 2], 1, &[1, 1]),
                vec![f(&[1, 4, 5, 5]), f(&[4, 3, 3, 3])],
                f(&[1, 3, 10, 10]),
            ),
        ]);
    }

    #[test]
    fn conv_errors() {
        let c2 = conv(&[1, 1], &[0, 0], &[1, 1], 1);
        let mut op_pad = ConvAttrs {
            stride: vec![1, 1],
            padding: vec![0, 0],
            dilation: vec![1, 1],
            groups: 1,
            transposed: false,
            output_padding: vec![1, 0],
        };
        let bad_output_padding = Op::Conv(op_pad.clone());
        op_pad.output_padding = vec![];
        op_pad.stride = vec![1 << 63, 1];
        let huge_stride = Op::Conv(op_pad);
        let x = f(&[1, 2, 4, 4]);
        let w = f(&[3, 2, 3, 3]);
        check_err(&[
            (
                c2.clone(),
                vec![f(&[1, 16, 4, 4]), f(&[3, 8, 3, 3])],
                "input has 16 channels but weight expects 8 × groups 1",
            ),
            (
                conv(&[1, 1], &[0, 0], &[1, 1], 2),
                vec![f(&[1, 4, 4, 4]), f(&[3, 2, 3, 3])],
                "divisible by groups 2",
            ),
            (
                c2.clone(),
                vec![x.clone(), f(&[3, 2, 5, 5])],
                "padded input size 4 is smaller than the dilated kernel size 5",
            ),
            (
                c2.clone(),
                vec![f(&[1, 2, 0, 4]), f(&[3, 2, 1, 1])],
                "padded input size 0",
            ),
            (
                c2.clone(),
                vec![x.clone(), w.clone(), f(&[4])],
                "bias has shape [4] but must be [3]",
            ),
            (
                c2.clone(),
                vec![x.clone(), w.clone(), t(F64, &[3])],
                "same dtype",
            ),
            (
                c2.clone(),
                vec![x.clone(), t(F64, &[3, 2, 3, 3])],
                "the weight is f64[3,2,3,3] but the input is f32[1,2,4,4]",
            ),
            (
                c2.clone(),
                vec![t(Bool, &[1, 2, 4, 4]), t(Bool, &[3, 2, 3, 3])],
                "bool",
            ),
            (c2.clone(), vec![x.clone(), f(&[3, 2, 0, 3])], "kernel size"),
            (
                c2.clone(),
                vec![x.clone(), f(&[0, 2, 3, 3])],
                "0 output channels",
            ),
            (
                conv_t(&[2, 2], &[1, 1], &[1, 1], 1, &[2, 2]),
                vec![f(&[1, 4, 5, 5]), f(&[4, 3, 3, 3])],
                "output_padding 2",
            ),
            (
                conv_t(&[1, 1], &[1, 1], &[1, 1], 1, &[0, 0]),
                vec![f(&[1, 4, 1, 1]), f(&[4, 3, 1, 1])],
                "output size -1",
            ),
            (
                conv_t(&[1, 1], &[0, 0], &[1, 1], 2, &[0, 0]),
                vec![f(&[1, 3, 5, 5]), f(&[3, 3, 3, 3])],
                "divisible by groups 2",
            ),
            (
                conv_t(&[1, 1], &[0, 0], &[1, 1], 1, &[0, 0]),
                vec![f(&[1, 3, 5, 5]), f(&[4, 3, 3, 3])],
                "input has 3 channels but the transposed weight expects 4",
            ),
            (
                conv(&[0, 1], &[0, 0], &[1, 1], 1),
                vec![x.clone(), w.clone()],
                "stride [0, 1] must be positive",
            ),
            (
                conv(&[1, 1], &[0, 0], &[0, 1], 1),
                vec![x.clone(), w.clone()],
                "dilation [0, 1] must be positive",
            ),
            (
                conv(&[1, 1], &[0, 0], &[1, 1], 0),
                vec![x.clone(), w.clone()],
                "groups must be at least 1",
            ),
            (
                c2.clone(),
                vec![f(&[1, 2, 4, 4, 4]), f(&[3, 2, 3, 3, 3])],
                "weight must have rank 3",
            ),
            (
                c2.clone(),
                vec![f(&[2, 4, 4]), w.clone()],
                "input must be [N, C, 2 × spatial]",
            ),
            (
                conv(&[1], &[0, 0], &[1, 1], 1),
                vec![x.clone(), w.clone()],
                "stride has 1 entries but the conv has 2 spatial dim(s)",
            ),
            (c2.clone(), vec![x.clone()], "takes 2 to 3 input(s)"),
            (
                bad_output_padding,
                vec![x.clone(), w.clone()],
                "only meaningful",
            ),
            (huge_stride, vec![x, w], "too large"),
        ]);
    }

    #[test]
    fn linear_matmul_addmm() {
        let addmm = Op::Addmm {
            alpha: 1.0,
            beta: 1.0,
        };
        check_ok(&[
            (
                Op::Linear,
                vec![f(&[2, 3, 5]), f(&[4, 5]), f(&[4])],
                f(&[2, 3, 4]),
            ),
            (Op::Linear, vec![f(&[5]), f(&[4, 5])], f(&[4])),
            (
                Op::Linear,
                vec![t(I64, &[2, 3]), t(I64, &[4, 3])],
                t(I64, &[2, 4]),
            ),
            (Op::MatMul, vec![f(&[3]), f(&[3])], f(&[])),
            (Op::MatMul, vec![f(&[3]), f(&[5, 3, 4])], f(&[5, 4])),
            (Op::MatMul, vec![f(&[5, 2, 3]), f(&[3])], f(&[5, 2])),
            (
                Op::MatMul,
                vec![f(&[2, 1, 4, 3]), f(&[5, 3, 6])],
                f(&[2, 5, 4, 6]),
            ),
            (Op::MatMul, vec![f(&[2, 3]), f(&[3, 4])], f(&[2, 4])),
            (Op::MatMul, vec![f(&[3]), f(&[3, 4])], f(&[4])),
            (Op::MatMul, vec![f(&[2, 3]), f(&[3])], f(&[2])),
            (
                Op::MatMul,
                vec![t(I64, &[2, 3]), t(I64, &[3, 4])],
                t(I64, &[2, 4]),
            ),
            (
                addmm.clone(),
                vec![f(&[4]), f(&[2, 3]), f(&[3, 4])],
                f(&[2, 4]),
            ),
            (
                addmm.clone(),
                vec![f(&[2, 1]), f(&[2, 3]), f(&[3, 4])],
                f(&[2, 4]),
            ),
            (
                addmm.clone(),
                vec![f(&[]), f(&[2, 3]), f(&[3, 4])],
                f(&[2, 4]),
            ),
        ]);
        check_err(&[
            (
                Op::Linear,
                vec![f(&[2, 3]), f(&[4, 5])],
                "input has 3 features",
            ),
            (Op::Linear, vec![f(&[]), f(&[4, 5])], "0-d"),
            (Op::Linear, vec![f(&[5]), f(&[5])], "weight must be [M, K]"),
            (
                Op::Linear,
                vec![f(&[2, 5]), f(&[4, 5]), f(&[1])],
                "bias has shape [1] but must be [4]",
            ),
            (Op::Linear, vec![f(&[2, 5]), t(F64, &[4, 5])], "same dtype"),
            (Op::Linear, vec![t(Bool, &[2, 5]), t(Bool, &[4, 5])], "bool"),
            (
                Op::MatMul,
                vec![f(&[2, 3]), f(&[4, 5])],
                "inner sizes 3 and 4 differ",
            ),
            (Op::MatMul, vec![f(&[]), f(&[3])], "at least 1 dim"),
            (
                Op::MatMul,
                vec![f(&[2, 4, 3]), f(&[3, 3, 5])],
                "do not broadcast",
            ),
            (Op::MatMul, vec![f(&[2, 3]), t(F64, &[3, 4])], "same dtype"),
            (Op::MatMul, vec![t(Bool, &[2, 3]), t(Bool, &[3, 4])], "bool"),
            (Op::MatMul, vec![f(&[2, 3])], "takes 2 input(s)"),
            (
                addmm.clone(),
                vec![f(&[3, 4]), f(&[2, 3]), f(&[3, 4])],
                "does not expand to [2, 4]",
            ),
            (
                addmm.clone(),
                vec![t(F64, &[4]), f(&[2, 3]), f(&[3, 4])],
                "same dtype",
            ),
            (
                addmm.clone(),
                vec![f(&[4]), f(&[2, 3]), f(&[2, 4])],
                "inner sizes 3 and 2 differ",
            ),
            (
                addmm,
                vec![f(&[4]), f(&[1, 2, 3]), f(&[3, 4])],
                "must be matrices",
            ),
        ]);
    }

    #[test]
    fn norms() {
        let bn = Op::BatchNorm { eps: 1e-5 };
        let ln = Op::LayerNorm { axis: 1, eps: 1e-5 };
        let gn = |groups| Op::GroupNorm { groups, eps: 1e-5 };
        let p3 = || vec![f(&[3]), f(&[3]), f(&[3]), f(&[3])];
        let with = |x: TensorType, ps: Vec<TensorType>| {
            let mut v = vec![x];
            v.extend(ps);
            v
        };
        check_ok(&[
            (bn.clone(), with(f(&[2, 3]), p3()), f(&[2, 3])),
            (bn.clone(), with(f(&[2, 3, 4, 5]), p3()), f(&[2, 3, 4, 5])),
            (bn.clone(), with(t(F16, &[2, 3]), p3()), t(F16, &[2, 3])),
            (
                bn.clone(),
                with(t(F16, &[2, 3]), vec![t(F16, &[3]); 4]),
                t(F16, &[2, 3]),
            ),
            (
                ln.clone(),
                vec![f(&[2, 3, 4]), f(&[3, 4]), f(&[3, 4])],
                f(&[2, 3, 4]),
            ),
            (
                ln.clone(),
                vec![t(BF16, &[2, 3]), f(&[3]), f(&[3])],
                t(BF16, &[2, 3]),
            ),
            (gn(3), vec![f(&[2, 6, 5]), f(&[6]), f(&[6])], f(&[2, 6, 5])),
            (gn(1), vec![f(&[2, 0]), f(&[0]), f(&[0])], f(&[2, 0])),
        ]);
        check_err(&[
            (
                bn.clone(),
                with(f(&[2, 3]), vec![f(&[4]), f(&[3]), f(&[3]), f(&[3])]),
                "weight has shape [4] but must be [3]",
            ),
            (
                bn.clone(),
                with(f(&[2, 3]), vec![f(&[3]), f(&[3]), f(&[3]), f(&[2])]),
                "running var has shape [2] but must be [3]",
            ),
            (
                bn.clone(),
                with(f(&[2, 3]), vec![t(F64, &[3]); 4]),
                "parameters must match the input's dtype",
            ),
            (
                bn.clone(),
                with(t(BF16, &[2, 3]), vec![t(F16, &[3]); 4]),
                "parameters must match the input's dtype",
            ),
            (
                bn.clone(),
                with(t(I64, &[2, 3]), p3()),
                "floating-point dtypes only",
            ),
            (bn.clone(), with(f(&[3]), p3()), "input must be [N, C, ...]"),
            (
                bn,
                vec![f(&[2, 3]), f(&[3]), f(&[3]), f(&[3])],
                "takes 5 input(s)",
            ),
            (
                Op::LayerNorm { axis: 3, eps: 1e-5 },
                vec![f(&[2, 3, 4]), f(&[]), f(&[])],
                "axis 3 leaves nothing to normalize",
            ),
            (
                ln.clone(),
                vec![f(&[2, 3, 4]), f(&[4]), f(&[4])],
                "weight has shape [4] but must be [3, 4]",
            ),
            (
                ln.clone(),
                vec![f(&[2, 3]), t(F16, &[3]), t(F16, &[3])],
                "parameters must match",
            ),
            (
                ln.clone(),
                vec![t(I64, &[2, 3]), t(I64, &[3]), t(I64, &[3])],
                "floating-point",
            ),
            (ln, vec![f(&[2, 3]), f(&[3])], "takes 3 input(s)"),
            (
                gn(4),
                vec![f(&[2, 6, 5]), f(&[6]), f(&[6])],
                "6 channels, which do not divide into 4 groups",
            ),
            (
                gn(0),
                vec![f(&[2, 6, 5]), f(&[6]), f(&[6])],
                "do not divide into 0 groups",
            ),
            (
                gn(3),
                vec![f(&[2, 6, 5]), f(&[3]), f(&[6])],
                "weight has shape [3] but must be [6]",
            ),
            (
                gn(1),
                vec![f(&[6]), f(&[6]), f(&[6])],
                "input must be [N, C",
            ),
        ]);
    }

    #[test]
    fn sdpa_cases() {
        let op = Op::Sdpa {
            causal: false,
            scale: None,
        };
        let causal = Op::Sdpa {
            causal: true,
            scale: Some(0.5),
        };
        let qkv = || vec![f(&[2, 3, 4, 8]), f(&[2, 3, 5, 8]), f(&[2, 3, 5, 6])];
        let masked = |m: TensorType| {
            let mut v = qkv();
            v.push(m);
            v
        };
        let h = |s: &[usize]| t(F16, s);
        check_ok(&[
            (op.clone(), qkv(), f(&[2, 3, 4, 6])),
            (causal.clone(), qkv(), f(&[2, 3, 4, 6])),
            (
                op.clone(),
                vec![f(&[4, 8]), f(&[5, 8]), f(&[5, 6])],
                f(&[4, 6]),
            ),
            (
                op.clone(),
                vec![f(&[2, 3, 4, 8]), f(&[1, 3, 5, 8]), f(&[1, 3, 5, 6])],
                f(&[2, 3, 4, 6]),
            ),
            (
                op.clone(),
                vec![f(&[2, 3, 4, 8]), f(&[3, 5, 8]), f(&[3, 5, 6])],
                f(&[2, 3, 4, 6]),
            ),
            (
                op.clone(),
                vec![f(&[2, 4, 8]), f(&[1, 5, 8]), f(&[3, 1, 5, 6])],
                f(&[3, 2, 4, 6]),
            ),
            (op.clone(), masked(t(Bool, &[4, 5])), f(&[2, 3, 4, 6])),
            (op.clone(), masked(f(&[2, 1, 4, 5])), f(&[2, 3, 4, 6])),
            (
                op.clone(),
                vec![h(&[2, 4, 8]), h(&[2, 5, 8]), h(&[2, 5, 6]), f(&[4, 5])],
                h(&[2, 4, 6]),
            ),
        ]);
        check_err(&[
            (
                op.clone(),
                vec![f(&[8]), f(&[8]), f(&[8])],
                "at least 2 dims",
            ),
            (
                op.clone(),
                vec![f(&[2, 3, 4, 8]), f(&[2, 3, 5, 7]), f(&[2, 3, 5, 6])],
                "q has embedding size 8 but k has 7",
            ),
            (
                op.clone(),
                vec![f(&[2, 3, 4, 8]), f(&[2, 3, 5, 8]), f(&[2, 3, 6, 6])],
                "k has 5 positions but v has 6",
            ),
            (
                op.clone(),
                masked(t(F64, &[4, 5])),
                "must be bool, f32 or q's dtype",
            ),
            (
                op.clone(),
                masked(t(I64, &[4, 5])),
                "must be bool, f32 or q's dtype",
            ),
            (
                op.clone(),
                vec![f(&[2, 4, 8]), f(&[2, 5, 8]), f(&[2, 5, 6]), h(&[4, 5])],
                "must be bool, f32 or q's dtype",
            ),
            (
                op.clone(),
                masked(f(&[4, 6])),
                "does not expand to [2, 3, 4, 5]",
            ),
            (op.clone(), masked(f(&[7, 2, 3, 4, 5])), "more dims"),
            (
                op.clone(),
                vec![f(&[2, 3, 4, 8]), t(F64, &[2, 3, 5, 8]), f(&[2, 3, 5, 6])],
                "same dtype",
            ),
            (
                op.clone(),
                vec![t(I64, &[4, 8]), t(I64, &[5, 8]), t(I64, &[5, 6])],
                "floating-point",
            ),
            (
                op,
                vec![f(&[2, 4, 8]), f(&[3, 5, 8]), f(&[3, 5, 6])],
                "do not broadcast",
            ),
            (causal, masked(f(&[4, 5])), "cannot be combined with causal"),
        ]);
    }

    #[test]
    fn unary_dtypes() {
        use UnaryOp::*;
        let s = [2, 3];
        let ok = |u: UnaryOp, from: DType, to: DType| (un(u), vec![t(from, &s)], t(to, &s));
        check_ok(&[
            ok(Sigmoid, I64, F32),
            ok(Sigmoid, Bool, F32),
            ok(Tanh, I32, F32),
            ok(Exp, F16, F16),
            ok(Log, U8, F32),
            ok(Sqrt, F64, F64),
            ok(Rsqrt, I64, F32),
            ok(Erf, Bool, F32),
            ok(Reciprocal, I64, F32),
            ok(Sin, BF16, BF16),
            ok(Cos, I8, F32),
            ok(Relu, I64, I64),
            ok(Relu, U8, U8),
            ok(Neg, I32, I32),
            ok(Abs, F32, F32),
            ok(Floor, I64, I64),
            ok(Ceil, F16, F16),
            ok(Round, I64, I64),
            ok(Sign, Bool, Bool),
            ok(Sign, I64, I64),
            ok(
                Clamp {
                    min: Some(0.0),
                    max: None,
                },
                I64,
                I64,
            ),
            ok(LogicalNot, F32, Bool),
            ok(LogicalNot, I64, Bool),
            ok(Gelu { tanh: true }, F32, F32),
            ok(Silu, BF16, BF16),
            ok(Hardswish, F16, F16),
            ok(Hardsigmoid, F32, F32),
            ok(Elu { alpha: 1.0 }, F64, F64),
            ok(LeakyRelu { slope: 0.1 }, F32, F32),
        ]);
        let bad =
            |u: UnaryOp, from: DType, needle: &'static str| (un(u), vec![t(from, &s)], needle);
        check_err(&[
            bad(Relu, Bool, "does not implement relu for bool"),
            bad(Neg, Bool, "does not implement neg for bool"),
            bad(Abs, Bool, "bool"),
            bad(Floor, Bool, "bool"),
            bad(Round, Bool, "bool"),
            bad(
                Clamp {
                    min: None,
                    max: Some(1.0),
                },
                Bool,
                "bool",
            ),
            bad(
                Gelu { tanh: false },
                I64,
                "implements gelu for floating-point",
            ),
            bad(Silu, Bool, "floating-point dtypes only"),
            bad(Hardswish, I64, "floating-point"),
            bad(Hardsigmoid, I32, "floating-point"),
            bad(Elu { alpha: 1.0 }, I64, "floating-point"),
            bad(LeakyRelu { slope: 0.1 }, I64, "floating-point"),
        ]);
        check_err(&[(un(Relu), vec![f(&[1]), f(&[1])], "takes 1 input(s)")]);
    }

    #[test]
    fn binary_types() {
        use BinaryOp::*;
        check_ok(&[
            (bin(Add), vec![f(&[3, 1]), f(&[4])], f(&[3, 4])),
            (bin(Add), vec![f(&[3, 1]), f(&[0])], f(&[3, 0])),
            (bin(Add), vec![f(&[1]), f(&[0])], f(&[0])),
            (bin(Add), vec![t(Bool, &[2]), t(Bool, &[2])], t(Bool, &[2])),
            (bin(Mul), vec![t(Bool, &[2]), t(I64, &[2])], t(I64, &[2])),
            (bin(Sub), vec![t(I64, &[2]), t(I32, &[])], t(I64, &[2])),
            (bin(Div), vec![t(I64, &[2]), t(I64, &[2])], f(&[2])),
            (bin(Div), vec![t(Bool, &[2]), t(Bool, &[2])], f(&[2])),
            (bin(Div), vec![t(I32, &[1]), t(I32, &[1])], f(&[1])),
            (bin(Div), vec![t(F16, &[1]), t(I64, &[1])], t(F16, &[1])),
            (bin(Div), vec![t(I64, &[1]), t(F64, &[])], t(F64, &[1])),
            (bin(Pow), vec![t(I32, &[1]), t(I64, &[])], t(I32, &[1])),
            (bin(Pow), vec![t(I64, &[1]), f(&[])], f(&[1])),
            (bin(Pow), vec![t(Bool, &[2]), t(I64, &[2])], t(I64, &[2])),
            (
                bin(FloorDiv),
                vec![t(I64, &[2]), t(I64, &[2])],
                t(I64, &[2]),
            ),
            (bin(FloorDiv), vec![f(&[2]), t(I64, &[2])], f(&[2])),
            (
                bin(TruncDiv),
                vec![t(Bool, &[2]), t(I64, &[2])],
                t(I64, &[2]),
            ),
            (bin(Rem), vec![t(Bool, &[2]), t(I64, &[2])], t(I64, &[2])),
            (
                bin(Maximum),
                vec![t(Bool, &[2]), t(Bool, &[2])],
                t(Bool, &[2]),
            ),
            (bin(Minimum), vec![t(F16, &[2]), t(F64, &[])], t(F16, &[2])),
            (bin(Lt), vec![t(I64, &[1]), f(&[])], t(Bool, &[1])),
            (bin(Eq), vec![f(&[2, 1]), f(&[3])], t(Bool, &[2, 3])),
            (bin(And), vec![f(&[1]), f(&[1])], t(Bool, &[1])),
            (bin(Or), vec![t(I64, &[1]), t(Bool, &[1])], t(Bool, &[1])),
            (bin(Xor), vec![f(&[1]), f(&[2])], t(Bool, &[2])),
        ]);
        check_err(&[
            (
                bin(Sub),
                vec![t(Bool, &[2]), t(Bool, &[2])],
                "does not subtract bool tensors",
            ),
            (
                bin(Sub),
                vec![t(Bool, &[2]), t(I64, &[2])],
                "does not subtract bool tensors",
            ),
            (
                bin(FloorDiv),
                vec![t(Bool, &[2]), t(Bool, &[2])],
                "does not implement floor_div for bool",
            ),
            (bin(TruncDiv), vec![t(Bool, &[2]), t(Bool, &[])], "bool"),
            (bin(Rem), vec![t(Bool, &[2]), t(Bool, &[2])], "bool"),
            (bin(Pow), vec![t(Bool, &[2]), t(Bool, &[2])], "bool"),
            (
                bin(Add),
                vec![f(&[3, 2]), f(&[4])],
                "shapes [3, 2] and [4] do not broadcast: size 2 vs 4 at dim 1",
            ),
            (bin(Add), vec![f(&[2])], "takes 2 input(s)"),
        ]);
    }

    #[test]
    fn where_cases() {
        check_ok(&[
            (
                Op::Where,
                vec![t(Bool, &[3, 1]), f(&[2]), f(&[])],
                f(&[3, 2]),
            ),
            (
                Op::Where,
                vec![t(Bool, &[]), f(&[2]), f(&[3, 1])],
                f(&[3, 2]),
            ),
            (
                Op::Where,
                vec![t(Bool, &[]), t(I64, &[]), t(F64, &[])],
                t(F64, &[]),
            ),
            (
                Op::Where,
                vec![t(Bool, &[2]), t(I64, &[2]), t(F64, &[])],
                t(F64, &[2]),
            ),
            (
                Op::Where,
                vec![t(Bool, &[2]), t(F16, &[2]), t(F64, &[])],
                t(F16, &[2]),
            ),
            (
                Op::Where,
                vec![t(Bool, &[1]), t(Bool, &[1]), t(Bool, &[1])],
                t(Bool, &[1]),
            ),
        ]);
        check_err(&[
            (
                Op::Where,
                vec![f(&[2]), f(&[2]), f(&[2])],
                "the condition is f32[2], but it must be bool",
            ),
            (
                Op::Where,
                vec![t(U8, &[2]), f(&[2]), f(&[2])],
                "must be bool",
            ),
            (
                Op::Where,
                vec![t(Bool, &[2]), f(&[3]), f(&[2])],
                "do not broadcast",
            ),
            (Op::Where, vec![t(Bool, &[2]), f(&[2])], "takes 3 input(s)"),
        ]);
    }

    #[test]
    fn reductions() {
        use ReduceOp::*;
        let softmax = |axis| Op::Softmax { axis, log: false };
        let var = |axes: &[usize], keepdim| Op::Var {
            axes: axes.to_vec(),
            correction: 1.0,
            keepdim,
        };
        let arg = |axis, keepdim| Op::ArgReduce {
            op: ArgOp::Max,
            axis,
            keepdim,
        };
        check_ok(&[
            (softmax(1), vec![f(&[2, 3])], f(&[2, 3])),
            (softmax(0), vec![f(&[])], f(&[])),
            (softmax(0), vec![t(F16, &[3])], t(F16, &[3])),
            (
                reduce(Sum, &[1], false),
                vec![t(I32, &[2, 3])],
                t(I64, &[2]),
            ),
            (
                reduce(Sum, &[1], true),
                vec![t(I32, &[2, 3])],
                t(I64, &[2, 1]),
            ),
            (reduce(Sum, &[], false), vec![t(Bool, &[2])], t(I64, &[])),
            (reduce(Prod, &[], false), vec![t(Bool, &[2])], t(I64, &[])),
            (reduce(Sum, &[], false), vec![t(U8, &[3])], t(I64, &[])),
            (reduce(Sum, &[], false), vec![t(F16, &[2])], t(F16, &[])),
            (
                reduce(Mean, &[0, 2], true),
                vec![f(&[2, 3, 4])],
                f(&[1, 3, 1]),
            ),
            (reduce(Mean, &[0], false), vec![f(&[0, 3])], f(&[3])),
            (reduce(Max, &[], false), vec![t(Bool, &[2])], t(Bool, &[])),
            (reduce(Min, &[], false), vec![t(I32, &[3])], t(I32, &[])),
            (reduce(Max, &[1], false), vec![f(&[0, 3])], f(&[0])),
            (reduce(Max, &[], false), vec![f(&[])], f(&[])),
            (reduce(Sum, &[0], false), vec![f(&[0, 3])], f(&[3])),
            (reduce(Prod, &[0], false), vec![f(&[0, 3])], f(&[3])),
            (reduce(Sum, &[0], true), vec![f(&[])], f(&[])),
            (reduce(Max, &[], true), vec![f(&[2, 3])], f(&[1, 1])),
            (var(&[1], false), vec![f(&[2, 3])], f(&[2])),
            (var(&[], true), vec![t(F16, &[2, 3])], t(F16, &[1, 1])),
            (var(&[0], false), vec![f(&[0, 3])], f(&[3])),
            (arg(None, true), vec![f(&[2, 3])], t(I64, &[1, 1])),
            (arg(None, false), vec![f(&[2, 3])], t(I64, &[])),
            (arg(Some(1), false), vec![f(&[2, 3])], t(I64, &[2])),
            (arg(Some(1), true), vec![t(I32, &[2, 3])], t(I64, &[2, 1])),
            (arg(Some(1), false), vec![f(&[0, 3])], t(I64, &[0])),
            (arg(Some(0), false), vec![f(&[])], t(I64, &[])),
            (Op::Cumsum { axis: 0 }, vec![t(I32, &[2])], t(I64, &[2])),
            (
                Op::Cumsum { axis: 1 },
                vec![t(Bool, &[2, 2])],
                t(I64, &[2, 2]),
            ),
            (Op::Cumsum { axis: 0 }, vec![t(F16, &[2])], t(F16, &[2])),
            (Op::Cumsum { axis: 0 }, vec![t(I64, &[])], t(I64, &[])),
        ]);
        check_err(&[
            (softmax(2), vec![f(&[2, 3])], "axis 2 is out of range"),
            (softmax(1), vec![f(&[])], "axis 1 is out of range"),
            (softmax(0), vec![t(I64, &[3])], "floating-point"),
            (softmax(0), vec![t(Bool, &[3])], "floating-point"),
            (
                reduce(Mean, &[], false),
                vec![t(I64, &[3])],
                "implements mean for floating-point",
            ),
            (
                reduce(Max, &[0], false),
                vec![f(&[0, 3])],
                "cannot reduce axis 0 of shape [0, 3]: it has size 0",
            ),
            (
                reduce(Min, &[], false),
                vec![f(&[0, 3])],
                "empty tensor of shape [0, 3]",
            ),
            (
                reduce(Sum, &[1, 0], false),
                vec![f(&[2, 3])],
                "sorted and unique",
            ),
            (
                reduce(Sum, &[1, 1], false),
                vec![f(&[2, 3])],
                "sorted and unique",
            ),
            (reduce(Sum, &[2], false), vec![f(&[2, 3])], "out of range"),
            (var(&[], false), vec![t(I64, &[3])], "floating-point"),
            (var(&[], false), vec![t(Bool, &[3])], "floating-point"),
            (var(&[3], false), vec![f(&[3])], "out of range"),
            (arg(None, false), vec![t(Bool, &[3])], "bool"),
            (arg(Some(0), false), vec![f(&[0, 3])], "it has size 0"),
            (arg(None, false), vec![f(&[0, 3])], "empty tensor"),
            (arg(Some(2), false), vec![f(&[2, 3])], "out of range"),
            (Op::Cumsum { axis: 2 }, vec![f(&[2, 3])], "out of range"),
        ]);
    }

    #[test]
    fn pools() {
        use PoolKind::*;
        let mut divisor_zero = PoolAttrs {
            kind: Avg,
            kernel: vec![2, 2],
            stride: vec![2, 2],
            padding: vec![0, 0],
            dilation: vec![1, 1],
            ceil_mode: false,
            count_include_pad: true,
            divisor_override: Some(0),
        };
        let divisor_zero_op = Op::Pool(divisor_zero.clone());
        divisor_zero.divisor_override = None;
        divisor_zero.dilation = vec![2, 1];
        let avg_dilated = Op::Pool(divisor_zero);
        let adaptive = |kind, size: &[usize]| Op::AdaptivePool {
            kind,
            output_size: size.to_vec(),
        };
        check_ok(&[
            (
                max_pool(&[3, 3], &[2, 2], &[1, 1], &[1, 1], false),
                vec![f(&[1, 3, 7, 7])],
                f(&[1, 3, 4, 4]),
            ),
            (
                max_pool(&[3, 3], &[2, 2], &[1, 1], &[1, 1], true),
                vec![f(&[1, 3, 7, 7])],
                f(&[1, 3, 4, 4]),
            ),
            (
                max_pool(&[4], &[3], &[2], &[2], true),
                vec![f(&[2, 5, 10])],
                f(&[2, 5, 4]),
            ),
            (
                max_pool(&[4], &[3], &[2], &[2], false),
                vec![f(&[2, 5, 10])],
                f(&[2, 5, 3]),
            ),
            (
                max_pool(&[2, 2], &[2, 2], &[0, 0], &[1, 1], true),
                vec![f(&[3, 6, 6])],
                f(&[3, 3, 3]),
            ),
            // The ceil-mode correction drops the window that would start in the right padding.
            (
                max_pool(&[2, 3], &[2, 3], &[1, 1], &[1, 1], true),
                vec![f(&[1, 1, 5, 8])],
                f(&[1, 1, 3, 3]),
            ),
            (
                max_pool(&[3, 3], &[2, 2], &[1, 1], &[1, 1], true),
                vec![f(&[1, 1, 6, 6])],
                f(&[1, 1, 4, 4]),
            ),
            (
                max_pool(&[2, 2], &[2, 2], &[0, 0], &[1, 1], false),
                vec![t(I64, &[1, 1, 4, 4])],
                t(I64, &[1, 1, 2, 2]),
            ),
            (
                max_pool(&[2, 2], &[2, 2], &[0, 0], &[1, 1], false),
                vec![t(F16, &[1, 1, 5, 5])],
                t(F16, &[1, 1, 2, 2]),
            ),
            (
                max_pool(&[2], &[2], &[0], &[1], false),
                vec![f(&[3, 7])],
                f(&[3, 3]),
            ),
            (
                avg_pool(&[2, 2], &[2, 2], &[0, 0], false),
                vec![t(I64, &[1, 1, 4, 4])],
                t(I64, &[1, 1, 2, 2]),
            ),
            (
                avg_pool(&[2, 2], &[2, 2], &[0, 0], false),
                vec![f(&[0, 1, 4, 4])],
                f(&[0, 1, 2, 2]),
            ),
            (
                avg_pool(&[2, 2], &[2, 2], &[1, 1], true),
                vec![f(&[1, 1, 5, 5])],
                f(&[1, 1, 3, 3]),
            ),
            (
                adaptive(Avg, &[2, 2]),
                vec![f(&[1, 1, 4, 4])],
                f(&[1, 1, 2, 2]),
            ),
            (adaptive(Avg, &[2, 2]), vec![f(&[1, 4, 4])], f(&[1, 2, 2])),
            (adaptive(Max, &[2]), vec![f(&[1, 4, 4])], f(&[1, 4, 2])),
            (adaptive(Avg, &[2]), vec![f(&[4, 4])], f(&[4, 2])),
            (
                adaptive(Avg, &[2, 2, 2]),
                vec![f(&[1, 1, 4, 4, 4])],
                f(&[1, 1, 2, 2, 2]),
            ),
            (
                adaptive(Max, &[0, 0]),
                vec![f(&[1, 1, 4, 4])],
                f(&[1, 1, 0, 0]),
            ),
            (
                adaptive(Avg, &[2, 2]),
                vec![f(&[1, 0, 4, 4])],
                f(&[1, 0, 2, 2]),
            ),
        ]);
        let mp = max_pool(&[2, 2], &[2, 2], &[0, 0], &[1, 1], false);
        check_err(&[
            (mp.clone(), vec![t(Bool, &[1, 1, 4, 4])], "bool"),
            (
                avg_pool(&[2, 2], &[2, 2], &[0, 0], false),
                vec![t(U8, &[1, 1, 4, 4])],
                "floating-point and i64 only",
            ),
            (
                avg_pool(&[3, 3], &[1, 1], &[2, 2], false),
                vec![f(&[1, 1, 4, 4])],
                "padding 2 in spatial dim 0 is more than half the kernel size 3",
            ),
            (
                max_pool(&[2, 2], &[2, 2], &[2, 2], &[3, 3], false),
                vec![f(&[1, 1, 8, 8])],
                "more than half the kernel size 2",
            ),
            (
                max_pool(&[3, 3], &[1, 1], &[1, 1], &[2, 2], false),
                vec![f(&[1, 1, 2, 2])],
                "gives output size 0, which is too small",
            ),
            (mp.clone(), vec![f(&[1, 0, 4, 4])], "empty non-batch dim"),
            (
                max_pool(&[2], &[2], &[0], &[1], false),
                vec![f(&[0, 7])],
                "empty non-batch dim",
            ),
            (
                mp.clone(),
                vec![f(&[1, 1, 1, 4, 4])],
                "input must be [N, C, *spatial] or [C, *spatial] with 2 spatial dim(s)",
            ),
            (
                max_pool(&[2, 2, 2], &[2, 2, 2], &[0, 0, 0], &[1, 1, 1], false),
                vec![f(&[1, 1, 4, 4, 4])],
                "must have 1 or 2 entries",
            ),
            (
                max_pool(&[2, 2], &[2], &[0, 0], &[1, 1], false),
                vec![f(&[1, 1, 4, 4])],
                "stride [2] must have 2 entries",
            ),
            (
                max_pool(&[2, 2], &[0, 2], &[0, 0], &[1, 1], false),
                vec![f(&[1, 1, 4, 4])],
                "must be positive",
            ),
            (
                max_pool(&[0, 2], &[1, 2], &[0, 0], &[1, 1], false),
                vec![f(&[1, 1, 4, 4])],
                "must be positive",
            ),
            (avg_dilated, vec![f(&[1, 1, 4, 4])], "no dilation"),
            (
                divisor_zero_op,
                vec![f(&[1, 1, 4, 4])],
                "divisor_override must not be zero",
            ),
            (
                adaptive(Avg, &[2, 2]),
                vec![f(&[1, 1, 0, 4])],
                "empty spatial dim",
            ),
            (
                adaptive(Max, &[2, 2]),
                vec![t(I64, &[1, 1, 4, 4])],
                "floating-point",
            ),
            (adaptive(Avg, &[]), vec![f(&[1, 1, 4, 4])], "1 to 3 entries"),
            (adaptive(Avg, &[2, 2]), vec![f(&[4])], "input must be"),
        ]);
    }

    #[test]
    fn layout_ops() {
        let permute = |p: &[usize]| Op::Permute { perm: p.to_vec() };
        let expand = |s: &[usize]| Op::Expand { shape: s.to_vec() };
        let tile = |r: &[usize]| Op::Tile {
            repeats: r.to_vec(),
        };
        let reshape = |s: &[usize]| Op::Reshape { shape: s.to_vec() };
        let concat = |axis| Op::Concat { axis };
        let slice = |axis, start, end, step| Op::Slice {
            axis,
            start,
            end,
            step,
        };
        check_ok(&[
            (reshape(&[6, 1]), vec![f(&[2, 3])], f(&[6, 1])),
            (
                reshape(&[3, 0, 5]),
                vec![t(I64, &[0, 3])],
                t(I64, &[3, 0, 5]),
            ),
            (reshape(&[]), vec![f(&[1, 1])], f(&[])),
            (permute(&[2, 0, 1]), vec![f(&[2, 3, 4])], f(&[4, 2, 3])),
            (permute(&[]), vec![f(&[])], f(&[])),
            (expand(&[0, 3]), vec![f(&[1, 3])], f(&[0, 3])),
            (expand(&[2, 3, 4]), vec![f(&[3, 1])], f(&[2, 3, 4])),
            (expand(&[2, 2]), vec![t(Bool, &[])], t(Bool, &[2, 2])),
            (tile(&[0, 2]), vec![f(&[2, 3])], f(&[0, 6])),
            (tile(&[2, 1, 2]), vec![f(&[2, 3])], f(&[2, 2, 6])),
            (tile(&[3]), vec![f(&[])], f(&[3])),
            (concat(0), vec![t(I64, &[2]), f(&[2])], f(&[4])),
            (concat(0), vec![t(I32, &[2]), t(Bool, &[2])], t(I32, &[4])),
            (concat(0), vec![t(F16, &[2]), t(BF16, &[2])], f(&[4])),
            (
                concat(1),
                vec![f(&[2, 3]), f(&[2, 5]), f(&[2, 0])],
                f(&[2, 8]),
            ),
            (concat(0), vec![f(&[2, 3])], f(&[2, 3])),
            (slice(0, 1, 8, 3), vec![f(&[10, 4])], f(&[3, 4])),
            (slice(0, 1, 7, 3), vec![f(&[10, 4])], f(&[2, 4])),
            (slice(1, 0, 0, 1), vec![f(&[10, 4])], f(&[10, 0])),
            (slice(0, 0, 10, 20), vec![f(&[10, 4])], f(&[1, 4])),
            (slice(0, 10, 10, 1), vec![f(&[10, 4])], f(&[0, 4])),
            (Op::Cast { to: I64 }, vec![f(&[2, 3])], t(I64, &[2, 3])),
            (Op::Cast { to: Bool }, vec![t(F16, &[])], t(Bool, &[])),
        ]);
        check_err(&[
            (
                reshape(&[4]),
                vec![f(&[2, 3])],
                "cannot reshape [2, 3] (6 elements) to [4] (4 elements)",
            ),
            (
                reshape(&[1 << 40, 1 << 40]),
                vec![f(&[2])],
                "more elements than fit in memory",
            ),
            (permute(&[1, 1]), vec![f(&[2, 3])], "not a permutation"),
            (permute(&[0, 2]), vec![f(&[2, 3])], "not a permutation"),
            (
                permute(&[0]),
                vec![f(&[2, 3])],
                "has 1 entries but the input has rank 2",
            ),
            (expand(&[3]), vec![f(&[2, 3])], "more dims than the target"),
            (
                expand(&[4, 3]),
                vec![f(&[2, 3])],
                "size 2 at dim 0 is neither 4 nor 1",
            ),
            (
                tile(&[2]),
                vec![f(&[2, 3])],
                "fewer entries than the input's rank 2",
            ),
            (tile(&[1 << 40, 1 << 40]), vec![f(&[1, 1])], "fit in memory"),
            (tile(&[2, usize::MAX]), vec![f(&[1, 2])], "overflows"),
            (
                concat(0),
                vec![f(&[]), f(&[])],
                "0-d tensors cannot be concatenated",
            ),
            (concat(0), vec![f(&[2]), f(&[2, 2])], "ranks must match"),
            (
                concat(1),
                vec![f(&[2, 3]), f(&[3, 3])],
                "they may differ only on axis 1",
            ),
            (concat(2), vec![f(&[2, 3]), f(&[2, 3])], "out of range"),
            (concat(0), vec![], "at least one input"),
            (slice(0, 0, 4, 0), vec![f(&[10])], "step must be at least 1"),
            (
                slice(0, 5, 4, 1),
                vec![f(&[10])],
                "range 5..4 is not within axis 0 of size 10",
            ),
            (slice(0, 0, 11, 1), vec![f(&[10])], "not within axis 0"),
            (slice(1, 0, 1, 1), vec![f(&[10])], "out of range"),
            (slice(0, 0, 0, 1), vec![f(&[])], "out of range"),
            (Op::Cast { to: I64 }, vec![], "takes 1 input(s)"),
        ]);
    }

    #[test]
    fn indexing_ops() {
        let take = |axis| Op::Take { axis };
        let gather = |axis| Op::Gather { axis };
        let pad = |p: &[(i64, i64)]| Op::Pad {
            pads: p.to_vec(),
            value: 0.0,
        };
        let tri = Op::Triangle {
            upper: true,
            diagonal: 1,
        };
        check_ok(&[
            (take(0), vec![f(&[5, 3]), t(I64, &[2, 4])], f(&[2, 4, 3])),
            (take(1), vec![f(&[5, 3]), t(I32, &[])], f(&[5])),
            (
                take(1),
                vec![t(Bool, &[5, 3, 2]), t(I64, &[0])],
                t(Bool, &[5, 0, 2]),
            ),
            (gather(0), vec![f(&[3, 3]), t(I64, &[5, 2])], f(&[5, 2])),
            (
                gather(1),
                vec![t(I64, &[3, 3]), t(I32, &[2, 2])],
                t(I64, &[2, 2]),
            ),
            (gather(0), vec![f(&[]), t(I64, &[])], f(&[])),
            (pad(&[(0, 0), (-2, -2)]), vec![f(&[3, 4])], f(&[3, 0])),
            (pad(&[(1, 2), (0, 1)]), vec![f(&[3, 4])], f(&[6, 5])),
            (pad(&[(1, 1)]), vec![t(Bool, &[3])], t(Bool, &[5])),
            (pad(&[]), vec![f(&[])], f(&[])),
            (tri.clone(), vec![t(Bool, &[3, 3])], t(Bool, &[3, 3])),
            (tri.clone(), vec![f(&[2, 3, 4])], f(&[2, 3, 4])),
        ]);
        check_err(&[
            (
                take(0),
                vec![f(&[5, 3]), f(&[2])],
                "the index is f32[2], but indices must be i64 or i32",
            ),
            (take(2), vec![f(&[5, 3]), t(I64, &[2])], "out of range"),
            (take(0), vec![f(&[]), t(I64, &[2])], "out of range"),
            (take(0), vec![f(&[5, 3])], "takes 2 input(s)"),
            (
                gather(0),
                vec![f(&[3, 3]), t(I64, &[4, 4])],
                "index shape [4, 4] is larger than the input shape [3, 3] at dim 1",
            ),
            (
                gather(0),
                vec![f(&[3, 3]), t(I64, &[2])],
                "rank 1 but the input has rank 2",
            ),
            (gather(0), vec![f(&[3, 3]), f(&[2, 2])], "i64 or i32"),
            (gather(2), vec![f(&[3, 3]), t(I64, &[2, 2])], "out of range"),
            (
                pad(&[(0, 0), (-3, -2)]),
                vec![f(&[3, 4])],
                "dim 1 of size 4 padded by (-3, -2) would have size -1",
            ),
            (pad(&[(1, 1)]), vec![f(&[3, 4])], "pads has 1 entries"),
            (
                pad(&[(i64::MAX, i64::MAX), (0, 0)]),
                vec![f(&[3, 4])],
                "padded size 18446744073709551617 overflows",
            ),
            (tri.clone(), vec![f(&[3])], "at least 2 dims"),
            (tri, vec![f(&[])], "at least 2 dims"),
        ]);
    }

    #[test]
    fn upsample_cases() {
        let nearest = |s: &[usize]| Op::Upsample {
            mode: UpsampleMode::Nearest,
            size: s.to_vec(),
        };
        let bilinear = |s: &[usize]| Op::Upsample {
            mode: UpsampleMode::Bilinear {
                align_corners: false,
            },
            size: s.to_vec(),
        };
        check_ok(&[
            (nearest(&[8]), vec![f(&[1, 1, 4])], f(&[1, 1, 8])),
            (
                nearest(&[8, 8, 8]),
                vec![f(&[1, 1, 4, 4, 4])],
                f(&[1, 1, 8, 8, 8]),
            ),
            (
                nearest(&[8, 8]),
                vec![t(U8, &[1, 1, 4, 4])],
                t(U8, &[1, 1, 8, 8]),
            ),
            (
                bilinear(&[8, 8]),
                vec![t(U8, &[1, 1, 4, 4])],
                t(U8, &[1, 1, 8, 8]),
            ),
            (bilinear(&[3, 2]), vec![f(&[0, 1, 4, 4])], f(&[0, 1, 3, 2])),
            (
                bilinear(&[8, 8]),
                vec![t(F16, &[1, 1, 4, 4])],
                t(F16, &[1, 1, 8, 8]),
            ),
        ]);
        check_err(&[
            (
                nearest(&[8, 8]),
                vec![t(I64, &[1, 1, 4, 4])],
                "floating-point and u8 tensors only",
            ),
            (nearest(&[8, 8]), vec![t(Bool, &[1, 1, 4, 4])], "u8"),
            (nearest(&[0, 8]), vec![f(&[1, 1, 4, 4])], "must be non-zero"),
            (nearest(&[8, 8]), vec![f(&[1, 0, 4, 4])], "must be non-zero"),
            (nearest(&[8, 8]), vec![f(&[1, 1, 0, 4])], "must be non-zero"),
            (bilinear(&[8]), vec![f(&[1, 1, 4])], "needs 2 spatial sizes"),
            (nearest(&[]), vec![f(&[1, 1])], "1 to 3 entries"),
            (
                nearest(&[8, 8]),
                vec![f(&[1, 4, 4])],
                "input must be [N, C, *spatial] with 2 spatial dim(s)",
            ),
        ]);
    }

    #[test]
    fn error_message_format() {
        let err = infer(
            &conv(&[1, 1], &[0, 0], &[1, 1], 1),
            &[&f(&[1, 16, 4, 4]), &f(&[8, 8, 3, 3])],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conv: input has 16 channels but weight expects 8 × groups 1"
        );
        assert_eq!(err.op, "conv");
    }

    /// Every op on every small combination of inputs must return, never panic: the importer
    /// feeds this untrusted archive metadata.
    #[test]
    fn never_panics() {
        let attrs = ConvAttrs {
            stride: vec![1, 2],
            padding: vec![1, 0],
            dilation: vec![1, 1],
            groups: 2,
            transposed: false,
            output_padding: vec![],
        };
        let ops = vec![
            Op::Conv(attrs.clone()),
            Op::Conv(ConvAttrs {
                transposed: true,
                output_padding: vec![1],
                ..attrs
            }),
            Op::Linear,
            Op::MatMul,
            Op::Addmm {
                alpha: 1.0,
                beta: 1.0,
            },
            Op::BatchNorm { eps: 1e-5 },
            Op::LayerNorm { axis: 1, eps: 1e-5 },
            Op::GroupNorm {
                groups: 2,
                eps: 1e-5,
            },
            Op::Sdpa {
                causal: false,
                scale: None,
            },
            un(UnaryOp::Sigmoid),
            un(UnaryOp::Relu),
            un(UnaryOp::Gelu { tanh: false }),
            bin(BinaryOp::Sub),
            bin(BinaryOp::Div),
            bin(BinaryOp::Lt),
            Op::Where,
            Op::Softmax { axis: 1, log: true },
            reduce(ReduceOp::Max, &[0, 1], false),
            reduce(ReduceOp::Mean, &[], true),
            Op::Var {
                axes: vec![2],
                correction: 0.0,
                keepdim: true,
            },
            Op::ArgReduce {
                op: ArgOp::Min,
                axis: Some(1),
                keepdim: false,
            },
            max_pool(&[2], &[1], &[1], &[2], true),
            avg_pool(&[2, 1], &[1, 2], &[1, 0], true),
            Op::AdaptivePool {
                kind: PoolKind::Avg,
                output_size: vec![1, 2],
            },
            Op::Reshape { shape: vec![2, 0] },
            Op::Permute {
                perm: vec![1, 0, 2],
            },
            Op::Expand {
                shape: vec![2, 2, 2],
            },
            Op::Tile {
                repeats: vec![2, 0],
            },
            Op::Concat { axis: 1 },
            Op::Slice {
                axis: 1,
                start: 0,
                end: 2,
                step: 2,
            },
            Op::Take { axis: 1 },
            Op::Gather { axis: 1 },
            Op::Cast { to: F16 },
            Op::Pad {
                pads: vec![(-1, 0), (0, 2)],
                value: 0.0,
            },
            Op::Triangle {
                upper: false,
                diagonal: -1,
            },
            Op::Cumsum { axis: 1 },
            Op::Upsample {
                mode: UpsampleMode::Nearest,
                size: vec![3],
            },
        ];
        let pool: Vec<TensorType> = [
            f(&[]),
            f(&[0]),
            f(&[2]),
            f(&[2, 2]),
            f(&[1, 2, 3]),
            t(I64, &[2, 0, 1]),
            t(Bool, &[2, 1]),
            t(I32, &[2, 4, 3, 2]),
            f(&[2, 4, 1, 1]),
        ]
        .into_iter()
        .collect();
        let n = pool.len();
        let mut calls = 0;
        for op in &ops {
            let _ = infer(op, &[]);
            for a in 0..n {
                let _ = infer(op, &[&pool[a]]);
                for b in 0..n {
                    let _ = infer(op, &[&pool[a], &pool[b]]);
                    for c in 0..n {
                        let _ = infer(op, &[&pool[a], &pool[b], &pool[c]]);
                        let _ = infer(op, &[&pool[a], &pool[b], &pool[c], &pool[c]]);
                        let _ = infer(op, &[&pool[a], &pool[b], &pool[c], &pool[c], &pool[a]]);
                        calls += 3;
                    }
                }
            }
        }
        assert!(calls > 10_000);
    }
}
