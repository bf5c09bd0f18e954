//! `fold-batch-norm`: an inference batch norm right after a convolution or a linear layer
//! becomes part of that layer's weight and bias. With `s = gamma / sqrt(var + eps)`, output
//! channel `o` of the layer gets weight `w[o] · s[o]` and bias `(b[o] − mean[o]) · s[o] + beta[o]`.
//! Transposed convolutions are skipped: their output channels are not the weight's first
//! axis, and no fixture needs them folded. Invariant: a fold happens only when the layer's
//! output feeds the batch norm alone and every parameter involved is an f32 constant, so the
//! result computes the same function with new constants and the originals untouched.

use super::{add_f32_constant, compact, f32_constant, producer, use_counts, Change, Pass};
use crate::ir::{Graph, NodeId, Op, TensorType};

pub struct FoldBatchNorm;

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        "fold-batch-norm"
    }

    fn run(&self, g: &mut Graph) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut keep = vec![true; g.nodes.len()];
        let uses = use_counts(g);
        for bn in 0..g.nodes.len() {
            let Op::BatchNorm { eps } = g.nodes[bn].op else {
                continue;
            };
            let Some((label, layer)) = fold_one(g, bn, eps, &uses) else {
                continue;
            };
            // The layer's only reader was this batch norm, which now computes the layer itself.
            keep[layer.index()] = false;
            // A second batch norm reading this one's output may fold in the same round: its
            // producer is now the rewritten layer, which is exactly what it should fold into.
            changes.push(Change {
                pass: self.name(),
                label,
            });
        }
        if !changes.is_empty() {
            compact(g, &keep);
        }
        changes
    }
}

/// Folds batch norm node `bn` into its producer if allowed, rewriting `bn` into the layer with
/// folded constants; returns the change's label and the layer node, now unread.
fn fold_one(g: &mut Graph, bn: usize, eps: f64, uses: &[usize]) -> Option<(String, NodeId)> {
    let node = &g.nodes[bn];
    if node.inputs.len() != 5 {
        return None;
    }
    let y = node.inputs[0];
    let layer_id = producer(g, y)?;
    let layer = &g.nodes[layer_id.index()];
    if uses[y.index()] != 1 || g.outputs.contains(&y) {
        return None;
    }
    let out_ty = g.ty(y).clone();
    match &layer.op {
        Op::Conv(a) if !a.transposed => {}
        // A linear layer's output channel is its last axis, which is batch norm's axis 1 only
        // for `[N, M]` outputs.
        Op::Linear if out_ty.rank() == 2 => {}
        _ => return None,
    }
    let w_id = layer.inputs[1];
    let w = f32_constant(g, w_id)?;
    let channels = out_ty.shape[1];
    let b = match layer.inputs.get(2) {
        Some(&b) => f32_constant(g, b)?,
        None => vec![0.0; channels],
    };
    let params: Vec<Vec<f32>> = node.inputs[1..]
        .iter()
        .map(|&v| f32_constant(g, v).filter(|p| p.len() == channels))
        .collect::<Option<_>>()?;
    let (gamma, beta, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
    if b.len() != channels || w.is_empty() || w.len() % channels != 0 {
        return None;
    }
    // Both layouts put the output channel first in the weight: `[O, C/groups, *k]` and `[M, K]`.
    let per_channel = w.len() / channels;
    let scale: Vec<f64> = (0..channels)
        .map(|o| gamma[o] as f64 / (var[o] as f64 + eps).sqrt())
        .collect();
    let new_w: Vec<f32> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f64 * scale[i / per_channel]) as f32)
        .collect();
    let new_b: Vec<f32> = (0..channels)
        .map(|o| ((b[o] as f64 - mean[o] as f64) * scale[o] + beta[o] as f64) as f32)
        .collect();

    let layer_op = layer.op.clone();
    let x = layer.inputs[0];
    let w_name = g.value(w_id).name.clone();
    let w_ty = g.ty(w_id).clone();
    let bn_name = g.value(g.nodes[bn].output).name.clone();
    let layer_name = g.value(y).name.clone();
    let new_w_id = add_f32_constant(g, format!("{w_name}.folded"), w_ty, &new_w);
    let b_ty = TensorType::new(crate::ir::DType::F32, vec![channels]);
    let new_b_id = add_f32_constant(g, format!("{w_name}.folded_bias"), b_ty, &new_b);
    let node = &mut g.nodes[bn];
    node.op = layer_op.clone();
    node.inputs = vec![x, new_w_id, new_b_id];
    let label = format!(
        "batch_norm `{bn_name}` into {} `{layer_name}`",
        layer_op.name()
    );
    Some((label, layer_id))
}
