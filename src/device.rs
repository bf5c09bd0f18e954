//! Device descriptions: what a target machine offers the compiler (triple, ISA features, memory
//! regions, alignment, std or no_std).
//!
//! Built-in devices are the files in the repository's `targets/` folder, embedded into the
//! binary so that etpkg works outside the repository. A file's format:
//!
//! ```toml
//! name = "cortex-m7"
//! description = "Arm Cortex-M7 microcontroller (STM32H7 class)"   # optional
//! triple = "thumbv7em-none-eabihf"      # "native" means the machine etpkg runs on
//! features = ["dsp", "fp-armv8d16"]     # optional; detected at run time for "native"
//! cpu = "cortex-m7"                     # optional; rustc's `-C target-cpu` for the crate
//! std = false
//! alignment = 16                        # bytes, a power of two
//! [memory.dtcm]
//! size = "128KiB"                       # bytes, or a string with a B/KiB/MiB/GiB/KB/MB/GB suffix
//! fast = true                           # optional; the memory planner fills fast regions first
//! ```
//!
//! Invariant: a `Device` is canonical — features sorted and deduplicated, regions sorted by name,
//! alignment a power of two, at least one region — so two descriptions of the same machine
//! serialize to the same bytes and hash to the same build keys.

use crate::manifest::diag::{Diagnostics, SourceFile};
use crate::manifest::tree::{self, Checker, Kind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A target machine as the compiler sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    pub name: String,
    pub description: String,
    /// The Rust target triple the generated runtime is built for.
    pub triple: String,
    /// ISA features, sorted and deduplicated.
    pub features: Vec<String>,
    /// The `-C target-cpu` the generated crate is compiled with. When set it stands for
    /// `features` in the crate's rustflags: for Arm, rustc knows the features only as unstable
    /// names (each a warning), while a CPU name is stable and implies them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    pub std: bool,
    /// Alignment of every tensor in the arena, in bytes; a power of two.
    pub alignment: u64,
    /// Memory regions sorted by name. Sorting (rather than keeping file order) is the canonical
    /// form because the planner orders regions by `fast`, not by position.
    pub regions: Vec<MemoryRegion>,
    pub origin: DeviceOrigin,
}

/// One memory region the arena may be placed in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryRegion {
    pub name: String,
    pub bytes: u64,
    /// Fast regions (tightly coupled memory, on-chip SRAM) are filled first by the planner.
    pub fast: bool,
}

/// Where a device description came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum DeviceOrigin {
    Builtin,
    File(PathBuf),
}

/// A device file that cannot be read or is invalid.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("error: failed to read device file `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// The built-in device files, sorted by name so that listings and suggestions are stable.
const BUILTINS: &[(&str, &str)] = &[
    (
        "aarch64-linux",
        include_str!("../targets/aarch64-linux.toml"),
    ),
    ("cortex-m7", include_str!("../targets/cortex-m7.toml")),
    ("host", include_str!("../targets/host.toml")),
    ("x86_64", include_str!("../targets/x86_64.toml")),
    ("x86_64-v3", include_str!("../targets/x86_64-v3.toml")),
    ("x86_64-v4", include_str!("../targets/x86_64-v4.toml")),
];

const BUILTIN_NAMES: &[&str] = &[
    "aarch64-linux",
    "cortex-m7",
    "host",
    "x86_64",
    "x86_64-v3",
    "x86_64-v4",
];

/// The names of the built-in devices, sorted.
pub fn builtin_names() -> &'static [&'static str] {
    BUILTIN_NAMES
}

/// Parses the built-in device `name`, or `None` if there is no such built-in.
pub fn builtin(name: &str) -> Option<Result<Device, DeviceError>> {
    let (file, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    let display = PathBuf::from(format!("targets/{file}.toml"));
    Some(parse(&display, text, DeviceOrigin::Builtin))
}

/// Reads and validates a device file.
pub fn load_file(path: &Path) -> Result<Device, DeviceError> {
    load_file_as(path, path)
}

/// Reads `path` but reports diagnostics under `display`, so that a device file named by a
/// manifest is shown the way the user can find it (relative to where they ran etpkg).
pub(crate) fn load_file_as(path: &Path, display: &Path) -> Result<Device, DeviceError> {
    let text = std::fs::read_to_string(path).map_err(|source| DeviceError::Io {
        path: display.to_path_buf(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    parse(display, &text, DeviceOrigin::File(abs))
}

/// Parses a byte size: an integer (`"4096"`), or a number with a suffix `B`, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), optionally separated by spaces.
/// Returns `None` for anything else, including overflow.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = s[..digits].parse().ok()?;
    let scale: u64 = match s[digits..].trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(scale)
}

const KEYS: &[&str] = &[
    "name",
    "description",
    "triple",
    "features",
    "cpu",
    "std",
    "alignment",
    "memory",
];
const REGION_KEYS: &[&str] = &["size", "fast"];

/// Validates a device file's text, collecting every problem before failing.
fn parse(display: &Path, text: &str, origin: DeviceOrigin) -> Result<Device, DeviceError> {
    let file = SourceFile { display, text };
    let root = tree::parse(&file).map_err(DeviceError::Invalid)?;
    let mut c = Checker::new(file);
    let Kind::Table(top) = &root.kind else {
        unreachable!("a TOML document is a table")
    };
    c.unknown_keys(top, "", KEYS);

    let required_str = |c: &mut Checker, key: &str| -> Option<String> {
        match top.get(key) {
            Some(e) => c.str(&e.value, key).map(str::to_string),
            None => {
                c.missing(root.span.clone(), "", key);
                None
            }
        }
    };
    let name = required_str(&mut c, "name");
    let triple = required_str(&mut c, "triple");
    let description = top
        .get("description")
        .and_then(|e| c.str(&e.value, "description").map(str::to_string))
        .unwrap_or_default();
    let mut features: Vec<String> = match top.get("features") {
        Some(e) => c
            .strings(&e.value, "features")
            .map(|v| v.into_iter().map(|(s, _)| s.to_string()).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let cpu = top
        .get("cpu")
        .and_then(|e| c.str(&e.value, "cpu").map(str::to_string));
    let std = match top.get("std") {
        Some(e) => c.bool(&e.value, "std"),
        None => {
            c.missing(root.span.clone(), "", "std");
            None
        }
    };
    let alignment = match top.get("alignment") {
        Some(e) => match c.int(&e.value, "alignment") {
            Some(a) if a > 0 && (a as u64).is_power_of_two() => Some(a as u64),
            Some(a) => {
                c.error(
                    e.value.span.clone(),
                    format!("alignment {a} is not a power of two"),
                    Some("not a power of two"),
                    Some("alignment is in bytes, e.g. 16 or 64".to_string()),
                );
                None
            }
            None => None,
        },
        None => {
            c.missing(root.span.clone(), "", "alignment");
            None
        }
    };

    let mut regions = Vec::new();
    match top.get("memory") {
        Some(e) => {
            if let Some(mem) = c.table(&e.value, "memory") {
                for r in &mem.entries {
                    let path = format!("memory.{}", r.key);
                    let Some(t) = c.table(&r.value, &path) else {
                        continue;
                    };
                    c.unknown_keys(t, &path, REGION_KEYS);
                    let bytes = match t.get("size") {
                        Some(s) => c.size(&s.value, &format!("{path}.size")),
                        None => {
                            c.missing(r.value.span.clone(), &path, "size");
                            None
                        }
                    };
                    let fast = t
                        .get("fast")
                        .and_then(|f| c.bool(&f.value, &format!("{path}.fast")))
                        .unwrap_or(false);
                    if let Some(bytes) = bytes {
                        regions.push(MemoryRegion {
                            name: r.key.clone(),
                            bytes,
                            fast,
                        });
                    }
                }
                if mem.entries.is_empty() {
                    c.error(
                        e.value.span.clone(),
                        "a device needs at least one memory region",
                        Some("no regions"),
                        Some("add a region, e.g. `[memory.ram]` with `size = \"1GiB\"`".into()),
                    );
                }
            }
        }
        None => c.error(
            root.span.clone(),
            "missing table `[memory]`: a device needs at least one memory region",
            None,
            Some("add a region, e.g. `[memory.ram]` with `size = \"1GiB\"`".into()),
        ),
    }

    if !c.diags.is_empty() {
        let diags = crate::manifest::in_file_order(display, c.diags);
        return Err(DeviceError::Invalid(Diagnostics(diags)));
    }
    let mut triple = triple.expect("reported above");
    if triple == "native" {
        triple = host_triple();
        features.extend(host_features());
    }
    features.sort();
    features.dedup();
    regions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Device {
        name: name.expect("reported above"),
        description,
        triple,
        features,
        cpu,
        std: std.expect("reported above"),
        alignment: alignment.expect("reported above"),
        regions,
        origin,
    })
}

/// The target triple of the machine etpkg runs on, from the architecture and OS it was built for.
pub fn host_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        "windows" => format!("{arch}-pc-windows-msvc"),
        os => format!("{arch}-unknown-{os}"),
    }
}

/// The ISA features this machine has, from a fixed list of those the kernels may ask for.
pub fn host_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<&str> = Vec::new();
    // The detection macros need literal names, so each list is written out through a macro.
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($f) { found.push($f); })*
            };
        }
        detect!(
            "sse",
            "sse2",
            "sse3",
            "ssse3",
            "sse4.1",
            "sse4.2",
            "popcnt",
            "avx",
            "avx2",
            "fma",
            "bmi1",
            "bmi2",
            "f16c",
            "lzcnt",
            "movbe",
            "avx512f",
            "avx512bw",
            "avx512cd",
            "avx512dq",
            "avx512vl",
            "avx512vnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => {
                $(if std::arch::is_aarch64_feature_detected!($f) { found.push($f); })*
            };
        }
        detect!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    let mut out: Vec<String> = found.into_iter().map(str::to_string).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses_and_is_named_after_its_file() {
        assert!(BUILTIN_NAMES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(BUILTINS.len(), BUILTIN_NAMES.len());
        for name in builtin_names() {
            let d = builtin(name)
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}:\n{e}"));
            assert_eq!(&d.name, name);
            assert!(!d.regions.is_empty());
            assert!(d.alignment.is_power_of_two());
            assert!(d.features.windows(2).all(|w| w[0] < w[1]), "{name}");
            assert_eq!(d.origin, DeviceOrigin::Builtin);
        }
        assert!(builtin("pixel8").is_none());
    }

    #[test]
    fn builtin_contents() {
        let m7 = builtin("cortex-m7").unwrap().unwrap();
        assert!(!m7.std);
        assert_eq!(m7.triple, "thumbv7em-none-eabihf");
        let names: Vec<_> = m7
            .regions
            .iter()
            .map(|r| (r.name.as_str(), r.bytes, r.fast))
            .collect();
        assert_eq!(
            names,
            [("dtcm", 128 << 10, true), ("sram", 512 << 10, false)]
        );
        let v4 = builtin("x86_64-v4").unwrap().unwrap();
        let v3 = builtin("x86_64-v3").unwrap().unwrap();
        assert!(v3.features.iter().all(|f| v4.features.contains(f)));
        assert!(v4.features.contains(&"avx512vl".to_string()));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512KiB"), Some(524_288));
        assert_eq!(parse_size("16GiB"), Some(16 << 30));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64 B"), Some(64));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("3KB"), Some(3000));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        for bad in [
            "",
            "KiB",
            "12QB",
            "-1",
            "1.5MiB",
            "99999999999999999999",
            "20000000000GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn host_is_this_machine() {
        let host = builtin("host").unwrap().unwrap();
        assert_ne!(host.triple, "native");
        assert!(
            host.triple.starts_with(std::env::consts::ARCH),
            "{}",
            host.triple
        );
        assert_eq!(host.triple, host_triple());
        if cfg!(target_arch = "x86_64") {
            // Every x86-64 processor has SSE2.
            assert!(host.features.contains(&"sse2".to_string()));
        }
    }

    #[test]
    fn invalid_files_are_reported_with_positions() {
        let text = "name = \"b\"\ntriple = 3\nstd = true\nalignment = 12\nfeaturs = []\n[memory]\n";
        let err = parse(Path::new("b.toml"), text, DeviceOrigin::Builtin).unwrap_err();
        let DeviceError::Invalid(d) = err else {
            panic!("not a diagnostic")
        };
        let got: Vec<_> = d.0.iter().map(|d| (d.line, d.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (2, "expected a string for `triple`, found an integer"),
                (4, "alignment 12 is not a power of two"),
                (5, "unknown key `featurs` at the top level"),
                (6, "a device needs at least one memory region"),
            ]
        );
        assert_eq!(d.0[2].help.as_deref(), Some("did you mean `features`?"));
    }
}
