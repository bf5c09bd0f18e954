//! Reductions along axes (Reduce, Var, ArgReduce) and the prefix sum Cumsum.
//! Invariant: f32 data is accumulated in f64; i64 sums and products wrap as in PyTorch.

use super::broadcast::{dot, for_each_index, split_at_axis};
use super::{
    contiguous_strides, f32_of, invalid, one_input, unsupported, Data, InterpError, Tensor,
};
use crate::ir::{ArgOp, DType, ReduceOp};

/// Where each input element lands in a reduction over `axes` (empty: all axes): returns the
/// output shape and, per input element in row-major order, its output flat index.
fn reduction_map(
    op: &'static str,
    shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> Result<(Vec<usize>, Vec<usize>), InterpError> {
    let mut reduced = vec![axes.is_empty(); shape.len()];
    for &a in axes {
        if a >= shape.len() {
            return Err(invalid(op, format!("axis {a} for shape {shape:?}")));
        }
        reduced[a] = true;
    }
    let kept: Vec<usize> = shape
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    // A reduced dim contributes nothing to the output offset.
    let strides: Vec<usize> = contiguous_strides(&kept)
        .into_iter()
        .zip(&reduced)
        .map(|(s, &r)| if r { 0 } else { s })
        .collect();
    let mut map = Vec::with_capacity(shape.iter().product());
    for_each_index(shape, |i| map.push(dot(i, &strides)));
    let out_shape = if keepdim {
        kept
    } else {
        shape
            .iter()
            .zip(&reduced)
            .filter(|(_, &r)| !r)
            .map(|(&d, _)| d)
            .collect()
    };
    Ok((out_shape, map))
}

/// The elements that land in each output position, in input order.
fn groups<T: Copy>(values: &[T], map: &[usize], outputs: usize) -> Vec<Vec<T>> {
    let mut g = vec![Vec::new(); outputs];
    for (&v, &o) in values.iter().zip(map) {
        g[o].push(v);
    }
    g
}

/// Max or min that lets NaN win, as PyTorch's amax/amin do. Callers never pass an empty group
/// (that case is an error earlier), but NaN is the harmless answer if one did.
fn extreme_f(v: &[f64], max: bool) -> f64 {
    v.iter()
        .fold(v.first().copied().unwrap_or(f64::NAN), |m, &x| {
            if m.is_nan() || x.is_nan() {
                f64::NAN
            } else if max {
                m.max(x)
            } else {
                m.min(x)
            }
        })
}

pub fn reduce(
    op: &'static str,
    r: ReduceOp,
    axes: &[usize],
    keepdim: bool,
    inputs: &[&Tensor],
    out: DType,
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?.cast(out)?;
    let (shape, map) = reduction_map(op, &x.shape, axes, keepdim)?;
    let n_out: usize = shape.iter().product();
    let is_extreme = matches!(r, ReduceOp::Max | ReduceOp::Min);
    if is_extreme && x.numel() == 0 && n_out > 0 {
        return Err(invalid(
            op,
            "max/min over an empty dimension has no identity",
        ));
    }
    let data = match &x.data {
        Data::F32(v) => {
            let wide: Vec<f64> = v.iter().map(|&e| e as f64).collect();
            Data::F32(
                groups(&wide, &map, n_out)
                    .iter()
                    .map(|g| {
                        (match r {
                            ReduceOp::Sum => g.iter().sum(),
                            // An empty mean is 0/0 = NaN, as in PyTorch.
                            ReduceOp::Mean => g.iter().sum::<f64>() / g.len() as f64,
                            ReduceOp::Prod => g.iter().product(),
                            ReduceOp::Max => extreme_f(g, true),
                            ReduceOp::Min => extreme_f(g, false),
                        }) as f32
                    })
                    .collect(),
            )
        }
        Data::I64(v) => {
            let reduce_one = |g: &Vec<i64>| -> Result<i64, InterpError> {
                Ok(match r {
                    ReduceOp::Sum => g.iter().fold(0i64, |a, &b| a.wrapping_add(b)),
                    ReduceOp::Prod => g.iter().fold(1i64, |a, &b| a.wrapping_mul(b)),
                    ReduceOp::Max => g.iter().copied().max().unwrap_or(i64::MIN),
                    ReduceOp::Min => g.iter().copied().min().unwrap_or(i64::MAX),
                    ReduceOp::Mean => return Err(unsupported(op, "mean of i64")),
                })
            };
            Data::I64(
                groups(v, &map, n_out)
                    .iter()
                    .map(reduce_one)
                    .collect::<Result<_, _>>()?,
            )
        }
        Data::Bool(v) => {
            let reduce_one = |g: &Vec<bool>| -> Result<bool, InterpError> {
                match r {
                    ReduceOp::Max => Ok(g.iter().any(|&b| b)),
                    ReduceOp::Min => Ok(g.iter().all(|&b| b)),
                    _ => Err(unsupported(op, "only max and min reduce into bool")),
                }
            };
            Data::Bool(
                groups(v, &map, n_out)
                    .iter()
                    .map(reduce_one)
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    Ok(Tensor { shape, data })
}

/// Variance with `correction`; the divisor is `max(N − correction, 0)`, so too few elements
/// give inf or NaN exactly as PyTorch's does.
pub fn var(
    op: &'static str,
    axes: &[usize],
    correction: f64,
    keepdim: bool,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let xv = f32_of(op, "x", x)?;
    let (shape, map) = reduction_map(op, &x.shape, axes, keepdim)?;
    let wide: Vec<f64> = xv.iter().map(|&e| e as f64).collect();
    let out = groups(&wide, &map, shape.iter().product())
        .iter()
        .map(|g| {
            let n = g.len() as f64;
            let mean = g.iter().sum::<f64>() / n;
            let ss: f64 = g.iter().map(|v| (v - mean) * (v - mean)).sum();
            (ss / (n - correction).max(0.0)) as f32
        })
        .collect();
    Ok(Tensor::f32(shape, out))
}

/// Index of the first extreme along `axis` (or of the flattened tensor). NaN counts as the
/// extreme for both argmax and argmin, and the first NaN wins, as in PyTorch.
pub fn arg_reduce(
    op: &'static str,
    a: ArgOp,
    axis: Option<usize>,
    keepdim: bool,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let values: Vec<f64> = match &x.data {
        Data::F32(v) => v.iter().map(|&e| e as f64).collect(),
        Data::I64(_) => Vec::new(),
        Data::Bool(_) => return Err(unsupported(op, "arg-reduction of bool")),
    };
    let (flat_shape, ax) = match axis {
        Some(ax) => (x.shape.clone(), ax),
        None => (vec![x.numel()], 0),
    };
    let (outer, len, inner) = split_at_axis(op, &flat_shape, ax)?;
    if len == 0 {
        return Err(invalid(op, "arg-reduction over an empty dimension"));
    }
    let better = |cand: usize, best: usize| -> bool {
        match &x.data {
            Data::I64(v) => match a {
                ArgOp::Max => v[cand] > v[best],
                ArgOp::Min => v[cand] < v[best],
            },
            _ => {
                let (c, b) = (values[cand], values[best]);
                if b.is_nan() {
                    false
                } else if c.is_nan() {
                    true
                } else {
                    match a {
                        ArgOp::Max => c > b,
                        ArgOp::Min => c < b,
                    }
                }
            }
        }
    };
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for n in 0..inner {
            let at = |k: usize| (o * len + k) * inner + n;
            let mut best = 0;
            for k in 1..len {
                if better(at(k), at(best)) {
                    best = k;
                }
            }
            out.push(best as i64);
        }
    }
    let shape = match (axis, keepdim) {
        (None, false) => vec![],
        (None, true) => vec![1; x.shape.len()],
        (Some(ax), true) => {
            let mut s = x.shape.clone();
            s[ax] = 1;
            s
        }
        (Some(ax), false) => {
            let mut s = x.shape.clone();
            s.remove(ax);
            s
        }
    };
    Ok(Tensor::i64(shape, out))
}

/// Inclusive prefix sum along `axis`, after casting to the output dtype.
pub fn cumsum(
    op: &'static str,
    axis: usize,
    inputs: &[&Tensor],
    out: DType,
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?.cast(out)?;
    let (outer, len, inner) = split_at_axis(op, &x.shape, axis)?;
    let lines = (0..outer).flat_map(|o| (0..inner).map(move |n| (o, n)));
    let data = match &x.data {
        Data::F32(v) => {
            let mut y = vec![0f32; v.len()];
            for (o, n) in lines {
                let mut acc = 0f64;
                for k in 0..len {
                    let i = (o * len + k) * inner + n;
                    acc += v[i] as f64;
                    y[i] = acc as f32;
                }
            }
            Data::F32(y)
        }
        Data::I64(v) => {
            let mut y = vec![0i64; v.len()];
            for (o, n) in lines {
                let mut acc = 0i64;
                for k in 0..len {
                    let i = (o * len + k) * inner + n;
                    acc = acc.wrapping_add(v[i]);
                    y[i] = acc;
                }
            }
            Data::I64(y)
        }
        Data::Bool(_) => return Err(unsupported(op, "cumulative sum into bool")),
    };
    Ok(Tensor {
        shape: x.shape,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::testing::assert_values_close;

    /// `torch.arange(24.).reshape(2,3,4) * 0.5 - 3`.
    fn x24() -> Tensor {
        Tensor::f32(
            vec![2, 3, 4],
            (0..24).map(|i| i as f32 * 0.5 - 3.0).collect(),
        )
    }

    #[test]
    fn sum_mean_prod_max_with_keepdim() {
        let x = x24();
        // torch.mean(x, (1,)) has shape [2, 4].
        let y = reduce("mean", ReduceOp::Mean, &[1], false, &[&x], DType::F32).unwrap();
        assert_eq!(y.shape, vec![2, 4]);
        assert_values_close(
            y.as_f32().unwrap(),
            &[-1.0, -0.5, 0.0, 0.5, 5.0, 5.5, 6.0, 6.5],
        );
        // torch.sum(x, (0, 2), keepdim=True).flatten() == [6, 22, 38]
        let y = reduce("sum", ReduceOp::Sum, &[0, 2], true, &[&x], DType::F32).unwrap();
        assert_eq!(y.shape, vec![1, 3, 1]);
        assert_values_close(y.as_f32().unwrap(), &[6.0, 22.0, 38.0]);
        // Empty axes reduce everything: torch.amax(x) == 8.5.
        let y = reduce("amax", ReduceOp::Max, &[], false, &[&x], DType::F32).unwrap();
        assert_eq!(y, Tensor::f32(vec![], vec![8.5]));
        let first = Tensor::f32(vec![3, 4], x.as_f32().unwrap()[..12].to_vec());
        // torch.prod(x[0], 1) == [22.5, 0.0, 7.5]
        let y = reduce("prod", ReduceOp::Prod, &[1], false, &[&first], DType::F32).unwrap();
        assert_values_close(y.as_f32().unwrap(), &[22.5, 0.0, 7.5]);
    }

    #[test]
    fn sum_of_bool_is_i64_and_max_propagates_nan() {
        // torch.sum(torch.tensor([True, True, False])) == 2 (int64)
        let b = Tensor::bool(vec![3], vec![true, true, false]);
        let y = reduce("sum", ReduceOp::Sum, &[], false, &[&b], DType::I64).unwrap();
        assert_eq!(y, Tensor::i64(vec![], vec![2]));
        let y = reduce("amax", ReduceOp::Max, &[0], false, &[&b], DType::Bool).unwrap();
        assert_eq!(y, Tensor::bool(vec![], vec![true]));
        let x = Tensor::f32(vec![3], vec![1.0, f32::NAN, 2.0]);
        let y = reduce("amin", ReduceOp::Min, &[0], false, &[&x], DType::F32).unwrap();
        assert!(y.as_f32().unwrap()[0].is_nan());
        let e = Tensor::f32(vec![2, 0], vec![]);
        assert!(reduce("amax", ReduceOp::Max, &[1], false, &[&e], DType::F32).is_err());
        let y = reduce("sum", ReduceOp::Sum, &[1], false, &[&e], DType::F32).unwrap();
        assert_eq!(y, Tensor::f32(vec![2], vec![0.0, 0.0]));
        let i = Tensor::i64(vec![2], vec![i64::MAX, 1]);
        let y = reduce("sum", ReduceOp::Sum, &[], false, &[&i], DType::I64).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[i64::MIN]);
        assert!(reduce("mean", ReduceOp::Mean, &[], false, &[&i], DType::I64).is_err());
    }

    #[test]
    fn variance_with_correction() {
        let x = x24();
        // torch.var(x, (0,2), correction=1, keepdim=True).flatten() == [10.642858] * 3
        let y = var("var", &[0, 2], 1.0, true, &[&x]).unwrap();
        assert_eq!(y.shape, vec![1, 3, 1]);
        assert_values_close(y.as_f32().unwrap(), &[10.642858, 10.642858, 10.642858]);
        // torch.var(x, correction=0) == 11.979167
        let y = var("var", &[], 0.0, false, &[&x]).unwrap();
        assert_values_close(y.as_f32().unwrap(), &[11.979167]);
        // torch.var(torch.tensor([1.,2.]), correction=3) == inf; a single element with
        // correction 1 gives nan.
        let two = Tensor::f32(vec![2], vec![1.0, 2.0]);
        let y = var("var", &[], 3.0, false, &[&two]).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[f32::INFINITY]);
        let one = Tensor::f32(vec![1], vec![1.0]);
        assert!(var("var", &[], 1.0, false, &[&one])
            .unwrap()
            .as_f32()
            .unwrap()[0]
            .is_nan());
    }

    #[test]
    fn argmax_ties_take_the_first_and_nan_wins() {
        // torch.argmax(torch.tensor([[1.,3.,3.],[2.,2.,0.]]), dim=1) == [1, 0]; dim=0 == [1,0,0]
        let x = Tensor::f32(vec![2, 3], vec![1.0, 3.0, 3.0, 2.0, 2.0, 0.0]);
        let y = arg_reduce("argmax", ArgOp::Max, Some(1), false, &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![2], vec![1, 0]));
        let y = arg_reduce("argmax", ArgOp::Max, Some(0), false, &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![3], vec![1, 0, 0]));
        // torch.argmin(torch.tensor([[1.,3.,3.],[0.,2.,0.]]), dim=1, keepdim=True) == [[0],[0]]
        let x = Tensor::f32(vec![2, 3], vec![1.0, 3.0, 3.0, 0.0, 2.0, 0.0]);
        let y = arg_reduce("argmin", ArgOp::Min, Some(1), true, &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![2, 1], vec![0, 0]));
        // torch.argmax(torch.tensor([[1,3],[3,0]]), keepdim=True) has shape [1,1] and value 1.
        let i = Tensor::i64(vec![2, 2], vec![1, 3, 3, 0]);
        let y = arg_reduce("argmax", ArgOp::Max, None, true, &[&i]).unwrap();
        assert_eq!(y, Tensor::i64(vec![1, 1], vec![1]));
        // torch.argmax / argmin of [1, nan, 3, nan] (resp. [1, nan, 0, nan]) both give 1.
        let x = Tensor::f32(vec![4], vec![1.0, f32::NAN, 3.0, f32::NAN]);
        let y = arg_reduce("argmax", ArgOp::Max, None, false, &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![], vec![1]));
        let x = Tensor::f32(vec![4], vec![1.0, f32::NAN, 0.0, f32::NAN]);
        let y = arg_reduce("argmin", ArgOp::Min, Some(0), false, &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![], vec![1]));
    }

    #[test]
    fn cumsum_along_each_axis() {
        // torch.cumsum(torch.tensor([[1.,2.,3.],[4.,5.,6.]]), 0) == [[1,2,3],[5,7,9]]
        let x = Tensor::f32(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let y = cumsum("cumsum", 0, &[&x], DType::F32).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[1.0, 2.0, 3.0, 5.0, 7.0, 9.0]);
        let y = cumsum("cumsum", 1, &[&x], DType::F32).unwrap();
        assert_eq!(y.as_f32().unwrap(), &[1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
        // torch.cumsum(torch.tensor([True, False, True]), 0) == [1, 1, 2] (int64)
        let b = Tensor::bool(vec![3], vec![true, false, true]);
        let y = cumsum("cumsum", 0, &[&b], DType::I64).unwrap();
        assert_eq!(y, Tensor::i64(vec![3], vec![1, 1, 2]));
    }
}
