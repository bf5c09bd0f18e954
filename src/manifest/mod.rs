//! The manifest, `ExecuTorch.toml`: reading, validating and resolving it.
//!
//! Reading is two steps. The TOML is parsed into a spanned tree (`tree`), then each table is
//! checked key by key; a problem becomes a [`Diagnostic`] and checking continues, so one run
//! reports as many errors as it can find. Only a syntax error stops early, as there is no tree
//! to check. The file format is documented key by key in `ExecuTorch.toml.example`.
//!
//! Invariant: a `Manifest` that `parse` returns is fully resolved and checked — every file it
//! names existed when it was read, every profile has its inherited settings applied, every target
//! has a validated device — and every problem found instead is reported with file, line and
//! column.

pub mod diag;
pub mod suggest;
pub(crate) mod tree;

use crate::device::{self, Device, DeviceError};
use crate::ir::DType;
use diag::{Diagnostic, Diagnostics, SourceFile};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use suggest::did_you_mean;
use thiserror::Error;
use tree::{list, Checker, Kind, Node, Table};

/// A resolved manifest.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// The manifest file: its directory canonicalized, its file name as given.
    pub path: PathBuf,
    /// The manifest's directory; every relative path in the manifest is relative to it.
    pub root: PathBuf,
    pub package: Package,
    pub model: Model,
    /// Every profile, inheritance applied; always contains the built-in `release`.
    pub profiles: BTreeMap<String, Profile>,
    /// Every target; a manifest without targets gets one, `host`, on the host device.
    pub targets: BTreeMap<String, Target>,
    pub verify: Option<Verify>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Model {
    /// Absolute path of the `.pt2` archive.
    pub source: PathBuf,
    /// Which `models/<name>.json` in the archive; `None` means the only one.
    pub name: Option<String>,
    /// Declared inputs, in manifest order, to check against the archive.
    pub inputs: Vec<InputSpec>,
    pub export: Option<ExportStep>,
}

#[derive(Clone, Debug, Serialize)]
pub struct InputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Serialized with its manifest spelling (`f32`), the one users read and write.
    #[serde(serialize_with = "dtype_name")]
    pub dtype: DType,
}

fn dtype_name<S: serde::Serializer>(d: &DType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.name())
}

/// `[model.export]`: a command that writes `model.source`.
#[derive(Clone, Debug, Serialize)]
pub struct ExportStep {
    /// The argv, non-empty; run with the manifest's directory as working directory.
    pub command: Vec<String>,
    /// Absolute paths of the files the command reads; each existed when the manifest was read.
    pub inputs: Vec<PathBuf>,
    /// Extra environment variables for the command.
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    /// Graph passes in the order they run; each is one of [`KNOWN_PASSES`].
    pub passes: Vec<String>,
    pub memory_planner: MemoryPlanner,
    pub kernels: KernelObjective,
    pub ops: OpSet,
    /// Threads the kernels split work over in `etpkg run`, `verify` and `bench`, and the
    /// generated crate's `THREADS` (what its README suggests for `set_threads`); within
    /// `1..=MAX_THREADS`.
    pub threads: usize,
}

/// The most threads a profile may ask for (the generated pool's own limit).
pub const MAX_THREADS: usize = 256;

/// Every graph pass a profile may name. The built-in `release` profile runs all of them, in
/// this order.
pub const KNOWN_PASSES: &[&str] = &[
    "fold-batch-norm",
    "fuse-activations",
    "fold-constants",
    "eliminate-dead-code",
    "alias-views",
    "in-place",
    "concat-in-place",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryPlanner {
    GreedyBySize,
    GreedyByConflicts,
    /// Run every planner and keep the smallest arena.
    Best,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelObjective {
    Speed,
    Size,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpSet {
    All,
    /// Only ATen ops, so that a stock ExecuTorch runtime can run the program.
    Aten,
}

/// The manifest spelling of each enum value, in one table per enum so that parsing, messages
/// and suggestions cannot disagree.
const PLANNERS: &[(&str, MemoryPlanner)] = &[
    ("greedy-by-size", MemoryPlanner::GreedyBySize),
    ("greedy-by-conflicts", MemoryPlanner::GreedyByConflicts),
    ("best", MemoryPlanner::Best),
];
const OBJECTIVES: &[(&str, KernelObjective)] = &[
    ("speed", KernelObjective::Speed),
    ("size", KernelObjective::Size),
];
const OP_SETS: &[(&str, OpSet)] = &[("all", OpSet::All), ("aten", OpSet::Aten)];

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub name: String,
    /// The resolved device, with the target's memory overrides applied.
    pub device: Device,
    /// The profile this target builds with when none is asked for; it exists in `profiles`.
    pub profile: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Verify {
    /// Absolute paths of the `.npy` inputs, one per model input.
    pub inputs: Vec<PathBuf>,
    /// Absolute paths of PyTorch's outputs for those inputs, one per model output.
    pub expected: Vec<PathBuf>,
    pub tolerance: f64,
}

impl Manifest {
    /// The profile used when none is asked for.
    pub const DEFAULT_PROFILE: &str = "release";

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }
}

impl Profile {
    /// The built-in `release` profile: every pass, the best memory plan, the fastest kernels.
    pub fn release() -> Profile {
        Profile {
            name: Manifest::DEFAULT_PROFILE.to_string(),
            passes: KNOWN_PASSES.iter().map(|p| p.to_string()).collect(),
            memory_planner: MemoryPlanner::Best,
            kernels: KernelObjective::Speed,
            ops: OpSet::All,
            threads: 1,
        }
    }
}

/// Why a manifest could not be used. `Display` is the complete cargo-style rendering, `error:`
/// prefix included, so callers print it as it is.
#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("error: failed to read manifest `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl ManifestError {
    /// The located errors; empty for an I/O error, which has no position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ManifestError::Io { .. } => &[],
            ManifestError::Invalid(d) => &d.0,
        }
    }
}

/// Reads and resolves the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Resolves manifest text as if it were read from `path`: diagnostics name `path` as given,
/// relative paths in the manifest are resolved against its directory, and the files they name
/// are checked for existence.
pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let display_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let dir = if display_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &display_dir
    };
    let root = dir
        .canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf());
    let abs_path = match path.file_name() {
        Some(f) => root.join(f),
        None => root.clone(),
    };
    let file = SourceFile {
        display: path,
        text,
    };
    let doc = tree::parse(&file).map_err(ManifestError::Invalid)?;
    let mut r = Reader {
        c: Checker::new(file),
        root: root.clone(),
        display_dir,
    };
    let result = r.manifest(&doc);
    match result {
        Some(mut m) if r.c.diags.is_empty() => {
            m.path = abs_path;
            Ok(m)
        }
        _ => Err(ManifestError::Invalid(Diagnostics(in_file_order(
            path, r.c.diags,
        )))),
    }
}

/// Orders diagnostics the way a reader meets them: `first` (the manifest) before the files it
/// names, those in the order they were first reported, positions in order within each file.
pub(crate) fn in_file_order(first: &Path, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<PathBuf> = vec![first.to_path_buf()];
    for d in &diags {
        if !files.contains(&d.file) {
            files.push(d.file.clone());
        }
    }
    diags.sort_by_key(|d| {
        let f = files.iter().position(|f| *f == d.file);
        (f, d.line, d.column)
    });
    diags
}

const TOP_KEYS: &[&str] = &["package", "model", "profile", "target", "verify"];
const PACKAGE_KEYS: &[&str] = &["name", "version", "description"];
const MODEL_KEYS: &[&str] = &["source", "name", "inputs", "export"];
const INPUT_KEYS: &[&str] = &["shape", "dtype"];
const EXPORT_KEYS: &[&str] = &["command", "inputs", "env"];
const PROFILE_KEYS: &[&str] = &[
    "inherits",
    "passes",
    "memory-planner",
    "kernels",
    "ops",
    "threads",
];
const TARGET_KEYS: &[&str] = &["device", "profile", "memory"];
const VERIFY_KEYS: &[&str] = &["inputs", "expected", "tolerance"];
const DTYPE_NAMES: &[&str] = &[
    "f32", "f16", "bf16", "f64", "i8", "i16", "i32", "i64", "u8", "bool",
];

/// A profile as declared, before inheritance: `None` fields come from the parent.
struct RawProfile<'n> {
    name: String,
    key_span: Range<usize>,
    inherits: Option<(&'n str, Range<usize>)>,
    passes: Option<Vec<String>>,
    memory_planner: Option<MemoryPlanner>,
    kernels: Option<KernelObjective>,
    ops: Option<OpSet>,
    threads: Option<usize>,
}

/// Checks one manifest, accumulating diagnostics in `c`.
struct Reader<'a> {
    c: Checker<'a>,
    root: PathBuf,
    /// The manifest's directory as the user wrote it, for showing resolved paths in messages.
    display_dir: PathBuf,
}

/// Whether `s` is a name etpkg can use for a directory and a crate: `[A-Za-z0-9_-]+`.
fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `s` is a semantic version `x.y.z`, optionally with `-pre` and `+build` parts.
fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| {
        p.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(ident)
        && build.is_none_or(ident)
}

impl Reader<'_> {
    /// Resolves a manifest-relative path: the absolute path, and the path shown in messages.
    fn resolve(&self, rel: &str) -> (PathBuf, PathBuf) {
        (self.root.join(rel), self.display_dir.join(rel))
    }

    /// Reports a file named at `key` that does not exist; returns whether it exists.
    fn check_file(&mut self, node: &Node, key: &str, rel: &str, help: &str) -> Option<PathBuf> {
        let (abs, shown) = self.resolve(rel);
        if abs.is_file() {
            Some(abs)
        } else {
            self.c.error(
                node.span.clone(),
                format!(
                    "`{key}` names a file that does not exist: `{}`",
                    shown.display()
                ),
                Some("file not found"),
                Some(help.to_string()),
            );
            None
        }
    }

    /// A required sub-table of `table`; reports it missing at `span` (the parent's header).
    fn required_table<'n>(
        &mut self,
        table: &'n Table,
        span: Range<usize>,
        key: &str,
        help: &str,
    ) -> Option<(&'n Table, Range<usize>)> {
        match table.get(key) {
            Some(e) => self
                .c
                .table(&e.value, key)
                .map(|t| (t, e.value.span.clone())),
            None => {
                self.c.error(
                    span,
                    format!("missing table `[{key}]`"),
                    None,
                    Some(help.to_string()),
                );
                None
            }
        }
    }

    /// A required string key of a table; reports it missing at the table's span.
    fn required_str<'n>(
        &mut self,
        table: &'n Table,
        span: &Range<usize>,
        path: &str,
        key: &str,
    ) -> Option<(&'n str, &'n Node)> {
        match table.get(key) {
            Some(e) => self
                .c
                .str(&e.value, &tree::join(path, key))
                .map(|s| (s, &e.value)),
            None => {
                self.c.missing(span.clone(), path, key);
                None
            }
        }
    }

    fn manifest(&mut self, doc: &Node) -> Option<Manifest> {
        let Kind::Table(top) = &doc.kind else {
            unreachable!("a TOML document is a table")
        };
        self.c.unknown_keys(top, "", TOP_KEYS);
        let package = self
            .required_table(
                top,
                doc.span.clone(),
                "package",
                "add a `[package]` table with `name` and `version`",
            )
            .and_then(|(t, span)| self.package(t, span));
        let model = self
            .required_table(
                top,
                doc.span.clone(),
                "model",
                "add a `[model]` table with `source = \"<path to the .pt2>\"`",
            )
            .and_then(|(t, span)| self.model(t, span));
        let profiles = self.profiles(top.get("profile").map(|e| &e.value));
        // Targets are checked against the declared profile names even when a profile is
        // invalid, so that a misspelt `profile` is reported in the same run.
        let mut profile_names = vec![Manifest::DEFAULT_PROFILE.to_string()];
        if let Some(Kind::Table(t)) = top.get("profile").map(|e| &e.value.kind) {
            profile_names.extend(t.entries.iter().map(|e| e.key.clone()));
        }
        profile_names.sort();
        profile_names.dedup();
        let targets = self.targets(top.get("target").map(|e| &e.value), &profile_names);
        let verify = match top.get("verify") {
            Some(e) => match self.c.table(&e.value, "verify") {
                Some(t) => Some(self.verify(t, e.value.span.clone(), model.as_ref())?),
                None => None,
            },
            None => None,
        };
        Some(Manifest {
            path: PathBuf::new(),
            root: self.root.clone(),
            package: package?,
            model: model?,
            profiles: profiles?,
            targets: targets?,
            verify,
        })
    }

    fn package(&mut self, t: &Table, span: Range<usize>) -> Option<Package> {
        self.c.unknown_keys(t, "package", PACKAGE_KEYS);
        let name = self.required_str(t, &span, "package", "name");
        if let Some((name, node)) = name {
            if !is_plain_name(name) || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                self.c.error(
                    node.span.clone(),
                    format!("invalid package name `{name}`"),
                    Some("not a valid name"),
                    Some(
                        "a package name starts with a letter and contains only letters, digits, \
                         `-` and `_`"
                            .into(),
                    ),
                );
            }
        }
        let version = self.required_str(t, &span, "package", "version");
        if let Some((v, node)) = version {
            if !is_semver(v) {
                self.c.error(
                    node.span.clone(),
                    format!("invalid version `{v}` for `package.version`"),
                    Some("not a semantic version"),
                    Some("write a semantic version such as \"0.1.0\" or \"1.2.0-beta.1\"".into()),
                );
            }
        }
        let description = t
            .get("description")
            .and_then(|e| self.c.str(&e.value, "package.description"))
            .map(str::to_string);
        Some(Package {
            name: name?.0.to_string(),
            version: version?.0.to_string(),
            description,
        })
    }

    fn model(&mut self, t: &Table, span: Range<usize>) -> Option<Model> {
        self.c.unknown_keys(t, "model", MODEL_KEYS);
        let source = self.required_str(t, &span, "model", "source");
        let export = match t.get("export") {
            Some(e) => self
                .c
                .table(&e.value, "model.export")
                .map(|x| self.export(x, e.value.span.clone(), source.map(|s| s.0))),
            None => None,
        };
        // With an export step the archive is the step's output, so it need not exist yet.
        let source = match source {
            Some((rel, node)) if export.is_none() => self.check_file(
                node,
                "model.source",
                rel,
                "write the archive with `torch.export.save(torch.export.export(model, args), \
                 path)`, or add a `[model.export]` step that does",
            ),
            Some((rel, _)) => Some(self.resolve(rel).0),
            None => None,
        };
        let name = t
            .get("name")
            .and_then(|e| self.c.str(&e.value, "model.name"))
            .map(str::to_string);
        let mut inputs = Vec::new();
        if let Some(e) = t.get("inputs") {
            if let Some(table) = self.c.table(&e.value, "model.inputs") {
                for input in &table.entries {
                    let path = format!("model.inputs.{}", input.key);
                    if let Some(spec) = self.input_spec(input, &path) {
                        inputs.push(spec);
                    }
                }
            }
        }
        Some(Model {
            source: source?,
            name,
            inputs,
            export: match export {
                Some(x) => Some(x?),
                None => None,
            },
        })
    }

    fn input_spec(&mut self, input: &tree::Entry, path: &str) -> Option<InputSpec> {
        let t = self.c.table(&input.value, path)?;
        self.c.unknown_keys(t, path, INPUT_KEYS);
        let shape = match t.get("shape") {
            Some(e) => {
                let dims = self.c.array(&e.value, &format!("{path}.shape"));
                let mut shape = Vec::new();
                let mut ok = dims.is_some();
                for d in dims.unwrap_or_default() {
                    match d.kind {
                        Kind::Int(n) if n >= 0 => shape.push(n as usize),
                        Kind::Int(n) => {
                            self.c.error(
                                d.span.clone(),
                                format!("negative dimension {n} in `{path}.shape`"),
                                Some("dimensions are sizes"),
                                None,
                            );
                            ok = false;
                        }
                        _ => {
                            self.c
                                .wrong_type(d, &format!("{path}.shape element"), "an integer");
                            ok = false;
                        }
                    }
                }
                ok.then_some(shape)
            }
            None => {
                self.c.missing(input.value.span.clone(), path, "shape");
                None
            }
        };
        let dtype = match t.get("dtype") {
            Some(e) => match self.c.str(&e.value, &format!("{path}.dtype")) {
                Some(name) => match DType::from_name(name) {
                    Some(d) => Some(d),
                    None => {
                        let help = did_you_mean(name, DTYPE_NAMES.iter().copied())
                            .unwrap_or_else(|| format!("the dtypes are {}", list(DTYPE_NAMES)));
                        self.c.error(
                            e.value.span.clone(),
                            format!("unknown dtype `{name}` for `{path}.dtype`"),
                            Some("unknown dtype"),
                            Some(help),
                        );
                        None
                    }
                },
                None => None,
            },
            None => {
                self.c.missing(input.value.span.clone(), path, "dtype");
                None
            }
        };
        Some(InputSpec {
            name: input.key.clone(),
            shape: shape?,
            dtype: dtype?,
        })
    }

    fn export(
        &mut self,
        t: &Table,
        span: Range<usize>,
        source: Option<&str>,
    ) -> Option<ExportStep> {
        let path = "model.export";
        self.c.unknown_keys(t, path, EXPORT_KEYS);
        let command = match t.get("command") {
            Some(e) => {
                let argv = self.c.strings(&e.value, "model.export.command");
                if argv.as_ref().is_some_and(|a| a.is_empty()) {
                    self.c.error(
                        e.value.span.clone(),
                        "`model.export.command` is empty",
                        Some("no program to run"),
                        Some(
                            "write the command as an argument list, e.g. [\"python\", \
                             \"export.py\"]"
                                .into(),
                        ),
                    );
                    None
                } else {
                    argv.map(|a| a.into_iter().map(|(s, _)| s.to_string()).collect())
                }
            }
            None => {
                self.c.missing(span, path, "command");
                None
            }
        };
        let mut inputs = Some(Vec::new());
        if let Some(e) = t.get("inputs") {
            let source_abs = source.map(|s| self.resolve(s).0);
            match self.c.strings(&e.value, "model.export.inputs") {
                Some(files) => {
                    for (rel, node) in files {
                        if source_abs.as_ref() == Some(&self.resolve(rel).0) {
                            self.c.error(
                                node.span.clone(),
                                "`model.export.inputs` lists `model.source`, the file the \
                                 export writes",
                                Some("this is the export's output"),
                                Some("remove it: an input cannot be its own output".into()),
                            );
                            inputs = None;
                            continue;
                        }
                        let found = self.check_file(
                            node,
                            "model.export.inputs",
                            rel,
                            "list the files the export command reads (its script, weights); \
                             each must exist before the export runs",
                        );
                        match (found, inputs.as_mut()) {
                            (Some(p), Some(v)) => v.push(p),
                            _ => inputs = None,
                        }
                    }
                }
                None => inputs = None,
            }
        }
        let mut env = BTreeMap::new();
        if let Some(e) = t.get("env") {
            if let Some(vars) = self.c.table(&e.value, "model.export.env") {
                for var in &vars.entries {
                    if let Some(v) = self
                        .c
                        .str(&var.value, &format!("model.export.env.{}", var.key))
                    {
                        env.insert(var.key.clone(), v.to_string());
                    }
                }
            }
        }
        Some(ExportStep {
            command: command?,
            inputs: inputs?,
            env,
        })
    }

    /// Reads an enum value spelled as one of `table`'s names.
    fn choice<T: Copy>(&mut self, node: &Node, what: &str, table: &[(&str, T)]) -> Option<T> {
        let s = self.c.str(node, what)?;
        if let Some((_, v)) = table.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
        self.c.error(
            node.span.clone(),
            format!(
                "invalid value `{s}` for `{what}`: expected one of {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("unknown value"),
            did_you_mean(s, names.iter().copied()),
        );
        None
    }

    fn raw_profile<'n>(&mut self, e: &'n tree::Entry) -> Option<RawProfile<'n>> {
        let path = format!("profile.{}", e.key);
        let t = self.c.table(&e.value, &path)?;
        self.c.unknown_keys(t, &path, PROFILE_KEYS);
        if !is_plain_name(&e.key) {
            self.c.error(
                e.key_span.clone(),
                format!("invalid profile name `{}`", e.key),
                Some("not a valid name"),
                Some("profile names contain only letters, digits, `-` and `_`".into()),
            );
        }
        let inherits = t.get("inherits").and_then(|i| {
            self.c
                .str(&i.value, &format!("{path}.inherits"))
                .map(|s| (s, i.value.span.clone()))
        });
        let passes = t.get("passes").and_then(|p| {
            let names = self.c.strings(&p.value, &format!("{path}.passes"))?;
            let mut ok = true;
            for (name, node) in &names {
                if !KNOWN_PASSES.contains(name) {
                    ok = false;
                    let help = did_you_mean(name, KNOWN_PASSES.iter().copied())
                        .unwrap_or_else(|| format!("the passes are {}", list(KNOWN_PASSES)));
                    self.c.error(
                        node.span.clone(),
                        format!("unknown pass `{name}` in `{path}.passes`"),
                        Some("unknown pass"),
                        Some(help),
                    );
                }
            }
            ok.then(|| names.iter().map(|(n, _)| n.to_string()).collect())
        });
        let memory_planner = t
            .get("memory-planner")
            .and_then(|v| self.choice(&v.value, &format!("{path}.memory-planner"), PLANNERS));
        let kernels = t
            .get("kernels")
            .and_then(|v| self.choice(&v.value, &format!("{path}.kernels"), OBJECTIVES));
        let ops = t
            .get("ops")
            .and_then(|v| self.choice(&v.value, &format!("{path}.ops"), OP_SETS));
        let threads = t.get("threads").and_then(|v| {
            let n = self.c.int(&v.value, &format!("{path}.threads"))?;
            if (1..=MAX_THREADS as i64).contains(&n) {
                return Some(n as usize);
            }
            self.c.error(
                v.value.span.clone(),
                format!("invalid value {n} for `{path}.threads`: expected 1 to {MAX_THREADS}"),
                Some("not a thread count"),
                Some("`threads = 1` runs every kernel on the calling thread".into()),
            );
            None
        });
        Some(RawProfile {
            name: e.key.clone(),
            key_span: e.key_span.clone(),
            inherits,
            passes,
            memory_planner,
            kernels,
            ops,
            threads,
        })
    }

    /// Reads `[profile.*]` and applies inheritance. Returns `None` if any profile is invalid.
    fn profiles(&mut self, node: Option<&Node>) -> Option<BTreeMap<String, Profile>> {
        let before = self.c.diags.len();
        let mut raws = Vec::new();
        if let Some(node) = node {
            if let Some(t) = self.c.table(node, "profile") {
                for e in &t.entries {
                    if let Some(raw) = self.raw_profile(e) {
                        raws.push(raw);
                    }
                }
            }
        }
        let release = Manifest::DEFAULT_PROFILE;
        let mut names: Vec<&str> = raws.iter().map(|r| r.name.as_str()).collect();
        if !names.contains(&release) {
            names.push(release);
        }
        // The parent of each declared profile: `None` for release, which starts from the
        // built-in defaults.
        let mut parent: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        for raw in &raws {
            let p = match (&raw.inherits, raw.name == release) {
                (Some((_, span)), true) => {
                    self.c.error(
                        span.clone(),
                        "the profile `release` cannot inherit",
                        Some("`release` starts from the built-in defaults"),
                        Some("remove `inherits`, or declare a new profile that inherits".into()),
                    );
                    None
                }
                (Some((name, span)), false) => {
                    if !names.contains(name) {
                        let help = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                            format!("the profiles are {}", list(&sorted(&names)))
                        });
                        self.c.error(
                            span.clone(),
                            format!(
                                "profile `{}` inherits an unknown profile `{name}`",
                                raw.name
                            ),
                            Some("no such profile"),
                            Some(help),
                        );
                    }
                    Some(*name)
                }
                (None, true) => None,
                (None, false) => Some(release),
            };
            parent.insert(&raw.name, p);
        }
        // Each cycle is reported once, from its first member in file order.
        let mut in_reported_cycle: BTreeSet<&str> = BTreeSet::new();
        for raw in &raws {
            let mut chain = vec![raw.name.as_str()];
            let mut cur = raw.name.as_str();
            while let Some(Some(next)) = parent.get(cur) {
                if let Some(pos) = chain.iter().position(|n| n == next) {
                    if pos == 0 && !in_reported_cycle.contains(raw.name.as_str()) {
                        in_reported_cycle.extend(chain.iter().copied());
                        chain.push(next);
                        let span = raw
                            .inherits
                            .as_ref()
                            .map_or(raw.key_span.clone(), |i| i.1.clone());
                        self.c.error(
                            span,
                            format!(
                                "profile `{}` inherits itself: {}",
                                raw.name,
                                chain.join(" -> ")
                            ),
                            Some("inheritance cycle"),
                            Some("make one profile in the cycle inherit from `release`".into()),
                        );
                    }
                    break;
                }
                chain.push(next);
                cur = next;
            }
        }
        if self.c.diags.len() > before {
            return None;
        }
        let mut resolved: BTreeMap<String, Profile> = BTreeMap::new();
        let by_name: BTreeMap<&str, &RawProfile> =
            raws.iter().map(|r| (r.name.as_str(), r)).collect();
        for name in &names {
            resolve_profile(name, &by_name, &parent, &mut resolved);
        }
        Some(resolved)
    }

    fn targets(
        &mut self,
        node: Option<&Node>,
        profiles: &[String],
    ) -> Option<BTreeMap<String, Target>> {
        let mut targets = BTreeMap::new();
        let mut ok = true;
        let entries = match node.and_then(|n| self.c.table(n, "target")) {
            Some(t) => t.entries.as_slice(),
            None if node.is_some() => return None,
            None => &[],
        };
        for e in entries {
            match self.target(e, profiles) {
                Some(t) => {
                    targets.insert(t.name.clone(), t);
                }
                None => ok = false,
            }
        }
        if entries.is_empty() {
            let host = device::builtin("host")?.ok()?;
            targets.insert(
                "host".to_string(),
                Target {
                    name: "host".to_string(),
                    device: host,
                    profile: None,
                },
            );
        }
        ok.then_some(targets)
    }

    fn target(&mut self, e: &tree::Entry, known: &[String]) -> Option<Target> {
        let path = format!("target.{}", e.key);
        let t = self.c.table(&e.value, &path)?;
        self.c.unknown_keys(t, &path, TARGET_KEYS);
        let mut ok = true;
        if !is_plain_name(&e.key) {
            self.c.error(
                e.key_span.clone(),
                format!("invalid target name `{}`", e.key),
                Some("not a valid name"),
                Some("target names contain only letters, digits, `-` and `_`".into()),
            );
            ok = false;
        }
        let device = match t.get("device") {
            Some(d) => self
                .c
                .str(&d.value, &format!("{path}.device"))
                .and_then(|name| self.device(name, &d.value, &path)),
            None if device::builtin_names().contains(&e.key.as_str()) => {
                match device::builtin(&e.key) {
                    Some(Ok(d)) => Some(d),
                    _ => None,
                }
            }
            None => {
                self.c.error(
                    e.value.span.clone(),
                    format!("missing key `device` in `[{path}]`"),
                    Some("`device` is required here"),
                    Some(format!(
                        "name a built-in device ({}) or the path of a device file; it may be \
                         left out only when the target is named after a built-in device",
                        list(device::builtin_names())
                    )),
                );
                None
            }
        };
        let profile = match t.get("profile") {
            Some(p) => match self.c.str(&p.value, &format!("{path}.profile")) {
                Some(name) => {
                    if !known.iter().any(|k| k == name) {
                        let help = did_you_mean(name, known.iter().map(String::as_str))
                            .unwrap_or_else(|| format!("the profiles are {}", list(known)));
                        self.c.error(
                            p.value.span.clone(),
                            format!("target `{}` names an unknown profile `{name}`", e.key),
                            Some("no such profile"),
                            Some(help),
                        );
                        ok = false;
                    }
                    Some(name.to_string())
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let mut device = device;
        if let Some(m) = t.get("memory") {
            let mpath = format!("{path}.memory");
            match self.c.table(&m.value, &mpath) {
                Some(regions) => {
                    for r in &regions.entries {
                        let size = self.c.size(&r.value, &format!("{mpath}.{}", r.key));
                        let Some(dev) = device.as_mut() else { continue };
                        match dev.regions.iter_mut().find(|x| x.name == r.key) {
                            Some(region) => match size {
                                Some(bytes) => region.bytes = bytes,
                                None => ok = false,
                            },
                            None => {
                                let names: Vec<&str> =
                                    dev.regions.iter().map(|x| x.name.as_str()).collect();
                                let help = did_you_mean(&r.key, names.iter().copied())
                                    .unwrap_or_else(|| {
                                        format!(
                                            "the regions of `{}` are {}",
                                            dev.name,
                                            list(&names)
                                        )
                                    });
                                self.c.error(
                                    r.key_span.clone(),
                                    format!(
                                        "device `{}` has no memory region `{}`",
                                        dev.name, r.key
                                    ),
                                    Some("unknown region"),
                                    Some(help),
                                );
                                ok = false;
                            }
                        }
                    }
                }
                None => ok = false,
            }
        }
        let device = device?;
        ok.then(|| Target {
            name: e.key.clone(),
            device,
            profile,
        })
    }

    /// Resolves a target's `device` value: a path to a device file (it contains a `/` or ends
    /// in `.toml`), or the name of a built-in device.
    fn device(&mut self, name: &str, node: &Node, path: &str) -> Option<Device> {
        let key = format!("{path}.device");
        if name.contains('/') || name.contains('\\') || name.ends_with(".toml") {
            let (abs, shown) = self.resolve(name);
            if !abs.is_file() {
                self.c.error(
                    node.span.clone(),
                    format!(
                        "`{key}` names a device file that does not exist: `{}`",
                        shown.display()
                    ),
                    Some("file not found"),
                    Some(format!(
                        "give the path of a device file, relative to the manifest, or a built-in \
                         device: {}",
                        list(device::builtin_names())
                    )),
                );
                return None;
            }
            return match device::load_file_as(&abs, &shown) {
                Ok(d) => Some(d),
                Err(DeviceError::Invalid(d)) => {
                    self.c.diags.extend(d.0);
                    None
                }
                Err(e @ DeviceError::Io { .. }) => {
                    self.c.error(
                        node.span.clone(),
                        format!("`{key}` names a device file that cannot be read: {e}"),
                        Some("unreadable"),
                        None,
                    );
                    None
                }
            };
        }
        match device::builtin(name) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                // Built-in files are tested to parse, so this is a bug in etpkg; say so plainly.
                self.c.error(
                    node.span.clone(),
                    format!("the built-in device `{name}` is invalid (a bug in etpkg): {e}"),
                    None,
                    None,
                );
                None
            }
            None => {
                let names = device::builtin_names();
                let help = did_you_mean(name, names.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "the built-in devices are {}; a device file is named by its path, e.g. \
                         \"devices/board.toml\"",
                        list(names)
                    )
                });
                self.c.error(
                    node.span.clone(),
                    format!("unknown device `{name}` for `{key}`"),
                    Some("not a built-in device"),
                    Some(help),
                );
                None
            }
        }
    }

    fn verify(&mut self, t: &Table, span: Range<usize>, model: Option<&Model>) -> Option<Verify> {
        self.c.unknown_keys(t, "verify", VERIFY_KEYS);
        let help = "save the model's inputs and PyTorch's outputs for them with `numpy.save`";
        let files = |this: &mut Self, key: &str| -> Option<(Vec<PathBuf>, &Node)> {
            let what = format!("verify.{key}");
            let Some(e) = t.get(key) else {
                this.c.missing(span.clone(), "verify", key);
                return None;
            };
            let names = this.c.strings(&e.value, &what)?;
            let mut out = Some(Vec::new());
            for (rel, node) in names {
                match (this.check_file(node, &what, rel, help), out.as_mut()) {
                    (Some(p), Some(v)) => v.push(p),
                    _ => out = None,
                }
            }
            out.map(|v| (v, &e.value))
        };
        let inputs = files(self, "inputs");
        let expected = files(self, "expected");
        // Inputs pair with the model's inputs, not with the expected outputs: a model may have
        // two inputs and one output. The count can be checked here only when the manifest
        // declares the model's inputs; otherwise the archive's signature checks it at build.
        if let (Some((files, node)), Some(m)) = (&inputs, model) {
            if !m.inputs.is_empty() && files.len() != m.inputs.len() {
                self.c.error(
                    node.span.clone(),
                    format!(
                        "`verify.inputs` lists {} file(s) but `model.inputs` declares {} input(s)",
                        files.len(),
                        m.inputs.len()
                    ),
                    Some("one .npy per model input"),
                    Some(format!(
                        "list one file per input, in the order of `model.inputs`: {}",
                        list(&m.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>())
                    )),
                );
                return None;
            }
        }
        let tolerance = match t.get("tolerance") {
            Some(e) => match self.c.float(&e.value, "verify.tolerance") {
                Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                Some(x) => {
                    self.c.error(
                        e.value.span.clone(),
                        format!("invalid tolerance {x}: it must be a finite number ≥ 0"),
                        Some("not a tolerance"),
                        None,
                    );
                    None
                }
                None => None,
            },
            None => Some(1e-4),
        };
        Some(Verify {
            inputs: inputs?.0,
            expected: expected?.0,
            tolerance: tolerance?,
        })
    }
}

fn sorted<'s>(names: &[&'s str]) -> Vec<&'s str> {
    let mut v = names.to_vec();
    v.sort();
    v
}

/// Resolves `name` after its parent, memoized in `done`. Cycles and unknown parents were
/// rejected before this runs, so the recursion ends.
fn resolve_profile(
    name: &str,
    raws: &BTreeMap<&str, &RawProfile>,
    parent: &BTreeMap<&str, Option<&str>>,
    done: &mut BTreeMap<String, Profile>,
) {
    if done.contains_key(name) {
        return;
    }
    let mut base = match parent.get(name).copied().flatten() {
        Some(p) => {
            resolve_profile(p, raws, parent, done);
            done[p].clone()
        }
        None => Profile::release(),
    };
    base.name = name.to_string();
    if let Some(raw) = raws.get(name) {
        if let Some(p) = &raw.passes {
            base.passes = p.clone();
        }
        if let Some(m) = raw.memory_planner {
            base.memory_planner = m;
        }
        if let Some(k) = raw.kernels {
            base.kernels = k;
        }
        if let Some(o) = raw.ops {
            base.ops = o;
        }
        if let Some(t) = raw.threads {
            base.threads = t;
        }
    }
    done.insert(name.to_string(), base);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for good in ["0.1.0", "1.2.3-beta.1", "10.0.0+build.5", "1.0.0-rc-1"] {
            assert!(is_semver(good), "{good}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "a.b.c", "1.0.0.0", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn enum_tables_match_serde_names() {
        for (name, v) in PLANNERS {
            assert_eq!(serde_json::to_value(v).unwrap(), *name);
        }
        for (name, v) in OBJECTIVES {
            assert_eq!(serde_json::to_value(v).unwrap(), *name);
        }
        for (name, v) in OP_SETS {
            assert_eq!(serde_json::to_value(v).unwrap(), *name);
        }
    }

    #[test]
    fn dtype_names_are_the_irs() {
        for n in DTYPE_NAMES {
            assert_eq!(DType::from_name(n).unwrap().name(), *n);
        }
    }
}
