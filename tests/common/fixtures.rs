//! The fixture models under `tests/fixtures/models/`, as the suites that check every fixture
//! read them. Invariant: reads fixtures and compares tensors; decides nothing about tolerances.

use etpkg::interp::{Data, Tensor};
use etpkg::npy;
use std::path::{Path, PathBuf};

/// Every fixture's folder, sorted by name.
pub fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("export.pt2").exists())
        .collect();
    dirs.sort();
    dirs
}

/// `<prefix>_0.npy`, `<prefix>_1.npy`, ... for as long as they exist.
pub fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.npy")))
        .take_while(|p| p.exists())
        .collect()
}

/// The worst error of `got` against `want`, relative to `max(1, max|want|)`; integer and bool
/// mismatches count as infinitely bad.
pub fn relative_error(got: &Tensor, want: &Tensor) -> Result<f64, String> {
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

/// A fixture's user inputs, in signature order.
pub fn inputs(dir: &Path) -> Vec<Tensor> {
    numbered(dir, "input")
        .iter()
        .map(|p| npy::read(p).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}
