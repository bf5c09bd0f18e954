//! `etpkg run --reference`: import a `.pt2`, run the reference interpreter, write `.npy`
//! outputs. Invariant: an output file is either absent or complete (written via rename).

use crate::interp::{self, InterpError, Tensor};
use crate::npy::{self, NpyError};
use crate::pt2::{self, ImportError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error(transparent)]
    Npy(#[from] NpyError),
    #[error("{}: the model takes {expected} input(s) ({names}), but {given} were given; pass one `--input FILE.npy` per model input, in order", model.display())]
    InputCount {
        model: PathBuf,
        expected: usize,
        given: usize,
        names: String,
    },
    #[error("{}: is {actual}, but model input {index} (`{name}`) is {expected}; save it with that dtype and shape (e.g. `np.save(path, x.astype(np.float32))`)", file.display())]
    InputType {
        file: PathBuf,
        index: usize,
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{}: the reference interpreter failed: {err}", model.display())]
    Interp {
        model: PathBuf,
        err: Box<InterpError>,
    },
    #[error("cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
}

pub struct RunReport {
    pub outputs: Vec<PathBuf>,
    pub import_time: Duration,
    pub run_time: Duration,
    pub nodes: usize,
}

pub fn run_reference(
    model: &Path,
    inputs: &[PathBuf],
    output_dir: &Path,
) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let imported = pt2::import(model)?;
    let graph = &imported.graph;
    let import_time = t0.elapsed();

    if inputs.len() != graph.inputs.len() {
        let names = graph
            .inputs
            .iter()
            .map(|&v| format!("`{}` {}", graph.value(v).name, graph.ty(v)))
            .collect::<Vec<_>>();
        return Err(RunError::InputCount {
            model: model.to_path_buf(),
            expected: graph.inputs.len(),
            given: inputs.len(),
            names: names.join(", "),
        });
    }
    let mut tensors: Vec<Tensor> = Vec::with_capacity(inputs.len());
    for (index, (path, &v)) in inputs.iter().zip(&graph.inputs).enumerate() {
        let t = npy::read(path)?;
        let expected = graph.ty(v);
        if &t.ty() != expected {
            return Err(RunError::InputType {
                file: path.clone(),
                index,
                name: graph.value(v).name.clone(),
                expected: expected.to_string(),
                actual: t.ty().to_string(),
            });
        }
        tensors.push(t);
    }

    let t1 = Instant::now();
    let outputs = interp::run(graph, &tensors).map_err(|err| RunError::Interp {
        model: model.to_path_buf(),
        err: Box::new(err),
    })?;
    let run_time = t1.elapsed();

    std::fs::create_dir_all(output_dir).map_err(|err| RunError::Write {
        path: output_dir.to_path_buf(),
        err,
    })?;
    let mut written = Vec::with_capacity(outputs.len());
    for (i, t) in outputs.iter().enumerate() {
        let path = output_dir.join(format!("output_{i}.npy"));
        let tmp = output_dir.join(format!(".output_{i}.npy.tmp"));
        std::fs::write(&tmp, npy::to_bytes(t))
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|err| RunError::Write {
                path: path.clone(),
                err,
            })?;
        written.push(path);
    }
    Ok(RunReport {
        outputs: written,
        import_time,
        run_time,
        nodes: graph.nodes.len(),
    })
}
