//! The report stage: `report.json` for one target, saying what was built and how.
//! Invariant: the report holds no paths outside the project, no times and no host names, so
//! the same inputs give byte-identical reports on every machine.

use super::{output, Outputs, Produced, StageError};
use crate::device::Device;
use crate::manifest::{Package, Profile};
use serde::Serialize;

pub struct ReportWork {
    pub package: Package,
    pub target: String,
    pub device: Device,
    pub profile: Profile,
    /// The model source relative to the project, as the report shows it.
    pub model_source: String,
}

/// The device as keys and reports see it: everything but where its file lives, so that the
/// project's location does not change a key.
#[derive(Serialize)]
pub struct DeviceConfig<'a> {
    pub name: &'a str,
    pub triple: &'a str,
    pub features: &'a [String],
    pub std: bool,
    pub alignment: u64,
    pub regions: &'a [crate::device::MemoryRegion],
}

impl<'a> DeviceConfig<'a> {
    pub fn of(d: &'a Device) -> Self {
        DeviceConfig {
            name: &d.name,
            triple: &d.triple,
            features: &d.features,
            std: d.std,
            alignment: d.alignment,
            regions: &d.regions,
        }
    }
}

/// The version of `report.json`'s layout; readers refuse other versions.
pub const FORMAT: u32 = 3;

#[derive(Serialize)]
struct Report<'a> {
    format: u32,
    package: &'a str,
    version: &'a str,
    target: &'a str,
    device: DeviceConfig<'a>,
    profile: &'a Profile,
    model: ModelPart,
    /// What the profile's graph passes did: op counts before and after, and every rewrite.
    passes: serde_json::Value,
    /// The activation arena per memory region: planned bytes, lower bound, their ratio, the
    /// peak step and the tensors live there.
    memory: Memory,
    /// The emitted program: its size, operators, instruction count and arena sizes.
    program: serde_json::Value,
    /// Kernel selection: the objective, the kept variants and each instruction's variant with
    /// the reason and the candidates it was chosen from.
    kernels: serde_json::Value,
    /// The pipeline's stages and whether this build has them yet.
    stages: Vec<(&'static str, &'static str)>,
}

#[derive(Serialize)]
struct ModelPart {
    source: String,
    #[serde(flatten)]
    summary: serde_json::Value,
}

#[derive(Serialize)]
struct Memory {
    alignment: serde_json::Value,
    total_bytes: u64,
    regions: serde_json::Value,
}

fn json_of(outputs: &Outputs, name: &str) -> Result<serde_json::Value, StageError> {
    serde_json::from_slice(output(outputs, name)?)
        .map_err(|e| StageError::Internal(format!("stage output `{name}` does not parse: {e}")))
}

/// Dependencies, in the plan's order: import, passes, plan, emit, select.
pub fn run(w: &ReportWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let [import, passes, plan, program, selection] = deps else {
        return Err(StageError::Internal(
            "report needs its import, passes, plan, program and selection".into(),
        ));
    };
    let program = json_of(program, "program")?;
    let kernels = json_of(selection, "selection")?;
    let summary = json_of(import, "summary")?;
    let passes = json_of(passes, "passes")?;
    let plan = json_of(plan, "plan")?;
    let regions = plan["regions"].clone();
    let total_bytes = regions
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["planned_bytes"].as_u64()).sum())
        .unwrap_or(0);
    let report = Report {
        format: FORMAT,
        package: &w.package.name,
        version: &w.package.version,
        target: &w.target,
        device: DeviceConfig::of(&w.device),
        profile: &w.profile,
        model: ModelPart {
            source: w.model_source.clone(),
            summary,
        },
        passes,
        memory: Memory {
            alignment: plan["alignment"].clone(),
            total_bytes,
            regions,
        },
        program,
        kernels,
        stages: vec![
            ("import", "done"),
            ("lower", "done"),
            ("passes", "done"),
            ("plan-memory", "done"),
            ("select-kernels", "done"),
            ("emit", "done"),
            ("generate", "done"),
        ],
    };
    let mut json = serde_json::to_vec_pretty(&report).expect("report serializes");
    json.push(b'\n');
    Ok(vec![("report.json".to_string(), json)])
}
