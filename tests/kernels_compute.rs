//! Compute-heavy kernels of `etpkg-kernels` against etpkg's reference interpreter.
//! Invariant: every variant of every family here is run on random shapes and attributes it
//! accepts (including padding, strides, dilation, groups, odd sizes and every fused activation)
//! and must match `interp::eval` of the corresponding op within `1e-5 · max(1, max|ref|)`.

use etpkg::interp::{eval, Tensor};
use etpkg::ir::{
    Activation, ConvAttrs, DType, Op, PoolAttrs, PoolKind as IrPoolKind, TensorType, UpsampleMode,
};
use etpkg_kernels::act::Act;
use etpkg_kernels::attention::{self, Mask, Sdpa};
use etpkg_kernels::conv::{self, Conv2d};
use etpkg_kernels::conv_transpose::{self, ConvTranspose2d};
use etpkg_kernels::matmul::{self, Gemm};
use etpkg_kernels::norm::{self, Norm};
use etpkg_kernels::pool::{self, Pool2d, PoolKind};
use etpkg_kernels::softmax::{self, Softmax};
use etpkg_kernels::upsample::{self, Mode, Upsample2d};
use etpkg_kernels::x86;

/// A deterministic xorshift generator, so a failure reproduces from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Every activation kind, as the IR and as the kernels spell it.
fn activations() -> Vec<(Option<Activation>, Act)> {
    vec![
        (None, Act::None),
        (Some(Activation::Relu), Act::Relu),
        (
            Some(Activation::Clamp {
                min: Some(0.0),
                max: Some(6.0),
            }),
            Act::Clamp { min: 0.0, max: 6.0 },
        ),
        (
            Some(Activation::Clamp {
                min: None,
                max: Some(0.25),
            }),
            Act::Clamp {
                min: f32::NEG_INFINITY,
                max: 0.25,
            },
        ),
        (
            Some(Activation::Clamp {
                min: Some(-0.5),
                max: None,
            }),
            Act::Clamp {
                min: -0.5,
                max: f32::INFINITY,
            },
        ),
        (Some(Activation::Hardswish), Act::Hardswish),
        (Some(Activation::Hardsigmoid), Act::Hardsigmoid),
        (Some(Activation::Silu), Act::Silu),
        (
            Some(Activation::Gelu { tanh: false }),
            Act::Gelu { tanh: false },
        ),
        (
            Some(Activation::Gelu { tanh: true }),
            Act::Gelu { tanh: true },
        ),
    ]
}

/// Runs the interpreter on `op` (wrapped in `Fused` when `act` is given).
fn reference(op: Op, act: Option<Activation>, inputs: &[&Tensor], shape: &[usize]) -> Vec<f32> {
    let op = match act {
        Some(act) => Op::Fused {
            op: Box::new(op),
            act,
        },
        None => op,
    };
    let out = TensorType::new(DType::F32, shape.to_vec());
    let t = eval(&op, inputs, &out).unwrap_or_else(|e| panic!("interp: {e}"));
    assert_eq!(t.shape, shape, "interp output shape");
    t.as_f32().expect("f32 result").to_vec()
}

/// Asserts `got` matches `want` within `1e-5 · max(1, max|want|)`.
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want
        .iter()
        .filter(|v| v.is_finite())
        .fold(1f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= 1e-5 * scale;
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::f32(shape.to_vec(), v)
}

// ---------------------------------------------------------------------------------------------
// conv

type ConvFn = fn(&Conv2d, &[f32], &[f32], Option<&[f32]>, &mut [f32], Act);
type ConvAccepts = fn(&Conv2d) -> bool;

const CONV_VARIANTS: &[(&str, ConvFn, ConvAccepts)] = &[
    ("generic", conv::generic, conv::generic_accepts),
    ("direct", conv::direct, conv::direct_accepts),
    ("depthwise", conv::depthwise, conv::depthwise_accepts),
    ("pointwise", conv::pointwise, conv::pointwise_accepts),
    (
        "pointwise_avx512",
        conv::pointwise_avx512,
        pointwise_avx512_here,
    ),
    (
        "depthwise_avx512",
        conv::depthwise_avx512,
        depthwise_avx512_here,
    ),
    ("im2col_avx512", conv::im2col_avx512, im2col_avx512_here),
    ("pointwise_avx2", conv::pointwise_avx2, pointwise_avx2_here),
    ("depthwise_avx2", conv::depthwise_avx2, depthwise_avx2_here),
    ("im2col_avx2", conv::im2col_avx2, im2col_avx2_here),
    ("stem_avx2", conv::stem_avx2, stem_avx2_here),
    (
        "winograd_avx512",
        conv::winograd_avx512,
        winograd_avx512_here,
    ),
    ("winograd_avx2", conv::winograd_avx2, winograd_avx2_here),
];

// The AVX-512 and AVX2 variants run only where the CPU has the extension, as their binding arms
// check; on other machines they are skipped and not counted.
fn pointwise_avx512_here(p: &Conv2d) -> bool {
    x86::avx512() && conv::pointwise_avx512_accepts(p)
}
fn depthwise_avx512_here(p: &Conv2d) -> bool {
    x86::avx512() && conv::depthwise_avx512_accepts(p)
}
fn im2col_avx512_here(p: &Conv2d) -> bool {
    x86::avx512() && conv::im2col_avx512_accepts(p)
}
fn pointwise_avx2_here(p: &Conv2d) -> bool {
    x86::avx2() && conv::pointwise_avx2_accepts(p)
}
fn depthwise_avx2_here(p: &Conv2d) -> bool {
    x86::avx2() && conv::depthwise_avx2_accepts(p)
}
fn im2col_avx2_here(p: &Conv2d) -> bool {
    x86::avx2() && conv::im2col_avx2_accepts(p)
}
fn stem_avx2_here(p: &Conv2d) -> bool {
    x86::avx2() && conv::stem_avx2_accepts(p)
}
fn winograd_avx512_here(p: &Conv2d) -> bool {
    x86::avx512() && conv::winograd_avx512_accepts(p)
}
fn winograd_avx2_here(p: &Conv2d) -> bool {
    x86::avx2() && conv::winograd_avx2_accepts(p)
}

/// Output size of a forward convolution along one dim, or None if the kernel does not fit.
fn conv_out(size: usize, k: usize, s: usize, pad: usize, dil: usize) -> Option<usize> {
    let span = dil * (k - 1) + 1;
    (size + 2 * pad >= span).then(|| (size + 2 * pad - span) / s + 1)
}

/// A 2-d 3×3 convolution with one group, dilation 1 and equal strides, or None when the kernel
/// does not fit the padded input.
fn square3(
    n: usize,
    [c_in, c_out]: [usize; 2],
    [h, w]: [usize; 2],
    stride: usize,
    pad: [usize; 2],
) -> Option<(Conv2d, bool)> {
    let oh = conv_out(h, 3, stride, pad[0], 1)?;
    let ow = conv_out(w, 3, stride, pad[1], 1)?;
    let p = Conv2d {
        n,
        c_in,
        h,
        w,
        c_out,
        kh: 3,
        kw: 3,
        stride: [stride, stride],
        pad,
        dil: [1, 1],
        groups: 1,
        oh,
        ow,
    };
    Some((p, false))
}

/// A random convolution of the kind `kind` (0 general, 1 depthwise, 2 pointwise, 3 a stem:
/// 3×3 at stride 2 over 1 to 4 channels, wide enough for several column vectors, 4 a 3×3
/// stride-1 convolution with enough channels and outputs for the Winograd variants: several
/// blocks of tile rows, of output channels and of input channels, odd sizes and every padding
/// up to 2), 1-d or 2-d.
fn random_conv(r: &mut Rng, kind: usize) -> Option<(Conv2d, bool)> {
    if kind == 4 {
        // Every other one has many input channels on a small plane, which the Winograd
        // variants take in chunks of input channels.
        let deep = r.coin();
        let (h, w) = if deep {
            (r.range(8, 18), r.range(8, 18))
        } else {
            (r.range(6, 40), r.range(6, 70))
        };
        let pad = [r.range(0, 2), r.range(0, 2)];
        let c_in = if deep {
            r.range(150, 260)
        } else {
            r.range(8, 40)
        };
        let c_out = r.range(8, 60);
        return square3(r.range(1, 2), [c_in, c_out], [h, w], 1, pad);
    }
    if kind == 3 {
        let (h, w) = (r.range(3, 40), r.range(3, 70));
        let pad = [r.range(0, 1), r.range(0, 1)];
        let (c_in, c_out) = (r.range(1, 4), r.range(1, 13));
        return square3(r.range(1, 2), [c_in, c_out], [h, w], 2, pad);
    }
    let one_d = kind != 2 && r.next().is_multiple_of(4);
    let groups = match kind {
        1 => r.range(1, 6),
        2 => 1,
        _ => [1, 1, 2, 3][r.range(0, 3)],
    };
    let (c_in, c_out) = match kind {
        1 => (groups, groups),
        _ => (groups * r.range(1, 5), groups * r.range(1, 9)),
    };
    let (kh, kw, stride, pad, dil) = if kind == 2 {
        (1, 1, [1, 1], [0, 0], [r.range(1, 2), r.range(1, 2)])
    } else {
        let k = [r.range(1, 5), r.range(1, 5)];
        (
            if one_d { 1 } else { k[0] },
            k[1],
            [if one_d { 1 } else { r.range(1, 3) }, r.range(1, 3)],
            [if one_d { 0 } else { r.range(0, 2) }, r.range(0, 2)],
            [if one_d { 1 } else { r.range(1, 2) }, r.range(1, 2)],
        )
    };
    let h = if one_d { 1 } else { r.range(1, 13) };
    let w = r.range(1, 37);
    let oh = conv_out(h, kh, stride[0], pad[0], dil[0])?;
    let ow = conv_out(w, kw, stride[1], pad[1], dil[1])?;
    let p = Conv2d {
        n: r.range(1, 2),
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride,
        pad,
        dil,
        groups,
        oh,
        ow,
    };
    Some((p, one_d))
}

#[test]
fn conv_variants_match_interpreter() {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let acts = activations();
    let mut runs = [0usize; CONV_VARIANTS.len()];
    for case in 0..860 {
        // The last cases are stems and Winograd shapes, which the general kind almost never
        // draws.
        let kind = match case {
            0..600 => case % 3,
            600..760 => 3,
            _ => 4,
        };
        let Some((p, one_d)) = random_conv(&mut r, kind) else {
            continue;
        };
        let (_, act) = acts[case % acts.len()];
        let ir_act = acts[case % acts.len()].0;
        let x = r.vec(p.n * p.c_in * p.h * p.w);
        let w = r.vec(p.c_out * (p.c_in / p.groups) * p.kh * p.kw);
        let bias = r.coin().then(|| r.vec(p.c_out));
        let (xs, ws, ys) = if one_d {
            (
                vec![p.n, p.c_in, p.w],
                vec![p.c_out, p.c_in / p.groups, p.kw],
                vec![p.n, p.c_out, p.ow],
            )
        } else {
            (
                vec![p.n, p.c_in, p.h, p.w],
                vec![p.c_out, p.c_in / p.groups, p.kh, p.kw],
                vec![p.n, p.c_out, p.oh, p.ow],
            )
        };
        let sd = if one_d { 1 } else { 0 };
        let attrs = ConvAttrs {
            stride: p.stride[sd..].to_vec(),
            padding: p.pad[sd..].to_vec(),
            dilation: p.dil[sd..].to_vec(),
            groups: p.groups,
            transposed: false,
            output_padding: vec![],
        };
        let (xt, wt) = (t(&xs, x.clone()), t(&ws, w.clone()));
        let bt = bias.as_ref().map(|b| t(&[p.c_out], b.clone()));
        let mut inputs = vec![&xt, &wt];
        inputs.extend(bt.as_ref());
        let want = reference(Op::Conv(attrs), ir_act, &inputs, &ys);
        for (i, (name, f, accepts)) in CONV_VARIANTS.iter().enumerate() {
            if !accepts(&p) {
                continue;
            }
            runs[i] += 1;
            let mut y = vec![f32::NAN; want.len()];
            f(&p, &x, &w, bias.as_deref(), &mut y, act);
            assert_close(&format!("conv.{name} {p:?} {act:?}"), &y, &want);
        }
    }
    let expected = |name: &str| {
        (!name.ends_with("_avx512") || x86::avx512()) && (!name.ends_with("_avx2") || x86::avx2())
    };
    assert!(
        CONV_VARIANTS
            .iter()
            .zip(runs)
            .all(|((name, ..), n)| n >= 30 || !expected(name)),
        "variant runs {runs:?}"
    );
}

#[test]
fn conv_specialized_variants_reject_other_shapes() {
    let base = Conv2d {
        n: 1,
        c_in: 8,
        h: 5,
        w: 5,
        c_out: 8,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        pad: [1, 1],
        dil: [1, 1],
        groups: 1,
        oh: 5,
        ow: 5,
    };
    assert!(!conv::pointwise_accepts(&base));
    assert!(!conv::depthwise_accepts(&base));
    assert!(conv::depthwise_accepts(&Conv2d { groups: 8, ..base }));
    assert!(!conv::depthwise_accepts(&Conv2d { groups: 4, ..base }));
    let pw = Conv2d {
        kh: 1,
        kw: 1,
        pad: [0, 0],
        ..base
    };
    assert!(conv::pointwise_accepts(&pw));
    assert!(!conv::pointwise_accepts(&Conv2d {
        stride: [2, 2],
        oh: 3,
        ow: 3,
        ..pw
    }));
    assert!(!conv::pointwise_accepts(&Conv2d { groups: 2, ..pw }));
    assert!(!conv::generic_accepts(&Conv2d { groups: 3, ..base }));
    assert!(!conv::direct_accepts(&Conv2d {
        stride: [0, 1],
        ..base
    }));
}

// ---------------------------------------------------------------------------------------------
// matmul (linear, matmul, addmm)

type GemmFn = fn(&Gemm, &[f32], &[f32], Option<&[f32]>, &mut [f32], Act);

type GemmAccepts = fn(&Gemm) -> bool;

const GEMM_VARIANTS: &[(&str, GemmFn, GemmAccepts)] = &[
    ("generic", matmul::generic, matmul::generic_accepts),
    ("tiled", matmul::tiled, matmul::tiled_accepts),
    ("dot", matmul::dot, matmul::dot_accepts),
];

fn run_gemm(
    what: &str,
    p: &Gemm,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    want: &[f32],
) {
    assert!(matmul::generic_accepts(p) && matmul::tiled_accepts(p));
    // The dot variant takes exactly the products with `b` stored `[n, k]` (linear layers) and
    // at least 8 rows.
    assert_eq!(matmul::dot_accepts(p), p.b_trans && p.m >= 8);
    for (name, f, accepts) in GEMM_VARIANTS {
        if !accepts(p) {
            continue;
        }
        let mut y = vec![f32::NAN; want.len()];
        f(p, a, b, bias, &mut y, act);
        assert_close(&format!("matmul.{name} {what} {p:?} {act:?}"), &y, want);
    }
}

#[test]
fn linear_matches_interpreter() {
    let mut r = Rng(77);
    for (case, (ir_act, act)) in activations().into_iter().cycle().take(60).enumerate() {
        let lead = [r.range(1, 3), r.range(1, 23)];
        // Some depths exceed the tiled variant's k block (256), so partial sums are resumed.
        let k = if case % 4 == 0 {
            r.range(257, 700)
        } else {
            r.range(1, 70)
        };
        let n = r.range(1, 40);
        let x = r.vec(lead[0] * lead[1] * k);
        let w = r.vec(n * k);
        let bias = (case % 3 != 0).then(|| r.vec(n));
        let (xt, wt) = (t(&[lead[0], lead[1], k], x.clone()), t(&[n, k], w.clone()));
        let bt = bias.as_ref().map(|b| t(&[n], b.clone()));
        let mut inputs = vec![&xt, &wt];
        inputs.extend(bt.as_ref());
        let want = reference(Op::Linear, ir_act, &inputs, &[lead[0], lead[1], n]);
        let p = Gemm::linear(lead[0] * lead[1], k, n);
        run_gemm("linear", &p, &x, &w, bias.as_deref(), act, &want);
    }
}

#[test]
fn batched_matmul_broadcasts_like_interpreter() {
    let mut r = Rng(99);
    for (case, (ir_act, act)) in activations().into_iter().cycle().take(60).enumerate() {
        let (m, n) = (r.range(1, 19), r.range(1, 37));
        let k = if case % 4 == 0 {
            r.range(257, 600)
        } else {
            r.range(1, 40)
        };
        // Batch dims [d0, d1]; each operand has each dim or broadcasts it (size 1).
        let d = [r.range(1, 3), r.range(1, 4)];
        let a_has = [r.coin(), r.coin()];
        let b_has = [r.coin(), r.coin()];
        let dims = |has: [bool; 2]| -> Vec<usize> {
            (0..2).map(|i| if has[i] { d[i] } else { 1 }).collect()
        };
        let (ad, bd) = (dims(a_has), dims(b_has));
        let a = r.vec(ad[0] * ad[1] * m * k);
        let b = r.vec(bd[0] * bd[1] * k * n);
        let at = t(&[ad[0], ad[1], m, k], a.clone());
        let bt = t(&[bd[0], bd[1], k, n], b.clone());
        let out_b = [ad[0].max(bd[0]), ad[1].max(bd[1])];
        let want = reference(Op::MatMul, ir_act, &[&at, &bt], &[out_b[0], out_b[1], m, n]);
        let stride = |dims: &[usize], mat: usize| -> [usize; 4] {
            let s1 = if dims[1] > 1 { mat } else { 0 };
            let s0 = if dims[0] > 1 { mat * dims[1] } else { 0 };
            [0, 0, s0, s1]
        };
        let p = Gemm {
            batch: [1, 1, out_b[0], out_b[1]],
            a_batch_stride: stride(&ad, m * k),
            b_batch_stride: stride(&bd, k * n),
            m,
            k,
            n,
            b_trans: false,
            alpha: 1.0,
            beta: 0.0,
            bias_stride: [0, 0],
        };
        run_gemm("matmul", &p, &a, &b, None, act, &want);
    }
}

#[test]
fn addmm_matches_interpreter() {
    let mut r = Rng(5);
    for (case, (ir_act, act)) in activations().into_iter().cycle().take(40).enumerate() {
        let (m, n) = (r.range(1, 21), r.range(1, 35));
        let k = if case % 5 == 4 {
            r.range(257, 600)
        } else {
            r.range(1, 33)
        };
        let (alpha, beta) = [(1.0, 1.0), (0.5, 2.0), (-1.5, 0.0)][case % 3];
        // Bias shapes [n], [m, 1], [m, n] and a scalar-like [1, 1].
        let (bshape, bstride) = match case % 4 {
            0 => (vec![n], [0, 1]),
            1 => (vec![m, 1], [1, 0]),
            2 => (vec![m, n], [n, 1]),
            _ => (vec![1, 1], [0, 0]),
        };
        let mut bias = r.vec(bshape.iter().product());
        if beta == 0.0 {
            bias[0] = f32::NAN;
        }
        let (a, b) = (r.vec(m * k), r.vec(k * n));
        let (ct, at, bt) = (
            t(&bshape, bias.clone()),
            t(&[m, k], a.clone()),
            t(&[k, n], b.clone()),
        );
        let want = reference(Op::Addmm { alpha, beta }, ir_act, &[&ct, &at, &bt], &[m, n]);
        let p = Gemm::addmm(m, k, n, alpha as f32, beta as f32, bstride);
        run_gemm("addmm", &p, &a, &b, Some(&bias), act, &want);
    }
}

// ---------------------------------------------------------------------------------------------
// norm, softmax

#[test]
fn norms_match_interpreter() {
    let mut r = Rng(31);
    for (case, (ir_act, act)) in activations().into_iter().cycle().take(60).enumerate() {
        let (n, c, inner) = (r.range(1, 3), r.range(1, 8), r.range(1, 30));
        let x: Vec<f32> = r.vec(n * c * inner).iter().map(|v| v * 3.0 + 0.5).collect();
        let (w, b) = (r.vec(c), r.vec(c));
        let shape = [n, c, inner];
        let xt = t(&shape, x.clone());
        let (wt, bt) = (t(&[c], w.clone()), t(&[c], b.clone()));
        let in_place = case % 2 == 0;
        let run = |p: &Norm, w: &[f32], b: &[f32], want: &[f32], what: &str| {
            assert!(norm::generic_accepts(p));
            let mut y = if in_place {
                x.clone()
            } else {
                vec![f32::NAN; x.len()]
            };
            let src = (!in_place).then_some(&x[..]);
            norm::generic(p, src, &mut y, Some(w), Some(b), act);
            assert_close(&format!("norm.generic {what} {p:?} {act:?}"), &y, want);
            // The layer variant takes exactly the layer norms.
            assert_eq!(norm::layer_accepts(p), matches!(p, Norm::Layer { .. }));
            if norm::layer_accepts(p) {
                let mut y = if in_place {
                    x.clone()
                } else {
                    vec![f32::NAN; x.len()]
                };
                norm::layer(p, src, &mut y, Some(w), Some(b), act);
                assert_close(&format!("norm.layer {what} {p:?} {act:?}"), &y, want);
            }
        };
        // Batch norm.
        let mean = r.vec(c);
        let var: Vec<f32> = r.vec(c).iter().map(|v| v.abs() + 0.1).collect();
        let (mt, vt) = (t(&[c], mean.clone()), t(&[c], var.clone()));
        let want = reference(
            Op::BatchNorm { eps: 1e-5 },
            ir_act,
            &[&xt, &wt, &bt, &mt, &vt],
            &shape,
        );
        let p = Norm::Batch {
            n,
            c,
            inner,
            eps: 1e-5,
            mean: &mean,
            var: &var,
        };
        run(&p, &w, &b, &want, "batch");
        // Group norm.
        let divisors: Vec<usize> = (1..=c).filter(|g| c % g == 0).collect();
        let groups = divisors[r.range(0, divisors.len() - 1)];
        let want = reference(
            Op::GroupNorm { groups, eps: 1e-5 },
            ir_act,
            &[&xt, &wt, &bt],
            &shape,
        );
        let p = Norm::Group {
            n,
            c,
            inner,
            groups,
            eps: 1e-5,
        };
        run(&p, &w, &b, &want, "group");
        // Layer norm over the last one or two dims.
        let axis = [1, 2][case % 2];
        let len: usize = shape[axis..].iter().product();
        let (lw, lb) = (r.vec(len), r.vec(len));
        let (lwt, lbt) = (t(&shape[axis..], lw.clone()), t(&shape[axis..], lb.clone()));
        let want = reference(
            Op::LayerNorm { axis, eps: 1e-5 },
            ir_act,
            &[&xt, &lwt, &lbt],
            &shape,
        );
        let p = Norm::Layer {
            rows: x.len() / len,
            len,
            eps: 1e-5,
        };
        run(&p, &lw, &lb, &want, "layer");
    }
    assert!(!norm::generic_accepts(&Norm::Group {
        n: 1,
        c: 6,
        inner: 4,
        groups: 4,
        eps: 1e-5
    }));
}

#[test]
fn softmax_matches_interpreter() {
    let mut r = Rng(8);
    for case in 0..60 {
        let shape = [r.range(1, 4), r.range(1, 20), r.range(1, 6)];
        let axis = case % 3;
        let mut x: Vec<f32> = r
            .vec(shape.iter().product())
            .iter()
            .map(|v| v * 20.0)
            .collect();
        if case % 7 == 0 {
            x[0] = f32::NAN;
        }
        if case % 5 == 0 {
            let last = x.len() - 1;
            x[last] = f32::NEG_INFINITY;
        }
        let log = case % 2 == 1;
        let want = reference(
            Op::Softmax { axis, log },
            None,
            &[&t(&shape, x.clone())],
            &shape,
        );
        let p = Softmax {
            outer: shape[..axis].iter().product(),
            len: shape[axis],
            inner: shape[axis + 1..].iter().product(),
            log,
        };
        assert!(softmax::generic_accepts(&p));
        let mut y = vec![0.0; x.len()];
        softmax::generic(&p, &x, &mut y);
        assert_close(&format!("softmax.generic {p:?}"), &y, &want);
    }
}

// ---------------------------------------------------------------------------------------------
// pool

/// PyTorch's pooling output size along one dim.
fn pool_out(input: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span = d * (k - 1) + 1;
    let num = (input + 2 * p) as i64 - span as i64 + if ceil { s as i64 - 1 } else { 0 };
    if num < 0 {
        return None;
    }
    let mut out = num as usize / s + 1;
    if ceil && (out - 1) * s >= input + p {
        out -= 1;
    }
    Some(out)
}

type PoolFn = fn(&Pool2d, &[f32], &mut [f32]);
type PoolAccepts = fn(&Pool2d) -> bool;

/// `pool.max3_avx512` and `pool.max3_avx2` against `pool.generic` (itself checked against the
/// interpreter below) on random 3×3 max poolings, NaN included; each skipped where the CPU lacks
/// its extension.
#[test]
fn max3_simd_matches_generic_pooling() {
    let variants: [(&str, bool, PoolFn, PoolAccepts); 2] = [
        (
            "max3_avx512",
            x86::avx512(),
            pool::max3_avx512,
            pool::max3_avx512_accepts,
        ),
        (
            "max3_avx2",
            x86::avx2(),
            pool::max3_avx2,
            pool::max3_avx2_accepts,
        ),
    ];
    for (name, here, run, accepts) in variants {
        if !here {
            continue;
        }
        let mut r = Rng(77);
        for case in 0..200 {
            let (planes, h, w) = (r.range(1, 20), r.range(1, 30), r.range(1, 70));
            let (sy, sx) = (r.range(1, 3), r.range(1, 2));
            let (py, px) = (r.range(0, 1), r.range(0, 1));
            let (Some(oh), Some(ow)) = (conv_out(h, 3, sy, py, 1), conv_out(w, 3, sx, px, 1))
            else {
                continue;
            };
            let mut x = r.vec(planes * h * w);
            if case % 7 == 0 {
                x[r.range(0, planes * h * w - 1)] = f32::NAN;
            }
            let p = Pool2d {
                kind: PoolKind::Max,
                planes,
                h,
                w,
                oh,
                ow,
                adaptive: false,
                kh: 3,
                kw: 3,
                stride: [sy, sx],
                pad: [py, px],
                dil: [1, 1],
                count_include_pad: false,
                divisor_override: 0,
            };
            assert!(accepts(&p), "{name}");
            let (mut want, mut got) = (vec![0.0; planes * oh * ow], vec![1.0; planes * oh * ow]);
            pool::generic(&p, &x, &mut want);
            run(&p, &x, &mut got);
            for (a, b) in want.iter().zip(&got) {
                assert!(
                    a == b || (a.is_nan() && b.is_nan()),
                    "{name} {p:?}: {a} vs {b}"
                );
            }
        }
    }
}

/// `pool.global_avg` against `pool.generic` (checked against the interpreter below) on random
/// global average poolings, with and without a two-thread splitter installed.
#[test]
fn global_avg_matches_generic_pooling() {
    let mut r = Rng(91);
    for case in 0..60 {
        let (planes, h, w) = (r.range(1, 300), r.range(1, 20), r.range(1, 20));
        let x = r.vec(planes * h * w);
        let p = Pool2d {
            kind: PoolKind::Avg,
            planes,
            h,
            w,
            oh: 1,
            ow: 1,
            adaptive: true,
            kh: 0,
            kw: 0,
            stride: [1, 1],
            pad: [0, 0],
            dil: [1, 1],
            count_include_pad: false,
            divisor_override: 0,
        };
        assert!(pool::global_avg_accepts(&p));
        let (mut want, mut got) = (vec![0.0; planes], vec![1.0; planes]);
        pool::generic(&p, &x, &mut want);
        if case % 2 == 1 {
            etpkg_kernels::par::install(Some(two_threads), 2);
        }
        pool::global_avg(&p, &x, &mut got);
        etpkg_kernels::par::install(None, 1);
        for (a, b) in want.iter().zip(&got) {
            assert!(
                (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                "{p:?}: {a} vs {b}"
            );
        }
    }
}

/// A splitter on two scoped threads, tasks dealt round-robin.
fn two_threads(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || (t..tasks).step_by(2).for_each(f));
        }
    });
}

#[test]
fn pool_matches_interpreter() {
    let mut r = Rng(4242);
    let mut ran = 0;
    for case in 0..400 {
        let kind = if case % 2 == 0 {
            PoolKind::Max
        } else {
            PoolKind::Avg
        };
        let ir_kind = if kind == PoolKind::Max {
            IrPoolKind::Max
        } else {
            IrPoolKind::Avg
        };
        let one_d = case % 5 == 0;
        let (planes, h, w) = (
            r.range(1, 5),
            if one_d { 1 } else { r.range(1, 12) },
            r.range(1, 15),
        );
        let mut x = r.vec(planes * h * w);
        if case % 11 == 0 {
            x[r.range(0, planes * h * w - 1)] = f32::NAN;
        }
        let in_shape: Vec<usize> = if one_d {
            vec![planes, w]
        } else {
            vec![1, planes, h, w]
        };
        let sd = if one_d { 1 } else { 0 };
        let xt = t(&in_shape, x.clone());
        let (op, p) = if case % 4 == 3 {
            let (oh, ow) = (if one_d { 1 } else { r.range(1, 7) }, r.range(1, 9));
            let p = Pool2d {
                kind,
                planes,
                h,
                w,
                oh,
                ow,
                adaptive: true,
                kh: 0,
                kw: 0,
                stride: [0, 0],
                pad: [0, 0],
                dil: [0, 0],
                count_include_pad: false,
                divisor_override: 0,
            };
            let size = if one_d { vec![ow] } else { vec![oh, ow] };
            (
                Op::AdaptivePool {
                    kind: ir_kind,
                    output_size: size,
                },
                p,
            )
        } else {
            let k = [if one_d { 1 } else { r.range(1, 4) }, r.range(1, 4)];
            let s = [if one_d { 1 } else { r.range(1, 3) }, r.range(1, 3)];
            let d = if kind == PoolKind::Max && !one_d {
                [r.range(1, 2), r.range(1, 2)]
            } else if kind == PoolKind::Max {
                [1, r.range(1, 2)]
            } else {
                [1, 1]
            };
            let pad: Vec<usize> = (0..2)
                .map(|i| r.range(0, (d[i] * (k[i] - 1)).div_ceil(2)))
                .collect();
            let ceil = r.coin();
            let (Some(oh), Some(ow)) = (
                pool_out(h, k[0], s[0], pad[0], d[0], ceil),
                pool_out(w, k[1], s[1], pad[1], d[1], ceil),
            ) else {
                continue;
            };
            let divisor = (case % 3 == 0).then(|| r.range(1, 7));
            let cip = r.coin();
            let p = Pool2d {
                kind,
                planes,
                h,
                w,
                oh,
                ow,
                adaptive: false,
                kh: k[0],
                kw: k[1],
                stride: s,
                pad: [pad[0], pad[1]],
                dil: d,
                count_include_pad: cip,
                divisor_override: divisor.unwrap_or(0),
            };
            let attrs = PoolAttrs {
                kind: ir_kind,
                kernel: k[sd..].to_vec(),
                stride: s[sd..].to_vec(),
                padding: pad[sd..].to_vec(),
                dilation: d[sd..].to_vec(),
                ceil_mode: ceil,
                count_include_pad: cip,
                divisor_override: divisor,
            };
            (Op::Pool(attrs), p)
        };
        let mut out_shape = in_shape[..in_shape.len() - 2 + sd].to_vec();
        if !one_d {
            out_shape.push(p.oh);
        }
        out_shape.push(p.ow);
        let want = reference(op, None, &[&xt], &out_shape);
        assert!(pool::generic_accepts(&p));
        let mut y = vec![0.0; want.len()];
        pool::generic(&p, &x, &mut y);
        assert_close(&format!("pool.generic {p:?}"), &y, &want);
        ran += 1;
    }
    assert!(ran > 200);
    // Average pooling has no dilation.
    let avg = Pool2d {
        kind: PoolKind::Avg,
        planes: 1,
        h: 4,
        w: 4,
        oh: 2,
        ow: 2,
        adaptive: false,
        kh: 2,
        kw: 2,
        stride: [1, 1],
        pad: [0, 0],
        dil: [2, 2],
        count_include_pad: false,
        divisor_override: 0,
    };
    assert!(!pool::generic_accepts(&avg));
    assert!(pool::generic_accepts(&Pool2d {
        kind: PoolKind::Max,
        ..avg
    }));
    assert!(!pool::generic_accepts(&Pool2d {
        stride: [0, 1],
        ..avg
    }));
}

// ---------------------------------------------------------------------------------------------
// conv_transpose, upsample

#[test]
fn conv_transpose_matches_interpreter() {
    let mut r = Rng(606);
    let acts = activations();
    for case in 0..200 {
        let (ir_act, act) = acts[case % acts.len()];
        let one_d = case % 4 == 0;
        let groups = [1, 1, 2, 3][r.range(0, 3)];
        let (c_in, c_out) = (groups * r.range(1, 4), groups * r.range(1, 4));
        let k = [if one_d { 1 } else { r.range(1, 4) }, r.range(1, 4)];
        let s = [if one_d { 1 } else { r.range(1, 3) }, r.range(1, 3)];
        let d = [if one_d { 1 } else { r.range(1, 2) }, r.range(1, 2)];
        let pad = [if one_d { 0 } else { r.range(0, 2) }, r.range(0, 2)];
        // Output padding must be smaller than the stride or the dilation.
        let op = [0, 1].map(|i| r.range(0, s[i].max(d[i]) - 1));
        let (h, w) = (if one_d { 1 } else { r.range(1, 7) }, r.range(1, 9));
        let size = |i: usize, len: usize| {
            ((len - 1) * s[i] + d[i] * (k[i] - 1) + op[i] + 1) as isize - 2 * pad[i] as isize
        };
        let (oh, ow) = (size(0, h), size(1, w));
        if oh <= 0 || ow <= 0 {
            continue;
        }
        let p = ConvTranspose2d {
            n: r.range(1, 2),
            c_in,
            h,
            w,
            c_out,
            kh: k[0],
            kw: k[1],
            stride: s,
            pad,
            dil: d,
            groups,
            oh: oh as usize,
            ow: ow as usize,
        };
        let x = r.vec(p.n * c_in * h * w);
        let wv = r.vec(c_in * (c_out / groups) * k[0] * k[1]);
        let bias = r.coin().then(|| r.vec(c_out));
        let sd = if one_d { 1 } else { 0 };
        let dims = |a: usize, b: usize, hh: usize, ww: usize| {
            let mut v = vec![a, b];
            if !one_d {
                v.push(hh);
            }
            v.push(ww);
            v
        };
        let xt = t(&dims(p.n, c_in, h, w), x.clone());
        let wt = t(&dims(c_in, c_out / groups, k[0], k[1]), wv.clone());
        let bt = bias.as_ref().map(|b| t(&[c_out], b.clone()));
        let mut inputs = vec![&xt, &wt];
        inputs.extend(bt.as_ref());
        let attrs = ConvAttrs {
            stride: s[sd..].to_vec(),
            padding: pad[sd..].to_vec(),
            dilation: d[sd..].to_vec(),
            groups,
            transposed: true,
            output_padding: op[sd..].to_vec(),
        };
        let want = reference(
            Op::Conv(attrs),
            ir_act,
            &inputs,
            &dims(p.n, c_out, p.oh, p.ow),
        );
        assert!(conv_transpose::generic_accepts(&p));
        let mut y = vec![f32::NAN; want.len()];
        conv_transpose::generic(&p, &x, &wv, bias.as_deref(), &mut y, act);
        assert_close(&format!("conv_transpose.generic {p:?} {act:?}"), &y, &want);
    }
    let bad = ConvTranspose2d {
        n: 1,
        c_in: 3,
        h: 2,
        w: 2,
        c_out: 4,
        kh: 1,
        kw: 1,
        stride: [1, 1],
        pad: [0, 0],
        dil: [1, 1],
        groups: 2,
        oh: 2,
        ow: 2,
    };
    assert!(!conv_transpose::generic_accepts(&bad));
}

#[test]
fn upsample_matches_interpreter() {
    let mut r = Rng(123);
    for case in 0..120 {
        let mode = [
            (UpsampleMode::Nearest, Mode::Nearest),
            (
                UpsampleMode::Bilinear {
                    align_corners: false,
                },
                Mode::Bilinear {
                    align_corners: false,
                },
            ),
            (
                UpsampleMode::Bilinear {
                    align_corners: true,
                },
                Mode::Bilinear {
                    align_corners: true,
                },
            ),
        ][case % 3];
        let planes = r.range(1, 6);
        let (h, w, oh, ow) = (r.range(1, 9), r.range(1, 9), r.range(1, 17), r.range(1, 17));
        let x = r.vec(planes * h * w);
        let want = reference(
            Op::Upsample {
                mode: mode.0,
                size: vec![oh, ow],
            },
            None,
            &[&t(&[1, planes, h, w], x.clone())],
            &[1, planes, oh, ow],
        );
        let p = Upsample2d {
            mode: mode.1,
            planes,
            h,
            w,
            oh,
            ow,
        };
        assert!(upsample::generic_accepts(&p));
        let mut y = vec![f32::NAN; want.len()];
        upsample::generic(&p, &x, &mut y);
        assert_close(&format!("upsample.generic {p:?}"), &y, &want);
    }
    assert!(!upsample::generic_accepts(&Upsample2d {
        mode: Mode::Nearest,
        planes: 1,
        h: 0,
        w: 3,
        oh: 2,
        ow: 2
    }));
}

// ---------------------------------------------------------------------------------------------
// metadata

/// Every family's table: names are `<family>.<variant>` with a `pub fn <variant>` and
/// `<variant>_accepts` in the family file, speeds are sane, and exactly one variant is the
/// universal one (`shape == "any"`, speed 0).
#[test]
fn variant_tables_are_consistent() {
    use etpkg_kernels::meta::KernelInfo;
    let families: [(&str, &[KernelInfo]); 8] = [
        ("attention", attention::VARIANTS),
        ("conv", conv::VARIANTS),
        ("conv_transpose", conv_transpose::VARIANTS),
        ("matmul", matmul::VARIANTS),
        ("norm", norm::VARIANTS),
        ("pool", pool::VARIANTS),
        ("softmax", softmax::VARIANTS),
        ("upsample", upsample::VARIANTS),
    ];
    for (family, table) in families {
        let src = std::fs::read_to_string(format!(
            "{}/kernels/src/{family}.rs",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let universal: Vec<_> = table.iter().filter(|k| k.shape == "any").collect();
        assert_eq!(universal.len(), 1, "{family}: one universal variant");
        assert_eq!(universal[0].speed, 0, "{family}: universal is speed 0");
        for k in table {
            assert_eq!(k.family, family);
            let variant = k
                .name
                .strip_prefix(&format!("{family}."))
                .unwrap_or_else(|| panic!("{} is not in {family}", k.name));
            assert!(
                src.contains(&format!("//@variant {variant}\n")),
                "{}",
                k.name
            );
            assert!(src.contains(&format!("pub fn {variant}(")), "{}", k.name);
            assert!(
                src.contains(&format!("pub fn {variant}_accepts(")),
                "{}",
                k.name
            );
            assert!(
                k.speed <= 9 && (k.shape == "any") == (k.speed == 0),
                "{}",
                k.name
            );
            // The only ISA-specific variants are the AVX-512 and AVX2 ones, named for their
            // extension, which they need with FMA.
            let isa: &[&str] = if k.name.ends_with("_avx512") {
                &["avx512f", "fma"]
            } else if k.name.ends_with("_avx2") {
                &["avx2", "fma"]
            } else {
                &[]
            };
            assert_eq!(k.isa, isa, "{}", k.name);
            assert!(k.dtypes == ["f32"], "{}", k.name);
            assert!(k.code_bytes > 100 && k.code_bytes < 100_000, "{}", k.name);
        }
        let blocks = src.matches("//@variant ").count();
        assert_eq!(blocks, table.len(), "{family}: one table entry per block");
    }
}

// ---------------------------------------------------------------------------------------------
// attention

#[test]
fn attention_matches_interpreter() {
    let mut r = Rng(2024);
    for case in 0..120 {
        // Every fourth case has many keys, so attention.fast's dot-product path (keys too
        // many to transpose on the stack) runs as well as its transposed one; outputs up to 40
        // wide cover its whole-chunk and partial-chunk columns.
        let s = if case % 4 == 3 {
            r.range(60, 90)
        } else {
            r.range(1, 11)
        };
        let (l, e, ev) = (r.range(1, 9), r.range(1, 40), r.range(1, 40));
        let d = [r.range(1, 2), r.range(1, 3)];
        let has = |r: &mut Rng| [r.coin(), r.coin()];
        let (qh, kh, vh) = (has(&mut r), has(&mut r), has(&mut r));
        let dims = |h: [bool; 2]| [0, 1].map(|i| if h[i] { d[i] } else { 1 });
        let (qd, kd, vd) = (dims(qh), dims(kh), dims(vh));
        let q = r.vec(qd[0] * qd[1] * l * e);
        let k = r.vec(kd[0] * kd[1] * s * e);
        let v = r.vec(vd[0] * vd[1] * s * ev);
        let causal = case % 3 == 0;
        let scale = (case % 4 == 1).then_some(0.3);
        let stride = |dd: [usize; 2], mat: usize| {
            [
                0,
                0,
                if dd[0] > 1 { mat * dd[1] } else { 0 },
                if dd[1] > 1 { mat } else { 0 },
            ]
        };
        let out_b = [0, 1].map(|i| qd[i].max(kd[i]).max(vd[i]));
        // Masks: none, bool [l, s] (sometimes a fully masked row), float [1, s].
        let kind = case % 3;
        let bool_mask: Vec<bool> = (0..l * s)
            .map(|i| {
                let first_row_masked = case % 5 == 0 && i / s == 0;
                let dropped = r.next().is_multiple_of(4);
                !(first_row_masked || dropped)
            })
            .collect();
        let float_mask: Vec<f32> = r.vec(s).iter().map(|v| v * 4.0).collect();
        let (qt, kt, vt) = (
            t(&[qd[0], qd[1], l, e], q.clone()),
            t(&[kd[0], kd[1], s, e], k.clone()),
            t(&[vd[0], vd[1], s, ev], v.clone()),
        );
        let mt = match kind {
            1 => Some(Tensor::bool(vec![l, s], bool_mask.clone())),
            2 => Some(t(&[1, s], float_mask.clone())),
            _ => None,
        };
        let mut inputs = vec![&qt, &kt, &vt];
        inputs.extend(mt.as_ref());
        let want = reference(
            Op::Sdpa { causal, scale },
            None,
            &inputs,
            &[out_b[0], out_b[1], l, ev],
        );
        let (mask, mask_stride) = match kind {
            1 => (Mask::Bool(&bool_mask), [0, 0, 0, 0, s, 1]),
            2 => (Mask::Float(&float_mask), [0, 0, 0, 0, 0, 1]),
            _ => (Mask::None, [0; 6]),
        };
        let p = Sdpa {
            batch: [1, 1, out_b[0], out_b[1]],
            q_batch_stride: stride(qd, l * e),
            k_batch_stride: stride(kd, s * e),
            v_batch_stride: stride(vd, s * ev),
            mask_stride,
            l,
            s,
            e,
            ev,
            scale: scale.map_or(Sdpa::default_scale(e), |v| v as f32),
            causal,
        };
        type SdpaFn = fn(&Sdpa, &[f32], &[f32], &[f32], Mask, &mut [f32], &mut [f32]);
        type SdpaAccepts = fn(&Sdpa) -> bool;
        let variants: [(&str, SdpaFn, SdpaAccepts); 2] = [
            ("generic", attention::generic, attention::generic_accepts),
            ("fast", attention::fast, attention::fast_accepts),
        ];
        for (name, f, accepts) in variants {
            assert!(accepts(&p));
            let mut y = vec![f32::NAN; want.len()];
            let mut scratch = vec![0.0; s];
            f(&p, &q, &k, &v, mask, &mut y, &mut scratch);
            assert_close(&format!("attention.{name} {p:?}"), &y, &want);
        }
    }
}
