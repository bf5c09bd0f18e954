//! The runtime's op bindings (`etpkg::rt::ops`) checked node by node against the reference
//! interpreter. Invariant: for every node of every fixture (both export flavours, after the
//! default passes, so fused ops appear), `ops::run` on the interpreter's own input bytes gives
//! the interpreter's output — f32 within `1e-5 · max(1, max|ref|)`, i64 and bool exactly — also
//! in place, also with only the universal variants kept, and an `OpError` (never a panic) when
//! the node's kernel family is missing.

mod common;

use common::aligned::AlignedBuf;
use common::fixtures::{fixture_dirs, inputs, relative_error};
use common::steps::{act_of, kind_of};
use etpkg::interp::{self, Tensor};
use etpkg::ir::{self, ArgOp, Graph, Node, Op, PoolKind, ReduceOp, UpsampleMode};
use etpkg::rt::kernels;
use etpkg::rt::kernels::meta::KernelInfo;
use etpkg::rt::ops::{self, In, OpError, Reason, TensorMeta};
use etpkg::rt::step::{self, Act, Kind, Step, MAX_INPUTS};
use std::collections::BTreeMap;

const TOLERANCE: f64 = 1e-5;

fn kdtype(d: ir::DType) -> ops::DType {
    match d {
        ir::DType::F32 => ops::DType::F32,
        ir::DType::I64 => ops::DType::I64,
        ir::DType::Bool => ops::DType::Bool,
        other => panic!("the fixtures compute only f32, i64 and bool, not {other}"),
    }
}

fn meta(ty: &ir::TensorType) -> TensorMeta {
    TensorMeta::new(kdtype(ty.dtype), &ty.shape).expect("fixture ranks fit MAX_RANK")
}

/// The step a decoder would produce for `node`, written independently of the bindings.
fn step_of(_g: &Graph, node: &Node) -> Step {
    let (kind, act) = match &node.op {
        Op::Fused { op, act } => (kind_of(op), act_of(*act)),
        op => (kind_of(op), Act::None),
    };
    let mut inputs = [0u32; MAX_INPUTS];
    let n = node.inputs.len().min(MAX_INPUTS);
    for (slot, v) in inputs.iter_mut().zip(&node.inputs) {
        *slot = v.index() as u32;
    }
    Step {
        kind,
        act,
        inputs,
        n_inputs: if matches!(kind, Kind::Concat { .. }) {
            1
        } else {
            n as u8
        },
        output: node.output.index() as u32,
    }
}

/// Every kernel variant, by name.
fn variants() -> BTreeMap<&'static str, KernelInfo> {
    let tables: &[&[KernelInfo]] = &[
        kernels::attention::VARIANTS,
        kernels::binary::VARIANTS,
        kernels::conv::VARIANTS,
        kernels::conv_transpose::VARIANTS,
        kernels::index::VARIANTS,
        kernels::layout::VARIANTS,
        kernels::matmul::VARIANTS,
        kernels::norm::VARIANTS,
        kernels::pool::VARIANTS,
        kernels::reduce::VARIANTS,
        kernels::softmax::VARIANTS,
        kernels::unary::VARIANTS,
        kernels::upsample::VARIANTS,
        kernels::where_::VARIANTS,
    ];
    tables
        .iter()
        .flat_map(|t| t.iter())
        .map(|k| (k.name, *k))
        .collect()
}

/// Runs `step` on `args` (each in its own aligned buffer; input `in_place` instead shares the
/// output buffer, preloaded with its bytes) with the variants `kept` allows.
/// Whether this CPU has every ISA feature `k` needs, as its binding arm checks.
fn runs_here(k: &KernelInfo) -> bool {
    k.isa.iter().all(|f| match *f {
        "avx512f" => kernels::x86::avx512(),
        "avx2" | "fma" => kernels::x86::avx2(),
        _ => false,
    })
}

fn run_step(
    step: &Step,
    args: &[&Tensor],
    out_ty: &ir::TensorType,
    in_place: Option<usize>,
    kept: &dyn Fn(&str) -> bool,
) -> Result<(&'static str, Tensor), OpError> {
    let bufs: Vec<AlignedBuf> = args
        .iter()
        .map(|t| AlignedBuf::new(&t.to_le_bytes()))
        .collect();
    let out = meta(out_ty);
    let mut y = AlignedBuf::new(&vec![0u8; out.byte_len()]);
    let ins: Vec<In> = args
        .iter()
        .zip(&bufs)
        .enumerate()
        .map(|(i, (t, b))| {
            let m = meta(&t.ty());
            if Some(i) == in_place {
                In::InPlace(m)
            } else {
                In::Tensor(m, b.as_ref())
            }
        })
        .collect();
    if let Some(i) = in_place {
        y.as_mut().copy_from_slice(bufs[i].as_ref());
    }
    let used = ops::run_with(step, &ins, out, y.as_mut(), kept)?;
    let t = Tensor::from_le_bytes(out_ty, y.as_ref()).unwrap();
    Ok((used, t))
}

/// Figures for one fixture flavour.
#[derive(Default)]
struct Tally {
    nodes: usize,
    fused: usize,
    in_place: usize,
    max_err: f64,
    /// Nodes per (step name, variant used).
    used: BTreeMap<(&'static str, &'static str), usize>,
}

fn check(label: &str, got: &Tensor, want: &Tensor) -> f64 {
    let e = relative_error(got, want).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(e <= TOLERANCE, "{label}: error {e:e} over {TOLERANCE:e}");
    e
}

fn check_graph(label: &str, g: &Graph, xs: &[Tensor], all: &BTreeMap<&str, KernelInfo>) -> Tally {
    let mut slots: Vec<Option<Tensor>> = vec![None; g.values.len()];
    for (&id, t) in g.inputs.iter().zip(xs) {
        slots[id.index()] = Some(t.clone());
    }
    for c in &g.constants {
        slots[c.value.index()] =
            Some(Tensor::from_le_bytes(g.ty(c.value), c.data.bytes()).unwrap());
    }
    let mut tally = Tally::default();
    for node in &g.nodes {
        let args: Vec<&Tensor> = node
            .inputs
            .iter()
            .map(|v| slots[v.index()].as_ref().unwrap())
            .collect();
        let out_ty = g.ty(node.output);
        let want = interp::eval(&node.op, &args, out_ty).unwrap();
        let step = step_of(g, node);
        let name = step.name();
        assert_eq!(name, node.op.name(), "{label}: step name");
        let at = format!("{label} node `{}` ({name})", g.value(node.output).name);

        let (used, got) =
            run_step(&step, &args, out_ty, None, &|_| true).unwrap_or_else(|e| panic!("{at}: {e}"));
        tally.max_err = tally.max_err.max(check(&at, &got, &want));

        // `accepting` lists the chain in speed order, starting with the variant run used.
        let metas: Vec<TensorMeta> = args.iter().map(|t| meta(&t.ty())).collect();
        let mut names = Vec::new();
        ops::accepting(&step, &metas, &meta(out_ty), &mut |n| names.push(n));
        assert!(!names.is_empty(), "{at}: no accepting variant");
        // The variant run is the first that this CPU can run (an AVX-512 one needs AVX-512).
        let here: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| all.get(n).is_some_and(runs_here))
            .collect();
        assert_eq!(here.first(), Some(&used), "{at}: accepting {names:?}");
        // Every other variant this CPU runs computes the same, alone in its chain.
        for &n in here.iter().skip(1) {
            let (v, got) = run_step(&step, &args, out_ty, None, &|k| k == n)
                .unwrap_or_else(|e| panic!("{at} {n} only: {e}"));
            assert_eq!(v, n, "{at}");
            check(&format!("{at} {n} only"), &got, &want);
        }
        let speeds: Vec<u8> = names
            .iter()
            .map(|n| {
                all.get(n)
                    .unwrap_or_else(|| panic!("{at}: unknown {n}"))
                    .speed
            })
            .collect();
        assert!(
            speeds.windows(2).all(|w| w[0] >= w[1]),
            "{at}: {names:?} not in speed order"
        );
        let family = ops::family(&step.kind);
        assert!(names.iter().all(|n| all[n].family == family), "{at}");
        // Each listed variant declares the dtypes it computed with here.
        let dname = |d: ir::DType| d.to_string();
        for n in &names {
            for d in [dname(out_ty.dtype), dname(args[0].dtype())] {
                assert!(all[n].dtypes.contains(&d.as_str()), "{at}: {n} lacks {d}");
            }
        }

        // Only the universal variants: same result.
        let universal = |n: &str| all.get(n).is_some_and(|k| k.speed == 0);
        let (u, got) = run_step(&step, &args, out_ty, None, &universal)
            .unwrap_or_else(|e| panic!("{at} universal only: {e}"));
        assert_eq!(all[u].speed, 0, "{at}");
        check(&format!("{at} universal only"), &got, &want);

        // The family missing: an error naming the op, not a panic.
        let prefix = format!("{family}.");
        match run_step(&step, &args, out_ty, None, &|n| !n.starts_with(&prefix)) {
            Err(e) => {
                assert_eq!(e.reason, Reason::NoVariant { family }, "{at}");
                assert!(e.to_string().contains(name), "{at}: {e}");
            }
            Ok((n, _)) => panic!("{at}: ran {n} with its family dropped"),
        }

        // In place: the first input with the output's dtype and shape shares its bytes.
        if let Some(i) = args.iter().position(|t| t.ty() == *out_ty) {
            match run_step(&step, &args, out_ty, Some(i), &|_| true) {
                Ok((_, got)) => {
                    check(&format!("{at} in place"), &got, &want);
                    tally.in_place += 1;
                }
                Err(OpError {
                    reason: Reason::InPlace { .. },
                    ..
                }) => assert!(
                    !matches!(
                        step.kind,
                        Kind::Unary(_)
                            | Kind::Clamp { .. }
                            | Kind::Binary(_)
                            | Kind::LayerNorm { .. }
                            | Kind::BatchNorm { .. }
                    ) || (matches!(step.kind, Kind::Binary(_))
                        && args[0].dtype() != args[1].dtype()),
                    "{at}: an element-wise kernel refused to run in place"
                ),
                Err(e) => panic!("{at} in place: {e}"),
            }
        }

        *tally.used.entry((name, used)).or_default() += 1;
        tally.nodes += 1;
        tally.fused += (!matches!(step.act, Act::None)) as usize;
        slots[node.output.index()] = Some(want);
    }
    tally
}

#[test]
fn every_fixture_node_matches_the_interpreter() {
    let all = variants();
    let passes: Vec<String> = etpkg::manifest::KNOWN_PASSES
        .iter()
        .map(|p| p.to_string())
        .collect();
    let (mut nodes, mut fused, mut in_place) = (0, 0, 0);
    let mut used = BTreeMap::new();
    for dir in fixture_dirs() {
        let xs = inputs(&dir);
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        for flavour in ["export", "core"] {
            let mut g = etpkg::pt2::import(&dir.join(format!("{flavour}.pt2")))
                .unwrap()
                .graph;
            etpkg::passes::run_passes(&mut g, &passes).unwrap();
            let label = format!("{name}/{flavour}");
            let t = check_graph(&label, &g, &xs, &all);
            println!(
                "{label:32} nodes {:4}  fused {:3}  in place {:3}  max error {:.2e}",
                t.nodes, t.fused, t.in_place, t.max_err
            );
            nodes += t.nodes;
            fused += t.fused;
            in_place += t.in_place;
            for (k, n) in t.used {
                *used.entry(k).or_insert(0) += n;
            }
        }
    }
    println!("total: {nodes} nodes, {fused} fused, {in_place} run in place");
    for ((step, variant), n) in &used {
        println!("  {step:24} {variant:28} {n:4}");
    }
    assert!(
        fused > 0,
        "the default passes fuse activations in some fixture"
    );
    assert!(in_place > 0, "some nodes run in place");
}

fn f32_step(kind: Kind, n: usize) -> Step {
    Step {
        kind,
        act: Act::None,
        inputs: [0; MAX_INPUTS],
        n_inputs: n as u8,
        output: 0,
    }
}

#[test]
fn bad_operands_are_errors_that_name_the_op() {
    let m = |d: &[usize]| TensorMeta::new(ops::DType::F32, d).unwrap();
    let add = f32_step(Kind::Binary(step::Binary::Add), 2);
    let x = AlignedBuf::new(&[0u8; 16]);
    let mut y = AlignedBuf::new(&[0u8; 16]);

    // Wrong number of inputs.
    let e = ops::run(
        &add,
        &[In::Tensor(m(&[4]), x.as_ref())],
        m(&[4]),
        y.as_mut(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        Reason::InputCount {
            min: 2,
            max: 2,
            got: 1
        }
    );
    assert_eq!(e.to_string(), "`add`: takes 2 operands, got 1");

    // Byte length mismatch.
    let short = &x.as_ref()[..12];
    let e = ops::run(
        &add,
        &[In::Tensor(m(&[4]), short), In::Tensor(m(&[4]), x.as_ref())],
        m(&[4]),
        y.as_mut(),
    )
    .unwrap_err();
    assert!(matches!(
        e.reason,
        Reason::ByteLength {
            expected: 16,
            got: 12,
            ..
        }
    ));
    assert!(e.to_string().starts_with("`add`"), "{e}");

    // Misaligned f32 data.
    let wide = AlignedBuf::new(&[0u8; 20]);
    let e = ops::run(
        &add,
        &[
            In::Tensor(m(&[4]), &wide.as_ref()[1..17]),
            In::Tensor(m(&[4]), x.as_ref()),
        ],
        m(&[4]),
        y.as_mut(),
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        Reason::Misaligned {
            which: ops::Which::Input(0)
        }
    );

    // A dtype the family does not compute: softmax of i64.
    let soft = f32_step(
        Kind::Softmax {
            axis: 0,
            log: false,
        },
        1,
    );
    let i = TensorMeta::new(ops::DType::I64, &[2]).unwrap();
    let e = ops::run(&soft, &[In::Tensor(i, x.as_ref())], i, y.as_mut()).unwrap_err();
    assert!(matches!(e.reason, Reason::DType { .. }), "{e}");
    assert!(e.to_string().contains("`softmax`"), "{e}");

    // A rank beyond MAX_RANK.
    let mut deep = m(&[1; 8]);
    deep.shape.rank = 9;
    let relu = f32_step(Kind::Unary(step::Unary::Relu), 1);
    let e = ops::run(
        &relu,
        &[In::Tensor(deep, &x.as_ref()[..4])],
        m(&[1]),
        &mut y.as_mut()[..4],
    )
    .unwrap_err();
    assert_eq!(
        e.reason,
        Reason::Rank {
            which: ops::Which::Input(0),
            rank: 9
        }
    );
    assert!(e.to_string().contains("`relu`"), "{e}");

    // Shapes that contradict the attributes: a conv whose output size is wrong.
    let conv = f32_step(
        Kind::Conv {
            spatial: 2,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            output_padding: [0, 0],
            groups: 1,
            transposed: false,
        },
        2,
    );
    let e = ops::run(
        &conv,
        &[
            In::Tensor(m(&[1, 1, 2, 2]), x.as_ref()),
            In::Tensor(m(&[1, 1, 1, 1]), &x.as_ref()[..4]),
        ],
        m(&[1, 1, 1, 4]),
        y.as_mut(),
    )
    .unwrap_err();
    assert!(matches!(e.reason, Reason::Shape { .. }), "{e}");

    // A bool operand that is not 0/1, and an out-of-range index.
    let b = TensorMeta::new(ops::DType::Bool, &[4]).unwrap();
    let not = f32_step(Kind::Unary(step::Unary::LogicalNot), 1);
    let bad = AlignedBuf::new(&[0, 1, 2, 0]);
    let e = ops::run(
        &not,
        &[In::Tensor(b, bad.as_ref())],
        b,
        &mut y.as_mut()[..4],
    )
    .unwrap_err();
    assert!(matches!(e.reason, Reason::NotBool { .. }), "{e}");
    let take = f32_step(Kind::Take { axis: 0 }, 2);
    let idx = AlignedBuf::new(&7i64.to_le_bytes());
    let e = ops::run(
        &take,
        &[
            In::Tensor(m(&[4]), x.as_ref()),
            In::Tensor(
                TensorMeta::new(ops::DType::I64, &[1]).unwrap(),
                idx.as_ref(),
            ),
        ],
        m(&[1]),
        &mut y.as_mut()[..4],
    )
    .unwrap_err();
    assert_eq!(e.reason, Reason::Index { index: 7, size: 4 });
    assert_eq!(
        e.to_string(),
        "`take`: index 7 is out of range for a dimension of size 4"
    );
}

#[test]
fn accepting_orders_a_chain_by_speed() {
    // A 1×1 convolution is accepted by every conv variant, fastest first.
    let conv = f32_step(
        Kind::Conv {
            spatial: 2,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            output_padding: [0, 0],
            groups: 1,
            transposed: false,
        },
        2,
    );
    let m = |d: &[usize]| TensorMeta::new(ops::DType::F32, d).unwrap();
    let mut names = Vec::new();
    ops::accepting(
        &conv,
        &[m(&[1, 3, 4, 4]), m(&[8, 3, 1, 1])],
        &m(&[1, 8, 4, 4]),
        &mut |n| names.push(n),
    );
    assert_eq!(
        names,
        [
            "conv.pointwise_avx512",
            "conv.im2col_avx512",
            "conv.pointwise_avx2",
            "conv.im2col_avx2",
            "conv.pointwise",
            "conv.direct",
            "conv.generic"
        ],
        "depthwise needs groups == channels"
    );
    // With a wrong output shape nothing accepts.
    names.clear();
    ops::accepting(
        &conv,
        &[m(&[1, 3, 4, 4]), m(&[8, 3, 1, 1])],
        &m(&[1, 8, 4, 5]),
        &mut |n| names.push(n),
    );
    assert!(names.is_empty());
}

/// The `//@use` blocks of one binding function (`run` or `accepting`), in source order.
fn use_blocks(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in src.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("//@use ") {
            assert!(open.is_none(), "nested //@use {name}");
            open = Some((name.to_string(), String::new()));
        } else if t == "//@end" {
            if let Some(b) = open.take() {
                out.push(b);
            }
        } else if let Some((_, body)) = open.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(open.is_none(), "an unclosed //@use block");
    out
}

#[test]
fn binding_markers_cover_every_variant_in_chain_order() {
    let all = variants();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/src/ops");
    let mod_rs = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let mut bound = std::collections::BTreeSet::new();
    for family in all
        .values()
        .map(|k| k.family)
        .collect::<std::collections::BTreeSet<_>>()
    {
        // The family's `mod` line sits inside its `//@family` block.
        let mod_line = format!("//@family {family}\nmod {family};\n//@end");
        assert!(mod_rs.contains(&mod_line), "mod.rs lacks {mod_line:?}");
        let src = std::fs::read_to_string(dir.join(format!("{family}.rs"))).unwrap();
        let (run_src, acc_src) = src
            .split_once("fn accepting(")
            .unwrap_or_else(|| panic!("{family}.rs has no accepting"));
        let run_src = &run_src[run_src.find("fn run(").unwrap()..];
        let chain = |s: &str, runs: bool| -> Vec<String> {
            use_blocks(s)
                .into_iter()
                .map(|(name, body)| {
                    let k = all
                        .get(name.as_str())
                        .unwrap_or_else(|| panic!("{family}.rs: unknown variant {name}"));
                    assert_eq!(k.family, family, "{name} in {family}.rs");
                    assert!(
                        body.contains(&format!("\"{name}\"")),
                        "{name}'s arm names it"
                    );
                    // A `run` arm of a variant with ISA needs asks the CPU before calling it
                    // (`accepting` is about shapes only); the check is `cfg!`-constant in a
                    // crate compiled with those features.
                    for isa in k.isa.iter().filter(|_| runs) {
                        // FMA comes with either extension, and one check covers both.
                        let wide = k.isa.contains(&"avx512f");
                        let check = match *isa {
                            "avx512f" => "kernels::x86::avx512()",
                            "avx2" => "kernels::x86::avx2()",
                            "fma" if wide => "kernels::x86::avx512()",
                            "fma" => "kernels::x86::avx2()",
                            other => panic!("{name}: no runtime check is known for {other}"),
                        };
                        assert!(
                            body.contains(check),
                            "{name} needs {isa} but its arm does not call {check}"
                        );
                    }
                    name
                })
                .collect()
        };
        let (run_chain, acc_chain) = (chain(run_src, true), chain(acc_src, false));
        // Both chains list the same variants in the same order (a variant may bind several
        // step kinds, e.g. `layout.cast` for reshape and cast, so compare first occurrences).
        let dedup = |v: &[String]| {
            let mut seen = Vec::new();
            for n in v {
                if !seen.contains(n) {
                    seen.push(n.clone());
                }
            }
            seen
        };
        assert_eq!(dedup(&run_chain), dedup(&acc_chain), "{family}.rs");
        // Within a family whose variants compute the same steps, speed never increases.
        let speeds: Vec<u8> = dedup(&run_chain)
            .iter()
            .map(|n| all[n.as_str()].speed)
            .collect();
        if family != "layout" && family != "index" && family != "reduce" {
            assert!(
                speeds.windows(2).all(|w| w[0] >= w[1]),
                "{family}: {run_chain:?}"
            );
            assert_eq!(
                *speeds.last().unwrap(),
                0,
                "{family}: the universal variant is last"
            );
        }
        bound.extend(run_chain);
    }
    let unbound: Vec<_> = all.keys().filter(|n| !bound.contains(**n)).collect();
    assert!(
        unbound.is_empty(),
        "variants without a binding: {unbound:?}"
    );
}

/// Deterministic values in `[lo, hi)` (xorshift), so the hand-built cases need no RNG crate.
fn pattern(n: usize, seed: u32, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(7);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            lo + (hi - lo) * (s as f32 / u32::MAX as f32)
        })
        .collect()
}

fn rand_f32(shape: &[usize], seed: u32) -> Tensor {
    let n = shape.iter().product();
    Tensor::f32(shape.to_vec(), pattern(n, seed, -2.0, 2.0))
}

/// Runs `op` (output type inferred by the IR) through the interpreter and through
/// `ops::run` (also with only universal variants kept) and compares them.
fn agrees(op: Op, args: &[Tensor]) -> f64 {
    let all = variants();
    let refs: Vec<&Tensor> = args.iter().collect();
    let tys: Vec<ir::TensorType> = args.iter().map(|t| t.ty()).collect();
    let ty_refs: Vec<&ir::TensorType> = tys.iter().collect();
    let out = ir::infer(&op, &ty_refs).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    let want = interp::eval(&op, &refs, &out).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    let node = Node {
        op: op.clone(),
        inputs: vec![],
        output: ir::ValueId(0),
        origin: Default::default(),
    };
    let step = step_of(&Graph::default(), &node);
    let label = format!("{op:?} on {tys:?}");
    let (_, got) =
        run_step(&step, &refs, &out, None, &|_| true).unwrap_or_else(|e| panic!("{label}: {e}"));
    let e = check(&label, &got, &want);
    let universal = |n: &str| all.get(n).is_some_and(|k| k.speed == 0);
    let (_, got) = run_step(&step, &refs, &out, None, &universal)
        .unwrap_or_else(|e| panic!("{label} universal: {e}"));
    check(&label, &got, &want);
    e
}

fn conv(
    stride: &[usize],
    pad: &[usize],
    dil: &[usize],
    groups: usize,
    transposed: bool,
    out_pad: &[usize],
) -> Op {
    Op::Conv(ir::ConvAttrs {
        stride: stride.to_vec(),
        padding: pad.to_vec(),
        dilation: dil.to_vec(),
        groups,
        transposed,
        output_padding: out_pad.to_vec(),
    })
}

#[test]
fn shapes_the_fixtures_miss_match_the_interpreter() {
    // matmul: vector·vector, vector·matrix, batched·vector, broadcast batches.
    agrees(Op::MatMul, &[rand_f32(&[5], 1), rand_f32(&[5], 2)]);
    agrees(Op::MatMul, &[rand_f32(&[5], 1), rand_f32(&[5, 3], 2)]);
    agrees(Op::MatMul, &[rand_f32(&[2, 4, 5], 1), rand_f32(&[5], 2)]);
    agrees(
        Op::MatMul,
        &[rand_f32(&[2, 1, 4, 5], 1), rand_f32(&[3, 5, 6], 2)],
    );
    // linear on a vector and with a bias; addmm with a row bias and scalars.
    agrees(Op::Linear, &[rand_f32(&[5], 1), rand_f32(&[3, 5], 2)]);
    agrees(
        Op::Linear,
        &[
            rand_f32(&[2, 3, 5], 1),
            rand_f32(&[4, 5], 2),
            rand_f32(&[4], 3),
        ],
    );
    agrees(
        Op::Addmm {
            alpha: 0.5,
            beta: 2.0,
        },
        &[
            rand_f32(&[1, 6], 1),
            rand_f32(&[3, 4], 2),
            rand_f32(&[4, 6], 3),
        ],
    );
    // 1-d convolutions: strided, dilated, grouped, padded; transposed with output
    // padding.
    agrees(
        conv(&[2], &[1], &[2], 2, false, &[0]),
        &[rand_f32(&[1, 4, 11], 1), rand_f32(&[6, 2, 3], 2)],
    );
    agrees(
        conv(&[1], &[0], &[1], 1, false, &[0]),
        &[
            rand_f32(&[2, 3, 7], 1),
            rand_f32(&[4, 3, 1], 2),
            rand_f32(&[4], 3),
        ],
    );
    agrees(
        conv(&[2], &[1], &[1], 1, true, &[1]),
        &[rand_f32(&[1, 3, 5], 1), rand_f32(&[3, 2, 3], 2)],
    );
    agrees(
        conv(&[2, 1], &[1, 0], &[1, 2], 2, true, &[1, 0]),
        &[
            rand_f32(&[2, 4, 3, 3], 1),
            rand_f32(&[4, 3, 3, 2], 2),
            rand_f32(&[6], 3),
        ],
    );
    // Depthwise 2-d with stride and padding.
    agrees(
        conv(&[2, 2], &[1, 1], &[1, 1], 3, false, &[0, 0]),
        &[rand_f32(&[1, 3, 6, 5], 1), rand_f32(&[3, 1, 3, 3], 2)],
    );
    // Attention: bool and float masks, causal, broadcast batches, an explicit scale.
    let q = rand_f32(&[2, 3, 4, 8], 1);
    let k = rand_f32(&[1, 3, 5, 8], 2);
    let v = rand_f32(&[2, 1, 5, 6], 3);
    let keep: Vec<bool> = (0..20).map(|i| i % 3 != 1).collect();
    agrees(
        Op::Sdpa {
            causal: false,
            scale: None,
        },
        &[
            q.clone(),
            k.clone(),
            v.clone(),
            Tensor::bool(vec![4, 5], keep),
        ],
    );
    agrees(
        Op::Sdpa {
            causal: false,
            scale: Some(0.3),
        },
        &[q.clone(), k.clone(), v.clone(), rand_f32(&[2, 1, 4, 5], 4)],
    );
    agrees(
        Op::Sdpa {
            causal: true,
            scale: None,
        },
        &[q, k, v],
    );
    // Pooling: 1-d with ceil_mode, average without padded positions, adaptive 1-d.
    let pool = |kind, k: &[usize], s: &[usize], p: &[usize], ceil, include| {
        Op::Pool(ir::PoolAttrs {
            kind,
            kernel: k.to_vec(),
            stride: s.to_vec(),
            padding: p.to_vec(),
            dilation: vec![1; k.len()],
            ceil_mode: ceil,
            count_include_pad: include,
            divisor_override: None,
        })
    };
    agrees(
        pool(PoolKind::Max, &[3], &[2], &[1], true, false),
        &[rand_f32(&[2, 3, 10], 1)],
    );
    agrees(
        pool(PoolKind::Avg, &[3, 2], &[2, 2], &[1, 1], true, false),
        &[rand_f32(&[3, 7, 6], 1)],
    );
    agrees(
        Op::AdaptivePool {
            kind: PoolKind::Avg,
            output_size: vec![4],
        },
        &[rand_f32(&[2, 3, 10], 1)],
    );
    // Upsampling: bilinear with and without aligned corners, nearest 1-d.
    for align_corners in [false, true] {
        agrees(
            Op::Upsample {
                mode: UpsampleMode::Bilinear { align_corners },
                size: vec![7, 5],
            },
            &[rand_f32(&[1, 2, 3, 4], 1)],
        );
    }
    agrees(
        Op::Upsample {
            mode: UpsampleMode::Nearest,
            size: vec![9],
        },
        &[rand_f32(&[2, 3, 4], 1)],
    );
    // Norms: group norm, layer norm over two dims.
    agrees(
        Op::GroupNorm {
            groups: 2,
            eps: 1e-5,
        },
        &[
            rand_f32(&[2, 4, 3, 2], 1),
            rand_f32(&[4], 2),
            rand_f32(&[4], 3),
        ],
    );
    agrees(
        Op::LayerNorm { axis: 1, eps: 1e-5 },
        &[
            rand_f32(&[2, 3, 4], 1),
            rand_f32(&[3, 4], 2),
            rand_f32(&[3, 4], 3),
        ],
    );
    // Reductions and arg-reductions over everything, with keepdim.
    agrees(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![],
            keepdim: true,
        },
        &[rand_f32(&[2, 3, 4], 1)],
    );
    agrees(
        Op::ArgReduce {
            op: ArgOp::Max,
            axis: None,
            keepdim: true,
        },
        &[rand_f32(&[2, 3, 4], 1)],
    );
    agrees(
        Op::Var {
            axes: vec![0, 2],
            correction: 1.0,
            keepdim: false,
        },
        &[rand_f32(&[2, 3, 4], 1)],
    );
    // Layout: a negative pad, a concat of mixed dtypes, a
    // cumsum of bools into i64, gather, tile with extra leading repeats.
    agrees(
        Op::Pad {
            pads: vec![(1, -1), (-2, 3)],
            value: 0.5,
        },
        &[rand_f32(&[3, 4], 1)],
    );
    agrees(
        Op::Concat { axis: 1 },
        &[
            rand_f32(&[2, 3], 1),
            Tensor::i64(vec![2, 2], vec![1, -2, 3, 4]),
            Tensor::bool(vec![2, 1], vec![true, false]),
        ],
    );
    agrees(
        Op::Cumsum { axis: 1 },
        &[Tensor::bool(
            vec![2, 3],
            vec![true, false, true, true, true, false],
        )],
    );
    agrees(
        Op::Gather { axis: 1 },
        &[
            rand_f32(&[3, 4], 1),
            Tensor::i64(vec![2, 2], vec![3, 0, 1, 1]),
        ],
    );
    agrees(
        Op::Tile {
            repeats: vec![2, 1, 3],
        },
        &[rand_f32(&[2, 2], 1)],
    );
    agrees(
        Op::Take { axis: 0 },
        &[rand_f32(&[4, 2], 1), Tensor::i64(vec![3], vec![-1, 0, 2])],
    );
}

#[test]
fn concat_skips_empty_vectors_as_pytorch_does() {
    // cat([[[1, 2], [3, 4]], [], [[5], [6]]], dim=1) = [[1, 2, 5], [3, 4, 6]].
    let f =
        |v: &[f32]| AlignedBuf::new(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
    let m = |d: &[usize]| TensorMeta::new(ops::DType::F32, d).unwrap();
    let (a, e, b) = (f(&[1.0, 2.0, 3.0, 4.0]), f(&[]), f(&[5.0, 6.0]));
    let mut y = f(&[0.0; 6]);
    let cat = f32_step(Kind::Concat { axis: 1 }, 1);
    ops::run(
        &cat,
        &[
            In::Tensor(m(&[2, 2]), a.as_ref()),
            In::Tensor(m(&[0]), e.as_ref()),
            In::Tensor(m(&[2, 1]), b.as_ref()),
        ],
        m(&[2, 3]),
        y.as_mut(),
    )
    .unwrap();
    assert_eq!(y.as_ref(), f(&[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]).as_ref());
    // Inputs that do not fill the output are refused.
    let e = ops::run(
        &cat,
        &[In::Tensor(m(&[2, 2]), a.as_ref())],
        m(&[2, 3]),
        y.as_mut(),
    )
    .unwrap_err();
    assert!(matches!(e.reason, Reason::Shape { .. }), "{e}");
}

/// `m` with dim `d` grown by one (or, for a scalar, made `[2]`).
fn grown(m: TensorMeta, d: usize) -> TensorMeta {
    let mut dims = m.shape.dims().to_vec();
    if dims.is_empty() {
        dims.push(2);
    } else {
        let n = dims.len();
        dims[d % n] += 1;
    }
    TensorMeta::new(m.dtype, &dims).unwrap()
}

#[test]
fn contradictory_metadata_never_panics() {
    // Every fixture node's step, with one operand's shape grown or dtype changed: `run` must
    // return (an error, or a result when the change is still consistent), never panic.
    let dtypes = [ops::DType::F32, ops::DType::I64, ops::DType::Bool];
    let (mut cases, mut refused) = (0usize, 0usize);
    for dir in fixture_dirs() {
        let g = etpkg::pt2::import(&dir.join("core.pt2")).unwrap().graph;
        let mut seen = std::collections::BTreeSet::new();
        for node in &g.nodes {
            let step = step_of(&g, node);
            let metas: Vec<TensorMeta> = node.inputs.iter().map(|&v| meta(g.ty(v))).collect();
            let out = meta(g.ty(node.output));
            // One representative per op and operand shapes keeps the test quick.
            if !seen.insert(format!("{:?} {metas:?} {out:?}", step.kind)) {
                continue;
            }
            for which in 0..=metas.len() {
                for variant in 0..4 {
                    let (mut ins, mut o) = (metas.clone(), out);
                    let m = if which < ins.len() {
                        &mut ins[which]
                    } else {
                        &mut o
                    };
                    *m = match variant {
                        0 | 1 => grown(*m, variant),
                        _ => TensorMeta {
                            dtype: dtypes[(dtypes.iter().position(|&d| d == m.dtype).unwrap()
                                + variant
                                - 1)
                                % 3],
                            ..*m
                        },
                    };
                    let bufs: Vec<AlignedBuf> = ins
                        .iter()
                        .map(|m| AlignedBuf::new(&vec![0u8; m.byte_len()]))
                        .collect();
                    let mut y = AlignedBuf::new(&vec![0u8; o.byte_len()]);
                    let args: Vec<In> = ins
                        .iter()
                        .zip(&bufs)
                        .map(|(m, b)| In::Tensor(*m, b.as_ref()))
                        .collect();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        ops::run(&step, &args, o, y.as_mut())
                    }));
                    let label = format!("{} {step:?} {ins:?} -> {o:?}", dir.display());
                    match r {
                        Ok(r) => refused += r.is_err() as usize,
                        Err(_) => panic!("{label}: panicked"),
                    }
                    cases += 1;
                }
            }
        }
    }
    println!("{cases} contradictory cases, {refused} refused");
    assert!(refused * 2 > cases, "most contradictions are refused");
}

/// `src` without the `//@use` blocks of variants `keep` rejects and the `//@family` blocks of
/// families `keep_family` rejects, as the generator trims a copy (nested blocks allowed).
fn trim(src: &str, keep: &dyn Fn(&str) -> bool, keep_family: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut stack: Vec<bool> = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("//@use ") {
            stack.push(!keep(v));
        } else if let Some(f) = t.strip_prefix("//@family ") {
            stack.push(!keep_family(f));
        } else if t == "//@end" && !stack.is_empty() {
            stack.pop();
        } else if !stack.iter().any(|&drop| drop) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Type-checks (`rustc --emit=metadata`, warnings denied) a no_std crate holding the kernels
/// and the bindings, both trimmed to the kept variants and families, `pte.rs` and `step.rs`,
/// the way a generated runtime lays them out: a binding that names a dropped variant outside
/// its markers fails here.
fn trimmed_crate_checks(
    label: &str,
    keep: &dyn Fn(&str) -> bool,
    keep_family: &dyn Fn(&str) -> bool,
) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("etpkg-ops-trim-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("kernels")).unwrap();
    std::fs::create_dir_all(dir.join("ops")).unwrap();
    let mut kernel_mods = String::new();
    let families: std::collections::BTreeSet<&str> =
        variants().values().map(|k| k.family).collect();
    for e in std::fs::read_dir(root.join("kernels/src")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let family = families.contains(name.as_str());
        if name == "lib" || (family && !keep_family(&name)) {
            continue;
        }
        // A family file keeps its shared part and its kept `//@variant` blocks, never `//@meta`.
        let src = std::fs::read_to_string(&p).unwrap();
        let mut text = String::new();
        let mut dropping = false;
        for line in src.lines() {
            let t = line.trim();
            if let Some(v) = t.strip_prefix("//@variant ") {
                dropping = family && !keep(&format!("{name}.{v}"));
            } else if t == "//@meta" {
                dropping = true;
            } else if t == "//@end" {
                dropping = false;
            } else if !dropping {
                text.push_str(line);
                text.push('\n');
            }
        }
        std::fs::write(dir.join("kernels").join(p.file_name().unwrap()), text).unwrap();
        kernel_mods.push_str(&format!("pub mod {name};\n"));
    }
    for f in ["pte.rs", "step.rs"] {
        std::fs::copy(root.join("runtime/src").join(f), dir.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root.join("runtime/src/ops")).unwrap() {
        let p = e.unwrap().path();
        let stem = p.file_stem().unwrap().to_string_lossy().to_string();
        if stem == "mod" || keep_family(&stem) {
            let src = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                dir.join("ops").join(p.file_name().unwrap()),
                trim(&src, keep, keep_family),
            )
            .unwrap();
        }
    }
    std::fs::write(
        dir.join("lib.rs"),
        format!("#![no_std]\npub mod kernels {{\n{kernel_mods}}}\npub mod pte;\npub mod step;\npub mod ops;\n"),
    )
    .unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "lib",
            "--emit=metadata",
            "-D",
            "warnings",
            // Unused shared helpers of a trimmed kernel file are the generator's to prune.
            "-A",
            "dead_code",
            "-A",
            "unused_imports",
        ])
        .arg("--crate-name")
        .arg("trimmed")
        .arg("--out-dir")
        .arg(&dir)
        .arg(dir.join("lib.rs"))
        .output()
        .expect("rustc runs");
    assert!(
        out.status.success(),
        "{label}: the trimmed bindings do not compile:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn trimmed_bindings_still_compile() {
    let all = variants();
    let universal = |n: &str| all.get(n).is_some_and(|k| k.speed == 0);
    trimmed_crate_checks("universal", &universal, &|_| true);
    trimmed_crate_checks("binary-only", &|n| n == "binary.binary", &|f| f == "binary");
    trimmed_crate_checks(
        "fast-only",
        &|n| all.get(n).is_some_and(|k| k.speed > 0),
        &|f| ["conv", "matmul", "binary", "unary"].contains(&f),
    );
    trimmed_crate_checks("nothing", &|_| false, &|_| false);
}
