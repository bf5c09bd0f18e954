//! The passes stage: the profile's graph rewrites on the imported graph, to a fixed point.
//! Invariant: the output graph computes what the input graph computes (within the passes'
//! tolerance) and is a pure function of the input graph and the list of pass names.

use super::{output, Outputs, Produced, StageError};
use crate::ir::serial;
use crate::passes;
use serde::Serialize;
use std::collections::BTreeMap;

pub struct PassesWork {
    /// The profile's graph passes, in its order (memory-planning names are left to `plan`).
    pub passes: Vec<String>,
    /// Split fused ops after the fixed point (`ops = "aten"`): see `passes::legalize_aten`.
    pub legalize_aten: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    passes: &'a [String],
    rounds: usize,
    ops_before: &'a BTreeMap<&'static str, usize>,
    ops_after: &'a BTreeMap<&'static str, usize>,
    nodes_before: usize,
    nodes_after: usize,
    /// Every rewrite, `pass: what`, in the order made.
    changes: Vec<String>,
}

pub fn run(w: &PassesWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let import = deps
        .first()
        .ok_or_else(|| StageError::Internal("passes without their import".into()))?;
    let mut graph = serial::decode(output(import, "graph")?.clone())
        .map_err(|e| StageError::Internal(format!("cached graph does not decode: {e}")))?;
    let mut report = passes::run_passes(&mut graph, &w.passes)
        .map_err(|e| StageError::Internal(e.to_string()))?;
    if w.legalize_aten {
        report.changes.extend(passes::legalize_aten(&mut graph));
        report.ops_after = passes::op_counts(&graph);
    }
    let summary = Summary {
        passes: &w.passes,
        rounds: report.rounds,
        ops_before: &report.ops_before,
        ops_after: &report.ops_after,
        nodes_before: report.ops_before.values().sum(),
        nodes_after: report.ops_after.values().sum(),
        changes: report.changes.iter().map(|c| c.to_string()).collect(),
    };
    let json = serde_json::to_vec_pretty(&summary).expect("pass summary serializes");
    Ok(vec![
        ("graph".to_string(), serial::encode(&graph)),
        ("passes".to_string(), json),
    ])
}
