//! The operator table: which ExecuTorch operator each etpkg op is emitted as, with which
//! arguments. Invariant: an op with an ATen equivalent of the same meaning uses that ATen
//! operator's out overload with ATen's argument list (`native_functions.yaml`); every other op
//! uses an `etpkg::` operator whose argument list `docs/aten-conventions.md` documents, and
//! `runtime/src/decode.rs` reads exactly these lists back.
//!
//! A fused op `producer + act` is `etpkg::<producer>_<act>` (overload `out`): the producer's own
//! argument list (without its outs), then the activation's arguments (`clamp`: min, max as
//! `Double` or `Null`; `gelu`: the approximation string; the others none).

use crate::ir::{
    Activation, ArgOp, BinaryOp, DType, Graph, Node, Op, PoolKind, ReduceOp, UnaryOp, UpsampleMode,
    ValueId,
};

/// One argument of a kernel call, before it becomes a value index.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Tensor(ValueId),
    OptTensor(Option<ValueId>),
    Null,
    Int(i64),
    Bool(bool),
    Double(f64),
    OptDouble(Option<f64>),
    Str(&'static str),
    Ints(Vec<i64>),
    TensorList(Vec<ValueId>),
    /// An already-made value index.
    Extra(i32),
}

/// An out tensor an ATen operator writes beside the node's output, which nothing reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extra {
    /// An empty tensor of the output's dtype (inference batch norm's saved statistics, which
    /// ExecuTorch's kernel leaves empty).
    Empty,
    /// A tensor of this dtype and shape that the kernel fills (max pooling's indices, layer
    /// norm's mean and rstd): written, never read, so every call's extras share one scratch
    /// area after the planned bytes.
    Scratch(DType, Vec<usize>),
}

/// One kernel call: operator, schema arguments before the outs, and the outputs beyond the
/// node's own the operator writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    pub overload: &'static str,
    pub args: Vec<Arg>,
    pub extra_outputs: Vec<Extra>,
}

fn aten(name: &str, overload: &'static str, args: Vec<Arg>) -> Call {
    Call {
        name: format!("aten::{name}"),
        overload,
        args,
        extra_outputs: Vec::new(),
    }
}

fn etpkg(name: &str, args: Vec<Arg>) -> Call {
    Call {
        name: format!("etpkg::{name}"),
        overload: "out",
        args,
        extra_outputs: Vec::new(),
    }
}

fn ints(v: &[usize]) -> Arg {
    Arg::Ints(v.iter().map(|&x| x as i64).collect())
}

/// The copy that turns an input or constant into a program output.
pub fn copy(v: ValueId) -> Call {
    aten("clone", "out", vec![Arg::Tensor(v), Arg::Null])
}

/// The call for one node. With `aten_only`, ops whose ATen operator needs an extra out (2-d
/// max pooling's indices) use it; otherwise the `etpkg::` operator without it.
pub fn call(g: &Graph, node: &Node, aten_only: bool) -> Result<Call, String> {
    let x = |i: usize| -> Result<Arg, String> {
        node.inputs
            .get(i)
            .map(|&v| Arg::Tensor(v))
            .ok_or_else(|| format!("it has no input {i}"))
    };
    let opt = |i: usize| Arg::OptTensor(node.inputs.get(i).copied());
    let rank = |i: usize| node.inputs.get(i).map_or(0, |&v| g.ty(v).shape.len());
    let out_dtype = g.ty(node.output).dtype;
    Ok(match &node.op {
        Op::Fused { op, act } => {
            let producer = match op.as_ref() {
                Op::Conv(_) => "conv",
                Op::Linear => "linear",
                Op::MatMul => "matmul",
                Op::Addmm { .. } => "addmm",
                Op::BatchNorm { .. } => "batch_norm",
                Op::LayerNorm { .. } => "layer_norm",
                Op::Binary(BinaryOp::Add) => "add",
                Op::Binary(BinaryOp::Sub) => "sub",
                Op::Binary(BinaryOp::Mul) => "mul",
                other => return Err(format!("`{}` has no fused operator", other.name())),
            };
            let inner = Node {
                op: op.as_ref().clone(),
                inputs: node.inputs.clone(),
                output: node.output,
                origin: node.origin.clone(),
            };
            let mut args = call(g, &inner, false)?.args;
            let act_name = match act {
                Activation::Relu => "relu",
                Activation::Clamp { min, max } => {
                    args.push(Arg::OptDouble(*min));
                    args.push(Arg::OptDouble(*max));
                    "clamp"
                }
                Activation::Hardswish => "hardswish",
                Activation::Hardsigmoid => "hardsigmoid",
                Activation::Silu => "silu",
                Activation::Gelu { tanh } => {
                    args.push(Arg::Str(if *tanh { "tanh" } else { "none" }));
                    "gelu"
                }
            };
            etpkg(&format!("{producer}_{act_name}"), args)
        }
        Op::Conv(a) => aten(
            "convolution",
            "out",
            vec![
                x(0)?,
                x(1)?,
                opt(2),
                ints(&a.stride),
                ints(&a.padding),
                ints(&a.dilation),
                Arg::Bool(a.transposed),
                ints(&a.output_padding),
                Arg::Int(a.groups as i64),
            ],
        ),
        Op::Linear => aten("linear", "out", vec![x(0)?, x(1)?, opt(2)]),
        // ExecuTorch's portable kernels implement mm and bmm, not matmul: the ranks where
        // matmul means exactly one of them use it.
        Op::MatMul => {
            let (a, b) = (rank(0), rank(1));
            let batch = |i: usize| node.inputs.get(i).map(|&v| g.ty(v).shape[0]);
            let name = if a == 2 && b == 2 {
                "mm"
            } else if a == 3 && b == 3 && batch(0) == batch(1) {
                "bmm"
            } else {
                "matmul"
            };
            aten(name, "out", vec![x(0)?, x(1)?])
        }
        Op::Addmm { alpha, beta } => aten(
            "addmm",
            "out",
            vec![x(0)?, x(1)?, x(2)?, Arg::Double(*beta), Arg::Double(*alpha)],
        ),
        Op::BatchNorm { eps } => Call {
            extra_outputs: vec![Extra::Empty, Extra::Empty],
            ..aten(
                "_native_batch_norm_legit_no_training",
                "out",
                vec![
                    x(0)?,
                    x(1)?,
                    x(2)?,
                    x(3)?,
                    x(4)?,
                    // Momentum: unused at inference, ATen's default.
                    Arg::Double(0.1),
                    Arg::Double(*eps),
                ],
            )
        },
        Op::LayerNorm { axis, eps } => {
            let shape = &g.ty(node.inputs[0]).shape;
            let normalized = shape.get(*axis..).unwrap_or(&[]);
            let args = vec![x(0)?, ints(normalized), opt(1), opt(2), Arg::Double(*eps)];
            if aten_only {
                // ATen's layer norm also writes mean and rstd, of the input's shape with the
                // normalized dims set to 1.
                let mut stats = shape.clone();
                for d in stats.iter_mut().skip(*axis) {
                    *d = 1;
                }
                let dtype = g.ty(node.output).dtype;
                Call {
                    extra_outputs: vec![
                        Extra::Scratch(dtype, stats.clone()),
                        Extra::Scratch(dtype, stats),
                    ],
                    ..aten("native_layer_norm", "out", args)
                }
            } else {
                etpkg("layer_norm", args)
            }
        }
        Op::GroupNorm { groups, eps } if aten_only => {
            // ATen's group norm takes the input's sizes flattened to N, C, HxW and also writes
            // mean and rstd of shape [N, groups].
            let shape = &g.ty(node.inputs[0]).shape;
            let n = shape.first().copied().unwrap_or(1);
            let c = shape.get(1).copied().unwrap_or(1);
            let hw: usize = shape.iter().skip(2).product();
            let dtype = g.ty(node.output).dtype;
            Call {
                extra_outputs: vec![
                    Extra::Scratch(dtype, vec![n, *groups]),
                    Extra::Scratch(dtype, vec![n, *groups]),
                ],
                ..aten(
                    "native_group_norm",
                    "out",
                    vec![
                        x(0)?,
                        opt(1),
                        opt(2),
                        Arg::Int(n as i64),
                        Arg::Int(c as i64),
                        Arg::Int(hw as i64),
                        Arg::Int(*groups as i64),
                        Arg::Double(*eps),
                    ],
                )
            }
        }
        Op::GroupNorm { groups, eps } => etpkg(
            "group_norm",
            vec![
                x(0)?,
                opt(1),
                opt(2),
                Arg::Int(*groups as i64),
                Arg::Double(*eps),
            ],
        ),
        Op::Sdpa { causal, scale } => etpkg(
            "sdpa",
            vec![
                x(0)?,
                x(1)?,
                x(2)?,
                opt(3),
                Arg::Bool(*causal),
                Arg::OptDouble(*scale),
            ],
        ),
        Op::Unary(u) => unary(*u, x(0)?),
        Op::Binary(b) => {
            let (a, c) = (x(0)?, x(1)?);
            let alpha = Arg::Int(1);
            match b {
                BinaryOp::Add => aten("add", "out", vec![a, c, alpha]),
                BinaryOp::Sub => aten("sub", "out", vec![a, c, alpha]),
                BinaryOp::Mul => aten("mul", "out", vec![a, c]),
                BinaryOp::Div => aten("div", "out", vec![a, c]),
                BinaryOp::FloorDiv => aten("div", "out_mode", vec![a, c, Arg::Str("floor")]),
                BinaryOp::TruncDiv => aten("div", "out_mode", vec![a, c, Arg::Str("trunc")]),
                BinaryOp::Rem => aten("remainder", "Tensor_out", vec![a, c]),
                BinaryOp::Pow => aten("pow", "Tensor_Tensor_out", vec![a, c]),
                BinaryOp::Maximum => aten("maximum", "out", vec![a, c]),
                BinaryOp::Minimum => aten("minimum", "out", vec![a, c]),
                BinaryOp::Eq => aten("eq", "Tensor_out", vec![a, c]),
                BinaryOp::Ne => aten("ne", "Tensor_out", vec![a, c]),
                BinaryOp::Lt => aten("lt", "Tensor_out", vec![a, c]),
                BinaryOp::Le => aten("le", "Tensor_out", vec![a, c]),
                BinaryOp::Gt => aten("gt", "Tensor_out", vec![a, c]),
                BinaryOp::Ge => aten("ge", "Tensor_out", vec![a, c]),
                // etpkg's and/or/xor are logical for a bool result and bitwise otherwise:
                // ATen's logical_* and bitwise_* respectively.
                BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => {
                    let base = match b {
                        BinaryOp::And => "and",
                        BinaryOp::Or => "or",
                        _ => "xor",
                    };
                    if out_dtype == DType::Bool {
                        aten(&format!("logical_{base}"), "out", vec![a, c])
                    } else {
                        aten(&format!("bitwise_{base}"), "Tensor_out", vec![a, c])
                    }
                }
            }
        }
        Op::Where => aten("where", "self_out", vec![x(0)?, x(1)?, x(2)?]),
        Op::Softmax { axis, log } => aten(
            if *log { "_log_softmax" } else { "_softmax" },
            "out",
            vec![x(0)?, Arg::Int(*axis as i64), Arg::Bool(false)],
        ),
        Op::Reduce { op, axes, keepdim } => {
            let dims = ints(axes);
            let k = Arg::Bool(*keepdim);
            match op {
                ReduceOp::Sum => aten("sum", "IntList_out", vec![x(0)?, dims, k, Arg::Null]),
                ReduceOp::Mean => aten("mean", "out", vec![x(0)?, dims, k, Arg::Null]),
                ReduceOp::Max => aten("amax", "out", vec![x(0)?, dims, k]),
                ReduceOp::Min => aten("amin", "out", vec![x(0)?, dims, k]),
                // ATen's prod reduces one dim at a time.
                ReduceOp::Prod => etpkg("prod", vec![x(0)?, dims, k]),
            }
        }
        Op::Var {
            axes,
            correction,
            keepdim,
        } => aten(
            "var",
            "correction_out",
            vec![
                x(0)?,
                if axes.is_empty() {
                    Arg::Null
                } else {
                    ints(axes)
                },
                Arg::Double(*correction),
                Arg::Bool(*keepdim),
            ],
        ),
        Op::ArgReduce { op, axis, keepdim } => aten(
            match op {
                ArgOp::Max => "argmax",
                ArgOp::Min => "argmin",
            },
            "out",
            vec![
                x(0)?,
                axis.map_or(Arg::Null, |a| Arg::Int(a as i64)),
                Arg::Bool(*keepdim),
            ],
        ),
        Op::Pool(p) => match p.kind {
            PoolKind::Max if aten_only && p.kernel.len() == 2 => Call {
                extra_outputs: vec![Extra::Scratch(DType::I64, g.ty(node.output).shape.clone())],
                ..aten(
                    "max_pool2d_with_indices",
                    "out",
                    vec![
                        x(0)?,
                        ints(&p.kernel),
                        ints(&p.stride),
                        ints(&p.padding),
                        ints(&p.dilation),
                        Arg::Bool(p.ceil_mode),
                    ],
                )
            },
            // ATen's max pool writes indices too, which cost memory etpkg's kernels do not need.
            PoolKind::Max => etpkg(
                "max_pool",
                vec![
                    x(0)?,
                    ints(&p.kernel),
                    ints(&p.stride),
                    ints(&p.padding),
                    ints(&p.dilation),
                    Arg::Bool(p.ceil_mode),
                ],
            ),
            PoolKind::Avg => {
                if p.dilation.iter().any(|&d| d != 1) {
                    return Err("average pooling with dilation has no operator".into());
                }
                let args = vec![
                    x(0)?,
                    ints(&p.kernel),
                    ints(&p.stride),
                    ints(&p.padding),
                    Arg::Bool(p.ceil_mode),
                    Arg::Bool(p.count_include_pad),
                    p.divisor_override.map_or(Arg::Null, |d| Arg::Int(d as i64)),
                ];
                if p.kernel.len() == 2 {
                    aten("avg_pool2d", "out", args)
                } else {
                    etpkg("avg_pool1d", args)
                }
            }
        },
        Op::AdaptivePool { kind, output_size } => match kind {
            PoolKind::Avg if output_size.len() == 2 => aten(
                "_adaptive_avg_pool2d",
                "out",
                vec![x(0)?, ints(output_size)],
            ),
            PoolKind::Avg => etpkg("adaptive_avg_pool", vec![x(0)?, ints(output_size)]),
            PoolKind::Max => etpkg("adaptive_max_pool", vec![x(0)?, ints(output_size)]),
        },
        Op::Reshape { shape } => aten("view_copy", "out", vec![x(0)?, ints(shape)]),
        Op::Permute { perm } => aten("permute_copy", "out", vec![x(0)?, ints(perm)]),
        Op::Expand { shape } => aten(
            "expand_copy",
            "out",
            vec![x(0)?, ints(shape), Arg::Bool(false)],
        ),
        Op::Tile { repeats } => aten("repeat", "out", vec![x(0)?, ints(repeats)]),
        Op::Concat { axis } => aten(
            "cat",
            "out",
            vec![Arg::TensorList(node.inputs.clone()), Arg::Int(*axis as i64)],
        ),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => aten(
            "slice_copy",
            "Tensor_out",
            vec![
                x(0)?,
                Arg::Int(*axis as i64),
                Arg::Int(*start as i64),
                Arg::Int(*end as i64),
                Arg::Int(*step as i64),
            ],
        ),
        // index_select and embedding reject negative indices, where etpkg's take counts from
        // the end; on the indices both accept they agree, which is every index a model that
        // PyTorch ran produced.
        Op::Take { axis } if rank(1) == 1 => aten(
            "index_select",
            "out",
            vec![x(0)?, Arg::Int(*axis as i64), x(1)?],
        ),
        Op::Take { axis: 0 } if rank(0) == 2 => aten(
            "embedding",
            "out",
            vec![
                x(0)?,
                x(1)?,
                Arg::Int(-1),
                Arg::Bool(false),
                Arg::Bool(false),
            ],
        ),
        Op::Take { axis } => etpkg("take", vec![x(0)?, Arg::Int(*axis as i64), x(1)?]),
        Op::Gather { axis } => aten(
            "gather",
            "out",
            vec![x(0)?, Arg::Int(*axis as i64), x(1)?, Arg::Bool(false)],
        ),
        Op::Cast { .. } => aten("_to_copy", "out", vec![x(0)?, Arg::Bool(false), Arg::Null]),
        Op::Pad { pads, value } => {
            // ATen lists (before, after) from the last dim backwards, and only as far as the
            // first padded dim (ExecuTorch's kernel pads at most the input's last dims).
            let used = pads
                .iter()
                .position(|&p| p != (0, 0))
                .map_or(0, |first| pads.len() - first);
            let mut flat = Vec::with_capacity(used * 2);
            for &(b, a) in pads.iter().rev().take(used) {
                flat.push(b);
                flat.push(a);
            }
            aten(
                "constant_pad_nd",
                "out",
                vec![x(0)?, Arg::Ints(flat), Arg::Double(*value)],
            )
        }
        Op::Triangle { upper, diagonal } => aten(
            if *upper { "triu" } else { "tril" },
            "out",
            vec![x(0)?, Arg::Int(*diagonal)],
        ),
        Op::Cumsum { axis } => aten(
            "cumsum",
            "out",
            vec![x(0)?, Arg::Int(*axis as i64), Arg::Null],
        ),
        // The 2-d resamplers use ATen's `.vec_out` overloads (output size, no scale factors),
        // the ones ExecuTorch's portable kernels implement.
        Op::Upsample { mode, size } => {
            let two = size.len() == 2;
            match (mode, two) {
                (UpsampleMode::Nearest, true) => aten(
                    "upsample_nearest2d",
                    "vec_out",
                    vec![x(0)?, ints(size), Arg::Null],
                ),
                (UpsampleMode::Nearest, false) => aten(
                    "upsample_nearest1d",
                    "out",
                    vec![x(0)?, ints(size), Arg::Null],
                ),
                (UpsampleMode::Bilinear { align_corners }, true) => aten(
                    "upsample_bilinear2d",
                    "vec_out",
                    vec![x(0)?, ints(size), Arg::Bool(*align_corners), Arg::Null],
                ),
                (UpsampleMode::Bilinear { align_corners }, false) => aten(
                    "upsample_linear1d",
                    "out",
                    vec![x(0)?, ints(size), Arg::Bool(*align_corners), Arg::Null],
                ),
            }
        }
    })
}

fn unary(u: UnaryOp, x: Arg) -> Call {
    let plain = |name: &str| aten(name, "out", vec![x.clone()]);
    match u {
        UnaryOp::Relu => plain("relu"),
        UnaryOp::Sigmoid => plain("sigmoid"),
        UnaryOp::Tanh => plain("tanh"),
        UnaryOp::Exp => plain("exp"),
        UnaryOp::Log => plain("log"),
        UnaryOp::Sqrt => plain("sqrt"),
        UnaryOp::Rsqrt => plain("rsqrt"),
        UnaryOp::Neg => plain("neg"),
        UnaryOp::Abs => plain("abs"),
        UnaryOp::Erf => plain("erf"),
        UnaryOp::Reciprocal => plain("reciprocal"),
        UnaryOp::Floor => plain("floor"),
        UnaryOp::Ceil => plain("ceil"),
        UnaryOp::Round => plain("round"),
        UnaryOp::Sign => plain("sign"),
        UnaryOp::Sin => plain("sin"),
        UnaryOp::Cos => plain("cos"),
        UnaryOp::LogicalNot => plain("logical_not"),
        UnaryOp::Silu => plain("silu"),
        UnaryOp::Hardswish => plain("hardswish"),
        UnaryOp::Hardsigmoid => plain("hardsigmoid"),
        UnaryOp::Gelu { tanh } => aten(
            "gelu",
            "out",
            vec![x, Arg::Str(if tanh { "tanh" } else { "none" })],
        ),
        UnaryOp::Clamp { min, max } => aten(
            "clamp",
            "out",
            vec![x, Arg::OptDouble(min), Arg::OptDouble(max)],
        ),
        UnaryOp::LeakyRelu { slope } => aten("leaky_relu", "out", vec![x, Arg::Double(slope)]),
        UnaryOp::Elu { alpha } => aten(
            "elu",
            "out",
            vec![x, Arg::Double(alpha), Arg::Int(1), Arg::Int(1)],
        ),
    }
}
