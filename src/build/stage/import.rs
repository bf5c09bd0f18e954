//! The import stage: reads the `.pt2` archive and lowers its model to the core op set.
//! Invariant: the graph it outputs comes from exactly the bytes whose digest is in the node's
//! key; a model file that changed after it was hashed is an error, never a mislabelled output.

use super::{Outputs, Produced};
use crate::cache::Digest;
use crate::ir::{serial, Backing, Graph};
use crate::manifest::InputSpec;
use crate::pt2::{self, Archive, ImportError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ImportStageError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} changed while it was being built (its digest was {expected}, it is now {actual})\n  \
         help: run the build again once the file is written",
        path.display()
    )]
    Changed {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{}: [model] inputs declares `{declared}`, but {problem}\n  help: update [model] \
         inputs to match the archive, or export the model with the declared example inputs",
        manifest.display()
    )]
    InputMismatch {
        manifest: PathBuf,
        declared: String,
        problem: String,
    },
}

/// Where the archive comes from.
pub enum ModelBytes {
    /// A file in the project, with the digest its key was computed from.
    File { path: PathBuf, digest: Digest },
    /// The export node's output (the dependency with this index in the node's inputs).
    Exported { path: PathBuf },
}

pub struct ImportWork {
    pub source: ModelBytes,
    pub model_name: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub manifest: PathBuf,
}

/// What the reports read about the model without decoding the graph.
#[derive(Serialize)]
pub struct Summary {
    pub model: String,
    /// ATen targets in the archive's graph and how often each occurs.
    pub aten_ops: BTreeMap<String, usize>,
    /// Core ops after lowering and how often each occurs.
    pub core_ops: BTreeMap<String, usize>,
    pub nodes: usize,
    pub inputs: Vec<Signature>,
    pub outputs: Vec<Signature>,
    pub constants: usize,
    pub constant_bytes: u64,
}

#[derive(Serialize)]
pub struct Signature {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

pub fn run(w: &ImportWork, deps: &[&Outputs]) -> Result<Produced, ImportStageError> {
    let (path, backing) = match &w.source {
        ModelBytes::File { path, digest } => {
            let backing = Backing::read(path).map_err(|source| ImportStageError::Read {
                path: path.clone(),
                source,
            })?;
            let actual = Digest::of(&backing);
            if actual != *digest {
                return Err(ImportStageError::Changed {
                    path: path.clone(),
                    expected: *digest,
                    actual,
                });
            }
            (path.clone(), Arc::new(backing))
        }
        ModelBytes::Exported { path } => {
            let pt2 = deps
                .first()
                .and_then(|d| d.get("pt2"))
                .expect("the plan gives an exported import its export dependency");
            (path.clone(), pt2.clone())
        }
    };
    let archive = Archive::from_shared(&path, backing)?;
    let model = match &w.model_name {
        Some(m) => m.clone(),
        None => archive.single_model()?,
    };
    let imported = pt2::import_model(&archive, &model)?;
    check_inputs(w, &imported.graph)?;
    let g = &imported.graph;
    let mut core_ops = BTreeMap::new();
    for n in &g.nodes {
        *core_ops.entry(n.op.name().to_string()).or_insert(0) += 1;
    }
    let sig = |ids: &[crate::ir::ValueId]| {
        ids.iter()
            .map(|&v| Signature {
                name: g.value(v).name.clone(),
                ty: g.ty(v).to_string(),
            })
            .collect()
    };
    let summary = Summary {
        model,
        aten_ops: imported.aten_ops.clone(),
        core_ops,
        nodes: g.nodes.len(),
        inputs: sig(&g.inputs),
        outputs: sig(&g.outputs),
        constants: g.constants.len(),
        constant_bytes: g
            .constants
            .iter()
            .map(|c| c.data.bytes().len() as u64)
            .sum(),
    };
    let summary = serde_json::to_vec_pretty(&summary).expect("summary serializes");
    Ok(vec![
        ("graph".to_string(), serial::encode(g)),
        ("summary".to_string(), summary),
    ])
}

fn check_inputs(w: &ImportWork, g: &Graph) -> Result<(), ImportStageError> {
    if w.inputs.is_empty() {
        return Ok(());
    }
    let declared = |s: &InputSpec| {
        let dims: Vec<String> = s.shape.iter().map(|d| d.to_string()).collect();
        format!("{} = {}[{}]", s.name, s.dtype, dims.join(","))
    };
    let mismatch = |s: &InputSpec, problem: String| ImportStageError::InputMismatch {
        manifest: w.manifest.clone(),
        declared: declared(s),
        problem,
    };
    if w.inputs.len() != g.inputs.len() {
        let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
        return Err(mismatch(
            &w.inputs[0],
            format!(
                "the archive's model takes {} input(s) ({}), and {} are declared",
                g.inputs.len(),
                names.join(", "),
                w.inputs.len()
            ),
        ));
    }
    for (s, &v) in w.inputs.iter().zip(&g.inputs) {
        let val = g.value(v);
        if val.name != s.name {
            return Err(mismatch(
                s,
                format!("the archive's input in that position is `{}`", val.name),
            ));
        }
        if val.ty.dtype != s.dtype || val.ty.shape != s.shape {
            return Err(mismatch(
                s,
                format!("the archive's `{}` is {}", val.name, val.ty),
            ));
        }
    }
    Ok(())
}
