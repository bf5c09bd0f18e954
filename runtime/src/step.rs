//! One decoded instruction of a program, in etpkg's canonical op set. Invariant: a `Step` holds
//! only value indices and static attributes; it mirrors `etpkg::ir::Op` one to one, so decoding
//! an emitted program gives back the graph's ops, plus three kinds only programs ExecuTorch
//! wrote use (`Full`, `Arange`, `Split`: etpkg's importer folds creation ops into constants and
//! splits into slices).
//!
//! This file is shared: etpkg compiles it (kernel selection, `inspect`, tests) and copies it
//! into every generated runtime crate, beside `pte.rs` and the kernels' `act.rs`, which it
//! names through `super::`. It is `no_std` and allocates nothing.

/// The activation a fused step applies to its own result (`Act::None` when not fused): the
/// kernels' own type, so a binding passes it through unchanged.
pub use super::kernels::act::Act;
/// The largest tensor rank a program may use: the one the reader enforces.
pub use super::pte::MAX_RANK;

/// A value index into the execution plan's `values`.
pub type ValueIndex = u32;

/// Up to [`MAX_RANK`] small integers (axes, sizes, strides) without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ints {
    pub len: u8,
    pub v: [i64; MAX_RANK],
}

impl Ints {
    pub const EMPTY: Ints = Ints {
        len: 0,
        v: [0; MAX_RANK],
    };

    /// Returns `None` when `items` has more than [`MAX_RANK`] entries.
    pub fn from_slice(items: &[i64]) -> Option<Ints> {
        if items.len() > MAX_RANK {
            return None;
        }
        let mut v = [0; MAX_RANK];
        v[..items.len()].copy_from_slice(items);
        Some(Ints {
            len: items.len() as u8,
            v,
        })
    }

    pub fn as_slice(&self) -> &[i64] {
        &self.v[..self.len as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
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
    Silu,
    Hardswish,
    Hardsigmoid,
    Gelu { tanh: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    TruncDiv,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// What a step computes. Shapes and dtypes are not repeated here: they are the operands'
/// tensor types in the program. Attribute meanings are those of `etpkg::ir::Op`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// 1-d or 2-d convolution (`spatial` = 1 or 2). Inputs: x, w, optional b. For a 1-d
    /// convolution entry 0 of each pair holds the only spatial dim's value.
    Conv {
        spatial: u8,
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        output_padding: [usize; 2],
        groups: usize,
        transposed: bool,
    },
    /// Inputs: x, w `[M, K]`, optional b.
    Linear,
    /// `torch.matmul`. Inputs: a, b.
    MatMul,
    /// Inputs: bias, a, b.
    Addmm {
        alpha: f32,
        beta: f32,
    },
    /// Inputs: x, weight, bias, mean, var.
    BatchNorm {
        eps: f32,
    },
    /// Inputs: x, weight, bias; normalizes dims `axis..`.
    LayerNorm {
        axis: usize,
        eps: f32,
    },
    /// Inputs: x, weight, bias.
    GroupNorm {
        groups: usize,
        eps: f32,
    },
    /// Inputs: q, k, v, optional mask. `scale` is NaN when absent (use `1/sqrt(E)`).
    Sdpa {
        causal: bool,
        scale: f32,
    },
    Unary(Unary),
    LeakyRelu {
        slope: f32,
    },
    Elu {
        alpha: f32,
    },
    /// Clamp to `[min, max]` (infinite when absent), in the output dtype.
    Clamp {
        min: f64,
        max: f64,
    },
    Binary(Binary),
    /// Inputs: cond, a, b.
    Where,
    Softmax {
        axis: usize,
        log: bool,
    },
    /// `axes` as a bit set over the input's dims (bit i = dim i); 0 means all dims.
    Reduce {
        op: Reduce,
        axes: u32,
        keepdim: bool,
    },
    Var {
        axes: u32,
        correction: f64,
        keepdim: bool,
    },
    /// `axis` = -1 for the flattened tensor.
    ArgReduce {
        max: bool,
        axis: i32,
        keepdim: bool,
    },
    /// 1-d or 2-d pooling; for 1-d, entry 0 of each pair holds the only spatial dim's value.
    Pool {
        kind: PoolKind,
        spatial: u8,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
        count_include_pad: bool,
        /// 0 when absent.
        divisor_override: usize,
    },
    /// The output size is the output tensor's trailing dims.
    AdaptivePool {
        kind: PoolKind,
    },
    /// Same elements, the output's shape.
    Reshape,
    Permute {
        perm: Ints,
    },
    /// Broadcast to the output's shape.
    Expand,
    Tile {
        repeats: Ints,
    },
    /// Inputs: the tensors to join (a `TensorList` in the program).
    Concat {
        axis: usize,
    },
    Slice {
        axis: usize,
        start: usize,
        end: usize,
        step: usize,
    },
    /// Inputs: x, i64 indices.
    Take {
        axis: usize,
    },
    /// Inputs: x, i64 index.
    Gather {
        axis: usize,
    },
    /// Convert to the output's dtype.
    Cast,
    /// `pads[2i], pads[2i+1]` = before, after for dim i. 32-bit, so that this kind does not
    /// set the size of every entry of the runtime's step table (`exec::STEP_ENTRY_BYTES`);
    /// the decoder rejects larger pads.
    Pad {
        pads: [i32; 2 * MAX_RANK],
        value: f64,
    },
    Triangle {
        upper: bool,
        diagonal: i64,
    },
    Cumsum {
        axis: usize,
    },
    /// Resample the trailing spatial dims to the output's.
    Upsample {
        bilinear: bool,
        align_corners: bool,
    },
    /// No operands: every element of the output is `value`, in the output's dtype (ATen's
    /// `full`, `full_like`, `scalar_tensor`; etpkg's importer makes these constants instead).
    Full {
        value: f64,
    },
    /// No operands: element `i` of the 1-d output is `start + i·step`, in the output's dtype.
    Arange {
        start: f64,
        step: f64,
    },
    /// Inputs: x, then the `TensorList` of the outputs (written, never read). Consecutive
    /// pieces of x along `axis`, each as long as its output's dim; `Step::output` is the first
    /// piece, so the step has one tensor output to select a kernel for (every piece is a
    /// `Slice`, and the executor runs it as one per piece).
    Split {
        axis: usize,
    },
}

/// The most value operands any step reads (a concat's list counts as one).
pub const MAX_INPUTS: usize = 5;

/// One instruction: what it computes, on which values, and the activation fused into it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub kind: Kind,
    pub act: Act,
    /// Value indices of the operands, in the order the `Kind` documents. For `Concat`,
    /// `inputs[0]` is the `TensorList` value. A `Binary` operand may be an `Int`, `Double`
    /// or `Bool` value (ATen's `.Scalar` overloads): it acts as a 0-d i64, f32 or bool tensor.
    pub inputs: [ValueIndex; MAX_INPUTS],
    pub n_inputs: u8,
    pub output: ValueIndex,
}

impl Step {
    pub fn inputs(&self) -> &[ValueIndex] {
        &self.inputs[..self.n_inputs as usize]
    }
}

impl Unary {
    /// The op's name, as `etpkg::ir::UnaryOp::name` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Unary::Relu => "relu",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Rsqrt => "rsqrt",
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Erf => "erf",
            Unary::Reciprocal => "reciprocal",
            Unary::Floor => "floor",
            Unary::Ceil => "ceil",
            Unary::Round => "round",
            Unary::Sign => "sign",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::LogicalNot => "logical_not",
            Unary::Silu => "silu",
            Unary::Hardswish => "hardswish",
            Unary::Hardsigmoid => "hardsigmoid",
            Unary::Gelu { .. } => "gelu",
        }
    }
}

impl Binary {
    /// The op's name, as `etpkg::ir::BinaryOp::name` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::FloorDiv => "floor_div",
            Binary::TruncDiv => "trunc_div",
            Binary::Rem => "rem",
            Binary::Pow => "pow",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
            Binary::Eq => "eq",
            Binary::Ne => "ne",
            Binary::Lt => "lt",
            Binary::Le => "le",
            Binary::Gt => "gt",
            Binary::Ge => "ge",
            Binary::And => "and",
            Binary::Or => "or",
            Binary::Xor => "xor",
        }
    }
}

impl Kind {
    /// The op's name for reports, as `etpkg::ir::Op::name` gives it for the unfused op.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Conv {
                transposed: true, ..
            } => "conv_transpose",
            Kind::Conv { .. } => "conv",
            Kind::Linear => "linear",
            Kind::MatMul => "matmul",
            Kind::Addmm { .. } => "addmm",
            Kind::BatchNorm { .. } => "batch_norm",
            Kind::LayerNorm { .. } => "layer_norm",
            Kind::GroupNorm { .. } => "group_norm",
            Kind::Sdpa { .. } => "sdpa",
            Kind::Unary(u) => u.name(),
            Kind::LeakyRelu { .. } => "leaky_relu",
            Kind::Elu { .. } => "elu",
            Kind::Clamp { .. } => "clamp",
            Kind::Binary(b) => b.name(),
            Kind::Where => "where",
            Kind::Softmax { log: false, .. } => "softmax",
            Kind::Softmax { log: true, .. } => "log_softmax",
            Kind::Reduce { op, .. } => match op {
                Reduce::Sum => "sum",
                Reduce::Mean => "mean",
                Reduce::Max => "amax",
                Reduce::Min => "amin",
                Reduce::Prod => "prod",
            },
            Kind::Var { .. } => "var",
            Kind::ArgReduce { max: true, .. } => "argmax",
            Kind::ArgReduce { max: false, .. } => "argmin",
            Kind::Pool {
                kind: PoolKind::Max,
                ..
            } => "max_pool",
            Kind::Pool {
                kind: PoolKind::Avg,
                ..
            } => "avg_pool",
            Kind::AdaptivePool {
                kind: PoolKind::Max,
            } => "adaptive_max_pool",
            Kind::AdaptivePool {
                kind: PoolKind::Avg,
            } => "adaptive_avg_pool",
            Kind::Reshape => "reshape",
            Kind::Permute { .. } => "permute",
            Kind::Expand => "expand",
            Kind::Tile { .. } => "tile",
            Kind::Concat { .. } => "concat",
            Kind::Slice { .. } => "slice",
            Kind::Take { .. } => "take",
            Kind::Gather { .. } => "gather",
            Kind::Cast => "cast",
            Kind::Pad { .. } => "pad",
            Kind::Triangle { upper: false, .. } => "tril",
            Kind::Triangle { upper: true, .. } => "triu",
            Kind::Cumsum { .. } => "cumsum",
            Kind::Upsample { .. } => "upsample",
            Kind::Full { .. } => "full",
            Kind::Arange { .. } => "arange",
            Kind::Split { .. } => "split",
        }
    }
}

/// Producers whose fused names are spelled out, in `etpkg::ir::Op::name`'s order; any other
/// producer is named `fused+<act>`, as there.
const FUSED_PRODUCERS: &[&str] = &[
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
];

/// `<producer>+<act>` for each row of [`FUSED_PRODUCERS`] and each activation, in the order
/// relu, clamp, hardswish, hardsigmoid, silu, gelu.
const FUSED_NAMES: &[[&str; 6]] = &[
    [
        "conv+relu",
        "conv+clamp",
        "conv+hardswish",
        "conv+hardsigmoid",
        "conv+silu",
        "conv+gelu",
    ],
    [
        "conv_transpose+relu",
        "conv_transpose+clamp",
        "conv_transpose+hardswish",
        "conv_transpose+hardsigmoid",
        "conv_transpose+silu",
        "conv_transpose+gelu",
    ],
    [
        "linear+relu",
        "linear+clamp",
        "linear+hardswish",
        "linear+hardsigmoid",
        "linear+silu",
        "linear+gelu",
    ],
    [
        "matmul+relu",
        "matmul+clamp",
        "matmul+hardswish",
        "matmul+hardsigmoid",
        "matmul+silu",
        "matmul+gelu",
    ],
    [
        "addmm+relu",
        "addmm+clamp",
        "addmm+hardswish",
        "addmm+hardsigmoid",
        "addmm+silu",
        "addmm+gelu",
    ],
    [
        "batch_norm+relu",
        "batch_norm+clamp",
        "batch_norm+hardswish",
        "batch_norm+hardsigmoid",
        "batch_norm+silu",
        "batch_norm+gelu",
    ],
    [
        "layer_norm+relu",
        "layer_norm+clamp",
        "layer_norm+hardswish",
        "layer_norm+hardsigmoid",
        "layer_norm+silu",
        "layer_norm+gelu",
    ],
    [
        "add+relu",
        "add+clamp",
        "add+hardswish",
        "add+hardsigmoid",
        "add+silu",
        "add+gelu",
    ],
    [
        "sub+relu",
        "sub+clamp",
        "sub+hardswish",
        "sub+hardsigmoid",
        "sub+silu",
        "sub+gelu",
    ],
    [
        "mul+relu",
        "mul+clamp",
        "mul+hardswish",
        "mul+hardsigmoid",
        "mul+silu",
        "mul+gelu",
    ],
    [
        "fused+relu",
        "fused+clamp",
        "fused+hardswish",
        "fused+hardsigmoid",
        "fused+silu",
        "fused+gelu",
    ],
];

impl Step {
    /// The step's name for reports: the op's, with `+<act>` when an activation is fused into
    /// it, as `etpkg::ir::Op::name` names the fused op.
    pub fn name(&self) -> &'static str {
        let col = match self.act {
            Act::None => return self.kind.name(),
            Act::Relu => 0,
            Act::Clamp { .. } => 1,
            Act::Hardswish => 2,
            Act::Hardsigmoid => 3,
            Act::Silu => 4,
            Act::Gelu { .. } => 5,
        };
        let inner = self.kind.name();
        let row = FUSED_PRODUCERS
            .iter()
            .position(|p| *p == inner)
            .unwrap_or(FUSED_PRODUCERS.len() - 1);
        FUSED_NAMES[row][col]
    }
}
