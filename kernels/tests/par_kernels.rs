//! Threaded kernels equal single-thread ones bit for bit. Invariant: splitting the SIMD conv
//! variants (by blocks of output channels, pixels, rows or tile rows), one-row products, same-shape
//! element-wise ops and poolings never changes a result, because every output element is still
//! computed in the same order by the same code.

use etpkg_kernels::act::Act;
use etpkg_kernels::binary::{self, BinaryOp, BinaryParams};
use etpkg_kernels::conv::{self, Conv2d};
use etpkg_kernels::matmul::{self, Gemm};
use etpkg_kernels::par;
use etpkg_kernels::pool::{self, Pool2d, PoolKind};
use etpkg_kernels::shape::{DType, Operand, Shape};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many times the splitter below was asked to split, to prove the ops really were split.
static SPLITS: AtomicUsize = AtomicUsize::new(0);

/// The splitter is process-wide, so the tests that install one run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Two scoped threads taking tasks round-robin (the caller waits, as `scope` joins them).
fn two_threads(tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    SPLITS.fetch_add(1, Ordering::Relaxed);
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || (t..tasks).step_by(2).for_each(f));
        }
    });
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32) - 0.5
        })
        .collect()
}

type Variant = fn(&Conv2d, &[f32], &[f32], Option<&[f32]>, &mut [f32], Act);

#[allow(clippy::too_many_arguments)]
fn shape(n: usize, c_in: usize, c_out: usize, hw: usize, k: usize, s: usize, g: usize) -> Conv2d {
    let pad = k / 2;
    let o = (hw + 2 * pad - k) / s + 1;
    Conv2d {
        n,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: k,
        kw: k,
        stride: [s, s],
        pad: [pad, pad],
        dil: [1, 1],
        groups: g,
        oh: o,
        ow: o,
    }
}

/// Runs `f` on `p` with random data once without a splitter and once with two threads.
fn both(f: Variant, p: &Conv2d, act: Act) -> (Vec<f32>, Vec<f32>) {
    let x = data(p.n * p.c_in * p.h * p.w, 1);
    let w = data(p.c_out * (p.c_in / p.groups) * p.kh * p.kw, 2);
    let bias = data(p.c_out, 3);
    let mut one = vec![0f32; p.n * p.c_out * p.oh * p.ow];
    let mut two = one.clone();
    par::install(None, 1);
    f(p, &x, &w, Some(&bias), &mut one, act);
    par::install(Some(two_threads), 2);
    f(p, &x, &w, Some(&bias), &mut two, act);
    par::install(None, 1);
    (one, two)
}

#[test]
fn threaded_convs_equal_single_thread_bit_for_bit() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if etpkg_kernels::x86::avx512() {
        threaded_convs_match(
            [
                conv::pointwise_avx512,
                conv::im2col_avx512,
                conv::depthwise_avx512,
                conv::winograd_avx512,
            ],
            "avx512",
        );
    }
    if etpkg_kernels::x86::avx2() {
        threaded_convs_match(
            [
                conv::pointwise_avx2,
                conv::im2col_avx2,
                conv::depthwise_avx2,
                conv::winograd_avx2,
            ],
            "avx2",
        );
    }
}

/// Runs every split case through one extension's pointwise, im2col, depthwise and Winograd
/// variants.
fn threaded_convs_match([pointwise, im2col, depthwise, winograd]: [Variant; 4], isa: &str) {
    let relu6 = Act::Clamp { min: 0.0, max: 6.0 };
    let cases: Vec<(Variant, Conv2d, Act, &str)> = vec![
        (pointwise, shape(2, 32, 38, 20, 1, 1, 1), relu6, "pointwise"),
        (
            pointwise,
            shape(1, 24, 16, 56, 1, 1, 1),
            Act::None,
            "pointwise 16",
        ),
        (
            pointwise,
            shape(1, 64, 32, 14, 1, 1, 1),
            relu6,
            "pointwise, narrow plane and few channels",
        ),
        (
            pointwise,
            shape(1, 160, 960, 7, 1, 1, 1),
            relu6,
            "pointwise 7×7, a dot-product column",
        ),
        (im2col, shape(1, 19, 70, 23, 3, 1, 1), Act::Relu, "im2col"),
        (
            im2col,
            shape(2, 64, 128, 40, 3, 2, 2),
            Act::None,
            "im2col grouped",
        ),
        (
            im2col,
            shape(1, 8, 300, 20, 3, 1, 1),
            Act::Clamp {
                min: -0.1,
                max: 0.1,
            },
            "im2col narrow tiles",
        ),
        (
            im2col,
            shape(1, 64, 96, 7, 3, 1, 1),
            Act::Relu,
            "im2col few pixels",
        ),
        (
            depthwise,
            shape(2, 70, 70, 31, 3, 1, 70),
            relu6,
            "depthwise",
        ),
        (
            depthwise,
            shape(1, 96, 96, 40, 5, 2, 96),
            Act::Relu,
            "depthwise s2",
        ),
        (
            depthwise,
            shape(1, 96, 96, 20, 3, 1, 96),
            relu6,
            "depthwise by channels",
        ),
        (
            depthwise,
            shape(1, 40, 40, 33, 3, 1, 40),
            Act::Hardswish,
            "depthwise, unfused activation",
        ),
        (
            pointwise,
            shape(1, 40, 72, 30, 1, 1, 1),
            Act::Hardswish,
            "pointwise pixels, unfused activation",
        ),
        (
            im2col,
            shape(1, 16, 24, 28, 3, 1, 1),
            Act::Silu,
            "im2col, unfused activation",
        ),
        (
            winograd,
            shape(1, 64, 64, 56, 3, 1, 1),
            relu6,
            "winograd by tile rows",
        ),
        (
            winograd,
            shape(2, 256, 70, 14, 3, 1, 1),
            Act::Relu,
            "winograd by output channels, chunks of input channels",
        ),
        (
            winograd,
            shape(1, 24, 40, 33, 3, 1, 1),
            Act::Hardswish,
            "winograd, odd plane, unfused activation",
        ),
    ];
    for (f, p, act, name) in cases {
        let before = SPLITS.load(Ordering::Relaxed);
        let (one, two) = both(f, &p, act);
        assert!(
            SPLITS.load(Ordering::Relaxed) > before,
            "{isa} {name} was not split"
        );
        let same = one
            .iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{isa} {name}: two threads changed the result");
        assert!(
            one.iter().any(|v| *v != 0.0),
            "{isa} {name}: nothing computed"
        );
    }
    // A convolution of 8·8·64 = 4096 multiply-adds is not worth a second thread.
    let before = SPLITS.load(Ordering::Relaxed);
    let (one, two) = both(pointwise, &shape(1, 8, 8, 8, 1, 1, 1), Act::None);
    assert_eq!(
        SPLITS.load(Ordering::Relaxed),
        before,
        "a tiny conv was split"
    );
    assert_eq!(one, two);
}

/// Runs `f` once without a splitter and once with two threads; returns both outputs and
/// whether the second run split.
fn one_and_two(len: usize, f: &dyn Fn(&mut [f32])) -> (Vec<f32>, Vec<f32>, bool) {
    let (mut one, mut two) = (vec![0f32; len], vec![0f32; len]);
    par::install(None, 1);
    f(&mut one);
    let before = SPLITS.load(Ordering::Relaxed);
    par::install(Some(two_threads), 2);
    f(&mut two);
    par::install(None, 1);
    let split = SPLITS.load(Ordering::Relaxed) > before;
    (one, two, split)
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

#[test]
fn threaded_linear_rows_elementwise_and_pools_equal_single_thread() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A classifier's linear layer: one row, 700 × 900 weights.
    let (k, n) = (700, 900);
    let (x, w, bias) = (data(k, 4), data(n * k, 5), data(n, 6));
    let p = Gemm::linear(1, k, n);
    let (one, two, split) =
        one_and_two(n, &|y| matmul::tiled(&p, &x, &w, Some(&bias), y, Act::Relu));
    assert!(split, "the one-row product was not split");
    assert!(same_bits(&one, &two), "threads changed the linear layer");
    assert!(one.iter().any(|v| *v > 0.0));

    // Same-shape adds: a feature map wide enough to split by pixels, and a flat vector.
    for dims in [&[1usize, 24, 56, 56][..], &[70_000][..]] {
        let shape = Shape::new(dims).unwrap();
        let len = shape.numel();
        let (a, b) = (data(len, 7), data(len, 8));
        let bp = BinaryParams {
            op: BinaryOp::Add,
            a: shape,
            b: shape,
            out: shape,
            a_dtype: DType::F32,
            b_dtype: DType::F32,
            out_dtype: DType::F32,
            act: Act::Relu,
        };
        assert!(binary::binary_f32_same_accepts(&bp));
        let (one, two, split) = one_and_two(len, &|y| {
            binary::binary_f32_same(&bp, Operand::Slice(&a), Operand::Slice(&b), y)
        });
        assert!(split, "the add over {dims:?} was not split");
        assert!(
            same_bits(&one, &two),
            "threads changed the add over {dims:?}"
        );
        for i in [0, len / 3, len - 1] {
            assert_eq!(one[i], (a[i] + b[i]).max(0.0));
        }
    }

    // Global average pooling, and (with AVX-512 or AVX2) 3×3 max pooling.
    let (planes, h, w) = (1024, 7, 7);
    let xs = data(planes * 56 * 56, 9);
    let avg = Pool2d {
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
    let (one, two, split) = one_and_two(planes, &|y| pool::global_avg(&avg, &xs[..planes * 49], y));
    assert!(split, "the global average was not split");
    assert!(same_bits(&one, &two), "threads changed the global average");
    let max = Pool2d {
        kind: PoolKind::Max,
        planes: 128,
        h: 56,
        w: 56,
        oh: 28,
        ow: 28,
        adaptive: false,
        kh: 3,
        kw: 3,
        stride: [2, 2],
        pad: [1, 1],
        dil: [1, 1],
        count_include_pad: false,
        divisor_override: 0,
    };
    let x86 = [
        (etpkg_kernels::x86::avx512(), "avx512"),
        (etpkg_kernels::x86::avx2(), "avx2"),
    ];
    for (_, isa) in x86.into_iter().filter(|(here, _)| *here) {
        let (one, two, split) = one_and_two(128 * 28 * 28, &|y| {
            let x = &xs[..128 * 56 * 56];
            if isa == "avx512" {
                pool::max3_avx512(&max, x, y)
            } else {
                pool::max3_avx2(&max, x, y)
            }
        });
        assert!(split, "the {isa} max pooling was not split");
        assert!(
            same_bits(&one, &two),
            "threads changed the {isa} max pooling"
        );
    }
}
