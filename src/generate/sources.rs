//! The shared sources that generated runtime crates copy, embedded into the etpkg binary.
//! Invariant: `SOURCES` holds every file under `runtime/src/` and every kernel family file of
//! `kernels/src/` (not its `lib.rs`, which the generator replaces), sorted by path, so that
//! etpkg generates the same crate wherever it runs, with or without the repository.

/// One table entry: the path relative to the repository root and the file's text.
macro_rules! src {
    ($path:literal) => {
        ($path, include_str!(concat!("../../", $path)))
    };
}

/// Every shared source, sorted by path. To add a file, add one `src!` line.
pub const SOURCES: &[(&str, &str)] = &[
    src!("kernels/src/act.rs"),
    src!("kernels/src/attention.rs"),
    src!("kernels/src/binary.rs"),
    src!("kernels/src/conv.rs"),
    src!("kernels/src/conv_transpose.rs"),
    src!("kernels/src/index.rs"),
    src!("kernels/src/layout.rs"),
    src!("kernels/src/math.rs"),
    src!("kernels/src/matmul.rs"),
    src!("kernels/src/meta.rs"),
    src!("kernels/src/norm.rs"),
    src!("kernels/src/par.rs"),
    src!("kernels/src/pool.rs"),
    src!("kernels/src/reduce.rs"),
    src!("kernels/src/shape.rs"),
    src!("kernels/src/softmax.rs"),
    src!("kernels/src/unary.rs"),
    src!("kernels/src/upsample.rs"),
    src!("kernels/src/where_.rs"),
    src!("kernels/src/x86.rs"),
    src!("runtime/src/decode.rs"),
    src!("runtime/src/exec.rs"),
    src!("runtime/src/ops/attention.rs"),
    src!("runtime/src/ops/binary.rs"),
    src!("runtime/src/ops/conv.rs"),
    src!("runtime/src/ops/conv_transpose.rs"),
    src!("runtime/src/ops/index.rs"),
    src!("runtime/src/ops/layout.rs"),
    src!("runtime/src/ops/matmul.rs"),
    src!("runtime/src/ops/mod.rs"),
    src!("runtime/src/ops/norm.rs"),
    src!("runtime/src/ops/pool.rs"),
    src!("runtime/src/ops/reduce.rs"),
    src!("runtime/src/ops/softmax.rs"),
    src!("runtime/src/ops/unary.rs"),
    src!("runtime/src/ops/upsample.rs"),
    src!("runtime/src/ops/where_.rs"),
    src!("runtime/src/pte.rs"),
    src!("runtime/src/step.rs"),
    src!("runtime/src/threads.rs"),
];

/// A digest of every shared source (paths and texts): it changes exactly when a generated
/// crate or a kernel selection could.
pub fn digest() -> crate::cache::Digest {
    let mut k = crate::build::key::KeyBuilder::new("sources", 1);
    for (path, text) in SOURCES {
        k.field("path", path.as_bytes());
        k.field("text", text.as_bytes());
    }
    k.finish()
}

/// The text of the shared source at `path` (relative to the repository root).
pub fn source(path: &str) -> Option<&'static str> {
    SOURCES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

/// The kernel family files as (family name, text), sorted by family.
pub fn kernel_families() -> impl Iterator<Item = (&'static str, &'static str)> {
    SOURCES.iter().filter_map(|(p, t)| {
        let family = p.strip_prefix("kernels/src/")?.strip_suffix(".rs")?;
        Some((family, *t))
    })
}

/// The op binding files `runtime/src/ops/<family>.rs` as (family name, text), sorted.
pub fn op_bindings() -> impl Iterator<Item = (&'static str, &'static str)> {
    SOURCES.iter().filter_map(|(p, t)| {
        let family = p.strip_prefix("runtime/src/ops/")?.strip_suffix(".rs")?;
        (family != "mod").then_some((family, *t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table lists exactly the files on disk, so a new runtime or kernel file cannot be
    /// forgotten: the generated crate would not compile without it.
    #[test]
    fn table_matches_the_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for dir in ["runtime/src", "runtime/src/ops", "kernels/src"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries {
                let name = e.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".rs") && !(dir == "kernels/src" && name == "lib.rs") {
                    on_disk.push(format!("{dir}/{name}"));
                }
            }
        }
        on_disk.sort();
        let table: Vec<String> = SOURCES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(table, on_disk);
        assert!(table.windows(2).all(|w| w[0] < w[1]));
    }
}
