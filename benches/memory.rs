//! Memory-planning benchmark and report: for each archive in `ETPKG_BENCH_MODELS`
//! (comma-separated paths; default the real `mobilenet_v2` under `/work/real`), planned arena
//! bytes, the lower bound under the same aliasing, their ratio, each planner's size, and the
//! median planning time with every aliasing flag on. The device is `ETPKG_BENCH_DEVICE`
//! (a built-in name, default `host`).
//!
//! Targets (issue 4): planned ≤ 1.02 × lower bound; `mobilenet_v2` ≤ 0.65 × 9,936,896 bytes and
//! `resnet18` ≤ 0.65 × 6,422,528 bytes (ExecuTorch's plans); planning `mobilenet_v2` under 20 ms.
//!
//! Invariant: every plan measured here also passes `memory::check`.

use etpkg::manifest::MemoryPlanner;
use etpkg::memory::{self, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let models: Vec<PathBuf> = std::env::var("ETPKG_BENCH_MODELS")
        .unwrap_or_else(|_| "/work/real/mobilenet_v2/export.pt2".to_string())
        .split(',')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    let device_name = std::env::var("ETPKG_BENCH_DEVICE").unwrap_or_else(|_| "host".to_string());
    let device = etpkg::device::builtin(&device_name)
        .unwrap_or_else(|| panic!("no built-in device `{device_name}`"))
        .expect("built-in devices parse");
    let opts = |planner| PlanOptions {
        planner,
        alias_views: true,
        in_place: true,
        concat_in_place: true,
    };
    for path in models {
        if !path.exists() {
            eprintln!(
                "{} does not exist; create it with `scripts/real_models.py --export-only`",
                path.display()
            );
            std::process::exit(2);
        }
        let g = etpkg::pt2::import(&path).expect("import failed").graph;
        let plan = memory::plan(&g, &opts(MemoryPlanner::Best), &device).expect("plan failed");
        memory::check(&g, &plan).expect("the plan is invalid");
        let sizes: Vec<String> = [
            MemoryPlanner::GreedyBySize,
            MemoryPlanner::GreedyByConflicts,
        ]
        .into_iter()
        .map(|p| {
            let plan = memory::plan(&g, &opts(p), &device).expect("plan failed");
            memory::check(&g, &plan).expect("the plan is invalid");
            format!("{p:?} {}", plan.total_bytes())
        })
        .collect();
        let runs = 30;
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let p = memory::plan(&g, &opts(MemoryPlanner::Best), &device).unwrap();
                let dt = t.elapsed().as_secs_f64() * 1e3;
                std::hint::black_box(p.regions.len());
                dt
            })
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        let aliased = plan
            .values
            .iter()
            .flatten()
            .filter(|p| p.alias.is_some())
            .count();
        println!(
            "{} ({} nodes, {} buffers, {aliased} aliased values) on {device_name}:",
            path.display(),
            g.nodes.len(),
            plan.buffers.len()
        );
        for r in &plan.regions {
            println!(
                "  region {}: planned {} B, lower bound {} B, ratio {:.4}, peak step {} ({}), by {:?}",
                r.name, r.planned_bytes, r.lower_bound, r.ratio, r.peak_step, r.peak_op, r.algorithm
            );
        }
        println!("  planners: {}", sizes.join(", "));
        println!(
            "  planning (best, all aliasing on): median {:.3} ms, min {:.3} ms, max {:.3} ms over {runs} runs",
            times[runs / 2],
            times[0],
            times[runs - 1]
        );
    }
}
