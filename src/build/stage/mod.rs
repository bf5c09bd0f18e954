//! The build's stages, one per file. Invariant: a stage is a pure function of what its node
//! key covers: it reads only its inputs (dependency outputs and the files its key hashes) and
//! returns named output bytes; the scheduler does all caching and publishing.

pub mod emit;
pub mod export;
pub mod generate;
pub mod import;
pub mod passes;
pub mod plan_memory;
pub mod publish;
pub mod report;
pub mod select;

use crate::cache::CacheError;
use crate::ir::Backing;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Which stage a node runs. The order is the pipeline's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    Export,
    Import,
    Passes,
    Plan,
    Emit,
    Select,
    Generate,
    Report,
    Publish,
}

impl StageKind {
    /// Every stage, in pipeline order.
    pub const ALL: [StageKind; 9] = [
        StageKind::Export,
        StageKind::Import,
        StageKind::Passes,
        StageKind::Plan,
        StageKind::Emit,
        StageKind::Select,
        StageKind::Generate,
        StageKind::Report,
        StageKind::Publish,
    ];

    /// The stage called `name` (as events spell it).
    pub fn from_name(name: &str) -> Option<StageKind> {
        StageKind::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            StageKind::Export => "export",
            StageKind::Import => "import",
            StageKind::Passes => "passes",
            StageKind::Plan => "plan",
            StageKind::Emit => "emit",
            StageKind::Select => "select",
            StageKind::Generate => "generate",
            StageKind::Report => "report",
            StageKind::Publish => "publish",
        }
    }

    /// The verb of the status line printed when a node of this stage starts, cargo style.
    pub fn verb(self) -> &'static str {
        match self {
            StageKind::Export => "Exporting",
            StageKind::Import => "Importing",
            StageKind::Passes => "Optimizing",
            StageKind::Plan => "Planning",
            StageKind::Emit => "Emitting",
            StageKind::Select => "Selecting",
            StageKind::Generate => "Generating",
            StageKind::Report => "Reporting",
            StageKind::Publish => "Publishing",
        }
    }

    /// Bumped whenever the stage's output for the same inputs changes.
    pub fn version(self) -> u32 {
        match self {
            StageKind::Export => 1,
            StageKind::Import => 1,
            StageKind::Passes => 2,
            StageKind::Plan => 1,
            StageKind::Emit => 1,
            StageKind::Select => 1,
            StageKind::Generate => 1,
            StageKind::Report => 4,
            StageKind::Publish => 1,
        }
    }
}

/// The outputs of a dependency, by output name.
pub type Outputs = BTreeMap<String, Arc<Backing>>;

/// What a stage returns: named output bytes.
pub type Produced = Vec<(String, Vec<u8>)>;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Export(#[from] export::ExportError),
    #[error(transparent)]
    Import(#[from] import::ImportStageError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Plan(crate::memory::PlanError),
    #[error(transparent)]
    Emit(#[from] crate::emit::EmitError),
    #[error(transparent)]
    Select(#[from] crate::select::SelectError),
    #[error(transparent)]
    Generate(#[from] crate::generate::GenerateError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// Looks up a dependency output that the plan guarantees exists.
pub fn output<'a>(outputs: &'a Outputs, name: &str) -> Result<&'a Arc<Backing>, StageError> {
    outputs
        .get(name)
        .ok_or_else(|| StageError::Internal(format!("missing stage output `{name}`")))
}
