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

mod common;

use common::fixtures::{fixture_dirs, numbered, relative_error};
use etpkg::interp::{self, Tensor};
use etpkg::{npy, pt2};
use std::path::Path;

const TOLERANCE: f64 = 1e-4;

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
