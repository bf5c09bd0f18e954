//! `eliminate-dead-code`: removes ops that do nothing (a reshape to the same shape, an identity
//! permute, an expand or tile that keeps the shape, a cast to the same dtype, a slice covering
//! a whole axis, a zero pad, a one-input concat), rewiring their readers to their input, then
//! removes every node no graph output depends on and every constant nothing reads. Eval-mode
//! dropout, `clone`, `detach` and `alias` already lower to nothing at import, so they need no
//! rule here. Invariant: only nodes whose output equals their first input element for element,
//! or that nothing reaches an output through, are removed.

use super::{compact, Change, Pass};
use crate::ir::{Graph, Node, Op};

pub struct EliminateDeadCode;

/// Whether `node` returns its first input unchanged, given the graph's types.
fn is_no_op(g: &Graph, node: &Node) -> bool {
    let Some(&x) = node.inputs.first() else {
        return false;
    };
    let (x_ty, y_ty) = (g.ty(x), g.ty(node.output));
    if x_ty != y_ty {
        return false;
    }
    match &node.op {
        Op::Reshape { .. } | Op::Expand { .. } | Op::Cast { .. } => true,
        Op::Permute { perm } => perm.iter().enumerate().all(|(i, &p)| i == p),
        Op::Tile { repeats } => repeats.iter().all(|&r| r == 1),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => *start == 0 && *step == 1 && x_ty.shape.get(*axis) == Some(end),
        Op::Pad { pads, .. } => pads.iter().all(|&(a, b)| a == 0 && b == 0),
        Op::Concat { .. } => node.inputs.len() == 1,
        _ => false,
    }
}

impl Pass for EliminateDeadCode {
    fn name(&self) -> &'static str {
        "eliminate-dead-code"
    }

    fn run(&self, g: &mut Graph) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut keep = vec![true; g.nodes.len()];
        for (i, kept) in keep.iter_mut().enumerate() {
            if !is_no_op(g, &g.nodes[i]) {
                continue;
            }
            let (x, y) = (g.nodes[i].inputs[0], g.nodes[i].output);
            // `x` is defined before this node, so it is defined before every reader of `y`.
            super::replace_uses(g, y, x);
            *kept = false;
            changes.push(Change {
                pass: self.name(),
                label: format!("no-op {} `{}`", g.nodes[i].op.name(), g.value(y).name),
            });
        }
        // Liveness runs backwards from the outputs: a node is live when a graph output or a
        // live node reads its result.
        let mut live = vec![false; g.values.len()];
        for v in &g.outputs {
            live[v.index()] = true;
        }
        for i in (0..g.nodes.len()).rev() {
            let node = &g.nodes[i];
            if !keep[i] {
                continue;
            }
            if live[node.output.index()] {
                for v in &node.inputs {
                    live[v.index()] = true;
                }
            } else {
                keep[i] = false;
                changes.push(Change {
                    pass: self.name(),
                    label: format!("unused {} `{}`", node.op.name(), g.value(node.output).name),
                });
            }
        }
        let referenced_constants = g.constants.iter().filter(|c| live[c.value.index()]).count();
        if referenced_constants != g.constants.len() {
            changes.push(Change {
                pass: self.name(),
                label: format!(
                    "{} unused constants",
                    g.constants.len() - referenced_constants
                ),
            });
        }
        if !changes.is_empty() {
            compact(g, &keep);
        }
        changes
    }
}
