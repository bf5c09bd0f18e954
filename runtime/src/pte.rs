//! A validating reader of ExecuTorch `.pte` programs that needs only `core`: `Program::parse`
//! checks every byte the accessors can reach, so the accessors return plain values.
//! Invariant: after `parse` succeeds, no accessor can index outside the input, and every index
//! a plan holds (values, operators, instructions, memory ids, constants) is in range.
//!
//! The file is a FlatBuffer whose root is `executorch_flatbuffer::Program` (file identifier
//! `ET12` at bytes 4..8), with ExecuTorch's extended header `eh00` inserted at byte 8: magic (4),
//! header length u32 (4), program size u64 (8), segment base offset u64 (8), segment data size
//! u64 (8), all little-endian. Data segments follow the program at the segment base offset.
//! The schema has no recursive types the reader follows, so no recursion is involved and the
//! work is linear in the number of reachable objects.

use core::fmt;

/// The largest tensor rank the reader accepts; ExecuTorch's runtime has the same limit.
pub const MAX_RANK: usize = 8;

const HEADER_AT: usize = 8;
const HEADER_MIN_LEN: u32 = 24;
const HEADER_FULL_LEN: u32 = 32;

/// Why a `.pte` file was rejected. Every variant names the byte offset or the plan element at
/// fault so that a corrupt file can be located with a hex dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteError {
    /// The file cannot hold the FlatBuffer root, the identifier and the extended header.
    TooShort { len: usize },
    /// Bytes 4..8 are not `ET12`.
    Identifier { found: [u8; 4] },
    /// The extended header at byte 8 is absent or inconsistent with the file.
    Header {
        reason: &'static str,
        value: u64,
        limit: u64,
    },
    /// An object lies (partly) outside the bytes it must live in.
    OutOfBounds {
        what: &'static str,
        at: u64,
        len: u64,
        limit: u64,
    },
    /// A table's vtable is malformed.
    Vtable { at: usize },
    /// A scalar, table or vector is not aligned to its size from the start of the file, as
    /// the FlatBuffers verifier ExecuTorch runs requires.
    Misaligned {
        what: &'static str,
        at: usize,
        align: usize,
    },
    /// A union type tag names no member the reader knows.
    UnionTag {
        what: &'static str,
        at: usize,
        tag: u8,
    },
    /// A string is not UTF-8 or not NUL-terminated.
    Text { what: &'static str, at: usize },
    /// A field the runtime needs is absent.
    Missing { what: &'static str, at: usize },
    /// A plan has other than exactly one chain.
    Chains { plan: usize, count: usize },
    /// An index stored in a plan is out of range.
    Index {
        plan: usize,
        site: &'static str,
        item: usize,
        index: i64,
        limit: usize,
    },
    /// A tensor value is malformed.
    Tensor {
        plan: usize,
        value: usize,
        fault: TensorFault,
    },
    /// The constant segment description is inconsistent.
    Constants {
        reason: &'static str,
        value: u64,
        limit: u64,
    },
}

/// What is wrong with a tensor value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorFault {
    Rank(usize),
    NegativeSize {
        dim: usize,
        size: i32,
    },
    DimOrder,
    ScalarType(i8),
    TooLarge,
    MemoryId {
        id: u32,
        count: usize,
    },
    PlannedOutside {
        start: u64,
        end: u64,
        size: i64,
    },
    ConstantIndex {
        index: u32,
        count: usize,
    },
    ConstantOutside {
        start: u64,
        end: u64,
        segment: usize,
    },
}

impl fmt::Display for PteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PteError::TooShort { len } => write!(
                f,
                "file is {len} bytes, too short for a FlatBuffer root, identifier and extended header (40 bytes)"
            ),
            // The bytes one by one, as `{:?}` would show them: array `Debug` alone brings in
            // the debug-builder machinery, 1.7 KB of a size-optimized runner.
            PteError::Identifier { found } => write!(
                f,
                "bytes 4..8 are [{}, {}, {}, {}], not the ExecuTorch identifier \"ET12\"",
                found[0], found[1], found[2], found[3]
            ),
            PteError::Header { reason, value, limit } => {
                write!(f, "extended header at byte 8: {reason} ({value} vs {limit})")
            }
            PteError::OutOfBounds { what, at, len, limit } => write!(
                f,
                "{what} (bytes {at}..{}) lies outside the program ({limit} bytes)",
                at.saturating_add(len)
            ),
            PteError::Vtable { at } => write!(f, "table at byte {at} has a malformed vtable"),
            PteError::Misaligned { what, at, align } => {
                write!(f, "{what} at byte {at} is not {align}-byte aligned")
            }
            PteError::UnionTag { what, at, tag } => {
                write!(f, "{what} at byte {at} has unknown union tag {tag}")
            }
            PteError::Text { what, at } => {
                write!(f, "{what} at byte {at} is not a NUL-terminated UTF-8 string")
            }
            PteError::Missing { what, at } => {
                write!(f, "table at byte {at} lacks its required field {what}")
            }
            PteError::Chains { plan, count } => {
                write!(f, "plan {plan} has {count} chains; exactly one is supported")
            }
            PteError::Index { plan, site, item, index, limit } => write!(
                f,
                "plan {plan} {site} {item}: index {index} is out of range (0..{limit})"
            ),
            PteError::Tensor { plan, value, fault } => {
                write!(f, "plan {plan} value {value}: ")?;
                match fault {
                    TensorFault::Rank(r) => write!(f, "tensor rank {r} exceeds {MAX_RANK}"),
                    TensorFault::NegativeSize { dim, size } => {
                        write!(f, "tensor size {size} of dimension {dim} is negative")
                    }
                    TensorFault::DimOrder => {
                        write!(f, "tensor dim_order is not a permutation of 0..rank")
                    }
                    TensorFault::ScalarType(t) => write!(f, "unsupported scalar type {t}"),
                    TensorFault::TooLarge => write!(f, "tensor byte size overflows u64"),
                    TensorFault::MemoryId { id, count } => write!(
                        f,
                        "tensor memory id {id} is not one of the plan's {count} buffers (id 0 is reserved)"
                    ),
                    TensorFault::PlannedOutside { start, end, size } => write!(
                        f,
                        "planned tensor (bytes {start}..{end}) lies outside its buffer ({size} bytes)"
                    ),
                    TensorFault::ConstantIndex { index, count } => write!(
                        f,
                        "tensor data_buffer_idx {index} is not one of the {count} constant offsets"
                    ),
                    TensorFault::ConstantOutside { start, end, segment } => write!(
                        f,
                        "tensor data (bytes {start}..{end}) lies outside the constant segment ({segment} bytes)"
                    ),
                }
            }
            PteError::Constants { reason, value, limit } => {
                write!(f, "constant segment: {reason} ({value} vs {limit})")
            }
        }
    }
}

/// Element bytes of the c10 scalar types the runtime supports (`scalar_type.fbs` codes).
pub fn scalar_type_size(t: i8) -> Option<usize> {
    match t {
        0 | 1 | 11 => Some(1), // Byte, Char, Bool
        2 | 5 | 15 => Some(2), // Short, Half, BFloat16
        3 | 6 => Some(4),      // Int, Float
        4 | 7 => Some(8),      // Long, Double
        _ => None,
    }
}

type R<T> = Result<T, PteError>;

fn le<const N: usize>(buf: &[u8], at: usize, what: &'static str) -> R<[u8; N]> {
    let end = at.checked_add(N);
    match end.and_then(|e| buf.get(at..e)) {
        Some(s) => {
            let mut out = [0u8; N];
            out.copy_from_slice(s);
            Ok(out)
        }
        None => Err(PteError::OutOfBounds {
            what,
            at: at as u64,
            len: N as u64,
            limit: buf.len() as u64,
        }),
    }
}

fn rd_u16(buf: &[u8], at: usize) -> R<u16> {
    le::<2>(buf, at, "vtable entry").map(u16::from_le_bytes)
}
fn rd_u32(buf: &[u8], at: usize, what: &'static str) -> R<u32> {
    le::<4>(buf, at, what).map(u32::from_le_bytes)
}

/// A table after its vtable has been checked.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vt: usize,
    vt_len: usize,
    tbl_len: usize,
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], pos: usize) -> R<Table<'a>> {
        aligned("table", pos, 4)?;
        let soff = i32::from_le_bytes(le::<4>(buf, pos, "table")?);
        let vt = (pos as i64)
            .checked_sub(soff as i64)
            .filter(|v| *v >= 0 && (*v as u64) < buf.len() as u64)
            .ok_or(PteError::Vtable { at: pos })? as usize;
        aligned("vtable", vt, 2)?;
        let vt_len = rd_u16(buf, vt)? as usize;
        let tbl_len = rd_u16(buf, vt + 2)? as usize;
        if vt_len < 4 || !vt_len.is_multiple_of(2) || tbl_len < 4 {
            return Err(PteError::Vtable { at: pos });
        }
        if vt.checked_add(vt_len).is_none_or(|e| e > buf.len()) {
            return Err(PteError::OutOfBounds {
                what: "vtable",
                at: vt as u64,
                len: vt_len as u64,
                limit: buf.len() as u64,
            });
        }
        if pos.checked_add(tbl_len).is_none_or(|e| e > buf.len()) {
            return Err(PteError::OutOfBounds {
                what: "table",
                at: pos as u64,
                len: tbl_len as u64,
                limit: buf.len() as u64,
            });
        }
        Ok(Table {
            buf,
            pos,
            vt,
            vt_len,
            tbl_len,
        })
    }

    /// The absolute position of field `i` of `size` bytes, if present.
    fn field(&self, i: usize, size: usize) -> R<Option<usize>> {
        let slot = 4 + 2 * i;
        if slot + 2 > self.vt_len {
            return Ok(None);
        }
        let off = rd_u16(self.buf, self.vt + slot)? as usize;
        if off == 0 {
            return Ok(None);
        }
        if off < 4 || off + size > self.tbl_len {
            return Err(PteError::Vtable { at: self.pos });
        }
        aligned("table field", self.pos + off, size)?;
        Ok(Some(self.pos + off))
    }

    fn scalar<const N: usize>(&self, i: usize) -> R<Option<[u8; N]>> {
        match self.field(i, N)? {
            Some(p) => le::<N>(self.buf, p, "table field").map(Some),
            None => Ok(None),
        }
    }
    fn u8(&self, i: usize) -> R<u8> {
        Ok(self.scalar::<1>(i)?.map_or(0, |b| b[0]))
    }
    fn i32(&self, i: usize) -> R<i32> {
        Ok(self.scalar::<4>(i)?.map_or(0, i32::from_le_bytes))
    }
    fn u32(&self, i: usize) -> R<u32> {
        Ok(self.scalar::<4>(i)?.map_or(0, u32::from_le_bytes))
    }
    fn u64(&self, i: usize) -> R<u64> {
        Ok(self.scalar::<8>(i)?.map_or(0, u64::from_le_bytes))
    }

    /// Follows the offset in field `i` to the object it names.
    fn target(&self, i: usize, what: &'static str) -> R<Option<usize>> {
        match self.field(i, 4)? {
            Some(p) => follow(self.buf, p, what).map(Some),
            None => Ok(None),
        }
    }
    fn table(&self, i: usize, what: &'static str) -> R<Option<Table<'a>>> {
        match self.target(i, what)? {
            Some(p) => Table::at(self.buf, p).map(Some),
            None => Ok(None),
        }
    }
    /// A vector of `elem`-byte scalars; absent vectors read as empty.
    fn vector(&self, i: usize, elem: usize, what: &'static str) -> R<&'a [u8]> {
        match self.target(i, what)? {
            Some(p) => vector_at(self.buf, p, elem, what),
            None => Ok(&[]),
        }
    }
    fn string(&self, i: usize, what: &'static str) -> R<Option<&'a str>> {
        match self.target(i, what)? {
            Some(p) => string_at(self.buf, p, what).map(Some),
            None => Ok(None),
        }
    }
}

fn follow(buf: &[u8], p: usize, what: &'static str) -> R<usize> {
    let off = rd_u32(buf, p, what)? as usize;
    match p.checked_add(off) {
        Some(t) if t < buf.len() => Ok(t),
        _ => Err(PteError::OutOfBounds {
            what,
            at: p as u64 + off as u64,
            len: 4,
            limit: buf.len() as u64,
        }),
    }
}

fn aligned(what: &'static str, at: usize, align: usize) -> R<()> {
    if at.is_multiple_of(align) {
        Ok(())
    } else {
        Err(PteError::Misaligned { what, at, align })
    }
}

fn vector_at<'a>(buf: &'a [u8], p: usize, elem: usize, what: &'static str) -> R<&'a [u8]> {
    aligned(what, p, 4)?;
    aligned(what, p + 4, elem)?;
    let n = rd_u32(buf, p, what)? as u64;
    let bytes = n * elem as u64;
    let start = p as u64 + 4;
    let oob = PteError::OutOfBounds {
        what,
        at: start,
        len: bytes,
        limit: buf.len() as u64,
    };
    let end = start.checked_add(bytes).ok_or(oob)?;
    if end > buf.len() as u64 {
        return Err(oob);
    }
    buf.get(start as usize..end as usize).ok_or(oob)
}

fn string_at<'a>(buf: &'a [u8], p: usize, what: &'static str) -> R<&'a str> {
    let s = vector_at(buf, p, 1, what)?;
    let nul = p + 4 + s.len();
    if buf.get(nul) != Some(&0) {
        return Err(PteError::Text { what, at: p });
    }
    core::str::from_utf8(s).map_err(|_| PteError::Text { what, at: p })
}

/// The `i`th table of a vector of tables starting at `elems` (the bytes after the length).
fn table_in<'a>(buf: &'a [u8], elems: &'a [u8], i: usize, what: &'static str) -> R<Table<'a>> {
    let at = elems_pos(buf, elems) + 4 * i;
    let p = follow(buf, at, what)?;
    Table::at(buf, p)
}

/// Where `elems` (a subslice of `buf`) begins in `buf`.
fn elems_pos(buf: &[u8], elems: &[u8]) -> usize {
    (elems.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize)
}

macro_rules! le_view {
    ($name:ident, $t:ty, $n:expr) => {
        /// A little-endian view over a FlatBuffers vector's elements.
        #[derive(Clone, Copy, Debug)]
        pub struct $name<'a>(&'a [u8]);

        impl<'a> $name<'a> {
            pub fn len(&self) -> usize {
                self.0.len() / $n
            }
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
            pub fn get(&self, i: usize) -> Option<$t> {
                let s = self
                    .0
                    .get(i.checked_mul($n)?..i.checked_mul($n)?.checked_add($n)?)?;
                let mut b = [0u8; $n];
                b.copy_from_slice(s);
                Some(<$t>::from_le_bytes(b))
            }
            pub fn iter(&self) -> impl Iterator<Item = $t> + 'a {
                let v = *self;
                (0..v.len()).filter_map(move |i| v.get(i))
            }
        }
    };
}
le_view!(I32s, i32, 4);
le_view!(I64s, i64, 8);
le_view!(F64s, f64, 8);

/// A validated program.
#[derive(Clone, Copy)]
pub struct Program<'a> {
    /// The whole file: the FlatBuffer and the segments after it.
    file: &'a [u8],
    buf: &'a [u8],
    version: u32,
    plans: &'a [u8],
    offsets: &'a [u8],
    segment: &'a [u8],
}

/// One validated execution plan (method).
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    buf: &'a [u8],
    name: &'a str,
    values: &'a [u8],
    inputs: &'a [u8],
    outputs: &'a [u8],
    chain_inputs: &'a [u8],
    chain_outputs: &'a [u8],
    instructions: &'a [u8],
    operators: &'a [u8],
    sizes: &'a [u8],
}

/// One value of a plan.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Double(f64),
    Tensor(TensorInfo<'a>),
    String(&'a str),
    IntList(I64s<'a>),
    DoubleList(F64s<'a>),
    BoolList(&'a [u8]),
    TensorList(I32s<'a>),
    /// Items are value indices, or -1 for an absent (`None`) tensor.
    OptionalTensorList(I32s<'a>),
}

/// A tensor value's metadata.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    pub scalar_type: i8,
    pub sizes: I32s<'a>,
    pub dim_order: &'a [u8],
    pub data_buffer_idx: u32,
    /// `(memory_id, offset)` of a planned tensor.
    pub allocation: Option<(u32, u64)>,
    pub storage_offset: i32,
}

impl TensorInfo<'_> {
    /// The tensor's byte size; `None` on overflow or an unsupported scalar type (both rejected
    /// by `Program::parse`).
    pub fn nbytes(&self) -> Option<u64> {
        let mut n = scalar_type_size(self.scalar_type)? as u64;
        for s in self.sizes.iter() {
            n = n.checked_mul(u64::try_from(s).ok()?)?;
        }
        Some(n)
    }
}

/// One instruction of a plan's chain.
#[derive(Clone, Copy, Debug)]
pub enum Instruction<'a> {
    Kernel { op_index: u32, args: I32s<'a> },
    Delegate { delegate_index: u32, args: I32s<'a> },
    Move { from: u32, to: u32 },
    JumpFalse { cond: u32, destination: u32 },
    Free { value: u32 },
}

impl<'a> Program<'a> {
    /// Checks the whole file; see the module doc for what is checked.
    pub fn parse(bytes: &'a [u8]) -> Result<Program<'a>, PteError> {
        if bytes.len() < HEADER_AT + HEADER_FULL_LEN as usize {
            return Err(PteError::TooShort { len: bytes.len() });
        }
        let id = le::<4>(bytes, 4, "identifier")?;
        if &id != b"ET12" {
            return Err(PteError::Identifier { found: id });
        }
        // The extended header is optional: ExecuTorch writes files without it when nothing
        // lives in segments, and then the whole file is the program.
        let magic = le::<4>(bytes, HEADER_AT, "extended header")?;
        let (hlen, program_size, base, data_size) = if &magic == b"eh00" {
            let hlen = rd_u32(bytes, HEADER_AT + 4, "extended header")?;
            if hlen < HEADER_MIN_LEN {
                return Err(PteError::Header {
                    reason: "header length below minimum",
                    value: hlen as u64,
                    limit: HEADER_MIN_LEN as u64,
                });
            }
            let u64_at = |at| le::<8>(bytes, at, "extended header").map(u64::from_le_bytes);
            let data_size = if hlen >= HEADER_FULL_LEN {
                u64_at(HEADER_AT + 24)?
            } else {
                0
            };
            (
                hlen,
                u64_at(HEADER_AT + 8)?,
                u64_at(HEADER_AT + 16)?,
                data_size,
            )
        } else {
            (0, bytes.len() as u64, 0, 0)
        };
        let file = bytes.len() as u64;
        if program_size > file {
            return Err(PteError::Header {
                reason: "program size exceeds the file",
                value: program_size,
                limit: file,
            });
        }
        let header_end = HEADER_AT as u64 + hlen as u64;
        if program_size < header_end {
            return Err(PteError::Header {
                reason: "program size is smaller than the header",
                value: program_size,
                limit: header_end,
            });
        }
        if base != 0 && base < program_size {
            return Err(PteError::Header {
                reason: "segment base offset lies inside the program",
                value: base,
                limit: program_size,
            });
        }
        if base.checked_add(data_size).is_none_or(|e| e > file) {
            return Err(PteError::Header {
                reason: "segment data extends past the file",
                value: base.saturating_add(data_size),
                limit: file,
            });
        }
        let buf = bytes
            .get(..program_size as usize)
            .ok_or(PteError::TooShort { len: 0 })?;
        let root = Table::at(buf, follow(buf, 0, "root table")?)?;
        let version = root.u32(0)?;
        let plans = root.vector(1, 4, "execution_plan")?;

        // Constants stored inside the FlatBuffer (`Program.constant_buffer`, entry 0 being a
        // placeholder) are a deprecated layout that ExecuTorch's own runtime refuses by default.
        let inline = root.vector(2, 4, "constant_buffer")?;
        if inline.len() > 4 {
            return Err(PteError::Constants {
                reason:
                    "constants stored inline in constant_buffer (deprecated; re-export the program)",
                value: (inline.len() / 4) as u64,
                limit: 1,
            });
        }

        // The constant segment: Program.segments[constant_segment.segment_index].
        let segments = root.vector(4, 4, "segments")?;
        let (mut offsets, mut segment): (&[u8], &[u8]) = (&[], &[]);
        if let Some(cs) = root.table(5, "constant_segment")? {
            offsets = cs.vector(1, 8, "constant offsets")?;
            if offsets.len() > 8 {
                let idx = cs.u32(0)? as usize;
                let count = segments.len() / 4;
                if idx >= count {
                    return Err(PteError::Constants {
                        reason: "segment index out of range",
                        value: idx as u64,
                        limit: count as u64,
                    });
                }
                let seg = table_in(buf, segments, idx, "data segment")?;
                let (off, size) = (seg.u64(0)?, seg.u64(1)?);
                let start = base.checked_add(off);
                let end = start.and_then(|s| s.checked_add(size));
                match (start, end) {
                    (Some(s), Some(e)) if e <= file && (size == 0 || s >= program_size) => {
                        segment = bytes.get(s as usize..e as usize).unwrap_or(&[]);
                    }
                    _ => {
                        return Err(PteError::OutOfBounds {
                            what: "constant segment",
                            at: base.saturating_add(off),
                            len: size,
                            limit: file,
                        })
                    }
                }
                for o in I64s(offsets).iter().skip(1) {
                    if (o as u64) > segment.len() as u64 {
                        return Err(PteError::Constants {
                            reason: "an offset lies past the segment end",
                            value: o as u64,
                            limit: segment.len() as u64,
                        });
                    }
                }
            }
        }
        let program = Program {
            file: bytes,
            buf,
            version,
            plans,
            offsets,
            segment,
        };
        for i in 0..plans.len() / 4 {
            program.check_plan(i)?;
        }
        Ok(program)
    }

    fn load_plan(&self, i: usize) -> R<Plan<'a>> {
        let buf = self.buf;
        let t = table_in(buf, self.plans, i, "execution plan")?;
        let name = t.string(0, "plan name")?.ok_or(PteError::Missing {
            what: "name",
            at: t.pos,
        })?;
        let values = t.vector(2, 4, "values")?;
        let inputs = t.vector(3, 4, "inputs")?;
        let outputs = t.vector(4, 4, "outputs")?;
        let chains = t.vector(5, 4, "chains")?;
        let operators = t.vector(6, 4, "operators")?;
        let sizes = t.vector(8, 8, "non_const_buffer_sizes")?;
        if chains.len() != 4 {
            return Err(PteError::Chains {
                plan: i,
                count: chains.len() / 4,
            });
        }
        let chain = table_in(buf, chains, 0, "chain")?;
        let chain_inputs = chain.vector(0, 4, "chain inputs")?;
        let chain_outputs = chain.vector(1, 4, "chain outputs")?;
        let instructions = chain.vector(2, 4, "instructions")?;
        Ok(Plan {
            buf,
            name,
            values,
            inputs,
            outputs,
            chain_inputs,
            chain_outputs,
            instructions,
            operators,
            sizes,
        })
    }

    fn check_plan(&self, pi: usize) -> R<()> {
        let plan = self.load_plan(pi)?;
        let nvalues = plan.values_len();
        let idx = |site, item, index: i64, limit: usize| {
            if index < 0 || index as u64 >= limit as u64 {
                Err(PteError::Index {
                    plan: pi,
                    site,
                    item,
                    index,
                    limit,
                })
            } else {
                Ok(())
            }
        };
        for (k, v) in plan.inputs().iter().enumerate() {
            idx("input", k, v as i64, nvalues)?;
        }
        for (k, v) in plan.outputs().iter().enumerate() {
            idx("output", k, v as i64, nvalues)?;
        }
        for (k, v) in plan.chain_inputs().iter().enumerate() {
            idx("chain input", k, v as i64, nvalues)?;
        }
        for (k, v) in plan.chain_outputs().iter().enumerate() {
            idx("chain output", k, v as i64, nvalues)?;
        }
        for k in 0..plan.operators_len() {
            let t = table_in(plan.buf, plan.operators, k, "operator")?;
            t.string(0, "operator name")?.ok_or(PteError::Missing {
                what: "operator name",
                at: t.pos,
            })?;
            t.string(1, "operator overload")?;
        }
        let sizes = plan.non_const_buffer_sizes();
        for k in 0..nvalues {
            match plan.load_value(k)? {
                Value::TensorList(l) => {
                    for v in l.iter() {
                        idx("value", k, v as i64, nvalues)?;
                    }
                }
                // An optional tensor list marks an absent item (`None`) with -1.
                Value::OptionalTensorList(l) => {
                    for v in l.iter().filter(|&v| v != -1) {
                        idx("value", k, v as i64, nvalues)?;
                    }
                }
                Value::Tensor(t) => self.check_tensor(pi, k, &t, sizes)?,
                _ => {}
            }
        }
        let ninstr = plan.instructions_len();
        for k in 0..ninstr {
            match plan.load_instruction(k)? {
                Instruction::Kernel { op_index, args } => {
                    idx(
                        "instruction",
                        k,
                        op_index as i32 as i64,
                        plan.operators_len(),
                    )?;
                    for a in args.iter() {
                        idx("instruction", k, a as i64, nvalues)?;
                    }
                }
                Instruction::Delegate { args, .. } => {
                    for a in args.iter() {
                        idx("instruction", k, a as i64, nvalues)?;
                    }
                }
                Instruction::Move { from, to } => {
                    idx("instruction", k, from as i32 as i64, nvalues)?;
                    idx("instruction", k, to as i32 as i64, nvalues)?;
                }
                Instruction::JumpFalse { cond, destination } => {
                    idx("instruction", k, cond as i32 as i64, nvalues)?;
                    idx("instruction", k, destination as i32 as i64, ninstr + 1)?;
                }
                Instruction::Free { value } => {
                    idx("instruction", k, value as i32 as i64, nvalues)?;
                }
            }
        }
        Ok(())
    }

    fn check_tensor(
        &self,
        plan: usize,
        value: usize,
        t: &TensorInfo<'a>,
        sizes: I64s<'a>,
    ) -> R<()> {
        let err = |fault| Err(PteError::Tensor { plan, value, fault });
        let rank = t.sizes.len();
        if rank > MAX_RANK {
            return err(TensorFault::Rank(rank));
        }
        for (dim, size) in t.sizes.iter().enumerate() {
            if size < 0 {
                return err(TensorFault::NegativeSize { dim, size });
            }
        }
        // An empty dim_order is accepted only for rank 0, where it is the identity.
        let mut seen = [false; MAX_RANK];
        if t.dim_order.len() != rank {
            return err(TensorFault::DimOrder);
        }
        for &d in t.dim_order {
            match seen.get_mut(d as usize) {
                Some(s) if (d as usize) < rank && !*s => *s = true,
                _ => return err(TensorFault::DimOrder),
            }
        }
        if scalar_type_size(t.scalar_type).is_none() {
            return err(TensorFault::ScalarType(t.scalar_type));
        }
        let Some(nbytes) = t.nbytes() else {
            return err(TensorFault::TooLarge);
        };
        if let Some((id, offset)) = t.allocation {
            let count = sizes.len();
            let size = match sizes.get(id as usize) {
                Some(s) if id != 0 => s,
                _ => return err(TensorFault::MemoryId { id, count }),
            };
            let end = offset.checked_add(nbytes);
            if end.is_none_or(|e| size < 0 || e > size as u64) {
                return err(TensorFault::PlannedOutside {
                    start: offset,
                    end: offset.saturating_add(nbytes),
                    size,
                });
            }
        } else if t.data_buffer_idx != 0 {
            let count = self.constants_len();
            let index = t.data_buffer_idx;
            let Some(start) = I64s(self.offsets).get(index as usize) else {
                return err(TensorFault::ConstantIndex { index, count });
            };
            let start = start as u64;
            let end = start.checked_add(nbytes);
            if end.is_none_or(|e| e > self.segment.len() as u64) {
                return err(TensorFault::ConstantOutside {
                    start,
                    end: start.saturating_add(nbytes),
                    segment: self.segment.len(),
                });
            }
        }
        Ok(())
    }

    /// The whole file the program was parsed from, segments included.
    pub fn bytes(&self) -> &'a [u8] {
        self.file
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn plans_len(&self) -> usize {
        self.plans.len() / 4
    }

    pub fn plan(&self, i: usize) -> Option<Plan<'a>> {
        if i >= self.plans_len() {
            return None;
        }
        self.load_plan(i).ok()
    }

    pub fn plan_named(&self, name: &str) -> Option<Plan<'a>> {
        (0..self.plans_len())
            .filter_map(|i| self.plan(i))
            .find(|p| p.name == name)
    }

    /// The constant for data_buffer_idx (≥1): bytes from its offset to the end of the constant
    /// segment; `None` for 0 or out of range. The format stores no sizes; a tensor's own byte
    /// size says how much of the slice it uses.
    pub fn constant(&self, data_buffer_idx: u32) -> Option<&'a [u8]> {
        if data_buffer_idx == 0 {
            return None;
        }
        let off = I64s(self.offsets).get(data_buffer_idx as usize)?;
        self.segment.get(usize::try_from(off).ok()?..)
    }

    /// Number of entries in `constant_segment.offsets`, including the reserved entry 0.
    pub fn constants_len(&self) -> usize {
        self.offsets.len() / 8
    }

    /// The offset of constant `data_buffer_idx` within the constant segment.
    pub fn constant_offset(&self, data_buffer_idx: u32) -> Option<u64> {
        I64s(self.offsets)
            .get(data_buffer_idx as usize)
            .map(|o| o as u64)
    }

    /// The bytes of the constant segment.
    pub fn constant_segment(&self) -> &'a [u8] {
        self.segment
    }
}

impl<'a> Plan<'a> {
    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn values_len(&self) -> usize {
        self.values.len() / 4
    }

    pub fn value(&self, i: usize) -> Option<Value<'a>> {
        if i >= self.values_len() {
            return None;
        }
        self.load_value(i).ok()
    }

    /// Whether value `i` is a tensor, from its union tag alone (the tensor's table is read,
    /// and validated, where the value is used). Decoding asks this for every tensor argument
    /// of every instruction on every run.
    pub fn is_tensor(&self, i: usize) -> Option<bool> {
        if i >= self.values_len() {
            return None;
        }
        let ev = table_in(self.buf, self.values, i, "value").ok()?;
        Some(ev.u8(0).ok()? == 5)
    }

    fn load_value(&self, i: usize) -> R<Value<'a>> {
        let buf = self.buf;
        let ev = table_in(buf, self.values, i, "value")?;
        let tag = ev.u8(0)?;
        if tag == 1 {
            return Ok(Value::Null);
        }
        if !(2..=11).contains(&tag) {
            return Err(PteError::UnionTag {
                what: "value",
                at: ev.pos,
                tag,
            });
        }
        let t = ev.table(1, "value")?.ok_or(PteError::Missing {
            what: "value",
            at: ev.pos,
        })?;
        Ok(match tag {
            2 => Value::Int(t.u64(0)? as i64),
            3 => Value::Bool(t.u8(0)? != 0),
            4 => Value::Double(f64::from_bits(t.u64(0)?)),
            5 => {
                let alloc = match t.table(6, "allocation_info")? {
                    Some(a) => {
                        let lo = a.u32(1)? as u64;
                        let hi = a.u32(2)? as u64;
                        Some((a.u32(0)?, (hi << 32) | lo))
                    }
                    None => None,
                };
                Value::Tensor(TensorInfo {
                    scalar_type: t.u8(0)? as i8,
                    storage_offset: t.i32(1)?,
                    sizes: I32s(t.vector(2, 4, "tensor sizes")?),
                    dim_order: t.vector(3, 1, "tensor dim_order")?,
                    data_buffer_idx: t.u32(5)?,
                    allocation: alloc,
                })
            }
            6 => Value::String(t.string(0, "string value")?.unwrap_or("")),
            7 => Value::IntList(I64s(t.vector(0, 8, "int list")?)),
            8 => Value::DoubleList(F64s(t.vector(0, 8, "double list")?)),
            9 => Value::BoolList(t.vector(0, 1, "bool list")?),
            10 => Value::TensorList(I32s(t.vector(0, 4, "tensor list")?)),
            _ => Value::OptionalTensorList(I32s(t.vector(0, 4, "optional tensor list")?)),
        })
    }

    pub fn inputs(&self) -> I32s<'a> {
        I32s(self.inputs)
    }

    pub fn outputs(&self) -> I32s<'a> {
        I32s(self.outputs)
    }

    /// Inputs of chain 0 (value indices).
    pub fn chain_inputs(&self) -> I32s<'a> {
        I32s(self.chain_inputs)
    }

    /// Outputs of chain 0 (value indices).
    pub fn chain_outputs(&self) -> I32s<'a> {
        I32s(self.chain_outputs)
    }

    /// Instructions of chain 0 (`parse` rejects plans with other than one chain).
    pub fn instructions_len(&self) -> usize {
        self.instructions.len() / 4
    }

    pub fn instruction(&self, i: usize) -> Option<Instruction<'a>> {
        if i >= self.instructions_len() {
            return None;
        }
        self.load_instruction(i).ok()
    }

    fn load_instruction(&self, i: usize) -> R<Instruction<'a>> {
        let ins = table_in(self.buf, self.instructions, i, "instruction")?;
        let tag = ins.u8(0)?;
        if !(1..=5).contains(&tag) {
            return Err(PteError::UnionTag {
                what: "instruction",
                at: ins.pos,
                tag,
            });
        }
        let t = ins
            .table(1, "instruction arguments")?
            .ok_or(PteError::Missing {
                what: "instr_args",
                at: ins.pos,
            })?;
        Ok(match tag {
            1 => Instruction::Kernel {
                op_index: t.i32(0)? as u32,
                args: I32s(t.vector(1, 4, "kernel arguments")?),
            },
            2 => Instruction::Delegate {
                delegate_index: t.i32(0)? as u32,
                args: I32s(t.vector(1, 4, "delegate arguments")?),
            },
            3 => Instruction::Move {
                from: t.i32(0)? as u32,
                to: t.i32(1)? as u32,
            },
            4 => Instruction::JumpFalse {
                cond: t.i32(0)? as u32,
                destination: t.i32(1)? as u32,
            },
            _ => Instruction::Free {
                value: t.i32(0)? as u32,
            },
        })
    }

    pub fn operators_len(&self) -> usize {
        self.operators.len() / 4
    }

    /// `(name, overload)` of operator `i`.
    pub fn operator(&self, i: usize) -> Option<(&'a str, &'a str)> {
        if i >= self.operators_len() {
            return None;
        }
        let t = table_in(self.buf, self.operators, i, "operator").ok()?;
        let name = t.string(0, "operator name").ok()??;
        let overload = t.string(1, "operator overload").ok()?.unwrap_or("");
        Some((name, overload))
    }

    pub fn non_const_buffer_sizes(&self) -> I64s<'a> {
        I64s(self.sizes)
    }
}
