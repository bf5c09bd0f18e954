//! Executes a graph inside a planned arena: the reference interpreter's kernels read every
//! operand from, and write every result into, the bytes the plan gives it, one buffer per
//! region. Views and in-place concatenations run no kernel, exactly as a runtime honouring the
//! plan would, so a wrong offset or a clobbered buffer shows up as a wrong output.
//!
//! Invariant: the arena starts filled with a marker byte pattern and values are read only from
//! the arena (constants from the graph), so nothing computed outside the plan can leak in.

use super::check::writes_nothing;
use super::MemoryPlan;
use crate::interp::{eval, InterpError, Tensor};
use crate::ir::{Graph, ValueId};

/// Runs `g` on `inputs` inside `plan`'s arena and returns the user outputs. The plan should
/// have passed [`super::check`]; a plan that places a value outside its arena panics.
pub fn simulate(
    g: &Graph,
    plan: &MemoryPlan,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, InterpError> {
    if inputs.len() != g.inputs.len() {
        return Err(InterpError::InputCount {
            expected: g.inputs.len(),
            actual: inputs.len(),
        });
    }
    let mut arenas: Vec<Vec<u8>> = plan
        .regions
        .iter()
        .map(|r| vec![0xA5u8; r.planned_bytes as usize])
        .collect();
    let write = |arenas: &mut Vec<Vec<u8>>, v: ValueId, t: &Tensor| {
        let p = plan.values[v.index()].as_ref().expect("a planned value");
        let bytes = t.to_le_bytes();
        let start = p.offset as usize;
        arenas[p.region][start..start + bytes.len()].copy_from_slice(&bytes);
    };
    let read = |arenas: &Vec<Vec<u8>>, v: ValueId| -> Result<Tensor, InterpError> {
        let ty = g.ty(v);
        match g.constant(v) {
            Some(c) => Tensor::from_le_bytes(ty, c.data.bytes()),
            None => {
                let p = plan.values[v.index()].as_ref().expect("a planned value");
                let start = p.offset as usize;
                Tensor::from_le_bytes(ty, &arenas[p.region][start..start + p.bytes as usize])
            }
        }
    };
    for (index, (&id, t)) in g.inputs.iter().zip(inputs).enumerate() {
        if &t.ty() != g.ty(id) {
            return Err(InterpError::InputType {
                index,
                name: g.value(id).name.clone(),
                expected: g.ty(id).clone(),
                actual: t.ty(),
            });
        }
        write(&mut arenas, id, t);
    }
    for (step, node) in g.nodes.iter().enumerate() {
        if writes_nothing(g, plan, step) {
            continue;
        }
        let args = node
            .inputs
            .iter()
            .map(|&v| read(&arenas, v))
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Tensor> = args.iter().collect();
        let expected = g.ty(node.output);
        let result = eval(&node.op, &refs, expected)?;
        if &result.ty() != expected {
            return Err(InterpError::OutputType {
                node: g.value(node.output).name.clone(),
                op: node.op.name(),
                expected: expected.clone(),
                actual: result.ty(),
            });
        }
        write(&mut arenas, node.output, &result);
    }
    g.outputs.iter().map(|&v| read(&arenas, v)).collect()
}
