//! Build benchmark: `etpkg build` of a three-target project around the real `mobilenet_v2`
//! archive, through the binary as a user runs it. Reports the median of
//!   - a cold build (no published outputs, no cache, no remembered file digests), and
//!   - a no-op build (everything fresh),
//!
//! with a no-op `cargo build` of an empty crate, timed in the same run, as the peer.
//! Targets (issue 3): no-op under 20 ms, cold under 1 s.
//!
//! The archive comes from `ETPKG_BENCH_MODEL` (default
//! `target/real-models/mobilenet_v2/export.pt2`, written by
//! `scripts/real_models.py --export-only --out target/real-models`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_etpkg");

const MANIFEST: &str = r#"[package]
name = "mobilenet"
version = "0.1.0"

[model]
source = "models/mobilenet_v2.pt2"
inputs = { x = { shape = [1, 3, 224, 224], dtype = "f32" } }

[profile.size]
inherits = "release"
kernels = "size"

[target.host]
device = "host"

[target.avx512]
device = "x86_64-v4"

[target.mcu]
device = "cortex-m7"
profile = "size"
memory = { sram = "64MiB" }
"#;

fn time(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd.output().expect("the command starts");
    let dt = t.elapsed().as_secs_f64() * 1e3;
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    dt
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let model = std::env::var_os("ETPKG_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/real-models/mobilenet_v2/export.pt2"));
    if !model.exists() {
        eprintln!(
            "{} does not exist; create it with `python scripts/real_models.py --export-only --out target/real-models`",
            model.display()
        );
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("etpkg-bench-build-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::copy(&model, dir.join("models/mobilenet_v2.pt2")).unwrap();
    fs::write(dir.join("ExecuTorch.toml"), MANIFEST).unwrap();
    // File digests are remembered only for files older than a second (see
    // `build::fingerprint`); a real project's model is older than that.
    std::thread::sleep(Duration::from_millis(1100));

    let build = || {
        let mut c = Command::new(BIN);
        c.args(["build", "-q"])
            .current_dir(&dir)
            .env_remove("ETPKG_CACHE_DIR");
        c
    };
    let runs = 15;
    let cold: Vec<f64> = (0..runs)
        .map(|_| {
            fs::remove_dir_all(dir.join("target")).ok();
            time(&mut build())
        })
        .collect();
    // Warm the remembered digests once, then measure the no-op.
    time(&mut build());
    let noop: Vec<f64> = (0..30).map(|_| time(&mut build())).collect();

    // The peer: a no-op `cargo build` of an empty crate, the build tool users compare with.
    let peer_dir = dir.join("peer");
    fs::create_dir_all(peer_dir.join("src")).unwrap();
    fs::write(
        peer_dir.join("Cargo.toml"),
        "[package]\nname = \"peer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    fs::write(peer_dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    let cargo = || {
        let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        c.args(["build", "-q", "--offline"]).current_dir(&peer_dir);
        c
    };
    time(&mut cargo());
    let peer: Vec<f64> = (0..30).map(|_| time(&mut cargo())).collect();

    let (cold, noop, peer) = (median(cold), median(noop), median(peer));
    let mb = fs::metadata(&model).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "build {} ({mb:.1} MB), 3 targets:\n  \
         cold build: median {cold:.1} ms over {runs} runs (target < 1000 ms)\n  \
         no-op build: median {noop:.2} ms over 30 runs (target < 20 ms)\n  \
         peer, no-op `cargo build` of an empty crate: median {peer:.2} ms; etpkg/cargo = {:.2}",
        model.display(),
        noop / peer
    );
    let _ = fs::remove_dir_all(&dir);
    if noop >= 20.0 || cold >= 1000.0 {
        eprintln!("a build target was missed");
        std::process::exit(1);
    }
}
