//! A local search over placement orders for small problems, which `best` runs when neither
//! greedy order reaches the lower bound: starting from greedy by size's order, it swaps two
//! positions (chosen by a fixed-seed generator, so plans stay deterministic) and keeps the swap
//! when the best-fit layout of the new order is no larger. It stops at the lower bound or after
//! a fixed number of tries.
//!
//! Invariant: the result is never larger than greedy by size's layout and, like every layout
//! from `place_in_order`, gives overlapping lifetimes disjoint, aligned bytes.

use super::greedy_by_size::{place_in_order, size_order, Fit, Item, Offsets};

/// Groups above this count are not searched: each try costs a full placement.
pub const MAX_ITEMS: usize = 64;
const TRIES: usize = 400;

pub fn improve(items: &[Item], alignment: u64, lower_bound: u64) -> Offsets {
    let mut order = size_order(items);
    let mut best = place_in_order(items, &order, alignment, Fit::Best);
    if items.len() < 2 {
        return best;
    }
    // A 64-bit linear congruential generator (Knuth's MMIX constants): reproducible, and
    // random enough to pick swap positions.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % n as u64) as usize
    };
    for _ in 0..TRIES {
        if best.total <= lower_bound {
            break;
        }
        let (i, j) = (next(order.len()), next(order.len()));
        if i == j {
            continue;
        }
        order.swap(i, j);
        let tried = place_in_order(items, &order, alignment, Fit::Best);
        if tried.total <= best.total {
            best = tried;
        } else {
            order.swap(i, j);
        }
    }
    best
}
