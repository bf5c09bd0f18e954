//! Reads a `.pte` file into the owned `model::Program` through the runtime's validating reader.
//! Invariant: every check is made by `rt::pte::Program::parse`; this module only converts.
//!
//! The format stores where each constant starts, not how long it is. A constant's length is
//! therefore taken from the tensors that use it (the largest byte size among them); a constant
//! no tensor uses extends to the next larger distinct offset or to the segment's end, and so
//! may carry the alignment padding the writer inserted.

use std::sync::Arc;

use super::model::{
    Allocation, Chain, EValue, ExecutionPlan, Instruction, Operator, Program, ScalarType, Tensor,
};
use crate::rt::pte;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("invalid .pte file: {0}")]
    Invalid(pte::PteError),
    #[error("plan {plan} value {value}: scalar type {code} has no model::ScalarType")]
    ScalarType { plan: usize, value: usize, code: i8 },
}

fn scalar_type(code: i8) -> Option<ScalarType> {
    Some(match code {
        0 => ScalarType::Byte,
        1 => ScalarType::Char,
        2 => ScalarType::Short,
        3 => ScalarType::Int,
        4 => ScalarType::Long,
        5 => ScalarType::Half,
        6 => ScalarType::Float,
        7 => ScalarType::Double,
        11 => ScalarType::Bool,
        15 => ScalarType::BFloat16,
        _ => return None,
    })
}

/// Parses and converts `bytes`.
pub fn read(bytes: &[u8]) -> Result<Program, ReadError> {
    let prog = pte::Program::parse(bytes).map_err(ReadError::Invalid)?;
    let ncon = prog.constants_len().saturating_sub(1);
    // Bytes each constant needs, from the tensors that refer to it.
    let mut need: Vec<Option<u64>> = vec![None; ncon];
    let mut plans = Vec::with_capacity(prog.plans_len());
    for pi in 0..prog.plans_len() {
        let plan = prog.plan(pi).expect("parse checked every plan");
        let mut values = Vec::with_capacity(plan.values_len());
        for vi in 0..plan.values_len() {
            let v = plan.value(vi).expect("parse checked every value");
            values.push(match v {
                pte::Value::Null => EValue::Null,
                pte::Value::Int(x) => EValue::Int(x),
                pte::Value::Bool(x) => EValue::Bool(x),
                pte::Value::Double(x) => EValue::Double(x),
                pte::Value::String(s) => EValue::String(s.to_string()),
                pte::Value::IntList(l) => EValue::IntList(l.iter().collect()),
                pte::Value::DoubleList(l) => EValue::DoubleList(l.iter().collect()),
                pte::Value::BoolList(l) => EValue::BoolList(l.iter().map(|&b| b != 0).collect()),
                pte::Value::TensorList(l) => EValue::TensorList(l.iter().collect()),
                pte::Value::OptionalTensorList(l) => EValue::OptionalTensorList(l.iter().collect()),
                pte::Value::Tensor(t) => {
                    let st = scalar_type(t.scalar_type).ok_or(ReadError::ScalarType {
                        plan: pi,
                        value: vi,
                        code: t.scalar_type,
                    })?;
                    if t.allocation.is_none() && t.data_buffer_idx >= 1 {
                        if let Some(slot) = need.get_mut(t.data_buffer_idx as usize - 1) {
                            let n = t.nbytes().unwrap_or(0);
                            *slot = Some(slot.map_or(n, |m| m.max(n)));
                        }
                    }
                    EValue::Tensor(Tensor {
                        scalar_type: st,
                        sizes: t.sizes.iter().collect(),
                        dim_order: t.dim_order.to_vec(),
                        data_buffer_idx: t.data_buffer_idx,
                        allocation: t
                            .allocation
                            .map(|(memory_id, offset)| Allocation { memory_id, offset }),
                    })
                }
            });
        }
        let instructions = (0..plan.instructions_len())
            .map(|i| {
                match plan
                    .instruction(i)
                    .expect("parse checked every instruction")
                {
                    pte::Instruction::Kernel { op_index, args } => Instruction::KernelCall {
                        op_index: op_index as i32,
                        args: args.iter().collect(),
                    },
                    pte::Instruction::Delegate {
                        delegate_index,
                        args,
                    } => Instruction::DelegateCall {
                        delegate_index: delegate_index as i32,
                        args: args.iter().collect(),
                    },
                    pte::Instruction::Move { from, to } => Instruction::MoveCall {
                        move_from: from as i32,
                        move_to: to as i32,
                    },
                    pte::Instruction::JumpFalse { cond, destination } => {
                        Instruction::JumpFalseCall {
                            cond_value_index: cond as i32,
                            destination_instruction: destination as i32,
                        }
                    }
                    pte::Instruction::Free { value } => Instruction::FreeCall {
                        value_index: value as i32,
                    },
                }
            })
            .collect();
        let operators = (0..plan.operators_len())
            .map(|i| {
                let (name, overload) = plan.operator(i).expect("parse checked every operator");
                Operator {
                    name: name.to_string(),
                    overload: overload.to_string(),
                }
            })
            .collect();
        plans.push(ExecutionPlan {
            name: plan.name().to_string(),
            values,
            inputs: plan.inputs().iter().collect(),
            outputs: plan.outputs().iter().collect(),
            chains: vec![Chain {
                inputs: plan.chain_inputs().iter().collect(),
                outputs: plan.chain_outputs().iter().collect(),
                instructions,
            }],
            operators,
            non_const_buffer_sizes: plan.non_const_buffer_sizes().iter().collect(),
        });
    }
    let seg_len = prog.constant_segment().len() as u64;
    let starts: Vec<u64> = (1..=ncon as u32)
        .map(|i| prog.constant_offset(i).unwrap_or(0))
        .collect();
    let constants = (0..ncon)
        .map(|k| {
            let start = starts[k];
            let len = need[k].unwrap_or_else(|| {
                let next = starts
                    .iter()
                    .copied()
                    .filter(|&s| s > start)
                    .min()
                    .unwrap_or(seg_len);
                next - start
            });
            let bytes = prog.constant(k as u32 + 1).unwrap_or(&[]);
            Arc::from(&bytes[..(len as usize).min(bytes.len())])
        })
        .collect();
    Ok(Program {
        version: prog.version(),
        execution_plan: plans,
        constants,
    })
}
