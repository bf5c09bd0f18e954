//! Binds `Kind::Sdpa` to `kernels::attention`. Invariant: q, k, v (and the mask) broadcast
//! over at most four batch dims to the recorded output `[batch.., L, Ev]`, and the kernel's
//! score scratch lives on the stack, so a step with more than [`MAX_KEYS`] keys is refused.

use super::kernels::attention::{Mask, Sdpa, MAX_BATCH};
use super::kernels::shape::{broadcast_shapes, broadcast_strides, Shape};
use super::step::Kind;
use super::{shape_of, Ctx, DType, OpError, Reason, Which};

/// The most keys (`S`) one attention may have: the stack scratch holds one score per key.
pub const MAX_KEYS: usize = 2048;

/// `s` (a shape of rank ≥ 2) without its last two dims.
fn lead(s: &Shape) -> &[usize] {
    &s.dims()[..s.rank.saturating_sub(2)]
}

/// Strides along `[batch4.., rows, cols]` of operand `i` broadcast to it.
fn strides(c: &Ctx, i: usize, to: &Shape) -> Result<[usize; MAX_BATCH + 2], OpError> {
    let s = broadcast_strides(&c.shape(i), to)
        .ok_or_else(|| c.shape_err(Which::Input(i), "does not broadcast to the batch"))?;
    let mut out = [0; MAX_BATCH + 2];
    out.copy_from_slice(&s[..MAX_BATCH + 2]);
    Ok(out)
}

fn params(c: &Ctx) -> Result<Sdpa, OpError> {
    let Kind::Sdpa { causal, scale } = c.step.kind else {
        return Err(c.wrong_kind());
    };
    for i in 0..3 {
        c.want(i, DType::F32)?;
    }
    c.want_out(DType::F32)?;
    if c.n() == 4 && !(c.is(3, DType::F32) || c.is(3, DType::Bool)) {
        c.want(3, DType::F32)?;
    }
    let (q, k, v) = (c.shape(0), c.shape(1), c.shape(2));
    if q.rank < 2 || k.rank < 2 || v.rank < 2 {
        return Err(c.shape_err(Which::Input(0), "q, k and v have rank 2 or more"));
    }
    let (l, e) = (q.dims[q.rank - 2], q.dims[q.rank - 1]);
    let (s, ek) = (k.dims[k.rank - 2], k.dims[k.rank - 1]);
    let (sv, ev) = (v.dims[v.rank - 2], v.dims[v.rank - 1]);
    if e != ek || s != sv {
        return Err(c.shape_err(Which::Input(1), "q, k and v do not agree on E or S"));
    }
    let mut batch = broadcast_shapes(&shape_of(c, lead(&q))?, &shape_of(c, lead(&k))?);
    batch = batch.and_then(|b| broadcast_shapes(&b, &shape_of(c, lead(&v)).ok()?));
    if c.n() == 4 {
        let m = c.shape(3);
        batch = batch.and_then(|b| broadcast_shapes(&b, &shape_of(c, lead(&m)).ok()?));
    }
    let batch = batch.ok_or_else(|| c.shape_err(Which::Input(0), "batch dims do not broadcast"))?;
    if batch.rank > MAX_BATCH {
        return Err(c.shape_err(Which::Output, "more than 4 batch dims"));
    }
    let mut want = [0usize; MAX_BATCH + 2];
    want[..batch.rank].copy_from_slice(batch.dims());
    want[batch.rank] = l;
    want[batch.rank + 1] = ev;
    c.want_out_dims(&want[..batch.rank + 2])?;
    if s > MAX_KEYS {
        return Err(c.shape_err(
            Which::Input(1),
            "more keys than the runtime's score scratch holds",
        ));
    }
    let mut b4 = [1usize; MAX_BATCH];
    b4[MAX_BATCH - batch.rank..].copy_from_slice(batch.dims());
    let full = |rows: usize, cols: usize| {
        let mut d = [0usize; MAX_BATCH + 2];
        d[..MAX_BATCH].copy_from_slice(&b4);
        d[MAX_BATCH] = rows;
        d[MAX_BATCH + 1] = cols;
        shape_of(c, &d)
    };
    let first4 = |s: [usize; MAX_BATCH + 2]| {
        let mut o = [0; MAX_BATCH];
        o.copy_from_slice(&s[..MAX_BATCH]);
        o
    };
    let mask_stride = if c.n() == 4 {
        strides(c, 3, &full(l, s)?)?
    } else {
        [0; MAX_BATCH + 2]
    };
    Ok(Sdpa {
        batch: b4,
        q_batch_stride: first4(strides(c, 0, &full(l, e)?)?),
        k_batch_stride: first4(strides(c, 1, &full(s, e)?)?),
        v_batch_stride: first4(strides(c, 2, &full(s, ev)?)?),
        mask_stride,
        l,
        s,
        e,
        ev,
        scale: if scale.is_nan() {
            Sdpa::default_scale(e)
        } else {
            scale
        },
        causal,
    })
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let p = params(c)?;
    c.none_in_place()?;
    let (q, k, v) = (c.f32_in(0)?, c.f32_in(1)?, c.f32_in(2)?);
    let mask = if c.n() == 4 {
        match (c.data(3)?, c.ins.get(3)) {
            (super::Data::F32(m), _) => Mask::Float(m),
            (super::Data::Bool(_), Some(super::In::Tensor(_, bytes))) => {
                // `data` checked that every byte is 0 or 1, so the bool view succeeds.
                Mask::Bool(super::view::<bool>(bytes).map_err(|_| {
                    c.err(Reason::NotBool {
                        which: Which::Input(3),
                    })
                })?)
            }
            _ => {
                return Err(c.err(Reason::DType {
                    which: Which::Input(3),
                    got: c.meta(3).dtype,
                }))
            }
        }
    } else {
        Mask::None
    };
    let y = c.f32_out(y)?;
    let mut scores = [0f32; MAX_KEYS];
    //@use attention.fast
    if kept("attention.fast") && super::kernels::attention::fast_accepts(&p) {
        super::kernels::attention::fast(&p, q, k, v, mask, y, &mut scores);
        c.step.act.apply_slice_fast(y);
        return Ok("attention.fast");
    }
    //@end
    //@use attention.generic
    if kept("attention.generic") && super::kernels::attention::generic_accepts(&p) {
        super::kernels::attention::generic(&p, q, k, v, mask, y, &mut scores);
        c.step.act.apply_slice(y);
        return Ok("attention.generic");
    }
    //@end
    Err(c.err(Reason::NoVariant {
        family: "attention",
    }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(p) = params(c) else {
        return;
    };
    //@use attention.fast
    if super::kernels::attention::fast_accepts(&p) {
        found("attention.fast");
    }
    //@end
    //@use attention.generic
    if super::kernels::attention::generic_accepts(&p) {
        found("attention.generic");
    }
    //@end
}
