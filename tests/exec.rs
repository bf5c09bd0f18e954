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
use etpkg::rt::exec::{ExecError, LoadError, Method, ALIGN, STEP_ENTRY_BYTES, VALUE_SLOT_BYTES};
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

/// `t` with its elements in reverse order: new input values from the same domain (indices stay
/// in range, positive values positive), so every program accepts them.
fn reversed(t: &Tensor) -> Tensor {
    let mut r = t.clone();
    match &mut r.data {
        etpkg::interp::Data::F32(v) => v.reverse(),
        etpkg::interp::Data::I64(v) => v.reverse(),
        etpkg::interp::Data::Bool(v) => v.reverse(),
    }
    r
}

/// Sets `inputs`, runs `m` once and returns every output's bytes.
fn run_once(m: &mut Method<'_>, inputs: &[Tensor], label: &str) -> Vec<Vec<u8>> {
    for (i, t) in inputs.iter().enumerate() {
        m.set_input(i, &tensor_bytes(t))
            .unwrap_or_else(|e| panic!("{label}: input {i}: {e}"));
    }
    m.execute()
        .unwrap_or_else(|e| panic!("{label}: execute: {e}"));
    (0..m.outputs())
        .map(|k| m.output(k).unwrap().to_vec())
        .collect()
}

/// Checks output bytes against the reference interpreter's outputs for the same inputs.
fn check_against(got: &[Vec<u8>], want: &[Tensor], label: &str) {
    assert_eq!(got.len(), want.len(), "{label}");
    for (k, (bytes, want)) in got.iter().zip(want).enumerate() {
        let g = Tensor::from_le_bytes(&want.ty(), bytes)
            .unwrap_or_else(|e| panic!("{label}: output {k}: {e}"));
        let err = relative_error(&g, want).unwrap_or_else(|e| panic!("{label}: output {k}: {e}"));
        assert!(err <= 1e-4, "{label}: output {k}: relative error {err:e}");
    }
}

/// The tables `load` builds are read on every run: one loaded method, run repeatedly and with
/// other inputs, computes what the reference interpreter computes each time, and the same
/// inputs give the same bytes.
#[test]
fn repeated_runs_and_new_inputs_match_the_interpreter() {
    for dir in fixture_dirs() {
        let path = dir.join("export.pt2");
        let g = pt2::import(&path).unwrap().graph;
        let a: Vec<Tensor> = numbered(&dir, "input")
            .iter()
            .map(|p| npy::read(p).unwrap())
            .collect();
        let b: Vec<Tensor> = a.iter().map(reversed).collect();
        let want_a = etpkg::interp::run(&g, &a).unwrap();
        let want_b = etpkg::interp::run(&g, &b).unwrap();
        for aliasing in [true, false] {
            let label = format!(
                "{} aliasing {aliasing}",
                dir.file_name().unwrap().to_string_lossy()
            );
            let blob = AlignedBuf::new(&program(&path, aliasing));
            let mut arena = AlignedBuf::zeroed(Method::arena_bytes(blob.as_ref()).unwrap());
            let mut m = Method::load(blob.as_ref(), arena.as_mut())
                .unwrap_or_else(|e| panic!("{label}: load: {e}"));
            let first = run_once(&mut m, &a, &label);
            check_against(&first, &want_a, &label);
            assert_eq!(run_once(&mut m, &a, &label), first, "{label}: second run");
            let other = run_once(&mut m, &b, &label);
            check_against(&other, &want_b, &format!("{label}, reversed inputs"));
            assert_eq!(
                run_once(&mut m, &a, &label),
                first,
                "{label}: back to the first inputs"
            );
        }
    }
}

/// The arena is the planned activations, unchanged and first, then the step table
/// (`STEP_ENTRY_BYTES` per instruction) and the value table (`VALUE_SLOT_BYTES` per value).
#[test]
fn the_tables_follow_the_planned_activations() {
    for dir in fixture_dirs() {
        let bytes = program(&dir.join("export.pt2"), true);
        let p = pte::read(&bytes).unwrap();
        let plan = &p.execution_plan[0];
        let activations = plan.non_const_buffer_sizes[1..]
            .iter()
            .fold(0usize, |at, &s| (at + s as usize).div_ceil(ALIGN) * ALIGN);
        let instructions: usize = plan.chains.iter().map(|c| c.instructions.len()).sum();
        let blob = AlignedBuf::new(&bytes);
        assert_eq!(
            Method::arena_bytes(blob.as_ref()).unwrap(),
            activations + instructions * STEP_ENTRY_BYTES + plan.values.len() * VALUE_SLOT_BYTES,
            "{}",
            dir.display()
        );
    }
}

/// A program whose instruction names a value that is not there, or that is not a tensor where
/// a tensor is needed, is refused by `load` (the tables are never built from it), and no byte
/// flipped anywhere in a program makes `load` or `execute` panic.
#[test]
fn corrupted_programs_are_load_errors() {
    let dir = &fixture_dirs()[0];
    let bytes = program(&dir.join("export.pt2"), true);
    let p = pte::read(&bytes).unwrap();
    let n_values = p.execution_plan[0].values.len() as i32;
    let non_tensor = p.execution_plan[0]
        .values
        .iter()
        .position(|v| !matches!(v, pte::model::EValue::Tensor(_)));
    let mut bad = Vec::new();
    for (ci, c) in p.execution_plan[0].chains.iter().enumerate() {
        for (ii, ins) in c.instructions.iter().enumerate() {
            if let pte::model::Instruction::KernelCall { args, .. } = ins {
                for ai in 0..args.len() {
                    let mut replacements = vec![n_values, n_values + 1000, -1];
                    replacements.extend(non_tensor.map(|v| v as i32));
                    for r in replacements {
                        if r == args[ai] {
                            continue;
                        }
                        let mut q = p.clone();
                        if let pte::model::Instruction::KernelCall { args, .. } =
                            &mut q.execution_plan[0].chains[ci].instructions[ii]
                        {
                            args[ai] = r;
                        }
                        bad.push((format!("instruction {ii} argument {ai} = {r}"), q, r));
                    }
                }
            }
        }
    }
    assert!(!bad.is_empty());
    for (label, q, r) in &bad {
        let blob = AlignedBuf::new(&pte::write(q));
        // The reader may refuse the program already (`arena_bytes` parses it); `load` must
        // refuse it too, whatever arena it is given.
        let need = Method::arena_bytes(blob.as_ref()).unwrap_or(bytes.len());
        let mut arena = AlignedBuf::zeroed(need);
        let loaded = Method::load(blob.as_ref(), arena.as_mut());
        // A value index outside the plan is always an error; a non-tensor value may be a valid
        // argument where the schema takes a scalar.
        if *r < 0 || *r >= n_values {
            assert!(loaded.is_err(), "{label}: loaded");
        } else if let Ok(mut m) = loaded {
            let _ = m.execute();
        }
    }
    // Single-byte corruptions of the FlatBuffer part (the constants follow it).
    let inputs: Vec<Tensor> = numbered(dir, "input")
        .iter()
        .map(|p| npy::read(p).unwrap())
        .collect();
    let segment = bytes.len().min(4096);
    for at in (0..segment).step_by(3) {
        let mut c = bytes.clone();
        c[at] ^= 0x5a;
        let blob = AlignedBuf::new(&c);
        let Ok(need) = Method::arena_bytes(blob.as_ref()) else {
            continue;
        };
        if need > 1 << 26 {
            continue;
        }
        let mut arena = AlignedBuf::zeroed(need);
        if let Ok(mut m) = Method::load(blob.as_ref(), arena.as_mut()) {
            for (i, t) in inputs.iter().enumerate() {
                let _ = m.set_input(i, &tensor_bytes(t));
            }
            let _ = m.execute();
        }
    }
}
