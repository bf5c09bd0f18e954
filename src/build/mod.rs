//! The build: a content-addressed DAG of stages from the manifest's model to each target's
//! published outputs. Invariant: a node runs only when no cache entry exists for its key, and
//! its key covers everything that can change its output (see `key`).
//!
//! A project's build directory:
//!
//! ```text
//! <project>/target/
//!   etpkg/
//!     .lock                    held by a running build or clean; a second build waits on it
//!     .fingerprints.json       file digests remembered by metadata (see `fingerprint`)
//!     .staging/                publish directories being written, renamed into place whole
//!     <target>/                the published outputs of each target (see `stage::publish`)
//!   etpkg-cache/               the object store and action map (see `crate::cache`), unless
//!                              ETPKG_CACHE_DIR names a store to share between projects
//! ```
//!
//! The nodes today are `export` (optional), `import` (read and lower the model, once for all
//! targets), `report` and `publish` (per target). Later stages slot in between `import` and
//! `publish` as further nodes: each adds a row to the key table in `key`, a file in `stage`,
//! and its outputs to the publish node's file list.

pub mod event;
pub mod exec;
pub mod fingerprint;
pub mod key;
pub mod plan;
pub mod stage;

use crate::cache::{CacheError, Store};
use crate::device;
use crate::fsio::{FileLock, LockKind};
use crate::manifest::suggest::nearest;
use crate::manifest::{Manifest, Target};
use event::EventSink;
use fingerprint::Fingerprints;
use plan::{Plan, Selected};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{message}{}", help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Selection {
        message: String,
        help: Option<String>,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{stage} of `{name}` failed{}: {source}", for_targets(targets))]
    Stage {
        stage: &'static str,
        name: String,
        targets: Vec<String>,
        source: Box<stage::StageError>,
    },
}

fn for_targets(t: &[String]) -> String {
    if t.is_empty() {
        String::new()
    } else {
        format!(" (target {})", t.join(", "))
    }
}

/// Where a project's build files go.
pub struct Layout {
    /// `<project>/target/etpkg`.
    pub out: PathBuf,
    /// The object store.
    pub store: PathBuf,
}

impl Layout {
    /// The layout for a project, honouring `ETPKG_CACHE_DIR` (given here, not read from the
    /// environment, so tests and tools can choose).
    pub fn new(root: &Path, cache_dir: Option<&Path>) -> Layout {
        let target = root.join("target");
        Layout {
            out: target.join("etpkg"),
            store: cache_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| target.join("etpkg-cache")),
        }
    }

    pub fn published(&self, target: &str) -> PathBuf {
        self.out.join(target)
    }

    pub fn staging(&self) -> PathBuf {
        self.out.join(".staging")
    }

    pub fn lock(&self) -> PathBuf {
        self.out.join(".lock")
    }

    pub fn fingerprints(&self) -> PathBuf {
        self.out.join(".fingerprints.json")
    }
}

#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Targets to build; empty means every target in the manifest.
    pub targets: Vec<String>,
    /// A profile for every selected target, instead of each target's own.
    pub profile: Option<String>,
    /// Worker threads; 0 means one per core.
    pub jobs: usize,
    pub cache_dir: Option<PathBuf>,
}

/// Resolves `--target` and `--profile` against the manifest. A target name that the manifest
/// does not declare but that names a built-in device builds for that device, as `cargo build
/// --target` accepts any known triple.
pub fn select(manifest: &Manifest, opts: &BuildOptions) -> Result<Vec<Selected>, BuildError> {
    if let Some(p) = &opts.profile {
        if manifest.profile(p).is_none() {
            let names: Vec<&str> = manifest.profiles.keys().map(String::as_str).collect();
            return Err(BuildError::Selection {
                message: format!(
                    "profile `{p}` is not defined in {}",
                    manifest.path.display()
                ),
                help: Some(match nearest(p, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the defined profiles are: {}", names.join(", ")),
                }),
            });
        }
    }
    let names: Vec<String> = if opts.targets.is_empty() {
        manifest.targets.keys().cloned().collect()
    } else {
        opts.targets.clone()
    };
    let mut out = Vec::new();
    for name in names {
        if out.iter().any(|s: &Selected| s.target == name) {
            continue;
        }
        let target = match manifest.targets.get(&name) {
            Some(t) => t.clone(),
            None => adhoc_target(manifest, &name)?,
        };
        let profile_name = opts
            .profile
            .clone()
            .or(target.profile.clone())
            .unwrap_or_else(|| Manifest::DEFAULT_PROFILE.to_string());
        let profile = manifest
            .profile(&profile_name)
            .cloned()
            .expect("the manifest checked every target's profile");
        out.push(Selected {
            target: name,
            device: target.device,
            profile,
        });
    }
    Ok(out)
}

fn adhoc_target(manifest: &Manifest, name: &str) -> Result<Target, BuildError> {
    match device::builtin(name) {
        Some(Ok(d)) => Ok(Target {
            name: name.to_string(),
            device: d,
            profile: None,
        }),
        Some(Err(e)) => Err(BuildError::Selection {
            message: e.to_string(),
            help: None,
        }),
        None => {
            let declared: Vec<&str> = manifest.targets.keys().map(String::as_str).collect();
            let candidates = declared
                .iter()
                .copied()
                .chain(device::builtin_names().iter().copied());
            Err(BuildError::Selection {
                message: format!(
                    "target `{name}` is neither declared in {} nor a built-in device",
                    manifest.path.display()
                ),
                help: Some(match nearest(name, candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "declared targets: {}; built-in devices: {} (`etpkg targets` lists them)",
                        declared.join(", "),
                        device::builtin_names().join(", ")
                    ),
                }),
            })
        }
    }
}

/// What a finished build did.
pub struct Outcome {
    pub ran: usize,
    pub fresh: usize,
    pub targets: Vec<String>,
}

/// Builds the selected targets. Holds the project's build lock for the whole build, so a
/// second build of the same project waits and then finds everything fresh.
pub fn build(
    manifest: &Manifest,
    opts: &BuildOptions,
    sink: &mut dyn EventSink,
) -> Result<Outcome, BuildError> {
    let start = Instant::now();
    let selected = select(manifest, opts)?;
    let layout = Layout::new(&manifest.root, opts.cache_dir.as_deref());
    let lock_path = layout.lock();
    let _lock = FileLock::acquire(&lock_path, LockKind::Exclusive, || {
        sink.note("Blocking", "waiting for file lock on build directory")
    })
    .map_err(|source| BuildError::Io {
        path: lock_path.clone(),
        source,
    })?;
    // With the lock held, anything left in the staging area belongs to a build that was
    // killed mid-publish; it was never visible as output and can go.
    let _ = crate::fsio::remove_path(&layout.staging());
    let store = Store::open(&layout.store, || {
        sink.note("Blocking", "waiting for file lock on the build cache")
    })?;
    let mut fingerprints = Fingerprints::load(&layout.fingerprints());
    let plan = Plan::new(manifest, selected, &layout, &mut fingerprints)?;
    // Losing the fingerprints only costs hashing the model again next time.
    let _ = fingerprints.save();
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.jobs
    };
    let result = exec::execute(&plan, &store, jobs, sink);
    sink.finished(&exec::finished(&plan, result.as_ref().ok(), start));
    let stats = result?;
    Ok(Outcome {
        ran: stats.ran,
        fresh: stats.fresh,
        targets: plan.selected.iter().map(|s| s.target.clone()).collect(),
    })
}

/// The plan as DOT, with each node marked fresh or dirty against the cache.
pub fn graph(manifest: &Manifest, opts: &BuildOptions) -> Result<String, BuildError> {
    let selected = select(manifest, opts)?;
    let layout = Layout::new(&manifest.root, opts.cache_dir.as_deref());
    let store = Store::open(&layout.store, || {})?;
    let mut fingerprints = Fingerprints::load(&layout.fingerprints());
    let plan = Plan::new(manifest, selected, &layout, &mut fingerprints)?;
    Ok(plan.to_dot(&exec::fresh_flags(&plan, &store)))
}
