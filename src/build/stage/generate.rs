//! The generation stage: one target's runtime crate, as a bundle of files. Invariant: the
//! crate is a pure function of the program, the selection, the device, the objective, the
//! crate's name and the sources etpkg embeds; equal inputs give an identical bundle.
//!
//! The bundle is the generated files as one cache object (`postcard` of `(path, bytes)` pairs,
//! sorted by path); the publish stage unpacks it into `target/etpkg/<target>/runtime/`.

use super::{output, Outputs, Produced, StageError};
use crate::device::Device;
use crate::generate::{self, Generate, Signature, TensorSig};
use crate::ir::serial;
use crate::manifest::KernelObjective;
use crate::rt::exec::{tensor_meta, Method};
use crate::rt::pte::Program;
use std::collections::BTreeSet;

pub struct GenerateWork {
    /// The crate's name: a Rust identifier.
    pub package: String,
    pub device: Device,
    pub objective: KernelObjective,
    /// The profile's thread count, which the crate records as `THREADS`.
    pub threads: usize,
}

/// The crate's name for `package` built for `target`: both, with anything that is not a letter
/// or digit turned into `_`.
pub fn crate_name(package: &str, target: &str) -> String {
    let mut s: String = format!("{package}_{target}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn internal(what: &str) -> impl Fn(String) -> StageError + '_ {
    move |e| StageError::Internal(format!("{what}: {e}"))
}

/// The typed signature of `blob`'s `forward` method: input names from `names` when given
/// (`input_<k>` otherwise), outputs named `output_<k>`.
pub fn signature(blob: &[u8], names: Option<Vec<String>>) -> Result<Signature, String> {
    let parsed = Program::parse(blob).map_err(|e| e.to_string())?;
    let plan = parsed
        .plan_named("forward")
        .ok_or_else(|| "program without `forward`".to_string())?;
    let ins: Vec<i32> = plan.inputs().iter().collect();
    let outs: Vec<i32> = plan.outputs().iter().collect();
    let in_names = names.unwrap_or_else(|| (0..ins.len()).map(|k| format!("input_{k}")).collect());
    let sig = |indices: Vec<i32>, names: Vec<String>| -> Result<Vec<TensorSig>, String> {
        indices
            .into_iter()
            .zip(names)
            .map(|(v, name)| {
                let m = tensor_meta(&plan, v as u32).map_err(str::to_string)?;
                Ok(TensorSig {
                    name,
                    dtype: m.dtype,
                    shape: m.shape.dims().to_vec(),
                })
            })
            .collect()
    };
    let out_names = (0..outs.len()).map(|k| format!("output_{k}")).collect();
    Ok(Signature {
        inputs: sig(ins, in_names)?,
        outputs: sig(outs, out_names)?,
    })
}

/// Dependencies: passes (for value names), emit, select.
pub fn run(w: &GenerateWork, deps: &[&Outputs]) -> Result<Produced, StageError> {
    let [passes, program, selection] = deps else {
        return Err(StageError::Internal(
            "generation needs its graph, program and selection".into(),
        ));
    };
    let graph = serial::decode(output(passes, "graph")?.clone())
        .map_err(|e| internal("cached graph does not decode")(e.to_string()))?;
    let blob = output(program, "program.pte")?;
    let sel: serde_json::Value = serde_json::from_slice(output(selection, "selection")?)
        .map_err(|e| internal("cached selection does not parse")(e.to_string()))?;
    let kept: BTreeSet<String> = sel["kept"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();

    let in_names = graph
        .inputs
        .iter()
        .map(|&v| graph.value(v).name.clone())
        .collect();
    let signature = signature(blob, Some(in_names)).map_err(internal("signature"))?;
    let arena_bytes =
        Method::arena_bytes(blob).map_err(|e| internal("arena size")(e.to_string()))?;
    let files = generate::generate(&Generate {
        package: &w.package,
        device: &w.device,
        objective: w.objective,
        kept: &kept,
        signature,
        arena_bytes,
        threads: w.threads,
    })?;
    let bundle = postcard::to_allocvec(&files).expect("a file list serializes");
    Ok(vec![("runtime".to_string(), bundle)])
}
