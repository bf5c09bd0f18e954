//! etpkg's kernel library. Invariant: every kernel is safe to call, `no_std`, allocation-free,
//! and computes what etpkg's reference interpreter computes for the same op (the speed variants
//! up to f32 summation order). The only unsafe code is `x86.rs`'s AVX-512 and AVX2 building
//! blocks and `par.rs`'s splitter slot and disjoint-chunk hand-out.
//!
//! One op family per file. A family file holds shared code (parameter structs, helpers), one
//! block per variant and a `VARIANTS` table, separated by marker comments so that etpkg's
//! generator can copy a family with only the variants a program selected:
//!
//! ```text
//! //@variant <name>     start of variant <name>: `pub fn <name>` and `pub fn <name>_accepts`
//! //@shared <v> <w> ... start of code that variants <v>, <w>, ... share (the AVX-512 and AVX2
//!                       instances of one algorithm); copied when any of them is kept
//! //@end                end of the block
//! //@meta               start of the metadata block (`VARIANTS`), never copied
//! ```
//!
//! Text outside blocks is the family's shared part and is always copied with it.
//!
//! Files name each other as `super::math`, `super::act`, `super::shape`, never through
//! `crate::`: a generated runtime places them under its own `kernels` module, where only the
//! relative path still resolves.
#![no_std]

pub mod act;
pub mod attention;
pub mod binary;
pub mod conv;
pub mod conv_transpose;
pub mod index;
pub mod layout;
pub mod math;
pub mod matmul;
pub mod meta;
pub mod norm;
pub mod par;
pub mod pool;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod unary;
pub mod upsample;
pub mod where_;
pub mod x86;
