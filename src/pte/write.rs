//! Serializes a `model::Program` into ExecuTorch's `.pte` layout: a FlatBuffer (root `Program`,
//! identifier `ET12`), the extended header `eh00` at byte 8, and one constant data segment.
//! Invariant: the output depends only on the `Program` (no hashing order, no addresses), every
//! scalar and vector is aligned to its own size from the file start, and every offset points
//! forward.
//!
//! The FlatBuffer is built front to back: a table is written with placeholder offsets, its
//! children are written after it and the placeholders are patched, so every `uoffset` is
//! positive as FlatBuffers requires. Each vtable sits before the first table that uses it and
//! is shared by later tables with the same layout.
//!
//! `Program.constant_buffer` (deprecated) is not written at all: ExecuTorch's `Program::load`
//! requires it to be absent or empty whenever `constant_segment.offsets` has more than the
//! reserved entry, and needs no placeholder `Buffer` at index 0. A program without constants
//! still gets `segments = [{offset 0, size 0}]` and `offsets = [0]`, as ExecuTorch writes it,
//! with a segment base offset of 0 in the header.

use std::collections::HashMap;

use super::model::{EValue, ExecutionPlan, Instruction, Program, Tensor};
use super::{CONSTANT_ALIGNMENT, SEGMENT_ALIGNMENT};

/// Size of ExecuTorch's extended header: magic, length, program size, segment base offset and
/// segment data size. 32 is a multiple of every alignment inside the FlatBuffer, which is why
/// ExecuTorch can insert it after the identifier without moving anything out of alignment.
pub const HEADER_LEN: usize = 32;

/// Where the FlatBuffer's objects begin: root offset, identifier, extended header.
const DATA_START: usize = 8 + HEADER_LEN;

#[derive(Clone, Copy)]
enum F {
    U8(u8),
    I32(i32),
    U32(u32),
    U64(u64),
    /// An offset to a child object, patched once the child is written.
    Ref,
}

impl F {
    fn size(self) -> usize {
        match self {
            F::U8(_) => 1,
            F::I32(_) | F::U32(_) | F::Ref => 4,
            F::U64(_) => 8,
        }
    }
}

struct Builder {
    buf: Vec<u8>,
    vtables: HashMap<Vec<u8>, usize>,
}

impl Builder {
    fn pad_to(&mut self, align: usize, rem: usize) {
        while self.buf.len() % align != rem {
            self.buf.push(0);
        }
    }

    /// Writes a table with `fields` given as `(slot, value)`; returns the absolute position of
    /// each field in input order (for patching `Ref`s) and the table's own position.
    fn table(&mut self, fields: &[(u16, F)]) -> (usize, Vec<usize>) {
        // Largest fields first, each at a multiple of its size from the table start; a table
        // with 8-byte fields starts 8-aligned, so those land 8-aligned in the file too.
        let mut order: Vec<usize> = (0..fields.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(fields[i].1.size()), fields[i].0));
        let mut rel = vec![0usize; fields.len()];
        let mut off = 4usize;
        for &i in &order {
            let s = fields[i].1.size();
            off = off.div_ceil(s) * s;
            rel[i] = off;
            off += s;
        }
        let has8 = fields.iter().any(|f| f.1.size() == 8);
        let tbl_len = off;
        let nslots = fields.iter().map(|f| f.0 as usize + 1).max().unwrap_or(0);
        let mut vt = Vec::with_capacity(4 + 2 * nslots);
        vt.extend_from_slice(&((4 + 2 * nslots) as u16).to_le_bytes());
        vt.extend_from_slice(&(tbl_len as u16).to_le_bytes());
        let mut slots = vec![0u16; nslots];
        for (i, f) in fields.iter().enumerate() {
            slots[f.0 as usize] = rel[i] as u16;
        }
        for s in slots {
            vt.extend_from_slice(&s.to_le_bytes());
        }
        let vt_pos = match self.vtables.get(&vt) {
            Some(&p) => p,
            None => {
                self.pad_to(2, 0);
                let p = self.buf.len();
                self.buf.extend_from_slice(&vt);
                self.vtables.insert(vt, p);
                p
            }
        };
        self.pad_to(if has8 { 8 } else { 4 }, 0);
        let pos = self.buf.len();
        self.buf.resize(pos + tbl_len, 0);
        self.buf[pos..pos + 4].copy_from_slice(&((pos - vt_pos) as i32).to_le_bytes());
        let mut at = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            let p = pos + rel[i];
            match f.1 {
                F::U8(v) => self.buf[p] = v,
                F::I32(v) => self.buf[p..p + 4].copy_from_slice(&v.to_le_bytes()),
                F::U32(v) => self.buf[p..p + 4].copy_from_slice(&v.to_le_bytes()),
                F::U64(v) => self.buf[p..p + 8].copy_from_slice(&v.to_le_bytes()),
                F::Ref => {}
            }
            at.push(p);
        }
        (pos, at)
    }

    /// Points the offset at `field` to the object at `target`, which must lie after it.
    fn patch(&mut self, field: usize, target: usize) {
        let rel = (target - field) as u32;
        self.buf[field..field + 4].copy_from_slice(&rel.to_le_bytes());
    }

    /// Writes a vector header for `n` elements of `elem` bytes and returns the element start.
    fn vec_start(&mut self, n: usize, elem: usize) -> usize {
        if elem == 8 {
            self.pad_to(8, 4);
        } else {
            self.pad_to(4, 0);
        }
        let pos = self.buf.len();
        self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        pos
    }

    fn vec_i32(&mut self, field: usize, v: &[i32]) {
        let pos = self.vec_start(v.len(), 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.patch(field, pos);
    }

    fn vec_i64(&mut self, field: usize, v: impl ExactSizeIterator<Item = [u8; 8]>) {
        let pos = self.vec_start(v.len(), 8);
        for x in v {
            self.buf.extend_from_slice(&x);
        }
        self.patch(field, pos);
    }

    fn vec_u8(&mut self, field: usize, v: &[u8]) {
        let pos = self.vec_start(v.len(), 1);
        self.buf.extend_from_slice(v);
        self.patch(field, pos);
    }

    fn string(&mut self, field: usize, s: &str) {
        self.vec_u8(field, s.as_bytes());
        // FlatBuffers strings carry a NUL after their bytes, outside the counted length.
        self.buf.push(0);
    }

    /// Writes a vector of offsets to tables; returns the position of each element slot.
    fn vec_refs(&mut self, field: usize, n: usize) -> Vec<usize> {
        let pos = self.vec_start(n, 4);
        self.patch(field, pos);
        let slots = (0..n).map(|i| pos + 4 + 4 * i).collect();
        self.buf.resize(pos + 4 + 4 * n, 0);
        slots
    }
}

/// The constant segment: bytes and `constant_segment.offsets` (entry 0 reserved, value 0).
fn constant_segment(p: &Program) -> (Vec<u8>, Vec<u64>) {
    let mut data = Vec::new();
    let mut offsets = vec![0u64];
    let mut seen: HashMap<blake3::Hash, Vec<usize>> = HashMap::new();
    for (i, c) in p.constants.iter().enumerate() {
        let h = blake3::hash(c);
        let same = seen
            .get(&h)
            .and_then(|prev| prev.iter().find(|&&j| p.constants[j] == *c));
        if let Some(&j) = same {
            offsets.push(offsets[j + 1]);
            continue;
        }
        seen.entry(h).or_default().push(i);
        // 64-byte offsets let the runtime hand constants straight to SIMD loads and keep
        // every tensor within whole cache lines when the segment is memory-mapped.
        data.resize(
            data.len().div_ceil(CONSTANT_ALIGNMENT) * CONSTANT_ALIGNMENT,
            0,
        );
        offsets.push(data.len() as u64);
        data.extend_from_slice(c);
    }
    (data, offsets)
}

/// Serializes `p`. Same `Program`, same bytes.
pub fn write(p: &Program) -> Vec<u8> {
    let (segment, offsets) = constant_segment(p);
    let mut b = Builder {
        buf: vec![0u8; DATA_START],
        vtables: HashMap::new(),
    };
    b.buf[4..8].copy_from_slice(b"ET12");

    let (root, f) = b.table(&[
        (0, F::U32(p.version)),
        (1, F::Ref),
        (4, F::Ref),
        (5, F::Ref),
    ]);
    b.patch(0, root);
    let (plans_f, segs_f, cs_f) = (f[1], f[2], f[3]);

    let slots = b.vec_refs(plans_f, p.execution_plan.len());
    for (slot, plan) in slots.into_iter().zip(&p.execution_plan) {
        write_plan(&mut b, slot, plan);
    }

    let seg_slots = b.vec_refs(segs_f, 1);
    let (seg, _) = b.table(&[(0, F::U64(0)), (1, F::U64(segment.len() as u64))]);
    b.patch(seg_slots[0], seg);

    let (cs, f) = b.table(&[(0, F::U32(0)), (1, F::Ref)]);
    b.patch(cs_f, cs);
    b.vec_i64(f[1], offsets.iter().map(|o| o.to_le_bytes()));

    // The program ends 8-aligned; ExecuTorch loads it at a max_align_t-aligned address.
    b.pad_to(8, 0);
    let program_size = b.buf.len();
    // Segments start on a page boundary so a loader can mmap the constants read-only and
    // share them between processes; ExecuTorch's own default (`segment_alignment`) is 128.
    let base = if segment.is_empty() {
        0
    } else {
        program_size.div_ceil(SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
    };
    let mut out = b.buf;
    out[8..12].copy_from_slice(b"eh00");
    out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    out[16..24].copy_from_slice(&(program_size as u64).to_le_bytes());
    out[24..32].copy_from_slice(&(base as u64).to_le_bytes());
    out[32..40].copy_from_slice(&(segment.len() as u64).to_le_bytes());
    if !segment.is_empty() {
        out.resize(base, 0);
        out.extend_from_slice(&segment);
    }
    out
}

fn write_plan(b: &mut Builder, slot: usize, plan: &ExecutionPlan) {
    let (pos, f) = b.table(&[
        (0, F::Ref),
        (2, F::Ref),
        (3, F::Ref),
        (4, F::Ref),
        (5, F::Ref),
        (6, F::Ref),
        (7, F::Ref),
        (8, F::Ref),
    ]);
    b.patch(slot, pos);
    b.string(f[0], &plan.name);
    let slots = b.vec_refs(f[1], plan.values.len());
    for (s, v) in slots.into_iter().zip(&plan.values) {
        write_value(b, s, v);
    }
    b.vec_i32(f[2], &plan.inputs);
    b.vec_i32(f[3], &plan.outputs);
    let slots = b.vec_refs(f[4], plan.chains.len());
    for (s, c) in slots.into_iter().zip(&plan.chains) {
        let (pos, cf) = b.table(&[(0, F::Ref), (1, F::Ref), (2, F::Ref)]);
        b.patch(s, pos);
        b.vec_i32(cf[0], &c.inputs);
        b.vec_i32(cf[1], &c.outputs);
        let islots = b.vec_refs(cf[2], c.instructions.len());
        for (is, ins) in islots.into_iter().zip(&c.instructions) {
            write_instruction(b, is, ins);
        }
    }
    let slots = b.vec_refs(f[5], plan.operators.len());
    for (s, op) in slots.into_iter().zip(&plan.operators) {
        let (pos, of) = b.table(&[(0, F::Ref), (1, F::Ref)]);
        b.patch(s, pos);
        b.string(of[0], &op.name);
        b.string(of[1], &op.overload);
    }
    // ExecuTorch's Method::init rejects a plan without a delegates vector, even an empty one.
    b.vec_refs(f[6], 0);
    b.vec_i64(
        f[7],
        plan.non_const_buffer_sizes.iter().map(|s| s.to_le_bytes()),
    );
}

fn write_instruction(b: &mut Builder, slot: usize, ins: &Instruction) {
    let tag = match ins {
        Instruction::KernelCall { .. } => 1,
        Instruction::DelegateCall { .. } => 2,
        Instruction::MoveCall { .. } => 3,
        Instruction::JumpFalseCall { .. } => 4,
        Instruction::FreeCall { .. } => 5,
    };
    let (pos, f) = b.table(&[(0, F::U8(tag)), (1, F::Ref)]);
    b.patch(slot, pos);
    match ins {
        Instruction::KernelCall { op_index: i, args }
        | Instruction::DelegateCall {
            delegate_index: i,
            args,
        } => {
            let (t, af) = b.table(&[(0, F::I32(*i)), (1, F::Ref)]);
            b.patch(f[1], t);
            b.vec_i32(af[1], args);
        }
        Instruction::MoveCall {
            move_from: x,
            move_to: y,
        }
        | Instruction::JumpFalseCall {
            cond_value_index: x,
            destination_instruction: y,
        } => {
            let (t, _) = b.table(&[(0, F::I32(*x)), (1, F::I32(*y))]);
            b.patch(f[1], t);
        }
        Instruction::FreeCall { value_index } => {
            let (t, _) = b.table(&[(0, F::I32(*value_index))]);
            b.patch(f[1], t);
        }
    }
}

fn write_value(b: &mut Builder, slot: usize, v: &EValue) {
    let tag = match v {
        EValue::Null => 1,
        EValue::Int(_) => 2,
        EValue::Bool(_) => 3,
        EValue::Double(_) => 4,
        EValue::Tensor(_) => 5,
        EValue::String(_) => 6,
        EValue::IntList(_) => 7,
        EValue::DoubleList(_) => 8,
        EValue::BoolList(_) => 9,
        EValue::TensorList(_) => 10,
        EValue::OptionalTensorList(_) => 11,
    };
    let (pos, f) = b.table(&[(0, F::U8(tag)), (1, F::Ref)]);
    b.patch(slot, pos);
    let val = f[1];
    match v {
        EValue::Null => {
            let (t, _) = b.table(&[]);
            b.patch(val, t);
        }
        EValue::Int(x) => {
            let (t, _) = b.table(&[(0, F::U64(*x as u64))]);
            b.patch(val, t);
        }
        EValue::Bool(x) => {
            let (t, _) = b.table(&[(0, F::U8(*x as u8))]);
            b.patch(val, t);
        }
        EValue::Double(x) => {
            let (t, _) = b.table(&[(0, F::U64(x.to_bits()))]);
            b.patch(val, t);
        }
        EValue::Tensor(t) => write_tensor(b, val, t),
        EValue::String(s) => {
            let (t, sf) = b.table(&[(0, F::Ref)]);
            b.patch(val, t);
            b.string(sf[0], s);
        }
        EValue::IntList(l) => {
            let (t, lf) = b.table(&[(0, F::Ref)]);
            b.patch(val, t);
            b.vec_i64(lf[0], l.iter().map(|x| x.to_le_bytes()));
        }
        EValue::DoubleList(l) => {
            let (t, lf) = b.table(&[(0, F::Ref)]);
            b.patch(val, t);
            b.vec_i64(lf[0], l.iter().map(|x| x.to_le_bytes()));
        }
        EValue::BoolList(l) => {
            let (t, lf) = b.table(&[(0, F::Ref)]);
            b.patch(val, t);
            let bytes: Vec<u8> = l.iter().map(|&x| x as u8).collect();
            b.vec_u8(lf[0], &bytes);
        }
        EValue::TensorList(l) | EValue::OptionalTensorList(l) => {
            let (t, lf) = b.table(&[(0, F::Ref)]);
            b.patch(val, t);
            b.vec_i32(lf[0], l);
        }
    }
}

fn write_tensor(b: &mut Builder, field: usize, t: &Tensor) {
    let mut fields = vec![
        (0, F::U8(t.scalar_type as i8 as u8)),
        (1, F::I32(0)),
        (2, F::Ref),
        (3, F::Ref),
        (4, F::U8(0)),
        (5, F::U32(t.data_buffer_idx)),
        (7, F::U8(0)),
        // TensorShapeDynamism::STATIC.
        (8, F::U8(0)),
    ];
    if t.allocation.is_some() {
        fields.push((6, F::Ref));
    }
    let (pos, f) = b.table(&fields);
    b.patch(field, pos);
    b.vec_i32(f[2], &t.sizes);
    b.vec_u8(f[3], &t.dim_order);
    if let Some(a) = t.allocation {
        let (ap, _) = b.table(&[
            (0, F::U32(a.memory_id)),
            (1, F::U32(a.offset as u32)),
            (2, F::U32((a.offset >> 32) as u32)),
        ]);
        b.patch(f[8], ap);
    }
}
