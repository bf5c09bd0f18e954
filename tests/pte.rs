//! Tests of the `.pte` writer and the validating reader: round trips, a hand-checked byte
//! layout, a file ExecuTorch itself wrote, and malformed input.
//! Invariant: every test compares against something the code under test did not produce (the
//! original model, hand-computed bytes, ExecuTorch's own view of its file).

use std::sync::Arc;

use etpkg::pte::model::{
    Allocation, Chain, EValue, ExecutionPlan, Instruction, Operator, Program, ScalarType, Tensor,
};
use etpkg::pte::{read, write, CONSTANT_ALIGNMENT, SCHEMA_VERSION, SEGMENT_ALIGNMENT};
use etpkg::rt::pte::{self as rpte, Value};

fn tensor(st: ScalarType, sizes: &[i32], idx: u32, alloc: Option<(u32, u64)>) -> EValue {
    EValue::Tensor(Tensor {
        scalar_type: st,
        sizes: sizes.to_vec(),
        dim_order: (0..sizes.len() as u8).collect(),
        data_buffer_idx: idx,
        allocation: alloc.map(|(memory_id, offset)| Allocation { memory_id, offset }),
    })
}

fn f32_bytes(v: &[f32]) -> Arc<[u8]> {
    v.iter()
        .flat_map(|x| x.to_le_bytes())
        .collect::<Vec<u8>>()
        .into()
}

/// A program with every value kind, planned and constant tensors, a duplicated constant and
/// every instruction kind.
fn sample() -> Program {
    let w: Vec<f32> = (0..24).map(|i| i as f32 * 0.5 - 3.0).collect();
    let b: Vec<f32> = vec![1.0, -2.0, 3.5];
    let constants = vec![
        f32_bytes(&w),
        f32_bytes(&b),
        f32_bytes(&w),
        Arc::from(&[7u8, 8, 9][..]),
    ];
    let values = vec![
        tensor(ScalarType::Float, &[2, 3, 4], 0, Some((1, 0))), // 0: input
        tensor(ScalarType::Float, &[2, 3, 4], 1, None),         // 1: constant w
        tensor(ScalarType::Float, &[3], 2, None),               // 2: constant b
        tensor(ScalarType::Float, &[4, 6], 3, None),            // 3: duplicate of w
        tensor(ScalarType::Byte, &[3], 4, None),                // 4: bytes
        tensor(ScalarType::Float, &[2, 3, 4], 0, Some((1, 96))), // 5: output
        EValue::Null,
        EValue::Int(-42),
        EValue::Int(i64::MAX),
        EValue::Bool(true),
        EValue::Bool(false),
        EValue::Double(-0.125),
        EValue::String("hello, étpkg".to_string()),
        EValue::IntList(vec![1, -2, 3_000_000_000]),
        EValue::DoubleList(vec![0.5, f64::MAX]),
        EValue::BoolList(vec![true, false, true]),
        EValue::TensorList(vec![0, 5]),
        EValue::OptionalTensorList(vec![0, 6, 5]),
        tensor(ScalarType::Long, &[], 0, Some((2, 8))), // 18: a planned scalar
        tensor(ScalarType::Half, &[0, 5], 0, None),     // 19: empty, unplanned
    ];
    let instructions = vec![
        Instruction::KernelCall {
            op_index: 0,
            args: vec![0, 1, 2, 5],
        },
        Instruction::KernelCall {
            op_index: 1,
            args: vec![5, 5],
        },
        Instruction::DelegateCall {
            delegate_index: 0,
            args: vec![0, 5],
        },
        Instruction::MoveCall {
            move_from: 5,
            move_to: 0,
        },
        Instruction::JumpFalseCall {
            cond_value_index: 10,
            destination_instruction: 6,
        },
        Instruction::FreeCall { value_index: 18 },
    ];
    let plan = ExecutionPlan {
        name: "forward".to_string(),
        values,
        inputs: vec![0],
        outputs: vec![5],
        chains: vec![Chain {
            inputs: vec![0],
            outputs: vec![5],
            instructions,
        }],
        operators: vec![
            Operator {
                name: "aten::linear".to_string(),
                overload: "out".to_string(),
            },
            Operator {
                name: "aten::relu".to_string(),
                overload: "out".to_string(),
            },
        ],
        non_const_buffer_sizes: vec![0, 192, 16],
    };
    let second = ExecutionPlan {
        name: "other".to_string(),
        values: vec![tensor(ScalarType::Int, &[2], 0, Some((1, 0)))],
        inputs: vec![0],
        outputs: vec![0],
        chains: vec![Chain {
            inputs: vec![0],
            outputs: vec![0],
            instructions: vec![],
        }],
        operators: vec![],
        non_const_buffer_sizes: vec![0, 8],
    };
    Program {
        version: SCHEMA_VERSION,
        execution_plan: vec![plan, second],
        constants,
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn round_trip_is_exact_and_deterministic() {
    let p = sample();
    let bytes = write(&p);
    assert_eq!(bytes, write(&p.clone()), "same program, same bytes");
    let back = read(&bytes).unwrap();
    assert_eq!(back, p);
    if let Ok(path) = std::env::var("ETPKG_PTE_DUMP") {
        std::fs::write(path, &bytes).unwrap();
    }
}

#[test]
fn layout_alignment_and_deduplication() {
    let p = sample();
    let bytes = write(&p);
    let prog = rpte::Program::parse(&bytes).unwrap();
    let base = u64_at(&bytes, 24) as usize;
    assert_eq!(base % SEGMENT_ALIGNMENT, 0);
    assert!(base >= u64_at(&bytes, 16) as usize);
    // Offsets as stored: 0 (reserved), w at 0, b at 128 (96 bytes of w rounded up to 64),
    // w again at 0, the 3 bytes at 192.
    let offsets: Vec<u64> = (0..5).map(|i| prog.constant_offset(i).unwrap()).collect();
    assert_eq!(offsets, vec![0, 0, 128, 0, 192]);
    assert!(offsets.iter().all(|o| o % CONSTANT_ALIGNMENT as u64 == 0));
    // The segment holds w once: 96 + pad + 12 + pad + 3.
    assert_eq!(prog.constant_segment().len(), 195);
    assert_eq!(bytes.len(), base + 195);
    assert_eq!(&prog.constant(4).unwrap()[..3], &[7, 8, 9]);
    assert!(prog.constant(0).is_none());
    assert!(prog.constant(5).is_none());
    // Without the duplicate the file is no smaller: it was stored once.
    let mut q = p.clone();
    q.constants[2] = Arc::from(vec![1u8; 96]);
    assert_eq!(write(&q).len(), bytes.len() + 128);
}

#[test]
fn header_bytes_by_hand() {
    let p = sample();
    let bytes = write(&p);
    let root = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    assert!(root >= 40 && root < bytes.len());
    assert_eq!(&bytes[4..8], b"ET12");
    assert_eq!(&bytes[8..12], b"eh00");
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 32);
    let program_size = u64_at(&bytes, 16);
    assert_eq!(program_size % 8, 0);
    assert_eq!(u64_at(&bytes, 24), program_size.div_ceil(4096) * 4096);
    assert_eq!(u64_at(&bytes, 32), 195);
    // The root table's vtable: Program.version is slot 0 and holds SCHEMA_VERSION.
    let soff = i32::from_le_bytes(bytes[root..root + 4].try_into().unwrap());
    let vt = (root as i64 - soff as i64) as usize;
    let vslot = u16::from_le_bytes(bytes[vt + 4..vt + 6].try_into().unwrap()) as usize;
    assert_eq!(
        u32::from_le_bytes(bytes[root + vslot..root + vslot + 4].try_into().unwrap()),
        0
    );
}

#[test]
fn program_without_constants_has_no_segment_data() {
    let mut p = sample();
    p.execution_plan.remove(0);
    p.constants.clear();
    let bytes = write(&p);
    assert_eq!(u64_at(&bytes, 24), 0);
    assert_eq!(u64_at(&bytes, 32), 0);
    assert_eq!(bytes.len() as u64, u64_at(&bytes, 16));
    assert_eq!(read(&bytes).unwrap(), p);
}

#[test]
fn accessors_match_model() {
    let p = sample();
    let bytes = write(&p);
    let prog = rpte::Program::parse(&bytes).unwrap();
    assert_eq!(prog.version(), SCHEMA_VERSION);
    assert_eq!(prog.plans_len(), 2);
    assert_eq!(prog.constants_len(), 5);
    let plan = prog.plan_named("forward").unwrap();
    assert!(prog.plan_named("missing").is_none());
    assert_eq!(plan.operator(1), Some(("aten::relu", "out")));
    assert_eq!(plan.operator(2), None);
    assert_eq!(plan.instructions_len(), 6);
    assert!(plan.value(20).is_none());
    match plan.value(13).unwrap() {
        Value::IntList(l) => assert_eq!(l.iter().collect::<Vec<_>>(), vec![1, -2, 3_000_000_000]),
        v => panic!("{v:?}"),
    }
    match plan.value(5).unwrap() {
        Value::Tensor(t) => {
            assert_eq!(t.allocation, Some((1, 96)));
            assert_eq!(t.nbytes(), Some(96));
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(plan.non_const_buffer_sizes().get(1), Some(192));
    assert_eq!(rpte::scalar_type_size(6), Some(4));
    assert_eq!(rpte::scalar_type_size(12), None);
}

#[test]
fn planned_offsets_above_4_gib_round_trip() {
    let mut p = sample();
    p.execution_plan[0].non_const_buffer_sizes[2] = (1i64 << 33) + 64;
    p.execution_plan[0].values[18] = tensor(ScalarType::Long, &[], 0, Some((2, 1 << 33)));
    assert_eq!(read(&write(&p)).unwrap(), p);
}

// ExecuTorch's own file.

fn fixture() -> (Vec<u8>, serde_json::Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pte/");
    let bytes = std::fs::read(format!("{dir}conv_relu_linear.pte")).unwrap();
    let facts = std::fs::read_to_string(format!("{dir}conv_relu_linear.json")).unwrap();
    (bytes, serde_json::from_str(&facts).unwrap())
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

#[test]
fn executorch_fixture_facts() {
    let (bytes, f) = fixture();
    let prog = rpte::Program::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
    // ExecuTorch's own layout: a 32-byte header and segments at its 128-byte alignment.
    assert_eq!(&bytes[8..12], b"eh00");
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 32);
    assert_eq!(u64_at(&bytes, 24) % 128, 0);
    assert_eq!(u64_at(&bytes, 24) + u64_at(&bytes, 32), bytes.len() as u64);
    assert_eq!(prog.version() as u64, f["version"].as_u64().unwrap());
    assert_eq!(prog.plans_len() as u64, f["plans"].as_u64().unwrap());
    let plan = prog.plan(0).unwrap();
    assert_eq!(plan.name(), f["plan_name"].as_str().unwrap());
    assert_eq!(plan.values_len() as u64, f["values"].as_u64().unwrap());
    let kinds: Vec<&str> = (0..plan.values_len())
        .map(|i| match plan.value(i).unwrap() {
            Value::Null => "Null",
            Value::Int(_) => "Int",
            Value::Bool(_) => "Bool",
            Value::Double(_) => "Double",
            Value::Tensor(_) => "Tensor",
            Value::String(_) => "String",
            Value::IntList(_) => "IntList",
            Value::DoubleList(_) => "DoubleList",
            Value::BoolList(_) => "BoolList",
            Value::TensorList(_) => "TensorList",
            Value::OptionalTensorList(_) => "OptionalTensorList",
        })
        .collect();
    let want: Vec<&str> = f["value_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(kinds, want);
    let i32s = |l: rpte::I32s| l.iter().map(|x| x as i64).collect::<Vec<_>>();
    assert_eq!(i32s(plan.inputs()), ints(&f["inputs"]));
    assert_eq!(i32s(plan.outputs()), ints(&f["outputs"]));
    let ops: Vec<(String, String)> = f["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o[0].as_str().unwrap().to_string(),
                o[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(plan.operators_len(), ops.len());
    for (i, (n, o)) in ops.iter().enumerate() {
        assert_eq!(plan.operator(i), Some((n.as_str(), o.as_str())));
    }
    assert_eq!(
        plan.non_const_buffer_sizes().iter().collect::<Vec<_>>(),
        ints(&f["non_const_buffer_sizes"])
    );
    assert_eq!(
        plan.instructions_len() as u64,
        f["instructions"].as_u64().unwrap()
    );
    let kernels: Vec<(u32, Vec<i64>)> = (0..plan.instructions_len())
        .filter_map(|i| match plan.instruction(i).unwrap() {
            rpte::Instruction::Kernel { op_index, args } => Some((op_index, i32s(args))),
            _ => None,
        })
        .collect();
    let want: Vec<(u32, Vec<i64>)> = f["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["op_index"].as_u64().unwrap() as u32, ints(&k["args"])))
        .collect();
    assert_eq!(kernels, want);
    for t in f["tensors"].as_array().unwrap() {
        let i = t["value"].as_u64().unwrap() as usize;
        let Value::Tensor(info) = plan.value(i).unwrap() else {
            panic!("value {i}")
        };
        assert_eq!(info.scalar_type as i64, t["scalar_type"].as_i64().unwrap());
        assert_eq!(i32s(info.sizes), ints(&t["sizes"]));
        assert_eq!(
            info.dim_order.iter().map(|&d| d as i64).collect::<Vec<_>>(),
            ints(&t["dim_order"])
        );
        assert_eq!(
            info.data_buffer_idx as u64,
            t["data_buffer_idx"].as_u64().unwrap()
        );
        let alloc = info.allocation.map(|(m, o)| vec![m as i64, o as i64]);
        assert_eq!(
            alloc,
            t["allocation"].as_array().map(|_| ints(&t["allocation"]))
        );
    }
    // The conv weight (value 0) as PyTorch held it, byte for byte.
    let Value::Tensor(w) = plan.value(0).unwrap() else {
        panic!("value 0")
    };
    let hex = f["conv_weight_hex"].as_str().unwrap();
    let want: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let got = prog.constant(w.data_buffer_idx).unwrap();
    assert_eq!(&got[..want.len()], &want[..]);
    // The owned reader accepts it, and writing what it read gives a file that reads the same.
    let owned = read(&bytes).unwrap();
    assert_eq!(read(&write(&owned)).unwrap(), owned);
}

// Malformed input.

fn small() -> Program {
    Program {
        version: SCHEMA_VERSION,
        execution_plan: vec![ExecutionPlan {
            name: "f".to_string(),
            values: vec![
                tensor(ScalarType::Float, &[2], 0, Some((1, 0))),
                tensor(ScalarType::Float, &[2], 1, None),
                EValue::IntList(vec![3]),
                EValue::TensorList(vec![0, 1]),
            ],
            inputs: vec![0],
            outputs: vec![0],
            chains: vec![Chain {
                inputs: vec![0],
                outputs: vec![0],
                instructions: vec![
                    Instruction::KernelCall {
                        op_index: 0,
                        args: vec![0, 1, 0],
                    },
                    Instruction::JumpFalseCall {
                        cond_value_index: 0,
                        destination_instruction: 2,
                    },
                ],
            }],
            operators: vec![Operator {
                name: "aten::add".to_string(),
                overload: "out".to_string(),
            }],
            non_const_buffer_sizes: vec![0, 8],
        }],
        constants: vec![f32_bytes(&[1.0, 2.0])],
    }
}

/// Parses and walks everything reachable; the walk must not panic either.
fn parse_and_walk(bytes: &[u8]) -> bool {
    let Ok(p) = rpte::Program::parse(bytes) else {
        return false;
    };
    for i in 0..p.plans_len() {
        let plan = p.plan(i).unwrap();
        for v in 0..plan.values_len() {
            let _ = format!("{:?}", plan.value(v).unwrap());
        }
        for k in 0..plan.instructions_len() {
            let _ = format!("{:?}", plan.instruction(k).unwrap());
        }
        for k in 0..plan.operators_len() {
            plan.operator(k).unwrap();
        }
    }
    for c in 0..p.constants_len() as u32 {
        let _ = p.constant(c);
    }
    let _ = read(bytes);
    true
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = write(&small());
    assert!(parse_and_walk(&bytes));
    for n in 0..bytes.len() {
        let r = rpte::Program::parse(&bytes[..n]);
        assert!(r.is_err(), "prefix of {n} bytes parsed");
        // The message names something; it must format without panicking.
        assert!(!r.err().unwrap().to_string().is_empty());
    }
}

#[test]
fn single_byte_corruptions_never_panic() {
    let bytes = write(&small());
    let mut rejected = 0;
    for i in 0..bytes.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= x;
            if !parse_and_walk(&b) {
                rejected += 1;
            }
        }
        for v in [0u8, 0xff, 0x7f] {
            let mut b = bytes.clone();
            b[i] = v;
            parse_and_walk(&b);
        }
    }
    // Bytes in the padding before the segment and in scalar fields may change harmlessly; the
    // structure's bytes may not, so at least one flip in three over the program is rejected.
    let program_size = u64_at(&bytes, 16) as usize;
    assert!(
        rejected >= program_size,
        "only {rejected} corruptions rejected"
    );
}

fn rejects(p: &Program, needle: &str) {
    let e = rpte::Program::parse(&write(p))
        .err()
        .unwrap_or_else(|| panic!("accepted; want {needle}"));
    let msg = e.to_string();
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    assert!(read(&write(p)).is_err());
}

#[test]
fn hostile_values_are_errors() {
    let base = small();
    let plan = |f: &dyn Fn(&mut ExecutionPlan)| {
        let mut p = base.clone();
        f(&mut p.execution_plan[0]);
        p
    };
    rejects(
        &plan(&|pl| pl.values[0] = tensor(ScalarType::Float, &[1; 9], 0, Some((1, 0)))),
        "rank 9",
    );
    rejects(
        &plan(&|pl| pl.values[0] = tensor(ScalarType::Float, &[-1], 0, Some((1, 0)))),
        "negative",
    );
    rejects(
        &plan(&|pl| {
            if let EValue::Tensor(t) = &mut pl.values[0] {
                t.dim_order = vec![1];
            }
        }),
        "dim_order",
    );
    rejects(
        &plan(&|pl| pl.values[0] = tensor(ScalarType::Float, &[3], 0, Some((1, 0)))),
        "outside its buffer",
    );
    rejects(
        &plan(&|pl| pl.values[0] = tensor(ScalarType::Float, &[2], 0, Some((2, 0)))),
        "memory id 2",
    );
    rejects(
        &plan(&|pl| pl.values[0] = tensor(ScalarType::Float, &[2], 0, Some((0, 0)))),
        "memory id 0",
    );
    rejects(
        &plan(&|pl| pl.values[1] = tensor(ScalarType::Float, &[3], 1, None)),
        "outside the constant segment",
    );
    rejects(
        &plan(&|pl| pl.values[1] = tensor(ScalarType::Float, &[2], 2, None)),
        "data_buffer_idx 2",
    );
    rejects(
        &plan(&|pl| {
            pl.values[1] = tensor(ScalarType::Float, &[i32::MAX, i32::MAX, i32::MAX], 1, None)
        }),
        "overflows",
    );
    rejects(
        &plan(&|pl| pl.values[3] = EValue::TensorList(vec![0, 4])),
        "index 4",
    );
    rejects(&plan(&|pl| pl.inputs = vec![-1]), "input 0: index -1");
    rejects(&plan(&|pl| pl.outputs = vec![9]), "output 0: index 9");
    rejects(
        &plan(&|pl| {
            pl.chains[0].instructions[0] = Instruction::KernelCall {
                op_index: 1,
                args: vec![],
            }
        }),
        "instruction 0: index 1",
    );
    rejects(
        &plan(&|pl| {
            pl.chains[0].instructions[0] = Instruction::KernelCall {
                op_index: 0,
                args: vec![4],
            }
        }),
        "index 4",
    );
    rejects(
        &plan(&|pl| {
            pl.chains[0].instructions[1] = Instruction::JumpFalseCall {
                cond_value_index: 0,
                destination_instruction: 3,
            }
        }),
        "instruction 1: index 3",
    );
    rejects(
        &plan(&|pl| {
            pl.chains[0].instructions.push(Instruction::MoveCall {
                move_from: 0,
                move_to: 7,
            })
        }),
        "index 7",
    );
    rejects(
        &plan(&|pl| {
            pl.chains[0]
                .instructions
                .push(Instruction::FreeCall { value_index: 4 })
        }),
        "index 4",
    );
    rejects(
        &plan(&|pl| pl.chains.push(pl.chains[0].clone())),
        "2 chains",
    );
    rejects(&plan(&|pl| pl.chains.clear()), "0 chains");
}

/// Finds the unique position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = (0..=hay.len() - needle.len())
        .filter(|&i| &hay[i..i + needle.len()] == needle)
        .collect();
    assert_eq!(hits.len(), 1, "{needle:?}");
    hits[0]
}

#[test]
fn hostile_bytes_are_errors() {
    // A distinctive int list to locate its vector length in the file.
    let mut p = small();
    p.execution_plan[0].values[2] = EValue::IntList(vec![0x1122_3344_5566_7788]);
    let bytes = write(&p);
    assert!(parse_and_walk(&bytes));
    let at = find(&bytes, &0x1122_3344_5566_7788u64.to_le_bytes()) - 4;
    for len in [u32::MAX, 0x2000_0000, 1000] {
        let mut b = bytes.clone();
        b[at..at + 4].copy_from_slice(&len.to_le_bytes());
        let e = rpte::Program::parse(&b)
            .err()
            .expect("huge vector accepted");
        assert!(e.to_string().contains("int list"), "{e}");
    }
    // The root offset pointing past the program.
    let mut b = bytes.clone();
    b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(rpte::Program::parse(&b).is_err());
    // Header: program size past the file; segment base inside the program; bad magic.
    for (pos, val) in [
        (16usize, u64::MAX),
        (16, bytes.len() as u64 + 1),
        (24, 48),
        (32, u64::MAX),
    ] {
        let mut b = bytes.clone();
        b[pos..pos + 8].copy_from_slice(&val.to_le_bytes());
        let e = rpte::Program::parse(&b).err().expect("bad header accepted");
        assert!(e.to_string().contains("extended header"), "{e}");
    }
    let mut b = bytes.clone();
    b[8] = b'x';
    assert!(rpte::Program::parse(&b).is_err());
    b = bytes.clone();
    b[7] = b'3';
    assert!(matches!(
        rpte::Program::parse(&b),
        Err(rpte::PteError::Identifier { .. })
    ));
    // Bad union tags: the EValue tag of the IntList (7) and every other byte value above 11.
    let prog = rpte::Program::parse(&bytes).unwrap();
    let _ = prog;
    let mut hits = 0;
    for i in 40..bytes.len() {
        if bytes[i] == 7 {
            let mut b = bytes.clone();
            b[i] = 200;
            if let Err(rpte::PteError::UnionTag { tag: 200, .. }) = rpte::Program::parse(&b) {
                hits += 1;
            }
        }
    }
    assert!(hits >= 1, "no union tag rejection found");
}

/// The programs `scripts/gen_pte_fixture.py --check-etpkg` loads into ExecuTorch by hand: one
/// with no kernels (the input is the output) and one `aten::relu.out` call. Set
/// `ETPKG_PTE_DUMP_DIR` to write them.
#[test]
fn executorch_check_programs_round_trip() {
    let io = |offset| tensor(ScalarType::Float, &[2, 4], 0, Some((1, offset)));
    let identity = Program {
        version: SCHEMA_VERSION,
        execution_plan: vec![ExecutionPlan {
            name: "forward".to_string(),
            values: vec![io(0)],
            inputs: vec![0],
            outputs: vec![0],
            chains: vec![Chain {
                inputs: vec![0],
                outputs: vec![0],
                instructions: vec![],
            }],
            operators: vec![],
            non_const_buffer_sizes: vec![0, 32],
        }],
        constants: vec![],
    };
    let relu = Program {
        version: SCHEMA_VERSION,
        execution_plan: vec![ExecutionPlan {
            name: "forward".to_string(),
            values: vec![io(0), io(32)],
            inputs: vec![0],
            outputs: vec![1],
            chains: vec![Chain {
                inputs: vec![0],
                outputs: vec![1],
                // ExecuTorch passes an out-variant kernel its arguments, then the out tensor,
                // then the returned value (the out tensor again), as its emitter writes them.
                instructions: vec![Instruction::KernelCall {
                    op_index: 0,
                    args: vec![0, 1, 1],
                }],
            }],
            operators: vec![Operator {
                name: "aten::relu".to_string(),
                overload: "out".to_string(),
            }],
            non_const_buffer_sizes: vec![0, 64],
        }],
        constants: vec![],
    };
    for (name, p) in [("identity", &identity), ("relu", &relu)] {
        let bytes = write(p);
        assert_eq!(&read(&bytes).unwrap(), p);
        if let Ok(dir) = std::env::var("ETPKG_PTE_DUMP_DIR") {
            std::fs::write(format!("{dir}/{name}.pte"), &bytes).unwrap();
        }
    }
}

/// An `OptionalTensorList` marks an absent tensor with -1, as ExecuTorch writes
/// `index.Tensor`'s indices; any other negative item is still an error.
#[test]
fn optional_tensor_list_accepts_none_items() {
    let mut p = small();
    p.execution_plan[0]
        .values
        .push(EValue::OptionalTensorList(vec![0, -1, 1]));
    let bytes = write(&p);
    let program = rpte::Program::parse(&bytes).unwrap();
    let plan = program.plan(0).unwrap();
    let last = plan.values_len() - 1;
    match plan.value(last) {
        Some(Value::OptionalTensorList(l)) => assert_eq!(l.iter().collect::<Vec<_>>(), [0, -1, 1]),
        other => panic!("{other:?}"),
    }
    assert_eq!(read(&bytes).unwrap(), p);
    for bad in [-2, 1000] {
        let mut p = small();
        p.execution_plan[0]
            .values
            .push(EValue::OptionalTensorList(vec![0, bad]));
        assert!(rpte::Program::parse(&write(&p)).is_err(), "item {bad}");
    }
}

/// Without the `eh00` extended header the whole file is the program (ExecuTorch writes such
/// files when no data lives in segments). The header sits in padding the FlatBuffer leaves at
/// bytes 8..40, so zeroing it gives exactly such a file.
#[test]
fn program_without_extended_header_parses() {
    let mut p = sample();
    p.execution_plan.remove(0);
    p.constants.clear();
    let mut bytes = write(&p);
    assert_eq!(&bytes[8..12], b"eh00");
    bytes[8..40].fill(0);
    let program = rpte::Program::parse(&bytes).unwrap();
    assert_eq!(program.plan(0).unwrap().name(), "other");
    assert_eq!(read(&bytes).unwrap(), p);

    // A program whose constants live in a segment cannot do without the header that locates it.
    let mut bytes = write(&sample());
    bytes[8..40].fill(0);
    let e = rpte::Program::parse(&bytes).err().unwrap().to_string();
    assert!(e.contains("constant segment"), "{e}");
}
