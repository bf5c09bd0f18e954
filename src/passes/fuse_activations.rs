//! `fuse-activations`: an activation (ReLU, clamp/ReLU6/hardtanh, hardswish, hardsigmoid,
//! SiLU, GELU) applied to the output of a convolution, linear layer, matmul, addmm, batch or
//! layer norm, or a float add/sub/mul becomes part of that producer as one [`Op::Fused`], which
//! a kernel applies while the result is still in registers. Invariant: a fusion happens only
//! when the producer's output is read by the activation alone, is not a graph output, and has
//! the activation's own dtype, so the fused op computes exactly what the two ops did.

use super::{compact, producer, use_counts, Change, Pass};
use crate::ir::{Activation, BinaryOp, Graph, Op};

pub struct FuseActivations;

/// Whether a kernel for `op` can apply an activation to its output.
fn can_take_activation(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv(_)
            | Op::Linear
            | Op::Addmm { .. }
            | Op::MatMul
            | Op::BatchNorm { .. }
            | Op::LayerNorm { .. }
            | Op::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul)
    )
}

impl Pass for FuseActivations {
    fn name(&self) -> &'static str {
        "fuse-activations"
    }

    fn run(&self, g: &mut Graph) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut keep = vec![true; g.nodes.len()];
        let uses = use_counts(g);
        for i in 0..g.nodes.len() {
            let Op::Unary(u) = g.nodes[i].op else {
                continue;
            };
            let Some(act) = Activation::from_unary(u) else {
                continue;
            };
            let y = g.nodes[i].inputs[0];
            let Some(p) = producer(g, y) else {
                continue;
            };
            let p = p.index();
            let out = g.nodes[i].output;
            if !can_take_activation(&g.nodes[p].op)
                || uses[y.index()] != 1
                || g.outputs.contains(&y)
                || !g.ty(y).dtype.is_float()
                || g.ty(y) != g.ty(out)
            {
                continue;
            }
            let inner = g.nodes[p].op.clone();
            let inputs = g.nodes[p].inputs.clone();
            let node = &mut g.nodes[i];
            node.op = Op::Fused {
                op: Box::new(inner),
                act,
            };
            node.inputs = inputs;
            keep[p] = false;
            changes.push(Change {
                pass: self.name(),
                label: format!(
                    "{} `{}` into {} `{}`",
                    u.name(),
                    g.value(out).name,
                    g.nodes[p].op.name(),
                    g.value(y).name
                ),
            });
        }
        if !changes.is_empty() {
            compact(g, &keep);
        }
        changes
    }
}
