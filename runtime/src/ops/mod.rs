//! Binds a decoded [`Step`] to the kernels that compute it. Invariant: a kernel is called only
//! after its operands' count, dtypes, byte lengths, alignment, ranks and shapes were checked
//! against the kernel's slice-length contract, so bad metadata is an [`OpError`], never a panic.
//!
//! One binding file per kernel family (`conv.rs` binds `kernels/src/conv.rs`). Each tries the
//! family's variants in the CHAIN ORDER, `speed` descending with the universal variant last,
//! and calls the first whose `_accepts` holds. Marker lines let etpkg's generator trim a copy:
//!
//! ```text
//! //@use <family>.<variant>   one arm of a chain (in `run` and in `accepting`); dropped with
//! //@end                      the variant when a program did not select it
//! //@family <family>          this file's lines for one family (its `mod` line and its match
//! //@end                      arms), dropped with the whole family
//! ```
//!
//! A step whose family or every applicable variant was dropped gives an [`OpError`]. A variant
//! whose `KernelInfo::isa` is non-empty is tried only when compiled for those features: its arm
//! starts `if cfg!(target_feature = "<isa>") && kept(..) && ..._accepts(..)` (today every
//! variant is portable).
//! Conventions the bindings read from a [`Step`]: for a 1-d convolution or pooling
//! (`spatial == 1`) entry 0 of `stride`, `padding`, `dilation`, `output_padding` and `kernel`
//! holds the only spatial dim's value; `Upsample` and `AdaptivePool` resample the two trailing
//! dims to the output's (a leading dim that keeps its size is resampled by the identity).
//!
//! This file is shared: etpkg compiles it through `src/rt.rs` and the generator copies it into
//! every runtime crate. It is `no_std`, allocates nothing and names other files only through
//! `super::`.

// The generator may drop any family, leaving shared helpers or macros unused in a given crate.
#![allow(dead_code, unused_macros, unused_imports, unused_variables)]

use super::kernels;
use super::kernels::act::Act;
pub use super::kernels::shape::{DType, Shape};
use super::kernels::shape::{Dst, Operand, Src, MAX_RANK};
use super::step;
use super::step::{Kind, Step};

/// A tensor's element type and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorMeta {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorMeta {
    /// The metadata of a tensor with these dims, or None when the rank exceeds `MAX_RANK`.
    pub fn new(dtype: DType, dims: &[usize]) -> Option<TensorMeta> {
        Shape::new(dims).map(|shape| TensorMeta { dtype, shape })
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    /// The bytes the tensor occupies (`numel · element size`).
    pub fn byte_len(&self) -> usize {
        self.numel() * dtype_size(self.dtype)
    }
}

/// The bytes one element of `d` occupies.
pub fn dtype_size(d: DType) -> usize {
    match d {
        DType::F32 => 4,
        DType::I64 => 8,
        DType::Bool => 1,
    }
}

/// One operand of a step, as the executor hands it over.
#[derive(Clone, Copy, Debug)]
pub enum In<'a> {
    /// A tensor's metadata and its bytes (little-endian elements; f32/i64 slices 8-byte aligned
    /// or better; bool = one byte 0/1).
    Tensor(TensorMeta, &'a [u8]),
    /// This operand occupies exactly the output's bytes (the planner ran the op in place); it
    /// has this metadata (same byte size as the output).
    InPlace(TensorMeta),
}

impl In<'_> {
    /// The operand's metadata.
    pub fn meta(&self) -> TensorMeta {
        match *self {
            In::Tensor(m, _) | In::InPlace(m) => m,
        }
    }
}

/// Which operand an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Input(usize),
    Output,
}

impl core::fmt::Display for Which {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Which::Input(i) => write!(f, "input {i}"),
            Which::Output => f.write_str("the output"),
        }
    }
}

/// Why a step could not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The step got `got` operands; it takes `min..=max`.
    InputCount { min: usize, max: usize, got: usize },
    /// An operand has a dtype the step's kernels do not compute with.
    DType { which: Which, got: DType },
    /// An operand's bytes are not its metadata's size.
    ByteLength {
        which: Which,
        expected: usize,
        got: usize,
    },
    /// An operand's bytes are not aligned for its element type.
    Misaligned { which: Which },
    /// A bool operand holds a byte other than 0 or 1.
    NotBool { which: Which },
    /// An operand's rank exceeds the kernels' `MAX_RANK`.
    Rank { which: Which, rank: usize },
    /// An operand's shape does not fit the step's attributes or the other operands.
    Shape { which: Which, why: &'static str },
    /// The operand cannot share the output's bytes here.
    InPlace { which: Which },
    /// No variant of the family that was kept accepts these operands.
    NoVariant { family: &'static str },
    /// The step's whole kernel family was left out of this runtime.
    FamilyDropped { family: &'static str },
    /// The kernel refused the data (its own reason).
    Kernel(&'static str),
    /// An index operand holds an index outside the indexed dimension.
    Index { index: i64, size: usize },
}

/// A step that could not run: the op's name and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpError {
    pub op: &'static str,
    pub reason: Reason,
}

impl core::fmt::Display for OpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "`{}`: ", self.op)?;
        match self.reason {
            Reason::InputCount { min, max, got } if min == max => {
                write!(f, "takes {min} operands, got {got}")
            }
            Reason::InputCount { min, max, got } if max == usize::MAX => {
                write!(f, "takes at least {min} operands, got {got}")
            }
            Reason::InputCount { min, max, got } => {
                write!(f, "takes {min} to {max} operands, got {got}")
            }
            Reason::DType { which, got } => {
                write!(
                    f,
                    "{which} has dtype {got:?}, which its kernels do not compute"
                )
            }
            Reason::ByteLength {
                which,
                expected,
                got,
            } => write!(f, "{which} needs {expected} bytes, got {got}"),
            Reason::Misaligned { which } => {
                write!(f, "{which}'s bytes are not aligned for its element type")
            }
            Reason::NotBool { which } => write!(f, "{which} holds a bool byte other than 0 or 1"),
            Reason::Rank { which, rank } => {
                write!(f, "{which} has rank {rank}, more than {MAX_RANK}")
            }
            Reason::Shape { which, why } => write!(f, "{which}: {why}"),
            Reason::InPlace { which } => {
                write!(f, "{which} cannot share the output's bytes for this op")
            }
            Reason::NoVariant { family } => write!(
                f,
                "no kernel variant kept for these operands (family `{family}`)"
            ),
            Reason::FamilyDropped { family } => {
                write!(f, "the kernel family `{family}` is not in this runtime")
            }
            Reason::Kernel(why) => f.write_str(why),
            Reason::Index { index, size } => write!(
                f,
                "index {index} is out of range for a dimension of size {size}"
            ),
        }
    }
}

/// The kernel family that computes `kind` (the binding file's and the kernels file's name).
pub fn family(kind: &Kind) -> &'static str {
    match kind {
        Kind::Conv {
            transposed: false, ..
        } => "conv",
        Kind::Conv {
            transposed: true, ..
        } => "conv_transpose",
        Kind::Linear | Kind::MatMul | Kind::Addmm { .. } => "matmul",
        Kind::BatchNorm { .. } | Kind::LayerNorm { .. } | Kind::GroupNorm { .. } => "norm",
        Kind::Sdpa { .. } => "attention",
        Kind::Unary(_) | Kind::LeakyRelu { .. } | Kind::Elu { .. } | Kind::Clamp { .. } => "unary",
        Kind::Binary(_) => "binary",
        Kind::Where => "where_",
        Kind::Softmax { .. } => "softmax",
        Kind::Reduce { .. } | Kind::Var { .. } | Kind::ArgReduce { .. } => "reduce",
        Kind::Pool { .. } | Kind::AdaptivePool { .. } => "pool",
        Kind::Take { .. } | Kind::Gather { .. } => "index",
        Kind::Upsample { .. } => "upsample",
        Kind::Reshape
        | Kind::Permute { .. }
        | Kind::Expand
        | Kind::Tile { .. }
        | Kind::Concat { .. }
        | Kind::Slice { .. }
        | Kind::Cast
        | Kind::Pad { .. }
        | Kind::Triangle { .. }
        | Kind::Cumsum { .. }
        | Kind::Full { .. }
        | Kind::Arange { .. }
        | Kind::Split { .. } => "layout",
    }
}

/// The operand counts a step of `kind` takes (a concat's list counts each tensor).
fn input_range(kind: &Kind) -> (usize, usize) {
    match kind {
        Kind::Conv { .. } | Kind::Linear => (2, 3),
        Kind::MatMul | Kind::Binary(_) | Kind::Take { .. } | Kind::Gather { .. } => (2, 2),
        Kind::Addmm { .. } | Kind::Where => (3, 3),
        Kind::BatchNorm { .. } => (5, 5),
        Kind::LayerNorm { .. } | Kind::GroupNorm { .. } => (1, 3),
        Kind::Sdpa { .. } => (3, 4),
        Kind::Concat { .. } => (1, usize::MAX),
        Kind::Full { .. } | Kind::Arange { .. } => (0, 0),
        _ => (1, 1),
    }
}

// Dispatches on a source and a destination of the same element type; `$body` names the typed
// slices `$x` and `$y` and is instantiated once per type.
macro_rules! same_type {
    ($c:expr, $x:expr, $y:expr, |$xs:ident, $ys:ident| $body:expr) => {
        match ($x, $y) {
            (super::Data::F32($xs), super::kernels::shape::Dst::F32($ys)) => $body,
            (super::Data::I64($xs), super::kernels::shape::Dst::I64($ys)) => $body,
            (super::Data::Bool($xs), super::kernels::shape::Dst::Bool($ys)) => $body,
            (super::Data::InOut, _) => {
                return Err($c.err(super::Reason::InPlace {
                    which: super::Which::Input(0),
                }))
            }
            _ => {
                return Err($c.err(super::Reason::DType {
                    which: super::Which::Output,
                    got: $c.out.dtype,
                }))
            }
        }
    };
}

// Dispatches on any source and destination element types (3 × 3 instantiations).
macro_rules! any_types {
    ($c:expr, $x:expr, $y:expr, |$xs:ident, $ys:ident| $body:expr) => {
        match $x {
            super::Data::F32($xs) => any_types!(@dst $y, $ys, $body),
            super::Data::I64($xs) => any_types!(@dst $y, $ys, $body),
            super::Data::Bool($xs) => any_types!(@dst $y, $ys, $body),
            super::Data::InOut => {
                return Err($c.err(super::Reason::InPlace { which: super::Which::Input(0) }))
            }
        }
    };
    (@dst $y:expr, $ys:ident, $body:expr) => {
        match $y {
            super::kernels::shape::Dst::F32($ys) => $body,
            super::kernels::shape::Dst::I64($ys) => $body,
            super::kernels::shape::Dst::Bool($ys) => $body,
        }
    };
}

//@family attention
mod attention;
//@end
//@family binary
mod binary;
//@end
//@family conv
mod conv;
//@end
//@family conv_transpose
mod conv_transpose;
//@end
//@family index
mod index;
//@end
//@family layout
mod layout;
//@end
//@family matmul
mod matmul;
//@end
//@family norm
mod norm;
//@end
//@family pool
mod pool;
//@end
//@family reduce
mod reduce;
//@end
//@family softmax
mod softmax;
//@end
//@family unary
mod unary;
//@end
//@family upsample
mod upsample;
//@end
//@family where_
mod where_;
//@end

/// A typed view of one operand's elements; `InOut` when it lives in the output's bytes.
#[derive(Clone, Copy, Debug)]
enum Data<'a> {
    F32(&'a [f32]),
    I64(&'a [i64]),
    Bool(&'a [u8]),
    InOut,
}

impl<'a> Data<'a> {
    fn src(self) -> Src<'a> {
        match self {
            Data::F32(v) => Src::F32(v),
            Data::I64(v) => Src::I64(v),
            Data::Bool(v) => Src::Bool(v),
            Data::InOut => Src::InOut,
        }
    }
}

/// Element types a byte buffer may be viewed as: every byte pattern of the right length is a
/// value (f32, i64), or the bytes were checked to be 0 or 1 first (bool).
trait Plain: Copy {
    /// Whether `bytes` hold only valid values of the type.
    fn valid(_bytes: &[u8]) -> bool {
        true
    }
}
impl Plain for f32 {}
impl Plain for i64 {}
impl Plain for bool {
    fn valid(bytes: &[u8]) -> bool {
        bytes.iter().all(|&b| b <= 1)
    }
}

/// Why a byte buffer cannot be viewed as `T`.
enum ViewFault {
    Length,
    Misaligned,
    NotBool,
}

/// Views `bytes` as elements of `T` (shared), or `&mut` bytes as `&mut [T]`. This is the
/// bindings' only unsafe code (the executor's `fill`, which lays its tables into the arena, is
/// the runtime's other); it reinterprets a byte buffer after checking the three things that
/// make that sound: the start is aligned for `T`, the length is a whole number of `T`s,
/// and (for bool) every byte is a valid value. An empty buffer is viewed as an empty slice
/// without looking at its (possibly dangling) pointer.
fn view<T: Plain>(bytes: &[u8]) -> Result<&[T], ViewFault> {
    let size = core::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(ViewFault::Length);
    }
    if bytes.is_empty() {
        return Ok(&[]);
    }
    if !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(ViewFault::Misaligned);
    }
    if !T::valid(bytes) {
        return Err(ViewFault::NotBool);
    }
    // SAFETY: the pointer is non-null and aligned for `T` (checked above), the region of
    // `len / size · size == len` bytes lies inside `bytes`, which stays borrowed for the
    // returned lifetime, and every `T` in it is a valid value (f32 and i64 accept any bits;
    // bool bytes were checked to be 0 or 1).
    Ok(unsafe { core::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

/// The mutable form of [`view`], for output buffers (f32 and i64 only, so every bit pattern
/// written through the view is a valid byte sequence and vice versa).
fn view_mut<T: Plain>(bytes: &mut [u8]) -> Result<&mut [T], ViewFault> {
    let size = core::mem::size_of::<T>();
    if !bytes.len().is_multiple_of(size) {
        return Err(ViewFault::Length);
    }
    if bytes.is_empty() {
        return Ok(&mut []);
    }
    if !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(ViewFault::Misaligned);
    }
    if !T::valid(bytes) {
        return Err(ViewFault::NotBool);
    }
    // SAFETY: as in `view`; the exclusive borrow of `bytes` is moved into the returned slice,
    // so no other reference to these bytes exists while it lives.
    Ok(
        unsafe {
            core::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size)
        },
    )
}

/// What a binding sees of one step: its operands' metadata (and, when running, their bytes).
struct Ctx<'s, 'a> {
    op: &'static str,
    step: &'s Step,
    /// Operand metadata when only metadata is known (`accepting`); empty when `ins` is given.
    metas: &'s [TensorMeta],
    ins: &'s [In<'a>],
    out: TensorMeta,
}

impl<'s, 'a> Ctx<'s, 'a> {
    fn err(&self, reason: Reason) -> OpError {
        OpError {
            op: self.op,
            reason,
        }
    }

    fn shape_err(&self, which: Which, why: &'static str) -> OpError {
        self.err(Reason::Shape { which, why })
    }

    /// The number of operands.
    fn n(&self) -> usize {
        if self.ins.is_empty() {
            self.metas.len()
        } else {
            self.ins.len()
        }
    }

    fn meta(&self, i: usize) -> TensorMeta {
        if self.ins.is_empty() {
            self.metas[i]
        } else {
            self.ins[i].meta()
        }
    }

    fn shape(&self, i: usize) -> Shape {
        self.meta(i).shape
    }

    /// Whether operand `i` has dtype `d`.
    fn is(&self, i: usize, d: DType) -> bool {
        self.meta(i).dtype == d
    }

    /// Errs unless operand `i` has dtype `d`.
    fn want(&self, i: usize, d: DType) -> Result<(), OpError> {
        let got = self.meta(i).dtype;
        if got == d {
            Ok(())
        } else {
            Err(self.err(Reason::DType {
                which: Which::Input(i),
                got,
            }))
        }
    }

    /// Errs unless the output has dtype `d`.
    fn want_out(&self, d: DType) -> Result<(), OpError> {
        if self.out.dtype == d {
            Ok(())
        } else {
            Err(self.err(Reason::DType {
                which: Which::Output,
                got: self.out.dtype,
            }))
        }
    }

    /// Errs unless every operand and the output are f32.
    fn all_f32(&self) -> Result<(), OpError> {
        for i in 0..self.n() {
            self.want(i, DType::F32)?;
        }
        self.want_out(DType::F32)
    }

    /// Errs unless the output has exactly these dims.
    fn want_out_dims(&self, dims: &[usize]) -> Result<(), OpError> {
        if self.out.shape.dims() == dims {
            Ok(())
        } else {
            Err(self.shape_err(
                Which::Output,
                "the output shape does not follow from the inputs",
            ))
        }
    }

    fn fault(&self, which: Which, f: ViewFault, expected: usize, got: usize) -> OpError {
        self.err(match f {
            ViewFault::Length => Reason::ByteLength {
                which,
                expected,
                got,
            },
            ViewFault::Misaligned => Reason::Misaligned { which },
            ViewFault::NotBool => Reason::NotBool { which },
        })
    }

    /// Operand `i`'s elements, typed by its dtype.
    fn data(&self, i: usize) -> Result<Data<'a>, OpError> {
        let (m, bytes) = match self.ins.get(i) {
            Some(In::Tensor(m, b)) => (*m, *b),
            Some(In::InPlace(_)) => return Ok(Data::InOut),
            None => return Err(self.shape_err(Which::Input(i), "missing operand")),
        };
        let which = Which::Input(i);
        let fault = |f| self.fault(which, f, m.byte_len(), bytes.len());
        Ok(match m.dtype {
            DType::F32 => Data::F32(view::<f32>(bytes).map_err(fault)?),
            DType::I64 => Data::I64(view::<i64>(bytes).map_err(fault)?),
            DType::Bool => {
                view::<bool>(bytes).map_err(fault)?;
                Data::Bool(bytes)
            }
        })
    }

    /// Operand `i`'s elements as f32, which must not share the output's bytes.
    fn f32_in(&self, i: usize) -> Result<&'a [f32], OpError> {
        match self.data(i)? {
            Data::F32(v) => Ok(v),
            Data::InOut => Err(self.err(Reason::InPlace {
                which: Which::Input(i),
            })),
            _ => Err(self.err(Reason::DType {
                which: Which::Input(i),
                got: self.meta(i).dtype,
            })),
        }
    }

    /// Operand `i` as an f32 kernel operand (a slice, or `InOut`).
    fn f32_operand(&self, i: usize) -> Result<Operand<'a, f32>, OpError> {
        match self.data(i)? {
            Data::F32(v) => Ok(Operand::Slice(v)),
            Data::InOut => Ok(Operand::InOut),
            _ => Err(self.err(Reason::DType {
                which: Which::Input(i),
                got: self.meta(i).dtype,
            })),
        }
    }

    /// The output buffer as f32.
    fn f32_out<'y>(&self, y: &'y mut [u8]) -> Result<&'y mut [f32], OpError> {
        self.want_out(DType::F32)?;
        let got = y.len();
        view_mut::<f32>(y).map_err(|f| self.fault(Which::Output, f, self.out.byte_len(), got))
    }

    /// The output buffer typed by the output's dtype.
    fn dst<'y>(&self, y: &'y mut [u8]) -> Result<Dst<'y>, OpError> {
        let got = y.len();
        let fault = |f| self.fault(Which::Output, f, self.out.byte_len(), got);
        Ok(match self.out.dtype {
            DType::F32 => Dst::F32(view_mut::<f32>(y).map_err(fault)?),
            DType::I64 => Dst::I64(view_mut::<i64>(y).map_err(fault)?),
            DType::Bool => Dst::Bool(y),
        })
    }

    /// Errs when operand `i` shares the output's bytes (the kernel reads it out of place).
    fn not_in_place(&self, i: usize) -> Result<(), OpError> {
        match self.ins.get(i) {
            Some(In::InPlace(_)) => Err(self.err(Reason::InPlace {
                which: Which::Input(i),
            })),
            _ => Ok(()),
        }
    }

    /// Errs when any operand shares the output's bytes.
    fn none_in_place(&self) -> Result<(), OpError> {
        (0..self.n()).try_for_each(|i| self.not_in_place(i))
    }

    /// Errs unless an in-place operand `i` has the output's dtype and shape, the only form the
    /// kernels' `InOut` operands take.
    fn in_place_like_output(&self, i: usize) -> Result<(), OpError> {
        match self.ins.get(i) {
            Some(In::InPlace(m)) if *m != self.out => Err(self.err(Reason::InPlace {
                which: Which::Input(i),
            })),
            _ => Ok(()),
        }
    }

    /// Applies the step's fused activation to the finished f32 output, for kernels that do
    /// not apply it themselves.
    fn post_act(&self, y: &mut [u8]) -> Result<(), OpError> {
        if matches!(self.step.act, Act::None) {
            return Ok(());
        }
        let y = self.f32_out(y)?;
        self.step.act.apply_slice(y);
        Ok(())
    }

    /// The error for a step whose attributes belong to another family (a binding called for
    /// the wrong kind; unreachable through `run`).
    fn wrong_kind(&self) -> OpError {
        self.shape_err(Which::Output, "the step is not computed by this family")
    }
}

/// The checks every step gets before its family sees it: operand count and ranks.
fn check_metas(
    op: &'static str,
    step: &Step,
    n: usize,
    meta: impl Fn(usize) -> TensorMeta,
    out: &TensorMeta,
) -> Result<(), OpError> {
    let err = |reason| OpError { op, reason };
    let (min, max) = input_range(&step.kind);
    if n < min || n > max {
        return Err(err(Reason::InputCount { min, max, got: n }));
    }
    if out.shape.rank > MAX_RANK {
        return Err(err(Reason::Rank {
            which: Which::Output,
            rank: out.shape.rank,
        }));
    }
    for i in 0..n {
        let r = meta(i).shape.rank;
        if r > MAX_RANK {
            return Err(err(Reason::Rank {
                which: Which::Input(i),
                rank: r,
            }));
        }
    }
    Ok(())
}

/// Computes `step` from `ins` into `y` (the output's bytes, `out`'s size), with the first
/// variant of the step's family, in chain order, that accepts the operands.
pub fn run(step: &Step, ins: &[In<'_>], out: TensorMeta, y: &mut [u8]) -> Result<(), OpError> {
    run_with(step, ins, out, y, &|_| true).map(|_| ())
}

/// [`run`] restricted to the variants for which `kept("<family>.<variant>")` holds (as a
/// runtime trimmed to those variants would be); returns the name of the variant that ran.
pub fn run_with(
    step: &Step,
    ins: &[In<'_>],
    out: TensorMeta,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let op = step.name();
    let err = |reason| OpError { op, reason };
    check_metas(op, step, ins.len(), |i| ins[i].meta(), &out)?;
    if y.len() != out.byte_len() {
        return Err(err(Reason::ByteLength {
            which: Which::Output,
            expected: out.byte_len(),
            got: y.len(),
        }));
    }
    for (i, x) in ins.iter().enumerate() {
        let (expected, got) = match x {
            In::Tensor(m, b) => (m.byte_len(), b.len()),
            In::InPlace(m) => (out.byte_len(), m.byte_len()),
        };
        if expected != got {
            return Err(err(Reason::ByteLength {
                which: Which::Input(i),
                expected,
                got,
            }));
        }
    }
    let c = Ctx {
        op,
        step,
        metas: &[],
        ins,
        out,
    };
    #[allow(unreachable_patterns)]
    match step.kind {
        //@family conv
        Kind::Conv {
            transposed: false, ..
        } => conv::run(&c, y, kept),
        //@end
        //@family conv_transpose
        Kind::Conv {
            transposed: true, ..
        } => conv_transpose::run(&c, y, kept),
        //@end
        //@family matmul
        Kind::Linear | Kind::MatMul | Kind::Addmm { .. } => matmul::run(&c, y, kept),
        //@end
        //@family norm
        Kind::BatchNorm { .. } | Kind::LayerNorm { .. } | Kind::GroupNorm { .. } => {
            norm::run(&c, y, kept)
        }
        //@end
        //@family attention
        Kind::Sdpa { .. } => attention::run(&c, y, kept),
        //@end
        //@family unary
        Kind::Unary(_) | Kind::LeakyRelu { .. } | Kind::Elu { .. } | Kind::Clamp { .. } => {
            unary::run(&c, y, kept)
        }
        //@end
        //@family binary
        Kind::Binary(_) => binary::run(&c, y, kept),
        //@end
        //@family where_
        Kind::Where => where_::run(&c, y, kept),
        //@end
        //@family softmax
        Kind::Softmax { .. } => softmax::run(&c, y, kept),
        //@end
        //@family reduce
        Kind::Reduce { .. } | Kind::Var { .. } | Kind::ArgReduce { .. } => reduce::run(&c, y, kept),
        //@end
        //@family pool
        Kind::Pool { .. } | Kind::AdaptivePool { .. } => pool::run(&c, y, kept),
        //@end
        //@family index
        Kind::Take { .. } | Kind::Gather { .. } => index::run(&c, y, kept),
        //@end
        //@family upsample
        Kind::Upsample { .. } => upsample::run(&c, y, kept),
        //@end
        //@family layout
        Kind::Reshape
        | Kind::Permute { .. }
        | Kind::Expand
        | Kind::Tile { .. }
        | Kind::Concat { .. }
        | Kind::Slice { .. }
        | Kind::Cast
        | Kind::Pad { .. }
        | Kind::Triangle { .. }
        | Kind::Cumsum { .. }
        | Kind::Full { .. }
        | Kind::Arange { .. }
        | Kind::Split { .. } => layout::run(&c, y, kept),
        //@end
        _ => Err(err(Reason::FamilyDropped {
            family: family(&step.kind),
        })),
    }
}

/// Reports, in chain order, the `<family>.<variant>` name of every variant whose dtypes match
/// and whose `_accepts` holds for a step with these operands; nothing when the operands are
/// invalid for the step.
pub fn accepting(
    step: &Step,
    ins: &[TensorMeta],
    out: &TensorMeta,
    found: &mut dyn FnMut(&'static str),
) {
    let op = step.name();
    if check_metas(op, step, ins.len(), |i| ins[i], out).is_err() {
        return;
    }
    let c = Ctx {
        op,
        step,
        metas: ins,
        ins: &[],
        out: *out,
    };
    #[allow(unreachable_patterns)]
    match step.kind {
        //@family conv
        Kind::Conv {
            transposed: false, ..
        } => conv::accepting(&c, found),
        //@end
        //@family conv_transpose
        Kind::Conv {
            transposed: true, ..
        } => conv_transpose::accepting(&c, found),
        //@end
        //@family matmul
        Kind::Linear | Kind::MatMul | Kind::Addmm { .. } => matmul::accepting(&c, found),
        //@end
        //@family norm
        Kind::BatchNorm { .. } | Kind::LayerNorm { .. } | Kind::GroupNorm { .. } => {
            norm::accepting(&c, found)
        }
        //@end
        //@family attention
        Kind::Sdpa { .. } => attention::accepting(&c, found),
        //@end
        //@family unary
        Kind::Unary(_) | Kind::LeakyRelu { .. } | Kind::Elu { .. } | Kind::Clamp { .. } => {
            unary::accepting(&c, found)
        }
        //@end
        //@family binary
        Kind::Binary(_) => binary::accepting(&c, found),
        //@end
        //@family where_
        Kind::Where => where_::accepting(&c, found),
        //@end
        //@family softmax
        Kind::Softmax { .. } => softmax::accepting(&c, found),
        //@end
        //@family reduce
        Kind::Reduce { .. } | Kind::Var { .. } | Kind::ArgReduce { .. } => {
            reduce::accepting(&c, found)
        }
        //@end
        //@family pool
        Kind::Pool { .. } | Kind::AdaptivePool { .. } => pool::accepting(&c, found),
        //@end
        //@family index
        Kind::Take { .. } | Kind::Gather { .. } => index::accepting(&c, found),
        //@end
        //@family upsample
        Kind::Upsample { .. } => upsample::accepting(&c, found),
        //@end
        //@family layout
        Kind::Reshape
        | Kind::Permute { .. }
        | Kind::Expand
        | Kind::Tile { .. }
        | Kind::Concat { .. }
        | Kind::Slice { .. }
        | Kind::Cast
        | Kind::Pad { .. }
        | Kind::Triangle { .. }
        | Kind::Cumsum { .. }
        | Kind::Full { .. }
        | Kind::Arange { .. }
        | Kind::Split { .. } => layout::accepting(&c, found),
        //@end
        _ => {}
    }
}

/// `(h, w)` of a shape's trailing two dims, seeing a rank-1 shape as `[1, w]` and a scalar as
/// `[1, 1]`, and the product of the dims before them.
fn planes_hw(s: &Shape) -> (usize, usize, usize) {
    let d = s.dims();
    match d.len() {
        0 => (1, 1, 1),
        1 => (1, 1, d[0]),
        r => (d[..r - 2].iter().product(), d[r - 2], d[r - 1]),
    }
}

/// Builds a shape from dims, erring (rank) when there are too many.
fn shape_of(c: &Ctx, dims: &[usize]) -> Result<Shape, OpError> {
    Shape::new(dims).ok_or_else(|| {
        c.err(Reason::Rank {
            which: Which::Output,
            rank: dims.len(),
        })
    })
}

/// Views little-endian f32 bytes as `&[f32]` (for reading outputs in place); None when the
/// buffer is misaligned or not a whole number of elements.
pub fn as_f32(bytes: &[u8]) -> Option<&[f32]> {
    view::<f32>(bytes).ok()
}

/// Views little-endian i64 bytes as `&[i64]`, as [`as_f32`] does for f32.
pub fn as_i64(bytes: &[u8]) -> Option<&[i64]> {
    view::<i64>(bytes).ok()
}
