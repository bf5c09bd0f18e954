//! The reference interpreter: naive, obviously correct kernels over the core op set.
//! Invariant: it is the oracle; it favours clarity over speed and never trusts a pass.

mod tensor;

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
    #[error("node `{node}` ({op}) produced {actual}, but the graph says {expected}")]
    OutputType {
        node: String,
        op: &'static str,
        expected: TensorType,
        actual: TensorType,
    },
}

/// Evaluates one op. `out` is the type the graph records for the result.
pub fn eval(op: &Op, inputs: &[&Tensor], out: &TensorType) -> Result<Tensor, InterpError> {
    let _ = (inputs, out);
    Err(InterpError::Unsupported {
        op: op.name(),
        reason: "not implemented yet".into(),
    })
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
