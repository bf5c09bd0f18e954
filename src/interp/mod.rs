//! The reference interpreter: naive, obviously correct kernels over the core op set.
//! Invariant: it is the oracle; it favours clarity over speed and never trusts a pass.

mod attention;
mod binary;
mod broadcast;
mod conv;
mod erf;
mod index;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod resize;
mod select;
mod softmax;
mod tensor;
#[cfg(test)]
mod testing;
mod unary;

pub use erf::erf;
pub use tensor::{contiguous_strides, Data, Tensor};

use crate::ir::{DType, Graph, Op, TensorType, ValueDef};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InterpError {
    #[error("the reference interpreter does not compute with dtype {0}")]
    UnsupportedDType(DType),
    #[error("{ty} needs {expected} bytes, got {actual}")]
    ByteLength {
        ty: TensorType,
        expected: usize,
        actual: usize,
    },
    #[error("input {index} (`{name}`) should be {expected}, got {actual}")]
    InputType {
        index: usize,
        name: String,
        expected: TensorType,
        actual: TensorType,
    },
    #[error("the program takes {expected} inputs, got {actual}")]
    InputCount { expected: usize, actual: usize },
    #[error("`{op}` cannot run here: {reason}")]
    Unsupported { op: &'static str, reason: String },
    #[error("`{op}` got inputs that break its rules: {reason}")]
    InvalidInput { op: &'static str, reason: String },
    #[error("`{op}`: index {index} is out of range for a dimension of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: i64,
        size: usize,
    },
    #[error("`{op}`: integer division by zero")]
    DivisionByZero { op: &'static str },
    #[error("`{op}`: {reason}")]
    Arithmetic { op: &'static str, reason: String },
    #[error("`{op}` computed {actual}, but the graph records {expected}")]
    ResultType {
        op: &'static str,
        expected: TensorType,
        actual: TensorType,
    },
    #[error("node `{node}` ({op}) produced {actual}, but the graph says {expected}")]
    OutputType {
        node: String,
        op: &'static str,
        expected: TensorType,
        actual: TensorType,
    },
}

/// Evaluates one op. `out` is the type the graph records for the result.
///
/// Kernels compute the result's shape from their inputs and attributes rather than copying it
/// from `out`, so the final comparison below catches a graph whose recorded type disagrees with
/// what the op actually produces.
pub fn eval(op: &Op, inputs: &[&Tensor], out: &TensorType) -> Result<Tensor, InterpError> {
    let name = op.name();
    let result = match op {
        Op::Conv(attrs) => conv::conv(name, attrs, inputs),
        Op::Linear => matmul::linear(name, inputs),
        Op::MatMul => matmul::matmul(name, inputs),
        Op::Addmm { alpha, beta } => matmul::addmm(name, *alpha, *beta, inputs),
        Op::BatchNorm { eps } => norm::batch_norm(name, *eps, inputs),
        Op::LayerNorm { axis, eps } => norm::layer_norm(name, *axis, *eps, inputs),
        Op::GroupNorm { groups, eps } => norm::group_norm(name, *groups, *eps, inputs),
        Op::Sdpa { causal, scale } => attention::sdpa(name, *causal, *scale, inputs),
        Op::Unary(u) => unary::unary(name, *u, inputs, out.dtype),
        Op::Binary(b) => binary::binary(name, *b, inputs, out.dtype),
        Op::Where => binary::where_(name, inputs, out.dtype),
        Op::Softmax { axis, log } => softmax::softmax(name, *axis, *log, inputs),
        Op::Reduce {
            op: r,
            axes,
            keepdim,
        } => reduce::reduce(name, *r, axes, *keepdim, inputs, out.dtype),
        Op::Var {
            axes,
            correction,
            keepdim,
        } => reduce::var(name, axes, *correction, *keepdim, inputs),
        Op::ArgReduce {
            op: a,
            axis,
            keepdim,
        } => reduce::arg_reduce(name, *a, *axis, *keepdim, inputs),
        Op::Cumsum { axis } => reduce::cumsum(name, *axis, inputs, out.dtype),
        Op::Pool(attrs) => pool::pool(name, attrs, inputs),
        Op::AdaptivePool { kind, output_size } => {
            pool::adaptive_pool(name, *kind, output_size, inputs)
        }
        Op::Reshape { shape } => layout::reshape(name, shape, inputs),
        Op::Permute { perm } => layout::permute(name, perm, inputs),
        Op::Expand { shape } => layout::expand(name, shape, inputs),
        Op::Tile { repeats } => layout::tile(name, repeats, inputs),
        Op::Concat { axis } => layout::concat(name, *axis, inputs, out.dtype),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => layout::slice(name, *axis, *start, *end, *step, inputs),
        Op::Pad { pads, value } => layout::pad(name, pads, *value, inputs),
        Op::Triangle { upper, diagonal } => layout::triangle(name, *upper, *diagonal, inputs),
        Op::Take { axis } => index::take(name, *axis, inputs),
        Op::Gather { axis } => index::gather(name, *axis, inputs),
        Op::Cast { to } => one_input(name, inputs).and_then(|x| x.cast(*to)),
        Op::Upsample { mode, size } => resize::upsample(name, *mode, size, inputs),
        Op::Fused { op: inner, act } => {
            // The producer runs as it would alone, then the activation through the unary kernel,
            // so a fused op means exactly the two ops it replaced.
            eval(inner, inputs, out).and_then(|y| unary::unary(name, act.unary(), &[&y], out.dtype))
        }
    }?;
    if result.ty() != *out {
        return Err(InterpError::ResultType {
            op: name,
            expected: out.clone(),
            actual: result.ty(),
        });
    }
    Ok(result)
}

/// Checks that `inputs.len()` lies in `range` (optional inputs are trailing), so kernels can
/// index the slice without panicking.
fn input_count(
    op: &'static str,
    inputs: &[&Tensor],
    range: std::ops::RangeInclusive<usize>,
) -> Result<(), InterpError> {
    if range.contains(&inputs.len()) {
        Ok(())
    } else {
        Err(invalid(
            op,
            format!(
                "takes {}..={} inputs, got {}",
                range.start(),
                range.end(),
                inputs.len()
            ),
        ))
    }
}

/// The single input of a unary-shaped op.
fn one_input<'a>(op: &'static str, inputs: &[&'a Tensor]) -> Result<&'a Tensor, InterpError> {
    input_count(op, inputs, 1..=1)?;
    Ok(inputs[0])
}

/// The elements of an input that the op only defines for f32.
fn f32_of<'a>(op: &'static str, what: &str, t: &'a Tensor) -> Result<&'a [f32], InterpError> {
    t.as_f32().ok_or_else(|| InterpError::Unsupported {
        op,
        reason: format!("{what} is {}, only f32 is computed", t.dtype()),
    })
}

fn invalid(op: &'static str, reason: impl Into<String>) -> InterpError {
    InterpError::InvalidInput {
        op,
        reason: reason.into(),
    }
}

fn unsupported(op: &'static str, reason: impl Into<String>) -> InterpError {
    InterpError::Unsupported {
        op,
        reason: reason.into(),
    }
}

/// Runs `graph` on `inputs` (user inputs in signature order) and returns the user outputs.
/// Intermediate tensors are dropped after their last use, so peak memory stays near the
/// model's own working set.
pub fn run(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, InterpError> {
    if inputs.len() != graph.inputs.len() {
        return Err(InterpError::InputCount {
            expected: graph.inputs.len(),
            actual: inputs.len(),
        });
    }
    let mut last_use = vec![usize::MAX; graph.values.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for v in &node.inputs {
            last_use[v.index()] = i;
        }
    }
    for v in &graph.outputs {
        last_use[v.index()] = usize::MAX;
    }

    let mut slots: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    for (index, (&id, t)) in graph.inputs.iter().zip(inputs).enumerate() {
        let expected = graph.ty(id);
        if &t.ty() != expected {
            return Err(InterpError::InputType {
                index,
                name: graph.value(id).name.clone(),
                expected: expected.clone(),
                actual: t.ty(),
            });
        }
        slots[id.index()] = Some(t.clone());
    }
    for c in &graph.constants {
        let ty = graph.ty(c.value);
        slots[c.value.index()] = Some(Tensor::from_le_bytes(ty, c.data.bytes())?);
    }

    for (i, node) in graph.nodes.iter().enumerate() {
        let args: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|v| {
                slots[v.index()]
                    .as_ref()
                    .expect("graph order guarantees defined inputs")
            })
            .collect();
        let expected = graph.ty(node.output);
        let result = eval(&node.op, &args, expected)?;
        if &result.ty() != expected {
            return Err(InterpError::OutputType {
                node: graph.value(node.output).name.clone(),
                op: node.op.name(),
                expected: expected.clone(),
                actual: result.ty(),
            });
        }
        slots[node.output.index()] = Some(result);
        for v in &node.inputs {
            let id = v.index();
            if last_use[id] == i && !matches!(graph.values[id].def, ValueDef::Input(_)) {
                slots[id] = None;
            }
        }
    }
    Ok(graph
        .outputs
        .iter()
        .map(|v| slots[v.index()].clone().expect("outputs are defined"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{ConstData, ConstKind, Origin, ReduceOp, UnaryOp};
    use std::sync::Arc;

    #[test]
    fn eval_checks_the_recorded_type() {
        let x = Tensor::f32(vec![2], vec![-1.0, 2.0]);
        let relu = Op::Unary(UnaryOp::Relu);
        let y = eval(&relu, &[&x], &TensorType::new(DType::F32, vec![2])).unwrap();
        assert_eq!(y, Tensor::f32(vec![2], vec![0.0, 2.0]));
        assert!(matches!(
            eval(&relu, &[&x], &TensorType::new(DType::F32, vec![1, 2])),
            Err(InterpError::ResultType { op: "relu", .. })
        ));
        // An output dtype the interpreter does not compute with is refused, not mangled.
        assert!(eval(&relu, &[&x], &TensorType::new(DType::F16, vec![2])).is_err());
        assert!(matches!(
            eval(&relu, &[], &TensorType::new(DType::F32, vec![2])),
            Err(InterpError::InvalidInput { .. })
        ));
    }

    #[test]
    fn run_evaluates_a_graph_with_constants() {
        // y = sum(relu(x · wᵀ), axis 1) with w = [[1, -1], [2, 0]]: for x = [[1, 2], [-3, 1]],
        // x · wᵀ = [[-1, 2], [-4, -6]], relu gives [[0, 2], [0, 0]], and the sums are [2, 0].
        let mut g = crate::ir::Graph::default();
        let f32_ty = |shape: Vec<usize>| TensorType::new(DType::F32, shape);
        let x = g.add_input("x".into(), f32_ty(vec![2, 2]));
        let bytes: Vec<u8> = [1f32, -1.0, 2.0, 0.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w = g.add_constant(
            "w".into(),
            f32_ty(vec![2, 2]),
            ConstKind::Parameter,
            None,
            ConstData::Owned(Arc::from(bytes)),
        );
        let lin = g.add_node(
            Op::Linear,
            vec![x, w],
            "lin".into(),
            f32_ty(vec![2, 2]),
            Origin::default(),
        );
        let act = g.add_node(
            Op::Unary(UnaryOp::Relu),
            vec![lin],
            "act".into(),
            f32_ty(vec![2, 2]),
            Origin::default(),
        );
        let sum = g.add_node(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: vec![1],
                keepdim: false,
            },
            vec![act],
            "sum".into(),
            f32_ty(vec![2]),
            Origin::default(),
        );
        g.outputs = vec![sum, act];
        let input = Tensor::f32(vec![2, 2], vec![1.0, 2.0, -3.0, 1.0]);
        let out = run(&g, &[input]).unwrap();
        assert_eq!(out[0], Tensor::f32(vec![2], vec![2.0, 0.0]));
        assert_eq!(out[1], Tensor::f32(vec![2, 2], vec![0.0, 2.0, 0.0, 0.0]));
    }
}
