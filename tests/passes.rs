//! Graph passes, tested two ways: snapshots of a small hand-built graph's IR before and after
//! each pass, and the reference interpreter's outputs before and after all passes on every
//! fixture, in both export flavours. Invariant: a pass may change how a fixture computes its
//! outputs but not what they are: `max|after − before| ≤ 1e-5 × max(1, max|before|)`.

mod common;

use common::fixtures::{fixture_dirs, inputs, relative_error};
use etpkg::interp::{self, Tensor};
use etpkg::ir::{
    dump, serial, BinaryOp, ConstData, ConstKind, ConvAttrs, DType, Graph, Op, Origin, TensorType,
    UnaryOp, ValueId,
};
use etpkg::passes::{self, run_passes};
use etpkg::pt2;
use std::path::Path;

const TOLERANCE: f64 = 1e-5;

fn f32_ty(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// A deterministic pseudo-random sequence, so hand-built graphs need no RNG crate.
fn values(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (hi - lo) * (s as f32 / u32::MAX as f32)
        })
        .collect()
}

fn constant(g: &mut Graph, name: &str, shape: &[usize], data: &[f32]) -> ValueId {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    g.add_constant(
        name.into(),
        f32_ty(shape),
        ConstKind::Parameter,
        None,
        ConstData::Owned(bytes.into()),
    )
}

fn node(g: &mut Graph, op: Op, inputs: Vec<ValueId>, name: &str) -> ValueId {
    let tys: Vec<TensorType> = inputs.iter().map(|&v| g.ty(v).clone()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let ty = etpkg::ir::infer(&op, &refs).unwrap();
    g.add_node(op, inputs, name.into(), ty, Origin::default())
}

fn conv2d() -> Op {
    Op::Conv(ConvAttrs {
        stride: vec![1, 1],
        padding: vec![1, 1],
        dilation: vec![1, 1],
        groups: 1,
        transposed: false,
        output_padding: vec![0, 0],
    })
}

fn batch_norm(g: &mut Graph, x: ValueId, c: usize, prefix: &str, name: &str) -> ValueId {
    let gamma = constant(
        g,
        &format!("{prefix}.weight"),
        &[c],
        &values(c, 1, 0.5, 1.5),
    );
    let beta = constant(g, &format!("{prefix}.bias"), &[c], &values(c, 2, -0.5, 0.5));
    let mean = constant(g, &format!("{prefix}.mean"), &[c], &values(c, 3, -0.2, 0.2));
    let var = constant(g, &format!("{prefix}.var"), &[c], &values(c, 4, 0.5, 2.0));
    node(
        g,
        Op::BatchNorm { eps: 1e-5 },
        vec![x, gamma, beta, mean, var],
        name,
    )
}

/// conv → batch norm → relu6, and linear → batch norm → relu.
fn conv_bn_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_input("x".into(), f32_ty(&[1, 2, 4, 4]));
    let w = constant(
        &mut g,
        "conv1.weight",
        &[3, 2, 3, 3],
        &values(54, 5, -1.0, 1.0),
    );
    let conv = node(&mut g, conv2d(), vec![x, w], "conv1");
    let bn = batch_norm(&mut g, conv, 3, "bn1", "bn1");
    let act = node(
        &mut g,
        Op::Unary(UnaryOp::Clamp {
            min: Some(0.0),
            max: Some(6.0),
        }),
        vec![bn],
        "relu6",
    );
    let flat = node(
        &mut g,
        Op::Reshape { shape: vec![1, 48] },
        vec![act],
        "flat",
    );
    let lw = constant(&mut g, "fc.weight", &[4, 48], &values(192, 6, -0.3, 0.3));
    let lb = constant(&mut g, "fc.bias", &[4], &values(4, 7, -0.1, 0.1));
    let fc = node(&mut g, Op::Linear, vec![flat, lw, lb], "fc");
    let bn2 = batch_norm(&mut g, fc, 4, "bn2", "bn2");
    let out = node(&mut g, Op::Unary(UnaryOp::Relu), vec![bn2], "relu");
    g.outputs = vec![out];
    g
}

/// A grouped transposed convolution followed by batch norm and ReLU.
fn conv_transpose_bn_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_input("x".into(), f32_ty(&[1, 4, 3, 3]));
    // `[C_in, C_out/groups, kh, kw]` with 4 inputs, 6 outputs and 2 groups.
    let w = constant(
        &mut g,
        "up.weight",
        &[4, 3, 2, 2],
        &values(48, 9, -1.0, 1.0),
    );
    let b = constant(&mut g, "up.bias", &[6], &values(6, 10, -0.5, 0.5));
    let up = node(
        &mut g,
        Op::Conv(ConvAttrs {
            stride: vec![2, 2],
            padding: vec![0, 0],
            dilation: vec![1, 1],
            groups: 2,
            transposed: true,
            output_padding: vec![0, 0],
        }),
        vec![x, w, b],
        "up",
    );
    let bn = batch_norm(&mut g, up, 6, "bn", "bn");
    let out = node(&mut g, Op::Unary(UnaryOp::Relu), vec![bn], "relu");
    g.outputs = vec![out];
    g
}

/// Activations after every kind of producer, plus one whose producer has a second reader and
/// one whose producer is a graph output, which must both stay unfused.
fn activation_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_input("x".into(), f32_ty(&[2, 4]));
    let w = constant(&mut g, "w", &[4, 4], &values(16, 8, -1.0, 1.0));
    let lin = node(&mut g, Op::Linear, vec![x, w], "lin");
    let gelu = node(
        &mut g,
        Op::Unary(UnaryOp::Gelu { tanh: true }),
        vec![lin],
        "gelu",
    );
    let mm = node(&mut g, Op::MatMul, vec![gelu, w], "mm");
    let silu = node(&mut g, Op::Unary(UnaryOp::Silu), vec![mm], "silu");
    let add = node(&mut g, Op::Binary(BinaryOp::Add), vec![silu, x], "add");
    let hs = node(
        &mut g,
        Op::Unary(UnaryOp::Hardswish),
        vec![add],
        "hardswish",
    );
    let mul = node(&mut g, Op::Binary(BinaryOp::Mul), vec![hs, x], "mul");
    let hsig = node(
        &mut g,
        Op::Unary(UnaryOp::Hardsigmoid),
        vec![mul],
        "hardsigmoid",
    );
    // `sub` is read twice, so its relu must stay a separate op.
    let sub = node(&mut g, Op::Binary(BinaryOp::Sub), vec![hsig, x], "sub");
    let relu = node(&mut g, Op::Unary(UnaryOp::Relu), vec![sub], "relu");
    let both = node(&mut g, Op::Binary(BinaryOp::Add), vec![relu, sub], "both");
    // `exposed` is a graph output, so its relu must stay separate too.
    let exposed = node(&mut g, Op::Binary(BinaryOp::Add), vec![both, x], "exposed");
    let relu2 = node(&mut g, Op::Unary(UnaryOp::Relu), vec![exposed], "relu2");
    g.outputs = vec![relu2, exposed];
    g
}

/// Constant arithmetic feeding a computed value.
fn constant_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_input("x".into(), f32_ty(&[2, 3]));
    let a = constant(&mut g, "a", &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let at = node(&mut g, Op::Permute { perm: vec![1, 0] }, vec![a], "a_t");
    let two = constant(&mut g, "two", &[], &[2.0]);
    let scaled = node(&mut g, Op::Binary(BinaryOp::Mul), vec![at, two], "scaled");
    let y = node(&mut g, Op::Binary(BinaryOp::Add), vec![x, scaled], "y");
    g.outputs = vec![y];
    g
}

/// No-op views, a dead branch and an unused constant.
fn dead_code_graph() -> Graph {
    let mut g = Graph::default();
    let x = g.add_input("x".into(), f32_ty(&[2, 3]));
    let unused = constant(&mut g, "unused", &[1], &[0.0]);
    let _ = unused;
    let r = node(
        &mut g,
        Op::Reshape { shape: vec![2, 3] },
        vec![x],
        "same_shape",
    );
    let p = node(
        &mut g,
        Op::Permute { perm: vec![0, 1] },
        vec![r],
        "identity_perm",
    );
    let c = node(&mut g, Op::Cast { to: DType::F32 }, vec![p], "same_dtype");
    let s = node(
        &mut g,
        Op::Slice {
            axis: 1,
            start: 0,
            end: 3,
            step: 1,
        },
        vec![c],
        "whole_slice",
    );
    let pad = node(
        &mut g,
        Op::Pad {
            pads: vec![(0, 0), (0, 0)],
            value: 0.0,
        },
        vec![s],
        "zero_pad",
    );
    let e = node(
        &mut g,
        Op::Expand { shape: vec![2, 3] },
        vec![pad],
        "same_expand",
    );
    let y = node(&mut g, Op::Unary(UnaryOp::Exp), vec![e], "y");
    let dead = node(&mut g, Op::Unary(UnaryOp::Neg), vec![y], "dead");
    let _dead2 = node(&mut g, Op::Unary(UnaryOp::Abs), vec![dead], "dead2");
    // A real slice stays.
    let half = node(
        &mut g,
        Op::Slice {
            axis: 1,
            start: 0,
            end: 2,
            step: 1,
        },
        vec![y],
        "half",
    );
    // The no-op's output is a graph output: the output must be rewired to its input.
    let out_view = node(
        &mut g,
        Op::Reshape { shape: vec![2, 2] },
        vec![half],
        "out_view",
    );
    g.outputs = vec![out_view, y];
    g
}

fn random_inputs(g: &Graph) -> Vec<Tensor> {
    g.inputs
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ty = g.ty(v);
            Tensor::f32(
                ty.shape.clone(),
                values(ty.numel(), 100 + i as u32, -4.0, 4.0),
            )
        })
        .collect()
}

/// Runs one pass to a fixed point on `g`, checking the interpreter agrees before and after,
/// and returns the before/after dump with the change labels for a snapshot.
fn snapshot_pass(pass: &str, mut g: Graph) -> String {
    let inputs = random_inputs(&g);
    let before_out = interp::run(&g, &inputs).unwrap();
    let before = dump(&g);
    let report = run_passes(&mut g, &[pass.to_string()]).unwrap();
    check_graph(&g).unwrap();
    let after_out = interp::run(&g, &inputs).unwrap();
    for (b, a) in before_out.iter().zip(&after_out) {
        let e = relative_error(a, b).unwrap();
        assert!(e <= TOLERANCE, "{pass}: relative error {e:e}");
    }
    let changes: Vec<String> = report.changes.iter().map(|c| c.to_string()).collect();
    format!(
        "--- before\n{before}--- changes ({} rounds)\n{}\n--- after\n{}",
        report.rounds,
        changes.join("\n"),
        dump(&g)
    )
}

#[test]
fn fold_batch_norm_snapshot() {
    insta::assert_snapshot!(snapshot_pass("fold-batch-norm", conv_bn_graph()));
}

#[test]
fn fold_batch_norm_into_transposed_conv_snapshot() {
    insta::assert_snapshot!(snapshot_pass("fold-batch-norm", conv_transpose_bn_graph()));
}

#[test]
fn fold_batch_norm_after_fusing_keeps_the_activation() {
    // Fusing first turns `batch_norm → relu` into one op; folding must still see through it.
    for mut g in [conv_bn_graph(), conv_transpose_bn_graph()] {
        let inputs = random_inputs(&g);
        let before = interp::run(&g, &inputs).unwrap();
        let names = [
            "fuse-activations".to_string(),
            "fold-batch-norm".to_string(),
        ];
        let report = run_passes(&mut g, &names).unwrap();
        assert!(report.ops_after.keys().all(|k| !k.contains("batch_norm")));
        let after = interp::run(&g, &inputs).unwrap();
        for (a, b) in after.iter().zip(&before) {
            assert!(relative_error(a, b).unwrap() <= TOLERANCE);
        }
    }
}

#[test]
fn fuse_activations_snapshot() {
    insta::assert_snapshot!(snapshot_pass("fuse-activations", activation_graph()));
}

#[test]
fn fuse_activations_after_folding_snapshot() {
    let mut g = conv_bn_graph();
    run_passes(&mut g, &["fold-batch-norm".to_string()]).unwrap();
    insta::assert_snapshot!(snapshot_pass("fuse-activations", g));
}

#[test]
fn fold_constants_snapshot() {
    insta::assert_snapshot!(snapshot_pass("fold-constants", constant_graph()));
}

#[test]
fn eliminate_dead_code_snapshot() {
    insta::assert_snapshot!(snapshot_pass("eliminate-dead-code", dead_code_graph()));
}

#[test]
fn every_pass_name_is_accepted_and_unknown_ones_are_refused() {
    let names: Vec<String> = etpkg::manifest::KNOWN_PASSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut g = conv_bn_graph();
    let report = run_passes(&mut g, &names).unwrap();
    assert_eq!(report.ops_after.get("batch_norm"), None);
    assert!(report.ops_after.contains_key("conv+clamp"));
    assert!(report.ops_after.contains_key("linear+relu"));
    for name in passes::GRAPH_PASSES {
        assert!(etpkg::manifest::KNOWN_PASSES.contains(name));
        assert_eq!(passes::pass(name).unwrap().name(), *name);
    }
    assert_eq!(
        run_passes(&mut g, &["fold-everything".to_string()]),
        Err(passes::PassError::Unknown("fold-everything".into()))
    );
    // A graph at its fixed point is left alone.
    let before = serial::encode(&g);
    let report = run_passes(&mut g, &names).unwrap();
    assert!(report.changes.is_empty());
    assert_eq!(report.rounds, 1);
    assert_eq!(serial::encode(&g), before);
}

#[test]
fn fused_ops_round_trip_through_the_cache_format() {
    let mut g = activation_graph();
    run_passes(&mut g, &["fuse-activations".to_string()]).unwrap();
    let bytes = serial::encode(&g);
    let back = serial::decode(std::sync::Arc::new(etpkg::ir::Backing::Owned(
        bytes.clone(),
    )))
    .unwrap();
    assert_eq!(serial::encode(&back), bytes);
    assert_eq!(dump(&back), dump(&g));
}

/// Checks the IR's invariant on a graph a pass produced: every value read is defined earlier
/// (an input, a constant, or an earlier node), value definitions point back at their
/// definers, and every node's recorded type is what inference gives for its inputs.
fn check_graph(g: &Graph) -> Result<(), String> {
    use etpkg::ir::ValueDef;
    let mut defined = vec![false; g.values.len()];
    for (i, &v) in g.inputs.iter().enumerate() {
        if g.value(v).def != ValueDef::Input(i) {
            return Err(format!("input {i} is not defined as one"));
        }
        defined[v.index()] = true;
    }
    for (i, c) in g.constants.iter().enumerate() {
        if g.value(c.value).def != ValueDef::Const(etpkg::ir::ConstId(i as u32)) {
            return Err(format!("constant {i} is not defined as one"));
        }
        defined[c.value.index()] = true;
    }
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(v) = n.inputs.iter().find(|v| !defined[v.index()]) {
            return Err(format!(
                "node {i} reads `{}` before it is defined",
                g.value(*v).name
            ));
        }
        if g.value(n.output).def != ValueDef::Node(etpkg::ir::NodeId(i as u32)) {
            return Err(format!("node {i}'s output is not defined by it"));
        }
        let tys: Vec<&TensorType> = n.inputs.iter().map(|&v| g.ty(v)).collect();
        let inferred = etpkg::ir::infer(&n.op, &tys).map_err(|e| e.to_string())?;
        if &inferred != g.ty(n.output) {
            return Err(format!("node {i} ({}) infers {inferred}", n.op.name()));
        }
        defined[n.output.index()] = true;
    }
    match g.outputs.iter().find(|v| !defined[v.index()]) {
        Some(v) => Err(format!("output `{}` is undefined", g.value(*v).name)),
        None => Ok(()),
    }
}

fn all_passes() -> Vec<String> {
    etpkg::manifest::KNOWN_PASSES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn count(counts: &std::collections::BTreeMap<&'static str, usize>, name: &str) -> usize {
    counts.get(name).copied().unwrap_or(0)
}

#[test]
fn passes_keep_every_fixture_s_outputs() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 6);
    let mut failures = Vec::new();
    let mut changed = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let inputs = inputs(dir);
        for flavour in ["export", "core"] {
            let mut g = pt2::import(&dir.join(format!("{flavour}.pt2")))
                .unwrap()
                .graph;
            let before = interp::run(&g, &inputs).unwrap();
            let report = match run_passes(&mut g, &all_passes()) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{name} ({flavour}): {e}"));
                    continue;
                }
            };
            if let Err(e) = check_graph(&g) {
                failures.push(format!("{name} ({flavour}): broken graph: {e}"));
                continue;
            }
            let after = match interp::run(&g, &inputs) {
                Ok(a) => a,
                Err(e) => {
                    failures.push(format!("{name} ({flavour}): after passes: {e}"));
                    continue;
                }
            };
            for (i, (a, b)) in after.iter().zip(&before).enumerate() {
                match relative_error(a, b) {
                    Ok(e) if e <= TOLERANCE => {}
                    Ok(e) => failures.push(format!("{name} ({flavour}) output {i}: {e:e}")),
                    Err(m) => failures.push(format!("{name} ({flavour}) output {i}: {m}")),
                }
            }
            let nodes = |c: &std::collections::BTreeMap<&str, usize>| c.values().sum::<usize>();
            println!(
                "{name:<20} {flavour:<7} {} → {} nodes, {} changes, {} rounds\n  before {:?}\n  after  {:?}",
                nodes(&report.ops_before),
                nodes(&report.ops_after),
                report.changes.len(),
                report.rounds,
                report.ops_before,
                report.ops_after
            );
            if !report.changes.is_empty() {
                changed.push(format!("{name}/{flavour}"));
            }
            if name == "mobilenet_v2" || name == "resnet" {
                assert!(
                    count(&report.ops_before, "batch_norm") > 0,
                    "{name} {flavour}"
                );
                assert_eq!(
                    count(&report.ops_after, "batch_norm"),
                    0,
                    "{name} {flavour}"
                );
                assert!(
                    count(&report.ops_after, "conv+relu") + count(&report.ops_after, "conv+clamp")
                        > 0,
                    "{name} {flavour}: {:?}",
                    report.ops_after
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(changed.len() >= 4, "only {changed:?} changed");
}

#[test]
fn passes_are_deterministic() {
    for name in ["mobilenet_v2", "resnet", "transformer_encoder"] {
        for flavour in ["export", "core"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/models")
                .join(name)
                .join(format!("{flavour}.pt2"));
            let encoded: Vec<Vec<u8>> = (0..2)
                .map(|_| {
                    let mut g = pt2::import(&path).unwrap().graph;
                    run_passes(&mut g, &all_passes()).unwrap();
                    serial::encode(&g)
                })
                .collect();
            assert!(encoded[0] == encoded[1], "{name} {flavour}");
        }
    }
}
