//! Kernel selection: for each instruction of a program, the kernel variant a target's runtime
//! will run. Invariant: the variant reported for an instruction is exactly the one the
//! generated runtime calls, because both come from the bindings' chain order over the same
//! kept set.
//!
//! The bindings (`runtime/src/ops/`) try a family's variants fastest first and call the first
//! one that accepts the operands. Selection therefore decides only which variants to keep:
//!
//! - `speed`: for each instruction, the fastest variant that accepts it and that the device's
//!   ISA allows; the kept set is the union.
//! - `size`: per family, the cheaper of two kept sets: the single smallest variant that
//!   accepts every instruction of the family, or the smallest accepting variant per
//!   instruction (counting each kept variant's code once).
//!
//! Then each instruction's variant is the first kept one in its chain order, which is what
//! runs on the device.

use crate::device::Device;
use crate::manifest::KernelObjective;
use crate::rt::exec::{for_each_operand, tensor_meta, MAX_LIST};
use crate::rt::kernels::meta::KernelInfo;
use crate::rt::ops::{accepting, TensorMeta};
use crate::rt::{decode, pte};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// Every family's variant table, in the kernels crate's module order.
pub fn all_variants() -> impl Iterator<Item = &'static KernelInfo> {
    use crate::rt::kernels as k;
    let tables: [&'static [KernelInfo]; 14] = [
        k::attention::VARIANTS,
        k::binary::VARIANTS,
        k::conv::VARIANTS,
        k::conv_transpose::VARIANTS,
        k::index::VARIANTS,
        k::layout::VARIANTS,
        k::matmul::VARIANTS,
        k::norm::VARIANTS,
        k::pool::VARIANTS,
        k::reduce::VARIANTS,
        k::softmax::VARIANTS,
        k::unary::VARIANTS,
        k::upsample::VARIANTS,
        k::where_::VARIANTS,
    ];
    tables.into_iter().flatten()
}

/// The variant named `name` (`family.variant`).
pub fn variant(name: &str) -> Option<&'static KernelInfo> {
    all_variants().find(|v| v.name == name)
}

#[derive(Debug, Error)]
pub enum SelectError {
    #[error("the program is not valid: {0}")]
    Pte(String),
    #[error("the program has no `forward` method")]
    NoForward,
    #[error("instruction {index}: {message}")]
    Instruction { index: usize, message: String },
    #[error(
        "instruction {index} ({op}): no kernel variant accepts its operands on device `{device}`{rejected}"
    )]
    NoKernel {
        index: usize,
        op: String,
        device: String,
        rejected: String,
    },
}

/// A variant that accepted an instruction's operands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    pub variant: &'static str,
    pub speed: u8,
    pub code_bytes: u32,
    /// Why the device cannot use it (`needs avx512f`), or None when it can.
    pub unavailable: Option<String>,
}

/// The decision for one instruction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Choice {
    pub instruction: usize,
    pub op: String,
    pub variant: &'static str,
    pub reason: String,
    /// Every variant that accepts the operands, in the bindings' order (fastest first).
    pub candidates: Vec<Candidate>,
}

/// The kept variants and each instruction's choice.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selection {
    pub objective: &'static str,
    pub device: String,
    /// `family.variant` names, sorted.
    pub kept: BTreeSet<String>,
    /// Sum of the kept variants' measured code sizes.
    pub code_bytes: u64,
    pub choices: Vec<Choice>,
}

fn unavailable(v: &KernelInfo, device: &Device) -> Option<String> {
    let missing: Vec<&str> = v
        .isa
        .iter()
        .copied()
        .filter(|f| !device.features.iter().any(|d| d == f))
        .collect();
    (!missing.is_empty()).then(|| format!("needs {}", missing.join(", ")))
}

/// One instruction's accepting variants, as the bindings list them.
struct Node {
    index: usize,
    op: String,
    candidates: Vec<Candidate>,
}

fn family(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Decodes every instruction of `blob`'s `forward` plan and lists the variants that accept it.
fn nodes(blob: &[u8], device: &Device) -> Result<Vec<Node>, SelectError> {
    let program = pte::Program::parse(blob).map_err(|e| SelectError::Pte(e.to_string()))?;
    let plan = program
        .plan_named("forward")
        .ok_or(SelectError::NoForward)?;
    let mut out = Vec::new();
    for index in 0..plan.instructions_len() {
        let step = match decode::decode(&plan, index) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                return Err(SelectError::Instruction {
                    index,
                    message: e.to_string(),
                })
            }
        };
        let bad = |message: &str| SelectError::Instruction {
            index,
            message: message.to_string(),
        };
        let mut ins: Vec<TensorMeta> = Vec::with_capacity(4);
        let mut err = None;
        for_each_operand(&plan, &step, |v| match tensor_meta(&plan, v) {
            Ok(m) => ins.push(m),
            Err(e) => err = err.or(Some(e)),
        })
        .map_err(bad)?;
        if let Some(e) = err {
            return Err(bad(e));
        }
        debug_assert!(ins.len() <= MAX_LIST);
        let out_meta = tensor_meta(&plan, step.output).map_err(bad)?;
        let mut names = Vec::new();
        accepting(&step, &ins, &out_meta, &mut |n| names.push(n));
        let candidates = names
            .into_iter()
            .map(|n| {
                let info = variant(n);
                Candidate {
                    variant: n,
                    speed: info.map_or(0, |v| v.speed),
                    code_bytes: info.map_or(0, |v| v.code_bytes),
                    unavailable: info.and_then(|v| unavailable(v, device)),
                }
            })
            .collect();
        out.push(Node {
            index,
            op: step.name().to_string(),
            candidates,
        });
    }
    Ok(out)
}

/// Chooses the kernels of `blob` for `device` under `objective`.
pub fn select(
    blob: &[u8],
    device: &Device,
    objective: KernelObjective,
) -> Result<Selection, SelectError> {
    let nodes = nodes(blob, device)?;
    for n in &nodes {
        if !n.candidates.iter().any(|c| c.unavailable.is_none()) {
            let rejected: Vec<String> = n
                .candidates
                .iter()
                .map(|c| format!("{} ({})", c.variant, c.unavailable.as_deref().unwrap_or("")))
                .collect();
            return Err(SelectError::NoKernel {
                index: n.index,
                op: n.op.clone(),
                device: device.name.clone(),
                rejected: if rejected.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; candidates the device lacks features for: {}",
                        rejected.join(", ")
                    )
                },
            });
        }
    }
    // Each instruction's candidates the device can run, computed once: the size objective
    // consults them for every pair of a family's members.
    let usable: Vec<Vec<&Candidate>> = nodes
        .iter()
        .map(|n| {
            n.candidates
                .iter()
                .filter(|c| c.unavailable.is_none())
                .collect()
        })
        .collect();

    let mut kept: BTreeSet<String> = BTreeSet::new();
    match objective {
        KernelObjective::Speed => {
            for u in &usable {
                kept.insert(u[0].variant.to_string());
            }
        }
        KernelObjective::Size => {
            let mut by_family: BTreeMap<&str, Vec<&[&Candidate]>> = BTreeMap::new();
            for u in &usable {
                by_family.entry(family(u[0].variant)).or_default().push(u);
            }
            for members in by_family.values() {
                // The per-instruction minimum, each kept variant counted once.
                let mut each: BTreeMap<&'static str, u32> = BTreeMap::new();
                for u in members {
                    let c = u
                        .iter()
                        .min_by_key(|c| (c.code_bytes, c.variant))
                        .expect("checked above: every node has a usable candidate");
                    each.insert(c.variant, c.code_bytes);
                }
                let each_cost: u64 = each.values().map(|&b| b as u64).sum();
                // The smallest single variant that accepts every member.
                let single = members[0]
                    .iter()
                    .filter(|c| {
                        members
                            .iter()
                            .all(|u| u.iter().any(|d| d.variant == c.variant))
                    })
                    .min_by_key(|c| (c.code_bytes, c.variant));
                match single {
                    Some(c) if (c.code_bytes as u64) <= each_cost => {
                        kept.insert(c.variant.to_string());
                    }
                    _ => kept.extend(each.keys().map(|k| k.to_string())),
                }
            }
        }
    }

    let objective_name = match objective {
        KernelObjective::Speed => "speed",
        KernelObjective::Size => "size",
    };
    let mut choices = Vec::with_capacity(nodes.len());
    for n in nodes {
        let pick = n
            .candidates
            .iter()
            .position(|c| c.unavailable.is_none() && kept.contains(c.variant))
            .expect("every node's selected variant is kept");
        let chosen = &n.candidates[pick];
        let faster: Vec<String> = n.candidates[..pick]
            .iter()
            .map(|c| match &c.unavailable {
                Some(why) => format!("{} {why}", c.variant),
                None => format!("{} not kept", c.variant),
            })
            .collect();
        let reason = match objective {
            KernelObjective::Speed if faster.is_empty() => format!(
                "fastest of {} accepting variant(s) (speed tier {})",
                n.candidates.len(),
                chosen.speed
            ),
            KernelObjective::Speed => format!(
                "fastest the device allows (speed tier {}); faster: {}",
                chosen.speed,
                faster.join("; ")
            ),
            KernelObjective::Size => format!(
                "smallest kept code for its family ({} bytes){}",
                chosen.code_bytes,
                if faster.is_empty() {
                    String::new()
                } else {
                    format!("; faster but not kept: {}", faster.join("; "))
                }
            ),
        };
        choices.push(Choice {
            instruction: n.index,
            op: n.op,
            variant: chosen.variant,
            reason,
            candidates: n.candidates,
        });
    }
    let code_bytes = kept
        .iter()
        .filter_map(|k| variant(k))
        .map(|v| v.code_bytes as u64)
        .sum();
    Ok(Selection {
        objective: objective_name,
        device: device.name.clone(),
        kept,
        code_bytes,
        choices,
    })
}
