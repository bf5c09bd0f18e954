//! etpkg's executor on programs ExecuTorch itself wrote (`to_edge(...).to_executorch()`, portable
//! ops, no delegates; `scripts/gen_et_programs.py`). Invariant: each program, loaded by
//! `rt::exec::Method` into one arena and run on its fixture's inputs, matches the outputs
//! PyTorch computed for the same exported model (saved beside the fixture when it was made)
//! within 1e-4 × max(1, max|torch|).

mod common;

use common::aligned::AlignedBuf;

use std::path::{Path, PathBuf};

use common::fixtures::{numbered, relative_error};
use etpkg::interp::Tensor;
use etpkg::ir::TensorType;
use etpkg::pte::model::{self, EValue, Instruction, Operator, ScalarType};
use etpkg::rt::exec::{LoadError, Method};
use etpkg::{npy, pte};

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
        let err = relative_error(&got, want).unwrap_or_else(|e| panic!("{label}: output {k}: {e}"));
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

/// A planned f32 or i64 tensor of `sizes` at `offset` in memory id 1.
fn planned(st: ScalarType, sizes: &[i32], offset: u64) -> EValue {
    EValue::Tensor(model::Tensor {
        scalar_type: st,
        sizes: sizes.to_vec(),
        dim_order: (0..sizes.len() as u8).collect(),
        data_buffer_idx: 0,
        allocation: Some(model::Allocation {
            memory_id: 1,
            offset,
        }),
    })
}

/// Runs a one-instruction program: `values[0]` is the f32 `[2, 3]` input `x`, `values[out]`
/// the output; returns the output's bytes.
fn one_call(name: &str, overload: &str, values: Vec<EValue>, args: Vec<i32>, out: i32) -> Vec<u8> {
    try_call(name, overload, values, args, out).unwrap_or_else(|e| panic!("{name}.{overload}: {e}"))
}

/// [`one_call`], with a load or run failure as its message.
fn try_call(
    name: &str,
    overload: &str,
    values: Vec<EValue>,
    args: Vec<i32>,
    out: i32,
) -> Result<Vec<u8>, String> {
    let program = model::Program {
        version: pte::SCHEMA_VERSION,
        constants: Vec::new(),
        execution_plan: vec![model::ExecutionPlan {
            name: "forward".into(),
            values,
            inputs: vec![0],
            outputs: vec![out],
            chains: vec![model::Chain {
                inputs: vec![0],
                outputs: vec![out],
                instructions: vec![Instruction::KernelCall { op_index: 0, args }],
            }],
            operators: vec![Operator {
                name: name.into(),
                overload: overload.into(),
            }],
            non_const_buffer_sizes: vec![0, 256],
        }],
    };
    let blob = AlignedBuf::new(&pte::write(&program));
    let need = Method::arena_bytes(blob.as_ref()).unwrap();
    let mut arena = AlignedBuf::zeroed(need);
    let mut m = Method::load(blob.as_ref(), arena.as_mut()).map_err(|e| e.to_string())?;
    m.set_input_f32(0, &[-1.5, 0.0, 0.5, 1.0, 2.0, 3.5])
        .unwrap();
    m.execute().map_err(|e| e.to_string())?;
    Ok(m.output(0).unwrap().to_vec())
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The overloads the ExecuTorch-written programs above do not contain, on x =
/// [[-1.5, 0, 0.5], [1, 2, 3.5]], against values worked out by hand.
#[test]
fn other_scalar_and_creation_overloads_compute_known_values() {
    use ScalarType::{Bool, Float, Long};
    let x = || planned(Float, &[2, 3], 0);

    // add.Scalar_out(x, 2, alpha=1), sub.Scalar_out(x, 0.5, alpha=1), div.Scalar_out(x, 2).
    for (name, k, want) in [
        ("aten::add", 2.0, [0.5, 2.0, 2.5, 3.0, 4.0, 5.5]),
        ("aten::sub", 0.5, [-2.0, -0.5, 0.0, 0.5, 1.5, 3.0]),
        ("aten::div", 2.0, [-0.75, 0.0, 0.25, 0.5, 1.0, 1.75]),
    ] {
        let alpha = name != "aten::div";
        let mut values = vec![x(), planned(Float, &[2, 3], 64), EValue::Double(k)];
        let mut args = vec![0, 2];
        if alpha {
            values.push(EValue::Int(1));
            args.push(3);
        }
        args.extend([1, 1]);
        assert_eq!(f32s(&one_call(name, "Scalar_out", values, args, 1)), want);
    }

    // add.Scalar_out with alpha 2 has no step: an error, not a wrong sum.
    let values = vec![
        x(),
        planned(Float, &[2, 3], 64),
        EValue::Int(1),
        EValue::Int(2),
    ];
    let e = try_call("aten::add", "Scalar_out", values, vec![0, 2, 3, 1, 1], 1).unwrap_err();
    assert!(e.contains("alpha"), "{e}");

    // arange.out(end=4) into i64.
    let values = vec![x(), planned(Long, &[4], 64), EValue::Int(4)];
    let got = one_call("aten::arange", "out", values, vec![2, 1, 1], 1);
    let got: Vec<i64> = got
        .chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, [0, 1, 2, 3]);

    // any.dims_out(x, [0], keepdim=False) and any.all_out(x).
    let values = vec![
        x(),
        planned(Bool, &[3], 64),
        EValue::Int(0),
        EValue::IntList(vec![2]),
        EValue::Bool(false),
    ];
    assert_eq!(
        one_call("aten::any", "dims_out", values, vec![0, 3, 4, 1, 1], 1),
        [1, 1, 1]
    );
    let values = vec![x(), planned(Bool, &[], 64)];
    assert_eq!(
        one_call("aten::any", "all_out", values, vec![0, 1, 1], 1),
        [1]
    );

    // split_copy.Tensor_out(x, 2, dim=1): pieces [2, 2] and [2, 1].
    let values = vec![
        x(),
        planned(Float, &[2, 2], 64),
        planned(Float, &[2, 1], 128),
        EValue::Int(2),
        EValue::Int(1),
        EValue::TensorList(vec![1, 2]),
    ];
    let first = one_call(
        "aten::split_copy",
        "Tensor_out",
        values.clone(),
        vec![0, 3, 4, 5],
        1,
    );
    assert_eq!(f32s(&first), [-1.5, 0.0, 1.0, 2.0]);
    let second = one_call(
        "aten::split_copy",
        "Tensor_out",
        values,
        vec![0, 3, 4, 5],
        2,
    );
    assert_eq!(f32s(&second), [0.5, 3.5]);

    // Pieces that do not cover the split tensor are a load error.
    let values = vec![
        x(),
        planned(Float, &[2, 1], 64),
        planned(Float, &[2, 1], 128),
        EValue::Int(1),
        EValue::Int(1),
        EValue::TensorList(vec![1, 2]),
    ];
    let e = try_call(
        "aten::split_copy",
        "Tensor_out",
        values,
        vec![0, 3, 4, 5],
        1,
    )
    .unwrap_err();
    assert!(e.contains("do not cover"), "{e}");
}

fn unplanned(sizes: &[i32]) -> EValue {
    EValue::Tensor(model::Tensor {
        scalar_type: ScalarType::Float,
        sizes: sizes.to_vec(),
        dim_order: (0..sizes.len() as u8).collect(),
        data_buffer_idx: 0,
        allocation: None,
    })
}

/// Runs `instructions` (over operators `et_view` = 0 and `relu.out` = 1) on x =
/// [-1.5, 0, 0.5, 1, 2, 3.5] and returns the plan's outputs, or the load or run error.
fn run_views(
    values: Vec<EValue>,
    instructions: Vec<Instruction>,
    outputs: Vec<i32>,
) -> Result<Vec<Vec<f32>>, String> {
    let program = model::Program {
        version: pte::SCHEMA_VERSION,
        constants: Vec::new(),
        execution_plan: vec![model::ExecutionPlan {
            name: "forward".into(),
            values,
            inputs: vec![0],
            outputs: outputs.clone(),
            chains: vec![model::Chain {
                inputs: vec![0],
                outputs,
                instructions,
            }],
            operators: vec![
                Operator {
                    name: "executorch_prim::et_view".into(),
                    overload: "default".into(),
                },
                Operator {
                    name: "aten::relu".into(),
                    overload: "out".into(),
                },
            ],
            non_const_buffer_sizes: vec![0, 128],
        }],
    };
    let blob = AlignedBuf::new(&pte::write(&program));
    let mut arena = AlignedBuf::zeroed(Method::arena_bytes(blob.as_ref()).unwrap());
    let mut m = Method::load(blob.as_ref(), arena.as_mut()).map_err(|e| e.to_string())?;
    m.set_input_f32(0, &[-1.5, 0.0, 0.5, 1.0, 2.0, 3.5])
        .unwrap();
    m.execute().map_err(|e| e.to_string())?;
    Ok((0..m.outputs())
        .map(|i| m.output_f32(i).unwrap().to_vec())
        .collect())
}

/// ExecuTorch's `et_view` output has no memory of its own: the executor reads the viewed
/// tensor's bytes, through chains of views, and a view can be a plan output.
#[test]
fn et_view_outputs_are_their_inputs_bytes() {
    let call = |op_index, args| Instruction::KernelCall { op_index, args };
    let values = vec![
        planned(ScalarType::Float, &[2, 3], 0), // 0: x
        unplanned(&[3, 2]),                     // 1: view of x
        unplanned(&[6]),                        // 2: view of the view
        planned(ScalarType::Float, &[6], 64),   // 3: relu of the second view
        EValue::Int(3),                         // 4..6: the sizes [3, 2] and [6]
        EValue::Int(2),
        EValue::Int(6),
        EValue::IntList(vec![4, 5]), // 7
        EValue::IntList(vec![6]),    // 8
    ];
    // The instructions run in any order relative to the views: the second view is listed
    // before the first, as nothing in the format forbids.
    let got = run_views(
        values.clone(),
        vec![
            call(0, vec![1, 8, 2]),
            call(0, vec![0, 7, 1]),
            call(1, vec![2, 3, 3]),
        ],
        vec![3, 1],
    )
    .unwrap();
    assert_eq!(got[0], [0.0, 0.0, 0.5, 1.0, 2.0, 3.5]);
    assert_eq!(got[1], [-1.5, 0.0, 0.5, 1.0, 2.0, 3.5]);

    // An unplanned tensor that no view produces is a load error, not a read of nowhere.
    let e = run_views(values.clone(), vec![call(1, vec![2, 3, 3])], vec![3]).unwrap_err();
    assert!(e.contains("no view produces"), "{e}");

    // A view whose size differs from its input's is a load error too.
    let mut bad = values;
    bad[2] = unplanned(&[5]);
    let e = run_views(
        bad,
        vec![
            call(0, vec![0, 7, 1]),
            call(0, vec![1, 8, 2]),
            call(1, vec![2, 3, 3]),
        ],
        vec![3],
    )
    .unwrap_err();
    assert!(e.contains("byte size differs"), "{e}");
}
