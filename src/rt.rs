//! The runtime's shared sources, compiled into etpkg too. Invariant: these files are the ones
//! copied into every generated runtime crate, so etpkg and the runtime read programs and decode
//! instructions with the same code.

#[path = "../runtime/src/pte.rs"]
pub mod pte;

#[path = "../runtime/src/step.rs"]
pub mod step;

pub use etpkg_kernels as kernels;

#[path = "../runtime/src/decode.rs"]
pub mod decode;
