//! Passes-and-planning benchmark and arena report. For each real model (the archives written by
//! `scripts/real_models.py --export-only --out DIR`, with DIR from `ETPKG_REAL_MODELS`, default
//! `target/real-models`): the `release` profile's graph passes, then the memory plan (best of
//! both planners, every aliasing pass on) for the `host` device. Prints the planned arena, the
//! lower bound under the same aliasing, their ratio, ExecuTorch 1.5.1's arena for the same model
//! (`docs/et-arena.json`, measured by `scripts/et_arena.py`) and etpkg / ExecuTorch, plus the
//! median time of passes and planning together.
//!
//! Targets (issue 4): planned ≤ 1.02 × lower bound for every model; `mobilenet_v2` and
//! `resnet18` ≤ 0.65 × ExecuTorch; passes and planning for `mobilenet_v2` under 20 ms.
//! The arena targets fail the run when missed; the time is printed with its verdict.
//! Invariant: every plan measured here also passes `memory::check`.

use etpkg::manifest::Profile;
use etpkg::memory::{self, PlanOptions};
use std::path::PathBuf;
use std::time::Instant;

const MODELS: &[&str] = &[
    "mobilenet_v2",
    "resnet18",
    "mobilenet_v3_small",
    "vit",
    "gpt",
    "conv1d_net",
];

fn main() {
    let dir = PathBuf::from(
        std::env::var("ETPKG_REAL_MODELS").unwrap_or_else(|_| "target/real-models".into()),
    );
    let et: serde_json::Value = std::fs::read(
        std::env::var("ETPKG_ET_ARENA").unwrap_or_else(|_| "docs/et-arena.json".into()),
    )
    .ok()
    .and_then(|b| serde_json::from_slice(&b).ok())
    .unwrap_or_default();
    let device = etpkg::device::builtin("host")
        .expect("host is built in")
        .expect("built-in devices parse");
    let profile = Profile::release();
    let opts = PlanOptions::from_profile(&profile);
    let mut failed = Vec::new();
    println!(
        "| model | etpkg arena (B) | lower bound (B) | etpkg / bound | ExecuTorch arena (B) | etpkg / ExecuTorch | passes + planning, median |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for name in MODELS {
        let path = dir.join(name).join("export.pt2");
        if !path.exists() {
            eprintln!(
                "{} does not exist; create it with `python scripts/real_models.py --export-only --out {}`",
                path.display(),
                dir.display()
            );
            std::process::exit(2);
        }
        let imported = etpkg::pt2::import(&path).expect("import failed").graph;
        let run = || {
            let mut g = imported.clone();
            etpkg::passes::run_passes(&mut g, &profile.passes).expect("passes failed");
            let plan = memory::plan(&g, &opts, &device).expect("plan failed");
            (g, plan)
        };
        let (g, plan) = run();
        memory::check(&g, &plan).expect("the plan is invalid");
        let runs = 20;
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(run());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(|a, b| a.total_cmp(b));
        let median = times[runs / 2];
        let planned = plan.total_bytes();
        let bound: u64 = plan.regions.iter().map(|r| r.lower_bound).sum();
        let ratio = planned as f64 / bound.max(1) as f64;
        let et_bytes = et[name]["arena_bytes"].as_u64();
        let vs_et = et_bytes.map(|e| planned as f64 / e as f64);
        println!(
            "| {name} | {planned} | {bound} | {ratio:.4} | {} | {} | {median:.2} ms |",
            et_bytes.map_or("-".into(), |e| e.to_string()),
            vs_et.map_or("-".into(), |r| format!("{r:.3}")),
        );
        if ratio > 1.02 {
            failed.push(format!("{name}: planned/bound {ratio:.4} > 1.02"));
        }
        if matches!(*name, "mobilenet_v2" | "resnet18") && vs_et.is_none_or(|r| r > 0.65) {
            failed.push(format!("{name}: etpkg/ExecuTorch {vs_et:?} > 0.65"));
        }
        if *name == "mobilenet_v2" {
            // Timing depends on the machine's load, so it is reported, not enforced; the arena
            // figures above are deterministic and are.
            eprintln!(
                "mobilenet_v2 passes + planning: median {median:.2} ms (target < 20 ms: {})",
                if median < 20.0 { "met" } else { "MISSED" }
            );
        }
    }
    if !failed.is_empty() {
        eprintln!("targets missed:\n  {}", failed.join("\n  "));
        std::process::exit(1);
    }
}
