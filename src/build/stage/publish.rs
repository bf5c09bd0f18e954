//! The publish stage: copies a target's outputs from the cache to `target/etpkg/<target>/`.
//! Invariant: the published directory is replaced as a whole, so it always holds one complete
//! build's outputs; a failed or killed build leaves the previous ones untouched.
//!
//! ```text
//! target/etpkg/<target>/
//!   report.json            ops, device, profile, the model's signature and the program
//!   program.pte            the ExecuTorch program (the emit stage's output)
//!   .etpkg-publish.json    the publish key and the files it wrote (the freshness stamp)
//!
//! `runtime/` joins this directory when its stage lands.

use super::{Outputs, Produced, StageError};
use crate::cache::{Digest, OutputRef};
use crate::fsio;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const STAMP: &str = ".etpkg-publish.json";

pub struct PublishWork {
    pub dir: PathBuf,
    /// Where staging directories go: beside `dir`, on the same file system, so the final
    /// rename is atomic.
    pub staging: PathBuf,
    /// (file name, index into the node's dependencies, that dependency's output name).
    pub files: Vec<(String, usize, String)>,
    /// (directory name, dependency index, output name): a bundle of files (postcard of
    /// `Vec<(relative path, bytes)>`) unpacked into that directory.
    pub bundles: Vec<(String, usize, String)>,
}

/// Whether `rel` is a plain relative path that stays inside the directory it is joined to.
fn is_contained(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Stamp {
    key: Digest,
    files: Vec<OutputRef>,
}

/// Whether `dir` holds what the publish node with `key` writes. Only sizes are checked, as
/// cargo checks only timestamps: a no-op build must not read the outputs.
pub fn is_fresh(dir: &Path, key: &Digest) -> bool {
    let Ok(bytes) = fs::read(dir.join(STAMP)) else {
        return false;
    };
    let Ok(stamp) = serde_json::from_slice::<Stamp>(&bytes) else {
        return false;
    };
    stamp.key == *key
        && stamp
            .files
            .iter()
            .all(|f| fs::metadata(dir.join(&f.name)).is_ok_and(|m| m.len() == f.bytes))
}

pub fn run(w: &PublishWork, key: &Digest, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let staged = fsio::temp_path(&w.staging, "publish");
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StageError::Write { path, source }
    };
    fs::create_dir_all(&staged).map_err(werr(&staged))?;
    let result = (|| {
        let mut files = Vec::new();
        for (name, dep, output) in &w.files {
            let bytes = deps
                .get(*dep)
                .and_then(|d| d.get(output))
                .ok_or_else(|| StageError::Internal(format!("publish lacks `{output}`")))?;
            let path = staged.join(name);
            fs::write(&path, &bytes[..]).map_err(werr(&path))?;
            files.push(OutputRef {
                name: name.clone(),
                digest: Digest::of(bytes),
                bytes: bytes.len() as u64,
            });
        }
        for (dir, dep, output) in &w.bundles {
            let bytes = deps
                .get(*dep)
                .and_then(|d| d.get(output))
                .ok_or_else(|| StageError::Internal(format!("publish lacks `{output}`")))?;
            let entries: Vec<(String, Vec<u8>)> = postcard::from_bytes(bytes)
                .map_err(|e| StageError::Internal(format!("bundle `{output}`: {e}")))?;
            for (rel, data) in entries {
                if !is_contained(&rel) {
                    return Err(StageError::Internal(format!(
                        "bundle `{output}` names a path outside its directory: {rel}"
                    )));
                }
                let name = format!("{dir}/{rel}");
                let path = staged.join(&name);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(werr(parent))?;
                }
                fs::write(&path, &data).map_err(werr(&path))?;
                files.push(OutputRef {
                    name,
                    digest: Digest::of(&data),
                    bytes: data.len() as u64,
                });
            }
        }
        let stamp = Stamp { key: *key, files };
        let path = staged.join(STAMP);
        let json = serde_json::to_vec_pretty(&stamp).expect("stamp serializes");
        fs::write(&path, json).map_err(werr(&path))?;
        fsio::replace_dir(&staged, &w.dir).map_err(werr(&w.dir))
    })();
    if result.is_err() {
        let _ = fsio::remove_path(&staged);
    }
    result.map(|()| Vec::new())
}
