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

#[derive(Serialize)]
struct Report<'a> {
    format: u32,
    package: &'a str,
    version: &'a str,
    target: &'a str,
    device: DeviceConfig<'a>,
    profile: &'a Profile,
    model: ModelPart,
    /// The pipeline's stages and whether this build has them yet.
    stages: Vec<(&'static str, &'static str)>,
}

#[derive(Serialize)]
struct ModelPart {
    source: String,
    #[serde(flatten)]
    summary: serde_json::Value,
}

pub fn run(w: &ReportWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let import = deps
        .first()
        .ok_or_else(|| StageError::Internal("report without its import".into()))?;
    let summary: serde_json::Value = serde_json::from_slice(output(import, "summary")?)
        .map_err(|e| StageError::Internal(format!("import summary does not parse: {e}")))?;
    let report = Report {
        format: 1,
        package: &w.package.name,
        version: &w.package.version,
        target: &w.target,
        device: DeviceConfig::of(&w.device),
        profile: &w.profile,
        model: ModelPart {
            source: w.model_source.clone(),
            summary,
        },
        stages: vec![
            ("import", "done"),
            ("lower", "done"),
            ("passes", "not yet implemented"),
            ("plan-memory", "not yet implemented"),
            ("select-kernels", "not yet implemented"),
            ("emit", "not yet implemented"),
            ("generate", "not yet implemented"),
        ],
    };
    let mut json = serde_json::to_vec_pretty(&report).expect("report serializes");
    json.push(b'\n');
    Ok(vec![("report.json".to_string(), json)])
}
