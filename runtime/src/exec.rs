//! The executor: runs a validated program's `forward` plan inside a caller's arena. Invariant:
//! after `Method::load` succeeds, `execute` touches only the blob and the arena it was given,
//! allocates nothing, and reports every fault (a shape a kernel refuses, an overlap the plan
//! should not contain) as an error, never as undefined behaviour.
//!
//! The arena holds the plan's memory ids one after another, each starting on a 64-byte
//! boundary, and after them two tables `load` builds, so that `execute` reads nothing from the
//! FlatBuffer per instruction or per operand:
//!
//! ```text
//! arena
//! ├── memory id 1   non_const_buffer_sizes[1] bytes, at 0
//! ├── memory id 2   non_const_buffer_sizes[2] bytes, at align64(end of id 1)
//! ├── ...           (the activations end on a 64-byte boundary)
//! ├── step table    STEP_ENTRY_BYTES per instruction: the decoded `Step` (None for a free)
//! └── value table   VALUE_SLOT_BYTES per value: where its bytes are and its metadata
//! ```
//!
//! The tables come after the activations so that the planned offsets, and the activation
//! bytes the planner reports, do not depend on them. Their sizes are fixed per entry (not
//! `size_of`), so `Method::arena_bytes` is the same number on every target. `load` fills them
//! after validating every instruction and every tensor an instruction or the signature uses;
//! a value that does not resolve (a list, an int argument) gets an empty slot, which only a
//! bug could make `execute` read (an `ExecError::Value`, not a panic). Storing the typed
//! entries in the byte arena takes this file's only `unsafe` (`fill`).
//!
//! This file is shared: etpkg compiles it and every generated runtime copies it unchanged.

// A load error carries the decoder's error, which holds the operator's name inline: there is
// no heap to box it in, and it is returned once per load, never on the execution path.
#![allow(clippy::result_large_err)]

use core::fmt;

use super::decode::{decode, DecodeError};
use super::ops::{self, DType, In, OpError, Shape, TensorMeta};
use super::pte::{Plan, Program, PteError, TensorInfo, Value};
use super::step::{Kind, Step, MAX_INPUTS, MAX_RANK};

/// Alignment the blob, the arena and every memory id's start must have.
pub const ALIGN: usize = 64;

/// The most memory ids a plan may use (id 0 is reserved by the format).
pub const MAX_MEMORY_IDS: usize = 8;

/// The most tensors a concatenation may join.
pub const MAX_LIST: usize = 64;

/// Why a program could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadError {
    /// The blob is not a valid `.pte` file.
    Pte(PteError),
    /// The blob or the arena does not start on a 64-byte boundary.
    Misaligned { what: &'static str },
    /// The program has no plan named `forward`.
    NoForward,
    /// The plan uses more memory ids than this runtime supports, or a negative size.
    MemoryIds { count: usize },
    /// The arena is smaller than the plan needs.
    ArenaTooSmall { needed: usize, given: usize },
    /// A value the plan uses cannot be given to a kernel.
    Value { index: u32, reason: &'static str },
    /// An instruction cannot be decoded.
    Instruction { index: usize, error: DecodeError },
    /// An instruction this runtime does not execute (delegate calls, control flow).
    Unsupported { index: usize, what: &'static str },
}

/// Why a run failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ExecError {
    /// A kernel refused its operands.
    Op {
        instruction: usize,
        op: &'static str,
        error: OpError,
    },
    /// An operand overlaps the output in a way no plan produces.
    Overlap {
        instruction: usize,
        value: u32,
    },
    /// The output of an instruction is not a planned tensor.
    NotWritable {
        instruction: usize,
        value: u32,
    },
    /// A concatenation joins more tensors than [`MAX_LIST`].
    TooManyInputs {
        instruction: usize,
    },
    /// An input or output index out of range.
    NoSuchIo {
        what: &'static str,
        index: usize,
    },
    /// Input bytes of the wrong length or element type.
    InputSize {
        index: usize,
        expected: usize,
        given: usize,
    },
    InputType {
        index: usize,
    },
    /// The program's value cannot be resolved (only after a load that validated it: a bug).
    Value {
        index: u32,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Pte(e) => write!(f, "invalid program: {e}"),
            LoadError::Misaligned { what } => {
                write!(f, "the {what} must start on a {ALIGN}-byte boundary")
            }
            LoadError::NoForward => write!(f, "the program has no `forward` method"),
            LoadError::MemoryIds { count } => write!(
                f,
                "the plan uses {count} memory ids; this runtime supports at most {}",
                MAX_MEMORY_IDS - 1
            ),
            LoadError::ArenaTooSmall { needed, given } => write!(
                f,
                "the arena holds {given} bytes but the program needs {needed}"
            ),
            LoadError::Value { index, reason } => write!(f, "value {index}: {reason}"),
            LoadError::Instruction { index, error } => {
                write!(f, "instruction {index}: {error}")
            }
            LoadError::Unsupported { index, what } => {
                write!(
                    f,
                    "instruction {index}: {what} is not supported by this runtime"
                )
            }
        }
    }
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Op {
                instruction,
                op,
                error,
            } => write!(f, "instruction {instruction} ({op}): {error}"),
            ExecError::Overlap { instruction, value } => write!(
                f,
                "instruction {instruction}: operand value {value} partly overlaps the output"
            ),
            ExecError::NotWritable { instruction, value } => write!(
                f,
                "instruction {instruction}: output value {value} is not a planned tensor"
            ),
            ExecError::TooManyInputs { instruction } => write!(
                f,
                "instruction {instruction}: more than {MAX_LIST} tensors to concatenate"
            ),
            ExecError::NoSuchIo { what, index } => write!(f, "the method has no {what} {index}"),
            ExecError::InputSize {
                index,
                expected,
                given,
            } => write!(
                f,
                "input {index} takes {expected} bytes, {given} were given"
            ),
            ExecError::InputType { index } => {
                write!(f, "input {index} has a different element type")
            }
            ExecError::Value { index } => write!(f, "value {index} cannot be resolved"),
        }
    }
}

/// Sees each instruction before and after it runs (per-op timing in runners and benchmarks).
pub trait Observer {
    fn before(&mut self, instruction: usize, step: &Step);
    fn after(&mut self, instruction: usize, step: &Step);
}

struct NoObserver;

impl Observer for NoObserver {
    fn before(&mut self, _: usize, _: &Step) {}
    fn after(&mut self, _: usize, _: &Step) {}
}

/// Where a tensor's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// `len` bytes at `start` in the blob's constant data.
    Constant(usize, usize),
    /// `len` bytes at `start` in the arena.
    Arena(usize, usize),
    /// A scalar operand (an `Int`, `Double` or `Bool` value), as the little-endian bytes of
    /// a 0-d tensor of its metadata's dtype.
    Scalar([u8; 8]),
}

/// Eight bytes aligned for any element type, so a scalar operand can be read as a tensor.
#[derive(Clone, Copy)]
#[repr(align(8))]
struct Word([u8; 8]);

/// The 0-d tensor a scalar value stands for (ATen's wrapped numbers: an int is i64, a double
/// f32 — the default float type — and a bool bool), or None for any other value.
fn scalar_operand(v: &Value<'_>) -> Option<(TensorMeta, [u8; 8])> {
    let mut b = [0u8; 8];
    let dtype = match *v {
        Value::Int(i) => {
            b = i.to_le_bytes();
            DType::I64
        }
        Value::Double(d) => {
            b[..4].copy_from_slice(&(d as f32).to_le_bytes());
            DType::F32
        }
        Value::Bool(x) => {
            b[0] = x as u8;
            DType::Bool
        }
        _ => return None,
    };
    Some((TensorMeta::new(dtype, &[])?, b))
}

/// Bytes each instruction takes in the step table: `size_of::<Option<Step>>()` on 64-bit
/// targets. The figure is fixed, not `size_of`, so that `Method::arena_bytes` is the same
/// number on every target (etpkg computes a generated crate's `ARENA_BYTES` on the host); a
/// target where the entry is smaller leaves the difference unused, and one where it would be
/// larger does not compile (the assertion below).
pub const STEP_ENTRY_BYTES: usize = 120;

/// Bytes each value takes in the value table (`Slot`, whose fields have fixed widths).
pub const VALUE_SLOT_BYTES: usize = 44;

const _: () = assert!(
    core::mem::size_of::<Option<Step>>() <= STEP_ENTRY_BYTES
        && core::mem::align_of::<Option<Step>>() <= 8
        && STEP_ENTRY_BYTES.is_multiple_of(8)
);
const _: () =
    assert!(core::mem::size_of::<Slot>() == VALUE_SLOT_BYTES && core::mem::align_of::<Slot>() <= 8);

/// One value as `load` resolved it: where its bytes are and its metadata, in fixed-width
/// fields so that the value table has the same size on every target.
#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    /// `EMPTY`, `CONSTANT`, `ARENA` or `SCALAR`.
    kind: u8,
    /// The `DType` discriminant.
    dtype: u8,
    rank: u8,
    pad: u8,
    /// A constant's or an arena tensor's start and byte length; a scalar's eight bytes.
    at: u32,
    len: u32,
    dims: [u32; MAX_RANK],
}

impl Slot {
    const EMPTY: Slot = Slot {
        kind: 0,
        dtype: 0,
        rank: 0,
        pad: 0,
        at: 0,
        len: 0,
        dims: [0; MAX_RANK],
    };
    const CONSTANT: u8 = 1;
    const ARENA: u8 = 2;
    const SCALAR: u8 = 3;

    /// The operand this slot records, or None for an empty slot.
    fn get(&self) -> Option<(TensorMeta, Place)> {
        let (at, len) = (self.at as usize, self.len as usize);
        let place = match self.kind {
            Slot::CONSTANT => Place::Constant(at, len),
            Slot::ARENA => Place::Arena(at, len),
            Slot::SCALAR => {
                let (a, b) = (self.at.to_le_bytes(), self.len.to_le_bytes());
                Place::Scalar([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]])
            }
            _ => return None,
        };
        let dtype = match self.dtype {
            0 => DType::F32,
            1 => DType::I64,
            _ => DType::Bool,
        };
        let mut shape = Shape {
            dims: [0; MAX_RANK],
            rank: self.rank as usize,
        };
        for (d, &n) in shape.dims.iter_mut().zip(&self.dims) {
            *d = n as usize;
        }
        Some((TensorMeta { dtype, shape }, place))
    }
}

/// Lays `n` values made by `make` at the start of `bytes` and returns them as a slice: the
/// tables `load` builds in the caller's arena. An error when `bytes` is misaligned or short
/// for them (which `arena_bytes` and the checks in `load` rule out).
fn fill<T: Copy>(
    bytes: &mut [u8],
    n: usize,
    mut make: impl FnMut(usize) -> Result<T, LoadError>,
) -> Result<&[T], LoadError> {
    let fits = n
        .checked_mul(core::mem::size_of::<T>())
        .is_some_and(|need| need <= bytes.len());
    if !fits || !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(LoadError::Misaligned { what: "arena" });
    }
    let base = bytes.as_mut_ptr().cast::<T>();
    for k in 0..n {
        let v = make(k)?;
        // SAFETY: `base` is aligned for `T` and `n` values of `T` fit in `bytes` (checked
        // above), which this function borrows exclusively, so entry `k < n` is in bounds and
        // nothing else reads or writes it; `write` stores without reading the old bytes.
        unsafe { base.add(k).write(v) };
    }
    // SAFETY: the first `n` values of `T` at `base` were all written above, and the returned
    // slice keeps `bytes`' exclusive borrow, so no byte of it can change while it lives.
    Ok(unsafe { core::slice::from_raw_parts(base, n) })
}

/// Start of each memory id in the arena, and the arena bytes needed.
#[derive(Clone, Copy)]
struct Layout {
    base: [usize; MAX_MEMORY_IDS],
    size: [usize; MAX_MEMORY_IDS],
    count: usize,
    /// The bytes of the memory ids (the activations), a multiple of `ALIGN`.
    activations: usize,
    /// `activations` plus the step and value tables.
    total: usize,
}

fn align_up(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|v| v / ALIGN * ALIGN)
}

fn layout(plan: &Plan<'_>) -> Result<Layout, LoadError> {
    let sizes = plan.non_const_buffer_sizes();
    let count = sizes.len();
    if count > MAX_MEMORY_IDS {
        return Err(LoadError::MemoryIds { count });
    }
    let mut l = Layout {
        base: [0; MAX_MEMORY_IDS],
        size: [0; MAX_MEMORY_IDS],
        count,
        activations: 0,
        total: 0,
    };
    let mut at = 0usize;
    // Id 0 is reserved by the format; its recorded size is ignored.
    for id in 1..count {
        let s = sizes.get(id).unwrap_or(0);
        let s = usize::try_from(s).map_err(|_| LoadError::MemoryIds { count })?;
        l.base[id] = at;
        l.size[id] = s;
        at = at
            .checked_add(s)
            .and_then(align_up)
            .ok_or(LoadError::MemoryIds { count })?;
    }
    l.activations = at;
    l.total = plan
        .instructions_len()
        .checked_mul(STEP_ENTRY_BYTES)
        .zip(plan.values_len().checked_mul(VALUE_SLOT_BYTES))
        .and_then(|(a, b)| at.checked_add(a)?.checked_add(b))
        .ok_or(LoadError::MemoryIds { count })?;
    Ok(l)
}

fn dtype_of(scalar_type: i8) -> Option<DType> {
    match scalar_type {
        6 => Some(DType::F32),
        4 => Some(DType::I64),
        11 => Some(DType::Bool),
        _ => None,
    }
}

fn elem_size(d: DType) -> usize {
    match d {
        DType::F32 => 4,
        DType::I64 => 8,
        DType::Bool => 1,
    }
}

/// A tensor's metadata as kernels see it, checked: a supported dtype, a rank within bounds and
/// the contiguous dim order.
fn meta_of(t: &TensorInfo<'_>) -> Result<TensorMeta, &'static str> {
    let dtype = dtype_of(t.scalar_type).ok_or("element type not supported by the kernels")?;
    let mut dims = [0usize; super::pte::MAX_RANK];
    let rank = t.sizes.len();
    if rank > dims.len() {
        return Err("rank above the supported maximum");
    }
    for (i, s) in t.sizes.iter().enumerate() {
        dims[i] = usize::try_from(s).map_err(|_| "negative size")?;
    }
    if t.dim_order.len() != rank
        || t.dim_order
            .iter()
            .enumerate()
            .any(|(i, &d)| d as usize != i)
    {
        return Err("only contiguous tensors (dim order 0..rank) are supported");
    }
    let shape = Shape::new(&dims[..rank]).ok_or("rank above the supported maximum")?;
    Ok(TensorMeta { dtype, shape })
}

fn nbytes(m: &TensorMeta) -> Option<usize> {
    m.shape
        .dims()
        .iter()
        .try_fold(elem_size(m.dtype), |n, &d| n.checked_mul(d))
}

/// The metadata of tensor value `index`: what kernel selection and the executor both see.
/// A scalar operand (see `Step::inputs`) has the metadata of the 0-d tensor it stands for.
pub fn tensor_meta(plan: &Plan<'_>, index: u32) -> Result<TensorMeta, &'static str> {
    match plan.value(index as usize) {
        Some(Value::Tensor(t)) => meta_of(&t),
        Some(v) => scalar_operand(&v).map(|(m, _)| m).ok_or("not a tensor"),
        None => Err("no such value"),
    }
}

/// Calls `f` with every tensor value `step` reads, expanding a concatenation's list (a
/// split's list holds what it writes, so it is not an operand).
pub fn for_each_operand(
    plan: &Plan<'_>,
    step: &Step,
    mut f: impl FnMut(u32),
) -> Result<(), &'static str> {
    if let Kind::Concat { .. } = step.kind {
        match plan.value(step.inputs[0] as usize) {
            Some(Value::TensorList(items)) => {
                if items.len() > MAX_LIST {
                    return Err("more tensors to concatenate than this runtime supports");
                }
                for v in items.iter() {
                    f(u32::try_from(v).map_err(|_| "negative value index")?);
                }
                Ok(())
            }
            _ => Err("a concatenation's operand is not a tensor list"),
        }
    } else if let Kind::Split { .. } = step.kind {
        f(step.inputs[0]);
        Ok(())
    } else {
        for &v in step.inputs() {
            f(v);
        }
        Ok(())
    }
}

/// The pieces a split writes: its outs `TensorList`.
fn split_pieces<'a>(plan: &Plan<'a>, step: &Step) -> Result<super::pte::I32s<'a>, &'static str> {
    match plan.value(step.inputs[1] as usize) {
        Some(Value::TensorList(items)) if items.len() <= MAX_LIST => Ok(items),
        Some(Value::TensorList(_)) => Err("more pieces to split into than this runtime supports"),
        _ => Err("a split's outs are not a tensor list"),
    }
}

impl Method<'_> {
    /// Runs a split as one slice per piece, each piece starting where the previous ended.
    fn run_split(&mut self, i: usize, step: &Step, axis: usize) -> Result<(), ExecError> {
        let pieces = split_pieces(&self.plan, step).map_err(|_| ExecError::Value {
            index: step.inputs[1],
        })?;
        let mut start = 0usize;
        for v in pieces.iter() {
            let v = u32::try_from(v).map_err(|_| ExecError::Value {
                index: step.inputs[1],
            })?;
            let (m, _) = self.tensor(v).map_err(|_| ExecError::Value { index: v })?;
            let len = m
                .shape
                .dims()
                .get(axis)
                .copied()
                .ok_or(ExecError::Value { index: v })?;
            let piece = Step {
                kind: Kind::Slice {
                    axis,
                    start,
                    end: start + len,
                    step: 1,
                },
                act: step.act,
                inputs: step.inputs,
                n_inputs: 1,
                output: v,
            };
            self.run_step(i, &piece)?;
            start += len;
        }
        Ok(())
    }
}

/// The longest chain of `et_view`s over one planned tensor the executor follows.
pub const MAX_VIEW_DEPTH: usize = 16;

/// The input of the `executorch_prim::et_view` instruction whose output is value `index`.
fn view_source(plan: &Plan<'_>, index: u32) -> Option<u32> {
    (0..plan.instructions_len()).find_map(|i| match plan.instruction(i) {
        Some(super::pte::Instruction::Kernel { op_index, args })
            if args.get(2) == Some(index as i32)
                && plan.operator(op_index as usize)
                    == Some(("executorch_prim::et_view", "default")) =>
        {
            args.get(0).and_then(|v| u32::try_from(v).ok())
        }
        _ => None,
    })
}

/// A program's `forward` method bound to an arena.
pub struct Method<'a> {
    program: Program<'a>,
    plan: Plan<'a>,
    /// The activations: the memory ids, laid out as `layout` says.
    arena: &'a mut [u8],
    layout: Layout,
    /// Each instruction decoded (None when it computes nothing), built by `load`.
    steps: &'a [Option<Step>],
    /// Each value resolved, built by `load`.
    slots: &'a [Slot],
}

impl<'a> Method<'a> {
    /// Bytes of arena the program's `forward` plan needs: its activations, then the step and
    /// value tables `load` builds (`STEP_ENTRY_BYTES` per instruction and `VALUE_SLOT_BYTES`
    /// per value).
    pub fn arena_bytes(blob: &[u8]) -> Result<usize, LoadError> {
        let program = Program::parse(blob).map_err(LoadError::Pte)?;
        let plan = program.plan_named("forward").ok_or(LoadError::NoForward)?;
        Ok(layout(&plan)?.total)
    }

    /// Validates the blob and every instruction of `forward`, binds the arena and builds the
    /// step and value tables after the activations, so `execute` reads no FlatBuffer table
    /// for an instruction or a tensor.
    pub fn load(blob: &'a [u8], arena: &'a mut [u8]) -> Result<Method<'a>, LoadError> {
        if !(blob.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(LoadError::Misaligned { what: "program" });
        }
        if !(arena.as_ptr() as usize).is_multiple_of(ALIGN) {
            return Err(LoadError::Misaligned { what: "arena" });
        }
        let program = Program::parse(blob).map_err(LoadError::Pte)?;
        let plan = program.plan_named("forward").ok_or(LoadError::NoForward)?;
        let layout = layout(&plan)?;
        if arena.len() < layout.total {
            return Err(LoadError::ArenaTooSmall {
                needed: layout.total,
                given: arena.len(),
            });
        }
        let (arena, tables) = arena.split_at_mut(layout.activations);
        let (step_bytes, slot_bytes) =
            tables.split_at_mut(plan.instructions_len() * STEP_ENTRY_BYTES);
        let mut m = Method {
            program,
            plan,
            arena,
            layout,
            steps: &[],
            slots: &[],
        };
        m.check_io()?;
        m.slots = fill(slot_bytes, plan.values_len(), |v| m.slot_of(v))?;
        m.steps = fill(step_bytes, plan.instructions_len(), |i| m.prepare(i))?;
        Ok(m)
    }

    /// Checks that every tensor the signature names resolves to bytes of the right size.
    fn check_io(&self) -> Result<(), LoadError> {
        for v in self.plan.inputs().iter().chain(self.plan.outputs().iter()) {
            let index = u32::try_from(v).map_err(|_| LoadError::Value {
                index: 0,
                reason: "negative value index",
            })?;
            self.resolve_tensor(index)
                .map_err(|reason| LoadError::Value { index, reason })?;
        }
        Ok(())
    }

    /// Decodes instruction `i` and checks that every tensor it uses resolves to bytes of the
    /// right size: its entry in the step table (None for an instruction that computes
    /// nothing). Needs the value table (for `is_view_of_input`).
    fn prepare(&self, i: usize) -> Result<Option<Step>, LoadError> {
        let step = match self.step(i)? {
            Some(s) => s,
            None => return Ok(None),
        };
        let out = step.output;
        match self.resolve_tensor(out) {
            Ok((_, Place::Arena(..))) => {}
            Ok(_) if self.is_view_of_input(&step) => {}
            Ok(_) => {
                return Err(LoadError::Value {
                    index: out,
                    reason: "an instruction writes a constant",
                })
            }
            Err(reason) => return Err(LoadError::Value { index: out, reason }),
        }
        if let Kind::Split { axis } = step.kind {
            self.check_split(&step, axis)?;
        }
        let mut bad = None;
        self.for_each_operand(&step, |v| {
            if bad.is_none() {
                if let Err(reason) = self.resolve_operand(v) {
                    bad = Some(LoadError::Value { index: v, reason });
                }
            }
        })
        .map_err(|reason| LoadError::Value {
            index: step.inputs[0],
            reason,
        })?;
        match bad {
            Some(e) => Err(e),
            None => Ok(Some(step)),
        }
    }

    /// Value `index`'s slot in the value table: its metadata and place when it resolves as an
    /// operand, an empty slot otherwise (a list, an int argument, a broken tensor no
    /// instruction uses; `prepare` reports those an instruction uses).
    fn slot_of(&self, index: usize) -> Result<Slot, LoadError> {
        let Ok(v) = u32::try_from(index) else {
            return Ok(Slot::EMPTY);
        };
        let Ok((meta, place)) = self.resolve_operand(v) else {
            return Ok(Slot::EMPTY);
        };
        let far = LoadError::Value {
            index: v,
            reason: "bytes beyond 4 GiB into the arena or the program",
        };
        let word = |n: usize| u32::try_from(n).map_err(|_| far);
        let (kind, at, len) = match place {
            Place::Constant(s, l) => (Slot::CONSTANT, word(s)?, word(l)?),
            Place::Arena(s, l) => (Slot::ARENA, word(s)?, word(l)?),
            Place::Scalar(b) => {
                let [a0, a1, a2, a3, b0, b1, b2, b3] = b;
                (
                    Slot::SCALAR,
                    u32::from_le_bytes([a0, a1, a2, a3]),
                    u32::from_le_bytes([b0, b1, b2, b3]),
                )
            }
        };
        // All `MAX_RANK` entries are kept: a `Shape`'s dims past its rank are 1, and shapes
        // compare whole.
        let mut dims = [0u32; MAX_RANK];
        for (d, &n) in dims.iter_mut().zip(&meta.shape.dims) {
            *d = word(n)?;
        }
        Ok(Slot {
            kind,
            dtype: meta.dtype as u8,
            rank: meta.shape.rank as u8,
            pad: 0,
            at,
            len,
            dims,
        })
    }

    /// Checks that a split's pieces are planned tensors of x's dtype and rank that share x's
    /// dims but `axis`, along which together they are exactly as long as x.
    fn check_split(&self, step: &Step, axis: usize) -> Result<(), LoadError> {
        let bad = |index, reason| LoadError::Value { index, reason };
        let x = step.inputs[0];
        let (xm, _) = self.resolve_tensor(x).map_err(|r| bad(x, r))?;
        let pieces = split_pieces(&self.plan, step).map_err(|r| bad(step.inputs[1], r))?;
        let mut total = 0usize;
        for v in pieces.iter() {
            let v = u32::try_from(v).map_err(|_| bad(step.inputs[1], "negative value index"))?;
            let (m, place) = self.resolve_tensor(v).map_err(|r| bad(v, r))?;
            if !matches!(place, Place::Arena(..)) {
                return Err(bad(v, "an instruction writes a constant"));
            }
            let (xs, ps) = (xm.shape.dims(), m.shape.dims());
            let fits = m.dtype == xm.dtype
                && xs.len() == ps.len()
                && axis < xs.len()
                && (0..xs.len()).all(|d| d == axis || xs[d] == ps[d]);
            if !fits {
                return Err(bad(v, "a split piece does not match the split tensor"));
            }
            total += ps[axis];
        }
        if xm.shape.dims().get(axis) != Some(&total) {
            return Err(bad(x, "the split pieces do not cover the split tensor"));
        }
        Ok(())
    }

    /// The decoded step of instruction `i`, or None for an instruction that computes nothing.
    /// Kept out of line: inlined into the table builder it duplicated the decoder's glue and
    /// grew the `size` runner of mobilenet_v2 by 2.8 KB.
    #[inline(never)]
    fn step(&self, i: usize) -> Result<Option<Step>, LoadError> {
        match self.plan.instruction(i) {
            Some(super::pte::Instruction::Kernel { .. }) => {
                decode(&self.plan, i).map_err(|error| LoadError::Instruction { index: i, error })
            }
            Some(super::pte::Instruction::Delegate { .. }) => Err(LoadError::Unsupported {
                index: i,
                what: "a delegate call",
            }),
            Some(super::pte::Instruction::JumpFalse { .. }) => Err(LoadError::Unsupported {
                index: i,
                what: "a conditional jump",
            }),
            Some(super::pte::Instruction::Move { .. }) => Err(LoadError::Unsupported {
                index: i,
                what: "a move",
            }),
            // Freeing a value is a no-op: the memory plan already decided where everything lives.
            Some(super::pte::Instruction::Free { .. }) => Ok(None),
            None => Err(LoadError::Unsupported {
                index: i,
                what: "an unreadable instruction",
            }),
        }
    }

    fn for_each_operand(&self, step: &Step, f: impl FnMut(u32)) -> Result<(), &'static str> {
        for_each_operand(&self.plan, step, f)
    }

    /// An operand's metadata and where its bytes are, from the value table: a tensor, or a
    /// scalar value standing for a 0-d tensor (the `.Scalar` overloads).
    fn operand(&self, index: u32) -> Result<(TensorMeta, Place), &'static str> {
        self.slots
            .get(index as usize)
            .and_then(Slot::get)
            .ok_or("not a tensor")
    }

    /// A tensor value's metadata and where its bytes are, from the value table.
    fn tensor(&self, index: u32) -> Result<(TensorMeta, Place), &'static str> {
        match self.operand(index)? {
            (_, Place::Scalar(_)) => Err("not a tensor"),
            r => Ok(r),
        }
    }

    /// An operand's metadata and where its bytes are, read from the program (at load; the
    /// value table holds the result for `execute`): a tensor, or a scalar value standing for a
    /// 0-d tensor (the `.Scalar` overloads).
    fn resolve_operand(&self, index: u32) -> Result<(TensorMeta, Place), &'static str> {
        match self.plan.value(index as usize) {
            Some(Value::Tensor(_)) | None => self.resolve_tensor(index),
            Some(v) => scalar_operand(&v)
                .map(|(m, b)| (m, Place::Scalar(b)))
                .ok_or("not a tensor"),
        }
    }

    /// A tensor value's metadata and where its bytes are, read from the program.
    fn resolve_tensor(&self, index: u32) -> Result<(TensorMeta, Place), &'static str> {
        self.tensor_at_depth(index, 0)
    }

    /// [`Method::resolve_tensor`], `depth` views deep into a chain of `et_view`s.
    fn tensor_at_depth(
        &self,
        index: u32,
        depth: usize,
    ) -> Result<(TensorMeta, Place), &'static str> {
        let t = match self.plan.value(index as usize) {
            Some(Value::Tensor(t)) => t,
            Some(_) => return Err("not a tensor"),
            None => return Err("no such value"),
        };
        let meta = meta_of(&t)?;
        let len = nbytes(&meta).ok_or("byte size overflows")?;
        if t.data_buffer_idx != 0 {
            let data = self
                .program
                .constant(t.data_buffer_idx)
                .ok_or("constant data missing")?;
            if data.len() < len {
                return Err("constant data shorter than the tensor");
            }
            let start = data.as_ptr() as usize - self.program_base();
            return Ok((meta, Place::Constant(start, len)));
        }
        let Some((id, offset)) = t.allocation else {
            return self.view_place(index, meta, len, depth);
        };
        let id = id as usize;
        if id == 0 || id >= self.layout.count {
            return Err("memory id out of range");
        }
        let offset = usize::try_from(offset).map_err(|_| "offset out of range")?;
        let end = offset.checked_add(len).ok_or("offset out of range")?;
        if end > self.layout.size[id] {
            return Err("tensor extends past its memory id");
        }
        Ok((meta, Place::Arena(self.layout.base[id] + offset, len)))
    }

    /// Where the bytes of an unplanned tensor are: ExecuTorch's emitter gives the output of
    /// `executorch_prim::et_view` no memory of its own, because it is a view of its input.
    /// The producing instruction is found by a scan of the plan (only at load, when the value
    /// table is built), and chains of views are followed at most [`MAX_VIEW_DEPTH`] deep.
    fn view_place(
        &self,
        index: u32,
        meta: TensorMeta,
        len: usize,
        depth: usize,
    ) -> Result<(TensorMeta, Place), &'static str> {
        if depth >= MAX_VIEW_DEPTH {
            return Err("views of views nested too deeply");
        }
        let source = view_source(&self.plan, index)
            .ok_or("a non-constant tensor without memory that no view produces")?;
        let (_, place) = self.tensor_at_depth(source, depth + 1)?;
        let same_size = match place {
            Place::Constant(_, l) | Place::Arena(_, l) => l == len,
            Place::Scalar(_) => false,
        };
        if !same_size {
            return Err("a view whose byte size differs from its input's");
        }
        Ok((meta, place))
    }

    fn program_base(&self) -> usize {
        self.program.bytes().as_ptr() as usize
    }

    fn constant_bytes(&self, start: usize, len: usize) -> &'a [u8] {
        &self.program.bytes()[start..start + len]
    }

    fn io_value(&self, what: &'static str, index: usize) -> Result<u32, ExecError> {
        let list = if what == "input" {
            self.plan.inputs()
        } else {
            self.plan.outputs()
        };
        list.get(index)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(ExecError::NoSuchIo { what, index })
    }

    /// Number of instructions in the plan, including those that compute nothing.
    pub fn instructions(&self) -> usize {
        self.plan.instructions_len()
    }

    /// The op name of instruction `i`, or None when it computes nothing.
    pub fn instruction_name(&self, i: usize) -> Option<&'static str> {
        self.steps.get(i).copied().flatten().map(|s| s.name())
    }

    pub fn inputs(&self) -> usize {
        self.plan.inputs().len()
    }

    pub fn outputs(&self) -> usize {
        self.plan.outputs().len()
    }

    pub fn input_meta(&self, i: usize) -> Option<TensorMeta> {
        let v = self.io_value("input", i).ok()?;
        self.tensor(v).ok().map(|(m, _)| m)
    }

    pub fn output_meta(&self, i: usize) -> Option<TensorMeta> {
        let v = self.io_value("output", i).ok()?;
        self.tensor(v).ok().map(|(m, _)| m)
    }

    /// Copies `bytes` (little-endian elements) into input `i`.
    pub fn set_input(&mut self, i: usize, bytes: &[u8]) -> Result<(), ExecError> {
        let v = self.io_value("input", i)?;
        let (_, place) = self.tensor(v).map_err(|_| ExecError::Value { index: v })?;
        match place {
            Place::Arena(start, len) => {
                if bytes.len() != len {
                    return Err(ExecError::InputSize {
                        index: i,
                        expected: len,
                        given: bytes.len(),
                    });
                }
                self.arena[start..start + len].copy_from_slice(bytes);
                Ok(())
            }
            Place::Constant(..) | Place::Scalar(_) => Err(ExecError::NotWritable {
                instruction: 0,
                value: v,
            }),
        }
    }

    pub fn set_input_f32(&mut self, i: usize, v: &[f32]) -> Result<(), ExecError> {
        self.set_typed(i, DType::F32, v.len(), |dst| {
            for (d, x) in dst.chunks_exact_mut(4).zip(v) {
                d.copy_from_slice(&x.to_le_bytes());
            }
        })
    }

    pub fn set_input_i64(&mut self, i: usize, v: &[i64]) -> Result<(), ExecError> {
        self.set_typed(i, DType::I64, v.len(), |dst| {
            for (d, x) in dst.chunks_exact_mut(8).zip(v) {
                d.copy_from_slice(&x.to_le_bytes());
            }
        })
    }

    fn set_typed(
        &mut self,
        i: usize,
        dtype: DType,
        n: usize,
        write: impl FnOnce(&mut [u8]),
    ) -> Result<(), ExecError> {
        let v = self.io_value("input", i)?;
        let (meta, place) = self.tensor(v).map_err(|_| ExecError::Value { index: v })?;
        if meta.dtype != dtype {
            return Err(ExecError::InputType { index: i });
        }
        let (start, len) = match place {
            Place::Arena(s, l) => (s, l),
            Place::Constant(..) | Place::Scalar(_) => {
                return Err(ExecError::NotWritable {
                    instruction: 0,
                    value: v,
                })
            }
        };
        if n * elem_size(dtype) != len {
            return Err(ExecError::InputSize {
                index: i,
                expected: len / elem_size(dtype),
                given: n,
            });
        }
        write(&mut self.arena[start..start + len]);
        Ok(())
    }

    /// The bytes of output `i` (valid after `execute`).
    pub fn output(&self, i: usize) -> Result<&[u8], ExecError> {
        let v = self.io_value("output", i)?;
        let (_, place) = self.tensor(v).map_err(|_| ExecError::Value { index: v })?;
        match place {
            Place::Arena(s, l) => Ok(&self.arena[s..s + l]),
            Place::Constant(s, l) => Ok(self.constant_bytes(s, l)),
            Place::Scalar(_) => Err(ExecError::Value { index: v }),
        }
    }

    /// Output `i` as f32 values; an error when it holds another element type.
    pub fn output_f32(&self, i: usize) -> Result<&[f32], ExecError> {
        let m = self.output_meta(i).ok_or(ExecError::NoSuchIo {
            what: "output",
            index: i,
        })?;
        if m.dtype != DType::F32 {
            return Err(ExecError::InputType { index: i });
        }
        let bytes = self.output(i)?;
        ops::as_f32(bytes).ok_or(ExecError::InputType { index: i })
    }

    /// Output `i` as i64 values; an error when it holds another element type.
    pub fn output_i64(&self, i: usize) -> Result<&[i64], ExecError> {
        let m = self.output_meta(i).ok_or(ExecError::NoSuchIo {
            what: "output",
            index: i,
        })?;
        if m.dtype != DType::I64 {
            return Err(ExecError::InputType { index: i });
        }
        let bytes = self.output(i)?;
        ops::as_i64(bytes).ok_or(ExecError::InputType { index: i })
    }

    /// Runs the method once. Set every input before each run: the memory plan may give an
    /// input's bytes to a later tensor once the program has read it.
    pub fn execute(&mut self) -> Result<(), ExecError> {
        self.execute_observed(&mut NoObserver)
    }

    /// Runs the method once, telling `obs` about each instruction.
    pub fn execute_observed(&mut self, obs: &mut dyn Observer) -> Result<(), ExecError> {
        let steps = self.steps;
        for (i, step) in steps.iter().enumerate() {
            let Some(step) = step else { continue };
            obs.before(i, step);
            self.run_step(i, step)?;
            obs.after(i, step);
        }
        Ok(())
    }

    /// Whether `step` is a reshape whose output is its input's bytes (an `et_view`), so
    /// running it changes nothing.
    fn is_view_of_input(&self, step: &Step) -> bool {
        matches!(step.kind, Kind::Reshape)
            && match (self.tensor(step.output), self.tensor(step.inputs[0])) {
                (Ok((_, a)), Ok((_, b))) => a == b,
                _ => false,
            }
    }

    fn run_step(&mut self, i: usize, step: &Step) -> Result<(), ExecError> {
        if self.is_view_of_input(step) {
            return Ok(());
        }
        if let Kind::Split { axis } = step.kind {
            return self.run_split(i, step, axis);
        }
        let (out_meta, out_place) = self
            .tensor(step.output)
            .map_err(|_| ExecError::Value { index: step.output })?;
        let (o_start, o_len) = match out_place {
            Place::Arena(s, l) => (s, l),
            Place::Constant(..) | Place::Scalar(_) => {
                return Err(ExecError::NotWritable {
                    instruction: i,
                    value: step.output,
                })
            }
        };
        let o_end = o_start + o_len;

        // Gather the operands' places first, so the arena is split only once. Only a
        // concatenation can have more than `MAX_INPUTS` operands; every other step fills a
        // small array, because initializing `MAX_LIST` entries per step cost more than many
        // kernels.
        let mut small_places = [(out_meta, Place::Constant(0, 0), 0u32); MAX_INPUTS];
        let mut big_places;
        let places: &mut [(TensorMeta, Place, u32)] = if matches!(step.kind, Kind::Concat { .. }) {
            big_places = [(out_meta, Place::Constant(0, 0), 0u32); MAX_LIST];
            &mut big_places
        } else {
            &mut small_places
        };
        let cap = places.len();
        let mut n = 0;
        let mut too_many = false;
        let mut unresolved = None;
        self.for_each_operand(step, |v| {
            if n == cap {
                too_many = true;
                return;
            }
            match self.operand(v) {
                Ok((m, p)) => {
                    places[n] = (m, p, v);
                    n += 1;
                }
                Err(_) => unresolved = unresolved.or(Some(v)),
            }
        })
        .map_err(|_| ExecError::Value {
            index: step.inputs[0],
        })?;
        if too_many {
            return Err(ExecError::TooManyInputs { instruction: i });
        }
        if let Some(v) = unresolved {
            return Err(ExecError::Value { index: v });
        }
        let places = &places[..n];

        // A view whose output lies inside its input, or a concatenation whose inputs were all
        // written inside its output, already holds its result: the planner aliased them.
        let inside = |p: &Place| matches!(*p, Place::Arena(s, l) if s <= o_start && o_end <= s + l);
        let within = |p: &Place| matches!(*p, Place::Arena(s, l) if o_start <= s && s + l <= o_end);
        match step.kind {
            Kind::Reshape | Kind::Slice { .. } if places.first().is_some_and(|p| inside(&p.1)) => {
                return Ok(());
            }
            Kind::Concat { .. } if !places.is_empty() && places.iter().all(|p| within(&p.1)) => {
                return Ok(());
            }
            _ => {}
        }

        let blob = self.program.bytes();
        let (lo, rest) = self.arena.split_at_mut(o_start);
        let (y, hi) = rest.split_at_mut(o_len);
        let lo: &[u8] = lo;
        let hi: &[u8] = hi;
        let mut words = [Word([0; 8]); MAX_INPUTS];
        for (w, &(_, place, _)) in words.iter_mut().zip(places) {
            if let Place::Scalar(b) = place {
                w.0 = b;
            }
        }
        let mut small_ins = [In::InPlace(out_meta); MAX_INPUTS];
        let mut big_ins;
        let ins: &mut [In] = if n > MAX_INPUTS {
            big_ins = [In::InPlace(out_meta); MAX_LIST];
            &mut big_ins
        } else {
            &mut small_ins
        };
        for (k, &(meta, place, v)) in places.iter().enumerate() {
            ins[k] = match place {
                Place::Constant(s, l) => In::Tensor(meta, &blob[s..s + l]),
                Place::Scalar(_) if k < MAX_INPUTS => {
                    In::Tensor(meta, &words[k].0[..super::ops::dtype_size(meta.dtype)])
                }
                Place::Scalar(_) => return Err(ExecError::Value { index: v }),
                Place::Arena(s, l) if s == o_start && l == o_len => In::InPlace(meta),
                Place::Arena(s, l) if s + l <= o_start => In::Tensor(meta, &lo[s..s + l]),
                Place::Arena(s, l) if s >= o_end => In::Tensor(meta, &hi[s - o_end..s - o_end + l]),
                Place::Arena(..) => {
                    return Err(ExecError::Overlap {
                        instruction: i,
                        value: v,
                    })
                }
            };
        }
        ops::run(step, &ins[..n], out_meta, y).map_err(|error| ExecError::Op {
            instruction: i,
            op: step.kind.name(),
            error,
        })
    }
}
