//! Lifetimes of storage groups over the execution order.
//!
//! Step `i` is the execution of node `i`. A node output is born at its node's step; a user input
//! is born at step 0; a value dies at the step of its last read, and a user output survives to
//! step `nodes.len()`, one past the last node. A node's inputs and its output are therefore live
//! at the same step, which is what keeps a kernel from writing over what it is still reading
//! (in-place results avoid the conflict by being in their input's group).
//!
//! Invariant: a group's interval `[first, last]` covers every step at which any member is
//! written or read, so two groups whose intervals are disjoint may share bytes.

use super::alias::{Aliasing, Uses};
use crate::ir::{Graph, ValueDef};

/// An inclusive range of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub first: usize,
    pub last: usize,
}

impl Interval {
    pub fn overlaps(self, other: Interval) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// The interval of one value alone: from its definition to its last read.
pub fn value_intervals(g: &Graph) -> Vec<Option<Interval>> {
    let uses = Uses::of(g);
    g.values
        .iter()
        .enumerate()
        .map(|(v, value)| match value.def {
            ValueDef::Const(_) => None,
            ValueDef::Input(_) => Some(Interval {
                first: 0,
                last: uses.last[v],
            }),
            ValueDef::Node(n) => Some(Interval {
                first: n.index(),
                last: uses.last[v].max(n.index()),
            }),
        })
        .collect()
}

/// The interval of every storage group: the union of its members' intervals.
pub fn group_intervals(g: &Graph, aliasing: &Aliasing) -> Vec<Interval> {
    let per_value = value_intervals(g);
    aliasing
        .groups
        .iter()
        .map(|grp| {
            grp.members
                .iter()
                .filter_map(|m| per_value[m.index()])
                .reduce(|a, b| Interval {
                    first: a.first.min(b.first),
                    last: a.last.max(b.last),
                })
                .expect("a group has at least one non-constant member")
        })
        .collect()
}
