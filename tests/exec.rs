//! The executor end to end, inside etpkg: every fixture model, both export flavours, optimized
//! with every graph pass, planned for `host` with all aliasing on and off, emitted and written,
//! then loaded by `rt::exec::Method` into one arena and run on the fixture's inputs. Outputs
//! are compared with PyTorch's, saved beside the fixture.

mod common;

use common::aligned::AlignedBuf;

use common::fixtures::{fixture_dirs, numbered, relative_error};
use etpkg::emit::{emit, EmitOptions};
use etpkg::interp::Tensor;
use etpkg::ir::TensorType;
use etpkg::manifest::Profile;
use etpkg::memory::{self, PlanOptions};
use etpkg::rt::exec::{ExecError, LoadError, Method, ALIGN};
use etpkg::{device, npy, passes, pt2, pte};

fn program(path: &std::path::Path, aliasing: bool) -> Vec<u8> {
    let mut g = pt2::import(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .graph;
    let names: Vec<String> = passes::GRAPH_PASSES.iter().map(|s| s.to_string()).collect();
    passes::run_passes(&mut g, &names).unwrap();
    let host = device::builtin("host").unwrap().unwrap();
    let mut options = PlanOptions::from_profile(&Profile::release());
    options.alias_views = aliasing;
    options.in_place = aliasing;
    options.concat_in_place = aliasing;
    let plan = memory::plan(&g, &options, &host).unwrap();
    let p = emit(&g, &plan, &EmitOptions { aten_only: false })
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pte::write(&p)
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    t.to_le_bytes()
}

#[test]
fn every_fixture_runs_and_matches_pytorch() {
    let mut report = Vec::new();
    for dir in fixture_dirs() {
        let inputs: Vec<Tensor> = numbered(&dir, "input")
            .iter()
            .map(|p| npy::read(p).unwrap())
            .collect();
        let expected: Vec<Tensor> = numbered(&dir, "output")
            .iter()
            .map(|p| npy::read(p).unwrap())
            .collect();
        for flavour in ["export.pt2", "core.pt2"] {
            for aliasing in [true, false] {
                let label = format!(
                    "{} {flavour} aliasing {aliasing}",
                    dir.file_name().unwrap().to_string_lossy()
                );
                let blob = AlignedBuf::new(&program(&dir.join(flavour), aliasing));
                let need = Method::arena_bytes(blob.as_ref()).unwrap();
                let mut arena = AlignedBuf::zeroed(need);
                let mut m = Method::load(blob.as_ref(), arena.as_mut())
                    .unwrap_or_else(|e| panic!("{label}: load: {e}"));
                assert_eq!(m.inputs(), inputs.len(), "{label}");
                for (i, t) in inputs.iter().enumerate() {
                    m.set_input(i, &tensor_bytes(t))
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
                    let err = relative_error(&got, want)
                        .unwrap_or_else(|e| panic!("{label}: output {k}: {e}"));
                    assert!(err <= 1e-4, "{label}: output {k}: relative error {err:e}");
                    worst = worst.max(err);
                }
                report.push(format!("{label}: max rel error {worst:.2e}"));
            }
        }
    }
    println!("{}", report.join("\n"));
}

#[test]
fn misaligned_or_small_buffers_are_errors() {
    let dir = &fixture_dirs()[0];
    let bytes = program(&dir.join("export.pt2"), true);
    let blob = AlignedBuf::new(&bytes);
    let need = Method::arena_bytes(blob.as_ref()).unwrap();
    let mut arena = AlignedBuf::zeroed(need + ALIGN);
    // A blob one byte off its alignment.
    let shifted = AlignedBuf::new(&[&[0u8][..], &bytes].concat());
    assert!(matches!(
        Method::load(&shifted.as_ref()[1..], arena.as_mut()),
        Err(LoadError::Misaligned { what: "program" })
    ));
    if need > 0 {
        assert!(matches!(
            Method::load(blob.as_ref(), &mut arena.as_mut()[..need - 1]),
            Err(LoadError::ArenaTooSmall { .. })
        ));
    }
    let mut m = Method::load(blob.as_ref(), arena.as_mut()).unwrap();
    assert!(matches!(
        m.set_input(0, &[0u8; 3]),
        Err(ExecError::InputSize { .. })
    ));
    assert!(matches!(
        m.set_input(99, &[]),
        Err(ExecError::NoSuchIo { .. })
    ));
}

#[test]
fn every_truncation_of_a_program_is_a_load_error() {
    let dir = &fixture_dirs()[0];
    let bytes = program(&dir.join("export.pt2"), true);
    let full = AlignedBuf::new(&bytes);
    let need = Method::arena_bytes(full.as_ref()).unwrap();
    let mut arena = AlignedBuf::zeroed(need.max(1));
    for cut in (0..bytes.len()).step_by(7) {
        let blob = AlignedBuf::new(&bytes[..cut]);
        assert!(
            Method::load(blob.as_ref(), arena.as_mut()).is_err(),
            "truncated at {cut} loaded"
        );
    }
}
