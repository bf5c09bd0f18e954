//! The `etpkg` command line. Invariant: argument parsing and printing only; the work is in
//! `etpkg::ops`.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "etpkg",
    version,
    about = "Build PyTorch models into ExecuTorch programs and trimmed runtime crates"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on `.npy` inputs and write its outputs as `.npy` files.
    Run {
        /// Run the reference interpreter on the imported graph (the correctness oracle).
        #[arg(long)]
        reference: bool,
        /// The `torch.export` archive to run.
        #[arg(long, value_name = "FILE.pt2")]
        model: PathBuf,
        /// One `.npy` file per model input, in the model's input order.
        #[arg(long = "input", value_name = "FILE.npy")]
        inputs: Vec<PathBuf>,
        /// Where to write `output_0.npy`, `output_1.npy`, ...
        #[arg(long, value_name = "DIR")]
        output_dir: PathBuf,
    },
    /// List the ATen ops etpkg can lower.
    Ops,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Run {
            reference,
            model,
            inputs,
            output_dir,
        } => {
            if !reference {
                bail!(
                    "`etpkg run` on a built target is not available yet; pass `--reference` to run \
                     the reference interpreter on {}",
                    model.display()
                );
            }
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
        Command::Ops => {
            for t in etpkg::lower::supported_targets() {
                println!("{t}");
            }
        }
    }
    Ok(())
}
