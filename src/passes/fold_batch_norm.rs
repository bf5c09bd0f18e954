//! `fold-batch-norm`: an inference batch norm right after a convolution or a linear layer
//! becomes part of that layer's weight and bias. With `s = gamma / sqrt(var + eps)`, output
//! channel `o` of the layer gets weight `w[o] · s[o]` and bias `(b[o] − mean[o]) · s[o] + beta[o]`.
//! Transposed convolutions fold too, with their weight's `[C_in, C_out/groups, *k]` layout.
//! Invariant: a fold happens only when the layer's
//! output feeds the batch norm alone and every parameter involved is an f32 constant, so the
//! result computes the same function with new constants and the originals untouched.

use super::{
    add_bytes_constant, add_f32_constant, compact, f32_bytes, f32_constant, producer, use_counts,
    Change, Pass,
};
use crate::ir::{Activation, Graph, NodeId, Op, TensorType};

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
            // A batch norm that already absorbed its activation (when a profile fuses before it
            // folds) still folds; the layer then takes over the activation.
            let (eps, act) = match &g.nodes[bn].op {
                Op::BatchNorm { eps } => (*eps, None),
                Op::Fused { op, act } => match **op {
                    Op::BatchNorm { eps } => (eps, Some(*act)),
                    _ => continue,
                },
                _ => continue,
            };
            let Some((label, layer)) = fold_one(g, bn, eps, act, &uses) else {
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
fn fold_one(
    g: &mut Graph,
    bn: usize,
    eps: f64,
    act: Option<Activation>,
    uses: &[usize],
) -> Option<(String, NodeId)> {
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
    let groups = match &layer.op {
        Op::Conv(a) => a.transposed.then_some(a.groups),
        // A linear layer's output channel is its last axis, which is batch norm's axis 1 only
        // for `[N, M]` outputs.
        Op::Linear if out_ty.rank() == 2 => None,
        _ => return None,
    };
    let w_id = layer.inputs[1];
    let w = f32_bytes(g, w_id)?;
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
    if b.len() != channels || w.is_empty() || !(w.len() / 4).is_multiple_of(channels) {
        return None;
    }
    let scale: Vec<f64> = (0..channels)
        .map(|o| gamma[o] as f64 / (var[o] as f64 + eps).sqrt())
        .collect();
    let w_shape = &g.ty(w_id).shape;
    let (run, channel_of) = output_channel(w_shape, channels, groups)?;
    let run_bytes = run * 4;
    if run == 0 || !w.len().is_multiple_of(run_bytes) {
        return None;
    }
    // The weight is a sequence of runs of `run` elements that feed one channel each, so the
    // channel is found once per run rather than by a division per element. It is rewritten
    // byte to byte into the constant's final buffer: a 14 MB weight is neither decoded into a
    // vector nor copied after scaling.
    let mut new_w = std::sync::Arc::<[u8]>::new_uninit_slice(w.len());
    let dst = std::sync::Arc::get_mut(&mut new_w).expect("a new Arc is unique");
    for (r, (src, out)) in w
        .chunks_exact(run_bytes)
        .zip(dst.chunks_exact_mut(run_bytes))
        .enumerate()
    {
        let s = scale[channel_of(r)];
        for (b, o) in src.chunks_exact(4).zip(out.chunks_exact_mut(4)) {
            let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            for (d, x) in o.iter_mut().zip(((v as f64 * s) as f32).to_le_bytes()) {
                d.write(x);
            }
        }
    }
    // SAFETY: `w.len()` is a multiple of `run_bytes` (checked above), so the exact chunks of
    // source and destination cover every byte and each was written.
    let new_w = unsafe { new_w.assume_init() };
    let new_b: Vec<f32> = (0..channels)
        .map(|o| ((b[o] as f64 - mean[o] as f64) * scale[o] + beta[o] as f64) as f32)
        .collect();

    let layer_op = layer.op.clone();
    let x = layer.inputs[0];
    let w_name = g.value(w_id).name.clone();
    let w_ty = g.ty(w_id).clone();
    let bn_name = g.value(g.nodes[bn].output).name.clone();
    let layer_name = g.value(y).name.clone();
    let new_w_id = add_bytes_constant(g, format!("{w_name}.folded"), w_ty, new_w);
    let b_ty = TensorType::new(crate::ir::DType::F32, vec![channels]);
    let new_b_id = add_f32_constant(g, format!("{w_name}.folded_bias"), b_ty, &new_b);
    let node = &mut g.nodes[bn];
    node.op = match act {
        Some(act) => Op::Fused {
            op: Box::new(layer_op.clone()),
            act,
        },
        None => layer_op.clone(),
    };
    node.inputs = vec![x, new_w_id, new_b_id];
    let label = format!(
        "batch_norm `{bn_name}` into {} `{layer_name}`",
        layer_op.name()
    );
    Some((label, layer_id))
}

/// Splits the flat weight into runs of equal length that each feed one output channel, and
/// maps a run's index to that channel; `None` if the weight's shape does not fit `channels`
/// outputs. `transposed_groups` is the group count of a transposed convolution, `None` for
/// layouts that put the output channel first (`[O, C/groups, *k]` for a convolution, `[M, K]`
/// for a linear layer).
fn output_channel(
    w_shape: &[usize],
    channels: usize,
    transposed_groups: Option<usize>,
) -> Option<(usize, impl Fn(usize) -> usize)> {
    let numel: usize = w_shape.iter().product();
    if w_shape.len() < 2 || numel == 0 {
        return None;
    }
    let (per_row, rows_per_group, outs_per_group) = match transposed_groups {
        None => {
            if w_shape[0] != channels {
                return None;
            }
            // Treated as one group whose rows are the output channels themselves.
            (numel / channels, 1, 1)
        }
        Some(groups) => {
            // `[C_in, C_out/groups, *k]`: input row `ci` belongs to group `ci / (C_in/groups)`
            // and its column `j` feeds output channel `group · C_out/groups + j`.
            if groups == 0 || !w_shape[0].is_multiple_of(groups) || w_shape[1] * groups != channels
            {
                return None;
            }
            (numel / w_shape[0], w_shape[0] / groups, w_shape[1])
        }
    };
    let spatial = numel / (w_shape[0] * w_shape[1]);
    let cols = w_shape[1];
    let transposed = transposed_groups.is_some();
    // Transposed, a run is one kernel window: `spatial` elements at (row, col) of
    // `[C_in, C_out/groups]`. Otherwise a run is one output channel's whole row.
    let run = if transposed { spatial } else { per_row };
    Some((run, move |r: usize| {
        if transposed {
            let (row, col) = (r / cols, r % cols);
            (row / rows_per_group) * outs_per_group + col
        } else {
            r
        }
    }))
}
