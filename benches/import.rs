//! Import benchmark: `.pt2` archive → lowered graph, median over repeated runs.
//!
//! The archive comes from `ETPKG_BENCH_MODEL` (the real torchvision `mobilenet_v2`, exported by
//! `scripts/real_models.py --export-only --out target/real-models`), defaulting to that path.
//! Target (issue 2): under 50 ms for `mobilenet_v2` (about 14 MB).

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let path = std::env::var_os("ETPKG_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/real-models/mobilenet_v2/export.pt2"));
    if !path.exists() {
        eprintln!(
            "{} does not exist; create it with `python scripts/real_models.py --export-only --out target/real-models`",
            path.display()
        );
        std::process::exit(2);
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // Warm the page cache and the allocator; the measured runs then see steady state.
    for _ in 0..3 {
        etpkg::pt2::import(&path).expect("import failed");
    }
    let runs = 30;
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let imported = etpkg::pt2::import(&path).expect("import failed");
            let dt = t.elapsed().as_secs_f64() * 1e3;
            std::hint::black_box(imported.graph.nodes.len());
            dt
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[runs / 2];
    println!(
        "import {} ({:.1} MB): median {:.2} ms, min {:.2} ms, max {:.2} ms over {runs} runs (target < 50 ms)",
        path.display(),
        bytes as f64 / 1e6,
        median,
        times[0],
        times[runs - 1]
    );
}
