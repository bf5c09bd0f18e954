//! Matrix-product kernels: Linear, MatMul (full torch.matmul semantics) and Addmm.
//! Invariant: every dot product is accumulated in f64 and rounded to f32 once.

use super::broadcast::{broadcast_map, broadcast_shapes};
use super::{f32_of, input_count, invalid, InterpError, Tensor};

/// `[n, k] · [k, m]` for row-major slices, accumulated in f64.
fn gemm(a: &[f32], b: &[f32], n: usize, k: usize, m: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            out[i * m + j] = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * m + j] as f64)
                .sum();
        }
    }
    out
}

pub fn linear(op: &'static str, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=3)?;
    let (x, w) = (inputs[0], inputs[1]);
    let (xv, wv) = (f32_of(op, "x", x)?, f32_of(op, "weight", w)?);
    let (Some(&k), &[m, wk]) = (x.shape.last(), &w.shape[..]) else {
        return Err(invalid(
            op,
            format!("x {:?}, weight {:?}", x.shape, w.shape),
        ));
    };
    if wk != k {
        return Err(invalid(
            op,
            format!("x {:?}, weight {:?}", x.shape, w.shape),
        ));
    }
    let bias = match inputs.get(2) {
        Some(b) if b.shape == [m] => Some(f32_of(op, "bias", b)?),
        Some(b) => return Err(invalid(op, format!("bias {:?} for {m} outputs", b.shape))),
        None => None,
    };
    let rows: usize = x.shape[..x.shape.len() - 1].iter().product();
    let mut out = Vec::with_capacity(rows * m);
    for r in 0..rows {
        for j in 0..m {
            let dot: f64 = (0..k)
                .map(|p| xv[r * k + p] as f64 * wv[j * k + p] as f64)
                .sum();
            out.push((dot + bias.map_or(0.0, |b| b[j] as f64)) as f32);
        }
    }
    let mut shape = x.shape.clone();
    *shape.last_mut().unwrap_or(&mut 0) = m;
    Ok(Tensor::f32(shape, out))
}

/// `torch.matmul`: a 1-d left operand becomes `[1, K]` and a 1-d right operand `[K, 1]`, the
/// leading (batch) dims broadcast, and the dims added for 1-d operands are removed again.
pub fn matmul(op: &'static str, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=2)?;
    let (a, b) = (inputs[0], inputs[1]);
    let (av, bv) = (f32_of(op, "a", a)?, f32_of(op, "b", b)?);
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err(invalid(op, "both operands need at least one dim"));
    }
    let a_shape = if a.shape.len() == 1 {
        vec![1, a.shape[0]]
    } else {
        a.shape.clone()
    };
    let b_shape = if b.shape.len() == 1 {
        vec![b.shape[0], 1]
    } else {
        b.shape.clone()
    };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (n, k, kb, m) = (
        a_shape[ra - 2],
        a_shape[ra - 1],
        b_shape[rb - 2],
        b_shape[rb - 1],
    );
    if k != kb {
        return Err(invalid(op, format!("{:?} @ {:?}", a.shape, b.shape)));
    }
    let batch = broadcast_shapes(op, &[&a_shape[..ra - 2], &b_shape[..rb - 2]])?;
    let a_batch = broadcast_map(op, &a_shape[..ra - 2], &batch)?;
    let b_batch = broadcast_map(op, &b_shape[..rb - 2], &batch)?;
    let mut out = Vec::with_capacity(a_batch.len() * n * m);
    for (&ia, &ib) in a_batch.iter().zip(&b_batch) {
        let am = &av[ia * n * k..(ia + 1) * n * k];
        let bm = &bv[ib * k * m..(ib + 1) * k * m];
        out.extend(gemm(am, bm, n, k, m).into_iter().map(|v| v as f32));
    }
    let mut shape = batch;
    if a.shape.len() > 1 {
        shape.push(n);
    }
    if b.shape.len() > 1 {
        shape.push(m);
    }
    Ok(Tensor::f32(shape, out))
}

/// `beta · bias + alpha · (a @ b)`. With `beta == 0` the bias is ignored entirely, so NaN or
/// inf in it does not leak into the result (PyTorch's documented behaviour).
pub fn addmm(
    op: &'static str,
    alpha: f64,
    beta: f64,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 3..=3)?;
    let (bias, a, b) = (inputs[0], inputs[1], inputs[2]);
    let (cv, av, bv) = (
        f32_of(op, "bias", bias)?,
        f32_of(op, "a", a)?,
        f32_of(op, "b", b)?,
    );
    let (&[n, k], &[kb, m]) = (&a.shape[..], &b.shape[..]) else {
        return Err(invalid(op, format!("{:?} @ {:?}", a.shape, b.shape)));
    };
    if k != kb {
        return Err(invalid(op, format!("{:?} @ {:?}", a.shape, b.shape)));
    }
    let bias_map = broadcast_map(op, &bias.shape, &[n, m])?;
    let prod = gemm(av, bv, n, k, m);
    let out = prod
        .iter()
        .zip(&bias_map)
        .map(|(&p, &i)| {
            let c = if beta == 0.0 {
                0.0
            } else {
                beta * cv[i] as f64
            };
            (c + alpha * p) as f32
        })
        .collect();
    Ok(Tensor::f32(vec![n, m], out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::testing::assert_close;

    fn range(shape: &[usize], scale: f32, offset: f32) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::f32(
            shape.to_vec(),
            (0..n).map(|i| i as f32 * scale + offset).collect(),
        )
    }

    #[test]
    fn matmul_2d_and_1d_operands() {
        // a = torch.arange(6.).reshape(2,3) - 2; b = torch.arange(12.).reshape(3,4) * 0.5
        let a = range(&[2, 3], 1.0, -2.0);
        let b = range(&[3, 4], 0.5, 0.0);
        let v = Tensor::f32(vec![3], vec![1.0, -1.0, 2.0]);
        let mm = |x: &Tensor, y: &Tensor| matmul("matmul", &[x, y]).unwrap();
        // (a @ b).flatten().tolist()
        assert_close(
            &mm(&a, &b),
            &[2, 4],
            &[-2.0, -3.5, -5.0, -6.5, 16.0, 19.0, 22.0, 25.0],
        );
        // torch.matmul(v, v) is 0-d; v @ b drops the row dim; a @ v drops the column dim.
        assert_close(&mm(&v, &v), &[], &[6.0]);
        assert_close(&mm(&v, &b), &[4], &[6.0, 7.0, 8.0, 9.0]);
        assert_close(&mm(&a, &v), &[2], &[-1.0, 5.0]);
        // v @ torch.arange(24.).reshape(2,3,4): the 1-d operand broadcasts over the batch.
        assert_close(
            &mm(&v, &range(&[2, 3, 4], 1.0, 0.0)),
            &[2, 4],
            &[12.0, 14.0, 16.0, 18.0, 36.0, 38.0, 40.0, 42.0],
        );
        assert!(matmul("matmul", &[&a, &a]).is_err());
    }

    #[test]
    fn matmul_broadcasts_batch_dims() {
        // torch.matmul(torch.arange(12.).reshape(2,1,2,3), torch.arange(18.).reshape(3,3,2) - 4)
        let a = range(&[2, 1, 2, 3], 1.0, 0.0);
        let b = range(&[3, 3, 2], 1.0, -4.0);
        assert_close(
            &matmul("matmul", &[&a, &b]).unwrap(),
            &[2, 3, 2, 2],
            &[
                -2.0, 1.0, -20.0, -8.0, 16.0, 19.0, 52.0, 64.0, 34.0, 37.0, 124.0, 136.0, -38.0,
                -17.0, -56.0, -26.0, 88.0, 109.0, 124.0, 154.0, 214.0, 235.0, 304.0, 334.0,
            ],
        );
    }

    #[test]
    fn linear_with_and_without_bias() {
        // F.linear(x, w, bias) with x = [[1,2],[3,4],[5,6]], w = [[1,0],[0.5,-1],[2,3]],
        // bias = [0.1,0.2,0.3]; and F.linear(x[0], w).
        let x = Tensor::f32(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let w = Tensor::f32(vec![3, 2], vec![1.0, 0.0, 0.5, -1.0, 2.0, 3.0]);
        let b = Tensor::f32(vec![3], vec![0.1, 0.2, 0.3]);
        assert_close(
            &linear("linear", &[&x, &w, &b]).unwrap(),
            &[3, 3],
            &[1.1, -1.3, 8.3, 3.1, -2.3, 18.3, 5.1, -3.3, 28.3],
        );
        let x0 = Tensor::f32(vec![2], vec![1.0, 2.0]);
        assert_close(
            &linear("linear", &[&x0, &w]).unwrap(),
            &[3],
            &[1.0, -1.5, 8.0],
        );
        assert!(linear("linear", &[&x, &w, &x0]).is_err());
    }

    #[test]
    fn addmm_scales_and_ignores_bias_when_beta_is_zero() {
        let a = range(&[2, 3], 1.0, -2.0);
        let b = range(&[3, 4], 0.5, 0.0);
        // torch.addmm(torch.tensor([1.,2.,3.,4.]), a, b, beta=0.5, alpha=2.)
        let c = Tensor::f32(vec![4], vec![1.0, 2.0, 3.0, 4.0]);
        let y = addmm("addmm", 2.0, 0.5, &[&c, &a, &b]).unwrap();
        assert_close(
            &y,
            &[2, 4],
            &[-3.5, -6.0, -8.5, -11.0, 32.5, 39.0, 45.5, 52.0],
        );
        // torch.addmm(torch.tensor([[nan],[1.]]), a, b, beta=0.) == a @ b
        let c = Tensor::f32(vec![2, 1], vec![f32::NAN, 1.0]);
        let y = addmm("addmm", 1.0, 0.0, &[&c, &a, &b]).unwrap();
        assert_close(
            &y,
            &[2, 4],
            &[-2.0, -3.5, -5.0, -6.5, 16.0, 19.0, 22.0, 25.0],
        );
    }

    #[test]
    fn accumulation_is_in_f64() {
        // 1e8 + 1 - 1e8 loses the 1 when summed in f32 but not in f64.
        let a = Tensor::f32(vec![1, 3], vec![1e8, 1.0, -1e8]);
        let b = Tensor::f32(vec![3, 1], vec![1.0, 1.0, 1.0]);
        assert_close(&matmul("matmul", &[&a, &b]).unwrap(), &[1, 1], &[1.0]);
    }
}
