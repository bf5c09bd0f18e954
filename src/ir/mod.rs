//! etpkg's normalized graph IR: typed values, single-output nodes over the core op set, and
//! constants that borrow the archive's bytes. Invariant: every value has a static type.

mod dtype;
mod dump;
mod graph;
mod infer;
mod op;
pub mod serial;

pub use dtype::{DType, TensorType};
pub use dump::dump;
pub use graph::{
    Backing, ConstData, ConstId, ConstKind, Constant, Graph, Node, NodeId, Origin, Value, ValueDef,
    ValueId,
};
pub use infer::{infer, result_type, InferError};
pub use op::{
    Activation, ArgOp, BinaryOp, ConvAttrs, Op, PoolAttrs, PoolKind, ReduceOp, UnaryOp,
    UpsampleMode,
};
