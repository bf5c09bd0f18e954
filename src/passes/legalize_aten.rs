//! `legalize-aten`: rewrites what ExecuTorch's stock runtime cannot run as one ATen operator:
//! every fused op becomes its producer and a separate activation, so that a profile with
//! `ops = "aten"` can emit every node as an ATen operator, and a pad that crops (a negative
//! amount, which ExecuTorch's portable `constant_pad_nd` rejects) becomes slices and a pad.
//! Invariant: the rewritten graph computes exactly what the input graph computes (a fused op is
//! defined as its producer followed by `Activation::unary`; a crop is a slice), and it holds no
//! `Op::Fused` and no negative pad.
//!
//! It is not a profile pass: the passes stage runs it once, after the profile's passes reached
//! their fixed point, when the profile asks for `ops = "aten"` (where `fuse-activations` would
//! otherwise undo it in the next round).

use super::{compact, Change};
use crate::ir::{Graph, Node, NodeId, Op, TensorType, Value, ValueDef, ValueId};

pub const NAME: &str = "legalize-aten";

/// The ops (with their result types) that replace `node`, the last one writing the node's
/// output; `None` keeps the node.
fn replacement(g: &Graph, node: &Node) -> Option<Vec<(Op, TensorType)>> {
    let out_ty = g.ty(node.output).clone();
    match &node.op {
        Op::Fused { op, act } => Some(vec![
            (op.as_ref().clone(), out_ty.clone()),
            (Op::Unary(act.unary()), out_ty),
        ]),
        // ExecuTorch's portable `constant_pad_nd` pads only: a negative amount (a crop) becomes
        // a slice first.
        Op::Pad { pads, value } if pads.iter().any(|&(b, a)| b < 0 || a < 0) => {
            let mut ty = g.ty(node.inputs[0]).clone();
            let mut ops = Vec::new();
            for (axis, &(b, a)) in pads.iter().enumerate() {
                if b >= 0 && a >= 0 {
                    continue;
                }
                let n = ty.shape[axis];
                let start = (-b).max(0) as usize;
                let end = n.saturating_sub((-a).max(0) as usize).max(start);
                ty.shape[axis] = end - start;
                ops.push((
                    Op::Slice {
                        axis,
                        start,
                        end,
                        step: 1,
                    },
                    ty.clone(),
                ));
            }
            let rest: Vec<(i64, i64)> = pads.iter().map(|&(b, a)| (b.max(0), a.max(0))).collect();
            if rest.iter().any(|&p| p != (0, 0)) {
                ops.push((
                    Op::Pad {
                        pads: rest,
                        value: *value,
                    },
                    out_ty,
                ));
            }
            Some(ops)
        }
        _ => None,
    }
}

/// Rewrites every fused op and cropping pad; returns one change per rewritten node.
pub fn legalize_aten(g: &mut Graph) -> Vec<Change> {
    let plans: Vec<Option<Vec<(Op, TensorType)>>> =
        g.nodes.iter().map(|n| replacement(g, n)).collect();
    if plans.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut changes = Vec::new();
    let old_nodes = std::mem::take(&mut g.nodes);
    for (node, plan) in old_nodes.into_iter().zip(plans) {
        let Some(ops) = plan.filter(|ops| !ops.is_empty()) else {
            let id = NodeId(g.nodes.len() as u32);
            g.values[node.output.index()].def = ValueDef::Node(id);
            g.nodes.push(node);
            continue;
        };
        let out = node.output;
        let name = g.values[out.index()].name.clone();
        changes.push(Change {
            pass: NAME,
            label: format!(
                "{} → {}",
                node.op.name(),
                ops.iter()
                    .map(|(op, _)| op.name())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        });
        // Each op but the last writes a new value; the last writes the old output, so every
        // reader of the node's output is unchanged.
        let mut inputs = node.inputs;
        let last = ops.len() - 1;
        for (k, (op, ty)) in ops.into_iter().enumerate() {
            let id = NodeId(g.nodes.len() as u32);
            let output = if k == last {
                g.values[out.index()].def = ValueDef::Node(id);
                out
            } else {
                let v = ValueId(g.values.len() as u32);
                g.values.push(Value {
                    name: format!("{name}.{k}"),
                    ty,
                    def: ValueDef::Node(id),
                });
                v
            };
            g.nodes.push(Node {
                op,
                inputs,
                output,
                origin: node.origin.clone(),
            });
            inputs = vec![output];
        }
    }
    // Renumber values into the canonical order (inputs, constants, node outputs).
    let keep = vec![true; g.nodes.len()];
    compact(g, &keep);
    changes
}
