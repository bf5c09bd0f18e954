//! Data-movement kernels: Reshape, Permute, Expand, Tile, Concat, Slice, Pad, Triangle.
//! Invariant: outputs hold input elements (or the pad/zero fill) unchanged, in row-major order.

use super::broadcast::{broadcast_map, dot, for_each_index, split_at_axis};
use super::select::{select, select_from_parts, select_or};
use super::{contiguous_strides, invalid, one_input, InterpError, Tensor};
use crate::ir::DType;

pub fn reshape(
    op: &'static str,
    shape: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    if shape.iter().product::<usize>() != x.numel() {
        return Err(invalid(
            op,
            format!("cannot reshape {:?} to {shape:?}", x.shape),
        ));
    }
    Ok(Tensor {
        shape: shape.to_vec(),
        data: x.data.clone(),
    })
}

pub fn permute(
    op: &'static str,
    perm: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if sorted != (0..x.shape.len()).collect::<Vec<_>>() {
        return Err(invalid(
            op,
            format!("{perm:?} is not a permutation of the dims of {:?}", x.shape),
        ));
    }
    let in_strides = contiguous_strides(&x.shape);
    // Walking the output index, output dim i advances input dim perm[i].
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let mut idx = Vec::with_capacity(x.numel());
    for_each_index(&shape, |i| idx.push(dot(i, &strides)));
    Ok(Tensor {
        shape,
        data: select(&x.data, &idx),
    })
}

pub fn expand(
    op: &'static str,
    shape: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let idx = broadcast_map(op, &x.shape, shape)?;
    Ok(Tensor {
        shape: shape.to_vec(),
        data: select(&x.data, &idx),
    })
}

pub fn tile(
    op: &'static str,
    repeats: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    if repeats.len() < x.shape.len() {
        return Err(invalid(
            op,
            format!(
                "{} repeats for a rank-{} input",
                repeats.len(),
                x.shape.len()
            ),
        ));
    }
    let mut in_shape = vec![1; repeats.len() - x.shape.len()];
    in_shape.extend_from_slice(&x.shape);
    let shape: Vec<usize> = in_shape.iter().zip(repeats).map(|(d, r)| d * r).collect();
    let strides = contiguous_strides(&in_shape);
    let mut idx = Vec::with_capacity(shape.iter().product());
    for_each_index(&shape, |o| {
        idx.push(
            o.iter()
                .zip(&in_shape)
                .zip(&strides)
                .map(|((&o, &d), &s)| (o % d) * s)
                .sum(),
        )
    });
    Ok(Tensor {
        shape,
        data: select(&x.data, &idx),
    })
}

/// `torch.cat`: inputs are promoted to the recorded output dtype first, and 1-d empty inputs are
/// skipped whatever their rank, as PyTorch still accepts them for backward compatibility.
pub fn concat(
    op: &'static str,
    axis: usize,
    inputs: &[&Tensor],
    dtype: DType,
) -> Result<Tensor, InterpError> {
    let Some(first) = inputs.iter().find(|t| t.shape != [0]).or(inputs.first()) else {
        return Err(invalid(op, "needs at least one input"));
    };
    let rank = first.shape.len();
    let parts: Vec<Tensor> = inputs
        .iter()
        .filter(|t| rank == 1 || t.shape != [0])
        .map(|t| t.cast(dtype))
        .collect::<Result<_, _>>()?;
    let (outer, _, inner) = split_at_axis(op, &first.shape, axis)?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for p in &parts {
        let same_rest =
            p.shape.len() == rank && (0..rank).all(|d| d == axis || p.shape[d] == first.shape[d]);
        if !same_rest {
            return Err(invalid(
                op,
                format!(
                    "{:?} does not match {:?} off axis {axis}",
                    p.shape, first.shape
                ),
            ));
        }
        shape[axis] += p.shape[axis];
    }
    let mut idx = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for (k, p) in parts.iter().enumerate() {
            let chunk = p.shape[axis] * inner;
            idx.extend((o * chunk..(o + 1) * chunk).map(|i| (k, i)));
        }
    }
    let data = if parts.is_empty() {
        select(&first.cast(dtype)?.data, &[])
    } else {
        select_from_parts(&parts, &idx).ok_or_else(|| invalid(op, "inputs disagree on dtype"))?
    };
    Ok(Tensor { shape, data })
}

pub fn slice(
    op: &'static str,
    axis: usize,
    start: usize,
    end: usize,
    step: usize,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let (outer, len, inner) = split_at_axis(op, &x.shape, axis)?;
    if step == 0 || end > len {
        return Err(invalid(
            op,
            format!("slice {start}..{end} step {step} of a dim of size {len}"),
        ));
    }
    let picked: Vec<usize> = (start..end).step_by(step).collect();
    let mut idx = Vec::with_capacity(outer * picked.len() * inner);
    for o in 0..outer {
        for &k in &picked {
            idx.extend((0..inner).map(|n| (o * len + k) * inner + n));
        }
    }
    let mut shape = x.shape.clone();
    shape[axis] = picked.len();
    Ok(Tensor {
        shape,
        data: select(&x.data, &idx),
    })
}

pub fn pad(
    op: &'static str,
    pads: &[(i64, i64)],
    value: f64,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    if pads.len() != x.shape.len() {
        return Err(invalid(
            op,
            format!(
                "{} pad pairs for a rank-{} input",
                pads.len(),
                x.shape.len()
            ),
        ));
    }
    let mut shape = Vec::with_capacity(pads.len());
    for (&d, &(before, after)) in x.shape.iter().zip(pads) {
        let size = d as i64 + before + after;
        if size < 0 {
            return Err(invalid(
                op,
                format!("padding ({before}, {after}) leaves a dim of size {d} negative"),
            ));
        }
        shape.push(size as usize);
    }
    let strides = contiguous_strides(&x.shape);
    let mut idx = Vec::with_capacity(shape.iter().product());
    for_each_index(&shape, |o| {
        let mut flat = 0;
        for d in 0..o.len() {
            // Output position o sits at input position o - before; outside the input is fill.
            let src = o[d] as i64 - pads[d].0;
            if src < 0 || src >= x.shape[d] as i64 {
                idx.push(None);
                return;
            }
            flat += src as usize * strides[d];
        }
        idx.push(Some(flat));
    });
    Ok(Tensor {
        shape,
        data: select_or(&x.data, &idx, value),
    })
}

pub fn triangle(
    op: &'static str,
    upper: bool,
    diagonal: i64,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let r = x.shape.len();
    if r < 2 {
        return Err(invalid(op, format!("needs rank >= 2, got {:?}", x.shape)));
    }
    let mut idx = Vec::with_capacity(x.numel());
    let mut flat = 0;
    for_each_index(&x.shape, |o| {
        let offset = o[r - 1] as i64 - o[r - 2] as i64;
        let keep = if upper {
            offset >= diagonal
        } else {
            offset <= diagonal
        };
        idx.push(keep.then_some(flat));
        flat += 1;
    });
    Ok(Tensor {
        shape: x.shape.clone(),
        data: select_or(&x.data, &idx, 0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arange(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::i64(shape.to_vec(), (0..n as i64).collect())
    }

    #[test]
    fn reshape_keeps_order_and_checks_numel() {
        let x = arange(&[2, 3]);
        let y = reshape("t", &[3, 2], &[&x]).unwrap();
        assert_eq!(y, Tensor::i64(vec![3, 2], vec![0, 1, 2, 3, 4, 5]));
        assert!(reshape("t", &[4], &[&x]).is_err());
    }

    #[test]
    fn permute_3d() {
        // torch.arange(24).reshape(2,3,4).permute(2,0,1).flatten().tolist()
        let y = permute("t", &[2, 0, 1], &[&arange(&[2, 3, 4])]).unwrap();
        assert_eq!(y.shape, vec![4, 2, 3]);
        assert_eq!(
            y.as_i64().unwrap(),
            &[
                0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19,
                23
            ]
        );
        assert!(permute("t", &[0, 0, 1], &[&arange(&[2, 3, 4])]).is_err());
    }

    #[test]
    fn expand_adds_leading_dims() {
        let y = expand("t", &[2, 2, 3], &[&arange(&[2, 1])]).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn tile_pads_rank_like_tensor_repeat() {
        // torch.arange(3).repeat(2, 2).tolist()
        let y = tile("t", &[2, 2], &[&arange(&[3])]).unwrap();
        assert_eq!(y.shape, vec![2, 6]);
        assert_eq!(y.as_i64().unwrap(), &[0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
        // torch.arange(4).reshape(2,2).repeat(1,3,1): [[[0,1],[2,3],[0,1],[2,3],[0,1],[2,3]]]
        let y = tile("t", &[1, 3, 1], &[&arange(&[2, 2])]).unwrap();
        assert_eq!(y.shape, vec![1, 6, 2]);
        assert_eq!(y.as_i64().unwrap(), &[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn concat_middle_axis_promotes_and_skips_legacy_empty() {
        let a = arange(&[2, 1, 2]);
        let b = Tensor::f32(vec![2, 2, 2], vec![0.5; 8]);
        let e = Tensor::f32(vec![0], vec![]);
        let y = concat("t", 1, &[&a, &e, &b], DType::F32).unwrap();
        assert_eq!(y.shape, vec![2, 3, 2]);
        assert_eq!(
            y.as_f32().unwrap(),
            &[0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 2.0, 3.0, 0.5, 0.5, 0.5, 0.5]
        );
        assert!(concat("t", 1, &[&a, &arange(&[3, 1, 2])], DType::I64).is_err());
    }

    #[test]
    fn slice_with_step() {
        // torch.arange(12).reshape(2,6)[:, 1:6:2].tolist() == [[1,3,5],[7,9,11]]
        let y = slice("t", 1, 1, 6, 2, &[&arange(&[2, 6])]).unwrap();
        assert_eq!(y, Tensor::i64(vec![2, 3], vec![1, 3, 5, 7, 9, 11]));
        let y = slice("t", 0, 2, 1, 1, &[&arange(&[2, 6])]).unwrap();
        assert_eq!(y.shape, vec![0, 6]);
        assert!(slice("t", 1, 0, 7, 1, &[&arange(&[2, 6])]).is_err());
        assert!(slice("t", 1, 0, 6, 0, &[&arange(&[2, 6])]).is_err());
    }

    #[test]
    fn pad_and_crop() {
        // F.pad(torch.arange(6).reshape(2,3), (-1, 2, 1, 0), value=9).tolist()
        // == [[9,9,9,9],[1,2,9,9],[4,5,9,9]]
        let y = pad("t", &[(1, 0), (-1, 2)], 9.0, &[&arange(&[2, 3])]).unwrap();
        assert_eq!(y.shape, vec![3, 4]);
        assert_eq!(y.as_i64().unwrap(), &[9, 9, 9, 9, 1, 2, 9, 9, 4, 5, 9, 9]);
        assert!(pad("t", &[(0, 0), (-2, -2)], 0.0, &[&arange(&[2, 3])]).is_err());
    }

    #[test]
    fn tril_and_triu_with_offsets() {
        let x = arange(&[3, 4]);
        // torch.arange(12).reshape(3,4).tril(-1).flatten().tolist()
        let y = triangle("t", false, -1, &[&x]).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0]);
        // torch.arange(12).reshape(3,4).triu(1).flatten().tolist()
        let y = triangle("t", true, 1, &[&x]).unwrap();
        assert_eq!(y.as_i64().unwrap(), &[0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11]);
        let b = Tensor::bool(vec![1, 2, 2], vec![true; 4]);
        let y = triangle("t", false, 0, &[&b]).unwrap();
        assert_eq!(y.as_bool().unwrap(), &[true, false, true, true]);
    }
}
