//! `fold-constants`: a node whose inputs are all constants is evaluated once, by the reference
//! interpreter, and becomes a constant. Outputs larger than [`MAX_FOLDED_BYTES`] stay computed
//! so folding never bloats the program (a permuted copy of a large weight, say). Invariant: a
//! folded value holds exactly what the interpreter computes for its node, keeps its name and
//! type, and graph outputs are never folded, so a program always computes its results.

use super::{compact, Change, Pass};
use crate::interp::{self, Tensor};
use crate::ir::{ConstData, ConstId, ConstKind, Constant, Graph, ValueDef};

/// The largest node output, in bytes, that is folded into a constant.
pub const MAX_FOLDED_BYTES: usize = 1 << 20;

pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&self, g: &mut Graph) -> Vec<Change> {
        let mut changes = Vec::new();
        let mut keep = vec![true; g.nodes.len()];
        for (i, kept) in keep.iter_mut().enumerate() {
            let node = &g.nodes[i];
            let out = node.output;
            if g.outputs.contains(&out)
                || g.ty(out).byte_size() > MAX_FOLDED_BYTES
                || !node.inputs.iter().all(|&v| g.constant(v).is_some())
            {
                continue;
            }
            let args: Option<Vec<Tensor>> = node
                .inputs
                .iter()
                .map(|&v| {
                    let data = &g.constant(v).expect("checked above").data;
                    Tensor::from_le_bytes(g.ty(v), data.bytes()).ok()
                })
                .collect();
            // An op the interpreter cannot compute on these inputs (a dtype it does not
            // handle, say) is left for the kernels rather than failing the build here.
            let Some(args) = args else { continue };
            let refs: Vec<&Tensor> = args.iter().collect();
            let Ok(result) = interp::eval(&node.op, &refs, g.ty(out)) else {
                continue;
            };
            let op = node.op.name();
            let cid = ConstId(g.constants.len() as u32);
            g.constants.push(Constant {
                value: out,
                kind: ConstKind::Tensor,
                fqn: None,
                data: ConstData::Owned(result.to_le_bytes().into()),
            });
            // The value keeps its id, name and type; only its definition changes, so no reader
            // needs rewiring, and later nodes in this round already see it as a constant.
            g.values[out.index()].def = ValueDef::Const(cid);
            *kept = false;
            changes.push(Change {
                pass: self.name(),
                label: format!("{op} `{}`", g.value(out).name),
            });
        }
        if !changes.is_empty() {
            compact(g, &keep);
        }
        changes
    }
}
