//! Alias analysis: which values can share one buffer without a copy.
//!
//! Three rewrites, each behind its own flag, group values into storage groups:
//!
//! - **views** (`alias-views`): a `Reshape`, or a `Slice` that is contiguous (every dim before
//!   its axis has size 1, and its step is 1 or it keeps at most one element), reads its input's
//!   bytes in place, at offset `start × inner stride`;
//! - **in place** (`in-place`): an element-wise `Unary`/`Binary`, or a `BatchNorm`, writes over
//!   an input of the same dtype and shape when that input's whole group dies at this node and holds no user input or
//!   output;
//! - **concat in place** (`concat-in-place`): when every input of a `Concat` along its outermost
//!   non-unit axis is a node's result used only by that concat, whose group holds nothing else
//!   alive afterwards, the producers write straight into the concat's output, which then costs
//!   no copy.
//!
//! Constants are never in a group (they are not in the arena) and are never aliased: a view of a
//! constant is materialized as its own buffer.
//!
//! Invariant: two values of one group overlap in bytes only where reading one through the other
//! is what the program means (a view, or an in-place result that replaced a dead input), and a
//! group's members are never written while another member that overlaps them is still to be read.

use crate::ir::{Graph, Op, ValueDef, ValueId};
use serde::Serialize;

/// The three alias flags, each on when the profile's passes list names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AliasFlags {
    pub alias_views: bool,
    pub in_place: bool,
    pub concat_in_place: bool,
}

/// Why a value shares another value's storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AliasKind {
    /// The value is a view of `of` (a reshape or contiguous slice); its node copies nothing.
    View { of: ValueId },
    /// The value overwrote `of`, an element-wise input that died at this node.
    InPlace { of: ValueId },
    /// The value is written directly inside `into`, the output of a concat: it is one of the
    /// concat's inputs (at its place in the output), or the owner of storage that one of them
    /// shares.
    Concat { into: ValueId },
}

/// Where one non-constant value lives inside its storage group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub group: usize,
    /// Byte offset of the value inside the group's buffer.
    pub offset: usize,
    pub alias: Option<AliasKind>,
}

/// A set of values sharing one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The value whose buffer this is (its byte size is the group's).
    pub root: ValueId,
    pub bytes: usize,
    /// Members in the order they joined, the root first.
    pub members: Vec<ValueId>,
}

/// The result of alias analysis: a slot for every non-constant value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aliasing {
    /// Indexed by value; `None` for constants.
    pub slots: Vec<Option<Slot>>,
    pub groups: Vec<Group>,
}

/// Uses of each value: how many times it is read by a node (duplicates count) and the step
/// of its last read, where graph outputs count as read at step `nodes.len()`.
pub(crate) struct Uses {
    pub count: Vec<usize>,
    pub last: Vec<usize>,
    pub is_io: Vec<bool>,
}

impl Uses {
    pub(crate) fn of(g: &Graph) -> Uses {
        let n = g.values.len();
        let mut count = vec![0usize; n];
        let mut last = vec![0usize; n];
        let mut is_io = vec![false; n];
        for (v, value) in g.values.iter().enumerate() {
            if let ValueDef::Node(nid) = value.def {
                last[v] = nid.index();
            }
        }
        for (i, node) in g.nodes.iter().enumerate() {
            for v in &node.inputs {
                count[v.index()] += 1;
                last[v.index()] = last[v.index()].max(i);
            }
        }
        for v in g.outputs.iter().chain(&g.inputs) {
            is_io[v.index()] = true;
        }
        for v in &g.outputs {
            count[v.index()] += 1;
            last[v.index()] = g.nodes.len();
        }
        Uses { count, last, is_io }
    }
}

/// The byte offset at which a contiguous slice's output starts inside its input, or `None` when
/// the slice is not contiguous and so must be copied.
pub fn contiguous_slice_offset(
    shape: &[usize],
    elem: usize,
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
) -> Option<usize> {
    if axis >= shape.len() || shape[..axis].iter().any(|&d| d != 1) {
        return None;
    }
    let kept = if end > start {
        (end - start).div_ceil(step.max(1))
    } else {
        0
    };
    if step != 1 && kept > 1 {
        return None;
    }
    let inner: usize = shape[axis + 1..].iter().product();
    Some(start * inner * elem)
}

/// The inputs an op may write its result over: those where output element `i` depends on input
/// element `i` alone (and on operands of other shapes that are never overwritten), so a kernel
/// that reads element `i` before writing it gives the same result in place. Batch norm
/// qualifies because its other operands are per-channel vectors.
pub fn overwritable_inputs(op: &Op) -> &'static [usize] {
    match op {
        Op::Unary(_) => &[0],
        Op::Binary(_) => &[0, 1],
        Op::BatchNorm { .. } => &[0],
        _ => &[],
    }
}

/// Whether a concat along `axis` lays its inputs out one after another in bytes, which holds
/// when every output dim before the axis has size 1.
pub fn concat_is_outermost(out_shape: &[usize], axis: usize) -> bool {
    axis < out_shape.len() && out_shape[..axis].iter().all(|&d| d == 1)
}

/// Per-group facts the rules consult while groups grow.
struct GroupState {
    /// Largest last-use step over the members.
    last: usize,
    /// Whether a member is a user input or output, whose bytes must not be overwritten.
    has_io: bool,
}

/// Groups the graph's non-constant values into storage groups under `flags`.
pub fn analyze(g: &Graph, flags: AliasFlags) -> Aliasing {
    let uses = Uses::of(g);
    let mut slots: Vec<Option<Slot>> = vec![None; g.values.len()];
    let mut groups: Vec<Group> = Vec::new();
    let mut state: Vec<GroupState> = Vec::new();

    let new_group = |v: ValueId,
                     slots: &mut Vec<Option<Slot>>,
                     groups: &mut Vec<Group>,
                     state: &mut Vec<GroupState>| {
        slots[v.index()] = Some(Slot {
            group: groups.len(),
            offset: 0,
            alias: None,
        });
        groups.push(Group {
            root: v,
            bytes: g.ty(v).byte_size(),
            members: vec![v],
        });
        state.push(GroupState {
            last: uses.last[v.index()],
            has_io: uses.is_io[v.index()],
        });
    };
    let join = |v: ValueId,
                group: usize,
                offset: usize,
                alias: AliasKind,
                slots: &mut Vec<Option<Slot>>,
                groups: &mut Vec<Group>,
                state: &mut Vec<GroupState>| {
        slots[v.index()] = Some(Slot {
            group,
            offset,
            alias: Some(alias),
        });
        groups[group].members.push(v);
        state[group].last = state[group].last.max(uses.last[v.index()]);
        state[group].has_io |= uses.is_io[v.index()];
    };

    for &v in &g.inputs {
        if slots[v.index()].is_none() {
            new_group(v, &mut slots, &mut groups, &mut state);
        }
    }

    for (step, node) in g.nodes.iter().enumerate() {
        let out = node.output;
        let out_ty = g.ty(out);
        let slot_of = |v: ValueId, slots: &Vec<Option<Slot>>| slots[v.index()];

        // Views: the output reads the input's bytes where they already are.
        if flags.alias_views && node.inputs.len() == 1 {
            if let Some(src) = slot_of(node.inputs[0], &slots) {
                let in_ty = g.ty(node.inputs[0]);
                let delta = match &node.op {
                    Op::Reshape { .. } if in_ty.byte_size() == out_ty.byte_size() => Some(0),
                    Op::Slice {
                        axis,
                        start,
                        end,
                        step: s,
                    } if in_ty.dtype == out_ty.dtype => contiguous_slice_offset(
                        &in_ty.shape,
                        in_ty.dtype.size(),
                        *axis,
                        *start,
                        *end,
                        *s,
                    ),
                    _ => None,
                };
                if let Some(delta) = delta {
                    let alias = AliasKind::View { of: node.inputs[0] };
                    join(
                        out,
                        src.group,
                        src.offset + delta,
                        alias,
                        &mut slots,
                        &mut groups,
                        &mut state,
                    );
                    continue;
                }
            }
        }

        // In place: an element-wise op overwrites an input whose whole group dies here.
        let overwritable = overwritable_inputs(&node.op);
        if flags.in_place && !overwritable.is_empty() {
            let chosen = overwritable.iter().find_map(|&k| {
                let x = *node.inputs.get(k)?;
                let s = slot_of(x, &slots)?;
                let st = &state[s.group];
                let x_ty = g.ty(x);
                if st.has_io || st.last > step || x_ty != out_ty {
                    return None;
                }
                // Another input in the same group must be read from exactly the same bytes in
                // the same shape, or writing element i would clobber an element still to be read.
                let others_ok = node.inputs.iter().all(|&y| match slot_of(y, &slots) {
                    Some(t) if t.group == s.group => t.offset == s.offset && g.ty(y) == out_ty,
                    _ => true,
                });
                others_ok.then_some((x, s))
            });
            if let Some((x, s)) = chosen {
                join(
                    out,
                    s.group,
                    s.offset,
                    AliasKind::InPlace { of: x },
                    &mut slots,
                    &mut groups,
                    &mut state,
                );
                continue;
            }
        }

        // Concat in place: move every input's whole group inside the concat's output buffer.
        if flags.concat_in_place {
            if let Op::Concat { axis } = node.op {
                if concat_is_outermost(&out_ty.shape, axis)
                    && concat_inputs_movable(
                        g,
                        node.inputs.as_slice(),
                        step,
                        &uses,
                        &slots,
                        &groups,
                        &state,
                    )
                {
                    new_group(out, &mut slots, &mut groups, &mut state);
                    let target = slots[out.index()].expect("just created").group;
                    let mut prefix = 0usize;
                    for &x in &node.inputs {
                        let from = slots[x.index()].expect("checked movable").group;
                        let members = std::mem::take(&mut groups[from].members);
                        groups[from].bytes = 0;
                        for m in members {
                            let old = slots[m.index()].expect("members have slots");
                            // A member that already aliases another (a view, an in-place
                            // result) keeps saying so; the group's owner now lives inside the
                            // concat's output.
                            let alias = old.alias.or(Some(AliasKind::Concat { into: out }));
                            slots[m.index()] = Some(Slot {
                                group: target,
                                offset: prefix + old.offset,
                                alias,
                            });
                            groups[target].members.push(m);
                        }
                        state[target].last = state[target].last.max(state[from].last);
                        prefix += g.ty(x).byte_size();
                    }
                    continue;
                }
            }
        }

        new_group(out, &mut slots, &mut groups, &mut state);
    }

    compact(slots, groups)
}

/// Whether every concat input is a node result, used only by this concat, alone at offset 0 of
/// a group no bigger than itself whose members are all dead after the concat and none of which
/// is a user input or output, with no two inputs sharing a group.
fn concat_inputs_movable(
    g: &Graph,
    inputs: &[ValueId],
    step: usize,
    uses: &Uses,
    slots: &[Option<Slot>],
    groups: &[Group],
    state: &[GroupState],
) -> bool {
    let out_dtype = g.ty(g.nodes[step].output).dtype;
    let mut seen = Vec::with_capacity(inputs.len());
    for &x in inputs {
        if !matches!(g.value(x).def, ValueDef::Node(_)) || uses.count[x.index()] != 1 {
            return false;
        }
        let Some(s) = slots[x.index()] else {
            return false;
        };
        let ty = g.ty(x);
        let st = &state[s.group];
        if ty.dtype != out_dtype
            || s.offset != 0
            || groups[s.group].bytes != ty.byte_size()
            || st.has_io
            || st.last > step
            || seen.contains(&s.group)
        {
            return false;
        }
        seen.push(s.group);
    }
    !inputs.is_empty()
}

/// Drops the groups emptied by concat moves and renumbers the rest in creation order.
fn compact(mut slots: Vec<Option<Slot>>, groups: Vec<Group>) -> Aliasing {
    let mut renumber = vec![usize::MAX; groups.len()];
    let mut kept = Vec::with_capacity(groups.len());
    for (i, grp) in groups.into_iter().enumerate() {
        if !grp.members.is_empty() {
            renumber[i] = kept.len();
            kept.push(grp);
        }
    }
    for s in slots.iter_mut().flatten() {
        s.group = renumber[s.group];
    }
    Aliasing {
        slots,
        groups: kept,
    }
}
