//! Memory plans executed: every fixture model, both export flavours, planned with all aliasing
//! on by each planner, validated by `memory::check`, then run inside the planned arena by
//! `memory::simulate` and compared bit for bit with the reference interpreter. Views and
//! in-place concatenations run no kernel there, so a wrong alias gives a wrong output.

mod common;

use common::fixtures::{fixture_dirs, inputs};
use etpkg::device::{self, Device};
use etpkg::interp::{self, Tensor};
use etpkg::manifest::MemoryPlanner;
use etpkg::memory::{self, AliasKind, PlanError, PlanOptions};
use etpkg::pt2;

fn all_on(planner: MemoryPlanner) -> PlanOptions {
    PlanOptions {
        planner,
        alias_views: true,
        in_place: true,
        concat_in_place: true,
    }
}

fn builtin(name: &str) -> Device {
    device::builtin(name).unwrap().unwrap()
}

/// Plans, checks and simulates one graph; returns how many values were aliased.
fn run_one(
    label: &str,
    g: &etpkg::ir::Graph,
    xs: &[Tensor],
    want: &[Tensor],
    opts: &PlanOptions,
    dev: &Device,
) -> Option<usize> {
    let plan = match memory::plan(g, opts, dev) {
        Ok(p) => p,
        Err(PlanError::DoesNotFit(_)) if dev.name == "cortex-m7" => return None,
        Err(e) => panic!("{label}: {e}"),
    };
    memory::check(g, &plan).unwrap_or_else(|e| panic!("{label}: invalid plan: {e}"));
    for r in &plan.regions {
        assert!(
            r.planned_bytes >= r.lower_bound,
            "{label}: below the lower bound"
        );
    }
    let got = memory::simulate(g, &plan, xs).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(got.len(), want.len(), "{label}");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert_eq!(a.shape, b.shape, "{label}: output {k} shape");
        assert!(
            a.to_le_bytes() == b.to_le_bytes(),
            "{label}: output {k} differs from the reference interpreter"
        );
    }
    Some(
        plan.values
            .iter()
            .flatten()
            .filter(|p| p.alias.is_some())
            .count(),
    )
}

/// How many values of each alias kind (view, in place, concat) a plan has.
fn kinds(g: &etpkg::ir::Graph, opts: &PlanOptions, dev: &Device) -> [usize; 3] {
    let plan = memory::plan(g, opts, dev).unwrap();
    let mut n = [0; 3];
    for p in plan.values.iter().flatten() {
        match p.alias {
            Some(AliasKind::View { .. }) => n[0] += 1,
            Some(AliasKind::InPlace { .. }) => n[1] += 1,
            Some(AliasKind::Concat { .. }) => n[2] += 1,
            None => {}
        }
    }
    n
}

#[test]
fn planned_execution_matches_the_interpreter_on_every_fixture() {
    let host = builtin("host");
    let m7 = builtin("cortex-m7");
    let mut aliased = 0;
    let mut split = 0;
    let mut seen = [0usize; 3];
    for dir in fixture_dirs() {
        let xs = inputs(&dir);
        for flavour in ["export", "core"] {
            let g = pt2::import(&dir.join(format!("{flavour}.pt2")))
                .unwrap()
                .graph;
            let want = interp::run(&g, &xs).unwrap();
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            for planner in [
                MemoryPlanner::GreedyBySize,
                MemoryPlanner::GreedyByConflicts,
                MemoryPlanner::Best,
            ] {
                let label = format!("{name}/{flavour} {planner:?}");
                aliased += run_one(&label, &g, &xs, &want, &all_on(planner), &host).unwrap();
                if run_one(
                    &format!("{label} cortex-m7"),
                    &g,
                    &xs,
                    &want,
                    &all_on(planner),
                    &m7,
                )
                .is_some()
                {
                    split += 1;
                }
            }
            let k = kinds(&g, &all_on(MemoryPlanner::Best), &host);
            for (s, n) in seen.iter_mut().zip(k) {
                *s += n;
            }
            let off = PlanOptions {
                planner: MemoryPlanner::Best,
                alias_views: false,
                in_place: false,
                concat_in_place: false,
            };
            let none = run_one(
                &format!("{name}/{flavour} no aliasing"),
                &g,
                &xs,
                &want,
                &off,
                &host,
            );
            assert_eq!(none, Some(0));
        }
    }
    assert!(aliased > 0, "the fixtures exercise aliasing");
    assert!(
        seen.iter().all(|&n| n > 0),
        "every alias kind is exercised (views, in place, concat): {seen:?}"
    );
    assert!(split > 0, "some fixture fits the two-region device");
}
