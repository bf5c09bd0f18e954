//! Decoding a program's instructions into [`Step`]s. Invariant: every operator etpkg emits
//! (`docs/aten-conventions.md`) and every plain ATen operator ExecuTorch's own emitter writes
//! that means one of the step kinds decodes to that kind; anything else is a [`DecodeError`]
//! that names the operator, never a guess.
//!
//! A kernel call's arguments are its operator's schema arguments in order, then its out
//! tensors, then (optionally) the returned values as ExecuTorch's emitter writes them: the out
//! tensor again, or one `TensorList` of the outs for an operator with several. `IntList` items are indices of `Int` values, as in ExecuTorch.
//!
//! Conventions of the decoded steps beyond `step.rs`:
//! * for 1-d convolution and pooling, the unused second entries of the `[usize; 2]` arrays are
//!   the neutral values: kernel 1, stride 1, padding 0, dilation 1, output padding 0;
//! * operators with several outputs (`_native_batch_norm_legit_no_training`,
//!   `native_layer_norm`, `native_group_norm`, `max_pool2d_with_indices`) decode to the single-output kind only when
//!   no other instruction and no plan output reads the extra outputs;
//! * `executorch_prim::et_view` decodes to `Reshape` (its output has no planned memory: the
//!   executor makes it a view), and `clone`, `_clone_dim_order` to a same-dtype `Cast`;
//! * a `.Scalar_out` overload decodes to `Binary` with the scalar's value index as its second
//!   operand, `any` to a `Reduce::Max` into bool, `full`, `full_like` and `scalar_tensor` to
//!   `Full`, and `split_with_sizes_copy` / `split_copy` to `Split`, whose outs `TensorList`
//!   follows x among the operands and whose first piece is the step's output.
//!
//! This file is shared (see `step.rs`): `no_std`, no allocation, `super::` paths only.

use super::pte::{I32s, Instruction, Plan, Value};
use super::step::{
    Act, Binary, Ints, Kind, PoolKind, Reduce, Step, Unary, ValueIndex, MAX_INPUTS, MAX_RANK,
};
use core::fmt;

/// The longest `name.overload` an error keeps (longer ones are cut, marked with `…`).
const NAME_CAP: usize = 96;

/// An operator's `name.overload`, held without allocation for error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OperatorName {
    buf: [u8; NAME_CAP],
    len: u8,
    cut: bool,
}

impl OperatorName {
    fn new(name: &str, overload: &str) -> OperatorName {
        let mut n = OperatorName {
            buf: [0; NAME_CAP],
            len: 0,
            cut: false,
        };
        for part in [name, ".", overload] {
            for ch in part.chars() {
                let mut tmp = [0u8; 4];
                let s = ch.encode_utf8(&mut tmp).as_bytes();
                let at = n.len as usize;
                if at + s.len() > NAME_CAP {
                    n.cut = true;
                    return n;
                }
                n.buf[at..at + s.len()].copy_from_slice(s);
                n.len += s.len() as u8;
            }
        }
        n
    }

    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for OperatorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.cut {
            f.write_str("…")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The plan has no instruction with this index.
    NoInstruction { instruction: usize },
    /// A delegate call, move or jump: etpkg's runtime runs kernel calls only.
    NotKernel {
        instruction: usize,
        what: &'static str,
    },
    /// The operator is not one the runtime knows.
    UnknownOperator {
        instruction: usize,
        operator: OperatorName,
    },
    /// A known operator whose arguments do not have the shape its schema gives, or ask for
    /// something the steps cannot express.
    Arguments {
        instruction: usize,
        operator: OperatorName,
        why: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::NoInstruction { instruction } => {
                write!(f, "instruction {instruction} does not exist")
            }
            DecodeError::NotKernel { instruction, what } => write!(
                f,
                "instruction {instruction} is a {what}, which etpkg's runtime does not run"
            ),
            DecodeError::UnknownOperator {
                instruction,
                operator,
            } => write!(
                f,
                "instruction {instruction} calls the unknown operator `{operator}`: etpkg's \
                 runtime has no kernel for it (see docs/aten-conventions.md for the operators it knows)"
            ),
            DecodeError::Arguments {
                instruction,
                operator,
                why,
            } => write!(
                f,
                "instruction {instruction} calls `{operator}` with arguments etpkg cannot run: {why}"
            ),
        }
    }
}

/// What an operator is, independent of how its arguments are read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Id {
    Convolution,
    Linear,
    MatMul,
    Addmm,
    BatchNorm,
    NativeLayerNorm,
    LayerNorm,
    GroupNorm,
    NativeGroupNorm,
    Sdpa,
    Unary(Unary),
    Gelu,
    Clamp,
    Hardtanh,
    LeakyRelu,
    Elu,
    /// `alpha` says whether the schema has an `alpha` scalar after the tensors.
    Binary(Binary, bool),
    DivMode,
    Where,
    Softmax(bool),
    Sum,
    Mean,
    Amax,
    Amin,
    Prod,
    Var,
    ArgReduce(bool),
    MaxPool,
    MaxPoolWithIndices,
    AvgPool,
    AdaptiveAvg,
    AdaptiveMax,
    View,
    Squeeze,
    Permute,
    Transpose,
    TransposeLast,
    Expand,
    Repeat,
    Cat,
    Slice,
    IndexSelect,
    Embedding,
    Take,
    Gather,
    ToCopy,
    CloneFormat,
    DimOrderCopy,
    Pad,
    Triangle(bool),
    Cumsum,
    UpsampleNearest,
    UpsampleLinear,
    /// The `.vec` overloads: output size (optional), then one list of scale factors.
    UpsampleNearestVec,
    UpsampleLinearVec,
    /// A `.Scalar` overload: a tensor and a scalar operand (`alpha` as for `Binary`).
    BinaryScalar(Binary, bool),
    /// `full.out(size, fill_value)`.
    Full,
    /// `full_like.out(self, fill_value, memory_format)`.
    FullLike,
    /// `scalar_tensor.out(s)`.
    ScalarTensor,
    /// `arange.out(end)` (`false`) or `arange.start_out(start, end, step)` (`true`).
    Arange(bool),
    /// `any.out(self, dim, keepdim)`, `any.dims_out(self, dims?, keepdim)`, `any.all_out(self)`.
    Any(AnyForm),
    /// `split_with_sizes_copy.out(self, sizes, dim)` (`true`) or `split_copy.Tensor_out(self,
    /// split_size, dim)` (`false`): the outs are one `TensorList`.
    Split(bool),
}

/// Which overload of `any` an instruction calls.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AnyForm {
    Dim,
    Dims,
    All,
}

/// Every known `(name, overload)` and what it is. Only `NAMES` and `TABLE`, built from it at
/// compile time, are in the binary (see `Packed`).
const OPS: &[(&str, &str, Id)] = &[
    ("aten::convolution", "out", Id::Convolution),
    ("aten::linear", "out", Id::Linear),
    ("aten::matmul", "out", Id::MatMul),
    ("aten::mm", "out", Id::MatMul),
    ("aten::bmm", "out", Id::MatMul),
    ("aten::addmm", "out", Id::Addmm),
    (
        "aten::_native_batch_norm_legit_no_training",
        "out",
        Id::BatchNorm,
    ),
    ("aten::native_layer_norm", "out", Id::NativeLayerNorm),
    ("etpkg::layer_norm", "out", Id::LayerNorm),
    ("etpkg::group_norm", "out", Id::GroupNorm),
    ("aten::native_group_norm", "out", Id::NativeGroupNorm),
    ("etpkg::sdpa", "out", Id::Sdpa),
    ("aten::relu", "out", Id::Unary(Unary::Relu)),
    ("aten::sigmoid", "out", Id::Unary(Unary::Sigmoid)),
    ("aten::tanh", "out", Id::Unary(Unary::Tanh)),
    ("aten::exp", "out", Id::Unary(Unary::Exp)),
    ("aten::log", "out", Id::Unary(Unary::Log)),
    ("aten::sqrt", "out", Id::Unary(Unary::Sqrt)),
    ("aten::rsqrt", "out", Id::Unary(Unary::Rsqrt)),
    ("aten::neg", "out", Id::Unary(Unary::Neg)),
    ("aten::abs", "out", Id::Unary(Unary::Abs)),
    ("aten::erf", "out", Id::Unary(Unary::Erf)),
    ("aten::reciprocal", "out", Id::Unary(Unary::Reciprocal)),
    ("aten::floor", "out", Id::Unary(Unary::Floor)),
    ("aten::ceil", "out", Id::Unary(Unary::Ceil)),
    ("aten::round", "out", Id::Unary(Unary::Round)),
    ("aten::sign", "out", Id::Unary(Unary::Sign)),
    ("aten::sin", "out", Id::Unary(Unary::Sin)),
    ("aten::cos", "out", Id::Unary(Unary::Cos)),
    ("aten::logical_not", "out", Id::Unary(Unary::LogicalNot)),
    ("aten::silu", "out", Id::Unary(Unary::Silu)),
    ("aten::hardswish", "out", Id::Unary(Unary::Hardswish)),
    ("aten::hardsigmoid", "out", Id::Unary(Unary::Hardsigmoid)),
    ("aten::gelu", "out", Id::Gelu),
    ("aten::clamp", "out", Id::Clamp),
    ("aten::hardtanh", "out", Id::Hardtanh),
    ("aten::leaky_relu", "out", Id::LeakyRelu),
    ("aten::elu", "out", Id::Elu),
    ("aten::add", "out", Id::Binary(Binary::Add, true)),
    ("aten::sub", "out", Id::Binary(Binary::Sub, true)),
    ("aten::mul", "out", Id::Binary(Binary::Mul, false)),
    (
        "aten::add",
        "Scalar_out",
        Id::BinaryScalar(Binary::Add, true),
    ),
    (
        "aten::sub",
        "Scalar_out",
        Id::BinaryScalar(Binary::Sub, true),
    ),
    (
        "aten::mul",
        "Scalar_out",
        Id::BinaryScalar(Binary::Mul, false),
    ),
    (
        "aten::div",
        "Scalar_out",
        Id::BinaryScalar(Binary::Div, false),
    ),
    (
        "aten::remainder",
        "Scalar_out",
        Id::BinaryScalar(Binary::Rem, false),
    ),
    (
        "aten::pow",
        "Tensor_Scalar_out",
        Id::BinaryScalar(Binary::Pow, false),
    ),
    (
        "aten::eq",
        "Scalar_out",
        Id::BinaryScalar(Binary::Eq, false),
    ),
    (
        "aten::ne",
        "Scalar_out",
        Id::BinaryScalar(Binary::Ne, false),
    ),
    (
        "aten::lt",
        "Scalar_out",
        Id::BinaryScalar(Binary::Lt, false),
    ),
    (
        "aten::le",
        "Scalar_out",
        Id::BinaryScalar(Binary::Le, false),
    ),
    (
        "aten::gt",
        "Scalar_out",
        Id::BinaryScalar(Binary::Gt, false),
    ),
    (
        "aten::ge",
        "Scalar_out",
        Id::BinaryScalar(Binary::Ge, false),
    ),
    ("aten::full", "out", Id::Full),
    ("aten::full_like", "out", Id::FullLike),
    ("aten::scalar_tensor", "out", Id::ScalarTensor),
    ("aten::arange", "out", Id::Arange(false)),
    ("aten::arange", "start_out", Id::Arange(true)),
    ("aten::any", "out", Id::Any(AnyForm::Dim)),
    ("aten::any", "dims_out", Id::Any(AnyForm::Dims)),
    ("aten::any", "all_out", Id::Any(AnyForm::All)),
    ("aten::split_with_sizes_copy", "out", Id::Split(true)),
    ("aten::split_copy", "Tensor_out", Id::Split(false)),
    ("aten::div", "out", Id::Binary(Binary::Div, false)),
    ("aten::div", "out_mode", Id::DivMode),
    (
        "aten::remainder",
        "Tensor_out",
        Id::Binary(Binary::Rem, false),
    ),
    (
        "aten::pow",
        "Tensor_Tensor_out",
        Id::Binary(Binary::Pow, false),
    ),
    ("aten::maximum", "out", Id::Binary(Binary::Maximum, false)),
    ("aten::minimum", "out", Id::Binary(Binary::Minimum, false)),
    ("aten::eq", "Tensor_out", Id::Binary(Binary::Eq, false)),
    ("aten::ne", "Tensor_out", Id::Binary(Binary::Ne, false)),
    ("aten::lt", "Tensor_out", Id::Binary(Binary::Lt, false)),
    ("aten::le", "Tensor_out", Id::Binary(Binary::Le, false)),
    ("aten::gt", "Tensor_out", Id::Binary(Binary::Gt, false)),
    ("aten::ge", "Tensor_out", Id::Binary(Binary::Ge, false)),
    ("aten::logical_and", "out", Id::Binary(Binary::And, false)),
    ("aten::logical_or", "out", Id::Binary(Binary::Or, false)),
    ("aten::logical_xor", "out", Id::Binary(Binary::Xor, false)),
    (
        "aten::bitwise_and",
        "Tensor_out",
        Id::Binary(Binary::And, false),
    ),
    (
        "aten::bitwise_or",
        "Tensor_out",
        Id::Binary(Binary::Or, false),
    ),
    (
        "aten::bitwise_xor",
        "Tensor_out",
        Id::Binary(Binary::Xor, false),
    ),
    ("aten::where", "self_out", Id::Where),
    ("aten::_softmax", "out", Id::Softmax(false)),
    ("aten::_log_softmax", "out", Id::Softmax(true)),
    ("aten::sum", "IntList_out", Id::Sum),
    ("aten::mean", "out", Id::Mean),
    ("aten::amax", "out", Id::Amax),
    ("aten::amin", "out", Id::Amin),
    ("etpkg::prod", "out", Id::Prod),
    ("aten::var", "correction_out", Id::Var),
    ("aten::argmax", "out", Id::ArgReduce(true)),
    ("aten::argmin", "out", Id::ArgReduce(false)),
    ("etpkg::max_pool", "out", Id::MaxPool),
    (
        "aten::max_pool2d_with_indices",
        "out",
        Id::MaxPoolWithIndices,
    ),
    ("aten::avg_pool2d", "out", Id::AvgPool),
    ("etpkg::avg_pool1d", "out", Id::AvgPool),
    ("aten::_adaptive_avg_pool2d", "out", Id::AdaptiveAvg),
    ("aten::adaptive_avg_pool2d", "out", Id::AdaptiveAvg),
    ("etpkg::adaptive_avg_pool", "out", Id::AdaptiveAvg),
    ("etpkg::adaptive_max_pool", "out", Id::AdaptiveMax),
    ("aten::view_copy", "out", Id::View),
    ("aten::_unsafe_view", "out", Id::View),
    ("executorch_prim::et_view", "default", Id::View),
    ("aten::unsqueeze_copy", "out", Id::Squeeze),
    ("aten::squeeze_copy", "dims_out", Id::Squeeze),
    ("aten::squeeze_copy", "dim_out", Id::Squeeze),
    ("aten::permute_copy", "out", Id::Permute),
    ("aten::transpose_copy", "int_out", Id::Transpose),
    ("aten::t_copy", "out", Id::TransposeLast),
    ("aten::expand_copy", "out", Id::Expand),
    ("aten::repeat", "out", Id::Repeat),
    ("aten::cat", "out", Id::Cat),
    ("aten::slice_copy", "Tensor_out", Id::Slice),
    ("aten::index_select", "out", Id::IndexSelect),
    ("aten::embedding", "out", Id::Embedding),
    ("etpkg::take", "out", Id::Take),
    ("aten::gather", "out", Id::Gather),
    ("aten::_to_copy", "out", Id::ToCopy),
    ("aten::clone", "out", Id::CloneFormat),
    ("dim_order_ops::_to_dim_order_copy", "out", Id::DimOrderCopy),
    ("dim_order_ops::_clone_dim_order", "out", Id::DimOrderCopy),
    ("aten::constant_pad_nd", "out", Id::Pad),
    ("aten::tril", "out", Id::Triangle(false)),
    ("aten::triu", "out", Id::Triangle(true)),
    ("aten::cumsum", "out", Id::Cumsum),
    ("aten::upsample_nearest2d", "out", Id::UpsampleNearest),
    ("aten::upsample_nearest1d", "out", Id::UpsampleNearest),
    ("aten::upsample_bilinear2d", "out", Id::UpsampleLinear),
    ("aten::upsample_linear1d", "out", Id::UpsampleLinear),
    (
        "aten::upsample_nearest2d",
        "vec_out",
        Id::UpsampleNearestVec,
    ),
    (
        "aten::upsample_bilinear2d",
        "vec_out",
        Id::UpsampleLinearVec,
    ),
];

/// One `OPS` entry without pointers: its name and overload as byte ranges of `NAMES`. A table
/// of `&str` pairs costs two pointers per entry and, in position-independent executables, two
/// load-time relocations (24 bytes each on x86-64); this one is 8 bytes per entry and none.
#[derive(Clone, Copy)]
struct Packed {
    name: u16,
    name_len: u8,
    overload_len: u8,
    id: Id,
}

/// The bytes of every `OPS` name, each followed by its overload.
const NAMES_LEN: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < OPS.len() {
        n += OPS[i].0.len() + OPS[i].1.len();
        i += 1;
    }
    n
};

const PACKED: ([u8; NAMES_LEN], [Packed; OPS.len()]) = {
    let mut names = [0u8; NAMES_LEN];
    let mut table = [Packed {
        name: 0,
        name_len: 0,
        overload_len: 0,
        id: Id::Convolution,
    }; OPS.len()];
    let mut at = 0;
    let mut i = 0;
    while i < OPS.len() {
        let (name, overload, id) = (OPS[i].0.as_bytes(), OPS[i].1.as_bytes(), OPS[i].2);
        // A name or offset that does not fit the packed fields stops the build here.
        assert!(name.len() < 256 && overload.len() < 256 && at + name.len() < 65536);
        table[i] = Packed {
            name: at as u16,
            name_len: name.len() as u8,
            overload_len: overload.len() as u8,
            id,
        };
        let mut k = 0;
        while k < name.len() {
            names[at] = name[k];
            at += 1;
            k += 1;
        }
        k = 0;
        while k < overload.len() {
            names[at] = overload[k];
            at += 1;
            k += 1;
        }
        i += 1;
    }
    (names, table)
};

static NAMES: [u8; NAMES_LEN] = PACKED.0;
static TABLE: [Packed; OPS.len()] = PACKED.1;

/// The `Id` of the known operator `name.overload`.
fn lookup(name: &str, overload: &str) -> Option<Id> {
    let (name, overload) = (name.as_bytes(), overload.as_bytes());
    TABLE.iter().find_map(|e| {
        let at = e.name as usize;
        let mid = at + e.name_len as usize;
        let end = mid + e.overload_len as usize;
        (NAMES.get(at..mid) == Some(name) && NAMES.get(mid..end) == Some(overload)).then_some(e.id)
    })
}

/// The producers `etpkg::<producer>_<act>` may name, and the operator whose arguments they take.
const FUSED: &[(&str, Id)] = &[
    ("conv", Id::Convolution),
    ("linear", Id::Linear),
    ("matmul", Id::MatMul),
    ("addmm", Id::Addmm),
    ("batch_norm", Id::BatchNorm),
    ("layer_norm", Id::LayerNorm),
    ("add", Id::Binary(Binary::Add, true)),
    ("sub", Id::Binary(Binary::Sub, true)),
    ("mul", Id::Binary(Binary::Mul, false)),
];

/// The activations a fused operator's name may end in.
#[derive(Clone, Copy, PartialEq)]
enum ActName {
    Relu,
    Clamp,
    Hardswish,
    Hardsigmoid,
    Silu,
    Gelu,
}

const ACTS: &[(&str, ActName)] = &[
    ("relu", ActName::Relu),
    ("clamp", ActName::Clamp),
    ("hardswish", ActName::Hardswish),
    ("hardsigmoid", ActName::Hardsigmoid),
    ("silu", ActName::Silu),
    ("gelu", ActName::Gelu),
];

/// What an operator name resolves to: the operator, and the activation of a fused one.
fn resolve(name: &str, overload: &str) -> Option<(Id, Option<ActName>)> {
    if let Some(id) = lookup(name, overload) {
        return Some((id, None));
    }
    let rest = name.strip_prefix("etpkg::")?;
    if overload != "out" {
        return None;
    }
    for &(producer, id) in FUSED {
        let Some(tail) = rest
            .strip_prefix(producer)
            .and_then(|t| t.strip_prefix('_'))
        else {
            continue;
        };
        if let Some(&(_, act)) = ACTS.iter().find(|(a, _)| *a == tail) {
            return Some((id, Some(act)));
        }
    }
    None
}

/// Whether `decode` knows the operator `name.overload`.
pub fn known_operator(name: &str, overload: &str) -> bool {
    resolve(name, overload).is_some()
}

type R<T> = Result<T, &'static str>;

/// Reads a kernel call's arguments in schema order.
struct Cursor<'p, 'a> {
    plan: &'p Plan<'a>,
    args: I32s<'a>,
    pos: usize,
}

impl<'a> Cursor<'_, 'a> {
    fn index(&mut self) -> R<ValueIndex> {
        let v = self.args.get(self.pos).ok_or("too few arguments")?;
        self.pos += 1;
        u32::try_from(v).map_err(|_| "a negative value index")
    }

    fn value(&mut self) -> R<(ValueIndex, Value<'a>)> {
        let i = self.index()?;
        let v = self
            .plan
            .value(i as usize)
            .ok_or("a value index out of range")?;
        Ok((i, v))
    }

    fn tensor(&mut self) -> R<ValueIndex> {
        let i = self.index()?;
        match self.plan.is_tensor(i as usize) {
            Some(true) => Ok(i),
            Some(false) => Err("a tensor argument is not a tensor"),
            None => Err("a value index out of range"),
        }
    }

    fn opt_tensor(&mut self) -> R<Option<ValueIndex>> {
        match self.value()? {
            (i, Value::Tensor(_)) => Ok(Some(i)),
            (_, Value::Null) => Ok(None),
            _ => Err("an optional tensor argument is neither a tensor nor null"),
        }
    }

    fn int(&mut self) -> R<i64> {
        match self.value()?.1 {
            Value::Int(v) => Ok(v),
            _ => Err("an int argument is not an int"),
        }
    }

    fn opt_int(&mut self) -> R<Option<i64>> {
        match self.value()?.1 {
            Value::Int(v) => Ok(Some(v)),
            Value::Null => Ok(None),
            _ => Err("an optional int argument is neither an int nor null"),
        }
    }

    /// A `Scalar`: an int, a double or a bool (1 or 0, as `full(..., True)` writes it).
    fn opt_scalar(&mut self) -> R<Option<f64>> {
        match self.value()?.1 {
            Value::Int(v) => Ok(Some(v as f64)),
            Value::Double(v) => Ok(Some(v)),
            Value::Bool(b) => Ok(Some(if b { 1.0 } else { 0.0 })),
            Value::Null => Ok(None),
            _ => Err("a scalar argument is neither an int, a double nor a bool"),
        }
    }

    fn scalar(&mut self) -> R<f64> {
        self.opt_scalar()?.ok_or("a scalar argument is null")
    }

    fn boolean(&mut self) -> R<bool> {
        match self.value()?.1 {
            Value::Bool(b) => Ok(b),
            _ => Err("a bool argument is not a bool"),
        }
    }

    fn string(&mut self) -> R<Option<&'a str>> {
        match self.value()?.1 {
            Value::String(s) => Ok(Some(s)),
            Value::Null => Ok(None),
            _ => Err("a string argument is not a string"),
        }
    }

    /// Skips an argument of any type (defaults that do not change the result).
    fn skip(&mut self) -> R<()> {
        self.value().map(|_| ())
    }

    /// An `int[]` argument (items are indices of `Int` values), or `None` for null.
    fn opt_ints(&mut self) -> R<Option<Ints>> {
        let list = match self.value()?.1 {
            Value::IntList(l) => l,
            Value::Null => return Ok(None),
            _ => return Err("an int list argument is not an int list"),
        };
        if list.len() > MAX_RANK {
            return Err("an int list is longer than the largest rank");
        }
        let mut out = Ints::EMPTY;
        for (k, item) in list.iter().enumerate() {
            let at = usize::try_from(item).map_err(|_| "a negative int list item")?;
            match self.plan.value(at) {
                Some(Value::Int(v)) => out.v[k] = v,
                _ => return Err("an int list item does not name an int value"),
            }
        }
        out.len = list.len() as u8;
        Ok(Some(out))
    }

    fn ints(&mut self) -> R<Ints> {
        self.opt_ints()?.ok_or("an int list argument is null")
    }

    /// A `Scalar` operand: the index of an `Int`, `Double` or `Bool` value, which the
    /// executor hands to kernels as a 0-d tensor.
    fn scalar_operand(&mut self) -> R<ValueIndex> {
        match self.value()? {
            (i, Value::Int(_) | Value::Double(_) | Value::Bool(_)) => Ok(i),
            _ => Err("a scalar operand is not an int, a double or a bool"),
        }
    }

    fn tensor_list(&mut self) -> R<ValueIndex> {
        match self.value()? {
            (i, Value::TensorList(_)) => Ok(i),
            _ => Err("a tensor list argument is not a tensor list"),
        }
    }

    /// The sizes of tensor value `v`.
    fn sizes(&self, v: ValueIndex) -> R<I32s<'a>> {
        match self.plan.value(v as usize) {
            Some(Value::Tensor(t)) => Ok(t.sizes),
            _ => Err("an operand is not a tensor"),
        }
    }

    fn rank(&self, v: ValueIndex) -> R<usize> {
        self.sizes(v).map(|s| s.len())
    }
}

/// A possibly negative axis made an index into a tensor of rank `rank`.
fn axis(a: i64, rank: usize) -> R<usize> {
    let r = rank.max(1) as i64;
    let a = if a < 0 { a + r } else { a };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err("an axis is out of range")
    }
}

fn axes_mask(list: &Ints, rank: usize) -> R<u32> {
    let mut m = 0u32;
    for &a in list.as_slice() {
        m |= 1 << axis(a, rank)?;
    }
    Ok(m)
}

fn usize_of(v: i64) -> R<usize> {
    usize::try_from(v).map_err(|_| "a negative size or count")
}

/// One entry per spatial dim as `[usize; 2]`: a single entry applies to every dim (as ATen
/// expands it), an empty list means `default`, and dims past `spatial` get `neutral`.
fn pair(list: &Ints, spatial: usize, default: [usize; 2], neutral: usize) -> R<[usize; 2]> {
    let s = list.as_slice();
    let mut out = [neutral; 2];
    match s.len() {
        0 => return Ok(default),
        1 => {
            for o in out.iter_mut().take(spatial) {
                *o = usize_of(s[0])?;
            }
        }
        n if n == spatial => {
            for (o, &v) in out.iter_mut().zip(s) {
                *o = usize_of(v)?;
            }
        }
        _ => return Err("a window list has the wrong length"),
    }
    Ok(out)
}

fn spatial_of(rank: usize, batched_min: usize) -> R<u8> {
    match rank.checked_sub(batched_min) {
        Some(1) => Ok(1),
        Some(2) => Ok(2),
        _ => Err("only 1-d and 2-d windows are supported"),
    }
}

/// Operand list under construction.
struct Ins {
    v: [ValueIndex; MAX_INPUTS],
    n: u8,
}

impl Ins {
    fn of(items: &[ValueIndex]) -> Ins {
        let mut v = [0; MAX_INPUTS];
        v[..items.len()].copy_from_slice(items);
        Ins {
            v,
            n: items.len() as u8,
        }
    }

    fn push_opt(mut self, x: Option<ValueIndex>) -> Ins {
        if let Some(x) = x {
            self.v[self.n as usize] = x;
            self.n += 1;
        }
        self
    }
}

/// Reads the schema arguments of `id` (not its outs): the kind and its operands, and how many
/// outputs the operator writes. `out` is the first output, for kinds that need its shape.
fn schema(id: Id, c: &mut Cursor<'_, '_>) -> R<(Kind, Ins, usize)> {
    Ok(match id {
        Id::Convolution => {
            let x = c.tensor()?;
            let w = c.tensor()?;
            let b = c.opt_tensor()?;
            let spatial = spatial_of(c.rank(w)?, 2)?;
            let sp = spatial as usize;
            let stride = pair(&c.ints()?, sp, [1, 1], 1)?;
            let padding = pair(&c.ints()?, sp, [0, 0], 0)?;
            let dilation = pair(&c.ints()?, sp, [1, 1], 1)?;
            let transposed = c.boolean()?;
            let output_padding = pair(&c.ints()?, sp, [0, 0], 0)?;
            let groups = usize_of(c.int()?)?;
            (
                Kind::Conv {
                    spatial,
                    stride,
                    padding,
                    dilation,
                    output_padding,
                    groups,
                    transposed,
                },
                Ins::of(&[x, w]).push_opt(b),
                1,
            )
        }
        Id::Linear => {
            let x = c.tensor()?;
            let w = c.tensor()?;
            let b = c.opt_tensor()?;
            (Kind::Linear, Ins::of(&[x, w]).push_opt(b), 1)
        }
        Id::MatMul => {
            let a = c.tensor()?;
            let b = c.tensor()?;
            (Kind::MatMul, Ins::of(&[a, b]), 1)
        }
        Id::Addmm => {
            let bias = c.tensor()?;
            let a = c.tensor()?;
            let b = c.tensor()?;
            let beta = c.scalar()? as f32;
            let alpha = c.scalar()? as f32;
            (Kind::Addmm { alpha, beta }, Ins::of(&[bias, a, b]), 1)
        }
        Id::BatchNorm => {
            let x = c.tensor()?;
            let w = c.opt_tensor()?;
            let b = c.opt_tensor()?;
            let mean = c.tensor()?;
            let var = c.tensor()?;
            let (Some(w), Some(b)) = (w, b) else {
                return Err("batch norm without weight and bias");
            };
            c.skip()?; // momentum: unused at inference
            let eps = c.scalar()? as f32;
            (Kind::BatchNorm { eps }, Ins::of(&[x, w, b, mean, var]), 3)
        }
        Id::NativeLayerNorm | Id::LayerNorm => {
            let x = c.tensor()?;
            let shape = c.ints()?;
            let w = c.opt_tensor()?;
            let b = c.opt_tensor()?;
            let eps = c.scalar()? as f32;
            let (Some(w), Some(b)) = (w, b) else {
                return Err("layer norm without weight and bias");
            };
            let axis = c
                .rank(x)?
                .checked_sub(shape.len as usize)
                .ok_or("the normalized shape is longer than the input")?;
            let outs = if id == Id::NativeLayerNorm { 3 } else { 1 };
            (Kind::LayerNorm { axis, eps }, Ins::of(&[x, w, b]), outs)
        }
        Id::GroupNorm => {
            let x = c.tensor()?;
            let w = c.opt_tensor()?;
            let b = c.opt_tensor()?;
            let (Some(w), Some(b)) = (w, b) else {
                return Err("group norm without weight and bias");
            };
            let groups = usize_of(c.int()?)?;
            let eps = c.scalar()? as f32;
            (Kind::GroupNorm { groups, eps }, Ins::of(&[x, w, b]), 1)
        }
        Id::NativeGroupNorm => {
            let x = c.tensor()?;
            let w = c.opt_tensor()?;
            let b = c.opt_tensor()?;
            let (Some(w), Some(b)) = (w, b) else {
                return Err("group norm without weight and bias");
            };
            // N, C and HxW restate the input's shape.
            c.int()?;
            c.int()?;
            c.int()?;
            let groups = usize_of(c.int()?)?;
            let eps = c.scalar()? as f32;
            (Kind::GroupNorm { groups, eps }, Ins::of(&[x, w, b]), 3)
        }
        Id::Sdpa => {
            let q = c.tensor()?;
            let k = c.tensor()?;
            let v = c.tensor()?;
            let mask = c.opt_tensor()?;
            let causal = c.boolean()?;
            let scale = c.opt_scalar()?.map_or(f32::NAN, |s| s as f32);
            (
                Kind::Sdpa { causal, scale },
                Ins::of(&[q, k, v]).push_opt(mask),
                1,
            )
        }
        Id::Unary(u) => (Kind::Unary(u), Ins::of(&[c.tensor()?]), 1),
        Id::Gelu => {
            let x = c.tensor()?;
            let tanh = gelu_mode(c.string()?)?;
            (Kind::Unary(Unary::Gelu { tanh }), Ins::of(&[x]), 1)
        }
        Id::Clamp | Id::Hardtanh => {
            let x = c.tensor()?;
            let min = c.opt_scalar()?.unwrap_or(f64::NEG_INFINITY);
            let max = c.opt_scalar()?.unwrap_or(f64::INFINITY);
            (Kind::Clamp { min, max }, Ins::of(&[x]), 1)
        }
        Id::LeakyRelu => {
            let x = c.tensor()?;
            let slope = c.scalar()? as f32;
            (Kind::LeakyRelu { slope }, Ins::of(&[x]), 1)
        }
        Id::Elu => {
            let x = c.tensor()?;
            let alpha = c.scalar()? as f32;
            if c.scalar()? != 1.0 || c.scalar()? != 1.0 {
                return Err("elu with scale or input_scale other than 1");
            }
            (Kind::Elu { alpha }, Ins::of(&[x]), 1)
        }
        Id::Binary(b, alpha) => {
            let x = c.tensor()?;
            let y = c.tensor()?;
            if alpha && c.scalar()? != 1.0 {
                return Err("add or sub with alpha other than 1");
            }
            (Kind::Binary(b), Ins::of(&[x, y]), 1)
        }
        Id::BinaryScalar(b, alpha) => {
            let x = c.tensor()?;
            let y = c.scalar_operand()?;
            if alpha && c.scalar()? != 1.0 {
                return Err("add or sub with alpha other than 1");
            }
            (Kind::Binary(b), Ins::of(&[x, y]), 1)
        }
        Id::Full | Id::FullLike | Id::ScalarTensor => {
            // The size (`full`) or the tensor whose shape is copied (`full_like`) restates the
            // output's shape, and a memory format can only be the contiguous one here.
            match id {
                Id::Full => {
                    c.ints()?;
                }
                Id::FullLike => {
                    c.tensor()?;
                }
                _ => {}
            }
            let value = c.scalar()?;
            if id == Id::FullLike {
                c.skip()?;
            }
            (Kind::Full { value }, Ins::of(&[]), 1)
        }
        Id::Arange(with_start) => {
            let (start, end, step) = if with_start {
                (c.scalar()?, c.scalar()?, c.scalar()?)
            } else {
                (0.0, c.scalar()?, 1.0)
            };
            if step == 0.0 || !(start.is_finite() && end.is_finite() && step.is_finite()) {
                return Err("an arange with a zero step or infinite bounds");
            }
            (Kind::Arange { start, step }, Ins::of(&[]), 1)
        }
        Id::Any(form) => {
            let x = c.tensor()?;
            let rank = c.rank(x)?;
            let (axes, keepdim) = match form {
                AnyForm::Dim => {
                    let a = axis(c.int()?, rank)?;
                    (1u32 << a, c.boolean()?)
                }
                AnyForm::Dims => {
                    let axes = match c.opt_ints()? {
                        Some(l) => axes_mask(&l, rank)?,
                        None => 0,
                    };
                    (axes, c.boolean()?)
                }
                AnyForm::All => (0, false),
            };
            // `any` is the maximum of the truth values: the kernel converts x to the bool
            // output first.
            (
                Kind::Reduce {
                    op: Reduce::Max,
                    axes,
                    keepdim,
                },
                Ins::of(&[x]),
                1,
            )
        }
        Id::Split(_) => {
            let x = c.tensor()?;
            // The sizes (or the size of every piece) restate the outs' shapes.
            c.skip()?;
            let ax = axis(c.int()?, c.rank(x)?)?;
            (Kind::Split { axis: ax }, Ins::of(&[x]), 0)
        }
        Id::DivMode => {
            let x = c.tensor()?;
            let y = c.tensor()?;
            let b = match c.string()? {
                None => Binary::Div,
                Some("floor") => Binary::FloorDiv,
                Some("trunc") => Binary::TruncDiv,
                Some(_) => return Err("an unknown division rounding mode"),
            };
            (Kind::Binary(b), Ins::of(&[x, y]), 1)
        }
        Id::Where => {
            let cond = c.tensor()?;
            let a = c.tensor()?;
            let b = c.tensor()?;
            (Kind::Where, Ins::of(&[cond, a, b]), 1)
        }
        Id::Softmax(log) => {
            let x = c.tensor()?;
            let axis = axis(c.int()?, c.rank(x)?)?;
            if c.boolean()? {
                return Err("softmax with half_to_float");
            }
            (Kind::Softmax { axis, log }, Ins::of(&[x]), 1)
        }
        Id::Sum | Id::Mean | Id::Amax | Id::Amin | Id::Prod => {
            let x = c.tensor()?;
            let axes = match c.opt_ints()? {
                Some(l) => axes_mask(&l, c.rank(x)?)?,
                None => 0,
            };
            let keepdim = c.boolean()?;
            if matches!(id, Id::Sum | Id::Mean) {
                // The dtype argument: the result's dtype is the output tensor's anyway.
                c.skip()?;
            }
            let op = match id {
                Id::Sum => Reduce::Sum,
                Id::Mean => Reduce::Mean,
                Id::Amax => Reduce::Max,
                Id::Amin => Reduce::Min,
                _ => Reduce::Prod,
            };
            (Kind::Reduce { op, axes, keepdim }, Ins::of(&[x]), 1)
        }
        Id::Var => {
            let x = c.tensor()?;
            let axes = match c.opt_ints()? {
                Some(l) => axes_mask(&l, c.rank(x)?)?,
                None => 0,
            };
            let correction = c.opt_scalar()?.unwrap_or(1.0);
            let keepdim = c.boolean()?;
            (
                Kind::Var {
                    axes,
                    correction,
                    keepdim,
                },
                Ins::of(&[x]),
                1,
            )
        }
        Id::ArgReduce(max) => {
            let x = c.tensor()?;
            let axis = match c.opt_int()? {
                Some(a) => axis(a, c.rank(x)?)? as i32,
                None => -1,
            };
            let keepdim = c.boolean()?;
            (Kind::ArgReduce { max, axis, keepdim }, Ins::of(&[x]), 1)
        }
        Id::MaxPool | Id::MaxPoolWithIndices => {
            let x = c.tensor()?;
            let k = c.ints()?;
            let spatial = k.len as usize;
            let _ = spatial_of(spatial, 0)?;
            let kernel = pair(&k, spatial, [1, 1], 1)?;
            let stride = pair(&c.ints()?, spatial, kernel, 1)?;
            let padding = pair(&c.ints()?, spatial, [0, 0], 0)?;
            let dilation = pair(&c.ints()?, spatial, [1, 1], 1)?;
            let ceil_mode = c.boolean()?;
            let outs = if id == Id::MaxPoolWithIndices { 2 } else { 1 };
            (
                Kind::Pool {
                    kind: PoolKind::Max,
                    spatial: spatial as u8,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    ceil_mode,
                    count_include_pad: false,
                    divisor_override: 0,
                },
                Ins::of(&[x]),
                outs,
            )
        }
        Id::AvgPool => {
            let x = c.tensor()?;
            let k = c.ints()?;
            let spatial = k.len as usize;
            let _ = spatial_of(spatial, 0)?;
            let kernel = pair(&k, spatial, [1, 1], 1)?;
            let stride = pair(&c.ints()?, spatial, kernel, 1)?;
            let padding = pair(&c.ints()?, spatial, [0, 0], 0)?;
            let ceil_mode = c.boolean()?;
            let count_include_pad = c.boolean()?;
            let divisor_override = match c.opt_int()? {
                Some(d) => usize_of(d)?,
                None => 0,
            };
            (
                Kind::Pool {
                    kind: PoolKind::Avg,
                    spatial: spatial as u8,
                    kernel,
                    stride,
                    padding,
                    dilation: [1, 1],
                    ceil_mode,
                    count_include_pad,
                    divisor_override,
                },
                Ins::of(&[x]),
                1,
            )
        }
        Id::AdaptiveAvg | Id::AdaptiveMax => {
            let x = c.tensor()?;
            // The output size is the output tensor's trailing dims.
            c.ints()?;
            let kind = if id == Id::AdaptiveAvg {
                PoolKind::Avg
            } else {
                PoolKind::Max
            };
            (Kind::AdaptivePool { kind }, Ins::of(&[x]), 1)
        }
        Id::View | Id::Squeeze => {
            let x = c.tensor()?;
            // The new shape is the output tensor's.
            c.skip()?;
            (Kind::Reshape, Ins::of(&[x]), 1)
        }
        Id::Permute => {
            let x = c.tensor()?;
            let dims = c.ints()?;
            let rank = c.rank(x)?;
            let mut perm = dims;
            for p in perm.v.iter_mut().take(dims.len as usize) {
                *p = axis(*p, rank)? as i64;
            }
            (Kind::Permute { perm }, Ins::of(&[x]), 1)
        }
        Id::Transpose | Id::TransposeLast => {
            let x = c.tensor()?;
            let rank = c.rank(x)?;
            let (a, b) = if id == Id::Transpose {
                (axis(c.int()?, rank)?, axis(c.int()?, rank)?)
            } else {
                (0, rank.saturating_sub(1))
            };
            let mut perm = Ints::EMPTY;
            perm.len = rank as u8;
            for (k, p) in perm.v.iter_mut().enumerate().take(rank) {
                *p = k as i64;
            }
            perm.v.swap(a, b);
            (Kind::Permute { perm }, Ins::of(&[x]), 1)
        }
        Id::Expand => {
            let x = c.tensor()?;
            c.ints()?;
            c.skip()?; // implicit
            (Kind::Expand, Ins::of(&[x]), 1)
        }
        Id::Repeat => {
            let x = c.tensor()?;
            let repeats = c.ints()?;
            (Kind::Tile { repeats }, Ins::of(&[x]), 1)
        }
        Id::Cat => {
            let list = c.tensor_list()?;
            let dim = c.int()?;
            // The axis is normalized against the output's rank, which every input shares.
            let first = match c.plan.value(list as usize) {
                Some(Value::TensorList(l)) => l.get(0),
                _ => None,
            }
            .ok_or("concatenation of an empty list")?;
            let rank = c.rank(u32::try_from(first).map_err(|_| "a negative value index")?)?;
            (
                Kind::Concat {
                    axis: axis(dim, rank)?,
                },
                Ins::of(&[list]),
                1,
            )
        }
        Id::Slice => {
            let x = c.tensor()?;
            let sizes = c.sizes(x)?;
            let ax = axis(c.int()?, sizes.len())?;
            let n = sizes.get(ax).unwrap_or(1).max(0) as i64;
            let clampi = |v: Option<i64>, default: i64| {
                let v = v.unwrap_or(default);
                let v = if v < 0 { v.saturating_add(n) } else { v };
                v.clamp(0, n) as usize
            };
            let start = clampi(c.opt_int()?, 0);
            let end = clampi(c.opt_int()?, n).max(start);
            let step = usize_of(c.int()?)?;
            if step == 0 {
                return Err("a slice step of 0");
            }
            (
                Kind::Slice {
                    axis: ax,
                    start,
                    end,
                    step,
                },
                Ins::of(&[x]),
                1,
            )
        }
        Id::IndexSelect | Id::Take => {
            let x = c.tensor()?;
            let ax = axis(c.int()?, c.rank(x)?)?;
            let idx = c.tensor()?;
            (Kind::Take { axis: ax }, Ins::of(&[x, idx]), 1)
        }
        Id::Embedding => {
            let w = c.tensor()?;
            let idx = c.tensor()?;
            // padding_idx, scale_grad_by_freq and sparse only matter for training.
            c.skip()?;
            c.skip()?;
            c.skip()?;
            (Kind::Take { axis: 0 }, Ins::of(&[w, idx]), 1)
        }
        Id::Gather => {
            let x = c.tensor()?;
            let ax = axis(c.int()?, c.rank(x)?)?;
            let idx = c.tensor()?;
            c.skip()?; // sparse_grad
            (Kind::Gather { axis: ax }, Ins::of(&[x, idx]), 1)
        }
        Id::ToCopy | Id::CloneFormat | Id::DimOrderCopy => {
            let x = c.tensor()?;
            if id != Id::CloneFormat {
                c.skip()?; // non_blocking
            }
            if id == Id::DimOrderCopy {
                if let Some(order) = c.opt_ints()? {
                    let contiguous = order
                        .as_slice()
                        .iter()
                        .enumerate()
                        .all(|(k, &d)| d == k as i64);
                    if !contiguous {
                        return Err("a copy to a non-contiguous dim order");
                    }
                }
            } else {
                c.skip()?; // memory_format
            }
            (Kind::Cast, Ins::of(&[x]), 1)
        }
        Id::Pad => {
            let x = c.tensor()?;
            let pad = c.ints()?;
            let value = c.scalar()?;
            let rank = c.rank(x)?;
            if pad.len % 2 != 0 || pad.len as usize > 2 * rank {
                return Err("a pad list that does not fit the input's rank");
            }
            let mut pads = [0i32; 2 * MAX_RANK];
            let small = |v: i64| i32::try_from(v).map_err(|_| "a pad beyond ±2³¹");
            for j in 0..pad.len as usize / 2 {
                let d = rank - 1 - j;
                pads[2 * d] = small(pad.v[2 * j])?;
                pads[2 * d + 1] = small(pad.v[2 * j + 1])?;
            }
            (Kind::Pad { pads, value }, Ins::of(&[x]), 1)
        }
        Id::Triangle(upper) => {
            let x = c.tensor()?;
            let diagonal = c.int()?;
            (Kind::Triangle { upper, diagonal }, Ins::of(&[x]), 1)
        }
        Id::Cumsum => {
            let x = c.tensor()?;
            let ax = axis(c.int()?, c.rank(x)?)?;
            c.skip()?; // dtype: the output tensor's
            (Kind::Cumsum { axis: ax }, Ins::of(&[x]), 1)
        }
        Id::UpsampleNearestVec | Id::UpsampleLinearVec => {
            let x = c.tensor()?;
            // The output size, when given, is the output tensor's; with scale factors only,
            // the output tensor's size is still what the kernel must produce.
            c.opt_ints()?;
            let bilinear = id == Id::UpsampleLinearVec;
            let align_corners = if bilinear { c.boolean()? } else { false };
            c.skip()?; // scale_factors
            (
                Kind::Upsample {
                    bilinear,
                    align_corners,
                },
                Ins::of(&[x]),
                1,
            )
        }
        Id::UpsampleNearest | Id::UpsampleLinear => {
            let x = c.tensor()?;
            let size = c.ints()?;
            let align_corners = if id == Id::UpsampleLinear {
                c.boolean()?
            } else {
                false
            };
            // One optional scale per spatial dim: the output size already decides.
            for _ in 0..size.len {
                c.skip()?;
            }
            (
                Kind::Upsample {
                    bilinear: id == Id::UpsampleLinear,
                    align_corners,
                },
                Ins::of(&[x]),
                1,
            )
        }
    })
}

fn gelu_mode(s: Option<&str>) -> R<bool> {
    match s {
        None | Some("none") => Ok(false),
        Some("tanh") => Ok(true),
        Some(_) => Err("an unknown gelu approximation"),
    }
}

/// The activation arguments of a fused operator.
fn act(a: ActName, c: &mut Cursor<'_, '_>) -> R<Act> {
    Ok(match a {
        ActName::Relu => Act::Relu,
        ActName::Clamp => {
            let min = c.opt_scalar()?.unwrap_or(f64::NEG_INFINITY) as f32;
            let max = c.opt_scalar()?.unwrap_or(f64::INFINITY) as f32;
            Act::Clamp { min, max }
        }
        ActName::Hardswish => Act::Hardswish,
        ActName::Hardsigmoid => Act::Hardsigmoid,
        ActName::Silu => Act::Silu,
        ActName::Gelu => Act::Gelu {
            tanh: gelu_mode(c.string()?)?,
        },
    })
}

/// Whether any instruction but `except`, or the plan's outputs, reads value `v`.
fn read_elsewhere(plan: &Plan<'_>, v: ValueIndex, except: usize) -> bool {
    if plan.outputs().iter().any(|o| o == v as i32) {
        return true;
    }
    (0..plan.instructions_len()).any(|i| {
        i != except
            && match plan.instruction(i) {
                Some(Instruction::Kernel { args, .. }) => args.iter().any(|a| a == v as i32),
                Some(Instruction::Move { from, .. }) => from == v,
                _ => false,
            }
    })
}

/// The rest of a split's arguments: its outs as one `TensorList`, optionally returned again
/// (the same list, or a list of the same items). The step's operands are x and the list, and
/// its output is the first piece (see `Kind::Split`).
fn split_outs(plan: &Plan<'_>, c: &mut Cursor<'_, '_>, kind: Kind, ins: Ins) -> R<Option<Step>> {
    let list = c.tensor_list()?;
    let Some(Value::TensorList(items)) = plan.value(list as usize) else {
        return Err("the outs are not a tensor list");
    };
    let first = items.get(0).ok_or("a split into no pieces")?;
    let first = u32::try_from(first).map_err(|_| "a negative value index")?;
    for v in items.iter() {
        let v = u32::try_from(v).map_err(|_| "a negative value index")?;
        c.sizes(v)?;
    }
    match c.args.len() - c.pos {
        0 => {}
        1 => {
            let again = c.tensor_list()?;
            let same = match plan.value(again as usize) {
                Some(Value::TensorList(b)) => {
                    b.len() == items.len() && b.iter().zip(items.iter()).all(|(p, q)| p == q)
                }
                _ => false,
            };
            if !same {
                return Err("the returned values differ from the out arguments");
            }
        }
        _ => return Err("the argument count does not match the schema"),
    }
    let ins = ins.push_opt(Some(list));
    Ok(Some(Step {
        kind,
        act: Act::None,
        inputs: ins.v,
        n_inputs: ins.n,
        output: first,
    }))
}

/// Decodes instruction `instruction` of `plan`. `Ok(None)` is an instruction that computes
/// nothing at run time (a `FreeCall`).
pub fn decode(plan: &Plan<'_>, instruction: usize) -> Result<Option<Step>, DecodeError> {
    let ins = plan
        .instruction(instruction)
        .ok_or(DecodeError::NoInstruction { instruction })?;
    let (op_index, args) = match ins {
        Instruction::Kernel { op_index, args } => (op_index, args),
        Instruction::Free { .. } => return Ok(None),
        Instruction::Delegate { .. } => {
            return Err(DecodeError::NotKernel {
                instruction,
                what: "delegate call",
            })
        }
        Instruction::Move { .. } => {
            return Err(DecodeError::NotKernel {
                instruction,
                what: "move",
            })
        }
        Instruction::JumpFalse { .. } => {
            return Err(DecodeError::NotKernel {
                instruction,
                what: "conditional jump",
            })
        }
    };
    let (name, overload) = plan
        .operator(op_index as usize)
        .ok_or(DecodeError::NoInstruction { instruction })?;
    let operator = OperatorName::new(name, overload);
    let (id, act_name) = resolve(name, overload).ok_or(DecodeError::UnknownOperator {
        instruction,
        operator,
    })?;
    let fail = |why| DecodeError::Arguments {
        instruction,
        operator,
        why,
    };
    let mut c = Cursor { plan, args, pos: 0 };
    let (kind, ins, mut outs) = schema(id, &mut c).map_err(fail)?;
    let act = match act_name {
        Some(a) => {
            // A fused operator writes only its main output.
            outs = 1;
            act(a, &mut c).map_err(fail)?
        }
        None => Act::None,
    };
    if let Kind::Split { .. } = kind {
        return split_outs(plan, &mut c, kind, ins).map_err(fail);
    }
    let mut out_values = [0 as ValueIndex; 3];
    for o in out_values.iter_mut().take(outs) {
        *o = c.tensor().map_err(fail)?;
    }
    // The returned values, when written, repeat the outs: the one out tensor again, or one
    // `TensorList` holding all of them.
    match args.len() - c.pos {
        0 => {}
        1 if outs == 1 => {
            if c.tensor().map_err(fail)? != out_values[0] {
                return Err(fail("the returned value differs from the out argument"));
            }
        }
        1 => {
            let list = c.tensor_list().map_err(fail)?;
            let Some(Value::TensorList(items)) = plan.value(list as usize) else {
                return Err(fail("the returned values are not a tensor list"));
            };
            let same = items.len() == outs
                && items
                    .iter()
                    .zip(out_values.iter())
                    .all(|(a, &b)| a == b as i32);
            if !same {
                return Err(fail("the returned values differ from the out arguments"));
            }
        }
        _ => return Err(fail("the argument count does not match the schema")),
    }
    for &extra in out_values.iter().take(outs).skip(1) {
        if read_elsewhere(plan, extra, instruction) {
            return Err(fail(
                "an extra output (saved statistics or pooling indices) is used",
            ));
        }
    }
    Ok(Some(Step {
        kind,
        act,
        inputs: ins.v,
        n_inputs: ins.n,
        output: out_values[0],
    }))
}
