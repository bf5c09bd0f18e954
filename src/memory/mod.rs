//! The activation memory planner: every non-constant value gets a region and a byte offset in
//! one arena per memory region.
//!
//! The arena holds node outputs and also the user inputs and outputs, as ExecuTorch's
//! non-constant buffer does, so that the planned size is comparable with its plans and a runtime
//! needs no memory beside the arena. Constants stay in the program and are not planned.
//!
//! Planning runs in four steps: alias analysis ([`alias`]) groups values that share storage,
//! [`lifetime`] gives each group its interval of steps, an offset algorithm
//! ([`greedy_by_size`], [`greedy_by_conflicts`], or both with `best`) places the groups, and
//! [`check`] validates the result independently of how it was made. On a device with several
//! regions the fast ones are filled first (see [`plan`] for the heuristic).
//!
//! Invariant: in a returned plan, no byte is written while another value that occupies it is
//! still to be read, which [`check`] verifies from the plan and the graph alone.

pub mod alias;
mod check;
pub mod greedy_by_conflicts;
pub mod greedy_by_size;
pub mod lifetime;
pub mod search;
mod simulate;

pub use alias::{AliasFlags, AliasKind};
pub use check::check;
pub use simulate::simulate;

use crate::device::Device;
use crate::ir::{Graph, ValueId};
use crate::manifest::{MemoryPlanner, Profile};
use greedy_by_size::{align_up, Item, Offsets};
use lifetime::Interval;
use serde::Serialize;
use std::fmt;
use thiserror::Error;

/// What the planner is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    pub planner: MemoryPlanner,
    pub alias_views: bool,
    pub in_place: bool,
    pub concat_in_place: bool,
}

impl PlanOptions {
    /// The options a profile asks for: each alias flag is on when its pass is in the list.
    pub fn from_profile(p: &Profile) -> PlanOptions {
        let has = |name: &str| p.passes.iter().any(|q| q == name);
        PlanOptions {
            planner: p.memory_planner,
            alias_views: has("alias-views"),
            in_place: has("in-place"),
            concat_in_place: has("concat-in-place"),
        }
    }

    fn flags(&self) -> AliasFlags {
        AliasFlags {
            alias_views: self.alias_views,
            in_place: self.in_place,
            concat_in_place: self.concat_in_place,
        }
    }
}

/// The offset algorithm that produced a region's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    GreedyBySize,
    GreedyByConflicts,
    /// The local search over orders that `best` runs on small graphs ([`search`]).
    Search,
}

/// Where one non-constant value lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub value: ValueId,
    pub name: String,
    /// Index into [`MemoryPlan::regions`].
    pub region: usize,
    /// Byte offset from the start of the region's arena.
    pub offset: u64,
    pub bytes: u64,
    /// Set when the value shares another value's bytes instead of owning a buffer.
    pub alias: Option<AliasKind>,
}

/// A tensor live at a region's peak step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveTensor {
    pub name: String,
    pub bytes: u64,
}

/// One region's share of the plan and how good it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionPlan {
    pub name: String,
    pub capacity: u64,
    pub fast: bool,
    /// Arena bytes this region needs.
    pub planned_bytes: u64,
    /// The most bytes simultaneously live in this region under the same aliasing, which no
    /// layout can beat.
    pub lower_bound: u64,
    /// `planned_bytes / lower_bound` (1 when both are 0).
    pub ratio: f64,
    /// The step where the lower bound is reached, and its op.
    pub peak_step: usize,
    pub peak_op: String,
    /// Storage groups live at the peak, by their owning value's name, largest first.
    pub live_at_peak: Vec<LiveTensor>,
    /// `None` when nothing is placed in the region.
    pub algorithm: Option<Algorithm>,
    /// Number of storage groups placed here.
    pub buffers: usize,
}

/// The whole plan: deterministic for a given graph, options and device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryPlan {
    /// The device's alignment: every buffer that is not an alias starts on a multiple of it.
    pub alignment: u64,
    pub regions: Vec<RegionPlan>,
    /// Indexed by value; `None` for constants.
    pub values: Vec<Option<Placement>>,
    /// The storage groups as placed, in analysis order: each starts on an aligned offset.
    pub buffers: Vec<Buffer>,
}

/// One storage group's buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Buffer {
    /// The value that owns the buffer; the other members alias it.
    pub root: ValueId,
    pub region: usize,
    pub offset: u64,
    /// Size rounded up to the alignment.
    pub bytes: u64,
    /// The steps during which some member is live.
    pub first: usize,
    pub last: usize,
}

impl MemoryPlan {
    /// Arena bytes over all regions.
    pub fn total_bytes(&self) -> u64 {
        self.regions.iter().map(|r| r.planned_bytes).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Error)]
pub enum PlanError {
    #[error("{0}")]
    DoesNotFit(Box<DoesNotFit>),
}

/// The activations do not fit in the device's memory.
#[derive(Clone, Debug, PartialEq)]
pub struct DoesNotFit {
    pub region: String,
    pub capacity: u64,
    pub needed: u64,
    pub peak_step: usize,
    pub peak_op: String,
    pub largest: Vec<(String, u64)>,
}

impl fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "activations need {} bytes in memory region `{}`, which holds {} bytes; \
             the peak is at step {} (`{}`)",
            self.needed, self.region, self.capacity, self.peak_step, self.peak_op
        )?;
        if !self.largest.is_empty() {
            f.write_str(", where the largest live tensors are ")?;
            for (i, (name, bytes)) in self.largest.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "`{name}` ({bytes} bytes)")?;
            }
        }
        f.write_str("\nhelp: use a device with more memory or a memory override in the manifest")
    }
}

/// One region's share: its index in the device, the groups placed there, their offsets, and
/// the algorithm that placed them.
type Assigned = (usize, Vec<usize>, Offsets, Algorithm);

/// How many of the largest live tensors a report or error lists.
const LARGEST: usize = 5;

/// The storage groups of one graph, ready to place.
struct Problem<'g> {
    g: &'g Graph,
    aliasing: alias::Aliasing,
    items: Vec<Item>,
    /// Accesses of each group (member definitions plus reads), for the fast-region heuristic.
    accesses: Vec<usize>,
}

/// Plans the arena of `g` for `device`.
///
/// With several regions, regions marked `fast` are filled first (by name), then the others (by
/// name); the last region takes whatever is left and is the one named when the plan does not
/// fit. A region other than the last is filled greedily: storage groups are tried in order of
/// accesses per step of lifetime (descending; smaller first among equals), since a group read
/// often over a short life gains the most fast-memory traffic for the space-time it takes, and
/// each is kept when the region's plan with it still fits.
pub fn plan(g: &Graph, opts: &PlanOptions, device: &Device) -> Result<MemoryPlan, PlanError> {
    let problem = Problem::new(g, opts.flags(), device.alignment);
    let mut order: Vec<usize> = device
        .regions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.fast)
        .map(|(i, _)| i)
        .collect();
    order.extend(
        device
            .regions
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.fast)
            .map(|(i, _)| i),
    );

    let mut remaining: Vec<usize> = (0..problem.items.len()).collect();
    let mut assigned: Vec<Assigned> = Vec::new();
    for (k, &r) in order.iter().enumerate() {
        let region = &device.regions[r];
        let last = k + 1 == order.len();
        let chosen = if last {
            std::mem::take(&mut remaining)
        } else {
            let picked = problem.fill(&remaining, region.bytes, opts.planner, device.alignment);
            remaining.retain(|i| !picked.contains(i));
            picked
        };
        let (offsets, algorithm) = problem.place(&chosen, opts.planner, device.alignment);
        if offsets.total > region.bytes {
            let (peak_step, _, live) = problem.peak(&chosen);
            return Err(PlanError::DoesNotFit(Box::new(DoesNotFit {
                region: region.name.clone(),
                capacity: region.bytes,
                needed: offsets.total,
                peak_step,
                peak_op: problem.op_at(peak_step),
                largest: live
                    .into_iter()
                    .take(LARGEST)
                    .map(|t| (t.name, t.bytes))
                    .collect(),
            })));
        }
        assigned.push((r, chosen, offsets, algorithm));
    }
    assigned.sort_by_key(|a| a.0);
    Ok(problem.finish(device, assigned))
}

impl<'g> Problem<'g> {
    fn new(g: &'g Graph, flags: AliasFlags, alignment: u64) -> Problem<'g> {
        let aliasing = alias::analyze(g, flags);
        let lives = lifetime::group_intervals(g, &aliasing);
        let uses = alias::Uses::of(g);
        let items = aliasing
            .groups
            .iter()
            .zip(&lives)
            .map(|(grp, &life)| Item {
                size: align_up(grp.bytes as u64, alignment),
                life,
            })
            .collect();
        let accesses = aliasing
            .groups
            .iter()
            .map(|grp| grp.members.iter().map(|m| 1 + uses.count[m.index()]).sum())
            .collect();
        Problem {
            g,
            aliasing,
            items,
            accesses,
        }
    }

    /// Places the groups `chosen` with the planner asked for; `Best` keeps the smaller arena,
    /// greedy by size on a tie, and on small graphs whose greedy layouts miss the lower bound
    /// also tries a local search over placement orders.
    fn place(
        &self,
        chosen: &[usize],
        planner: MemoryPlanner,
        alignment: u64,
    ) -> (Offsets, Algorithm) {
        let items: Vec<Item> = chosen.iter().map(|&i| self.items[i]).collect();
        match planner {
            MemoryPlanner::GreedyBySize => (
                greedy_by_size::plan(&items, alignment),
                Algorithm::GreedyBySize,
            ),
            MemoryPlanner::GreedyByConflicts => (
                greedy_by_conflicts::plan(&items, alignment),
                Algorithm::GreedyByConflicts,
            ),
            MemoryPlanner::Best => {
                let a = greedy_by_size::plan(&items, alignment);
                let b = greedy_by_conflicts::plan(&items, alignment);
                let (greedy, algorithm) = if b.total < a.total {
                    (b, Algorithm::GreedyByConflicts)
                } else {
                    (a, Algorithm::GreedyBySize)
                };
                let bound = greedy_by_conflicts::breadth(&items)
                    .into_iter()
                    .max()
                    .unwrap_or(0);
                if greedy.total > bound && items.len() <= search::MAX_ITEMS {
                    let searched = search::improve(&items, alignment, bound);
                    if searched.total < greedy.total {
                        return (searched, Algorithm::Search);
                    }
                }
                (greedy, algorithm)
            }
        }
    }

    /// The groups among `candidates` that a region of `capacity` bytes takes (see [`plan`]).
    fn fill(
        &self,
        candidates: &[usize],
        capacity: u64,
        planner: MemoryPlanner,
        alignment: u64,
    ) -> Vec<usize> {
        let mut order = candidates.to_vec();
        let density = |i: usize| {
            let steps = (self.items[i].life.last - self.items[i].life.first + 1) as f64;
            self.accesses[i] as f64 / steps
        };
        order.sort_by(|&a, &b| {
            density(b)
                .total_cmp(&density(a))
                .then(self.items[a].size.cmp(&self.items[b].size))
                .then(a.cmp(&b))
        });
        let mut picked: Vec<usize> = Vec::new();
        for i in order {
            if self.items[i].size > capacity {
                continue;
            }
            picked.push(i);
            let fits = self.lower_bound(&picked) <= capacity
                && self.place(&picked, planner, alignment).0.total <= capacity;
            if !fits {
                picked.pop();
            }
        }
        picked.sort_unstable();
        picked
    }

    fn lower_bound(&self, chosen: &[usize]) -> u64 {
        let items: Vec<Item> = chosen.iter().map(|&i| self.items[i]).collect();
        greedy_by_conflicts::breadth(&items)
            .into_iter()
            .max()
            .unwrap_or(0)
    }

    /// The first step with the most live bytes among `chosen`, those bytes, and the groups live
    /// there, largest first.
    fn peak(&self, chosen: &[usize]) -> (usize, u64, Vec<LiveTensor>) {
        let items: Vec<Item> = chosen.iter().map(|&i| self.items[i]).collect();
        let b = greedy_by_conflicts::breadth(&items);
        let (step, bytes) =
            b.iter().copied().enumerate().fold(
                (0, 0),
                |best, (s, x)| if x > best.1 { (s, x) } else { best },
            );
        let mut live: Vec<LiveTensor> = chosen
            .iter()
            .filter(|&&i| {
                let l = self.items[i].life;
                l.first <= step && step <= l.last && self.items[i].size > 0
            })
            .map(|&i| LiveTensor {
                name: self.g.value(self.aliasing.groups[i].root).name.clone(),
                bytes: self.items[i].size,
            })
            .collect();
        live.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        (step, bytes, live)
    }

    fn op_at(&self, step: usize) -> String {
        match self.g.nodes.get(step) {
            Some(n) => format!("{} -> {}", n.op.name(), self.g.value(n.output).name),
            None => "end of program".to_string(),
        }
    }

    fn finish(self, device: &Device, assigned: Vec<Assigned>) -> MemoryPlan {
        let mut group_place = vec![(0usize, 0u64); self.items.len()];
        let mut regions = Vec::with_capacity(device.regions.len());
        let mut by_region: Vec<Option<&Assigned>> = vec![None; device.regions.len()];
        for a in &assigned {
            by_region[a.0] = Some(a);
        }
        for (r, region) in device.regions.iter().enumerate() {
            let (chosen, total, algorithm) = match by_region[r] {
                Some((_, chosen, offsets, algorithm)) => {
                    for (k, &i) in chosen.iter().enumerate() {
                        group_place[i] = (r, offsets.offsets[k]);
                    }
                    (
                        chosen.as_slice(),
                        offsets.total,
                        (!chosen.is_empty()).then_some(*algorithm),
                    )
                }
                None => (&[][..], 0, None),
            };
            let (peak_step, lower_bound, live) = self.peak(chosen);
            regions.push(RegionPlan {
                name: region.name.clone(),
                capacity: region.bytes,
                fast: region.fast,
                planned_bytes: total,
                lower_bound,
                ratio: if lower_bound == 0 {
                    1.0
                } else {
                    total as f64 / lower_bound as f64
                },
                peak_step,
                peak_op: self.op_at(peak_step),
                live_at_peak: live,
                algorithm,
                buffers: chosen.len(),
            });
        }
        let values = self
            .aliasing
            .slots
            .iter()
            .enumerate()
            .map(|(v, slot)| {
                slot.map(|s| {
                    let (region, base) = group_place[s.group];
                    let id = ValueId(v as u32);
                    Placement {
                        value: id,
                        name: self.g.value(id).name.clone(),
                        region,
                        offset: base + s.offset as u64,
                        bytes: self.g.ty(id).byte_size() as u64,
                        alias: s.alias,
                    }
                })
            })
            .collect();
        let buffers = self
            .aliasing
            .groups
            .iter()
            .zip(&self.items)
            .zip(&group_place)
            .map(|((grp, item), &(region, offset))| Buffer {
                root: grp.root,
                region,
                offset,
                bytes: item.size,
                first: item.life.first,
                last: item.life.last,
            })
            .collect();
        MemoryPlan {
            buffers,
            alignment: device.alignment,
            regions,
            values,
        }
    }
}

/// Lifetimes of individual values, for reports and the checker.
pub fn value_intervals(g: &Graph) -> Vec<Option<Interval>> {
    lifetime::value_intervals(g)
}

#[cfg(test)]
mod tests;
