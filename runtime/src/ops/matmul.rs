//! Binds `Linear`, `MatMul` and `Addmm` to `kernels::matmul`'s batched GEMM. Invariant: the
//! `Gemm` and the operand order (a, b, bias) follow from the operands' shapes by
//! `torch.matmul`'s rules, and the implied output shape must equal the recorded one.

use super::kernels::matmul::{Gemm, MAX_BATCH};
use super::kernels::shape::{broadcast_shapes, broadcast_strides, Shape};
use super::step::Kind;
use super::{shape_of, Ctx, OpError, Which};

/// The GEMM and the operand indices of a, b and the bias.
struct Bound {
    g: Gemm,
    a: usize,
    b: usize,
    bias: Option<usize>,
}

/// The strides, along the four right-aligned batch dims of `batch`, of a contiguous operand
/// whose matrices are `[.., rows, cols]` with leading dims `lead`.
fn batch_strides(
    c: &Ctx,
    which: usize,
    lead: &[usize],
    rows: usize,
    cols: usize,
    batch: &[usize; MAX_BATCH],
) -> Result<[usize; MAX_BATCH], OpError> {
    let mut from = [0usize; MAX_BATCH + 2];
    let r = lead.len();
    from[..r].copy_from_slice(lead);
    from[r] = rows;
    from[r + 1] = cols;
    let mut to = [0usize; MAX_BATCH + 2];
    to[..MAX_BATCH].copy_from_slice(batch);
    to[MAX_BATCH] = rows;
    to[MAX_BATCH + 1] = cols;
    let from = shape_of(c, &from[..r + 2])?;
    let to = shape_of(c, &to)?;
    let s = broadcast_strides(&from, &to)
        .ok_or_else(|| c.shape_err(Which::Input(which), "batch dims do not broadcast"))?;
    let mut out = [0; MAX_BATCH];
    out.copy_from_slice(&s[..MAX_BATCH]);
    Ok(out)
}

fn matmul(c: &Ctx) -> Result<Bound, OpError> {
    let (a, b) = (c.shape(0), c.shape(1));
    if a.rank == 0 || b.rank == 0 {
        return Err(c.shape_err(Which::Input(0), "matmul operands have rank 1 or more"));
    }
    let (m, k) = if a.rank == 1 {
        (1, a.dims[0])
    } else {
        (a.dims[a.rank - 2], a.dims[a.rank - 1])
    };
    let (k2, n) = if b.rank == 1 {
        (b.dims[0], 1)
    } else {
        (b.dims[b.rank - 2], b.dims[b.rank - 1])
    };
    if k != k2 {
        return Err(c.shape_err(Which::Input(1), "inner dims differ"));
    }
    let a_lead = &a.dims()[..a.rank.saturating_sub(2)];
    let b_lead = &b.dims()[..b.rank.saturating_sub(2)];
    let batch = broadcast_shapes(&shape_of(c, a_lead)?, &shape_of(c, b_lead)?)
        .ok_or_else(|| c.shape_err(Which::Input(1), "batch dims do not broadcast"))?;
    if batch.rank > MAX_BATCH {
        return Err(c.shape_err(Which::Output, "more than 4 batch dims"));
    }
    let mut want = [0usize; MAX_BATCH + 2];
    want[..batch.rank].copy_from_slice(batch.dims());
    let mut r = batch.rank;
    if a.rank > 1 {
        want[r] = m;
        r += 1;
    }
    if b.rank > 1 {
        want[r] = n;
        r += 1;
    }
    c.want_out_dims(&want[..r])?;
    let mut b4 = [1usize; MAX_BATCH];
    b4[MAX_BATCH - batch.rank..].copy_from_slice(batch.dims());
    let g = Gemm {
        batch: b4,
        a_batch_stride: batch_strides(c, 0, a_lead, m, k, &b4)?,
        b_batch_stride: batch_strides(c, 1, b_lead, k, n, &b4)?,
        m,
        k,
        n,
        b_trans: false,
        alpha: 1.0,
        beta: 0.0,
        bias_stride: [0, 0],
    };
    Ok(Bound {
        g,
        a: 0,
        b: 1,
        bias: None,
    })
}

fn linear(c: &Ctx) -> Result<Bound, OpError> {
    let (x, w) = (c.shape(0), c.shape(1));
    if x.rank == 0 || w.rank != 2 || w.dims[1] != x.dims[x.rank - 1] {
        return Err(c.shape_err(Which::Input(1), "the weight is not [M, K] for x [.., K]"));
    }
    let (k, m) = (w.dims[1], w.dims[0]);
    if c.n() == 3 && c.shape(2).dims() != [m] {
        return Err(c.shape_err(Which::Input(2), "the bias is not [M]"));
    }
    let lead = &x.dims()[..x.rank - 1];
    let mut want = [0usize; super::kernels::shape::MAX_RANK];
    want[..lead.len()].copy_from_slice(lead);
    want[lead.len()] = m;
    c.want_out_dims(&want[..x.rank])?;
    Ok(Bound {
        g: Gemm::linear(lead.iter().product(), k, m),
        a: 0,
        b: 1,
        bias: (c.n() == 3).then_some(2),
    })
}

fn addmm(c: &Ctx, alpha: f32, beta: f32) -> Result<Bound, OpError> {
    let (bias, a, b) = (c.shape(0), c.shape(1), c.shape(2));
    if a.rank != 2 || b.rank != 2 || a.dims[1] != b.dims[0] {
        return Err(c.shape_err(Which::Input(2), "a is not [N, K] or b not [K, M]"));
    }
    let (rows, k, cols) = (a.dims[0], a.dims[1], b.dims[1]);
    c.want_out_dims(&[rows, cols])?;
    let to: Shape = shape_of(c, &[rows, cols])?;
    let s = broadcast_strides(&bias, &to)
        .ok_or_else(|| c.shape_err(Which::Input(0), "the bias does not broadcast to [N, M]"))?;
    Ok(Bound {
        g: Gemm::addmm(rows, k, cols, alpha, beta, [s[0], s[1]]),
        a: 1,
        b: 2,
        bias: Some(0),
    })
}

fn params(c: &Ctx) -> Result<Bound, OpError> {
    c.all_f32()?;
    match c.step.kind {
        Kind::Linear => linear(c),
        Kind::MatMul => matmul(c),
        Kind::Addmm { alpha, beta } => addmm(c, alpha, beta),
        _ => Err(c.wrong_kind()),
    }
}

pub(super) fn run(
    c: &Ctx,
    y: &mut [u8],
    kept: &dyn Fn(&str) -> bool,
) -> Result<&'static str, OpError> {
    let Bound { g, a, b, bias } = params(c)?;
    let a = c.f32_in(a)?;
    let b = c.f32_in(b)?;
    let bias = match bias {
        Some(i) => Some(c.f32_in(i)?),
        None => None,
    };
    let y = c.f32_out(y)?;
    let act = c.step.act;
    //@use matmul.dot
    if kept("matmul.dot") && super::kernels::matmul::dot_accepts(&g) {
        super::kernels::matmul::dot(&g, a, b, bias, y, act);
        return Ok("matmul.dot");
    }
    //@end
    //@use matmul.tiled
    if kept("matmul.tiled") && super::kernels::matmul::tiled_accepts(&g) {
        super::kernels::matmul::tiled(&g, a, b, bias, y, act);
        return Ok("matmul.tiled");
    }
    //@end
    //@use matmul.generic
    if kept("matmul.generic") && super::kernels::matmul::generic_accepts(&g) {
        super::kernels::matmul::generic(&g, a, b, bias, y, act);
        return Ok("matmul.generic");
    }
    //@end
    Err(c.err(super::Reason::NoVariant { family: "matmul" }))
}

pub(super) fn accepting(c: &Ctx, found: &mut dyn FnMut(&'static str)) {
    let Ok(Bound { g, .. }) = params(c) else {
        return;
    };
    //@use matmul.dot
    if super::kernels::matmul::dot_accepts(&g) {
        found("matmul.dot");
    }
    //@end
    //@use matmul.tiled
    if super::kernels::matmul::tiled_accepts(&g) {
        found("matmul.tiled");
    }
    //@end
    //@use matmul.generic
    if super::kernels::matmul::generic_accepts(&g) {
        found("matmul.generic");
    }
    //@end
}
