//! Activations a producing kernel applies to its own output before storing it.
//! Invariant: `Act::apply` computes what etpkg's interpreter computes for the matching unary op
//! (in f64, rounded once to f32), including its NaN rules; `Act::apply_slice_fast`, for speed
//! variants only, differs from it only within the stated bounds of `math`'s `fast_*` functions.
#![forbid(unsafe_code)]

use super::math;

/// An activation fused into a producer. `None` stores the result unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    /// `max(x, 0)`; NaN stays NaN.
    Relu,
    /// `min(max(x, min), max)`; a missing bound is ±inf. A NaN input or NaN bound gives NaN, and
    /// with `min > max` every element becomes `max`, as in PyTorch.
    Clamp {
        min: f32,
        max: f32,
    },
    /// `x · relu6(x + 3) / 6`.
    Hardswish,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// `x · sigmoid(x)`.
    Silu,
    /// `0.5 x (1 + erf(x / √2))`, or with `tanh` the tanh approximation.
    Gelu {
        tanh: bool,
    },
}

/// `min(max(v, 0), 6)` that lets NaN through.
#[inline]
fn relu6(v: f64) -> f64 {
    if v.is_nan() {
        v
    } else {
        v.clamp(0.0, 6.0)
    }
}

impl Act {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            // NaN < 0 is false, so NaN passes through unchanged, as in PyTorch.
            Act::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Act::Clamp { min, max } => {
                if x.is_nan() || min.is_nan() || max.is_nan() {
                    return f32::NAN;
                }
                let y = if x < min { min } else { x };
                if y > max {
                    max
                } else {
                    y
                }
            }
            Act::Hardswish => {
                let v = x as f64;
                (v * relu6(v + 3.0) / 6.0) as f32
            }
            Act::Hardsigmoid => (relu6(x as f64 + 3.0) / 6.0) as f32,
            Act::Silu => {
                let v = x as f64;
                (v / (1.0 + math::exp_f64(-v))) as f32
            }
            Act::Gelu { tanh: false } => {
                let v = x as f64;
                (0.5 * v * (1.0 + math::erf_f64(v * core::f64::consts::FRAC_1_SQRT_2))) as f32
            }
            Act::Gelu { tanh: true } => {
                let v = x as f64;
                // √(2/π), the tanh approximation's constant.
                const K: f64 = 0.797_884_560_802_865_4;
                (0.5 * v * (1.0 + math::tanh_f64(K * (v + 0.044_715 * v * v * v)))) as f32
            }
        }
    }

    /// Applies the activation to every element of `y` in place.
    pub fn apply_slice(self, y: &mut [f32]) {
        // One loop per activation keeps the match out of the loop, so the cheap ones vectorize.
        match self {
            Act::None => {}
            // Written out rather than through `apply`, which the compiler left out of line
            // here: a call per element, where this loop vectorizes.
            Act::Relu => y
                .iter_mut()
                .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v }),
            Act::Clamp { min, max } => {
                if min.is_nan() || max.is_nan() {
                    y.fill(f32::NAN);
                    return;
                }
                // Comparisons with NaN are false, so a NaN element passes both selects
                // unchanged; written as selects so the loop vectorizes.
                for v in y.iter_mut() {
                    let lo = if *v < min { min } else { *v };
                    *v = if lo > max { max } else { lo };
                }
            }
            Act::Hardswish => y.iter_mut().for_each(|v| *v = Act::Hardswish.apply(*v)),
            Act::Hardsigmoid => y.iter_mut().for_each(|v| *v = Act::Hardsigmoid.apply(*v)),
            Act::Silu => y.iter_mut().for_each(|v| *v = Act::Silu.apply(*v)),
            Act::Gelu { .. } => y.iter_mut().for_each(|v| *v = self.apply(*v)),
        }
    }

    /// Like [`Act::apply_slice`], but GELU and SiLU use the branch-free f32 approximations
    /// `math::fast_gelu`, `math::fast_gelu_tanh` and `math::fast_silu`, which vectorize;
    /// the other activations are exact already and unchanged.
    pub fn apply_slice_fast(self, y: &mut [f32]) {
        match self {
            Act::Silu => y.iter_mut().for_each(|v| *v = math::fast_silu(*v)),
            Act::Gelu { tanh: false } => y.iter_mut().for_each(|v| *v = math::fast_gelu(*v)),
            Act::Gelu { tanh: true } => y.iter_mut().for_each(|v| *v = math::fast_gelu_tanh(*v)),
            _ => self.apply_slice(y),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn activations_follow_their_definitions() {
        let xs = [
            -7.0f32, -3.5, -3.0, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 3.0, 4.0, 8.0,
        ];
        for &x in &xs {
            let v = x as f64;
            let r6 = (v + 3.0).clamp(0.0, 6.0);
            assert_eq!(Act::None.apply(x), x);
            assert_eq!(Act::Relu.apply(x), x.max(0.0));
            assert_eq!(Act::Hardswish.apply(x), (v * r6 / 6.0) as f32);
            assert_eq!(Act::Hardsigmoid.apply(x), (r6 / 6.0) as f32);
            let silu = (v / (1.0 + (-v).exp())) as f32;
            assert!((Act::Silu.apply(x) - silu).abs() <= 1e-6 * silu.abs().max(1e-30));
            let gt = (0.5
                * v
                * (1.0
                    + ((2.0 / core::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v)).tanh()))
                as f32;
            assert!((Act::Gelu { tanh: true }.apply(x) - gt).abs() <= 1e-6 * gt.abs().max(1e-6));
            let c = Act::Clamp {
                min: -1.0,
                max: 2.5,
            }
            .apply(x);
            assert_eq!(c, x.clamp(-1.0, 2.5));
        }
        // Known GELU values from PyTorch in float64.
        let g = Act::Gelu { tanh: false };
        assert!((g.apply(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((g.apply(-3.5) - -0.000_814_201_8).abs() < 1e-9);
    }

    #[test]
    fn nan_and_bounds_follow_pytorch() {
        assert!(Act::Relu.apply(f32::NAN).is_nan());
        assert!(Act::Hardswish.apply(f32::NAN).is_nan());
        let c = Act::Clamp {
            min: f32::NEG_INFINITY,
            max: 6.0,
        };
        assert_eq!(c.apply(-1e30), -1e30);
        assert_eq!(c.apply(7.0), 6.0);
        assert!(c.apply(f32::NAN).is_nan());
        assert!(Act::Clamp {
            min: f32::NAN,
            max: 1.0
        }
        .apply(0.0)
        .is_nan());
        // min > max gives max everywhere.
        assert_eq!(Act::Clamp { min: 3.0, max: 1.0 }.apply(0.0), 1.0);
        assert_eq!(Act::Clamp { min: 3.0, max: 1.0 }.apply(5.0), 1.0);
        let mut y = [-1.0f32, 0.5, 9.0];
        Act::Clamp { min: 0.0, max: 6.0 }.apply_slice(&mut y);
        assert_eq!(y, [0.0, 0.5, 6.0]);
    }
}
