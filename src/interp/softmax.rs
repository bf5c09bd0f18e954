//! Softmax and log-softmax along one axis. Invariant: the line's max is subtracted before
//! exponentiating and the denominator is summed in f64.

use super::broadcast::split_at_axis;
use super::{f32_of, one_input, InterpError, Tensor};

pub fn softmax(
    op: &'static str,
    axis: usize,
    log: bool,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let xv = f32_of(op, "x", x)?;
    let (outer, len, inner) = split_at_axis(op, &x.shape, axis)?;
    let mut out = vec![0f32; xv.len()];
    for o in 0..outer {
        for n in 0..inner {
            let at = |k: usize| (o * len + k) * inner + n;
            // A NaN, once taken as the max, is never replaced (nothing compares greater), so it
            // turns the whole line into NaN, as in PyTorch.
            let max = (0..len)
                .map(|k| xv[at(k)] as f64)
                .fold(
                    f64::NEG_INFINITY,
                    |m, v| if v.is_nan() || v > m { v } else { m },
                );
            let sum: f64 = (0..len).map(|k| (xv[at(k)] as f64 - max).exp()).sum();
            for k in 0..len {
                let shifted = xv[at(k)] as f64 - max;
                out[at(k)] = if log {
                    (shifted - sum.ln()) as f32
                } else {
                    (shifted.exp() / sum) as f32
                };
            }
        }
    }
    Ok(Tensor::f32(x.shape.clone(), out))
}

// Expected values keep every digit the reference printed, so they can be matched against its
// output by eye; the compiler rounds them to the nearest representable value.
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (x, y) in got.iter().zip(want) {
            let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-5 * y.abs().max(1e-2);
            assert!(ok, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn softmax_and_log_softmax_last_axis() {
        // x = torch.tensor([[1.,2.,3.],[-1.,0.,1000.]]); torch.softmax(x,1), torch.log_softmax(x,1)
        let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, -1.0, 0.0, 1000.0]);
        let y = softmax("softmax", 1, false, &[&x]).unwrap();
        assert_close(
            y.as_f32().unwrap(),
            &[0.09003057, 0.24472848, 0.66524094, 0.0, 0.0, 1.0],
        );
        let y = softmax("log_softmax", 1, true, &[&x]).unwrap();
        assert_close(
            y.as_f32().unwrap(),
            &[-2.4076059, -1.4076059, -0.40760595, -1001.0, -1000.0, 0.0],
        );
        // torch.softmax(x, 0) walks the strided axis.
        let y = softmax("softmax", 0, false, &[&x]).unwrap();
        assert_close(
            y.as_f32().unwrap(),
            &[0.880797, 0.880797, 0.0, 0.11920292, 0.11920292, 1.0],
        );
    }

    #[test]
    fn all_negative_infinity_and_nan_give_nan() {
        // torch.softmax(torch.tensor([-inf, -inf]), 0) == [nan, nan]
        let x = Tensor::f32(vec![2], vec![f32::NEG_INFINITY; 2]);
        let y = softmax("softmax", 0, false, &[&x]).unwrap();
        assert!(y.as_f32().unwrap().iter().all(|v| v.is_nan()));
        let x = Tensor::f32(vec![3], vec![1.0, f32::NAN, 2.0]);
        let y = softmax("softmax", 0, false, &[&x]).unwrap();
        assert!(y.as_f32().unwrap().iter().all(|v| v.is_nan()));
        assert!(softmax("softmax", 1, false, &[&x]).is_err());
    }
}
