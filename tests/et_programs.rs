//! etpkg's executor on programs ExecuTorch itself wrote (`to_edge(...).to_executorch()`, portable
//! ops, no delegates; `scripts/gen_et_programs.py`). Invariant: each program, loaded by
//! `rt::exec::Method` into one arena and run on its fixture's inputs, matches the outputs
//! PyTorch computed for the same exported model (saved beside the fixture when it was made)
//! within 1e-4 × max(1, max|torch|).

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::{numbered, relative_error};
use etpkg::interp::Tensor;
use etpkg::ir::TensorType;
use etpkg::npy;
use etpkg::rt::exec::{LoadError, Method, ALIGN};

/// A 64-byte-aligned copy of some bytes, or zeroed bytes.
struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(bytes: &[u8]) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(bytes.len());
        b.as_mut().copy_from_slice(bytes);
        b
    }

    fn zeroed(len: usize) -> AlignedBuf {
        let v = vec![0u8; len + ALIGN];
        let off = v.as_ptr().align_offset(ALIGN);
        AlignedBuf { v, off, len }
    }

    fn as_ref(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs `pte` on the `input_*.npy` in `io` and returns the worst error against `output_*.npy`.
fn run(pte: &Path, io: &Path) -> f64 {
    let label = pte.file_name().unwrap().to_string_lossy().to_string();
    let blob = AlignedBuf::new(&std::fs::read(pte).unwrap());
    let need = Method::arena_bytes(blob.as_ref()).unwrap();
    let mut arena = AlignedBuf::zeroed(need);
    let mut m = Method::load(blob.as_ref(), arena.as_mut())
        .unwrap_or_else(|e| panic!("{label}: load: {e}"));
    let inputs: Vec<Tensor> = numbered(io, "input")
        .iter()
        .map(|p| npy::read(p).unwrap())
        .collect();
    let expected: Vec<Tensor> = numbered(io, "output")
        .iter()
        .map(|p| npy::read(p).unwrap())
        .collect();
    assert_eq!(m.inputs(), inputs.len(), "{label}");
    for (i, t) in inputs.iter().enumerate() {
        m.set_input(i, &t.to_le_bytes())
            .unwrap_or_else(|e| panic!("{label}: input {i}: {e}"));
    }
    m.execute()
        .unwrap_or_else(|e| panic!("{label}: execute: {e}"));
    assert_eq!(m.outputs(), expected.len(), "{label}");
    let mut worst = 0.0f64;
    for (k, want) in expected.iter().enumerate() {
        let meta = m.output_meta(k).unwrap();
        let ty = TensorType::new(
            match meta.dtype {
                etpkg::rt::ops::DType::F32 => etpkg::ir::DType::F32,
                etpkg::rt::ops::DType::I64 => etpkg::ir::DType::I64,
                etpkg::rt::ops::DType::Bool => etpkg::ir::DType::Bool,
            },
            meta.shape.dims().to_vec(),
        );
        let got = Tensor::from_le_bytes(&ty, m.output(k).unwrap()).unwrap();
        let err =
            relative_error(&got, want).unwrap_or_else(|e| panic!("{label}: output {k}: {e}"));
        worst = worst.max(err);
    }
    println!("{label}: max rel error {worst:.2e}");
    worst
}

#[test]
fn mobilenet_v2_matches_pytorch() {
    let err = run(
        &root().join("pte/et/mobilenet_v2.pte"),
        &root().join("models/mobilenet_v2"),
    );
    assert!(err <= 1e-4, "{err:e}");
}

#[test]
fn resnet_matches_pytorch() {
    let err = run(
        &root().join("pte/et/resnet.pte"),
        &root().join("models/resnet"),
    );
    assert!(err <= 1e-4, "{err:e}");
}

/// The GPT-style decoder needs the steps ExecuTorch's lowering adds: `arange`, `full`,
/// `full_like`, `scalar_tensor`, `.Scalar` arithmetic and comparisons, `any`, and
/// `split_with_sizes_copy` with its outs in one list.
#[test]
fn gpt_matches_pytorch() {
    let err = run(&root().join("pte/et/gpt.pte"), &root().join("models/gpt"));
    assert!(err <= 1e-4, "{err:e}");
}

/// `.Scalar` comparisons and arithmetic (f32 and i64 tensors against int and double scalars),
/// `any` over one dim and over all, `arange`, and a split into unequal pieces.
#[test]
fn scalar_ops_match_pytorch() {
    let et = root().join("pte/et");
    let err = run(&et.join("scalar_ops.pte"), &et.join("scalar_ops"));
    assert!(err <= 1e-4, "{err:e}");
}

/// A program serialized without the `eh00` extended header (the stock runtime loads it too).
#[test]
fn program_without_extended_header_runs() {
    let et = root().join("pte/et");
    let bytes = std::fs::read(et.join("noheader.pte")).unwrap();
    assert_ne!(&bytes[8..12], b"eh00");
    let err = run(&et.join("noheader.pte"), &et.join("noheader"));
    assert!(err <= 1e-6, "{err:e}");
}

/// Constants inline in `constant_buffer` are the deprecated layout ExecuTorch's runtime
/// refuses by default; etpkg refuses it with a message saying so.
#[test]
fn inline_constant_buffer_is_refused() {
    let blob = AlignedBuf::new(&std::fs::read(root().join("pte/et/inline_constants.pte")).unwrap());
    let mut arena = AlignedBuf::zeroed(1 << 12);
    match Method::load(blob.as_ref(), arena.as_mut()) {
        Err(e @ LoadError::Pte(_)) => assert!(e.to_string().contains("constant_buffer"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a program with inline constants loaded"),
    }
}
