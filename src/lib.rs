//! etpkg: builds PyTorch models into ExecuTorch programs and trimmed per-device runtime crates.
//! See ARCHITECTURE.md for the code map.

pub mod build;
pub mod cache;
pub mod device;
pub mod emit;
pub mod fsio;
pub mod generate;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod manifest;
pub mod memory;
pub mod npy;
pub mod ops;
pub mod passes;
pub mod pt2;
pub mod pte;
pub mod rt;
pub mod select;
