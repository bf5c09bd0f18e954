//! `where(cond, a, b)` with three-way broadcasting. Invariant: `a` and `b` are converted to
//! the output type before selection, exactly as the reference interpreter does.
//!
//! Slice lengths, which the caller guarantees: `cond` holds `numel(p.cond)` bytes (0 or 1), a
//! slice operand its shape's numel, and `y` the output's numel.

// Kernels index several arrays with one loop counter; iterator chains would hide that. The
// generator copies only the selected variants, so a shared import or helper may go unused in a
// generated crate.
#![allow(clippy::needless_range_loop, unused_imports, dead_code)]

use super::shape::{load, operand_strides, Dst, Elem, Rows, Shape, Src, CHUNK};

/// Shapes of the three operands and of the output (their broadcast).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WhereParams {
    pub cond: Shape,
    pub a: Shape,
    pub b: Shape,
    pub out: Shape,
}

/// The operands do not broadcast to the output (or an `InOut` operand lacks its shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhereError;

impl core::fmt::Display for WhereError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("where: the operands do not broadcast to the output")
    }
}

//@variant select
/// `y = cond ? a : b`. `a` or `b` may be `Src::InOut` when it has the output's shape and
/// dtype (in-place form); f32, i64 and bool outputs.
pub fn select(
    p: &WhereParams,
    cond: &[u8],
    a: Src<'_>,
    b: Src<'_>,
    y: Dst<'_>,
) -> Result<(), WhereError> {
    match y {
        Dst::F32(y) => where_typed(p, cond, a, b, y),
        Dst::I64(y) => where_typed(p, cond, a, b, y),
        Dst::Bool(y) => where_typed(p, cond, a, b, y),
    }
}

fn where_typed<T: Elem>(
    p: &WhereParams,
    cond: &[u8],
    a: Src<'_>,
    b: Src<'_>,
    y: &mut [T],
) -> Result<(), WhereError> {
    let sc = super::shape::broadcast_strides(&p.cond, &p.out).ok_or(WhereError)?;
    let sa = operand_strides(&a, &p.a, &p.out).ok_or(WhereError)?;
    let sb = operand_strides(&b, &p.b, &p.out).ok_or(WhereError)?;
    let rows = Rows::new(&p.out, [sc, sa, sb]);
    let (len, [cs, as_, bs]) = (rows.row_len(), rows.row_strides());
    let mut ba = [T::default(); CHUNK];
    let mut bb = [T::default(); CHUNK];
    rows.for_each_row(|o, [cb, ab, bbase]| {
        let mut j = 0;
        while j < len {
            let n = (len - j).min(CHUNK);
            let out = &mut y[o + j..o + j + n];
            load(&a, ab + j * as_, as_, out, &mut ba[..n]);
            load(&b, bbase + j * bs, bs, out, &mut bb[..n]);
            for (i, d) in out.iter_mut().enumerate() {
                *d = if cond[cb + (j + i) * cs] != 0 {
                    ba[i]
                } else {
                    bb[i]
                };
            }
            j += n;
        }
    });
    Ok(())
}

/// True when all three operands broadcast to the output.
pub fn select_accepts(p: &WhereParams) -> bool {
    [p.cond, p.a, p.b]
        .iter()
        .all(|s| super::shape::broadcast_strides(s, &p.out).is_some())
}
//@end

//@meta
/// `code_bytes`: measured on x86_64 by instantiating each variant (f32 where generic) behind
/// one `#[no_mangle]` wrapper in a scratch `staticlib` crate built with `--release`, `lto`,
/// `codegen-units = 1`, `panic = "abort"`, then summing `nm -S` sizes over the functions
/// reachable from the wrapper (relocations in `objdump -dr`), core's panic paths excluded.
/// Shared helpers a variant reaches (`crate::math`, `crate::act`, the row walker) are counted
/// in every variant that reaches them.
pub const VARIANTS: &[super::meta::KernelInfo] = &[super::meta::KernelInfo {
    name: "where_.select",
    family: "where_",
    dtypes: &["f32", "i64", "bool"],
    isa: &[],
    shape: "any",
    speed: 0,
    code_bytes: 13048,
}];
//@end
