//! Greedy by conflicts: a second ordering for the same placement step, after the "greedy by
//! breadth" idea of Pisarchyk and Lee (2020). Each storage group is weighed by the busiest step
//! of its lifetime (the total bytes live at that step, its conflicts), and groups are placed
//! heaviest first, larger first among equals, each at the lowest offset that fits. Groups in the
//! program's most crowded steps are packed before the ones that only compete with a few.
//!
//! Invariant: the returned offsets are multiples of the alignment, and two items whose
//! intervals overlap get disjoint byte ranges.

use super::greedy_by_size::{place_in_order, Fit, Item, Offsets};

/// The total item bytes live at each step, the "breadth" of the step.
pub(crate) fn breadth(items: &[Item]) -> Vec<u64> {
    let steps = items.iter().map(|i| i.life.last + 1).max().unwrap_or(0);
    let mut delta = vec![0i128; steps + 1];
    for i in items {
        delta[i.life.first] += i.size as i128;
        delta[i.life.last + 1] -= i.size as i128;
    }
    let mut live = 0i128;
    delta[..steps]
        .iter()
        .map(|d| {
            live += d;
            live as u64
        })
        .collect()
}

pub fn plan(items: &[Item], alignment: u64) -> Offsets {
    let b = breadth(items);
    let weight: Vec<u64> = items
        .iter()
        .map(|i| {
            b[i.life.first..=i.life.last]
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        weight[b]
            .cmp(&weight[a])
            .then(items[b].size.cmp(&items[a].size))
            .then(items[a].life.first.cmp(&items[b].life.first))
            .then(a.cmp(&b))
    });
    place_in_order(items, &order, alignment, Fit::First)
}
