//! Unit tests of the planner on a small hand-built graph that exercises every alias rule.
//! Invariant: every plan built here passes `check` and runs like the reference interpreter.

use super::*;
use crate::device::{DeviceOrigin, MemoryRegion};
use crate::interp::{self, Tensor};
use crate::ir::{BinaryOp, DType, Op, Origin, TensorType, UnaryOp};

fn f32t(shape: &[usize]) -> TensorType {
    TensorType::new(DType::F32, shape.to_vec())
}

/// `x → relu → exp → reshape → two slices → add → neg`, and `x → reshape → sigmoid`, the two
/// concatenated: views, an in-place chain, a refused in-place (two slices of one buffer) and a
/// concat in place.
fn sample() -> Graph {
    let mut g = Graph::default();
    let o = Origin::default;
    let x = g.add_input("x".into(), f32t(&[1, 4, 8]));
    let a = g.add_node(
        Op::Unary(UnaryOp::Relu),
        vec![x],
        "a".into(),
        f32t(&[1, 4, 8]),
        o(),
    );
    let b = g.add_node(
        Op::Unary(UnaryOp::Exp),
        vec![a],
        "b".into(),
        f32t(&[1, 4, 8]),
        o(),
    );
    let c = g.add_node(
        Op::Reshape { shape: vec![4, 8] },
        vec![b],
        "c".into(),
        f32t(&[4, 8]),
        o(),
    );
    let slice = |start, end| Op::Slice {
        axis: 0,
        start,
        end,
        step: 1,
    };
    let d = g.add_node(slice(0, 2), vec![c], "d".into(), f32t(&[2, 8]), o());
    let e = g.add_node(slice(2, 4), vec![c], "e".into(), f32t(&[2, 8]), o());
    let f = g.add_node(
        Op::Binary(BinaryOp::Add),
        vec![d, e],
        "f".into(),
        f32t(&[2, 8]),
        o(),
    );
    let p = g.add_node(
        Op::Unary(UnaryOp::Neg),
        vec![f],
        "p".into(),
        f32t(&[2, 8]),
        o(),
    );
    let xr = g.add_node(
        Op::Reshape { shape: vec![4, 8] },
        vec![x],
        "xr".into(),
        f32t(&[4, 8]),
        o(),
    );
    let r = g.add_node(
        Op::Unary(UnaryOp::Sigmoid),
        vec![xr],
        "r".into(),
        f32t(&[4, 8]),
        o(),
    );
    let out = g.add_node(
        Op::Concat { axis: 0 },
        vec![p, r],
        "out".into(),
        f32t(&[6, 8]),
        o(),
    );
    g.outputs.push(out);
    g
}

fn device(regions: &[(&str, u64, bool)]) -> Device {
    Device {
        name: "test".into(),
        description: String::new(),
        triple: "native".into(),
        features: vec![],
        cpu: None,
        std: true,
        alignment: 16,
        regions: regions
            .iter()
            .map(|&(name, bytes, fast)| MemoryRegion {
                name: name.into(),
                bytes,
                fast,
            })
            .collect(),
        origin: DeviceOrigin::Builtin,
    }
}

fn all_on(planner: MemoryPlanner) -> PlanOptions {
    PlanOptions {
        planner,
        alias_views: true,
        in_place: true,
        concat_in_place: true,
    }
}

fn input() -> Tensor {
    Tensor::f32(
        vec![1, 4, 8],
        (0..32).map(|i| i as f32 * 0.25 - 3.0).collect(),
    )
}

fn runs_like_the_interpreter(g: &Graph, plan: &MemoryPlan) {
    check(g, plan).unwrap();
    let want = interp::run(g, &[input()]).unwrap();
    let got = simulate(g, plan, &[input()]).unwrap();
    assert_eq!(got, want);
}

#[test]
fn sample_plan_snapshot() {
    let g = sample();
    let plan = plan(
        &g,
        &all_on(MemoryPlanner::Best),
        &device(&[("ram", 1 << 20, false)]),
    )
    .unwrap();
    runs_like_the_interpreter(&g, &plan);
    insta::assert_snapshot!(serde_json::to_string_pretty(&plan).unwrap());
}

#[test]
fn both_planners_and_no_aliasing_are_valid() {
    let g = sample();
    let dev = device(&[("ram", 1 << 20, false)]);
    for planner in [
        MemoryPlanner::GreedyBySize,
        MemoryPlanner::GreedyByConflicts,
    ] {
        runs_like_the_interpreter(&g, &plan(&g, &all_on(planner), &dev).unwrap());
    }
    let off = PlanOptions {
        planner: MemoryPlanner::Best,
        alias_views: false,
        in_place: false,
        concat_in_place: false,
    };
    let p = plan(&g, &off, &dev).unwrap();
    assert!(p.values.iter().flatten().all(|v| v.alias.is_none()));
    runs_like_the_interpreter(&g, &p);
}

#[test]
fn two_slices_of_one_buffer_are_not_added_in_place() {
    let g = sample();
    let p = plan(
        &g,
        &all_on(MemoryPlanner::Best),
        &device(&[("ram", 1 << 20, false)]),
    )
    .unwrap();
    let f = p.values.iter().flatten().find(|v| v.name == "f").unwrap();
    // `f` owns its bytes but was then moved inside the concat's output.
    assert!(matches!(f.alias, Some(AliasKind::Concat { .. })));
    let b = p.values.iter().flatten().find(|v| v.name == "b").unwrap();
    assert!(matches!(b.alias, Some(AliasKind::InPlace { .. })));
}

#[test]
fn checker_rejects_broken_plans() {
    let g = sample();
    let good = plan(
        &g,
        &all_on(MemoryPlanner::Best),
        &device(&[("ram", 1 << 20, false)]),
    )
    .unwrap();
    let by_name =
        |p: &MemoryPlan, n: &str| p.values.iter().flatten().position(|v| v.name == n).unwrap();

    let mut bad = good.clone();
    let e = by_name(&bad, "e");
    bad.values[e].as_mut().unwrap().offset -= 16;
    let err = check(&g, &bad).unwrap_err();
    assert!(err.contains("view"), "{err}");

    // Without aliasing every value owns its bytes; putting `f` on the input `x`, which is
    // still to be read, is a clobber.
    let off = PlanOptions {
        planner: MemoryPlanner::Best,
        alias_views: false,
        in_place: false,
        concat_in_place: false,
    };
    let mut bad = plan(&g, &off, &device(&[("ram", 1 << 20, false)])).unwrap();
    let (x, f) = (by_name(&bad, "x"), by_name(&bad, "f"));
    bad.values[f].as_mut().unwrap().offset = bad.values[x].as_ref().unwrap().offset;
    let err = check(&g, &bad).unwrap_err();
    assert!(err.contains("writes `f` over `x`"), "{err}");
}

#[test]
fn fast_region_takes_what_fits_and_the_rest_spills() {
    let g = sample();
    let dev = device(&[("dtcm", 256, true), ("sram", 4096, false)]);
    let p = plan(&g, &all_on(MemoryPlanner::Best), &dev).unwrap();
    runs_like_the_interpreter(&g, &p);
    let dtcm = &p.regions[0];
    assert!(dtcm.planned_bytes <= 256 && dtcm.buffers > 0, "{dtcm:?}");
    assert!(p.regions[1].buffers > 0);
}

#[test]
fn a_plan_that_does_not_fit_names_region_peak_and_tensors() {
    let g = sample();
    let err = plan(
        &g,
        &all_on(MemoryPlanner::Best),
        &device(&[("sram", 200, false)]),
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn offset_algorithms_separate_overlapping_lifetimes() {
    use greedy_by_size::Item;
    let iv = |first, last| Interval { first, last };
    let items = [
        Item {
            size: 64,
            life: iv(0, 2),
        },
        Item {
            size: 32,
            life: iv(1, 3),
        },
        Item {
            size: 64,
            life: iv(3, 4),
        },
        Item {
            size: 16,
            life: iv(4, 4),
        },
    ];
    for o in [
        greedy_by_size::plan(&items, 16),
        greedy_by_conflicts::plan(&items, 16),
        search::improve(&items, 16, 96),
    ] {
        for i in 0..items.len() {
            assert_eq!(o.offsets[i] % 16, 0);
            for j in 0..i {
                if items[i].life.overlaps(items[j].life) {
                    let (a, b) = (o.offsets[i], o.offsets[j]);
                    assert!(a + items[i].size <= b || b + items[j].size <= a);
                }
            }
        }
        assert_eq!(o.total, 96, "the lower bound is reachable here");
    }
}
