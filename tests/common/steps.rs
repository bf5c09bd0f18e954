//! The step each core op decodes to, written from `etpkg::ir::Op` alone, for the suites that
//! check the emitter, the decoder and the op bindings. Invariant: independent of the emitter's
//! operator table and of the bindings; one mapping for every suite.

use etpkg::ir::{Activation, ArgOp, BinaryOp, Op, PoolKind, ReduceOp, UnaryOp, UpsampleMode};
use etpkg::rt::step::{self, Act, Ints, Kind};

fn unary(u: UnaryOp) -> Kind {
    let plain = |x| Kind::Unary(x);
    match u {
        UnaryOp::Relu => plain(step::Unary::Relu),
        UnaryOp::Sigmoid => plain(step::Unary::Sigmoid),
        UnaryOp::Tanh => plain(step::Unary::Tanh),
        UnaryOp::Exp => plain(step::Unary::Exp),
        UnaryOp::Log => plain(step::Unary::Log),
        UnaryOp::Sqrt => plain(step::Unary::Sqrt),
        UnaryOp::Rsqrt => plain(step::Unary::Rsqrt),
        UnaryOp::Neg => plain(step::Unary::Neg),
        UnaryOp::Abs => plain(step::Unary::Abs),
        UnaryOp::Erf => plain(step::Unary::Erf),
        UnaryOp::Reciprocal => plain(step::Unary::Reciprocal),
        UnaryOp::Floor => plain(step::Unary::Floor),
        UnaryOp::Ceil => plain(step::Unary::Ceil),
        UnaryOp::Round => plain(step::Unary::Round),
        UnaryOp::Sign => plain(step::Unary::Sign),
        UnaryOp::Sin => plain(step::Unary::Sin),
        UnaryOp::Cos => plain(step::Unary::Cos),
        UnaryOp::LogicalNot => plain(step::Unary::LogicalNot),
        UnaryOp::Silu => plain(step::Unary::Silu),
        UnaryOp::Hardswish => plain(step::Unary::Hardswish),
        UnaryOp::Hardsigmoid => plain(step::Unary::Hardsigmoid),
        UnaryOp::Gelu { tanh } => plain(step::Unary::Gelu { tanh }),
        UnaryOp::Clamp { min, max } => Kind::Clamp {
            min: min.unwrap_or(f64::NEG_INFINITY),
            max: max.unwrap_or(f64::INFINITY),
        },
        UnaryOp::LeakyRelu { slope } => Kind::LeakyRelu {
            slope: slope as f32,
        },
        UnaryOp::Elu { alpha } => Kind::Elu {
            alpha: alpha as f32,
        },
    }
}

fn binary(b: BinaryOp) -> step::Binary {
    use step::Binary as B;
    match b {
        BinaryOp::Add => B::Add,
        BinaryOp::Sub => B::Sub,
        BinaryOp::Mul => B::Mul,
        BinaryOp::Div => B::Div,
        BinaryOp::FloorDiv => B::FloorDiv,
        BinaryOp::TruncDiv => B::TruncDiv,
        BinaryOp::Rem => B::Rem,
        BinaryOp::Pow => B::Pow,
        BinaryOp::Maximum => B::Maximum,
        BinaryOp::Minimum => B::Minimum,
        BinaryOp::Eq => B::Eq,
        BinaryOp::Ne => B::Ne,
        BinaryOp::Lt => B::Lt,
        BinaryOp::Le => B::Le,
        BinaryOp::Gt => B::Gt,
        BinaryOp::Ge => B::Ge,
        BinaryOp::And => B::And,
        BinaryOp::Or => B::Or,
        BinaryOp::Xor => B::Xor,
    }
}

/// `[v0, v1]` with 1-d windows padded by the neutral value.
pub fn pair(v: &[usize], neutral: usize) -> [usize; 2] {
    [
        v.first().copied().unwrap_or(neutral),
        v.get(1).copied().unwrap_or(neutral),
    ]
}

fn mask(axes: &[usize]) -> u32 {
    axes.iter().fold(0, |m, &a| m | 1 << a)
}

pub fn ints(v: &[usize]) -> Ints {
    Ints::from_slice(&v.iter().map(|&x| x as i64).collect::<Vec<_>>()).unwrap()
}

/// The step kind of `op` (a fused op's producer).
pub fn kind_of(op: &Op) -> Kind {
    match op {
        Op::Conv(a) => Kind::Conv {
            spatial: a.stride.len() as u8,
            stride: pair(&a.stride, 1),
            padding: pair(&a.padding, 0),
            dilation: pair(&a.dilation, 1),
            output_padding: pair(&a.output_padding, 0),
            groups: a.groups,
            transposed: a.transposed,
        },
        Op::Linear => Kind::Linear,
        Op::MatMul => Kind::MatMul,
        Op::Addmm { alpha, beta } => Kind::Addmm {
            alpha: *alpha as f32,
            beta: *beta as f32,
        },
        Op::BatchNorm { eps } => Kind::BatchNorm { eps: *eps as f32 },
        Op::LayerNorm { axis, eps } => Kind::LayerNorm {
            axis: *axis,
            eps: *eps as f32,
        },
        Op::GroupNorm { groups, eps } => Kind::GroupNorm {
            groups: *groups,
            eps: *eps as f32,
        },
        Op::Sdpa { causal, scale } => Kind::Sdpa {
            causal: *causal,
            scale: scale.map_or(f32::NAN, |s| s as f32),
        },
        Op::Unary(u) => unary(*u),
        Op::Binary(b) => Kind::Binary(binary(*b)),
        Op::Where => Kind::Where,
        Op::Softmax { axis, log } => Kind::Softmax {
            axis: *axis,
            log: *log,
        },
        Op::Reduce { op, axes, keepdim } => Kind::Reduce {
            op: match op {
                ReduceOp::Sum => step::Reduce::Sum,
                ReduceOp::Mean => step::Reduce::Mean,
                ReduceOp::Max => step::Reduce::Max,
                ReduceOp::Min => step::Reduce::Min,
                ReduceOp::Prod => step::Reduce::Prod,
            },
            axes: mask(axes),
            keepdim: *keepdim,
        },
        Op::Var {
            axes,
            correction,
            keepdim,
        } => Kind::Var {
            axes: mask(axes),
            correction: *correction,
            keepdim: *keepdim,
        },
        Op::ArgReduce { op, axis, keepdim } => Kind::ArgReduce {
            max: *op == ArgOp::Max,
            axis: axis.map_or(-1, |a| a as i32),
            keepdim: *keepdim,
        },
        Op::Pool(p) => Kind::Pool {
            kind: match p.kind {
                PoolKind::Max => step::PoolKind::Max,
                PoolKind::Avg => step::PoolKind::Avg,
            },
            spatial: p.kernel.len() as u8,
            kernel: pair(&p.kernel, 1),
            stride: pair(&p.stride, 1),
            padding: pair(&p.padding, 0),
            dilation: pair(&p.dilation, 1),
            ceil_mode: p.ceil_mode,
            count_include_pad: p.kind == PoolKind::Avg && p.count_include_pad,
            divisor_override: p.divisor_override.unwrap_or(0),
        },
        Op::AdaptivePool { kind, .. } => Kind::AdaptivePool {
            kind: match kind {
                PoolKind::Max => step::PoolKind::Max,
                PoolKind::Avg => step::PoolKind::Avg,
            },
        },
        Op::Reshape { .. } => Kind::Reshape,
        Op::Permute { perm } => Kind::Permute { perm: ints(perm) },
        Op::Expand { .. } => Kind::Expand,
        Op::Tile { repeats } => Kind::Tile {
            repeats: ints(repeats),
        },
        Op::Concat { axis } => Kind::Concat { axis: *axis },
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => Kind::Slice {
            axis: *axis,
            start: *start,
            end: *end,
            step: *step,
        },
        Op::Take { axis } => Kind::Take { axis: *axis },
        Op::Gather { axis } => Kind::Gather { axis: *axis },
        Op::Cast { .. } => Kind::Cast,
        Op::Pad { pads, value } => {
            let mut flat = [0i32; 2 * step::MAX_RANK];
            for (i, (b, a)) in pads.iter().enumerate() {
                flat[2 * i] = i32::try_from(*b).expect("a fixture pad beyond i32");
                flat[2 * i + 1] = i32::try_from(*a).expect("a fixture pad beyond i32");
            }
            Kind::Pad {
                pads: flat,
                value: *value,
            }
        }
        Op::Triangle { upper, diagonal } => Kind::Triangle {
            upper: *upper,
            diagonal: *diagonal,
        },
        Op::Cumsum { axis } => Kind::Cumsum { axis: *axis },
        Op::Upsample { mode, .. } => match mode {
            UpsampleMode::Nearest => Kind::Upsample {
                bilinear: false,
                align_corners: false,
            },
            UpsampleMode::Bilinear { align_corners } => Kind::Upsample {
                bilinear: true,
                align_corners: *align_corners,
            },
        },
        Op::Fused { op, .. } => kind_of(op),
    }
}

/// The activation a step applies for `a`.
pub fn act_of(a: Activation) -> Act {
    match a {
        Activation::Relu => Act::Relu,
        Activation::Clamp { min, max } => Act::Clamp {
            min: min.map_or(f32::NEG_INFINITY, |v| v as f32),
            max: max.map_or(f32::INFINITY, |v| v as f32),
        },
        Activation::Hardswish => Act::Hardswish,
        Activation::Hardsigmoid => Act::Hardsigmoid,
        Activation::Silu => Act::Silu,
        Activation::Gelu { tanh } => Act::Gelu { tanh },
    }
}

/// The activation fused into `op`, or `Act::None`.
pub fn act_of_op(op: &Op) -> Act {
    match op {
        Op::Fused { act, .. } => act_of(*act),
        _ => Act::None,
    }
}
