//! The emit stage: one target's optimized, planned graph as an ExecuTorch `.pte` program.
//! Invariant: the program is a pure function of the optimized graph, the target's memory plan
//! and the profile's `ops` setting, and its allocations are exactly the plan node's.
//!
//! The plan node caches its plan as JSON for reports, which the emitter cannot read back into a
//! `MemoryPlan`; the plan is a pure function of the graph, device and options, so it is planned
//! again here and checked byte for byte against the cached one.

use super::{output, Outputs, Produced, StageError};
use crate::device::Device;
use crate::emit::{self, EmitOptions};
use crate::ir::serial;
use crate::memory::{self, PlanOptions};
use crate::pte;
use serde::Serialize;

pub struct EmitWork {
    pub device: Device,
    pub options: PlanOptions,
    pub emit: EmitOptions,
}

/// What the report says about the program.
#[derive(Serialize)]
struct Summary {
    bytes: usize,
    /// `name.overload` of every operator, in the program's order.
    operators: Vec<String>,
    instructions: usize,
    non_const_buffer_sizes: Vec<i64>,
}

/// Dependencies, in the plan's order: passes, plan.
pub fn run(w: &EmitWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let [passes, plan_node] = deps else {
        return Err(StageError::Internal(
            "emit needs its passes and plan".into(),
        ));
    };
    let graph = serial::decode(output(passes, "graph")?.clone())
        .map_err(|e| StageError::Internal(format!("cached graph does not decode: {e}")))?;
    let plan = memory::plan(&graph, &w.options, &w.device).map_err(StageError::Plan)?;
    let json = serde_json::to_vec_pretty(&plan).expect("memory plan serializes");
    if json[..] != output(plan_node, "plan")?[..] {
        return Err(StageError::Internal(
            "the memory plan planned again differs from the plan node's".into(),
        ));
    }
    let program = emit::emit(&graph, &plan, &w.emit)?;
    let bytes = pte::write(&program);
    let forward = &program.execution_plan[0];
    let summary = Summary {
        bytes: bytes.len(),
        operators: forward
            .operators
            .iter()
            .map(|o| format!("{}.{}", o.name, o.overload))
            .collect(),
        instructions: forward.chains.iter().map(|c| c.instructions.len()).sum(),
        non_const_buffer_sizes: forward.non_const_buffer_sizes.clone(),
    };
    let json = serde_json::to_vec_pretty(&summary).expect("program summary serializes");
    Ok(vec![
        ("program.pte".to_string(), bytes),
        ("program".to_string(), json),
    ])
}
