//! The runtime's shared sources, compiled into etpkg too. Invariant: these files are the ones
//! copied into every generated runtime crate, so etpkg and the runtime read programs, decode
//! instructions and bind them to kernels with the same code.

#[path = "../runtime/src/pte.rs"]
pub mod pte;

#[path = "../runtime/src/step.rs"]
pub mod step;

#[path = "../runtime/src/ops/mod.rs"]
pub mod ops;

pub use etpkg_kernels as kernels;

#[path = "../runtime/src/decode.rs"]
pub mod decode;

#[path = "../runtime/src/exec.rs"]
pub mod exec;

/// The generated crate's thread pool (its `std` feature), which etpkg's own tests exercise.
#[path = "../runtime/src/threads.rs"]
pub mod threads;
