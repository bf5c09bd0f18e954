//! Threaded convolutions equal single-thread ones bit for bit. Invariant: splitting the AVX-512
//! conv variants by output-channel blocks never changes a result, because every output element
//! is still summed in the same order by the same code.

use etpkg_kernels::act::Act;
use etpkg_kernels::conv::{self, Conv2d};
use etpkg_kernels::par;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many times the splitter below was asked to split, to prove the ops really were split.
static SPLITS: AtomicUsize = AtomicUsize::new(0);

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
    if !etpkg_kernels::x86::avx512() {
        return;
    }
    let relu6 = Act::Clamp { min: 0.0, max: 6.0 };
    let cases: Vec<(Variant, Conv2d, Act, &str)> = vec![
        (
            conv::pointwise_avx512,
            shape(2, 32, 38, 20, 1, 1, 1),
            relu6,
            "pointwise",
        ),
        (
            conv::pointwise_avx512,
            shape(1, 24, 16, 56, 1, 1, 1),
            Act::None,
            "pointwise 16",
        ),
        (
            conv::im2col_avx512,
            shape(1, 19, 70, 23, 3, 1, 1),
            Act::Relu,
            "im2col",
        ),
        (
            conv::im2col_avx512,
            shape(2, 64, 128, 40, 3, 2, 2),
            Act::None,
            "im2col grouped",
        ),
        (
            conv::im2col_avx512,
            shape(1, 8, 300, 20, 3, 1, 1),
            Act::Clamp {
                min: -0.1,
                max: 0.1,
            },
            "im2col narrow tiles",
        ),
        (
            conv::im2col_avx512,
            shape(1, 64, 96, 7, 3, 1, 1),
            Act::Relu,
            "im2col few pixels",
        ),
        (
            conv::depthwise_avx512,
            shape(2, 70, 70, 31, 3, 1, 70),
            relu6,
            "depthwise",
        ),
        (
            conv::depthwise_avx512,
            shape(1, 96, 96, 40, 5, 2, 96),
            Act::Relu,
            "depthwise s2",
        ),
    ];
    for (f, p, act, name) in cases {
        let before = SPLITS.load(Ordering::Relaxed);
        let (one, two) = both(f, &p, act);
        assert!(
            SPLITS.load(Ordering::Relaxed) > before,
            "{name} was not split"
        );
        let same = one
            .iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name}: two threads changed the result");
        assert!(one.iter().any(|v| *v != 0.0), "{name}: nothing computed");
    }
    // A convolution of 8·8·64 = 4096 multiply-adds is not worth a second thread.
    let before = SPLITS.load(Ordering::Relaxed);
    let (one, two) = both(
        conv::pointwise_avx512,
        &shape(1, 8, 8, 8, 1, 1, 1),
        Act::None,
    );
    assert_eq!(
        SPLITS.load(Ordering::Relaxed),
        before,
        "a tiny conv was split"
    );
    assert_eq!(one, two);
}
