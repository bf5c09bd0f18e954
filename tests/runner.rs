//! The no_std runner behind `etpkg run --target`, `verify` and `bench` links and runs for both
//! kernel objectives. Invariant: the verdict is `etpkg verify`'s comparison of the runner's
//! outputs with PyTorch's (the classifier example's `io/y.npy`), through the binary as a user
//! runs it.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_etpkg");

const MANIFEST: &str = r#"[package]
name = "classifier"
version = "0.1.0"

[model]
source = "models/classifier.pt2"

[profile.size]
inherits = "release"
kernels = "size"

[target.small]
device = "host"
profile = "size"

[target.fast]
device = "host"

[verify]
inputs = ["io/x.npy"]
expected = ["io/y.npy"]
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Both objectives' runners build (the `no_std` runner links against the C library alone) and
/// reproduce PyTorch's outputs; the `size` runner is the smaller binary.
#[test]
fn runner_links_and_verifies_for_both_objectives() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("runner-classifier");
    let _ = std::fs::remove_dir_all(&dir);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/classifier");
    copy_dir(&example.join("models"), &dir.join("models"));
    copy_dir(&example.join("io"), &dir.join("io"));
    std::fs::write(dir.join("ExecuTorch.toml"), MANIFEST).unwrap();
    let mut sizes = Vec::new();
    for target in ["small", "fast"] {
        let out = Command::new(BIN)
            .args(["verify", "--target", target])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etpkg verify --target {target} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let runner = dir
            .join("target/etpkg/.run")
            .join(target)
            .join("cargo-target/release/etpkg-runner");
        sizes.push(std::fs::metadata(&runner).unwrap().len());
    }
    assert!(
        sizes[0] < sizes[1],
        "the size runner ({} bytes) is not smaller than the speed runner ({} bytes)",
        sizes[0],
        sizes[1]
    );
}
