//! `etpkg run --target`, `etpkg verify` and `etpkg bench`: a built target's program run by its
//! own generated runtime. Invariant: these commands only read what `etpkg build` published
//! (plus the runner they compile); they never change a published output.

use super::runner::{self, median, Runner, RunnerError, Timings};
use crate::interp::Tensor;
use crate::manifest::Manifest;
use crate::npy::{self, NpyError};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TargetError {
    #[error(transparent)]
    Runner(#[from] RunnerError),
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Program { path: PathBuf, message: String },
    #[error("{}: no `[verify]` section; add `inputs` and `expected` .npy files to it", manifest.display())]
    NoVerify { manifest: PathBuf },
    #[error("target `{target}` produced {produced} output(s) but `[verify].expected` lists {expected} in {}", manifest.display())]
    OutputCount {
        manifest: PathBuf,
        target: String,
        produced: usize,
        expected: usize,
    },
}

/// The directory `etpkg build` publishes into: `<root>/target/etpkg`.
pub fn etpkg_dir(manifest: &Manifest) -> PathBuf {
    manifest.root.join("target").join("etpkg")
}

/// The published program of `target`, or of `program` when given.
fn program_path(manifest: &Manifest, target: &str, program: Option<&Path>) -> PathBuf {
    program
        .map(Path::to_path_buf)
        .unwrap_or_else(|| etpkg_dir(manifest).join(target).join("program.pte"))
}

/// The thread count for `target`: `asked` when given, else its profile's `threads`.
pub fn threads_for(
    manifest: &Manifest,
    target: &str,
    asked: Option<usize>,
) -> Result<usize, TargetError> {
    if let Some(n) = asked {
        return Ok(n.clamp(1, crate::manifest::MAX_THREADS));
    }
    let opts = crate::build::BuildOptions {
        targets: vec![target.to_string()],
        profile: None,
        jobs: 1,
        cache_dir: None,
    };
    let sel = crate::build::select(manifest, &opts).map_err(|e| TargetError::Program {
        path: manifest.path.clone(),
        message: e.to_string(),
    })?;
    Ok(sel.first().map_or(1, |s| s.profile.threads))
}

/// Compiles `target`'s runner for `threads` threads.
pub fn runner(manifest: &Manifest, target: &str, threads: usize) -> Result<Runner, TargetError> {
    Ok(runner::prepare(&etpkg_dir(manifest), target, threads)?)
}

/// Generates a runtime crate for `program` (any `.pte` file, such as one ExecuTorch wrote)
/// with the kernels it needs on `target`'s device, and compiles a runner against it. The
/// crate goes to `target/etpkg/.run/<target>/program/runtime/`.
pub fn program_runner(
    manifest: &Manifest,
    target: &str,
    program: &Path,
    threads: usize,
) -> Result<Runner, TargetError> {
    let blob = std::fs::read(program).map_err(|source| TargetError::Read {
        path: program.to_path_buf(),
        source,
    })?;
    let bad = |message: String| TargetError::Program {
        path: program.to_path_buf(),
        message,
    };
    let opts = crate::build::BuildOptions {
        targets: vec![target.to_string()],
        profile: None,
        jobs: 1,
        cache_dir: None,
    };
    let sel = crate::build::select(manifest, &opts)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| bad(format!("target `{target}` is not defined")))?;
    let selection = crate::select::select(&blob, &sel.device, sel.profile.kernels)
        .map_err(|e| bad(e.to_string()))?;
    let signature = crate::build::stage::generate::signature(&blob, None).map_err(&bad)?;
    let arena_bytes =
        crate::rt::exec::Method::arena_bytes(&blob).map_err(|e| bad(e.to_string()))?;
    let files = crate::generate::generate(&crate::generate::Generate {
        package: "etpkg_program",
        device: &sel.device,
        objective: sel.profile.kernels,
        kept: &selection.kept,
        signature,
        arena_bytes,
        threads: sel.profile.threads,
    })
    .map_err(|e| bad(e.to_string()))?;
    let base = etpkg_dir(manifest)
        .join(".run")
        .join(target)
        .join("program");
    let runtime = base.join("runtime");
    runner::sync_dir(&runtime, &files)?;
    Ok(runner::prepare_for(&runtime, &base, target, threads)?)
}

/// Runs the target's program once on `inputs` (on `threads` threads, default the profile's);
/// outputs go to `out_dir` as `output_<k>.npy`.
pub fn run(
    manifest: &Manifest,
    target: &str,
    program: Option<&Path>,
    inputs: &[PathBuf],
    out_dir: &Path,
    threads: Option<usize>,
) -> Result<Vec<PathBuf>, TargetError> {
    let threads = threads_for(manifest, target, threads)?;
    let r = match program {
        Some(p) => program_runner(manifest, target, p, threads)?,
        None => runner(manifest, target, threads)?,
    };
    let program = program_path(manifest, target, program);
    runner::run(&r, &program, inputs, out_dir, 0, 0)?;
    Ok(outputs_in(out_dir))
}

/// The `output_<k>.npy` files in `dir`, in output order.
fn outputs_in(dir: &Path) -> Vec<PathBuf> {
    (0..)
        .map(|k| dir.join(format!("output_{k}.npy")))
        .take_while(|p| p.is_file())
        .collect()
}

/// One output compared against its expected values.
#[derive(Clone, Debug, Serialize)]
pub struct OutputCheck {
    pub index: usize,
    pub expected: PathBuf,
    pub max_abs_error: f64,
    /// `max_abs_error / max(1, max|expected|)`, the measure the tolerance bounds.
    pub max_rel_error: f64,
    pub pass: bool,
}

/// The verification of one target.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    pub target: String,
    pub tolerance: f64,
    pub outputs: Vec<OutputCheck>,
}

impl Verified {
    pub fn pass(&self) -> bool {
        self.outputs.iter().all(|o| o.pass)
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    if let Some(v) = t.as_f32() {
        v.iter().map(|&x| x as f64).collect()
    } else if let Some(v) = t.as_i64() {
        v.iter().map(|&x| x as f64).collect()
    } else if let Some(v) = t.as_bool() {
        v.iter().map(|&x| x as u8 as f64).collect()
    } else {
        Vec::new()
    }
}

/// Compares `got` against `want`: shapes and dtypes must match; NaN matches only NaN.
pub fn compare(got: &Tensor, want: &Tensor) -> (f64, f64) {
    if got.ty() != want.ty() {
        return (f64::INFINITY, f64::INFINITY);
    }
    let (g, w) = (values(got), values(want));
    let mut abs: f64 = 0.0;
    let mut scale: f64 = 1.0;
    for (a, b) in g.iter().zip(&w) {
        scale = scale.max(b.abs());
        let d = if (a.is_nan() && b.is_nan()) || a == b {
            0.0
        } else {
            (a - b).abs()
        };
        abs = if d.is_nan() {
            f64::INFINITY
        } else {
            abs.max(d)
        };
    }
    (abs, abs / scale)
}

/// Runs `[verify].inputs` on `target` (on `threads` threads, default the profile's) and
/// compares every output with `[verify].expected`.
pub fn verify(
    manifest: &Manifest,
    target: &str,
    threads: Option<usize>,
) -> Result<Verified, TargetError> {
    let v = manifest
        .verify
        .as_ref()
        .ok_or_else(|| TargetError::NoVerify {
            manifest: manifest.path.clone(),
        })?;
    let out_dir = etpkg_dir(manifest).join(".run").join(target).join("verify");
    let _ = crate::fsio::remove_path(&out_dir);
    let produced = run(manifest, target, None, &v.inputs, &out_dir, threads)?;
    if produced.len() != v.expected.len() {
        return Err(TargetError::OutputCount {
            manifest: manifest.path.clone(),
            target: target.to_string(),
            produced: produced.len(),
            expected: v.expected.len(),
        });
    }
    let mut outputs = Vec::new();
    for (index, (got, want)) in produced.iter().zip(&v.expected).enumerate() {
        let (max_abs_error, max_rel_error) = compare(&npy::read(got)?, &npy::read(want)?);
        outputs.push(OutputCheck {
            index,
            expected: want.clone(),
            max_abs_error,
            max_rel_error,
            pass: max_rel_error <= v.tolerance,
        });
    }
    Ok(Verified {
        target: target.to_string(),
        tolerance: v.tolerance,
        outputs,
    })
}

/// One instruction's share of a benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct OpTime {
    pub instruction: usize,
    pub op: String,
    pub median_ns: u64,
}

/// A benchmark of one target.
#[derive(Clone, Debug, Serialize)]
pub struct Bench {
    pub target: String,
    /// Threads the kernels split work over (1 when the runtime has no kernel that splits).
    pub threads: usize,
    pub iterations: usize,
    pub warmup: usize,
    pub median_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    /// Instructions, slowest first.
    pub ops: Vec<OpTime>,
}

/// Times `iterations` runs of `target` on `inputs`, or on the manifest's `[verify]` inputs when
/// none are given. There is no fallback to made-up data: inputs that mean nothing can take
/// other code paths (masks, indices) and time something other than the model.
pub fn bench(
    manifest: &Manifest,
    target: &str,
    inputs: &[PathBuf],
    iterations: usize,
    warmup: usize,
    threads: Option<usize>,
) -> Result<Bench, TargetError> {
    let inputs: Vec<PathBuf> = if inputs.is_empty() {
        manifest
            .verify
            .as_ref()
            .map(|v| v.inputs.clone())
            .ok_or_else(|| TargetError::NoVerify {
                manifest: manifest.path.clone(),
            })?
    } else {
        inputs.to_vec()
    };
    let r = runner(manifest, target, threads_for(manifest, target, threads)?)?;
    let out_dir = etpkg_dir(manifest).join(".run").join(target).join("bench");
    let program = program_path(manifest, target, None);
    let t: Timings = runner::run(&r, &program, &inputs, &out_dir, iterations.max(1), warmup)?;
    let mut ops: Vec<OpTime> = t
        .ops
        .iter()
        .map(|(i, name, v)| OpTime {
            instruction: *i,
            op: name.clone(),
            median_ns: median(v),
        })
        .collect();
    ops.sort_by(|a, b| {
        b.median_ns
            .cmp(&a.median_ns)
            .then(a.instruction.cmp(&b.instruction))
    });
    Ok(Bench {
        target: target.to_string(),
        threads: r.threads,
        iterations: t.runs_ns.len(),
        warmup,
        median_ns: median(&t.runs_ns),
        min_ns: t.runs_ns.iter().copied().min().unwrap_or(0),
        max_ns: t.runs_ns.iter().copied().max().unwrap_or(0),
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_measures_relative_to_the_reference_scale() {
        let want = Tensor::f32(vec![3], vec![10.0, -20.0, 0.5]);
        let got = Tensor::f32(vec![3], vec![10.0, -20.002, 0.5]);
        let (abs, rel) = compare(&got, &want);
        assert!((abs - 0.002).abs() < 1e-5, "{abs}");
        assert!((rel - 0.0001).abs() < 1e-6, "{rel}");
        let other_shape = Tensor::f32(vec![1, 3], vec![10.0, -20.0, 0.5]);
        assert_eq!(compare(&other_shape, &want).0, f64::INFINITY);
        let nan = Tensor::f32(vec![3], vec![f32::NAN, -20.0, 0.5]);
        assert_eq!(compare(&nan, &want).0, f64::INFINITY);
    }
}
