//! The generated runtime crate: deterministic, holding only the kept kernel variants (and what
//! they call), rustfmt-clean, and compiling. Invariant: every check reads the generated files
//! themselves or the compiler's and rustfmt's verdict on them.

use etpkg::device::{self, Device};
use etpkg::generate::{generate, Generate, GenerateError, Signature, TensorSig};
use etpkg::manifest::KernelObjective;
use etpkg::rt::kernels;
use etpkg::rt::kernels::shape::DType;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn device(name: &str) -> Device {
    device::builtin(name).unwrap().unwrap()
}

fn all_variants() -> BTreeSet<String> {
    let tables: &[&[kernels::meta::KernelInfo]] = &[
        kernels::attention::VARIANTS,
        kernels::binary::VARIANTS,
        kernels::conv::VARIANTS,
        kernels::conv_transpose::VARIANTS,
        kernels::index::VARIANTS,
        kernels::layout::VARIANTS,
        kernels::matmul::VARIANTS,
        kernels::norm::VARIANTS,
        kernels::pool::VARIANTS,
        kernels::reduce::VARIANTS,
        kernels::softmax::VARIANTS,
        kernels::unary::VARIANTS,
        kernels::upsample::VARIANTS,
        kernels::where_::VARIANTS,
    ];
    tables
        .iter()
        .flat_map(|t| t.iter().map(|k| k.name.to_string()))
        .collect()
}

fn sig(name: &str, dtype: DType, shape: &[usize]) -> TensorSig {
    TensorSig {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
    }
}

fn classifier_signature() -> Signature {
    Signature {
        inputs: vec![sig("x", DType::F32, &[1, 3, 8, 8])],
        outputs: vec![sig("logits", DType::F32, &[1, 10])],
    }
}

fn gen(
    package: &str,
    dev: &Device,
    objective: KernelObjective,
    kept: &BTreeSet<String>,
    signature: Signature,
) -> Result<Vec<(String, Vec<u8>)>, GenerateError> {
    generate(&Generate {
        package,
        device: dev,
        objective,
        kept,
        signature,
        arena_bytes: 4096,
        threads: 1,
    })
}

fn file<'f>(files: &'f [(String, Vec<u8>)], path: &str) -> &'f str {
    let (_, bytes) = files
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("no {path} in the generated crate"));
    std::str::from_utf8(bytes).unwrap()
}

/// A fresh directory under cargo's per-test temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("generate")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (p, bytes) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn output_is_deterministic_and_sorted() {
    let kept: BTreeSet<String> = ["conv.pointwise", "binary.binary", "softmax.generic"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let dev = device("x86_64-v3");
    let a = gen(
        "m_x86",
        &dev,
        KernelObjective::Speed,
        &kept,
        classifier_signature(),
    )
    .unwrap();
    let b = gen(
        "m_x86",
        &dev,
        KernelObjective::Speed,
        &kept,
        classifier_signature(),
    )
    .unwrap();
    assert_eq!(a, b);
    let paths: Vec<&String> = a.iter().map(|(p, _)| p).collect();
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "{paths:?}");
    for want in [
        "Cargo.toml",
        ".cargo/config.toml",
        "README.md",
        "src/lib.rs",
        "src/pte.rs",
        "src/step.rs",
        "src/kernels/mod.rs",
        "tests/no_alloc.rs",
        "fuzz/Cargo.toml",
        "fuzz/fuzz_targets/load.rs",
    ] {
        assert!(paths.iter().any(|p| *p == want), "missing {want}");
    }
    // The objective reaches the release profile; the device's features reach rustflags.
    let size = gen(
        "m_x86",
        &dev,
        KernelObjective::Size,
        &kept,
        classifier_signature(),
    )
    .unwrap();
    assert!(file(&a, "Cargo.toml").contains("opt-level = 3\n"));
    assert!(file(&size, "Cargo.toml").contains("opt-level = \"s\"\n"));
    let config = file(&a, ".cargo/config.toml");
    assert!(config.contains("[target.x86_64-unknown-linux-gnu]"));
    assert!(config.contains("+avx2") && config.contains("+fma"));
    let m7 = gen(
        "m_m7",
        &device("cortex-m7"),
        KernelObjective::Size,
        &kept,
        classifier_signature(),
    )
    .unwrap();
    let config = file(&m7, ".cargo/config.toml");
    assert!(config.contains("[target.thumbv7em-none-eabihf]"));
    assert!(config.contains("rustup target add thumbv7em-none-eabihf"));
    // rustc knows Arm's feature names only as unstable ones; the CPU names them stably.
    assert!(config.contains("target-cpu=cortex-m7"));
    assert!(!config.contains("target-feature"));
}

/// Keeping only `conv.pointwise` copies that variant and the families it needs, nothing else.
#[test]
fn only_kept_variants_are_copied() {
    let kept: BTreeSet<String> = ["conv.pointwise".to_string()].into();
    let files = gen(
        "pw",
        &device("x86_64"),
        KernelObjective::Size,
        &kept,
        classifier_signature(),
    )
    .unwrap();
    let conv = file(&files, "src/kernels/conv.rs");
    assert!(conv.contains("pub fn pointwise("));
    assert!(conv.contains("pub fn pointwise_accepts("));
    for gone in [
        "fn generic(",
        "fn direct(",
        "fn depthwise(",
        "VARIANTS",
        "KernelInfo",
    ] {
        assert!(!conv.contains(gone), "{gone} survived");
    }
    let kernel_files: Vec<&str> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("src/kernels/"))
        .collect();
    // `act` is named by step.rs and conv.rs, `math` by act.rs, `shape` (no variants) by the
    // op bindings' shared part; no other family is needed.
    for f in ["act.rs", "conv.rs", "math.rs", "mod.rs"] {
        assert!(
            kernel_files.contains(&f),
            "{f} missing from {kernel_files:?}"
        );
    }
    for f in &kernel_files {
        assert!(
            ["act.rs", "conv.rs", "math.rs", "mod.rs", "shape.rs"].contains(f),
            "{f} copied"
        );
    }
    let mods: Vec<String> = file(&files, "src/kernels/mod.rs")
        .lines()
        .filter_map(|l| {
            Some(format!(
                "{}.rs",
                l.strip_prefix("pub mod ")?.strip_suffix(';')?
            ))
        })
        .collect();
    assert_eq!(
        mods,
        kernel_files[..kernel_files.len()]
            .iter()
            .filter(|f| **f != "mod.rs")
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
    );
    for (p, bytes) in &files {
        let text = std::str::from_utf8(bytes).unwrap();
        if p.ends_with(".rs") {
            assert!(
                !text.lines().any(|l| l.trim_start().starts_with("//@")),
                "{p} keeps a marker"
            );
        }
    }
    assert!(file(&files, "README.md").contains("`conv.pointwise`"));
    // Nothing kept splits work, so there is no splitter and `threads` is the fallback.
    assert!(!kernel_files.contains(&"par.rs"));
    let threads = file(&files, "src/threads.rs");
    assert!(
        threads.contains("pub fn set_threads(_n: usize) {}"),
        "{threads}"
    );
}

/// A kept variant that splits work brings `kernels::par` and the std thread pool, compiled
/// only under `std`; the profile's thread count becomes `THREADS`.
#[test]
fn splitting_variants_bring_the_pool() {
    let kept: BTreeSet<String> = ["conv.pointwise_avx512".to_string()].into();
    let files = generate(&Generate {
        package: "pw",
        device: &device("x86_64-v4"),
        objective: KernelObjective::Speed,
        kept: &kept,
        signature: classifier_signature(),
        arena_bytes: 4096,
        threads: 4,
    })
    .unwrap();
    assert!(file(&files, "src/kernels/mod.rs").contains("pub mod par;"));
    assert!(file(&files, "src/kernels/par.rs").contains("pub fn for_each_chunk_mut("));
    let threads = file(&files, "src/threads.rs");
    assert!(threads.contains("fn worker(index: usize)"), "{threads}");
    let lib = file(&files, "src/lib.rs");
    assert!(
        lib.contains("#[cfg(feature = \"std\")]\npub mod threads;"),
        "{lib}"
    );
    assert!(lib.contains("pub const THREADS: usize = 4;"), "{lib}");
}

#[test]
fn bad_input_is_an_error() {
    let dev = device("x86_64");
    let kept: BTreeSet<String> = ["conv.nonexistent".to_string()].into();
    let err = gen(
        "ok",
        &dev,
        KernelObjective::Speed,
        &kept,
        classifier_signature(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel variant `conv.nonexistent` does not exist in the kernel library"
    );
    let none = BTreeSet::new();
    assert!(matches!(
        gen(
            "1bad",
            &dev,
            KernelObjective::Speed,
            &none,
            classifier_signature()
        ),
        Err(GenerateError::BadPackage(_))
    ));
    assert!(matches!(
        gen(
            "m",
            &dev,
            KernelObjective::Speed,
            &none,
            Signature::default()
        ),
        Err(GenerateError::NoOutputs)
    ));
}

fn rustfmt_check(dir: &Path, files: &[(String, Vec<u8>)]) {
    let rs: Vec<PathBuf> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".rs"))
        .map(|(p, _)| dir.join(p))
        .collect();
    let out = Command::new("rustfmt")
        .args(["--check", "--edition", "2021"])
        .args(&rs)
        .output()
        .expect("rustfmt runs");
    assert!(
        out.status.success(),
        "generated code is not rustfmt-formatted:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every generated `.rs` file is exactly what rustfmt writes, for several signatures (one output,
/// several outputs, long parameter lists, every dtype) and selections.
#[test]
fn generated_rust_is_rustfmt_clean() {
    let dev = device("x86_64-v4");
    let long = Signature {
        inputs: vec![
            sig("input_ids", DType::I64, &[1, 128]),
            sig("attention.mask", DType::Bool, &[1, 1, 128, 128]),
            sig("Pixel-Values", DType::F32, &[1, 3, 224, 224]),
            sig("self", DType::F32, &[]),
        ],
        outputs: vec![
            sig("logits", DType::F32, &[1, 128, 50257]),
            sig("hidden", DType::F32, &[1, 128, 768]),
            sig("mask_out", DType::Bool, &[1, 128]),
        ],
    };
    let cases = [
        ("one", all_variants(), classifier_signature()),
        ("many", ["conv.pointwise".to_string()].into(), long),
        ("none", BTreeSet::new(), classifier_signature()),
    ];
    for (name, kept, signature) in cases {
        let files = gen(
            &format!("model_{name}"),
            &dev,
            KernelObjective::Speed,
            &kept,
            signature,
        )
        .unwrap();
        let dir = scratch(&format!("fmt_{name}"));
        write_all(&dir, &files);
        rustfmt_check(&dir, &files);
    }
}

/// For each variant alone, the trimmed kernels compile (type-checked with `-D warnings`)
/// together with the runtime files that name them, so the closure never misses a callee.
#[test]
fn each_variant_alone_compiles() {
    let dev = device("x86_64");
    let dir = scratch("alone");
    let mut kept_sets: Vec<BTreeSet<String>> =
        all_variants().into_iter().map(|v| [v].into()).collect();
    kept_sets.push(all_variants());
    for (i, kept) in kept_sets.iter().enumerate() {
        let files = gen(
            "alone",
            &dev,
            KernelObjective::Speed,
            kept,
            classifier_signature(),
        )
        .unwrap();
        let crate_dir = dir.join(i.to_string());
        // The kernels with the runtime files that name them: the reader, the steps and, once
        // they exist, the op bindings. The executor and the typed API are left out here.
        let only: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .filter(|(p, _)| {
                p.starts_with("src/kernels/")
                    || p.starts_with("src/ops/")
                    || p == "src/pte.rs"
                    || p == "src/step.rs"
            })
            .collect();
        let ops = only.iter().any(|(p, _)| p == "src/ops/mod.rs");
        write_all(&crate_dir, &only);
        let lib = crate_dir.join("src/lib.rs");
        std::fs::write(
            &lib,
            format!(
                "#![no_std]\n#[allow(dead_code, unused_imports)]\npub mod kernels;\n{}pub mod pte;\npub mod step;\n",
                if ops { "pub mod ops;\n" } else { "" }
            ),
        )
        .unwrap();
        let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "lib",
                "--emit=metadata",
            ])
            .args(["-D", "warnings", "--crate-name", "alone", "-o"])
            .arg(crate_dir.join("liballone.rmeta"))
            .arg(&lib)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{kept:?} does not compile alone:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
