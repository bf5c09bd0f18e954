//! Scaled dot-product attention with causal masking, bool or additive float masks and scale.
//! Invariant: scores, softmax and the weighted sum of values are computed in f64 per row, and a
//! row with every score at −inf yields zeros (PyTorch's safe softmax), not NaN.

use super::broadcast::{broadcast_map, broadcast_shapes};
use super::{f32_of, input_count, invalid, unsupported, Data, InterpError, Tensor};

pub fn sdpa(
    op: &'static str,
    causal: bool,
    scale: Option<f64>,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 3..=4)?;
    let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
    let (qv, kv, vv) = (
        f32_of(op, "q", q)?,
        f32_of(op, "k", k)?,
        f32_of(op, "v", v)?,
    );
    let bad = || {
        invalid(
            op,
            format!("q {:?}, k {:?}, v {:?}", q.shape, k.shape, v.shape),
        )
    };
    let (rq, rk, rv) = (q.shape.len(), k.shape.len(), v.shape.len());
    if rq < 2 || rk < 2 || rv < 2 {
        return Err(bad());
    }
    let (l, e) = (q.shape[rq - 2], q.shape[rq - 1]);
    let (s, ek) = (k.shape[rk - 2], k.shape[rk - 1]);
    let (sv, ev) = (v.shape[rv - 2], v.shape[rv - 1]);
    if e != ek || s != sv {
        return Err(bad());
    }
    let mask = inputs.get(3).copied();
    // The mask's own leading dims take part in the batch broadcast like q's, k's and v's.
    let mask_batch: &[usize] = mask.map_or(&[], |m| &m.shape[..m.shape.len().saturating_sub(2)]);
    let batch = broadcast_shapes(
        op,
        &[
            &q.shape[..rq - 2],
            &k.shape[..rk - 2],
            &v.shape[..rv - 2],
            mask_batch,
        ],
    )?;
    let q_map = broadcast_map(op, &q.shape[..rq - 2], &batch)?;
    let k_map = broadcast_map(op, &k.shape[..rk - 2], &batch)?;
    let v_map = broadcast_map(op, &v.shape[..rv - 2], &batch)?;
    let mut score_shape = batch.clone();
    score_shape.extend([l, s]);
    // Per score position: the bias to add (−inf masks it out).
    let bias: Option<Vec<f64>> = match mask {
        None => None,
        Some(m) => {
            let map = broadcast_map(op, &m.shape, &score_shape)?;
            Some(match &m.data {
                Data::Bool(b) => map
                    .iter()
                    .map(|&i| if b[i] { 0.0 } else { f64::NEG_INFINITY })
                    .collect(),
                Data::F32(f) => map.iter().map(|&i| f[i] as f64).collect(),
                Data::I64(_) => return Err(unsupported(op, "an i64 attention mask")),
            })
        }
    };
    let scale = scale.unwrap_or(1.0 / (e as f64).sqrt());

    let mut out = Vec::with_capacity(q_map.len() * l * ev);
    let mut scores = vec![0f64; s];
    for b in 0..q_map.len() {
        let (qb, kb, vb) = (q_map[b] * l * e, k_map[b] * s * e, v_map[b] * s * ev);
        for i in 0..l {
            for (j, score) in scores.iter_mut().enumerate() {
                let dot: f64 = (0..e)
                    .map(|c| qv[qb + i * e + c] as f64 * kv[kb + j * e + c] as f64)
                    .sum();
                let mut x = dot * scale;
                // Causal keeps j ≤ i over [L, S], aligned at the top-left like
                // torch.ones(L, S).tril().
                if causal && j > i {
                    x = f64::NEG_INFINITY;
                }
                if let Some(bias) = &bias {
                    x += bias[(b * l + i) * s + j];
                }
                *score = x;
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let any_nan = scores.iter().any(|x| x.is_nan());
            if max == f64::NEG_INFINITY && !any_nan {
                out.extend(std::iter::repeat_n(0.0, ev));
                continue;
            }
            let weights: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
            let total: f64 = weights.iter().sum();
            for c in 0..ev {
                let acc: f64 = weights
                    .iter()
                    .enumerate()
                    .map(|(j, w)| w * vv[vb + j * ev + c] as f64)
                    .sum();
                out.push((acc / total) as f32);
            }
        }
    }
    let mut shape = batch;
    shape.extend([l, ev]);
    Ok(Tensor::f32(shape, out))
}

// Expected values keep every digit the reference printed, so they can be matched against its
// output by eye; the compiler rounds them to the nearest representable value.
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::interp::testing::{assert_close, pattern};

    /// q, k, v whose batch dims [2,1], [1,2] and [2,2] broadcast to [2,2], with L=3, S=5.
    fn qkv() -> (Tensor, Tensor, Tensor) {
        (
            pattern(&[2, 1, 3, 4], 0),
            pattern(&[1, 2, 5, 4], 1),
            pattern(&[2, 2, 5, 3], 2),
        )
    }

    #[test]
    fn causal_with_broadcast_batch_and_more_keys_than_queries() {
        // F.scaled_dot_product_attention(q, k, v, is_causal=True)
        let (q, k, v) = qkv();
        let y = sdpa("sdpa", true, None, &[&q, &k, &v]).unwrap();
        assert_close(
            &y,
            &[2, 2, 3, 3],
            &[
                0.5,
                0.0,
                -0.5,
                -0.07736823,
                0.28868413,
                -0.2113159,
                0.00060224161,
                0.010293528,
                -0.010895774,
                -0.25,
                -0.75,
                1.0,
                0.2889458,
                -0.21105422,
                -0.07789156,
                -0.23215193,
                0.098062575,
                0.13408935,
                -1.0,
                0.75,
                0.25,
                -0.4471314,
                -0.3557372,
                0.8028687,
                -0.061663806,
                -0.17861326,
                0.24027708,
                0.5,
                0.0,
                -0.5,
                -0.2148695,
                0.35743478,
                -0.14256528,
                -0.18575576,
                -0.0071801096,
                0.19293588,
            ],
        );
    }

    #[test]
    fn bool_mask_with_a_fully_masked_row_and_explicit_scale() {
        // m = [[T,F,T,T,F],[F,F,F,F,F],[T,T,F,T,T]];
        // F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.7): row 1 is all zeros.
        let (q, k, v) = qkv();
        let m = Tensor::bool(
            vec![3, 5],
            [1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1]
                .iter()
                .map(|&b| b == 1)
                .collect(),
        );
        let y = sdpa("sdpa", false, Some(0.7), &[&q, &k, &v, &m]).unwrap();
        assert_close(
            &y,
            &[2, 2, 3, 3],
            &[
                0.314226,
                -0.18577401,
                -0.12845199,
                0.0,
                0.0,
                0.0,
                0.09616806,
                0.20191596,
                -0.298084,
                -0.74352026,
                0.23704055,
                0.50647974,
                0.0,
                0.0,
                0.0,
                0.13162273,
                -0.36837727,
                0.23675454,
                -0.7298167,
                0.61490834,
                0.11490833,
                0.0,
                0.0,
                0.0,
                -0.47199863,
                -0.3060027,
                0.7780013,
                0.35359105,
                -0.14640896,
                -0.20718208,
                0.0,
                0.0,
                0.0,
                -0.204601,
                0.35230052,
                -0.1476995,
            ],
        );
    }

    #[test]
    fn additive_float_mask_broadcast_over_heads_and_queries() {
        // F.scaled_dot_product_attention(q, k, v, attn_mask=pattern((2,1,1,5),3))
        let (q, k, v) = qkv();
        let m = pattern(&[2, 1, 1, 5], 3);
        let y = sdpa("sdpa", false, None, &[&q, &k, &v, &m]).unwrap();
        assert_close(
            &y,
            &[2, 2, 3, 3],
            &[
                -0.41860569,
                0.20018943,
                0.21841624,
                -0.41048926,
                0.17594486,
                0.23454438,
                -0.39608809,
                0.17922997,
                0.21685809,
                -0.050949171,
                0.15183604,
                -0.10088687,
                -0.086711809,
                0.17248374,
                -0.085771933,
                -0.018872693,
                -0.12379557,
                0.14266825,
                -0.73065674,
                0.42471936,
                0.30593735,
                -0.3033728,
                -0.11308833,
                0.41646114,
                -0.30614832,
                -0.078916341,
                0.38506466,
                -0.16282436,
                0.16669786,
                -0.0038734861,
                -0.062149819,
                0.13293427,
                -0.070784442,
                -0.035585195,
                0.11428807,
                -0.078702874,
            ],
        );
    }

    #[test]
    fn causal_without_batch_dims_and_more_queries_than_keys() {
        // F.scaled_dot_product_attention(pattern((4,2),4), pattern((3,2),5), pattern((3,1),6),
        //                                is_causal=True)
        let (q, k, v) = (
            pattern(&[4, 2], 4),
            pattern(&[3, 2], 5),
            pattern(&[3, 1], 6),
        );
        let y = sdpa("sdpa", true, None, &[&q, &k, &v]).unwrap();
        assert_close(&y, &[4, 1], &[-1.0, -0.5499292, 0.088917054, 0.042606309]);
        assert!(sdpa("sdpa", true, None, &[&q, &q, &v]).is_err());
    }
}
