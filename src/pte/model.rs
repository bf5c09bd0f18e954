//! An ExecuTorch program held in memory, field for field with `program.fbs` (the parts etpkg
//! writes and reads). Invariant: a `Program` says what the file says; layout (alignment,
//! segment offsets, the extended header) is decided only by the writer.

use std::sync::Arc;

/// c10's `ScalarType` codes, as `scalar_type.fbs` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ScalarType {
    Byte = 0,
    Char = 1,
    Short = 2,
    Int = 3,
    Long = 4,
    Half = 5,
    Float = 6,
    Double = 7,
    Bool = 11,
    BFloat16 = 15,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// `Program.version`.
    pub version: u32,
    pub execution_plan: Vec<ExecutionPlan>,
    /// Constant tensor data. A tensor's `data_buffer_idx` of `i ≥ 1` names `constants[i - 1]`;
    /// index 0 is reserved for non-constant tensors, as in the schema. The writer stores equal
    /// byte strings once and places each at an aligned offset of the constant segment.
    pub constants: Vec<Arc<[u8]>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionPlan {
    pub name: String,
    pub values: Vec<EValue>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub chains: Vec<Chain>,
    pub operators: Vec<Operator>,
    /// Bytes per memory id; index 0 is reserved and always 0.
    pub non_const_buffer_sizes: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub instructions: Vec<Instruction>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// `aten::convolution`, `etpkg::conv_relu`.
    pub name: String,
    /// `out`, `Tensor_out`, `default`.
    pub overload: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Instruction {
    KernelCall {
        op_index: i32,
        args: Vec<i32>,
    },
    DelegateCall {
        delegate_index: i32,
        args: Vec<i32>,
    },
    MoveCall {
        move_from: i32,
        move_to: i32,
    },
    JumpFalseCall {
        cond_value_index: i32,
        destination_instruction: i32,
    },
    FreeCall {
        value_index: i32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum EValue {
    Null,
    Int(i64),
    Bool(bool),
    Double(f64),
    Tensor(Tensor),
    String(String),
    IntList(Vec<i64>),
    DoubleList(Vec<f64>),
    BoolList(Vec<bool>),
    /// Indices of tensor values.
    TensorList(Vec<i32>),
    /// Indices of tensor or null values.
    OptionalTensorList(Vec<i32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub scalar_type: ScalarType,
    pub sizes: Vec<i32>,
    /// `0..rank` for contiguous tensors.
    pub dim_order: Vec<u8>,
    /// 0 for non-constant tensors; `i ≥ 1` for `Program::constants[i - 1]`.
    pub data_buffer_idx: u32,
    /// Where a planned tensor lives; `None` for constants and for tensors that receive their
    /// memory at run time (ExecuTorch's views).
    pub allocation: Option<Allocation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub memory_id: u32,
    pub offset: u64,
}
