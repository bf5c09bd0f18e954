//! Kernel selection on every fixture program, for both objectives: the invariants that make
//! the report truthful (each instruction's variant is the first kept one in the bindings'
//! order, which is what the runtime calls) and the objectives' meaning (speed takes each
//! instruction's fastest variant; size never keeps more code than speed).

mod common;

use common::fixtures::fixture_dirs;
use etpkg::emit::{emit, EmitOptions};
use etpkg::manifest::{KernelObjective, Profile};
use etpkg::memory::{self, PlanOptions};
use etpkg::select::{select, variant, Selection};
use etpkg::{device, passes, pt2, pte};

fn program(path: &std::path::Path) -> Vec<u8> {
    let mut g = pt2::import(path).unwrap().graph;
    let names: Vec<String> = passes::GRAPH_PASSES.iter().map(|s| s.to_string()).collect();
    passes::run_passes(&mut g, &names).unwrap();
    let host = device::builtin("host").unwrap().unwrap();
    let plan = memory::plan(&g, &PlanOptions::from_profile(&Profile::release()), &host).unwrap();
    pte::write(&emit(&g, &plan, &EmitOptions { aten_only: false }).unwrap())
}

fn check_invariants(label: &str, s: &Selection) {
    for c in &s.choices {
        assert!(
            s.kept.contains(c.variant),
            "{label}: {} not kept",
            c.variant
        );
        let first_kept = c
            .candidates
            .iter()
            .find(|k| k.unavailable.is_none() && s.kept.contains(k.variant))
            .unwrap();
        assert_eq!(
            first_kept.variant, c.variant,
            "{label}: instruction {}",
            c.instruction
        );
        // Candidates come in the bindings' order: fastest first.
        assert!(
            c.candidates.windows(2).all(|w| w[0].speed >= w[1].speed),
            "{label}"
        );
        assert!(!c.reason.is_empty());
    }
    let bytes: u64 = s
        .kept
        .iter()
        .map(|k| variant(k).unwrap().code_bytes as u64)
        .sum();
    assert_eq!(bytes, s.code_bytes, "{label}");
}

#[test]
fn selection_is_what_runs_and_each_objective_means_what_it_says() {
    let host = device::builtin("host").unwrap().unwrap();
    let mut specialized = 0;
    for dir in fixture_dirs() {
        let label = dir.file_name().unwrap().to_string_lossy().into_owned();
        let blob = program(&dir.join("export.pt2"));
        let speed = select(&blob, &host, KernelObjective::Speed).unwrap();
        let size = select(&blob, &host, KernelObjective::Size).unwrap();
        check_invariants(&label, &speed);
        check_invariants(&label, &size);
        // Speed: every instruction runs its fastest accepting variant that the host can run.
        for c in &speed.choices {
            let fastest = c.candidates.iter().find(|k| k.unavailable.is_none());
            assert_eq!(Some(c.variant), fastest.map(|k| k.variant), "{label}");
            if c.candidates.len() > 1 {
                specialized += 1;
            }
        }
        // Size: never more kernel code than speed, and the same instructions.
        assert!(size.code_bytes <= speed.code_bytes, "{label}");
        assert_eq!(size.choices.len(), speed.choices.len());
    }
    // The fixtures exercise real choices, not only single-candidate families.
    assert!(specialized > 50, "{specialized}");
}

#[test]
fn a_program_that_is_not_valid_is_an_error_not_a_panic() {
    let host = device::builtin("host").unwrap().unwrap();
    let dir = &fixture_dirs()[0];
    let blob = program(&dir.join("export.pt2"));
    for cut in [0, 8, 40, blob.len() / 2] {
        assert!(select(&blob[..cut], &host, KernelObjective::Speed).is_err());
    }
}
