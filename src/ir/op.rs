//! etpkg's core op set. Invariant: every op has one output, static attributes, and all axes
//! already normalized to non-negative indices into its input's shape.
//!
//! Lowering (`crate::lower`) maps both flavours of ATen graph onto these ops. Composite ops that
//! a fused kernel beats (linear, layer norm, scaled dot-product attention, GELU) stay whole.
//! Optional tensor inputs are trailing: an op whose doc says "optional bias" takes it exactly
//! when `inputs.len()` includes it. Scalars that ATen passes beside tensors become 0-d constant
//! tensors, so every element-wise op is a broadcasting op over tensors.

use super::DType;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// 1-d or 2-d convolution. Inputs: x `[N, C, *spatial]`, weight, optional bias `[O]`.
    /// Weight is `[O, C/groups, *k]`, or `[C, O/groups, *k]` when `transposed`.
    Conv(ConvAttrs),
    /// `y = x · wᵀ + b`. Inputs: x `[..., K]`, w `[M, K]`, optional b `[M]`. Output `[..., M]`.
    Linear,
    /// `torch.matmul` semantics: rank-1 operands are promoted and the added dim removed, batch
    /// dimensions broadcast. Inputs: a, b.
    MatMul,
    /// `y = beta · bias + alpha · (a @ b)`. Inputs: bias (broadcastable to `[N, M]`), a `[N, K]`,
    /// b `[K, M]`.
    Addmm { alpha: f64, beta: f64 },
    /// Inference batch norm over axis 1. Inputs: x `[N, C, *]`, weight `[C]`, bias `[C]`,
    /// running mean `[C]`, running var `[C]`.
    /// `y = (x - mean) / sqrt(var + eps) * weight + bias`.
    BatchNorm { eps: f64 },
    /// Layer norm over the trailing `x.rank - axis` dims. Inputs: x, weight, bias (both of the
    /// normalized shape). Biased variance.
    LayerNorm { axis: usize, eps: f64 },
    /// Group norm over axis 1 split into `groups`, statistics over each group and all spatial
    /// positions. Inputs: x `[N, C, *]`, weight `[C]`, bias `[C]`.
    GroupNorm { groups: usize, eps: f64 },
    /// Scaled dot-product attention. Inputs: q `[..., L, E]`, k `[..., S, E]`, v `[..., S, Ev]`,
    /// optional mask broadcastable to `[..., L, S]` (bool: true keeps; float: added to scores).
    /// `scale` defaults to `1/sqrt(E)`; `causal` masks positions j > i.
    Sdpa { causal: bool, scale: Option<f64> },
    /// Element-wise unary op. Input: x. Output dtype as recorded in the graph.
    Unary(UnaryOp),
    /// Broadcasting binary op. Inputs: a, b. Arithmetic is done in the output dtype; comparisons
    /// in the promoted dtype of the two inputs (f32 if either is float, else i64) and yield bool.
    Binary(BinaryOp),
    /// `cond ? a : b`, broadcasting. Inputs: cond (bool), a, b.
    Where,
    /// Softmax (or log-softmax) along `axis`.
    Softmax { axis: usize, log: bool },
    /// Reduction over `axes` (sorted, unique; empty means all axes).
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdim: bool,
    },
    /// Variance over `axes` (empty means all) with `correction` (0 biased, 1 unbiased).
    Var {
        axes: Vec<usize>,
        correction: f64,
        keepdim: bool,
    },
    /// Index of the max/min along `axis` (first occurrence), or over the flattened tensor when
    /// `axis` is None. Output i64.
    ArgReduce {
        op: ArgOp,
        axis: Option<usize>,
        keepdim: bool,
    },
    /// 1-d or 2-d pooling over the trailing spatial dims of `[N, C, *spatial]` or `[C, *spatial]`.
    Pool(PoolAttrs),
    /// Adaptive pooling to `output_size` (one entry per spatial dim), PyTorch's bin rule:
    /// bin i covers `[floor(i·in/out), ceil((i+1)·in/out))`.
    AdaptivePool {
        kind: PoolKind,
        output_size: Vec<usize>,
    },
    /// Same elements in row-major order, new shape.
    Reshape { shape: Vec<usize> },
    /// Output dim i is input dim `perm[i]`.
    Permute { perm: Vec<usize> },
    /// Broadcast to `shape` (input rank ≤ output rank, aligned to the right; size-1 dims grow).
    Expand { shape: Vec<usize> },
    /// Repeat the tensor `repeats[i]` times along dim i (`torch.Tensor.repeat`; input rank is
    /// first padded with leading 1s to `repeats.len()`).
    Tile { repeats: Vec<usize> },
    /// Concatenation along `axis` of all inputs.
    Concat { axis: usize },
    /// Elements `start, start+step, ... < end` along `axis` (already clamped to the dim size).
    Slice {
        axis: usize,
        start: usize,
        end: usize,
        step: usize,
    },
    /// `numpy.take`: inputs x and i64 indices; output shape is
    /// `x.shape[..axis] ++ idx.shape ++ x.shape[axis+1..]`. Negative indices count from the end.
    /// Covers embedding, index_select and single-tensor advanced indexing.
    Take { axis: usize },
    /// `torch.gather` along `axis`. Inputs: x, i64 index of the output's shape.
    Gather { axis: usize },
    /// Element type conversion (float→int truncates toward zero, →bool is `!= 0`).
    Cast { to: DType },
    /// Constant padding: `pads[i] = (before, after)` for every dim; negative amounts crop.
    Pad { pads: Vec<(i64, i64)>, value: f64 },
    /// Zero the elements above (`upper == false`: keep `j - i <= diagonal`) or below
    /// (`upper == true`: keep `j - i >= diagonal`) the diagonal of the last two dims.
    Triangle { upper: bool, diagonal: i64 },
    /// Inclusive prefix sum along `axis`.
    Cumsum { axis: usize },
    /// Resampling of the trailing spatial dims to `size`.
    Upsample {
        mode: UpsampleMode,
        size: Vec<usize>,
    },
    /// `op` followed by the element-wise activation `act` on its output, as one op. Made by the
    /// `fuse-activations` pass so a kernel can apply the activation while the result is still
    /// in registers. Inputs are those of `op`; the output type is `op`'s.
    Fused { op: Box<Op>, act: Activation },
}

/// An activation a producer can apply to its own output. Each variant means exactly the
/// [`UnaryOp`] that [`Activation::unary`] returns, so fusing never changes semantics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Activation {
    Relu,
    /// Clamp to `[min, max]`; covers relu6 and hardtanh.
    Clamp {
        min: Option<f64>,
        max: Option<f64>,
    },
    Hardswish,
    Hardsigmoid,
    Silu,
    Gelu {
        tanh: bool,
    },
}

impl Activation {
    /// The unary op this activation applies.
    pub fn unary(self) -> UnaryOp {
        match self {
            Activation::Relu => UnaryOp::Relu,
            Activation::Clamp { min, max } => UnaryOp::Clamp { min, max },
            Activation::Hardswish => UnaryOp::Hardswish,
            Activation::Hardsigmoid => UnaryOp::Hardsigmoid,
            Activation::Silu => UnaryOp::Silu,
            Activation::Gelu { tanh } => UnaryOp::Gelu { tanh },
        }
    }

    /// The activation a unary op is, if it is one a producer can absorb.
    pub fn from_unary(u: UnaryOp) -> Option<Activation> {
        Some(match u {
            UnaryOp::Relu => Activation::Relu,
            UnaryOp::Clamp { min, max } => Activation::Clamp { min, max },
            UnaryOp::Hardswish => Activation::Hardswish,
            UnaryOp::Hardsigmoid => Activation::Hardsigmoid,
            UnaryOp::Silu => Activation::Silu,
            UnaryOp::Gelu { tanh } => Activation::Gelu { tanh },
            _ => return None,
        })
    }

    fn index(self) -> usize {
        match self {
            Activation::Relu => 0,
            Activation::Clamp { .. } => 1,
            Activation::Hardswish => 2,
            Activation::Hardsigmoid => 3,
            Activation::Silu => 4,
            Activation::Gelu { .. } => 5,
        }
    }
}

/// Defines, from one list of producers, `FUSED_PRODUCERS` and `FUSED_NAMES` (every
/// `<producer>+<activation>`, in `Activation::index` order), so `Op::name` can stay
/// `&'static str` for fused ops too. Any other producer is named `fused+<act>`.
macro_rules! fused_names {
    ($($p:literal),* $(,)?) => {
        const FUSED_PRODUCERS: &[&str] = &[$($p),*];
        const FUSED_NAMES: &[[&str; 6]] = &[$([
            concat!($p, "+relu"),
            concat!($p, "+clamp"),
            concat!($p, "+hardswish"),
            concat!($p, "+hardsigmoid"),
            concat!($p, "+silu"),
            concat!($p, "+gelu"),
        ]),*];
    };
}

fused_names!(
    "conv",
    "conv_transpose",
    "linear",
    "matmul",
    "addmm",
    "batch_norm",
    "layer_norm",
    "add",
    "sub",
    "mul",
    "fused",
);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvAttrs {
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
    pub groups: usize,
    pub transposed: bool,
    pub output_padding: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnaryOp {
    Relu,
    Sigmoid,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Neg,
    Abs,
    Erf,
    Reciprocal,
    Floor,
    Ceil,
    Round,
    Sign,
    Sin,
    Cos,
    LogicalNot,
    /// `x · sigmoid(x)`.
    Silu,
    /// `x · relu6(x + 3) / 6`.
    Hardswish,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// GELU, exact (`erf`) or with the tanh approximation.
    Gelu {
        tanh: bool,
    },
    /// Clamp to `[min, max]`; covers relu6 and hardtanh.
    Clamp {
        min: Option<f64>,
        max: Option<f64>,
    },
    LeakyRelu {
        slope: f64,
    },
    Elu {
        alpha: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// True division for floats; for integer outputs, see `FloorDiv` / `TruncDiv`.
    Div,
    FloorDiv,
    TruncDiv,
    /// Python-style remainder (sign of the divisor).
    Rem,
    Pow,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArgOp {
    Max,
    Min,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolAttrs {
    pub kind: PoolKind,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub padding: Vec<usize>,
    pub dilation: Vec<usize>,
    pub ceil_mode: bool,
    /// Avg only: whether padded positions count in the divisor.
    pub count_include_pad: bool,
    /// Avg only: a fixed divisor that replaces the window size.
    pub divisor_override: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpsampleMode {
    Nearest,
    Bilinear { align_corners: bool },
}

impl Op {
    /// A short, stable name for diagnostics, reports and IR dumps.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(a) if a.transposed => "conv_transpose",
            Op::Conv(_) => "conv",
            Op::Linear => "linear",
            Op::MatMul => "matmul",
            Op::Addmm { .. } => "addmm",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::GroupNorm { .. } => "group_norm",
            Op::Sdpa { .. } => "sdpa",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Where => "where",
            Op::Softmax { log: false, .. } => "softmax",
            Op::Softmax { log: true, .. } => "log_softmax",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "sum",
                ReduceOp::Mean => "mean",
                ReduceOp::Max => "amax",
                ReduceOp::Min => "amin",
                ReduceOp::Prod => "prod",
            },
            Op::Var { .. } => "var",
            Op::ArgReduce { op: ArgOp::Max, .. } => "argmax",
            Op::ArgReduce { op: ArgOp::Min, .. } => "argmin",
            Op::Pool(p) => match p.kind {
                PoolKind::Max => "max_pool",
                PoolKind::Avg => "avg_pool",
            },
            Op::AdaptivePool {
                kind: PoolKind::Max,
                ..
            } => "adaptive_max_pool",
            Op::AdaptivePool {
                kind: PoolKind::Avg,
                ..
            } => "adaptive_avg_pool",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Expand { .. } => "expand",
            Op::Tile { .. } => "tile",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Take { .. } => "take",
            Op::Gather { .. } => "gather",
            Op::Cast { .. } => "cast",
            Op::Pad { .. } => "pad",
            Op::Triangle { upper: false, .. } => "tril",
            Op::Triangle { upper: true, .. } => "triu",
            Op::Cumsum { .. } => "cumsum",
            Op::Upsample { .. } => "upsample",
            Op::Fused { op, act } => {
                let inner = op.name();
                let row = FUSED_PRODUCERS
                    .iter()
                    .position(|p| *p == inner)
                    .unwrap_or(FUSED_PRODUCERS.len() - 1);
                FUSED_NAMES[row][act.index()]
            }
        }
    }
}

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Erf => "erf",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::Sign => "sign",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::LogicalNot => "logical_not",
            UnaryOp::Silu => "silu",
            UnaryOp::Hardswish => "hardswish",
            UnaryOp::Hardsigmoid => "hardsigmoid",
            UnaryOp::Gelu { .. } => "gelu",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::LeakyRelu { .. } => "leaky_relu",
            UnaryOp::Elu { .. } => "elu",
        }
    }
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::FloorDiv => "floor_div",
            BinaryOp::TruncDiv => "trunc_div",
            BinaryOp::Rem => "rem",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Xor => "xor",
        }
    }
}
