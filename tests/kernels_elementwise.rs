//! The element-wise, reduction, layout and indexing kernels of `etpkg-kernels` against the
//! reference interpreter. Invariant: every variant is compared with `interp::eval` on random
//! shapes (ranks 0–5, broadcasting, size-1 and size-0 dims) and special values; f32 within
//! `1e-6 · max(1, max|ref|)`, i64 and bool exactly, and an interpreter error must be a kernel
//! error.

use etpkg::interp::{self, Tensor};
use etpkg::ir::{self, Activation, ArgOp, BinaryOp, DType, Op, ReduceOp, TensorType, UnaryOp};
use etpkg_kernels::act::Act;
use etpkg_kernels::binary as kb;
use etpkg_kernels::shape::{self as ks, Dst, Operand, Shape, Src};
use etpkg_kernels::where_ as kw;
use etpkg_kernels::{index as ki, layout as kl, meta::KernelInfo, reduce as kr, unary as ku};

// ---------------------------------------------------------------- random inputs

/// xorshift64*: a fixed-seed generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn f32(&mut self, specials: bool) -> f32 {
        if specials && self.chance(8) {
            [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0][self.below(5)]
        } else {
            (self.below(1 << 20) as f32 / (1 << 20) as f32 - 0.5) * 8.0
        }
    }
    fn i64(&mut self) -> i64 {
        if self.chance(3) {
            [i64::MIN, i64::MAX, 0, -1][self.below(4)]
        } else {
            self.below(41) as i64 - 20
        }
    }
}

fn random_shape(r: &mut Rng, max_rank: usize, allow_empty: bool) -> Vec<usize> {
    let rank = r.below(max_rank + 1);
    (0..rank)
        .map(|_| {
            if allow_empty && r.chance(5) {
                0
            } else if r.chance(25) {
                1
            } else {
                1 + r.below(5)
            }
        })
        .collect()
}

/// A shape that broadcasts to `out`: leading dims may be dropped and any dim may become 1.
fn broadcast_partner(r: &mut Rng, out: &[usize]) -> Vec<usize> {
    let drop = if r.chance(30) {
        r.below(out.len() + 1)
    } else {
        0
    };
    out[drop..]
        .iter()
        .map(|&d| if r.chance(30) { 1 } else { d })
        .collect()
}

fn random_tensor(r: &mut Rng, dtype: DType, shape: &[usize], specials: bool) -> Tensor {
    let n: usize = shape.iter().product();
    match dtype {
        DType::F32 => Tensor::f32(shape.to_vec(), (0..n).map(|_| r.f32(specials)).collect()),
        DType::I64 => Tensor::i64(shape.to_vec(), (0..n).map(|_| r.i64()).collect()),
        _ => Tensor::bool(shape.to_vec(), (0..n).map(|_| r.chance(50)).collect()),
    }
}

const DTYPES: [DType; 3] = [DType::F32, DType::I64, DType::Bool];

// ---------------------------------------------------------------- buffers and comparison

#[derive(Clone, Debug)]
enum Buf {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<u8>),
}

impl Buf {
    fn of(t: &Tensor) -> Buf {
        match &t.data {
            interp::Data::F32(v) => Buf::F32(v.clone()),
            interp::Data::I64(v) => Buf::I64(v.clone()),
            interp::Data::Bool(v) => Buf::Bool(v.iter().map(|&b| b as u8).collect()),
        }
    }
    fn zeros(dtype: DType, n: usize) -> Buf {
        match dtype {
            DType::F32 => Buf::F32(vec![0.0; n]),
            DType::I64 => Buf::I64(vec![0; n]),
            _ => Buf::Bool(vec![0; n]),
        }
    }
    fn src(&self) -> Src<'_> {
        match self {
            Buf::F32(v) => Src::F32(v),
            Buf::I64(v) => Src::I64(v),
            Buf::Bool(v) => Src::Bool(v),
        }
    }
    fn dst(&mut self) -> Dst<'_> {
        match self {
            Buf::F32(v) => Dst::F32(v),
            Buf::I64(v) => Dst::I64(v),
            Buf::Bool(v) => Dst::Bool(v),
        }
    }
    fn tensor(&self, shape: &[usize]) -> Tensor {
        match self {
            Buf::F32(v) => Tensor::f32(shape.to_vec(), v.clone()),
            Buf::I64(v) => Tensor::i64(shape.to_vec(), v.clone()),
            Buf::Bool(v) => Tensor::bool(shape.to_vec(), v.iter().map(|&b| b != 0).collect()),
        }
    }
}

fn kdt(d: DType) -> ks::DType {
    match d {
        DType::F32 => ks::DType::F32,
        DType::I64 => ks::DType::I64,
        _ => ks::DType::Bool,
    }
}

fn shp(s: &[usize]) -> Shape {
    Shape::new(s).expect("rank within MAX_RANK")
}

/// f32 within `1e-6 · max(1, max|ref|)` (NaN matches NaN, infinities exactly); others exact.
fn assert_match(got: &Tensor, want: &Tensor, ctx: &dyn std::fmt::Display) {
    assert_eq!(got.shape, want.shape, "{ctx}: shape");
    match (&got.data, &want.data) {
        (interp::Data::F32(g), interp::Data::F32(w)) => {
            let scale = w
                .iter()
                .filter(|v| v.is_finite())
                .fold(1f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                let ok = if b.is_nan() {
                    a.is_nan()
                } else if b.is_infinite() {
                    a == b
                } else {
                    (a - b).abs() <= 1e-6 * scale
                };
                assert!(
                    ok,
                    "{ctx}: element {i}: got {a}, want {b}\n got {g:?}\nwant {w:?}"
                );
            }
        }
        _ => assert_eq!(got, want, "{ctx}"),
    }
}

/// The interpreter's answer, or None when the IR refuses the op on these types (then no
/// graph can contain it and no kernel runs it).
fn reference(
    op: &Op,
    inputs: &[&Tensor],
) -> Option<(TensorType, Result<Tensor, interp::InterpError>)> {
    let tys: Vec<TensorType> = inputs.iter().map(|t| t.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    let out = ir::infer(op, &refs).ok()?;
    let r = interp::eval(op, inputs, &out);
    Some((out, r))
}

// ---------------------------------------------------------------- unary

fn unary_ops() -> Vec<(UnaryOp, ku::UnaryOp)> {
    use UnaryOp as U;
    let mut v = vec![
        (U::Relu, ku::UnaryOp::Relu),
        (U::Sigmoid, ku::UnaryOp::Sigmoid),
        (U::Tanh, ku::UnaryOp::Tanh),
        (U::Exp, ku::UnaryOp::Exp),
        (U::Log, ku::UnaryOp::Log),
        (U::Sqrt, ku::UnaryOp::Sqrt),
        (U::Rsqrt, ku::UnaryOp::Rsqrt),
        (U::Neg, ku::UnaryOp::Neg),
        (U::Abs, ku::UnaryOp::Abs),
        (U::Erf, ku::UnaryOp::Erf),
        (U::Reciprocal, ku::UnaryOp::Reciprocal),
        (U::Floor, ku::UnaryOp::Floor),
        (U::Ceil, ku::UnaryOp::Ceil),
        (U::Round, ku::UnaryOp::Round),
        (U::Sign, ku::UnaryOp::Sign),
        (U::Sin, ku::UnaryOp::Sin),
        (U::Cos, ku::UnaryOp::Cos),
        (U::LogicalNot, ku::UnaryOp::LogicalNot),
        (U::Silu, ku::UnaryOp::Silu),
        (U::Hardswish, ku::UnaryOp::Hardswish),
        (U::Hardsigmoid, ku::UnaryOp::Hardsigmoid),
        (U::Gelu { tanh: false }, ku::UnaryOp::Gelu { tanh: false }),
        (U::Gelu { tanh: true }, ku::UnaryOp::Gelu { tanh: true }),
        (
            U::LeakyRelu { slope: 0.1 },
            ku::UnaryOp::LeakyRelu { slope: 0.1 },
        ),
        (U::Elu { alpha: 0.7 }, ku::UnaryOp::Elu { alpha: 0.7 }),
    ];
    for (min, max) in [
        (Some(-1.5), Some(2.25)),
        (Some(0.0), Some(6.0)),
        (None, Some(1.0)),
        (Some(-2.0), None),
        (Some(3.0), Some(1.0)),
        (Some(f64::NAN), None),
        (Some(0.1), Some(0.7)),
    ] {
        v.push((U::Clamp { min, max }, ku::UnaryOp::Clamp { min, max }));
    }
    v
}

#[test]
fn unary_matches_the_interpreter() {
    let mut r = Rng(0x1234_5678);
    for (op, kop) in unary_ops() {
        for &dt in &DTYPES {
            for _ in 0..20 {
                let shape = random_shape(&mut r, 5, true);
                let x = random_tensor(&mut r, dt, &shape, true);
                let Some((out, want)) = reference(&Op::Unary(op), &[&x]) else {
                    continue;
                };
                let p = ku::UnaryParams {
                    op: kop,
                    numel: x.numel(),
                    x_dtype: kdt(dt),
                    out_dtype: kdt(out.dtype),
                };
                let ctx = format!("unary {op:?} on {}", x.ty());
                assert!(ku::unary_accepts(&p));
                let xb = Buf::of(&x);
                let mut y = Buf::zeros(out.dtype, x.numel());
                let got = ku::unary(&p, xb.src(), y.dst());
                let want = match want {
                    Ok(w) => w,
                    Err(e) => {
                        assert!(got.is_err(), "{ctx}: interpreter refused ({e}), kernel ran");
                        continue;
                    }
                };
                got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_match(&y.tensor(&out.shape), &want, &ctx);
                // In place: the output buffer starts as the input.
                if out.dtype == dt {
                    let mut y = xb.clone();
                    ku::unary(&p, Src::InOut, y.dst()).unwrap();
                    assert_match(&y.tensor(&out.shape), &want, &format!("{ctx} in place"));
                }
                let f32_ok =
                    dt == DType::F32 && out.dtype == DType::F32 && op != UnaryOp::LogicalNot;
                assert_eq!(ku::unary_f32_accepts(&p), f32_ok, "{ctx}");
                if f32_ok {
                    let xs = x.as_f32().unwrap();
                    let mut y = vec![0f32; xs.len()];
                    ku::unary_f32(&p, Operand::Slice(xs), &mut y);
                    let t = Tensor::f32(out.shape.clone(), y);
                    assert_match(&t, &want, &format!("{ctx} unary_f32"));
                    let mut y = xs.to_vec();
                    ku::unary_f32(&p, Operand::InOut, &mut y);
                    let t = Tensor::f32(out.shape.clone(), y);
                    assert_match(&t, &want, &format!("{ctx} unary_f32 in place"));
                }
            }
        }
    }
}

#[test]
fn unary_special_values() {
    // Every op on the special values and on wide ranges, where approximations break first.
    let mut vals = vec![
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        0.5,
        1.5,
        2.5,
        -0.5,
        -2.5,
        1e-30,
        -1e-30,
        88.0,
        -88.0,
        100.0,
        -100.0,
        1e6,
        -1e6,
        3.0,
        -3.0,
    ];
    vals.extend((0..200).map(|i| (i as f32 - 100.0) * 0.173));
    let x = Tensor::f32(vec![vals.len()], vals);
    for (op, kop) in unary_ops() {
        let (out, want) = reference(&Op::Unary(op), &[&x]).unwrap();
        let want = want.unwrap();
        let p = ku::UnaryParams {
            op: kop,
            numel: x.numel(),
            x_dtype: ks::DType::F32,
            out_dtype: kdt(out.dtype),
        };
        let mut y = Buf::zeros(out.dtype, x.numel());
        ku::unary(&p, Buf::of(&x).src(), y.dst()).unwrap();
        // Per element, relative to that element's own magnitude, so a small result next to
        // a large one is still checked closely.
        let got = y.tensor(&out.shape);
        if let (Some(g), Some(w)) = (got.as_f32(), want.as_f32()) {
            for ((&g, &w), &xv) in g.iter().zip(w).zip(x.as_f32().unwrap()) {
                let ok = (g.is_nan() && w.is_nan())
                    || g == w
                    || (g - w).abs() <= 2e-6 * w.abs().max(1.0);
                assert!(ok, "{op:?} at {xv}: got {g}, want {w}");
            }
        }
        if out.dtype != DType::F32 {
            assert_match(&got, &want, &format!("{op:?}"));
        }
    }
}

#[test]
fn unary_errors_match_the_interpreter() {
    // exp on i64 data into an i64 output, and a fractional clamp bound on i64 data.
    let x = Tensor::i64(vec![3], vec![1, -2, 5]);
    for (op, kop) in [
        (UnaryOp::Exp, ku::UnaryOp::Exp),
        (
            UnaryOp::Clamp {
                min: Some(1.5),
                max: None,
            },
            ku::UnaryOp::Clamp {
                min: Some(1.5),
                max: None,
            },
        ),
    ] {
        let out = TensorType::new(DType::I64, vec![3]);
        assert!(interp::eval(&Op::Unary(op), &[&x], &out).is_err());
        let p = ku::UnaryParams {
            op: kop,
            numel: 3,
            x_dtype: ks::DType::I64,
            out_dtype: ks::DType::I64,
        };
        let mut y = Buf::zeros(DType::I64, 3);
        assert!(ku::unary(&p, Buf::of(&x).src(), y.dst()).is_err());
    }
}

// ---------------------------------------------------------------- binary

fn binary_ops() -> Vec<(BinaryOp, kb::BinaryOp)> {
    use BinaryOp as B;
    vec![
        (B::Add, kb::BinaryOp::Add),
        (B::Sub, kb::BinaryOp::Sub),
        (B::Mul, kb::BinaryOp::Mul),
        (B::Div, kb::BinaryOp::Div),
        (B::FloorDiv, kb::BinaryOp::FloorDiv),
        (B::TruncDiv, kb::BinaryOp::TruncDiv),
        (B::Rem, kb::BinaryOp::Rem),
        (B::Pow, kb::BinaryOp::Pow),
        (B::Maximum, kb::BinaryOp::Maximum),
        (B::Minimum, kb::BinaryOp::Minimum),
        (B::Eq, kb::BinaryOp::Eq),
        (B::Ne, kb::BinaryOp::Ne),
        (B::Lt, kb::BinaryOp::Lt),
        (B::Le, kb::BinaryOp::Le),
        (B::Gt, kb::BinaryOp::Gt),
        (B::Ge, kb::BinaryOp::Ge),
        (B::And, kb::BinaryOp::And),
        (B::Or, kb::BinaryOp::Or),
        (B::Xor, kb::BinaryOp::Xor),
    ]
}

fn act_of(a: Option<Activation>) -> Act {
    match a {
        None => Act::None,
        Some(Activation::Relu) => Act::Relu,
        Some(Activation::Clamp { min, max }) => Act::Clamp {
            min: min.map_or(f32::NEG_INFINITY, |v| v as f32),
            max: max.map_or(f32::INFINITY, |v| v as f32),
        },
        Some(Activation::Hardswish) => Act::Hardswish,
        Some(Activation::Hardsigmoid) => Act::Hardsigmoid,
        Some(Activation::Silu) => Act::Silu,
        Some(Activation::Gelu { tanh }) => Act::Gelu { tanh },
    }
}

/// Runs every binary variant that accepts `(a, b)` and compares each with the interpreter.
fn check_binary(op: BinaryOp, kop: kb::BinaryOp, act: Option<Activation>, a: &Tensor, b: &Tensor) {
    let ir_op = match act {
        None => Op::Binary(op),
        Some(act) => Op::Fused {
            op: Box::new(Op::Binary(op)),
            act,
        },
    };
    let Some((out, want)) = reference(&ir_op, &[a, b]) else {
        return;
    };
    let p = kb::BinaryParams {
        op: kop,
        a: shp(&a.shape),
        b: shp(&b.shape),
        out: shp(&out.shape),
        a_dtype: kdt(a.dtype()),
        b_dtype: kdt(b.dtype()),
        out_dtype: kdt(out.dtype),
        act: act_of(act),
    };
    let ctx = format!("{} ({act:?}) of {} and {}", op.name(), a.ty(), b.ty());
    assert!(kb::binary_accepts(&p));
    let (ab, bb) = (Buf::of(a), Buf::of(b));
    let n = out.numel();
    let mut y = Buf::zeros(out.dtype, n);
    let got = kb::binary(&p, ab.src(), bb.src(), y.dst());
    let want = match want {
        Ok(w) => w,
        Err(e) => {
            assert!(got.is_err(), "{ctx}: interpreter refused ({e}), kernel ran");
            return;
        }
    };
    got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert_match(&y.tensor(&out.shape), &want, &ctx);
    // In place on either operand that has the output's shape and dtype.
    for (which, t) in [(0, a), (1, b)] {
        if t.shape == out.shape && t.dtype() == out.dtype {
            let mut y = Buf::of(t);
            let r = if which == 0 {
                kb::binary(&p, Src::InOut, bb.src(), y.dst())
            } else {
                kb::binary(&p, ab.src(), Src::InOut, y.dst())
            };
            r.unwrap();
            assert_match(
                &y.tensor(&out.shape),
                &want,
                &format!("{ctx} in place on {which}"),
            );
        }
    }
    // The f32 speed variants: accepted exactly on their shapes, then equal to the reference.
    let arith = !op.is_comparison() && !matches!(op, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor);
    let all_f32 = a.dtype() == DType::F32 && b.dtype() == DType::F32 && arith;
    let same = all_f32 && a.shape == out.shape && b.shape == out.shape;
    let scalar = all_f32
        && n > 0
        && ((b.numel() == 1 && a.shape == out.shape) || (a.numel() == 1 && b.shape == out.shape));
    let channel = all_f32 && (a.shape == out.shape || b.shape == out.shape);
    assert_eq!(kb::binary_f32_same_accepts(&p), same, "{ctx}");
    assert_eq!(kb::binary_f32_scalar_accepts(&p), scalar, "{ctx}");
    assert_eq!(kb::binary_f32_channel_accepts(&p), channel, "{ctx}");
    type Variant = fn(&kb::BinaryParams, Operand<'_, f32>, Operand<'_, f32>, &mut [f32]);
    let variants: [(bool, Variant, &str); 3] = [
        (same, kb::binary_f32_same, "same"),
        (scalar, kb::binary_f32_scalar, "scalar"),
        (channel, kb::binary_f32_channel, "channel"),
    ];
    for (ok, f, name) in variants {
        if !ok {
            continue;
        }
        let (av, bv) = (a.as_f32().unwrap(), b.as_f32().unwrap());
        let mut y = vec![0f32; n];
        f(&p, Operand::Slice(av), Operand::Slice(bv), &mut y);
        let t = Tensor::f32(out.shape.clone(), y);
        assert_match(&t, &want, &format!("{ctx} {name}"));
        if a.shape == out.shape {
            let mut y = av.to_vec();
            f(&p, Operand::InOut, Operand::Slice(bv), &mut y);
            let t = Tensor::f32(out.shape.clone(), y);
            assert_match(&t, &want, &format!("{ctx} {name} in place on a"));
        }
        if b.shape == out.shape {
            let mut y = bv.to_vec();
            f(&p, Operand::Slice(av), Operand::InOut, &mut y);
            let t = Tensor::f32(out.shape.clone(), y);
            assert_match(&t, &want, &format!("{ctx} {name} in place on b"));
        }
    }
}

#[test]
fn binary_matches_the_interpreter() {
    let mut r = Rng(0xdead_beef);
    for (op, kop) in binary_ops() {
        for &da in &DTYPES {
            for &db in &DTYPES {
                for case in 0..16 {
                    let out = random_shape(&mut r, 5, true);
                    let (sa, sb) = match case % 4 {
                        0 => (out.clone(), out.clone()),
                        1 => (out.clone(), broadcast_partner(&mut r, &out)),
                        2 => (broadcast_partner(&mut r, &out), out.clone()),
                        _ => (
                            broadcast_partner(&mut r, &out),
                            broadcast_partner(&mut r, &out),
                        ),
                    };
                    let a = random_tensor(&mut r, da, &sa, true);
                    let mut b = random_tensor(&mut r, db, &sb, true);
                    // Small non-negative integer exponents so pow also succeeds sometimes.
                    if op == BinaryOp::Pow && db == DType::I64 && case % 2 == 0 {
                        if let interp::Data::I64(v) = &mut b.data {
                            v.iter_mut().for_each(|e| *e = e.rem_euclid(5));
                        }
                    }
                    check_binary(op, kop, None, &a, &b);
                }
            }
        }
    }
}

#[test]
fn binary_f32_shapes_and_fused_activations() {
    let mut r = Rng(42);
    let acts = [
        Activation::Relu,
        Activation::Clamp {
            min: Some(0.0),
            max: Some(6.0),
        },
        Activation::Clamp {
            min: Some(-1.0),
            max: None,
        },
        Activation::Hardswish,
        Activation::Hardsigmoid,
        Activation::Silu,
        Activation::Gelu { tanh: false },
        Activation::Gelu { tanh: true },
    ];
    let shapes: [(&[usize], &[usize]); 8] = [
        (&[2, 3, 4, 5], &[2, 3, 4, 5]),
        (&[2, 3, 4, 5], &[]),
        (&[], &[2, 3, 4, 5]),
        (&[2, 3, 4, 5], &[3, 1, 1]),
        (&[3, 1, 1], &[2, 3, 4, 5]),
        (&[2, 3, 4, 5], &[5]),
        (&[2, 3, 4, 70], &[1, 3, 1, 70]),
        (&[1, 130], &[1]),
    ];
    for (op, kop) in binary_ops().into_iter().take(10) {
        for (sa, sb) in shapes {
            let a = random_tensor(&mut r, DType::F32, sa, true);
            let b = random_tensor(&mut r, DType::F32, sb, true);
            check_binary(op, kop, None, &a, &b);
            if matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul) {
                for act in acts {
                    check_binary(op, kop, Some(act), &a, &b);
                }
            }
        }
    }
}

#[test]
fn binary_special_values() {
    let sp = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.5,
        -7.5,
        1e30,
        0.1,
    ];
    let n = sp.len();
    let a = Tensor::f32(vec![n, n], (0..n * n).map(|i| sp[i / n]).collect());
    let b = Tensor::f32(vec![n, n], (0..n * n).map(|i| sp[i % n]).collect());
    for (op, kop) in binary_ops() {
        check_binary(op, kop, None, &a, &b);
    }
    // Integer division by zero is an error in both (the runtime surfaces it); i64::MIN // -1
    // wraps.
    let ia = Tensor::i64(vec![4], vec![7, -7, i64::MIN, 0]);
    for q in [0i64, -1, 3] {
        let ib = Tensor::i64(vec![], vec![q]);
        for (op, kop) in binary_ops() {
            check_binary(op, kop, None, &ia, &ib);
        }
    }
}

#[test]
fn binary_refuses_bad_shapes() {
    let p = kb::BinaryParams {
        op: kb::BinaryOp::Add,
        a: shp(&[2, 3]),
        b: shp(&[3, 3]),
        out: shp(&[2, 3]),
        a_dtype: ks::DType::F32,
        b_dtype: ks::DType::F32,
        out_dtype: ks::DType::F32,
        act: Act::None,
    };
    assert!(!kb::binary_f32_same_accepts(&p));
    assert!(!kb::binary_f32_scalar_accepts(&p));
    assert!(!kb::binary_f32_channel_accepts(&p));
    let a = [0f32; 6];
    let b = [0f32; 9];
    let mut y = [0f32; 6];
    assert_eq!(
        kb::binary(&p, Src::F32(&a), Src::F32(&b), Dst::F32(&mut y)),
        Err(kb::BinaryError::Shape)
    );
    // An in-place operand must have the output's shape.
    let p = kb::BinaryParams { b: shp(&[3]), ..p };
    assert_eq!(
        kb::binary(&p, Src::F32(&a), Src::InOut, Dst::F32(&mut y)),
        Err(kb::BinaryError::Shape)
    );
    // A comparison is not an f32 arithmetic variant's business.
    let p = kb::BinaryParams {
        op: kb::BinaryOp::Lt,
        b: shp(&[2, 3]),
        out_dtype: ks::DType::Bool,
        ..p
    };
    assert!(!kb::binary_f32_same_accepts(&p));
}

// ---------------------------------------------------------------- where

#[test]
fn where_matches_the_interpreter() {
    let mut r = Rng(7);
    for &da in &DTYPES {
        for &db in &DTYPES {
            for case in 0..24 {
                let out = random_shape(&mut r, 5, true);
                let sc = if case % 3 == 0 {
                    out.clone()
                } else {
                    broadcast_partner(&mut r, &out)
                };
                let sa = if case % 2 == 0 {
                    out.clone()
                } else {
                    broadcast_partner(&mut r, &out)
                };
                let sb = broadcast_partner(&mut r, &out);
                let c = random_tensor(&mut r, DType::Bool, &sc, false);
                let a = random_tensor(&mut r, da, &sa, true);
                let b = random_tensor(&mut r, db, &sb, true);
                let Some((ty, want)) = reference(&Op::Where, &[&c, &a, &b]) else {
                    continue;
                };
                let want = want.unwrap();
                let p = kw::WhereParams {
                    cond: shp(&sc),
                    a: shp(&sa),
                    b: shp(&sb),
                    out: shp(&ty.shape),
                };
                let ctx = format!("where {} {} {}", c.ty(), a.ty(), b.ty());
                assert!(kw::select_accepts(&p), "{ctx}");
                let cb: Vec<u8> = c.as_bool().unwrap().iter().map(|&v| v as u8).collect();
                let mut y = Buf::zeros(ty.dtype, ty.numel());
                kw::select(&p, &cb, Buf::of(&a).src(), Buf::of(&b).src(), y.dst()).unwrap();
                assert_match(&y.tensor(&ty.shape), &want, &ctx);
                if a.shape == ty.shape && a.dtype() == ty.dtype {
                    let mut y = Buf::of(&a);
                    kw::select(&p, &cb, Src::InOut, Buf::of(&b).src(), y.dst()).unwrap();
                    assert_match(&y.tensor(&ty.shape), &want, &format!("{ctx} in place"));
                }
            }
        }
    }
    let p = kw::WhereParams {
        cond: shp(&[2]),
        a: shp(&[3]),
        b: shp(&[]),
        out: shp(&[3]),
    };
    assert!(!kw::select_accepts(&p));
}

// ---------------------------------------------------------------- reduce

fn axes_mask(axes: &[usize], rank: usize) -> u32 {
    if axes.is_empty() {
        (1u32 << rank) - 1
    } else {
        axes.iter().fold(0, |m, &a| m | 1 << a)
    }
}

#[test]
fn reduce_matches_the_interpreter() {
    let mut r = Rng(99);
    let ops = [
        (ReduceOp::Sum, kr::ReduceOp::Sum),
        (ReduceOp::Mean, kr::ReduceOp::Mean),
        (ReduceOp::Max, kr::ReduceOp::Max),
        (ReduceOp::Min, kr::ReduceOp::Min),
        (ReduceOp::Prod, kr::ReduceOp::Prod),
    ];
    for (op, kop) in ops {
        for &dt in &DTYPES {
            for _ in 0..60 {
                let shape = random_shape(&mut r, 5, true);
                let axes: Vec<usize> = (0..shape.len()).filter(|_| r.chance(40)).collect();
                let specials = r.chance(50);
                let x = random_tensor(&mut r, dt, &shape, specials);
                let ir_op = Op::Reduce {
                    op,
                    axes: axes.clone(),
                    keepdim: r.chance(50),
                };
                let Some((out, want)) = reference(&ir_op, &[&x]) else {
                    continue;
                };
                let p = kr::ReduceParams {
                    x: shp(&shape),
                    axes: axes_mask(&axes, shape.len()),
                };
                let ctx = format!("{} over {axes:?} of {}", ir_op.name(), x.ty());
                assert!(kr::reduce_accepts(&p));
                let mut y = Buf::zeros(out.dtype, out.numel());
                let got = match (&Buf::of(&x), &mut y) {
                    (Buf::F32(x), Buf::F32(y)) => kr::reduce(&p, kop, x, y),
                    (Buf::I64(x), Buf::I64(y)) => kr::reduce(&p, kop, x, y),
                    (Buf::Bool(x), Buf::I64(y)) => kr::reduce(&p, kop, x, y),
                    (Buf::Bool(x), Buf::Bool(y)) => kr::reduce(&p, kop, x, y),
                    (x, y) => panic!("{ctx}: unexpected dtypes {x:?} -> {y:?}"),
                };
                match want {
                    Ok(w) => {
                        got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert_match(&y.tensor(&out.shape), &w, &ctx);
                    }
                    Err(e) => assert!(got.is_err(), "{ctx}: interpreter refused ({e})"),
                }
            }
        }
    }
    let bad = kr::ReduceParams {
        x: shp(&[2, 3]),
        axes: 0b100,
    };
    assert!(!kr::reduce_accepts(&bad));
}

#[test]
fn var_and_arg_reduce_match_the_interpreter() {
    let mut r = Rng(5);
    for _ in 0..240 {
        let shape = random_shape(&mut r, 5, true);
        let axes: Vec<usize> = (0..shape.len()).filter(|_| r.chance(40)).collect();
        let specials = r.chance(30);
        let x = random_tensor(&mut r, DType::F32, &shape, specials);
        let correction = [0.0, 1.0, 2.0][r.below(3)];
        let ir_op = Op::Var {
            axes: axes.clone(),
            correction,
            keepdim: false,
        };
        if let Some((out, want)) = reference(&ir_op, &[&x]) {
            let p = kr::VarParams {
                x: shp(&shape),
                axes: axes_mask(&axes, shape.len()),
                correction,
            };
            assert!(kr::var_accepts(&p));
            let mut y = vec![0f32; out.numel()];
            kr::var(&p, x.as_f32().unwrap(), &mut y);
            assert_match(
                &Tensor::f32(out.shape.clone(), y),
                &want.unwrap(),
                &format!("var {axes:?} c={correction} of {}", x.ty()),
            );
        }
        for dt in [DType::F32, DType::I64, DType::Bool] {
            let x = random_tensor(&mut r, dt, &shape, true);
            let axis = if shape.is_empty() || r.chance(30) {
                None
            } else {
                Some(r.below(shape.len()))
            };
            for (a, ka) in [(ArgOp::Max, kr::ArgOp::Max), (ArgOp::Min, kr::ArgOp::Min)] {
                let ir_op = Op::ArgReduce {
                    op: a,
                    axis,
                    keepdim: r.chance(50),
                };
                let ctx = format!("{} {axis:?} of {}", ir_op.name(), x.ty());
                let p = kr::ArgParams {
                    x: shp(&shape),
                    axis,
                };
                assert!(kr::arg_reduce_accepts(&p));
                let Some((out, want)) = reference(&ir_op, &[&x]) else {
                    // The IR refuses bool; the kernel refuses it on its own too.
                    if let Buf::Bool(v) = Buf::of(&x) {
                        let mut y = vec![0i64; 64];
                        assert_eq!(
                            kr::arg_reduce(&p, ka, &v, &mut y),
                            Err(kr::ReduceError::Unsupported)
                        );
                    }
                    continue;
                };
                let mut y = vec![0i64; out.numel()];
                let got = match Buf::of(&x) {
                    Buf::F32(v) => kr::arg_reduce(&p, ka, &v, &mut y),
                    Buf::I64(v) => kr::arg_reduce(&p, ka, &v, &mut y),
                    Buf::Bool(v) => kr::arg_reduce(&p, ka, &v, &mut y),
                };
                match want {
                    Ok(w) => {
                        got.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                        assert_match(&Tensor::i64(out.shape.clone(), y), &w, &ctx);
                    }
                    Err(e) => assert!(got.is_err(), "{ctx}: interpreter refused ({e})"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------- layout

/// Runs a same-dtype layout kernel on whichever element type `x` has.
fn with_elems(
    x: &Tensor,
    out: &TensorType,
    f32k: impl Fn(&[f32], &mut [f32]),
    i64k: impl Fn(&[i64], &mut [i64]),
    boolk: impl Fn(&[u8], &mut [u8]),
) -> Tensor {
    let mut y = Buf::zeros(out.dtype, out.numel());
    match (Buf::of(x), &mut y) {
        (Buf::F32(v), Buf::F32(y)) => f32k(&v, y),
        (Buf::I64(v), Buf::I64(y)) => i64k(&v, y),
        (Buf::Bool(v), Buf::Bool(y)) => boolk(&v, y),
        _ => panic!("dtype mismatch"),
    }
    y.tensor(&out.shape)
}

macro_rules! same_dtype {
    ($x:expr, $out:expr, $k:path, $p:expr) => {
        with_elems(
            $x,
            $out,
            |v: &[f32], y: &mut [f32]| $k($p, v, y),
            |v: &[i64], y: &mut [i64]| $k($p, v, y),
            |v: &[u8], y: &mut [u8]| $k($p, v, y),
        )
    };
}

#[test]
fn layout_matches_the_interpreter() {
    let mut r = Rng(2024);
    for case in 0..600 {
        let dt = DTYPES[case % 3];
        let shape = random_shape(&mut r, 5, true);
        let rank = shape.len();
        let x = random_tensor(&mut r, dt, &shape, true);
        let xs = shp(&shape);

        // permute
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, r.below(i + 1));
        }
        let op = Op::Permute { perm: perm.clone() };
        let (out, want) = reference(&op, &[&x]).unwrap();
        let mut pp = [0; ks::MAX_RANK];
        pp[..rank].copy_from_slice(&perm);
        let p = kl::PermuteParams { x: xs, perm: pp };
        assert!(kl::permute_accepts(&p));
        assert_match(
            &same_dtype!(&x, &out, kl::permute, &p),
            &want.unwrap(),
            &"permute",
        );
        if rank >= 2 {
            let mut bad = p;
            bad.perm[0] = bad.perm[1];
            assert!(!kl::permute_accepts(&bad));
        }

        // expand: grow size-1 dims and add leading dims.
        let mut target: Vec<usize> = (0..r.below(2)).map(|_| 1 + r.below(3)).collect();
        target.extend(
            shape
                .iter()
                .map(|&d| if d == 1 { 1 + r.below(4) } else { d }),
        );
        let op = Op::Expand {
            shape: target.clone(),
        };
        let (out, want) = reference(&op, &[&x]).unwrap();
        let p = kl::ExpandParams {
            x: xs,
            out: shp(&target),
        };
        assert!(kl::expand_accepts(&p));
        assert_match(
            &same_dtype!(&x, &out, kl::expand, &p),
            &want.unwrap(),
            &"expand",
        );

        // tile
        let trank = rank + r.below(2);
        let repeats: Vec<usize> = (0..trank).map(|_| r.below(3)).collect();
        let op = Op::Tile {
            repeats: repeats.clone(),
        };
        if let Some((out, want)) = reference(&op, &[&x]) {
            let mut rp = [0; ks::MAX_RANK];
            rp[..trank].copy_from_slice(&repeats);
            let p = kl::TileParams {
                x: xs,
                repeats: rp,
                rank: trank,
            };
            assert!(kl::tile_accepts(&p));
            assert_match(
                &same_dtype!(&x, &out, kl::tile, &p),
                &want.unwrap(),
                &"tile",
            );
        }

        if rank > 0 {
            let axis = r.below(rank);
            let len = shape[axis];
            // slice
            let start = r.below(len + 1);
            let end = start + r.below(len - start + 1);
            let step = 1 + r.below(3);
            let op = Op::Slice {
                axis,
                start,
                end,
                step,
            };
            let (out, want) = reference(&op, &[&x]).unwrap();
            let p = kl::SliceParams {
                x: xs,
                axis,
                start,
                end,
                step,
            };
            assert!(kl::slice_accepts(&p));
            let want = want.unwrap();
            assert_match(&same_dtype!(&x, &out, kl::slice, &p), &want, &"slice");
            assert_eq!(kl::slice_rows_accepts(&p), step == 1);
            if step == 1 {
                assert_match(
                    &same_dtype!(&x, &out, kl::slice_rows, &p),
                    &want,
                    &"slice_rows",
                );
            }

            // cumsum into i64 or f32
            let op = Op::Cumsum { axis };
            let (out, want) = reference(&op, &[&x]).unwrap();
            let p = kl::CumsumParams { x: xs, axis };
            assert!(kl::cumsum_accepts(&p));
            let mut y = Buf::zeros(out.dtype, out.numel());
            match (Buf::of(&x), &mut y) {
                (Buf::F32(v), Buf::F32(y)) => kl::cumsum(&p, &v, y).unwrap(),
                (Buf::I64(v), Buf::I64(y)) => kl::cumsum(&p, &v, y).unwrap(),
                (Buf::Bool(v), Buf::I64(y)) => kl::cumsum(&p, &v, y).unwrap(),
                other => panic!("cumsum dtypes {other:?}"),
            }
            assert_match(&y.tensor(&out.shape), &want.unwrap(), &"cumsum");

            // concat of 1–3 parts of mixed dtypes along the axis
            let parts: Vec<Tensor> = (0..1 + r.below(3))
                .map(|_| {
                    let mut s = shape.clone();
                    s[axis] = r.below(3);
                    let d = DTYPES[r.below(3)];
                    random_tensor(&mut r, d, &s, true)
                })
                .collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            let op = Op::Concat { axis };
            if let Some((out, want)) = reference(&op, &refs) {
                let want = want.unwrap();
                let mut y = Buf::zeros(out.dtype, out.numel());
                let mut offset = 0;
                for t in &parts {
                    let p = kl::ConcatParams {
                        x: shp(&t.shape),
                        out: shp(&out.shape),
                        axis,
                        offset,
                    };
                    assert!(kl::concat_accepts(&p));
                    match (Buf::of(t), &mut y) {
                        (Buf::F32(v), Buf::F32(y)) => kl::concat(&p, &v, y),
                        (Buf::I64(v), Buf::F32(y)) => kl::concat(&p, &v, y),
                        (Buf::Bool(v), Buf::F32(y)) => kl::concat(&p, &v, y),
                        (Buf::I64(v), Buf::I64(y)) => kl::concat(&p, &v, y),
                        (Buf::Bool(v), Buf::I64(y)) => kl::concat(&p, &v, y),
                        (Buf::Bool(v), Buf::Bool(y)) => kl::concat(&p, &v, y),
                        other => panic!("concat dtypes {other:?}"),
                    }
                    offset += t.shape[axis];
                }
                assert_match(&y.tensor(&out.shape), &want, &"concat");
                let p = kl::ConcatParams {
                    x: shp(&parts[0].shape),
                    out: shp(&out.shape),
                    axis,
                    offset: out.shape[axis] + 1,
                };
                assert!(!kl::concat_accepts(&p));
            }
        }

        // pad, with negative amounts cropping
        let pads: Vec<(i64, i64)> = shape
            .iter()
            .map(|&d| {
                let lo = -(d as i64);
                (
                    (r.below(5) as i64 - 2).max(lo),
                    (r.below(5) as i64 - 2).max(lo),
                )
            })
            .collect();
        let value = [0.0, 1.5, -3.0][r.below(3)];
        let op = Op::Pad {
            pads: pads.clone(),
            value,
        };
        let mut pa = [(0, 0); ks::MAX_RANK];
        pa[..rank].copy_from_slice(&pads);
        let p = kl::PadParams {
            x: xs,
            pads: pa,
            value,
        };
        match reference(&op, &[&x]) {
            Some((out, Ok(want))) => {
                assert!(kl::pad_accepts(&p), "pad {pads:?} of {shape:?}");
                assert_match(&same_dtype!(&x, &out, kl::pad, &p), &want, &"pad");
            }
            _ => assert!(!kl::pad_accepts(&p), "pad {pads:?} of {shape:?}"),
        }

        // tril / triu
        for upper in [false, true] {
            let diagonal = r.below(7) as i64 - 3;
            let op = Op::Triangle { upper, diagonal };
            let p = kl::TriangleParams {
                x: xs,
                upper,
                diagonal,
            };
            assert_eq!(kl::triangle_accepts(&p), rank >= 2);
            if let Some((out, Ok(want))) = reference(&op, &[&x]) {
                assert_match(&same_dtype!(&x, &out, kl::triangle, &p), &want, &"triangle");
            }
        }

        // cast to every dtype
        for to in DTYPES {
            let op = Op::Cast { to };
            let (out, want) = reference(&op, &[&x]).unwrap();
            let p = kl::CastParams { numel: x.numel() };
            assert!(kl::cast_accepts(&p));
            let mut y = Buf::zeros(to, out.numel());
            match (Buf::of(&x), &mut y) {
                (Buf::F32(v), Buf::F32(y)) => kl::cast(&p, &v, y),
                (Buf::F32(v), Buf::I64(y)) => kl::cast(&p, &v, y),
                (Buf::F32(v), Buf::Bool(y)) => kl::cast(&p, &v, y),
                (Buf::I64(v), Buf::F32(y)) => kl::cast(&p, &v, y),
                (Buf::I64(v), Buf::I64(y)) => kl::cast(&p, &v, y),
                (Buf::I64(v), Buf::Bool(y)) => kl::cast(&p, &v, y),
                (Buf::Bool(v), Buf::F32(y)) => kl::cast(&p, &v, y),
                (Buf::Bool(v), Buf::I64(y)) => kl::cast(&p, &v, y),
                (Buf::Bool(v), Buf::Bool(y)) => kl::cast(&p, &v, y),
            }
            assert_match(&y.tensor(&out.shape), &want.unwrap(), &"cast");
        }
    }
    let mut bool_y = [0u8; 3];
    assert_eq!(
        kl::cumsum(
            &kl::CumsumParams {
                x: shp(&[3]),
                axis: 0
            },
            &[1u8, 0, 1],
            &mut bool_y
        ),
        Err(kl::LayoutError::BoolCumsum)
    );
}

// ---------------------------------------------------------------- index

#[test]
fn take_and_gather_match_the_interpreter() {
    let mut r = Rng(31337);
    for case in 0..600 {
        let dt = DTYPES[case % 3];
        let mut shape = random_shape(&mut r, 4, true);
        if shape.is_empty() {
            shape.push(1 + r.below(4));
        }
        let rank = shape.len();
        let x = random_tensor(&mut r, dt, &shape, true);
        let axis = r.below(rank);
        let len = shape[axis] as i64;
        // Indices mostly in range, some negative, a few out of range either way.
        let idx_shape = random_shape(&mut r, 2, true);
        let n: usize = idx_shape.iter().product();
        let ids: Vec<i64> = (0..n)
            .map(|_| {
                if r.chance(3) {
                    [len, -len - 1, i64::MIN, i64::MAX][r.below(4)]
                } else if len == 0 {
                    0
                } else {
                    r.below(2 * len as usize) as i64 - len
                }
            })
            .collect();
        let ix = Tensor::i64(idx_shape.clone(), ids.clone());
        let op = Op::Take { axis };
        if let Some((out, want)) = reference(&op, &[&x, &ix]) {
            let p = ki::TakeParams {
                x: shp(&shape),
                axis,
                idx_numel: n,
            };
            assert!(ki::take_accepts(&p));
            let mut y = Buf::zeros(out.dtype, out.numel());
            let got = match (Buf::of(&x), &mut y) {
                (Buf::F32(v), Buf::F32(y)) => ki::take(&p, &v, &ids, y),
                (Buf::I64(v), Buf::I64(y)) => ki::take(&p, &v, &ids, y),
                (Buf::Bool(v), Buf::Bool(y)) => ki::take(&p, &v, &ids, y),
                _ => unreachable!(),
            };
            match want {
                Ok(w) => {
                    got.unwrap();
                    assert_match(&y.tensor(&out.shape), &w, &"take");
                }
                Err(e) => assert!(got.is_err(), "take: interpreter refused ({e})"),
            }
        }

        // gather: an index of the input's rank, no larger off the axis.
        let gshape: Vec<usize> = shape
            .iter()
            .enumerate()
            .map(|(d, &s)| {
                if d == axis {
                    r.below(4)
                } else {
                    r.below(s + 1)
                }
            })
            .collect();
        let gn: usize = gshape.iter().product();
        let gids: Vec<i64> = (0..gn)
            .map(|_| {
                if r.chance(3) || len == 0 {
                    [len, -1][r.below(2)]
                } else {
                    r.below(len as usize) as i64
                }
            })
            .collect();
        let gix = Tensor::i64(gshape.clone(), gids.clone());
        let op = Op::Gather { axis };
        if let Some((out, want)) = reference(&op, &[&x, &gix]) {
            let p = ki::GatherParams {
                x: shp(&shape),
                idx: shp(&gshape),
                axis,
            };
            assert!(ki::gather_accepts(&p));
            let mut y = Buf::zeros(out.dtype, out.numel());
            let got = match (Buf::of(&x), &mut y) {
                (Buf::F32(v), Buf::F32(y)) => ki::gather(&p, &v, &gids, y),
                (Buf::I64(v), Buf::I64(y)) => ki::gather(&p, &v, &gids, y),
                (Buf::Bool(v), Buf::Bool(y)) => ki::gather(&p, &v, &gids, y),
                _ => unreachable!(),
            };
            match want {
                Ok(w) => {
                    got.unwrap();
                    assert_match(&y.tensor(&out.shape), &w, &"gather");
                }
                Err(e) => assert!(got.is_err(), "gather: interpreter refused ({e})"),
            }
        }
    }
    let p = ki::GatherParams {
        x: shp(&[2, 3]),
        idx: shp(&[3, 1]),
        axis: 1,
    };
    assert!(!ki::gather_accepts(&p));
    assert!(!ki::take_accepts(&ki::TakeParams {
        x: shp(&[2]),
        axis: 1,
        idx_numel: 1
    }));
}

// ---------------------------------------------------------------- metadata

fn families() -> Vec<(&'static str, &'static [KernelInfo])> {
    vec![
        ("binary", kb::VARIANTS),
        ("index", ki::VARIANTS),
        ("layout", kl::VARIANTS),
        ("reduce", kr::VARIANTS),
        ("unary", ku::VARIANTS),
        ("where_", kw::VARIANTS),
    ]
}

#[test]
fn variant_tables_are_consistent() {
    for (family, variants) in families() {
        assert!(!variants.is_empty(), "{family} has no variants");
        for v in variants {
            let (fam, func) = v.name.split_once('.').expect("name is <family>.<fn>");
            assert_eq!(fam, family, "{}", v.name);
            assert_eq!(v.family, family, "{}", v.name);
            assert!(!func.is_empty() && !func.contains('.'), "{}", v.name);
            assert!(v.code_bytes > 0, "{}: code size not measured", v.name);
            assert!(v.isa.is_empty(), "{}: these kernels are portable", v.name);
            assert!(
                v.dtypes.iter().all(|d| ["f32", "i64", "bool"].contains(d)),
                "{}",
                v.name
            );
        }
        // Each op of a family has exactly one universal variant `<op>`; a speed variant is
        // `<op>_<tag>` of exactly one universal variant and is faster than it.
        let universal: Vec<&KernelInfo> = variants
            .iter()
            .filter(|v| v.shape == "any" && v.speed == 0)
            .collect();
        assert!(!universal.is_empty(), "{family} has no universal variant");
        for v in variants {
            let func = v.name.split_once('.').unwrap().1;
            let owners: Vec<&&KernelInfo> = universal
                .iter()
                .filter(|u| {
                    let uf = u.name.split_once('.').unwrap().1;
                    func == uf
                        || func
                            .strip_prefix(uf)
                            .is_some_and(|rest| rest.starts_with('_'))
                })
                .collect();
            assert_eq!(owners.len(), 1, "{}: owners {owners:?}", v.name);
            if v.shape != "any" {
                assert!(v.speed > 0, "{}", v.name);
            }
        }
    }
    // The families with a single op have exactly one universal variant.
    for (family, variants) in [
        ("binary", kb::VARIANTS),
        ("unary", ku::VARIANTS),
        ("where_", kw::VARIANTS),
    ] {
        let n = variants
            .iter()
            .filter(|v| v.shape == "any" && v.speed == 0)
            .count();
        assert_eq!(n, 1, "{family}");
    }
}

/// The family sources as the generator reads them.
const SOURCES: [(&str, &str); 6] = [
    ("binary", include_str!("../kernels/src/binary.rs")),
    ("index", include_str!("../kernels/src/index.rs")),
    ("layout", include_str!("../kernels/src/layout.rs")),
    ("reduce", include_str!("../kernels/src/reduce.rs")),
    ("unary", include_str!("../kernels/src/unary.rs")),
    ("where_", include_str!("../kernels/src/where_.rs")),
];

/// Splits a family file into its variant blocks `(name, text)` by the marker comments.
fn variant_blocks(src: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in src.lines() {
        if let Some(name) = line.strip_prefix("//@variant ") {
            assert!(cur.is_none(), "nested variant block at {line}");
            cur = Some((name.trim().to_string(), String::new()));
        } else if line.trim() == "//@end" {
            if let Some(b) = cur.take() {
                blocks.push(b);
            }
        } else if let Some((_, text)) = &mut cur {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(cur.is_none(), "unterminated variant block");
    blocks
}

#[test]
fn marker_blocks_match_the_tables_and_stand_alone() {
    let tables: std::collections::HashMap<_, _> = families().into_iter().collect();
    for (family, src) in SOURCES {
        assert_eq!(src.matches("//@meta").count(), 1, "{family}");
        let blocks = variant_blocks(src);
        let names: Vec<String> = tables[family]
            .iter()
            .map(|v| v.name.split_once('.').unwrap().1.to_string())
            .collect();
        let block_names: Vec<String> = blocks.iter().map(|b| b.0.clone()).collect();
        assert_eq!(block_names, names, "{family}: blocks and VARIANTS differ");
        // Every function a block defines, so no other block may call it.
        let defined: Vec<(usize, String)> = blocks
            .iter()
            .enumerate()
            .flat_map(|(i, (_, text))| {
                text.lines()
                    .filter_map(|l| {
                        let l = l
                            .trim_start()
                            .strip_prefix("pub ")
                            .unwrap_or(l.trim_start());
                        let rest = l.strip_prefix("fn ")?;
                        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
                        Some(rest[..end].to_string())
                    })
                    .map(move |n| (i, n))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (i, (name, text)) in blocks.iter().enumerate() {
            assert!(
                text.contains(&format!("pub fn {name}("))
                    || text.contains(&format!("pub fn {name}<")),
                "{family}.{name}: no `pub fn {name}`"
            );
            assert!(
                text.contains(&format!("pub fn {name}_accepts(")),
                "{family}.{name}: no accepts"
            );
            for (j, f) in &defined {
                if *j == i {
                    continue;
                }
                let uses = text.match_indices(f.as_str()).any(|(at, _)| {
                    let before = text[..at].chars().last().unwrap_or(' ');
                    let after = text[at + f.len()..].chars().next().unwrap_or(' ');
                    let ident = |c: char| c.is_alphanumeric() || c == '_';
                    // A method call (`.cast()`) is not a call of the variant function.
                    !(ident(before) || before == '.' || ident(after))
                });
                assert!(
                    !uses,
                    "{family}.{name} uses `{f}` from variant {}",
                    blocks[*j].0
                );
            }
        }
    }
}

#[test]
fn the_row_walker_coalesces_common_broadcasts() {
    let out = shp(&[2, 3, 4, 5]);
    let full = out.strides();
    // Same shape: one row over everything.
    let rows = ks::Rows::new(&out, [full, full]);
    assert_eq!((rows.rank(), rows.row_len()), (1, 120));
    // A scalar operand: one row with stride 0.
    let s = ks::broadcast_strides(&Shape::SCALAR, &out).unwrap();
    let rows = ks::Rows::new(&out, [full, s]);
    assert_eq!((rows.row_len(), rows.row_strides()), (120, [1, 0]));
    // A per-channel operand [3, 1, 1]: outer N, channel C, and a row over H·W with stride 0.
    let c = ks::broadcast_strides(&shp(&[3, 1, 1]), &out).unwrap();
    let rows = ks::Rows::new(&out, [full, c]);
    assert_eq!(rows.dims(), &[2, 3, 20]);
    assert_eq!(rows.row_strides(), [1, 0]);
    let mut starts = Vec::new();
    rows.for_each_row(|o, [a, b]| starts.push((o, a, b)));
    assert_eq!(starts.len(), 6);
    assert_eq!(starts[4], (80, 80, 1));
    // A size-0 output has no rows; a 0-d output has one of length 1.
    let mut n = 0;
    ks::Rows::new(&shp(&[3, 0]), [[0; ks::MAX_RANK]]).for_each_row(|_, _| n += 1);
    ks::Rows::new(&Shape::SCALAR, [[0; ks::MAX_RANK]]).for_each_row(|_, _| n += 1);
    assert_eq!(n, 1);
    assert!(ks::broadcast_strides(&shp(&[4]), &shp(&[3])).is_none());
    assert!(ks::broadcast_strides(&shp(&[1, 3]), &shp(&[3])).is_none());
    assert_eq!(Shape::new(&[1; 9]), None);
}

#[test]
fn a_fused_activation_needs_an_f32_result() {
    let p = kb::BinaryParams {
        op: kb::BinaryOp::Add,
        a: shp(&[2]),
        b: shp(&[2]),
        out: shp(&[2]),
        a_dtype: ks::DType::I64,
        b_dtype: ks::DType::I64,
        out_dtype: ks::DType::I64,
        act: Act::Relu,
    };
    let mut y = [0i64; 2];
    assert_eq!(
        kb::binary(&p, Src::I64(&[1, -5]), Src::I64(&[1, 2]), Dst::I64(&mut y)),
        Err(kb::BinaryError::Unsupported)
    );
}

/// The creation kernels against values worked out by hand (PyTorch's `arange` and `full`).
#[test]
fn fill_and_arange_give_known_values() {
    let mut y = [0i64; 5];
    kl::arange(0.0, 1.0, &mut y);
    assert_eq!(y, [0, 1, 2, 3, 4]);
    kl::arange(10.0, -3.0, &mut y);
    assert_eq!(y, [10, 7, 4, 1, -2]);
    let mut f = [0f32; 7];
    kl::arange(-1.5, 0.5, &mut f);
    assert_eq!(f, [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]);
    assert!(kl::arange_accepts(0.0, 0.5, ks::DType::F32));
    assert!(!kl::arange_accepts(0.0, 1.0, ks::DType::Bool));
    assert!(!kl::arange_accepts(f64::INFINITY, 1.0, ks::DType::I64));

    kl::full(f64::NEG_INFINITY, &mut f);
    assert!(f.iter().all(|&v| v == f32::NEG_INFINITY));
    let mut b = [7u8; 3];
    kl::full(1.0, &mut b);
    assert_eq!(b, [1, 1, 1]);
    kl::full(-2.75, &mut y);
    assert_eq!(y, [-2; 5]);
    assert!(kl::full_accepts(0.0));
}
