//! The operations behind CLI commands. Invariant: the CLI only parses arguments and prints;
//! everything a command does lives here, callable from tests and other tools.

pub mod project;
mod run;
pub mod runner;
pub mod status;
pub mod target;

pub use run::{run_reference, RunError, RunReport};
