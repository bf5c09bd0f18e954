//! ExecuTorch `.pte` programs: the in-memory model, the writer and the reader.
//! Invariant: `read(write(p)) == p` for every program etpkg writes.

pub mod model;
