//! Emission: an optimized, memory-planned graph becomes an ExecuTorch program.
//! Invariant: graph value `i` is the program's value `i`, every node is one kernel call in node
//! order, and decoding that call (`crate::rt::decode`) gives back the node's op.
//!
//! The layout follows ExecuTorch's own emitter, so a stock runtime can load what etpkg writes:
//!
//! * values `0..g.values.len()` are the graph's tensors; constants name their bytes through
//!   `data_buffer_idx`, everything else carries the planner's `(region + 1, offset)`;
//! * the attributes the kernel calls need (ints, doubles, bools, strings, int lists, tensor
//!   lists, nulls) follow, each created once per distinct value; an `IntList`'s items are the
//!   indices of `Int` values, as ExecuTorch's `Method::parse_values` reads them;
//! * a kernel call's arguments are its operator's schema arguments in order, then the output
//!   tensor(s), then the returned values: the output again, or one `TensorList` of the outputs
//!   when there are several (ExecuTorch's out-variant convention);
//! * the operators and their argument lists are those of `docs/aten-conventions.md`
//!   ([`table`] builds them).

pub mod table;

use crate::ir::{DType, Graph, ValueDef, ValueId};
use crate::memory::MemoryPlan;
use crate::pte::model::{
    Allocation, Chain, EValue, ExecutionPlan, Instruction, Operator, Program, ScalarType, Tensor,
};
use std::collections::HashMap;
use std::sync::Arc;
use table::{Arg, Call, Extra};
use thiserror::Error;

/// What the emitter may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmitOptions {
    /// Only ATen operators: a graph that needs an `etpkg::` operator is an error.
    pub aten_only: bool,
}

#[derive(Debug, Error, PartialEq)]
pub enum EmitError {
    #[error(
        "node {node} (`{op}`) needs the operator `{operator}`, which is not an ATen operator, \
         but the profile asks for `ops = \"aten\"`\n  = help: {fix}"
    )]
    NotAten {
        node: usize,
        op: &'static str,
        operator: String,
        fix: String,
    },
    #[error("node {node} (`{op}`) cannot be emitted: {why}")]
    Unsupported {
        node: usize,
        op: &'static str,
        why: String,
    },
    #[error("value {value} (`{name}`) is neither a constant nor placed by the memory plan")]
    Unplaced { value: usize, name: String },
    #[error("the memory plan covers {plan} values but the graph has {graph}")]
    PlanMismatch { plan: usize, graph: usize },
    #[error("value {value} (`{name}`) has a shape ExecuTorch cannot hold: {why}")]
    Shape {
        value: usize,
        name: String,
        why: String,
    },
}

/// The ExecuTorch scalar type of an etpkg dtype.
pub fn scalar_type(d: DType) -> ScalarType {
    match d {
        DType::U8 => ScalarType::Byte,
        DType::I8 => ScalarType::Char,
        DType::I16 => ScalarType::Short,
        DType::I32 => ScalarType::Int,
        DType::I64 => ScalarType::Long,
        DType::F16 => ScalarType::Half,
        DType::BF16 => ScalarType::BFloat16,
        DType::F32 => ScalarType::Float,
        DType::F64 => ScalarType::Double,
        DType::Bool => ScalarType::Bool,
    }
}

/// A deduplicating key for attribute values (floats by their bits, so equal keys mean equal
/// bytes in the program).
#[derive(Clone, PartialEq, Eq, Hash)]
enum AttrKey {
    Null,
    Int(i64),
    Bool(bool),
    Double(u64),
    Str(String),
    IntList(Vec<i64>),
    TensorList(Vec<i32>),
}

/// The plan under construction.
struct Builder {
    values: Vec<EValue>,
    attrs: HashMap<AttrKey, i32>,
    operators: Vec<Operator>,
    op_index: HashMap<(String, String), i32>,
    instructions: Vec<Instruction>,
}

impl Builder {
    fn attr(&mut self, key: AttrKey) -> i32 {
        if let Some(&i) = self.attrs.get(&key) {
            return i;
        }
        let ev = match &key {
            AttrKey::Null => EValue::Null,
            AttrKey::Int(v) => EValue::Int(*v),
            AttrKey::Bool(b) => EValue::Bool(*b),
            AttrKey::Double(bits) => EValue::Double(f64::from_bits(*bits)),
            AttrKey::Str(s) => EValue::String(s.clone()),
            AttrKey::IntList(items) => {
                // ExecuTorch lists hold value indices: each int becomes an `Int` value first.
                let idx: Vec<i64> = items
                    .iter()
                    .map(|&v| self.attr(AttrKey::Int(v)) as i64)
                    .collect();
                EValue::IntList(idx)
            }
            AttrKey::TensorList(t) => EValue::TensorList(t.clone()),
        };
        let i = self.values.len() as i32;
        self.values.push(ev);
        self.attrs.insert(key, i);
        i
    }

    fn arg(&mut self, a: &Arg) -> i32 {
        match a {
            Arg::Tensor(v) => v.0 as i32,
            Arg::OptTensor(Some(v)) => v.0 as i32,
            Arg::OptTensor(None) | Arg::Null => self.attr(AttrKey::Null),
            Arg::Int(v) => self.attr(AttrKey::Int(*v)),
            Arg::Bool(b) => self.attr(AttrKey::Bool(*b)),
            Arg::Double(d) => self.attr(AttrKey::Double(d.to_bits())),
            Arg::OptDouble(Some(d)) => self.attr(AttrKey::Double(d.to_bits())),
            Arg::OptDouble(None) => self.attr(AttrKey::Null),
            Arg::Str(s) => self.attr(AttrKey::Str(s.to_string())),
            Arg::Ints(v) => self.attr(AttrKey::IntList(v.clone())),
            Arg::TensorList(v) => {
                self.attr(AttrKey::TensorList(v.iter().map(|x| x.0 as i32).collect()))
            }
            Arg::Extra(i) => *i,
        }
    }

    fn operator(&mut self, name: &str, overload: &str) -> i32 {
        let key = (name.to_string(), overload.to_string());
        if let Some(&i) = self.op_index.get(&key) {
            return i;
        }
        let i = self.operators.len() as i32;
        self.operators.push(Operator {
            name: key.0.clone(),
            overload: key.1.clone(),
        });
        self.op_index.insert(key, i);
        i
    }

    fn call(&mut self, call: &Call, outs: &[i32]) {
        let mut args: Vec<i32> = call.args.iter().map(|a| self.arg(a)).collect();
        // The out arguments, then the returned values as ExecuTorch's emitter writes them: the
        // out tensor again, or for several outs one `TensorList` of them.
        args.extend_from_slice(outs);
        match outs {
            [one] => args.push(*one),
            many => {
                let list = self.attr(AttrKey::TensorList(many.to_vec()));
                args.push(list);
            }
        }
        let op_index = self.operator(&call.name, call.overload);
        self.instructions
            .push(Instruction::KernelCall { op_index, args });
    }
}

fn tensor_of(g: &Graph, v: ValueId) -> Result<(ScalarType, Vec<i32>, Vec<u8>), EmitError> {
    let value = g.value(v);
    let shape = &value.ty.shape;
    if shape.len() > crate::rt::pte::MAX_RANK {
        return Err(EmitError::Shape {
            value: v.index(),
            name: value.name.clone(),
            why: format!("rank {} exceeds {}", shape.len(), crate::rt::pte::MAX_RANK),
        });
    }
    let sizes = shape
        .iter()
        .map(|&s| i32::try_from(s))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| EmitError::Shape {
            value: v.index(),
            name: value.name.clone(),
            why: "a dimension exceeds i32".into(),
        })?;
    Ok((
        scalar_type(value.ty.dtype),
        sizes,
        (0..shape.len() as u8).collect(),
    ))
}

/// Rounds `x` up to a multiple of `a` (`a ≥ 1`).
fn align_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a.max(1)) * a.max(1)
}

/// Emits the graph as a program with one plan, `forward`. Deterministic: the same graph, plan
/// and options give the same program.
pub fn emit(g: &Graph, plan: &MemoryPlan, opts: &EmitOptions) -> Result<Program, EmitError> {
    if plan.values.len() != g.values.len() {
        return Err(EmitError::PlanMismatch {
            plan: plan.values.len(),
            graph: g.values.len(),
        });
    }
    let mut constants: Vec<Arc<[u8]>> = Vec::new();
    let mut values = Vec::with_capacity(g.values.len());
    for (i, value) in g.values.iter().enumerate() {
        let v = ValueId(i as u32);
        let (scalar_type, sizes, dim_order) = tensor_of(g, v)?;
        let (data_buffer_idx, allocation) = match (&value.def, &plan.values[i]) {
            (ValueDef::Const(c), _) => {
                constants.push(Arc::from(g.constants[c.0 as usize].data.bytes()));
                (constants.len() as u32, None)
            }
            (_, Some(p)) => (
                0,
                Some(Allocation {
                    memory_id: p.region as u32 + 1,
                    offset: p.offset,
                }),
            ),
            (_, None) => {
                return Err(EmitError::Unplaced {
                    value: i,
                    name: value.name.clone(),
                })
            }
        };
        values.push(EValue::Tensor(Tensor {
            scalar_type,
            sizes,
            dim_order,
            data_buffer_idx,
            allocation,
        }));
    }
    let mut sizes: Vec<i64> = std::iter::once(0)
        .chain(plan.regions.iter().map(|r| r.planned_bytes as i64))
        .collect();
    let mut b = Builder {
        values,
        attrs: HashMap::new(),
        operators: Vec::new(),
        op_index: HashMap::new(),
        instructions: Vec::new(),
    };

    if sizes.len() < 2 {
        sizes.push(0);
    }
    // Outputs nothing reads (max pooling's indices, layer norm's statistics) share one area
    // after region 0's plan.
    let scratch_offset = align_up(sizes[1] as u64, plan.alignment);
    let mut scratch_bytes = 0u64;
    for (n, node) in g.nodes.iter().enumerate() {
        let call = table::call(g, node, opts.aten_only).map_err(|why| EmitError::Unsupported {
            node: n,
            op: node.op.name(),
            why,
        })?;
        if opts.aten_only && !call.name.starts_with("aten::") {
            let fix = if matches!(node.op, crate::ir::Op::Fused { .. }) {
                "`ops = \"aten\"` needs the graph without fused ops: remove `fuse-activations` \
                 from the profile's passes"
                    .to_string()
            } else {
                format!(
                    "ATen has no out-variant operator for `{}` as etpkg computes it; use \
                     `ops = \"all\"` or change the model to avoid it",
                    node.op.name()
                )
            };
            return Err(EmitError::NotAten {
                node: n,
                op: node.op.name(),
                operator: format!("{}.{}", call.name, call.overload),
                fix,
            });
        }
        let out = node.output.0 as i32;
        let mut outs = vec![out];
        let st = scalar_type(g.ty(node.output).dtype);
        // This call's scratch outputs get disjoint places in the shared scratch area.
        let mut at = scratch_offset;
        for extra in &call.extra_outputs {
            let tensor = match extra {
                Extra::Empty => Tensor {
                    scalar_type: st,
                    sizes: vec![0],
                    dim_order: vec![0],
                    data_buffer_idx: 0,
                    allocation: Some(Allocation {
                        memory_id: 1,
                        offset: 0,
                    }),
                },
                Extra::Scratch(dtype, shape) => {
                    let bytes = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
                    let offset = at;
                    at = align_up(at + bytes, plan.alignment);
                    scratch_bytes = scratch_bytes.max(at - scratch_offset);
                    Tensor {
                        scalar_type: scalar_type(*dtype),
                        sizes: shape.iter().map(|&d| d as i32).collect(),
                        dim_order: (0..shape.len() as u8).collect(),
                        data_buffer_idx: 0,
                        allocation: Some(Allocation {
                            memory_id: 1,
                            offset,
                        }),
                    }
                }
            };
            outs.push(b.values.len() as i32);
            b.values.push(EValue::Tensor(tensor));
        }
        b.call(&call, &outs);
    }

    if scratch_bytes > 0 {
        sizes[1] = (scratch_offset + scratch_bytes) as i64;
    }
    // Every program output must be a tensor a kernel wrote: outputs that are inputs or
    // constants get a copy at the end of region 0.
    let mut outputs = Vec::with_capacity(g.outputs.len());
    for &o in &g.outputs {
        if matches!(g.value(o).def, ValueDef::Node(_)) {
            outputs.push(o.0 as i32);
            continue;
        }
        let (scalar_type, shape, dim_order) = tensor_of(g, o)?;
        let bytes = g.ty(o).shape.iter().product::<usize>() as u64 * g.ty(o).dtype.size() as u64;
        let offset = align_up(sizes[1] as u64, plan.alignment);
        sizes[1] = (offset + bytes) as i64;
        let copy = b.values.len() as i32;
        b.values.push(EValue::Tensor(Tensor {
            scalar_type,
            sizes: shape,
            dim_order,
            data_buffer_idx: 0,
            allocation: Some(Allocation {
                memory_id: 1,
                offset,
            }),
        }));
        b.call(&table::copy(o), &[copy]);
        outputs.push(copy);
    }
    let inputs: Vec<i32> = g.inputs.iter().map(|v| v.0 as i32).collect();
    let forward = ExecutionPlan {
        name: "forward".into(),
        values: b.values,
        inputs: inputs.clone(),
        outputs: outputs.clone(),
        chains: vec![Chain {
            inputs,
            outputs,
            instructions: b.instructions,
        }],
        operators: b.operators,
        non_const_buffer_sizes: sizes,
    };
    Ok(Program {
        version: crate::pte::SCHEMA_VERSION,
        execution_plan: vec![forward],
        constants,
    })
}
