//! Rules for views, copies, concatenation and splitting, padding, triangles and casts.
//! Invariant: a view of an input is lowered to a core op whose output aliases nothing yet
//! (aliasing is a later pass's decision); the base and view names are marked so in-place ops on
//! them are refused.

use super::args::Ctx;
use super::reduce::axis;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{DType, Op, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("view.default", |l, c| reshape(l, c, "size")),
    ("_unsafe_view.default", |l, c| reshape(l, c, "size")),
    ("reshape.default", |l, c| reshape(l, c, "shape")),
    ("flatten.using_ints", flatten),
    ("unflatten.int", unflatten),
    ("squeeze.dim", squeeze),
    ("squeeze.dims", squeeze),
    ("squeeze.default", squeeze),
    ("unsqueeze.default", unsqueeze),
    ("permute.default", permute),
    ("transpose.int", transpose),
    ("t.default", t),
    ("expand.default", expand),
    ("repeat.default", repeat),
    ("contiguous.default", |l, c| identity(l, c, "self", true)),
    ("alias.default", |l, c| identity(l, c, "self", true)),
    ("detach.default", |l, c| identity(l, c, "self", true)),
    ("detach_.default", |l, c| identity(l, c, "self", true)),
    ("clone.default", |l, c| identity(l, c, "self", false)),
    ("lift_fresh_copy.default", |l, c| {
        identity(l, c, "self", false)
    }),
    ("dropout.default", dropout),
    ("dropout_.default", dropout),
    ("feature_dropout.default", dropout),
    ("alpha_dropout.default", dropout),
    ("native_dropout.default", dropout),
    ("cat.default", cat),
    ("concat.default", cat),
    ("stack.default", stack),
    ("split.Tensor", split),
    ("split_with_sizes.default", split_with_sizes),
    ("chunk.default", chunk),
    ("unbind.int", unbind),
    ("narrow.default", narrow),
    ("slice.Tensor", slice),
    ("select.int", select),
    ("constant_pad_nd.default", pad),
    ("pad.default", pad),
    ("tril.default", |l, c| triangle(l, c, false)),
    ("triu.default", |l, c| triangle(l, c, true)),
    ("_to_copy.default", to_dtype),
    ("to.dtype", to_dtype),
    ("to.dtype_layout", to_dtype),
    ("type_as.default", type_as),
    ("_assert_tensor_metadata.default", |_, _| Ok(vec![])),
];

fn view_of(lw: &mut Lowerer, ctx: &Ctx, op: Op) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let y = lw.emit(op, vec![x])?;
    if let (Some(base), Some(view)) = (ctx.tensor_name("self"), ctx.output_name(0)) {
        lw.mark_alias(base, view);
    }
    Ok(vec![Some(y)])
}

/// Resolves a requested shape with at most one `-1` against `numel`.
fn resolve_shape(lw: &Lowerer, size: &[i64], numel: usize) -> Result<Vec<usize>, LowerError> {
    let known: i64 = size.iter().filter(|&&d| d != -1).product();
    let wild = size.iter().filter(|&&d| d == -1).count();
    if wild > 1 || size.iter().any(|&d| d < -1) {
        return Err(lw.invalid(format!("invalid shape {size:?}")));
    }
    size.iter()
        .map(|&d| {
            if d != -1 {
                return Ok(d as usize);
            }
            if known == 0 || numel as i64 % known != 0 {
                return Err(lw.invalid(format!("shape {size:?} cannot hold {numel} elements")));
            }
            Ok((numel as i64 / known) as usize)
        })
        .collect()
}

fn reshape(lw: &mut Lowerer, ctx: &Ctx, arg: &str) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let shape = resolve_shape(lw, &ctx.ints(arg)?, lw.ty(x).numel())?;
    view_of(lw, ctx, Op::Reshape { shape })
}

fn flatten(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let s = lw.ty(x).shape.clone();
    if s.is_empty() {
        return view_of(lw, ctx, Op::Reshape { shape: vec![1] });
    }
    let start = axis(lw, ctx.int_or("start_dim", 0)?, s.len())?;
    let end = axis(lw, ctx.int_or("end_dim", -1)?, s.len())?;
    if start > end {
        return Err(lw.invalid(format!("flatten: start_dim {start} is after end_dim {end}")));
    }
    let mut shape = s[..start].to_vec();
    shape.push(s[start..=end].iter().product());
    shape.extend_from_slice(&s[end + 1..]);
    view_of(lw, ctx, Op::Reshape { shape })
}

fn unflatten(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let s = lw.ty(x).shape.clone();
    let d = axis(lw, ctx.int("dim")?, s.len())?;
    let sizes = resolve_shape(lw, &ctx.ints("sizes")?, s[d])?;
    let mut shape = s[..d].to_vec();
    shape.extend(sizes);
    shape.extend_from_slice(&s[d + 1..]);
    view_of(lw, ctx, Op::Reshape { shape })
}

fn squeeze(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let s = lw.ty(x).shape.clone();
    let dims: Vec<usize> = match ctx.opt_ints("dim")? {
        Some(ds) => ds
            .iter()
            .map(|&d| axis(lw, d, s.len()))
            .collect::<Result<_, _>>()?,
        None => (0..s.len()).collect(),
    };
    let shape = s
        .iter()
        .enumerate()
        .filter(|&(i, &n)| !(n == 1 && dims.contains(&i)))
        .map(|(_, &n)| n)
        .collect();
    view_of(lw, ctx, Op::Reshape { shape })
}

fn unsqueeze(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let mut shape = lw.ty(x).shape.clone();
    let d = axis(lw, ctx.int("dim")?, shape.len() + 1)?;
    shape.insert(d, 1);
    view_of(lw, ctx, Op::Reshape { shape })
}

fn permute(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let rank = lw.ty(x).rank();
    let perm = ctx
        .ints("dims")?
        .iter()
        .map(|&d| axis(lw, d, rank))
        .collect::<Result<Vec<_>, _>>()?;
    view_of(lw, ctx, Op::Permute { perm })
}

fn transpose(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let rank = lw.ty(x).rank();
    let a = axis(lw, ctx.int("dim0")?, rank)?;
    let b = axis(lw, ctx.int("dim1")?, rank)?;
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(a, b);
    view_of(lw, ctx, Op::Permute { perm })
}

fn t(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let perm = match lw.ty(x).rank() {
        0 | 1 => (0..lw.ty(x).rank()).collect(),
        2 => vec![1, 0],
        r => return Err(lw.invalid(format!("t() expects a tensor of rank ≤ 2, found rank {r}"))),
    };
    view_of(lw, ctx, Op::Permute { perm })
}

fn expand(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let s = lw.ty(x).shape.clone();
    let size = ctx.ints("size")?;
    if size.len() < s.len() {
        return Err(lw.invalid(format!(
            "expand to {size:?} has fewer dims than the input {s:?}"
        )));
    }
    let lead = size.len() - s.len();
    let shape = size
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            -1 if i >= lead => Ok(s[i - lead]),
            d if d >= 0 => Ok(d as usize),
            _ => Err(lw.invalid(format!("invalid expand size {size:?}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    view_of(lw, ctx, Op::Expand { shape })
}

fn repeat(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let repeats = ctx.ints("repeats")?;
    if repeats.iter().any(|&r| r < 0) {
        return Err(lw.invalid(format!("negative repeat count in {repeats:?}")));
    }
    let repeats = repeats.into_iter().map(|r| r as usize).collect();
    Ok(vec![Some(lw.emit(Op::Tile { repeats }, vec![x])?)])
}

/// Ops that return their input unchanged in an inference graph. `aliases` says whether the
/// result shares storage with the input (`contiguous` may; `clone` never does).
fn identity(
    lw: &mut Lowerer,
    ctx: &Ctx,
    arg: &str,
    aliases: bool,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, arg)?;
    if aliases {
        if let (Some(base), Some(view)) = (ctx.tensor_name(arg), ctx.output_name(0)) {
            lw.mark_alias(base, view);
        }
    }
    Ok(vec![Some(x)])
}

fn dropout(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let train = ctx.bool_or("train", false)?;
    if train && ctx.float_or("p", 0.0)? > 0.0 {
        return Err(lw.invalid(
            "dropout is in training mode; call `model.eval()` before `torch.export.export`".into(),
        ));
    }
    let arg = if ctx.get("input").is_some() {
        "input"
    } else {
        "self"
    };
    let x = ctx.tensor(lw, arg)?;
    let mut outs = vec![Some(x)];
    outs.resize(ctx.output_count().max(1), None);
    Ok(outs)
}

fn cat(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let all = ctx.tensors(lw, "tensors")?;
    // PyTorch still skips legacy empty 1-d tensors in `cat`.
    let ins: Vec<ValueId> = all
        .iter()
        .copied()
        .filter(|&v| !(lw.ty(v).shape == [0] && all.iter().any(|&w| lw.ty(w).rank() > 1)))
        .collect();
    let rank = ins.first().map_or(0, |&v| lw.ty(v).rank());
    let a = axis(lw, ctx.int_or("dim", 0)?, rank)?;
    if ins.len() == 1 {
        return Ok(vec![Some(ins[0])]);
    }
    Ok(vec![Some(lw.emit(Op::Concat { axis: a }, ins)?)])
}

fn stack(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let ins = ctx.tensors(lw, "tensors")?;
    let rank = ins.first().map_or(0, |&v| lw.ty(v).rank());
    let a = axis(lw, ctx.int_or("dim", 0)?, rank + 1)?;
    let mut parts = Vec::with_capacity(ins.len());
    for v in ins {
        let mut shape = lw.ty(v).shape.clone();
        shape.insert(a, 1);
        parts.push(lw.emit(Op::Reshape { shape }, vec![v])?);
    }
    if parts.len() == 1 {
        return Ok(vec![Some(parts[0])]);
    }
    Ok(vec![Some(lw.emit(Op::Concat { axis: a }, parts)?)])
}

/// Slices `x` along `a` into consecutive pieces of the given sizes.
fn pieces(
    lw: &mut Lowerer,
    ctx: &Ctx,
    x: ValueId,
    a: usize,
    sizes: &[usize],
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let n = lw.ty(x).shape[a];
    if sizes.iter().sum::<usize>() != n {
        return Err(lw.invalid(format!("split sizes {sizes:?} do not add up to {n}")));
    }
    if ctx.output_count() != sizes.len() {
        return Err(lw.invalid(format!(
            "split into {} pieces, but the node has {} outputs",
            sizes.len(),
            ctx.output_count()
        )));
    }
    let mut start = 0;
    let mut outs = Vec::with_capacity(sizes.len());
    for (i, &len) in sizes.iter().enumerate() {
        let op = Op::Slice {
            axis: a,
            start,
            end: start + len,
            step: 1,
        };
        outs.push(Some(lw.emit(op, vec![x])?));
        if let (Some(base), Some(view)) = (ctx.tensor_name("self"), ctx.output_name(i)) {
            lw.mark_alias(base, view);
        }
        start += len;
    }
    Ok(outs)
}

fn split(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int_or("dim", 0)?, lw.ty(x).rank())?;
    let n = lw.ty(x).shape[a];
    let size = ctx.int("split_size")?;
    if size <= 0 {
        return Err(lw.invalid(format!("split_size must be positive, found {size}")));
    }
    let size = size as usize;
    let sizes: Vec<usize> = (0..n.div_ceil(size).max(1))
        .map(|i| size.min(n - (i * size).min(n)))
        .collect();
    pieces(lw, ctx, x, a, &sizes)
}

fn split_with_sizes(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int_or("dim", 0)?, lw.ty(x).rank())?;
    let sizes = ctx.ints("split_sizes")?;
    if sizes.iter().any(|&s| s < 0) {
        return Err(lw.invalid(format!("negative split size in {sizes:?}")));
    }
    let sizes: Vec<usize> = sizes.into_iter().map(|s| s as usize).collect();
    pieces(lw, ctx, x, a, &sizes)
}

fn chunk(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int_or("dim", 0)?, lw.ty(x).rank())?;
    let n = lw.ty(x).shape[a];
    let chunks = ctx.int("chunks")?;
    if chunks <= 0 {
        return Err(lw.invalid(format!("chunks must be positive, found {chunks}")));
    }
    let size = n.div_ceil(chunks as usize).max(1);
    let sizes: Vec<usize> = (0..n.div_ceil(size))
        .map(|i| size.min(n - i * size))
        .collect();
    pieces(lw, ctx, x, a, &sizes)
}

/// Element `i` of `x` along axis `a`, with that axis removed (the shape `select` gives).
fn index_along(lw: &mut Lowerer, x: ValueId, a: usize, i: usize) -> Result<ValueId, LowerError> {
    let piece = lw.emit(
        Op::Slice {
            axis: a,
            start: i,
            end: i + 1,
            step: 1,
        },
        vec![x],
    )?;
    let mut shape = lw.ty(x).shape.clone();
    shape.remove(a);
    lw.emit(Op::Reshape { shape }, vec![piece])
}

fn unbind(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let rank = lw.ty(x).rank();
    let a = axis(lw, ctx.int_or("dim", 0)?, rank)?;
    let mut outs = Vec::new();
    for i in 0..lw.ty(x).shape[a] {
        outs.push(Some(index_along(lw, x, a, i)?));
        // Each piece is a view of `self`, as `split`'s and `select`'s are.
        if let (Some(base), Some(view)) = (ctx.tensor_name("self"), ctx.output_name(i)) {
            lw.mark_alias(base, view);
        }
    }
    Ok(outs)
}

/// Clamps a Python-style slice bound (negative counts from the end) into `[0, n]`.
fn bound(v: i64, n: usize) -> usize {
    let n = n as i64;
    let v = if v < 0 { v + n } else { v };
    v.clamp(0, n) as usize
}

fn narrow(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int("dim")?, lw.ty(x).rank())?;
    let n = lw.ty(x).shape[a];
    let start = bound(ctx.int("start")?, n);
    let len = ctx.int("length")?;
    if len < 0 || start + len as usize > n {
        return Err(lw.invalid(format!("narrow of {len} from {start} exceeds size {n}")));
    }
    view_of(
        lw,
        ctx,
        Op::Slice {
            axis: a,
            start,
            end: start + len as usize,
            step: 1,
        },
    )
}

fn slice(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let a = axis(lw, ctx.int_or("dim", 0)?, lw.ty(x).rank())?;
    let n = lw.ty(x).shape[a];
    let start = bound(ctx.opt_int("start")?.unwrap_or(0), n);
    let end = bound(ctx.opt_int("end")?.unwrap_or(i64::MAX), n).max(start);
    let step = ctx.int_or("step", 1)?;
    if step <= 0 {
        return Err(lw.invalid(format!("slice step must be positive, found {step}")));
    }
    view_of(
        lw,
        ctx,
        Op::Slice {
            axis: a,
            start,
            end,
            step: step as usize,
        },
    )
}

fn select(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let s = lw.ty(x).shape.clone();
    let a = axis(lw, ctx.int("dim")?, s.len())?;
    let i = ctx.int("index")?;
    let n = s[a] as i64;
    if i < -n || i >= n {
        return Err(lw.invalid(format!("index {i} is out of range for size {n}")));
    }
    let i = if i < 0 { i + n } else { i } as usize;
    let y = index_along(lw, x, a, i)?;
    if let (Some(base), Some(view)) = (ctx.tensor_name("self"), ctx.output_name(0)) {
        lw.mark_alias(base, view);
    }
    Ok(vec![Some(y)])
}

/// `pad` lists (before, after) pairs starting from the last dim.
fn pad(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let mode = ctx.string_or("mode", "constant")?;
    let p = ctx.ints("pad")?;
    if mode != "constant" {
        return index_pad(lw, x, &p, mode);
    }
    let rank = lw.ty(x).rank();
    if !p.len().is_multiple_of(2) || p.len() / 2 > rank {
        return Err(lw.invalid(format!("pad list {p:?} does not fit a rank-{rank} tensor")));
    }
    let mut pads = vec![(0i64, 0i64); rank];
    for (i, pair) in p.chunks(2).enumerate() {
        pads[rank - 1 - i] = (pair[0], pair[1]);
    }
    let value = ctx.opt_scalar("value")?.map_or(0.0, |s| s.as_f64());
    Ok(vec![Some(lw.emit(Op::Pad { pads, value }, vec![x])?)])
}

fn triangle(lw: &mut Lowerer, ctx: &Ctx, upper: bool) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let diagonal = ctx.int_or("diagonal", 0)?;
    Ok(vec![Some(
        lw.emit(Op::Triangle { upper, diagonal }, vec![x])?,
    )])
}

fn to_dtype(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    match ctx.opt_dtype("dtype")? {
        Some(d) => Ok(vec![Some(lw.cast(x, d)?)]),
        None => Ok(vec![Some(x)]),
    }
}

fn type_as(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let x = ctx.tensor(lw, "self")?;
    let other = ctx.tensor(lw, "other")?;
    let d: DType = lw.ty(other).dtype;
    Ok(vec![Some(lw.cast(x, d)?)])
}

/// Reflect, replicate and circular padding: per padded dim, a gather with a constant index that
/// maps every output position to the input element PyTorch copies there.
fn index_pad(
    lw: &mut Lowerer,
    x: ValueId,
    p: &[i64],
    mode: &str,
) -> Result<Vec<Option<ValueId>>, LowerError> {
    let rank = lw.ty(x).rank();
    if !p.len().is_multiple_of(2) || p.len() / 2 > rank || p.iter().any(|&v| v < 0) {
        return Err(lw.invalid(format!(
            "pad list {p:?} does not fit a rank-{rank} tensor in mode \"{mode}\""
        )));
    }
    let mut y = x;
    for (i, pair) in p.chunks(2).enumerate() {
        let a = rank - 1 - i;
        let n = lw.ty(y).shape[a] as i64;
        let (before, after) = (pair[0], pair[1]);
        if before == 0 && after == 0 {
            continue;
        }
        let src = |j: i64| -> Option<i64> {
            match mode {
                "reflect" if n > 1 => {
                    let period = 2 * (n - 1);
                    let m = j.rem_euclid(period);
                    Some(if m < n { m } else { period - m })
                }
                "replicate" if n > 0 => Some(j.clamp(0, n - 1)),
                "circular" if n > 0 => Some(j.rem_euclid(n)),
                _ => None,
            }
        };
        if mode == "reflect" && (before >= n || after >= n) {
            return Err(lw.invalid(format!(
                "reflect padding of {before}/{after} needs a dim larger than {n}"
            )));
        }
        let idx = (-before..n + after)
            .map(src)
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| {
                lw.invalid(format!(
                    "padding mode \"{mode}\" is not supported for a dim of size {n}"
                ))
            })?;
        let i = lw.indices(&idx);
        y = lw.emit(Op::Take { axis: a }, vec![y, i])?;
    }
    Ok(vec![Some(y)])
}
