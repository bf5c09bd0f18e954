//! `etpkg run --target`, `verify` and `bench` end to end through the binary: a project per
//! fixture is built, its generated runtime crate is compiled with the runner, and the outputs
//! are compared with PyTorch's, saved beside the fixture. Every fixture and real model runs
//! this way in the heavy tier (`scripts/target_parity.py`); this suite keeps a few in the
//! default test run because each costs a compile of its runtime.

mod common;

use common::fixtures::{numbered, relative_error};
use etpkg::npy;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_etpkg");

struct Project {
    dir: PathBuf,
}

impl Project {
    /// A project holding fixture `name`'s model, with `[verify]` on its saved inputs and
    /// PyTorch's outputs, built with `profile` (`release`, `small`, which selects for size, or
    /// `threaded`, which runs on two threads).
    fn new(name: &str, profile: &str) -> Project {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/models")
            .join(name);
        // Tests run in parallel and may use the same fixture: each project gets its own folder.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "etpkg-run-{name}-{profile}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("models")).unwrap();
        fs::create_dir_all(dir.join("io")).unwrap();
        fs::copy(fixture.join("export.pt2"), dir.join("models/m.pt2")).unwrap();
        let copy = |prefix: &str| -> Vec<String> {
            numbered(&fixture, prefix)
                .iter()
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    fs::copy(p, dir.join("io").join(&name)).unwrap();
                    format!("\"io/{name}\"")
                })
                .collect()
        };
        let (inputs, expected) = (copy("input"), copy("output"));
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n\
             [model]\nsource = \"models/m.pt2\"\n\n\
             [profile.small]\ninherits = \"release\"\nkernels = \"size\"\n\n\
             [profile.threaded]\ninherits = \"release\"\nthreads = 2\n\n\
             [target.host]\ndevice = \"host\"\nprofile = \"{profile}\"\n\n\
             [verify]\ninputs = [{}]\nexpected = [{}]\n",
            inputs.join(", "),
            expected.join(", ")
        );
        fs::write(dir.join("ExecuTorch.toml"), manifest).unwrap();
        Project { dir }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(&self.dir)
            .env("ETPKG_CACHE_DIR", self.dir.join("cache"))
            .output()
            .unwrap()
    }

    fn inputs(&self) -> Vec<PathBuf> {
        numbered(&self.dir.join("io"), "input")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `verify` passes, and `run` writes outputs that match PyTorch's within
/// `1e-4 · max(1, max|torch|)`.
fn check(name: &str, profile: &str) {
    let p = Project::new(name, profile);
    let out = p.run(&["verify", "--json"]);
    assert!(
        out.status.success(),
        "{name}: verify failed:\n{}",
        stderr(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for o in v[0]["outputs"].as_array().unwrap() {
        assert!(o["pass"].as_bool().unwrap(), "{name}: {o}");
    }

    let mut args = vec!["run", "--target", "host", "--output-dir", "out"];
    let inputs: Vec<String> = p.inputs().iter().map(|i| i.display().to_string()).collect();
    for i in &inputs {
        args.extend(["--input", i.as_str()]);
    }
    let out = p.run(&args);
    assert!(
        out.status.success(),
        "{name}: run failed:\n{}",
        stderr(&out)
    );
    let expected = numbered(&p.dir.join("io"), "output");
    let got = numbered(&p.dir.join("out"), "output");
    assert_eq!(got.len(), expected.len(), "{name}");
    for (g, w) in got.iter().zip(&expected) {
        let err = relative_error(&npy::read(g).unwrap(), &npy::read(w).unwrap()).unwrap();
        assert!(
            err <= 1e-4,
            "{name}: {}: relative error {err:e}",
            g.display()
        );
    }
}

#[test]
fn classifier_runs_on_the_host_within_tolerance() {
    check("classifier", "release");
}

#[test]
fn gpt_runs_on_the_host_with_size_kernels() {
    check("gpt", "small");
    // Repeated runs set the inputs each time: gpt's token ids live where later tensors go, so
    // a benchmark that reused them would index out of range.
    let p = Project::new("gpt", "small");
    let out = p.run(&["bench", "--iterations", "3", "--warmup", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn mobilenet_v2_runs_on_the_host_within_tolerance() {
    check("mobilenet_v2", "release");
}

/// Two threads: the profile's `threads = 2` reaches the generated crate and the runner,
/// `verify` passes on the threaded runner, and `--threads` overrides the profile.
#[test]
fn mobilenet_v2_verifies_on_two_threads() {
    check("mobilenet_v2", "threaded");
    let p = Project::new("mobilenet_v2", "threaded");
    let bench = |extra: &[&str]| -> Value {
        let mut args = vec!["bench", "--iterations", "3", "--warmup", "1", "--json"];
        args.extend(extra);
        let out = p.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let two = bench(&[]);
    let lib = fs::read_to_string(p.dir.join("target/etpkg/host/runtime/src/lib.rs")).unwrap();
    assert!(lib.contains("pub const THREADS: usize = 2;"));
    // mobilenet_v2's convolutions split on a machine with AVX-512; elsewhere nothing does and
    // the runner stays on one thread.
    let splits = p
        .dir
        .join("target/etpkg/host/runtime/src/kernels/par.rs")
        .is_file();
    assert_eq!(two[0]["threads"], if splits { 2 } else { 1 }, "{two}");
    let one = bench(&["--threads", "1"]);
    assert_eq!(one[0]["threads"], 1, "{one}");
    let out = p.run(&["verify", "--threads", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = p.run(&["bench", "--threads", "0"]);
    assert!(!out.status.success());
}

#[test]
fn verify_fails_past_the_tolerance_and_bench_reports_per_op_times() {
    let p = Project::new("classifier", "release");
    // PyTorch's expected output, perturbed well past the tolerance.
    let y = p.dir.join("io/output_0.npy");
    let mut t = npy::read(&y).unwrap();
    if let etpkg::interp::Data::F32(v) = &mut t.data {
        v[0] += 0.5;
    }
    npy::write(&y, &t).unwrap();
    let out = p.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Mismatch"), "{}", stderr(&out));

    let out = p.run(&["bench", "--iterations", "5", "--warmup", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &v[0];
    assert_eq!(b["iterations"], 5);
    assert!(b["median_ns"].as_u64().unwrap() > 0);
    let ops = b["ops"].as_array().unwrap();
    assert!(ops
        .iter()
        .any(|o| o["op"].as_str().unwrap().starts_with("conv")));
    // The per-op medians cannot add up to more than the slowest run.
    let sum: u64 = ops.iter().map(|o| o["median_ns"].as_u64().unwrap()).sum();
    assert!(sum <= b["max_ns"].as_u64().unwrap(), "{v}");

    // Another program through this target's device: a runtime is generated for it.
    let other = Project::new("grouped_conv", "release");
    assert!(other.run(&["build"]).status.success());
    let program = other.dir.join("target/etpkg/host/program.pte");
    let input = other.inputs()[0].display().to_string();
    let out = p.run(&[
        "run",
        "--target",
        "host",
        "--program",
        &program.display().to_string(),
        "--input",
        &input,
        "--output-dir",
        "other-out",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = npy::read(&p.dir.join("other-out/output_0.npy")).unwrap();
    let want = npy::read(&other.dir.join("io/output_0.npy")).unwrap();
    assert!(relative_error(&got, &want).unwrap() <= 1e-4);

    // A wrong input is an error that names the file, not a crash.
    let out = p.run(&[
        "run",
        "--target",
        "host",
        "--input",
        &input,
        "--output-dir",
        "bad-out",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expected shape"), "{}", stderr(&out));
}

/// The generated crate on its own, as a user gets it: `cargo build --release` offline with no
/// warnings, and its own tests (among them the counting-allocator proof that executing
/// allocates nothing) pass with the program embedded.
#[test]
fn the_generated_crate_builds_without_warnings_and_executes_without_allocating() {
    let p = Project::new("classifier", "release");
    let out = p.run(&["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let crate_dir = p.dir.join("target/etpkg/host/runtime");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for args in [
        &["build", "--release", "--offline"][..],
        &["test", "--release", "--offline", "--features", "std,embed"][..],
    ] {
        let out = Command::new(&cargo)
            .args(args)
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", p.dir.join("cargo-target"))
            .env_remove("RUSTFLAGS")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "cargo {args:?}:\n{err}");
        assert!(!err.contains("warning:"), "cargo {args:?} warned:\n{err}");
        if args[0] == "test" {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                stdout.contains("executes_without_allocating ... ok"),
                "{stdout}"
            );
        }
    }
}
