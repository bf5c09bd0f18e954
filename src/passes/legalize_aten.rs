//! `legalize-aten`: splits every fused op back into its producer and a separate activation, so
//! that a profile with `ops = "aten"` can emit every node as an ATen operator. Invariant: the
//! rewritten graph computes exactly what the fused graph computes (a fused op is defined as its
//! producer followed by `Activation::unary`), and it holds no `Op::Fused`.
//!
//! It is not a profile pass: the passes stage runs it once, after the profile's passes reached
//! their fixed point, when the profile asks for `ops = "aten"` (where `fuse-activations` would
//! otherwise undo it in the next round).

use super::{compact, Change};
use crate::ir::{Graph, Node, NodeId, Op, Origin, Value, ValueDef, ValueId};

pub const NAME: &str = "legalize-aten";

/// Splits every fused op; returns one change per split.
pub fn legalize_aten(g: &mut Graph) -> Vec<Change> {
    if !g.nodes.iter().any(|n| matches!(n.op, Op::Fused { .. })) {
        return Vec::new();
    }
    let mut changes = Vec::new();
    let old_nodes = std::mem::take(&mut g.nodes);
    for node in old_nodes {
        let Op::Fused { op, act } = node.op else {
            let id = NodeId(g.nodes.len() as u32);
            g.values[node.output.index()].def = ValueDef::Node(id);
            g.nodes.push(node);
            continue;
        };
        let out = node.output;
        let name = g.values[out.index()].name.clone();
        // The producer writes a new value; the activation reads it and writes the old one, so
        // every reader of the fused op's output is unchanged.
        let mid = ValueId(g.values.len() as u32);
        g.values.push(Value {
            name: format!("{name}.pre_act"),
            ty: g.values[out.index()].ty.clone(),
            def: ValueDef::Node(NodeId(g.nodes.len() as u32)),
        });
        changes.push(Change {
            pass: NAME,
            label: format!(
                "{} → {} + {}",
                Op::Fused {
                    op: op.clone(),
                    act
                }
                .name(),
                op.name(),
                act.unary().name()
            ),
        });
        g.nodes.push(Node {
            op: *op,
            inputs: node.inputs,
            output: mid,
            origin: node.origin.clone(),
        });
        g.values[out.index()].def = ValueDef::Node(NodeId(g.nodes.len() as u32));
        g.nodes.push(Node {
            op: Op::Unary(act.unary()),
            inputs: vec![mid],
            output: out,
            origin: Origin {
                target: node.origin.target,
                source: node.origin.source,
            },
        });
    }
    // Renumber values into the canonical order (inputs, constants, node outputs).
    let keep = vec![true; g.nodes.len()];
    compact(g, &keep);
    changes
}
