//! Element-wise unary kernels. Invariant: the input is cast to the recorded output dtype first
//! and every element is computed independently (f32 results are computed in f64, rounded once).

use super::erf::erf;
use super::{one_input, unsupported, Data, InterpError, Tensor};
use crate::ir::{DType, UnaryOp};
use std::f64::consts::PI;

pub fn unary(
    op: &'static str,
    u: UnaryOp,
    inputs: &[&Tensor],
    out: DType,
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    if u == UnaryOp::LogicalNot {
        // Truthiness is taken from the input's own dtype; casting first would turn 0.5 into 0.
        let truth = x.cast(DType::Bool)?;
        let not = truth
            .as_bool()
            .unwrap_or_default()
            .iter()
            .map(|b| !b)
            .collect();
        return Tensor::bool(x.shape.clone(), not).cast(out);
    }
    let x = x.cast(out)?;
    let data = match &x.data {
        Data::F32(v) => Data::F32(v.iter().map(|&e| float_op(u, e as f64) as f32).collect()),
        Data::I64(v) => Data::I64(int_op(op, u, v)?),
        Data::Bool(_) => return Err(unsupported(op, "bool has no arithmetic")),
    };
    Ok(Tensor {
        shape: x.shape,
        data,
    })
}

/// `min(max(v, 0), 6)` that lets NaN through, unlike `f64::clamp`'s NaN-swallowing neighbours.
fn relu6(v: f64) -> f64 {
    if v.is_nan() {
        v
    } else {
        v.clamp(0.0, 6.0)
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn float_op(u: UnaryOp, x: f64) -> f64 {
    match u {
        // ReLU is clamp_min(x, 0) in PyTorch, which propagates NaN.
        UnaryOp::Relu => {
            if x.is_nan() {
                x
            } else {
                x.max(0.0)
            }
        }
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Erf => erf(x),
        UnaryOp::Reciprocal => 1.0 / x,
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Round => x.round_ties_even(),
        // PyTorch's sign is (0 < x) - (x < 0), so NaN maps to 0.
        UnaryOp::Sign => ((0.0 < x) as i8 - (x < 0.0) as i8) as f64,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::LogicalNot => (x == 0.0) as u8 as f64,
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Hardswish => x * relu6(x + 3.0) / 6.0,
        UnaryOp::Hardsigmoid => relu6(x + 3.0) / 6.0,
        UnaryOp::Gelu { tanh: false } => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
        UnaryOp::Gelu { tanh: true } => {
            0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        }
        UnaryOp::Clamp { min, max } => clamp_f(x, min, max),
        UnaryOp::LeakyRelu { slope } => {
            if x >= 0.0 {
                x
            } else {
                slope * x
            }
        }
        UnaryOp::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha * x.exp_m1()
            }
        }
    }
}

/// `min(max(x, lo), hi)` with PyTorch's NaN rule: a NaN input or a NaN bound gives NaN. With
/// `lo > hi` every element becomes `hi`, as in PyTorch.
fn clamp_f(x: f64, lo: Option<f64>, hi: Option<f64>) -> f64 {
    let mut y = x;
    for (bound, is_lower) in [(lo, true), (hi, false)] {
        if let Some(b) = bound {
            if b.is_nan() || y.is_nan() {
                return f64::NAN;
            }
            if (is_lower && y < b) || (!is_lower && y > b) {
                y = b;
            }
        }
    }
    y
}

/// The unary ops PyTorch keeps integral on i64 (rounding ops are the identity there). Integer
/// overflow wraps, as it does in PyTorch, instead of panicking.
fn int_op(op: &'static str, u: UnaryOp, v: &[i64]) -> Result<Vec<i64>, InterpError> {
    let f: Box<dyn Fn(i64) -> i64> = match u {
        UnaryOp::Neg => Box::new(|x: i64| x.wrapping_neg()),
        UnaryOp::Abs => Box::new(|x: i64| x.wrapping_abs()),
        UnaryOp::Relu => Box::new(|x: i64| x.max(0)),
        UnaryOp::Sign => Box::new(|x: i64| x.signum()),
        UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => Box::new(|x| x),
        UnaryOp::Clamp { min, max } => {
            let lo = min.map(|b| int_bound(op, b)).transpose()?;
            let hi = max.map(|b| int_bound(op, b)).transpose()?;
            Box::new(move |x: i64| {
                let x = lo.map_or(x, |lo| x.max(lo));
                hi.map_or(x, |hi| x.min(hi))
            })
        }
        other => {
            return Err(unsupported(
                op,
                format!("`{}` is not computed on i64", other.name()),
            ))
        }
    };
    Ok(v.iter().map(|&x| f(x)).collect())
}

/// A clamp bound on i64 data must be an integer: with a fractional bound PyTorch promotes the
/// result to float, so an i64 output would mean the graph and PyTorch disagree.
fn int_bound(op: &'static str, b: f64) -> Result<i64, InterpError> {
    if b.fract() == 0.0 && b.abs() <= i64::MAX as f64 {
        Ok(b as i64)
    } else {
        Err(unsupported(op, format!("clamp bound {b} on i64 data")))
    }
}

// Expected values keep every digit the reference printed, so they can be matched against its
// output by eye; the compiler rounds them to the nearest representable value.
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    const XS: [f32; 8] = [-3.5, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 4.0];

    fn run(u: UnaryOp, x: &Tensor, out: DType) -> Tensor {
        unary(u.name(), u, &[x], out).unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-5 * w.abs().max(1e-3);
            assert!(ok, "got {got:?}, want {want:?}");
        }
    }

    fn check(u: UnaryOp, want: [f32; 8]) {
        let x = Tensor::f32(vec![8], XS.to_vec());
        assert_close(run(u, &x, DType::F32).as_f32().unwrap(), &want);
    }

    #[test]
    fn activations_match_pytorch() {
        // x = torch.tensor([-3.5,-1.0,-0.25,0.0,0.3,1.0,2.5,4.0]).double(); f(x).float().tolist()
        // Float64 is the reference because PyTorch's f32 GELU loses digits to cancellation in
        // 1 + erf(x/√2) at x = -3.5 (-0.00081433 instead of the exact -0.00081420178), and the
        // oracle is meant to be the more accurate of the two.
        check(
            UnaryOp::Sigmoid,
            [
                0.02931223, 0.26894143, 0.4378235, 0.5, 0.5744425, 0.7310586, 0.9241418, 0.98201376,
            ],
        );
        check(
            UnaryOp::Silu,
            [
                -0.10259281,
                -0.26894143,
                -0.10945588,
                0.0,
                0.17233276,
                0.7310586,
                2.3103545,
                3.928055,
            ],
        );
        check(
            UnaryOp::Hardswish,
            [
                -0.0,
                -0.33333334,
                -0.114583336,
                0.0,
                0.165,
                0.6666667,
                2.2916667,
                4.0,
            ],
        );
        check(
            UnaryOp::Hardsigmoid,
            [
                0.0, 0.33333334, 0.45833334, 0.5, 0.55, 0.6666667, 0.9166667, 1.0,
            ],
        );
        check(
            UnaryOp::Gelu { tanh: false },
            [
                -0.00081420178,
                -0.15865526,
                -0.10032342,
                0.0,
                0.18537344,
                0.8413448,
                2.4844759,
                3.9998734,
            ],
        );
        check(
            UnaryOp::Gelu { tanh: true },
            [
                -0.00061619765,
                -0.15880801,
                -0.100324646,
                0.0,
                0.18537094,
                0.841192,
                2.4849157,
                3.9999297,
            ],
        );
        // F.elu(x, 0.7)
        check(
            UnaryOp::Elu { alpha: 0.7 },
            [
                -0.67886186,
                -0.44248438,
                -0.15483946,
                0.0,
                0.3,
                1.0,
                2.5,
                4.0,
            ],
        );
        check(
            UnaryOp::Erf,
            [
                -0.9999993, -0.8427008, -0.2763264, 0.0, 0.32862678, 0.8427008, 0.999593, 1.0,
            ],
        );
        check(
            UnaryOp::LeakyRelu { slope: 0.1 },
            [-0.35, -0.1, -0.025, 0.0, 0.3, 1.0, 2.5, 4.0],
        );
    }

    #[test]
    fn round_is_half_to_even_and_sign_maps_nan_to_zero() {
        // torch.round(torch.tensor([0.5,1.5,2.5,-0.5,-2.5])) == [0,2,2,-0,-2]
        let x = Tensor::f32(vec![5], vec![0.5, 1.5, 2.5, -0.5, -2.5]);
        assert_eq!(
            run(UnaryOp::Round, &x, DType::F32).as_f32().unwrap(),
            &[0.0, 2.0, 2.0, -0.0, -2.0]
        );
        // torch.sign(torch.tensor([nan, -0.0, 2.0, -3.0])) == [0, 0, 1, -1]
        let x = Tensor::f32(vec![4], vec![f32::NAN, -0.0, 2.0, -3.0]);
        assert_eq!(
            run(UnaryOp::Sign, &x, DType::F32).as_f32().unwrap(),
            &[0.0, 0.0, 1.0, -1.0]
        );
    }

    #[test]
    fn clamp_and_relu_propagate_nan() {
        // torch.clamp(torch.tensor([nan, 1., 5.]), 2., 4.) == [nan, 2, 4]
        let x = Tensor::f32(vec![3], vec![f32::NAN, 1.0, 5.0]);
        let c = UnaryOp::Clamp {
            min: Some(2.0),
            max: Some(4.0),
        };
        assert_close(
            run(c, &x, DType::F32).as_f32().unwrap(),
            &[f32::NAN, 2.0, 4.0],
        );
        // torch.clamp(x, min=nan) is all NaN.
        let c = UnaryOp::Clamp {
            min: Some(f64::NAN),
            max: None,
        };
        assert!(run(c, &x, DType::F32)
            .as_f32()
            .unwrap()
            .iter()
            .all(|v| v.is_nan()));
        // min > max gives max everywhere.
        let c = UnaryOp::Clamp {
            min: Some(3.0),
            max: Some(1.0),
        };
        assert_eq!(run(c, &x, DType::F32).as_f32().unwrap()[1..], [1.0, 1.0]);
        let y = run(UnaryOp::Relu, &x, DType::F32);
        assert!(y.as_f32().unwrap()[0].is_nan());
        assert_eq!(y.as_f32().unwrap()[1..], [1.0, 5.0]);
    }

    #[test]
    fn integer_ops_stay_integral_and_wrap() {
        let x = Tensor::i64(vec![4], vec![i64::MIN, -3, 0, 5]);
        assert_eq!(
            run(UnaryOp::Neg, &x, DType::I64).as_i64().unwrap(),
            &[i64::MIN, 3, 0, -5]
        );
        assert_eq!(
            run(UnaryOp::Abs, &x, DType::I64).as_i64().unwrap(),
            &[i64::MIN, 3, 0, 5]
        );
        assert_eq!(
            run(UnaryOp::Sign, &x, DType::I64).as_i64().unwrap(),
            &[-1, -1, 0, 1]
        );
        // torch.clamp(torch.tensor([1,5,3]), min=2, max=4) == [2,4,3]
        let c = UnaryOp::Clamp {
            min: Some(2.0),
            max: Some(4.0),
        };
        let x = Tensor::i64(vec![3], vec![1, 5, 3]);
        assert_eq!(run(c, &x, DType::I64).as_i64().unwrap(), &[2, 4, 3]);
        let frac = UnaryOp::Clamp {
            min: Some(1.5),
            max: None,
        };
        assert!(unary("clamp", frac, &[&x], DType::I64).is_err());
        assert!(unary("exp", UnaryOp::Exp, &[&x], DType::I64).is_err());
        assert!(unary("neg", UnaryOp::Neg, &[&x], DType::Bool).is_err());
    }

    #[test]
    fn integer_input_is_cast_to_float_output() {
        // torch.sigmoid(torch.tensor([1, -2])) == [0.7310586, 0.11920292]
        let x = Tensor::i64(vec![2], vec![1, -2]);
        assert_close(
            run(UnaryOp::Sigmoid, &x, DType::F32).as_f32().unwrap(),
            &[0.7310586, 0.11920292],
        );
    }

    #[test]
    fn logical_not_uses_input_truthiness() {
        // torch.logical_not(torch.tensor([0., nan, 0.5])) == [True, False, False]
        let x = Tensor::f32(vec![3], vec![0.0, f32::NAN, 0.5]);
        assert_eq!(
            run(UnaryOp::LogicalNot, &x, DType::Bool).as_bool().unwrap(),
            &[true, false, false]
        );
        assert_eq!(
            run(UnaryOp::LogicalNot, &x, DType::F32).as_f32().unwrap(),
            &[1.0, 0.0, 0.0]
        );
    }
}
