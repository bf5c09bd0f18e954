//! Parity suite: every fixture model, in both export flavours, run by the reference interpreter
//! against the outputs PyTorch saved when the fixture was made (`scripts/gen_fixtures.py`).
//!
//! ```text
//! tests/fixtures/models/<name>/
//!   export.pt2      # torch.export.export(model, args)
//!   core.pt2        # the same after run_decompositions()
//!   input_<i>.npy   # user inputs in signature order
//!   output_<i>.npy  # PyTorch eager outputs
//! ```
//!
//! A float output passes when `max|etpkg − torch| ≤ 1e-4 × max(1, max|torch|)`; integer and
//! bool outputs must match exactly.

use etpkg::interp::{self, Data, Tensor};
use etpkg::{npy, pt2};
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 1e-4;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("export.pt2").exists())
        .collect();
    dirs.sort();
    dirs
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.npy")))
        .take_while(|p| p.exists())
        .collect()
}

/// The worst error of `got` against `want`, relative to `max(1, max|want|)`; integer and bool
/// mismatches count as infinitely bad.
fn relative_error(got: &Tensor, want: &Tensor) -> Result<f64, String> {
    if got.shape != want.shape {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    match (&got.data, &want.data) {
        (Data::F32(g), Data::F32(w)) => {
            let scale = w.iter().fold(1.0f64, |m, &x| m.max((x as f64).abs()));
            let mut worst = 0.0f64;
            for (&a, &b) in g.iter().zip(w) {
                let (a, b) = (a as f64, b as f64);
                if a.is_nan() != b.is_nan() {
                    return Err(format!("NaN mismatch: got {a}, expected {b}"));
                }
                if a.is_infinite() || b.is_infinite() {
                    if a != b {
                        return Err(format!("infinity mismatch: got {a}, expected {b}"));
                    }
                    continue;
                }
                if !a.is_nan() {
                    worst = worst.max((a - b).abs() / scale);
                }
            }
            Ok(worst)
        }
        (Data::I64(g), Data::I64(w)) if g == w => Ok(0.0),
        (Data::Bool(g), Data::Bool(w)) if g == w => Ok(0.0),
        _ => Err(format!(
            "values or dtype differ ({} vs {})",
            got.dtype(),
            want.dtype()
        )),
    }
}

/// Runs one archive of a fixture; returns the worst relative error over its outputs.
fn check(dir: &Path, flavour: &str) -> Result<f64, String> {
    let archive = dir.join(format!("{flavour}.pt2"));
    let imported = pt2::import(&archive).map_err(|e| e.to_string())?;
    let inputs: Vec<Tensor> = numbered(dir, "input")
        .iter()
        .map(|p| npy::read(p).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let expected: Vec<Tensor> = numbered(dir, "output")
        .iter()
        .map(|p| npy::read(p).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let got = interp::run(&imported.graph, &inputs).map_err(|e| e.to_string())?;
    if got.len() != expected.len() {
        return Err(format!(
            "{} outputs, expected {}",
            got.len(),
            expected.len()
        ));
    }
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(&expected).enumerate() {
        let e = relative_error(g, w).map_err(|m| format!("output {i}: {m}"))?;
        if e > TOLERANCE {
            return Err(format!(
                "output {i}: relative error {e:.3e} exceeds {TOLERANCE:e}"
            ));
        }
        worst = worst.max(e);
    }
    Ok(worst)
}

#[test]
fn every_fixture_matches_pytorch_in_both_flavours() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 6,
        "expected the fixture models, found {}",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy();
        for flavour in ["export", "core"] {
            match check(dir, flavour) {
                Ok(e) => println!("{name:<24} {flavour:<7} worst relative error {e:.2e}"),
                Err(m) => failures.push(format!("{name} ({flavour}): {m}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
