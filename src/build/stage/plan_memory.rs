//! The memory-planning stage: the activation arena of one target's graph.
//! Invariant: the plan is a pure function of the optimized graph, the device's regions and
//! alignment, and the profile's planner options.

use super::{output, Outputs, Produced, StageError};
use crate::device::Device;
use crate::ir::serial;
use crate::memory::{self, PlanOptions};

pub struct PlanWork {
    pub device: Device,
    pub options: PlanOptions,
}

pub fn run(w: &PlanWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let passes = deps
        .first()
        .ok_or_else(|| StageError::Internal("planning without its graph".into()))?;
    let graph = serial::decode(output(passes, "graph")?.clone())
        .map_err(|e| StageError::Internal(format!("cached graph does not decode: {e}")))?;
    let plan = memory::plan(&graph, &w.options, &w.device).map_err(StageError::Plan)?;
    let json = serde_json::to_vec_pretty(&plan).expect("memory plan serializes");
    Ok(vec![("plan".to_string(), json)])
}
