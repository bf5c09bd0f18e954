//! `legalize-aten`: rewrites what ExecuTorch's stock runtime cannot run as one ATen operator:
//! every fused op becomes its producer and a separate activation, so that a profile with
//! `ops = "aten"` can emit every node as an ATen operator, a pad that crops (a negative
//! amount, which ExecuTorch's portable `constant_pad_nd` rejects) becomes slices and a pad, and
//! scaled dot-product attention becomes the ops ExecuTorch's own decomposition uses (bmm,
//! scaling, the mask, softmax, bmm) on 3-d views.
//! Invariant: the rewritten graph computes what the input graph computes — exactly for fused
//! ops (a fused op is defined as its producer followed by `Activation::unary`) and crops (a
//! slice), up to float rounding for attention — and it holds no `Op::Fused`, no negative pad
//! and no `Op::Sdpa` whose operands share their batch dims.
//!
//! It is not a profile pass: the passes stage runs it once, after the profile's passes reached
//! their fixed point, when the profile asks for `ops = "aten"` (where `fuse-activations` would
//! otherwise undo it in the next round).

use std::sync::Arc;

use super::{compact, Change};
use crate::ir::{
    BinaryOp, ConstData, ConstKind, DType, Graph, Node, NodeId, Op, Origin, TensorType, Value,
    ValueDef, ValueId,
};

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

/// The shapes of an attention node that [`decompose_sdpa`] can rewrite: q, k and v share
/// their batch dims (no broadcasting between them) and a mask has none or the same.
struct SdpaShapes {
    batch: Vec<usize>,
    n: usize,
    l: usize,
    s: usize,
    e: usize,
    ev: usize,
}

fn sdpa_shapes(g: &Graph, node: &Node) -> Option<SdpaShapes> {
    let (q, k, v) = (
        &g.ty(*node.inputs.first()?).shape,
        &g.ty(*node.inputs.get(1)?).shape,
        &g.ty(*node.inputs.get(2)?).shape,
    );
    let r = q.len();
    if r < 2 || k.len() != r || v.len() != r {
        return None;
    }
    let batch = q[..r - 2].to_vec();
    if k[..r - 2] != batch[..] || v[..r - 2] != batch[..] {
        return None;
    }
    let (l, e, s, ev) = (q[r - 2], q[r - 1], k[r - 2], v[r - 1]);
    if k[r - 1] != e || v[r - 2] != s {
        return None;
    }
    if let Some(&m) = node.inputs.get(3) {
        let ms = &g.ty(m).shape;
        let tail_ok = ms.len() >= 2 && ms[ms.len() - 2..] == [l, s];
        if !tail_ok || (ms.len() != 2 && ms[..ms.len() - 2] != batch[..]) {
            return None;
        }
    }
    let n = batch.iter().product();
    Some(SdpaShapes {
        batch,
        n,
        l,
        s,
        e,
        ev,
    })
}

/// Appends a node writing a new value (or `into`, when given); returns the value.
fn push(
    g: &mut Graph,
    op: Op,
    inputs: Vec<ValueId>,
    ty: TensorType,
    name: String,
    origin: &Origin,
    into: Option<ValueId>,
) -> ValueId {
    let id = NodeId(g.nodes.len() as u32);
    let output = match into {
        Some(v) => {
            g.values[v.index()].def = ValueDef::Node(id);
            v
        }
        None => {
            let v = ValueId(g.values.len() as u32);
            g.values.push(Value {
                name,
                ty,
                def: ValueDef::Node(id),
            });
            v
        }
    };
    g.nodes.push(Node {
        op,
        inputs,
        output,
        origin: origin.clone(),
    });
    output
}

fn f32_constant(g: &mut Graph, name: String, shape: Vec<usize>, data: &[f32]) -> ValueId {
    let bytes: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
    g.add_constant(
        name,
        TensorType::new(DType::F32, shape),
        ConstKind::Tensor,
        None,
        ConstData::Owned(Arc::from(bytes)),
    )
}

/// Appends the ops that compute attention node `node` (whose shapes are `sh`) as
/// `bmm(softmax(bmm(q, kᵀ) · scale + mask), v)` on 3-d views, writing the node's output.
fn decompose_sdpa(g: &mut Graph, node: &Node, causal: bool, scale: Option<f64>, sh: &SdpaShapes) {
    let o = &node.origin;
    let base = g.values[node.output.index()].name.clone();
    let f32t = |shape: Vec<usize>| TensorType::new(DType::F32, shape);
    let (n, l, s, e, ev) = (sh.n, sh.l, sh.s, sh.e, sh.ev);
    let rank = sh.batch.len() + 2;
    let (q, k, v) = (node.inputs[0], node.inputs[1], node.inputs[2]);
    let mut kt_shape = sh.batch.clone();
    kt_shape.extend([e, s]);
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    let q3 = push(
        g,
        Op::Reshape {
            shape: vec![n, l, e],
        },
        vec![q],
        f32t(vec![n, l, e]),
        format!("{base}.q"),
        o,
        None,
    );
    let kt = push(
        g,
        Op::Permute { perm },
        vec![k],
        f32t(kt_shape),
        format!("{base}.kt"),
        o,
        None,
    );
    let kt3 = push(
        g,
        Op::Reshape {
            shape: vec![n, e, s],
        },
        vec![kt],
        f32t(vec![n, e, s]),
        format!("{base}.kt3"),
        o,
        None,
    );
    let v3 = push(
        g,
        Op::Reshape {
            shape: vec![n, s, ev],
        },
        vec![v],
        f32t(vec![n, s, ev]),
        format!("{base}.v"),
        o,
        None,
    );
    let scores = f32t(vec![n, l, s]);
    let mut x = push(
        g,
        Op::MatMul,
        vec![q3, kt3],
        scores.clone(),
        format!("{base}.qk"),
        o,
        None,
    );
    let factor = scale.unwrap_or(1.0 / (e as f64).sqrt()) as f32;
    let c = f32_constant(g, format!("{base}.scale"), vec![], &[factor]);
    x = push(
        g,
        Op::Binary(BinaryOp::Mul),
        vec![x, c],
        scores.clone(),
        format!("{base}.scaled"),
        o,
        None,
    );
    if causal {
        // Position (i, j) may attend when j <= i: zero there, -inf above the diagonal.
        let bias: Vec<f32> = (0..l * s)
            .map(|p| {
                if p % s <= p / s {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let c = f32_constant(g, format!("{base}.causal"), vec![l, s], &bias);
        x = push(
            g,
            Op::Binary(BinaryOp::Add),
            vec![x, c],
            scores.clone(),
            format!("{base}.causal_masked"),
            o,
            None,
        );
    }
    if let Some(&m) = node.inputs.get(3) {
        let mt = g.ty(m).clone();
        let m = if mt.shape.len() > 2 {
            let ty = TensorType::new(mt.dtype, vec![n, l, s]);
            push(
                g,
                Op::Reshape {
                    shape: vec![n, l, s],
                },
                vec![m],
                ty,
                format!("{base}.mask"),
                o,
                None,
            )
        } else {
            m
        };
        x = if mt.dtype == DType::Bool {
            let c = f32_constant(g, format!("{base}.neg_inf"), vec![], &[f32::NEG_INFINITY]);
            push(
                g,
                Op::Where,
                vec![m, x, c],
                scores.clone(),
                format!("{base}.masked"),
                o,
                None,
            )
        } else {
            push(
                g,
                Op::Binary(BinaryOp::Add),
                vec![x, m],
                scores.clone(),
                format!("{base}.masked"),
                o,
                None,
            )
        };
    }
    let p = push(
        g,
        Op::Softmax {
            axis: 2,
            log: false,
        },
        vec![x],
        scores,
        format!("{base}.p"),
        o,
        None,
    );
    let y = push(
        g,
        Op::MatMul,
        vec![p, v3],
        f32t(vec![n, l, ev]),
        format!("{base}.pv"),
        o,
        None,
    );
    let out_shape = g.ty(node.output).shape.clone();
    push(
        g,
        Op::Reshape {
            shape: out_shape.clone(),
        },
        vec![y],
        f32t(out_shape),
        base,
        o,
        Some(node.output),
    );
}

/// Rewrites every fused op, cropping pad and attention node whose operands share their batch
/// dims; returns one change per rewritten node.
pub fn legalize_aten(g: &mut Graph) -> Vec<Change> {
    let plans: Vec<Option<Vec<(Op, TensorType)>>> =
        g.nodes.iter().map(|n| replacement(g, n)).collect();
    let attention: Vec<Option<SdpaShapes>> = g
        .nodes
        .iter()
        .map(|n| match n.op {
            Op::Sdpa { .. } if g.ty(n.output).dtype == DType::F32 => sdpa_shapes(g, n),
            _ => None,
        })
        .collect();
    if plans.iter().all(Option::is_none) && attention.iter().all(Option::is_none) {
        return Vec::new();
    }
    let mut changes = Vec::new();
    let old_nodes = std::mem::take(&mut g.nodes);
    for ((node, plan), sh) in old_nodes.into_iter().zip(plans).zip(attention) {
        if let (Op::Sdpa { causal, scale }, Some(sh)) = (&node.op, sh) {
            decompose_sdpa(g, &node, *causal, *scale, &sh);
            changes.push(Change {
                pass: NAME,
                label:
                    "sdpa → reshape + permute + matmul + mul + mask + softmax + matmul + reshape"
                        .to_string(),
            });
            continue;
        }
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
