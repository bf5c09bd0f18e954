//! Graph passes: labelled rewrites of an [`ir::Graph`](crate::ir::Graph) that one driver applies,
//! in a profile's order, until a whole round changes nothing. Each pass lives in its own file
//! and reports every rewrite it makes as a [`Change`]. Invariant: after every pass the graph
//! keeps the IR's invariant (nodes in execution order, each value defined once before use),
//! holds no node a pass removed, and is compacted, so equal inputs give byte-identical graphs.

mod eliminate_dead_code;
mod fold_batch_norm;
mod fold_constants;
mod fuse_activations;
pub mod legalize_aten;

pub use eliminate_dead_code::EliminateDeadCode;
pub use fold_batch_norm::FoldBatchNorm;
pub use fold_constants::FoldConstants;
pub use fuse_activations::FuseActivations;
pub use legalize_aten::legalize_aten;

use crate::ir::{ConstId, Constant, Graph, Node, NodeId, Value, ValueDef, ValueId};
use std::collections::BTreeMap;
use thiserror::Error;

/// The passes that rewrite the graph, in the order the `release` profile runs them.
pub const GRAPH_PASSES: &[&str] = &[
    "fold-batch-norm",
    "fuse-activations",
    "fold-constants",
    "eliminate-dead-code",
];

/// Rounds after which the driver gives up: every pass shrinks the graph or the number of
/// unfused activations, so a real fixed point is reached long before this.
pub const MAX_ROUNDS: usize = 32;

/// One rewrite a pass made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub pass: &'static str,
    pub label: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.pass, self.label)
    }
}

/// A rewrite of the graph. `run` applies every rewrite it finds once and returns them; an
/// empty list means the pass found nothing to do and left the graph untouched.
pub trait Pass {
    fn name(&self) -> &'static str;
    fn run(&self, g: &mut Graph) -> Vec<Change>;
}

/// What [`run_passes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Every rewrite, in the order made.
    pub changes: Vec<Change>,
    /// Rounds run, including the final one that changed nothing.
    pub rounds: usize,
    /// Nodes per op name before and after.
    pub ops_before: BTreeMap<&'static str, usize>,
    pub ops_after: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PassError {
    #[error("unknown pass `{0}`")]
    Unknown(String),
    #[error("passes did not reach a fixed point after {rounds} rounds; last change: {last}")]
    NoFixedPoint { rounds: usize, last: String },
}

/// The pass called `name`, or `None` for a name that is not a graph rewrite.
pub fn pass(name: &str) -> Option<Box<dyn Pass>> {
    Some(match name {
        "fold-batch-norm" => Box::new(FoldBatchNorm),
        "fuse-activations" => Box::new(FuseActivations),
        "fold-constants" => Box::new(FoldConstants),
        "eliminate-dead-code" => Box::new(EliminateDeadCode),
        _ => return None,
    })
}

/// Applies the passes called `names`, in order, round after round until a round changes
/// nothing. Names in [`crate::manifest::KNOWN_PASSES`] that are not graph rewrites (memory
/// planning decisions such as `alias-views`) are accepted and skipped.
pub fn run_passes(g: &mut Graph, names: &[String]) -> Result<PassReport, PassError> {
    let mut passes = Vec::new();
    for name in names {
        match pass(name) {
            Some(p) => passes.push(p),
            None if crate::manifest::KNOWN_PASSES.contains(&name.as_str()) => {}
            None => return Err(PassError::Unknown(name.clone())),
        }
    }
    drive(g, &passes)
}

/// Runs `passes` in order, round after round, until a round changes nothing.
fn drive(g: &mut Graph, passes: &[Box<dyn Pass>]) -> Result<PassReport, PassError> {
    let mut report = PassReport {
        ops_before: op_counts(g),
        ..PassReport::default()
    };
    loop {
        if report.rounds == MAX_ROUNDS {
            return Err(PassError::NoFixedPoint {
                rounds: MAX_ROUNDS,
                last: report
                    .changes
                    .last()
                    .map(Change::to_string)
                    .unwrap_or_default(),
            });
        }
        report.rounds += 1;
        let mut changed = false;
        for p in passes {
            let changes = p.run(g);
            changed |= !changes.is_empty();
            report.changes.extend(changes);
        }
        if !changed {
            break;
        }
    }
    report.ops_after = op_counts(g);
    Ok(report)
}

/// Nodes per op name.
pub fn op_counts(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for n in &g.nodes {
        *counts.entry(n.op.name()).or_insert(0) += 1;
    }
    counts
}

/// How many times each value is read: once per node operand slot, once per graph output.
pub fn use_counts(g: &Graph) -> Vec<usize> {
    let mut uses = vec![0; g.values.len()];
    for n in &g.nodes {
        for v in &n.inputs {
            uses[v.index()] += 1;
        }
    }
    for v in &g.outputs {
        uses[v.index()] += 1;
    }
    uses
}

/// The node defining `v`, if a node does.
pub fn producer(g: &Graph, v: ValueId) -> Option<NodeId> {
    match g.value(v).def {
        ValueDef::Node(n) => Some(n),
        _ => None,
    }
}

/// Replaces every read of `from` (node operands and graph outputs) by `to`. `to` must be
/// defined before the first reader of `from`, which holds when `to` is an input of `from`'s
/// producer.
pub fn replace_uses(g: &mut Graph, from: ValueId, to: ValueId) {
    for n in &mut g.nodes {
        for v in &mut n.inputs {
            if *v == from {
                *v = to;
            }
        }
    }
    for v in &mut g.outputs {
        if *v == from {
            *v = to;
        }
    }
}

/// Rebuilds `g` without the nodes whose `keep` entry is false and without the values and
/// constants nothing reads any more, renumbering what remains: user inputs first, then the
/// referenced constants in their old order, then node outputs in node order. The result
/// depends only on the graph's content, which is what makes pass output canonical.
///
/// Panics if a removed node's output is still read: that is a bug in the calling pass.
pub fn compact(g: &mut Graph, keep: &[bool]) {
    assert_eq!(keep.len(), g.nodes.len());
    let old = std::mem::take(g);
    let mut referenced = vec![false; old.values.len()];
    for (n, _) in old.nodes.iter().zip(keep).filter(|(_, k)| **k) {
        for v in &n.inputs {
            referenced[v.index()] = true;
        }
    }
    for v in &old.outputs {
        referenced[v.index()] = true;
    }

    let mut map: Vec<Option<ValueId>> = vec![None; old.values.len()];
    let mut values: Vec<Value> = Vec::new();
    let mut push = |map: &mut Vec<Option<ValueId>>, old_id: ValueId, def: ValueDef| {
        let id = ValueId(values.len() as u32);
        let v = &old.values[old_id.index()];
        values.push(Value {
            name: v.name.clone(),
            ty: v.ty.clone(),
            def,
        });
        map[old_id.index()] = Some(id);
    };
    for (i, &v) in old.inputs.iter().enumerate() {
        push(&mut map, v, ValueDef::Input(i));
    }
    let mut constants = Vec::new();
    for c in &old.constants {
        if referenced[c.value.index()] && map[c.value.index()].is_none() {
            push(
                &mut map,
                c.value,
                ValueDef::Const(ConstId(constants.len() as u32)),
            );
            constants.push(c.clone());
        }
    }
    let mut nodes = Vec::new();
    for (n, _) in old.nodes.iter().zip(keep).filter(|(_, k)| **k) {
        push(
            &mut map,
            n.output,
            ValueDef::Node(NodeId(nodes.len() as u32)),
        );
        nodes.push(n.clone());
    }
    let get = |v: ValueId| map[v.index()].expect("a removed value is still read");
    let constants = constants
        .into_iter()
        .map(|c: Constant| Constant {
            value: get(c.value),
            ..c
        })
        .collect();
    let nodes = nodes
        .into_iter()
        .map(|n: Node| Node {
            inputs: n.inputs.iter().map(|&v| get(v)).collect(),
            output: get(n.output),
            ..n
        })
        .collect();
    *g = Graph {
        values,
        nodes,
        constants,
        inputs: old.inputs.iter().map(|&v| get(v)).collect(),
        outputs: old.outputs.iter().map(|&v| get(v)).collect(),
    };
}

/// The f32 elements of a constant value, or `None` when `v` is not an f32 constant.
pub(crate) fn f32_constant(g: &Graph, v: ValueId) -> Option<Vec<f32>> {
    Some(
        f32_bytes(g, v)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// The little-endian bytes of an f32 constant whose size matches its type, without decoding
/// them (large weights are rewritten straight from these).
pub(crate) fn f32_bytes(g: &Graph, v: ValueId) -> Option<&[u8]> {
    let c = g.constant(v)?;
    if g.ty(v).dtype != crate::ir::DType::F32 {
        return None;
    }
    let bytes = c.data.bytes();
    (bytes.len() == g.ty(v).byte_size()).then_some(bytes)
}

/// Adds an f32 parameter constant holding `data` with type `ty`.
pub(crate) fn add_f32_constant(
    g: &mut Graph,
    name: String,
    ty: crate::ir::TensorType,
    data: &[f32],
) -> ValueId {
    let mut bytes = Vec::with_capacity(data.len() * 4);
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    add_bytes_constant(g, name, ty, bytes.into())
}

/// Adds a parameter constant holding `bytes` (little-endian, of type `ty`).
pub(crate) fn add_bytes_constant(
    g: &mut Graph,
    name: String,
    ty: crate::ir::TensorType,
    bytes: std::sync::Arc<[u8]>,
) -> ValueId {
    g.add_constant(
        name,
        ty,
        crate::ir::ConstKind::Parameter,
        None,
        crate::ir::ConstData::Owned(bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Op, Origin, TensorType, UnaryOp};

    /// A pass that claims a change every time, as a buggy pass that undoes another would.
    struct Restless;

    impl Pass for Restless {
        fn name(&self) -> &'static str {
            "restless"
        }

        fn run(&self, _: &mut Graph) -> Vec<Change> {
            vec![Change {
                pass: self.name(),
                label: "again".into(),
            }]
        }
    }

    fn ty() -> TensorType {
        TensorType::new(DType::F32, vec![2])
    }

    #[test]
    fn a_pass_that_never_settles_is_an_error() {
        let mut g = Graph::default();
        let err = drive(&mut g, &[Box::new(Restless)]).unwrap_err();
        assert_eq!(
            err,
            PassError::NoFixedPoint {
                rounds: MAX_ROUNDS,
                last: "restless: again".into()
            }
        );
    }

    #[test]
    fn compaction_renumbers_inputs_constants_then_nodes() {
        let mut g = Graph::default();
        let x = g.add_input("x".into(), ty());
        let a = g.add_node(
            Op::Unary(UnaryOp::Neg),
            vec![x],
            "a".into(),
            ty(),
            Origin::default(),
        );
        let c = add_f32_constant(&mut g, "c".into(), ty(), &[1.0, 2.0]);
        let unused = add_f32_constant(&mut g, "unused".into(), ty(), &[0.0, 0.0]);
        let _ = unused;
        let b = g.add_node(
            Op::Unary(UnaryOp::Abs),
            vec![a],
            "b".into(),
            ty(),
            Origin::default(),
        );
        let d = g.add_node(
            Op::Binary(crate::ir::BinaryOp::Add),
            vec![x, c],
            "d".into(),
            ty(),
            Origin::default(),
        );
        g.outputs = vec![d];
        let _ = b;
        // `a` and `b` are removed; `b` reads `a`, so both must go together.
        compact(&mut g, &[false, false, true]);
        let names: Vec<&str> = g.values.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["x", "c", "d"]);
        assert_eq!(g.constants.len(), 1);
        assert_eq!(g.constants[0].value, ValueId(1));
        assert_eq!(g.nodes[0].inputs, [ValueId(0), ValueId(1)]);
        assert_eq!(g.nodes[0].output, ValueId(2));
        assert_eq!(g.outputs, [ValueId(2)]);
        assert_eq!(g.values[2].def, ValueDef::Node(NodeId(0)));
    }
}
