//! Emission round trips: every fixture model, both export flavours, optimized with the default
//! passes and planned for `host`, is emitted, written, parsed by the runtime's reader, and every
//! instruction decoded. The expected step of each node is computed here, from the graph's ops
//! alone, without the emitter's operator table.

mod common;

use common::fixtures::fixture_dirs;
use common::steps::{act_of_op, kind_of};
use etpkg::emit::{emit, EmitError, EmitOptions};
use etpkg::ir::{Graph, Node, Op, ValueDef};
use etpkg::manifest::Profile;
use etpkg::memory::{self, MemoryPlan, PlanOptions};
use etpkg::pte::model::{self, EValue, Instruction, Operator, ScalarType};
use etpkg::rt::decode::{decode, known_operator, DecodeError};
use etpkg::rt::pte::{Program, Value};
use etpkg::rt::step::{self, Ints, Kind, Step, MAX_INPUTS};
use etpkg::{device, passes, pt2, pte};

/// The step a node must decode to. A concat's operand is its tensor list, whose index only the
/// program knows: `list` supplies it.
fn expected_step(_g: &Graph, node: &Node, list: Option<u32>) -> Step {
    let mut inputs = [0u32; MAX_INPUTS];
    let base = match &node.op {
        Op::Fused { op, .. } => op.as_ref(),
        op => op,
    };
    let n = if matches!(base, Op::Concat { .. }) {
        inputs[0] = list.expect("a concat's list");
        1
    } else {
        for (slot, v) in inputs.iter_mut().zip(&node.inputs) {
            *slot = v.0;
        }
        node.inputs.len()
    };
    Step {
        kind: kind_of(&node.op),
        act: act_of_op(&node.op),
        inputs,
        n_inputs: n as u8,
        output: node.output.0,
    }
}

fn options() -> PlanOptions {
    PlanOptions::from_profile(&Profile::release())
}

fn optimized(path: &std::path::Path) -> (Graph, MemoryPlan) {
    let mut g = pt2::import(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .graph;
    let names: Vec<String> = passes::GRAPH_PASSES.iter().map(|s| s.to_string()).collect();
    passes::run_passes(&mut g, &names).unwrap();
    let host = device::builtin("host").unwrap().unwrap();
    let plan = memory::plan(&g, &options(), &host).unwrap();
    (g, plan)
}

/// Checks one emitted program against its graph and plan; returns the instruction count.
fn check(label: &str, g: &Graph, plan: &MemoryPlan, bytes: &[u8]) -> usize {
    let program = Program::parse(bytes).unwrap_or_else(|e| panic!("{label}: {e}"));
    let p = program.plan_named("forward").expect("forward");
    // Inputs, outputs and allocations are the graph's and the memory plan's.
    let ins: Vec<i32> = p.inputs().iter().collect();
    let want: Vec<i32> = g.inputs.iter().map(|v| v.0 as i32).collect();
    assert_eq!(ins, want, "{label}: inputs");
    let outs: Vec<i32> = p.outputs().iter().collect();
    assert_eq!(outs.len(), g.outputs.len(), "{label}: outputs");
    for (o, v) in outs.iter().zip(&g.outputs) {
        if matches!(g.value(*v).def, ValueDef::Node(_)) {
            assert_eq!(*o, v.0 as i32, "{label}: output");
        }
    }
    let sizes: Vec<i64> = p.non_const_buffer_sizes().iter().collect();
    assert_eq!(sizes[0], 0, "{label}");
    // Region 0 grows only for output copies and (aten-only) scratch outputs.
    let copies = g
        .outputs
        .iter()
        .any(|v| !matches!(g.value(*v).def, ValueDef::Node(_)));
    let scratch = (0..p.operators_len()).any(|i| {
        let (name, _) = p.operator(i).unwrap();
        matches!(
            name,
            "aten::max_pool2d_with_indices" | "aten::native_layer_norm" | "aten::native_group_norm"
        )
    });
    for (r, region) in plan.regions.iter().enumerate() {
        if r == 0 && (copies || scratch) {
            assert!(sizes[1] >= region.planned_bytes as i64, "{label}");
        } else {
            assert_eq!(
                sizes[r + 1],
                region.planned_bytes as i64,
                "{label}: region {r}"
            );
        }
    }
    for (i, value) in g.values.iter().enumerate() {
        let Some(Value::Tensor(t)) = p.value(i) else {
            panic!("{label}: value {i} is not a tensor");
        };
        let sizes: Vec<usize> = t.sizes.iter().map(|s| s as usize).collect();
        assert_eq!(sizes, value.ty.shape, "{label}: value {i} shape");
        match &plan.values[i] {
            Some(pl) => {
                assert_eq!(
                    t.allocation,
                    Some((pl.region as u32 + 1, pl.offset)),
                    "{label}: value {i} allocation"
                );
                assert_eq!(t.data_buffer_idx, 0);
            }
            None => {
                let ValueDef::Const(c) = value.def else {
                    panic!("{label}: unplanned non-constant {i}");
                };
                assert_eq!(t.allocation, None);
                // The reader gives the segment from the constant's offset on.
                let want = g.constants[c.0 as usize].data.bytes();
                let got = program.constant(t.data_buffer_idx).unwrap();
                assert!(
                    got.len() >= want.len() && &got[..want.len()] == want,
                    "{label}: constant {i} bytes"
                );
            }
        }
    }
    // Every node's instruction decodes to the node's step.
    assert!(p.instructions_len() >= g.nodes.len(), "{label}");
    for (n, node) in g.nodes.iter().enumerate() {
        let got = decode(&p, n)
            .unwrap_or_else(|e| panic!("{label}: node {n} ({}): {e}", node.op.name()))
            .expect("a kernel call");
        let list = match got.kind {
            Kind::Concat { .. } => {
                let Some(Value::TensorList(items)) = p.value(got.inputs[0] as usize) else {
                    panic!("{label}: node {n}: concat without a tensor list");
                };
                let items: Vec<u32> = items.iter().map(|v| v as u32).collect();
                let want: Vec<u32> = node.inputs.iter().map(|v| v.0).collect();
                assert_eq!(items, want, "{label}: node {n}: concat list");
                Some(got.inputs[0])
            }
            _ => None,
        };
        let want = expected_step(g, node, list);
        // Debug text, so that NaN attributes (an absent sdpa scale) compare equal.
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "{label}: node {n} ({})",
            node.op.name()
        );
    }
    // Copies for outputs that are inputs or constants decode as same-dtype casts.
    for i in g.nodes.len()..p.instructions_len() {
        let got = decode(&p, i).unwrap().unwrap();
        assert_eq!(got.kind, Kind::Cast, "{label}: instruction {i}");
    }
    p.instructions_len()
}

#[test]
fn every_fixture_emits_and_decodes_back() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 6);
    let mut programs = 0;
    let mut instructions = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        for flavour in ["export", "core"] {
            let label = format!("{name} ({flavour})");
            let (g, plan) = optimized(&dir.join(format!("{flavour}.pt2")));
            let program =
                emit(&g, &plan, &EmitOptions::default()).unwrap_or_else(|e| panic!("{label}: {e}"));
            let bytes = pte::write(&program);
            instructions += check(&label, &g, &plan, &bytes);
            // Same input, same bytes.
            let again = pte::write(&emit(&g, &plan, &EmitOptions::default()).unwrap());
            assert!(bytes == again, "{label}: emission is not deterministic");
            // The owned reader gives back the program emitted.
            assert_eq!(pte::read(&bytes).unwrap(), program, "{label}: read back");
            programs += 1;
        }
    }
    assert_eq!(programs, 2 * dirs.len());
    assert!(instructions > 100);
    eprintln!("{programs} programs, {instructions} instructions");
}

#[test]
fn aten_only_rejects_a_fused_op() {
    let dir = fixture_dirs()
        .into_iter()
        .find(|d| d.ends_with("classifier"))
        .unwrap();
    let (g, plan) = optimized(&dir.join("export.pt2"));
    assert!(g.nodes.iter().any(|n| matches!(n.op, Op::Fused { .. })));
    let err = emit(&g, &plan, &EmitOptions { aten_only: true }).unwrap_err();
    assert!(matches!(err, EmitError::NotAten { .. }));
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn aten_only_accepts_an_unfused_graph() {
    let dir = fixture_dirs()
        .into_iter()
        .find(|d| d.ends_with("mobilenet_v2"))
        .unwrap();
    let mut g = pt2::import(&dir.join("export.pt2")).unwrap().graph;
    passes::run_passes(&mut g, &["fold-batch-norm".to_string()]).unwrap();
    let host = device::builtin("host").unwrap().unwrap();
    let plan = memory::plan(&g, &options(), &host).unwrap();
    let program = emit(&g, &plan, &EmitOptions { aten_only: true }).unwrap();
    let ops = &program.execution_plan[0].operators;
    assert!(ops.iter().all(|o| o.name.starts_with("aten::")));
    check("mobilenet_v2 (aten)", &g, &plan, &pte::write(&program));
}

fn tensor(alloc_offset: u64) -> EValue {
    EValue::Tensor(model::Tensor {
        scalar_type: ScalarType::Float,
        sizes: vec![4],
        dim_order: vec![0],
        data_buffer_idx: 0,
        allocation: Some(model::Allocation {
            memory_id: 1,
            offset: alloc_offset,
        }),
    })
}

/// A one-instruction program calling `name.overload` on `[x, y, y]` plus `extra` values.
fn hand_made(name: &str, overload: &str, extra: Vec<EValue>, args: Vec<i32>) -> Vec<u8> {
    let mut values = vec![tensor(0), tensor(64)];
    values.extend(extra);
    let program = model::Program {
        version: pte::SCHEMA_VERSION,
        constants: Vec::new(),
        execution_plan: vec![model::ExecutionPlan {
            name: "forward".into(),
            values,
            inputs: vec![0],
            outputs: vec![1],
            chains: vec![model::Chain {
                inputs: vec![0],
                outputs: vec![1],
                instructions: vec![Instruction::KernelCall { op_index: 0, args }],
            }],
            operators: vec![Operator {
                name: name.into(),
                overload: overload.into(),
            }],
            non_const_buffer_sizes: vec![0, 128],
        }],
    };
    pte::write(&program)
}

#[test]
fn an_unknown_operator_is_named() {
    let bytes = hand_made("custom::frobnicate", "out", vec![], vec![0, 1, 1]);
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let err = decode(&p, 0).unwrap_err();
    assert!(matches!(err, DecodeError::UnknownOperator { .. }));
    insta::assert_snapshot!(err.to_string());
    assert!(!known_operator("custom::frobnicate", "out"));
    assert!(known_operator("aten::relu", "out"));
    assert!(known_operator("etpkg::conv_relu", "out"));
    assert!(!known_operator("etpkg::conv_tanh", "out"));
}

#[test]
fn stock_executorch_argument_lists_decode() {
    // hardtanh(x, 0, 6) as ExecuTorch writes it: Double scalars, out, out.
    let bytes = hand_made(
        "aten::hardtanh",
        "out",
        vec![EValue::Double(0.0), EValue::Double(6.0)],
        vec![0, 2, 3, 1, 1],
    );
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let got = decode(&p, 0).unwrap().unwrap();
    assert_eq!(got.kind, Kind::Clamp { min: 0.0, max: 6.0 });
    assert_eq!((got.inputs(), got.output), (&[0u32][..], 1));

    // mean.out(x, dim=[-1], keepdim=True, dtype=None): list items index Int values.
    let bytes = hand_made(
        "aten::mean",
        "out",
        vec![
            EValue::Int(-1),
            EValue::IntList(vec![2]),
            EValue::Bool(true),
            EValue::Null,
        ],
        vec![0, 3, 4, 5, 1, 1],
    );
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let got = decode(&p, 0).unwrap().unwrap();
    assert_eq!(
        got.kind,
        Kind::Reduce {
            op: step::Reduce::Mean,
            axes: 1,
            keepdim: true
        }
    );

    // add.out with alpha 2 has no step: an error that says why, not a wrong add.
    let bytes = hand_made(
        "aten::add",
        "out",
        vec![EValue::Int(2)],
        vec![0, 0, 2, 1, 1],
    );
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let err = decode(&p, 0).unwrap_err();
    assert!(err.to_string().contains("alpha"), "{err}");

    // A wrong argument count is an error too.
    let bytes = hand_made("aten::relu", "out", vec![], vec![0, 1, 1, 1]);
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    assert!(matches!(decode(&p, 0), Err(DecodeError::Arguments { .. })));
}

#[test]
fn an_executorch_written_program_decodes() {
    // `tests/fixtures/pte/conv_relu_linear.pte` is ExecuTorch 1.5.1's own output
    // (`scripts/gen_pte_fixture.py`): conv, relu, a flatten ExecuTorch turned into a shared
    // allocation, then linear as permute_copy + addmm.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/pte/conv_relu_linear.pte"
    );
    let bytes = std::fs::read(path).unwrap();
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let steps: Vec<Step> = (0..p.instructions_len())
        .map(|i| decode(&p, i).unwrap().unwrap())
        .collect();
    let io: Vec<(&[u32], u32)> = steps.iter().map(|s| (s.inputs(), s.output)).collect();
    assert_eq!(
        io,
        [
            (&[4u32, 0, 1][..], 5),
            (&[5][..], 20),
            (&[2][..], 22),
            (&[3, 21, 22][..], 26)
        ]
    );
    assert_eq!(
        steps[0].kind,
        Kind::Conv {
            spatial: 2,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            output_padding: [0, 0],
            groups: 1,
            transposed: false
        }
    );
    assert_eq!(steps[1].kind, Kind::Unary(step::Unary::Relu));
    assert_eq!(
        steps[2].kind,
        Kind::Permute {
            perm: Ints::from_slice(&[1, 0]).unwrap()
        }
    );
    assert_eq!(
        steps[3].kind,
        Kind::Addmm {
            alpha: 1.0,
            beta: 1.0
        }
    );
}

/// Every fixture legalized for ATen: fused ops split and crops sliced, outputs unchanged, and where no etpkg-only
/// op remains, an aten-only program that passes every check above.
#[test]
fn legalize_aten_splits_fused_ops_without_changing_results() {
    let mut aten_programs = 0;
    let mut split = 0;
    for dir in fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let xs = common::fixtures::inputs(&dir);
        for flavour in ["export", "core"] {
            let label = format!("{name} ({flavour})");
            let (mut g, _) = optimized(&dir.join(format!("{flavour}.pt2")));
            let fused = g
                .nodes
                .iter()
                .filter(|n| match &n.op {
                    Op::Fused { .. } => true,
                    Op::Pad { pads, .. } => pads.iter().any(|&(b, a)| b < 0 || a < 0),
                    _ => false,
                })
                .count();
            let attention = g
                .nodes
                .iter()
                .filter(|n| matches!(n.op, Op::Sdpa { .. }))
                .count();
            let before = etpkg::interp::run(&g, &xs).unwrap();
            let changes = passes::legalize_aten(&mut g);
            // Every fixture's attention has q, k and v of one batch shape: all are rewritten.
            assert_eq!(changes.len(), fused + attention, "{label}");
            split += fused + attention;
            assert!(!g.nodes.iter().any(|n| match &n.op {
                Op::Fused { .. } | Op::Sdpa { .. } => true,
                Op::Pad { pads, .. } => pads.iter().any(|&(b, a)| b < 0 || a < 0),
                _ => false,
            }));
            // A fused op is its producer then its activation: the same bits. Attention as
            // matmuls and softmax rounds differently, within the parity tolerance.
            let after = etpkg::interp::run(&g, &xs).unwrap();
            for (a, b) in after.iter().zip(&before) {
                if attention == 0 {
                    assert!(
                        a.to_le_bytes() == b.to_le_bytes(),
                        "{label}: output changed"
                    );
                } else {
                    let err = common::fixtures::relative_error(a, b).unwrap();
                    assert!(
                        err <= 1e-5,
                        "{label}: attention rewritten with error {err:e}"
                    );
                }
            }
            let host = device::builtin("host").unwrap().unwrap();
            let plan = memory::plan(&g, &options(), &host).unwrap();
            match emit(&g, &plan, &EmitOptions { aten_only: true }) {
                Ok(p) => {
                    let bytes = pte::write(&p);
                    check(&label, &g, &plan, &bytes);
                    aten_programs += 1;
                    // Set `ETPKG_EMIT_DUMP_DIR` to run them in ExecuTorch's own runtime by hand
                    // (`scripts/check_emitted.py`).
                    if let Ok(out) = std::env::var("ETPKG_EMIT_DUMP_DIR") {
                        std::fs::write(format!("{out}/{name}.{flavour}.pte"), &bytes).unwrap();
                    }
                }
                // Ops ATen has no single-output operator for remain etpkg's, and say so.
                Err(EmitError::NotAten { op, fix, .. }) => {
                    assert!(!op.contains('+'), "{label}: {op} is still fused");
                    assert!(fix.contains("ATen has no"), "{label}: {fix}");
                }
                Err(e) => panic!("{label}: {e}"),
            }
        }
    }
    assert!(split > 0);
    assert!(aten_programs >= 4, "{aten_programs}");
    eprintln!("{split} nodes legalized; {aten_programs} aten-only programs");
}

/// Decodes every `.pte` in `ETPKG_ET_PTE_DIR` (made by `scripts/gen_et_programs.py`) and prints,
/// per program, the instructions decoded and every error. Run by hand with `--ignored`.
#[test]
#[ignore]
fn executorch_written_programs_in_a_folder_decode() {
    let Ok(dir) = std::env::var("ETPKG_ET_PTE_DIR") else {
        panic!("set ETPKG_ET_PTE_DIR to a folder of ExecuTorch-written programs");
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pte"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let program = match Program::parse(&bytes) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: the reader rejects it: {e}", path.display());
                continue;
            }
        };
        let p = program.plan_named("forward").unwrap();
        let mut ok = 0;
        let mut errors = std::collections::BTreeSet::new();
        for i in 0..p.instructions_len() {
            match decode(&p, i) {
                Ok(_) => ok += 1,
                Err(e) => {
                    let text = e.to_string();
                    errors.insert(text[text.find("calls").unwrap_or(0)..].to_string());
                }
            }
        }
        eprintln!(
            "{}: {ok}/{} decoded",
            path.file_name().unwrap().to_string_lossy(),
            p.instructions_len()
        );
        for e in errors {
            eprintln!("    {e}");
        }
    }
}

/// Decodes one ExecuTorch-written program from `tests/fixtures/pte/et/`; returns the number of
/// instructions decoded and the sorted, unique operators of those that are unknown.
fn decode_et(name: &str) -> (usize, usize, Vec<String>) {
    let path = format!(
        "{}/tests/fixtures/pte/et/{name}.pte",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(path).unwrap();
    let program = Program::parse(&bytes).unwrap();
    let p = program.plan_named("forward").unwrap();
    let mut ok = 0;
    let mut unknown = std::collections::BTreeSet::new();
    for i in 0..p.instructions_len() {
        match decode(&p, i) {
            Ok(Some(step)) => {
                // Operands and output are tensors (a concat's operand and a split's outs are
                // lists; a `.Scalar` overload's operand is a scalar value).
                for &v in step.inputs() {
                    assert!(
                        matches!(
                            p.value(v as usize),
                            Some(
                                Value::Tensor(_)
                                    | Value::TensorList(_)
                                    | Value::Int(_)
                                    | Value::Double(_)
                                    | Value::Bool(_)
                            )
                        ),
                        "{name}: instruction {i}"
                    );
                }
                assert!(matches!(
                    p.value(step.output as usize),
                    Some(Value::Tensor(_))
                ));
                ok += 1;
            }
            Ok(None) => {}
            Err(DecodeError::UnknownOperator { operator, .. }) => {
                unknown.insert(operator.as_str().to_string());
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    (ok, p.instructions_len(), unknown.into_iter().collect())
}

/// Programs ExecuTorch 1.5.1 wrote for three fixtures (`scripts/gen_et_programs.py`:
/// `to_edge(export.pt2).to_executorch()`) decode completely: batch norm and max pooling with
/// their extra outputs, and the GPT decoder's scalar-operand arithmetic, tensor creation,
/// splits and `any` (tests/et_programs.rs runs them).
#[test]
fn executorch_written_models_decode() {
    for name in ["mobilenet_v2", "resnet", "gpt"] {
        let (ok, n, unknown) = decode_et(name);
        assert_eq!((ok, unknown.len()), (n, 0), "{name}: {unknown:?}");
    }
    assert_eq!(decode_et("gpt").1, 106);
}
