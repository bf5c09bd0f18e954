//! The kernel-selection stage: which kernel variants one target's runtime keeps, and which one
//! each instruction runs. Invariant: the selection is a pure function of the program, the
//! device's ISA features, the profile's `kernels` objective and the kernel sources etpkg embeds.

use super::{output, Outputs, Produced, StageError};
use crate::device::Device;
use crate::manifest::KernelObjective;
use crate::select;

pub struct SelectWork {
    pub device: Device,
    pub objective: KernelObjective,
}

/// Dependencies: the emit node.
pub fn run(w: &SelectWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let [program] = deps else {
        return Err(StageError::Internal("selection needs its program".into()));
    };
    let blob = output(program, "program.pte")?;
    let selection = select::select(blob, &w.device, w.objective)?;
    let json = serde_json::to_vec_pretty(&selection).expect("selection serializes");
    Ok(vec![("selection".to_string(), json)])
}
