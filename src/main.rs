//! The `etpkg` command line. Invariant: argument parsing and printing only; the work is in
//! `etpkg::ops`.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use etpkg::build::BuildOptions;
use etpkg::ops::status::{self, Verbosity};
use etpkg::ops::{project, target};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "etpkg",
    version,
    about = "Build PyTorch models into ExecuTorch programs and trimmed runtime crates"
)]
struct Cli {
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print fresh nodes and publishing.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by the commands that work on a project.
#[derive(Args)]
struct ProjectArgs {
    /// Path to `ExecuTorch.toml` (default: the nearest one from the current directory up).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Build only this target (repeatable); a built-in device name works too.
    #[arg(long = "target", value_name = "TARGET")]
    targets: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MessageFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Build every target of the project (or those named by `--target`).
    Build {
        #[command(flatten)]
        project: ProjectArgs,
        /// Build with this profile instead of each target's own.
        #[arg(long, value_name = "PROFILE")]
        profile: Option<String>,
        /// Run at most N nodes at once (default: the number of cores).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// `json` prints one JSON object per node event on stdout, for CI.
        #[arg(long, value_enum, default_value = "human")]
        message_format: MessageFormat,
    },
    /// Remove the published outputs in `target/etpkg` (and with `--cache`, the build cache).
    Clean {
        #[command(flatten)]
        project: ProjectArgs,
        /// Also remove the object store (`target/etpkg-cache` or `$ETPKG_CACHE_DIR`).
        #[arg(long)]
        cache: bool,
    },
    /// Create a new project (a manifest, `.gitignore` and `models/`) in DIR.
    Init {
        /// The project directory (default: the current one).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The package name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print the build DAG in Graphviz DOT; dirty nodes are bold.
    Graph {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long, value_name = "PROFILE")]
        profile: Option<String>,
    },
    /// Show what a build of a target holds: ops before and after passes, and the memory plan
    /// per region against its lower bound.
    Inspect {
        /// Path to `ExecuTorch.toml` (default: the nearest one from the current directory up).
        #[arg(long, value_name = "PATH")]
        manifest_path: Option<PathBuf>,
        /// The target to inspect (default: the manifest's first).
        #[arg(long, value_name = "TARGET")]
        target: Option<String>,
        /// Print the memory plan and op counts as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in devices a target can name.
    Targets,
    /// Run a model on `.npy` inputs and write its outputs as `.npy` files: a built target's
    /// program with its generated runtime (`--target`), or the reference interpreter
    /// (`--reference --model FILE.pt2`).
    Run {
        /// Path to `ExecuTorch.toml` (default: the nearest one from the current directory up).
        #[arg(long, value_name = "PATH")]
        manifest_path: Option<PathBuf>,
        /// Build this target and run its program with its generated runtime.
        #[arg(long, value_name = "TARGET", conflicts_with = "reference")]
        target: Option<String>,
        /// Run this `.pte` file instead of the target's own program (with the target's runtime).
        #[arg(long, value_name = "FILE.pte", requires = "target")]
        program: Option<PathBuf>,
        /// Run the reference interpreter on the imported graph (the correctness oracle).
        #[arg(long, requires = "model")]
        reference: bool,
        /// The `torch.export` archive to run with `--reference`.
        #[arg(long, value_name = "FILE.pt2")]
        model: Option<PathBuf>,
        /// One `.npy` file per model input, in the model's input order.
        #[arg(long = "input", value_name = "FILE.npy")]
        inputs: Vec<PathBuf>,
        /// Where to write `output_0.npy`, `output_1.npy`, ...
        #[arg(long, value_name = "DIR")]
        output_dir: PathBuf,
        /// Split the kernels' work over N threads (default: the profile's `threads`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
    },
    /// Build, run the manifest's `[verify]` inputs and compare every output with
    /// `[verify].expected`; exits 1 past the tolerance.
    Verify {
        #[command(flatten)]
        project: ProjectArgs,
        /// Print the per-output errors as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Split the kernels' work over N threads (default: the profile's `threads`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
    },
    /// Build and time a target's program: median latency over repeated runs and a per-op
    /// breakdown.
    Bench {
        #[command(flatten)]
        project: ProjectArgs,
        /// Timed runs.
        #[arg(long, default_value_t = 50)]
        iterations: usize,
        /// Untimed runs first.
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        /// Inputs (default: the manifest's `[verify].inputs`).
        #[arg(long = "input", value_name = "FILE.npy")]
        inputs: Vec<PathBuf>,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Split the kernels' work over N threads (default: the profile's `threads`).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
    },
    /// List the ATen ops etpkg can lower.
    Ops,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<project::ProjectError>() {
                // Manifest diagnostics are rendered in full, `error:` prefix and all.
                Some(project::ProjectError::Manifest(m)) => eprintln!("{m}"),
                // Project errors carry their causes in their own message already.
                Some(p) => eprintln!("error: {p}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("ETPKG_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The targets a command works on: those named, or every target of the manifest.
fn targets_of(m: &etpkg::manifest::Manifest, named: &[String]) -> Vec<String> {
    if named.is_empty() {
        m.targets.keys().cloned().collect()
    } else {
        named.to_vec()
    }
}

/// Builds one target, printing status lines only for work actually done.
fn build_quietly(m: &etpkg::manifest::Manifest, t: &str, verbosity: Verbosity) -> Result<()> {
    let opts = BuildOptions {
        targets: vec![t.to_string()],
        profile: None,
        jobs: 0,
        cache_dir: cache_dir(),
    };
    let mut sink = status::Human::new(verbosity);
    project::build(m, &opts, &mut sink)?;
    Ok(())
}

fn bench_text(b: &target::Bench) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut s = format!(
        "target `{}`: median {:.3} ms over {} runs (min {:.3}, max {:.3}; {} warm-up; {} thread{})\n",
        b.target,
        ms(b.median_ns),
        b.iterations,
        ms(b.min_ns),
        ms(b.max_ns),
        b.warmup,
        b.threads,
        if b.threads == 1 { "" } else { "s" }
    );
    let total: u64 = b.ops.iter().map(|o| o.median_ns).sum::<u64>().max(1);
    s.push_str("  instr  op                          median ms   share\n");
    for o in b.ops.iter().take(15) {
        s.push_str(&format!(
            "  {:>5}  {:<26} {:>10.3}  {:>5.1}%\n",
            o.instruction,
            o.op,
            ms(o.median_ns),
            100.0 * o.median_ns as f64 / total as f64
        ));
    }
    if b.ops.len() > 15 {
        s.push_str(&format!("  ... {} more instructions\n", b.ops.len() - 15));
    }
    s
}

fn manifest(given: Option<&std::path::Path>) -> Result<etpkg::manifest::Manifest> {
    let cwd = std::env::current_dir()?;
    let path = project::find_manifest(given, &cwd)?;
    Ok(project::load(&path)?)
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let human = status::Human::new(verbosity);
    let say = |verb: &str, msg: &str| {
        if verbosity != Verbosity::Quiet {
            human.status(verb, msg)
        }
    };
    match cli.command {
        Command::Build {
            project: p,
            profile,
            jobs,
            message_format,
        } => {
            let m = manifest(p.manifest_path.as_deref())?;
            let opts = BuildOptions {
                targets: p.targets,
                profile,
                jobs: jobs.unwrap_or(0),
                cache_dir: cache_dir(),
            };
            match message_format {
                MessageFormat::Human => {
                    let mut sink = status::Human::new(verbosity);
                    project::build(&m, &opts, &mut sink)?;
                }
                MessageFormat::Json => {
                    project::build(&m, &opts, &mut status::Json)?;
                }
            }
        }
        Command::Clean { project: p, cache } => {
            let m = manifest(p.manifest_path.as_deref())?;
            let dir = cache_dir();
            let c = project::clean(&m, &p.targets, cache, dir.as_deref(), &mut |msg| {
                say("Blocking", msg)
            })?;
            say(
                "Removed",
                &format!(
                    "{} files, {:.1} MiB total",
                    c.files,
                    c.bytes as f64 / (1 << 20) as f64
                ),
            );
        }
        Command::Init { dir, name } => {
            let name = project::init(&dir, name.as_deref())?;
            say(
                "Created",
                &format!("etpkg project `{name}` in {}", dir.display()),
            );
            say(
                "Note",
                &format!(
                    "save your model with torch.export.save(...) as {}",
                    dir.join("models").join(format!("{name}.pt2")).display()
                ),
            );
        }
        Command::Graph {
            project: p,
            profile,
        } => {
            let m = manifest(p.manifest_path.as_deref())?;
            let opts = BuildOptions {
                targets: p.targets,
                profile,
                jobs: 1,
                cache_dir: cache_dir(),
            };
            print!("{}", project::graph(&m, &opts)?);
        }
        Command::Inspect {
            manifest_path,
            target,
            json,
        } => {
            let m = manifest(manifest_path.as_deref())?;
            let r = project::inspect(&m, target.as_deref(), cache_dir().as_deref())?;
            if json {
                let out = serde_json::json!({
                    "target": r["target"],
                    "profile": r["profile"]["name"],
                    "ops_before": r["passes"]["ops_before"],
                    "ops_after": r["passes"]["ops_after"],
                    "memory": r["memory"],
                    "program": r["program"],
                    "kernels": r["kernels"],
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", inspect_text(&r));
            }
        }
        Command::Targets => {
            for d in project::targets()? {
                let regions: Vec<String> = d
                    .regions
                    .iter()
                    .map(|r| format!("{} {}", r.name, human_bytes(r.bytes)))
                    .collect();
                println!(
                    "{:<14} {:<28} {:<6} align {:<3} {:<28} {}",
                    d.name,
                    d.triple,
                    if d.std { "std" } else { "no_std" },
                    d.alignment,
                    regions.join(", "),
                    d.description
                );
            }
        }
        Command::Run {
            manifest_path,
            target,
            program,
            reference,
            model,
            inputs,
            output_dir,
            threads,
        } => {
            if let Some(t) = target {
                let m = manifest(manifest_path.as_deref())?;
                build_quietly(&m, &t, verbosity)?;
                let threads = threads.map(usize::from);
                let outs = target::run(&m, &t, program.as_deref(), &inputs, &output_dir, threads)?;
                say(
                    "Ran",
                    &format!(
                        "target `{t}`, wrote {} output(s) to {}",
                        outs.len(),
                        output_dir.display()
                    ),
                );
                return Ok(());
            }
            let model = match (reference, model) {
                (true, Some(model)) => model,
                _ => bail!(
                    "say what to run: `--target TARGET` (a built target's program and runtime) \
                     or `--reference --model FILE.pt2` (the reference interpreter)"
                ),
            };
            let r = etpkg::ops::run_reference(&model, &inputs, &output_dir)?;
            eprintln!(
                "{:>12} {} ({} nodes) in {:.1} ms",
                "Imported",
                model.display(),
                r.nodes,
                r.import_time.as_secs_f64() * 1e3
            );
            eprintln!(
                "{:>12} reference interpreter in {:.1} ms, wrote {} output(s) to {}",
                "Ran",
                r.run_time.as_secs_f64() * 1e3,
                r.outputs.len(),
                output_dir.display()
            );
        }
        Command::Verify {
            project: p,
            json,
            threads,
        } => {
            let m = manifest(p.manifest_path.as_deref())?;
            let targets = targets_of(&m, &p.targets);
            let mut all = Vec::new();
            for t in &targets {
                build_quietly(&m, t, verbosity)?;
                all.push(target::verify(&m, t, threads.map(usize::from))?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            for v in &all {
                for o in &v.outputs {
                    say(
                        if o.pass { "Verified" } else { "Mismatch" },
                        &format!(
                            "target `{}` output {}: max abs error {:.3e}, max rel error {:.3e} (tolerance {:.1e})",
                            v.target, o.index, o.max_abs_error, o.max_rel_error, v.tolerance
                        ),
                    );
                }
            }
            if let Some(v) = all.iter().find(|v| !v.pass()) {
                bail!(
                    "target `{}` does not match `[verify].expected` within {:.1e} in {}",
                    v.target,
                    v.tolerance,
                    m.path.display()
                );
            }
        }
        Command::Bench {
            project: p,
            iterations,
            warmup,
            inputs,
            json,
            threads,
        } => {
            let m = manifest(p.manifest_path.as_deref())?;
            let mut all = Vec::new();
            for t in targets_of(&m, &p.targets) {
                build_quietly(&m, &t, verbosity)?;
                let threads = threads.map(usize::from);
                all.push(target::bench(&m, &t, &inputs, iterations, warmup, threads)?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for b in &all {
                    print!("{}", bench_text(b));
                }
            }
        }
        Command::Ops => {
            for t in etpkg::lower::supported_targets() {
                println!("{t}");
            }
        }
    }
    Ok(())
}

fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, n) in UNITS {
        if b >= n && b.is_multiple_of(n) {
            return format!("{}{u}", b / n);
        }
    }
    format!("{b}B")
}

/// The human form of `etpkg inspect`: a header, the op counts, and one row per memory region.
fn inspect_text(r: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let count = |v: &serde_json::Value| -> u64 {
        v.as_object()
            .map(|m| m.values().filter_map(|n| n.as_u64()).sum())
            .unwrap_or(0)
    };
    let _ = writeln!(
        s,
        "{} {} for target `{}` ({}), profile `{}`",
        r["package"].as_str().unwrap_or("?"),
        r["version"].as_str().unwrap_or("?"),
        r["target"].as_str().unwrap_or("?"),
        r["device"]["triple"].as_str().unwrap_or("?"),
        r["profile"]["name"].as_str().unwrap_or("?"),
    );
    let p = &r["passes"];
    let _ = writeln!(
        s,
        "\nops: {} nodes before passes, {} after ({} rewrites in {} rounds)",
        count(&p["ops_before"]),
        count(&p["ops_after"]),
        p["changes"].as_array().map_or(0, Vec::len),
        p["rounds"].as_u64().unwrap_or(0)
    );
    let _ = writeln!(s, "  {:<24} {:>7} {:>7}", "op", "before", "after");
    let mut names: Vec<&String> = p["ops_before"]
        .as_object()
        .into_iter()
        .chain(p["ops_after"].as_object())
        .flat_map(|m| m.keys())
        .collect();
    names.sort();
    names.dedup();
    for n in names {
        let get = |k: &str| p[k][n.as_str()].as_u64().unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<24} {:>7} {:>7}",
            n,
            get("ops_before"),
            get("ops_after")
        );
    }
    let m = &r["memory"];
    let _ = writeln!(
        s,
        "\nmemory: {} bytes of activations, alignment {}",
        m["total_bytes"], m["alignment"]
    );
    let _ = writeln!(
        s,
        "  {:<8} {:>14} {:>14} {:>7} {:>6}  {:<20} peak",
        "region", "planned", "lower bound", "ratio", "buffers", "algorithm"
    );
    for region in m["regions"].as_array().into_iter().flatten() {
        let live: Vec<String> = region["live_at_peak"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("{} ({} B)", t["name"].as_str().unwrap_or("?"), t["bytes"]))
            .collect();
        let _ = writeln!(
            s,
            "  {:<8} {:>14} {:>14} {:>7.3} {:>6}  {:<20} step {} `{}`: {}",
            region["name"].as_str().unwrap_or("?"),
            region["planned_bytes"].as_u64().unwrap_or(0),
            region["lower_bound"].as_u64().unwrap_or(0),
            region["ratio"].as_f64().unwrap_or(0.0),
            region["buffers"].as_u64().unwrap_or(0),
            region["algorithm"].as_str().unwrap_or("-"),
            region["peak_step"].as_u64().unwrap_or(0),
            region["peak_op"].as_str().unwrap_or("?"),
            live.join(", ")
        );
    }
    let k = &r["kernels"];
    let kept: Vec<&str> = k["kept"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let _ = writeln!(
        s,
        "\nkernels ({}): {} variant(s) kept, {} bytes of kernel code: {}",
        k["objective"].as_str().unwrap_or("?"),
        kept.len(),
        k["code_bytes"].as_u64().unwrap_or(0),
        kept.join(", ")
    );
    let _ = writeln!(s, "  {:>5}  {:<22} {:<24} why", "instr", "op", "variant");
    for c in k["choices"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  {:>5}  {:<22} {:<24} {}",
            c["instruction"].as_u64().unwrap_or(0),
            c["op"].as_str().unwrap_or("?"),
            c["variant"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("")
        );
    }
    s
}
