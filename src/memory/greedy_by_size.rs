//! Greedy by size (Pisarchyk and Lee, 2020, "Efficient Memory Management for Deep Neural Net
//! Inference", section 4.3): storage groups are placed largest first, each into the smallest
//! gap that fits it among the already placed groups whose lifetimes intersect its own, or above
//! all of them when no gap fits.
//!
//! Invariant: the returned offsets are multiples of the alignment, and two items whose
//! intervals overlap get disjoint byte ranges.

use super::lifetime::Interval;

/// One buffer to place: its size in bytes, already rounded up to the alignment, and its
/// lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub size: u64,
    pub life: Interval,
}

/// Offsets for a list of items and the arena size they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub offsets: Vec<u64>,
    pub total: u64,
}

pub(crate) fn align_up(x: u64, alignment: u64) -> u64 {
    x.div_ceil(alignment) * alignment
}

/// How a gap is chosen among those that fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The lowest offset that fits.
    First,
    /// The smallest gap that fits (lowest offset among equals).
    Best,
}

/// Places `items` in the given order. Each item goes into a gap among the placed items whose
/// lifetimes intersect its own, chosen by `fit`, or above them all.
pub(crate) fn place_in_order(items: &[Item], order: &[usize], alignment: u64, fit: Fit) -> Offsets {
    let mut offsets = vec![0u64; items.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(items.len());
    let mut busy: Vec<(u64, u64)> = Vec::new();
    let mut total = 0u64;
    for &i in order {
        let item = items[i];
        busy.clear();
        busy.extend(
            placed
                .iter()
                .filter(|&&p| items[p].life.overlaps(item.life) && items[p].size > 0)
                .map(|&p| (offsets[p], offsets[p] + items[p].size)),
        );
        busy.sort_unstable();
        let mut cursor = 0u64;
        let mut best: Option<(u64, u64)> = None;
        for &(start, end) in &busy {
            if start >= cursor + item.size {
                let gap = start - cursor;
                let better = match (fit, best) {
                    (_, None) => true,
                    (Fit::Best, Some((_, g))) => gap < g,
                    (Fit::First, Some(_)) => false,
                };
                if better {
                    best = Some((cursor, gap));
                }
                if fit == Fit::First {
                    break;
                }
            }
            cursor = cursor.max(align_up(end, alignment));
        }
        let offset = best.map_or(cursor, |(o, _)| o);
        offsets[i] = offset;
        total = total.max(offset + item.size);
        placed.push(i);
    }
    Offsets { offsets, total }
}

/// Greedy by size's order: largest first, ties broken by earlier birth, then by index so the
/// result is deterministic.
pub fn size_order(items: &[Item]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        items[b]
            .size
            .cmp(&items[a].size)
            .then(items[a].life.first.cmp(&items[b].life.first))
            .then(a.cmp(&b))
    });
    order
}

/// Greedy by size with best fit, in [`size_order`].
pub fn plan(items: &[Item], alignment: u64) -> Offsets {
    place_in_order(items, &size_order(items), alignment, Fit::Best)
}
