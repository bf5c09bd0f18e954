//! ExecuTorch `.pte` programs: the in-memory model, the writer and the reader.
//! Invariant: `read(write(p)) == p` for every program etpkg writes.
//!
//! The validating reader itself lives in `runtime/src/pte.rs` (`crate::rt::pte`) so that
//! generated runtimes check programs with the same code; `read` converts its view into the
//! owned model.

pub mod model;
pub mod read;
pub mod write;

pub use read::{read, ReadError};
pub use write::write;

/// `Program.version` as ExecuTorch 1.5.1 writes it (`exir/version.py`,
/// `EXECUTORCH_SCHEMA_VERSION`).
pub const SCHEMA_VERSION: u32 = 0;

/// Alignment of each constant's offset within the constant segment. ExecuTorch's default is 16
/// (`exir/tensor.py`, `ALIGNMENT`); 64 bytes keeps every constant on its own cache lines and
/// aligned for the widest SIMD loads when the segment is memory-mapped.
pub const CONSTANT_ALIGNMENT: usize = 64;

/// Alignment of the segment base offset in the file: one page, so the constant segment can be
/// memory-mapped. ExecuTorch's default `segment_alignment` is 128.
pub const SEGMENT_ALIGNMENT: usize = 4096;
