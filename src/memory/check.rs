//! An independent validator for memory plans. It reads only the graph and the plan (never the
//! alias analysis or the offset algorithms), so a bug there shows up here as a rejected plan.
//!
//! A plan is valid when every value is inside its region's arena, every alias is one the op
//! allows at the offset the op implies, and every write leaves intact the bytes of any other
//! value still to be read: at a writing step, a live value overlapping the written range must be
//! an input the op may overwrite (see `alias::overwritable_inputs`) that dies there and occupies exactly the same bytes in the same shape.
//! Views and in-place concatenations write nothing, so their bytes are whatever their sources
//! wrote, which the offset checks pin down.
//!
//! Invariant: `check` accepts a plan only if executing the graph node by node in that plan's
//! arena computes what the graph means.

use super::alias::{concat_is_outermost, contiguous_slice_offset, overwritable_inputs};
use super::{AliasKind, MemoryPlan, Placement};
use crate::ir::{Graph, Op, ValueDef, ValueId};

/// Whether a node's output is produced without the node writing anything: a view, or a concat
/// whose inputs were all written in place.
pub(crate) fn writes_nothing(g: &Graph, plan: &MemoryPlan, step: usize) -> bool {
    let node = &g.nodes[step];
    let placed = |v: ValueId| plan.values[v.index()].as_ref();
    if matches!(
        placed(node.output).and_then(|p| p.alias),
        Some(AliasKind::View { .. })
    ) {
        return true;
    }
    let Some(out) = placed(node.output) else {
        return false;
    };
    let mut prefix = 0u64;
    matches!(node.op, Op::Concat { .. })
        && !node.inputs.is_empty()
        && node.inputs.iter().all(|&x| {
            let here = placed(x).is_some_and(|p| {
                p.region == out.region && p.offset == out.offset + prefix && p.bytes > 0
            });
            prefix += g.ty(x).byte_size() as u64;
            here
        })
}

/// Validates `plan` against `g`; the error says which value or step breaks which rule.
pub fn check(g: &Graph, plan: &MemoryPlan) -> Result<(), String> {
    if plan.values.len() != g.values.len() {
        return Err(format!(
            "the plan places {} values, the graph has {}",
            plan.values.len(),
            g.values.len()
        ));
    }
    for (v, value) in g.values.iter().enumerate() {
        let p = plan.values[v].as_ref();
        match (&value.def, p) {
            (ValueDef::Const(_), None) => {}
            (ValueDef::Const(_), Some(_)) => {
                return Err(format!("constant `{}` is placed in the arena", value.name))
            }
            (_, None) => return Err(format!("`{}` has no place", value.name)),
            (_, Some(p)) => {
                let region = plan
                    .regions
                    .get(p.region)
                    .ok_or_else(|| format!("`{}` is in a region that does not exist", p.name))?;
                if p.bytes != value.ty.byte_size() as u64 {
                    return Err(format!("`{}` has the wrong size", p.name));
                }
                if p.offset + p.bytes > region.planned_bytes
                    || region.planned_bytes > region.capacity
                {
                    return Err(format!(
                        "`{}` at {}+{} is outside region `{}` ({} planned, {} capacity)",
                        p.name,
                        p.offset,
                        p.bytes,
                        region.name,
                        region.planned_bytes,
                        region.capacity
                    ));
                }
            }
        }
    }
    for b in &plan.buffers {
        if b.offset % plan.alignment != 0 {
            return Err(format!(
                "the buffer of `{}` at {} is not aligned",
                g.value(b.root).name,
                b.offset
            ));
        }
    }
    for v in 0..g.values.len() {
        if let Some(p) = &plan.values[v] {
            if let Some(alias) = p.alias {
                check_alias(g, plan, ValueId(v as u32), p, alias)?;
            }
        }
    }
    check_writes(g, plan)
}

fn place<'p>(plan: &'p MemoryPlan, v: ValueId, g: &Graph) -> Result<&'p Placement, String> {
    plan.values[v.index()]
        .as_ref()
        .ok_or_else(|| format!("`{}` is aliased but has no place", g.value(v).name))
}

fn check_alias(
    g: &Graph,
    plan: &MemoryPlan,
    v: ValueId,
    p: &Placement,
    alias: AliasKind,
) -> Result<(), String> {
    let bad = |why: &str| Err(format!("alias of `{}`: {why}", p.name));
    let node = match g.value(v).def {
        ValueDef::Node(n) => &g.nodes[n.index()],
        _ => return bad("only node results may alias"),
    };
    match alias {
        AliasKind::View { of } => {
            let src = place(plan, of, g)?;
            let (in_ty, out_ty) = (g.ty(of), g.ty(v));
            let delta = match &node.op {
                Op::Reshape { .. } if in_ty.byte_size() == out_ty.byte_size() => Some(0),
                Op::Slice {
                    axis,
                    start,
                    end,
                    step,
                } if in_ty.dtype == out_ty.dtype => contiguous_slice_offset(
                    &in_ty.shape,
                    in_ty.dtype.size(),
                    *axis,
                    *start,
                    *end,
                    *step,
                ),
                _ => None,
            };
            if node.inputs.first() != Some(&of) || node.inputs.len() != 1 {
                return bad("a view must be of its node's only input");
            }
            match delta {
                Some(d) if src.region == p.region && src.offset + d as u64 == p.offset => Ok(()),
                Some(_) => bad("a view is not at its source's offset"),
                None => bad("the op is not a view"),
            }
        }
        AliasKind::InPlace { of } => {
            let src = place(plan, of, g)?;
            let allowed = overwritable_inputs(&node.op)
                .iter()
                .any(|&k| node.inputs.get(k) == Some(&of));
            if !allowed {
                return bad("only an element-wise op may write over its own input");
            }
            if g.ty(of) != g.ty(v) || src.region != p.region || src.offset != p.offset {
                return bad("an in-place result must occupy exactly its input's bytes");
            }
            Ok(())
        }
        AliasKind::Concat { into } => {
            let ValueDef::Node(cn) = g.value(into).def else {
                return bad("a concat target must be a node result");
            };
            let cnode = &g.nodes[cn.index()];
            let Op::Concat { axis } = cnode.op else {
                return bad("the target is not a concat");
            };
            if !concat_is_outermost(&g.ty(into).shape, axis) {
                return bad("the concat is not along its outermost non-unit axis");
            }
            let dst = place(plan, into, g)?;
            if g.ty(v).dtype != g.ty(into).dtype || dst.region != p.region {
                return bad("not inside the concat's output");
            }
            if cnode.inputs.contains(&v) {
                if cnode.inputs.iter().filter(|&&x| x == v).count() != 1 {
                    return bad("a value written in place must appear once in the concat");
                }
                let mut prefix = 0u64;
                for &x in &cnode.inputs {
                    if x == v {
                        break;
                    }
                    prefix += g.ty(x).byte_size() as u64;
                }
                if dst.offset + prefix != p.offset {
                    return bad("not at its place inside the concat's output");
                }
            } else if p.offset < dst.offset || p.offset + p.bytes > dst.offset + dst.bytes {
                return bad("not inside the concat's output");
            }
            Ok(())
        }
    }
}

fn check_writes(g: &Graph, plan: &MemoryPlan) -> Result<(), String> {
    let lives = super::lifetime::value_intervals(g);
    let overlaps = |a: &Placement, b: &Placement| {
        a.region == b.region
            && a.bytes > 0
            && b.bytes > 0
            && a.offset < b.offset + b.bytes
            && b.offset < a.offset + a.bytes
    };
    // User inputs are all written before the first step.
    for (i, &a) in g.inputs.iter().enumerate() {
        for &b in &g.inputs[i + 1..] {
            if a != b && overlaps(place(plan, a, g)?, place(plan, b, g)?) {
                return Err(format!(
                    "inputs `{}` and `{}` overlap",
                    g.value(a).name,
                    g.value(b).name
                ));
            }
        }
    }
    for (step, node) in g.nodes.iter().enumerate() {
        if writes_nothing(g, plan, step) {
            continue;
        }
        let out = node.output;
        let w = place(plan, out, g)?;
        for (u, life) in lives.iter().enumerate() {
            let (Some(life), Some(pu)) = (life, plan.values[u].as_ref()) else {
                continue;
            };
            let u = ValueId(u as u32);
            if u == out || life.first > step || life.last < step || !overlaps(w, pu) {
                continue;
            }
            let in_place_ok = overwritable_inputs(&node.op)
                .iter()
                .any(|&k| node.inputs.get(k) == Some(&u))
                && life.last == step
                && pu.offset == w.offset
                && g.ty(u) == g.ty(out);
            if !in_place_ok {
                return Err(format!(
                    "step {step} (`{}`) writes `{}` over `{}`, which is still live",
                    node.op.name(),
                    w.name,
                    pu.name
                ));
            }
        }
    }
    Ok(())
}
