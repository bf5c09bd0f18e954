//! The project commands: `build`, `graph`, `clean`, `init`, `targets`. Invariant: each is a
//! thin layer that finds the manifest and calls `crate::build`, `crate::cache` or
//! `crate::device`; none of them prints.

use crate::build::event::EventSink;
use crate::build::{self, BuildError, BuildOptions, Layout, Outcome};
use crate::cache::{self, CacheError};
use crate::device::{self, Device};
use crate::fsio::{self, FileLock, LockKind};
use crate::manifest::{self, Manifest, ManifestError};
use std::fs;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "ExecuTorch.toml";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(
        "could not find `{MANIFEST}` in `{}` or any parent directory\n  help: run `etpkg init` \
         to create a project, or pass `--manifest-path`",
        start.display()
    )]
    NoManifest { start: PathBuf },
    /// Already rendered in full, `error:` prefix included.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("`{}` already exists\n  help: `etpkg init` does not overwrite a project; edit the existing manifest instead", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Device(String),
    #[error(
        "no build of target `{target}` at {}\n  help: run `etpkg build --target {target}` first",
        path.display()
    )]
    NotBuilt { target: String, path: PathBuf },
    #[error("{} is not a report etpkg wrote: {reason}", path.display())]
    BadReport { path: PathBuf, reason: String },
}

/// The manifest to use: `--manifest-path` if given, else `ExecuTorch.toml` in `cwd` or the
/// nearest parent directory, as cargo finds `Cargo.toml`.
pub fn find_manifest(given: Option<&Path>, cwd: &Path) -> Result<PathBuf, ProjectError> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let candidate = d.join(MANIFEST);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(ProjectError::NoManifest {
        start: cwd.to_path_buf(),
    })
}

pub fn load(manifest_path: &Path) -> Result<Manifest, ProjectError> {
    Ok(manifest::load(manifest_path)?)
}

pub fn build(
    manifest: &Manifest,
    opts: &BuildOptions,
    sink: &mut dyn EventSink,
) -> Result<Outcome, ProjectError> {
    Ok(build::build(manifest, opts, sink)?)
}

pub fn graph(manifest: &Manifest, opts: &BuildOptions) -> Result<String, ProjectError> {
    Ok(build::graph(manifest, opts)?)
}

/// What `clean` removed.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub files: u64,
    pub bytes: u64,
}

/// Removes the project's published outputs (all of them, or the named targets'), and with
/// `cache` the object store too. Waits for a running build of the project to finish first.
pub fn clean(
    manifest: &Manifest,
    targets: &[String],
    cache: bool,
    cache_dir: Option<&Path>,
    on_wait: &mut dyn FnMut(&str),
) -> Result<Cleaned, ProjectError> {
    let layout = Layout::new(&manifest.root, cache_dir);
    let mut cleaned = Cleaned::default();
    if layout.out.exists() {
        let lock_path = layout.lock();
        let _lock = FileLock::acquire(&lock_path, LockKind::Exclusive, || {
            on_wait("waiting for file lock on build directory")
        })
        .map_err(|source| ProjectError::Io {
            path: lock_path.clone(),
            source,
        })?;
        let doomed: Vec<PathBuf> = if targets.is_empty() {
            fs::read_dir(&layout.out)
                .map_err(|source| ProjectError::Io {
                    path: layout.out.clone(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p != &lock_path)
                .collect()
        } else {
            targets.iter().map(|t| layout.published(t)).collect()
        };
        for p in doomed {
            count(&p, &mut cleaned);
            fsio::remove_path(&p).map_err(|source| ProjectError::Io { path: p, source })?;
        }
    }
    if cache {
        let mut size = Cleaned::default();
        count(&layout.store, &mut size);
        if cache::remove_store(&layout.store, || {
            on_wait("waiting for file lock on the build cache")
        })? {
            cleaned.files += size.files;
            cleaned.bytes += size.bytes;
        }
    }
    Ok(cleaned)
}

fn count(p: &Path, c: &mut Cleaned) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(p) {
            for e in rd.flatten() {
                count(&e.path(), c);
            }
        }
    } else {
        c.files += 1;
        c.bytes += m.len();
    }
}

/// Creates a new project in `dir`: a manifest, a `.gitignore` and an empty `models/`.
/// Returns the package name.
pub fn init(dir: &Path, name: Option<&str>) -> Result<String, ProjectError> {
    let manifest = dir.join(MANIFEST);
    if manifest.exists() {
        return Err(ProjectError::Exists { path: manifest });
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => {
            let abs = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            sanitize(
                &abs.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        }
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProjectError::Io { path, source }
    };
    let models = dir.join("models");
    fs::create_dir_all(&models).map_err(io(&models))?;
    let text = format!(
        "[package]\n\
         name = \"{name}\"\n\
         version = \"0.1.0\"\n\
         \n\
         [model]\n\
         # Write it with torch.export.save(torch.export.export(model, example_inputs), path).\n\
         source = \"models/{name}.pt2\"\n\
         \n\
         [target.host]\n\
         device = \"host\"\n\
         \n\
         # Every key is documented in ExecuTorch.toml.example in etpkg's repository.\n"
    );
    fsio::write_atomic(&manifest, text.as_bytes()).map_err(io(&manifest))?;
    let gitignore = dir.join(".gitignore");
    if !gitignore.exists() {
        fsio::write_atomic(&gitignore, b"/target\n").map_err(io(&gitignore))?;
    }
    Ok(name)
}

/// A package name from a directory name: letters, digits, `-` and `_`, starting with a letter.
fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert_str(0, "model-");
    }
    out
}

/// Every built-in device, resolved (the host's features detected).
pub fn targets() -> Result<Vec<Device>, ProjectError> {
    device::builtin_names()
        .iter()
        .map(|n| {
            device::builtin(n)
                .expect("a listed built-in exists")
                .map_err(|e| ProjectError::Device(e.to_string()))
        })
        .collect()
}

/// What `etpkg inspect` shows of a built target: its published `report.json`. The report is
/// read back rather than recomputed so that inspect describes exactly what was built.
pub fn inspect(
    manifest: &Manifest,
    target: Option<&str>,
    cache_dir: Option<&Path>,
) -> Result<serde_json::Value, ProjectError> {
    let layout = Layout::new(&manifest.root, cache_dir);
    let target = match target {
        Some(t) => t.to_string(),
        None => manifest
            .targets
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| "host".into()),
    };
    let path = layout.published(&target).join("report.json");
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProjectError::NotBuilt { target, path })
        }
        Err(source) => return Err(ProjectError::Io { path, source }),
    };
    let report: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ProjectError::BadReport {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let format = crate::build::stage::report::FORMAT;
    if report["format"] != format || !report["memory"]["regions"].is_array() {
        return Err(ProjectError::BadReport {
            path,
            reason: format!("it lacks the `format` {format} fields (rebuild with this etpkg)"),
        });
    }
    Ok(report)
}
