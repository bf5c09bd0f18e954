//! Data-dependent indexing kernels: Take (numpy.take) and Gather (torch.gather).
//! Invariant: every index is range-checked against its dim before use; none can panic.

use super::broadcast::{dot, for_each_index, split_at_axis};
use super::select::select;
use super::{contiguous_strides, input_count, invalid, unsupported, InterpError, Tensor};

fn indices<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a [i64], InterpError> {
    t.as_i64()
        .ok_or_else(|| unsupported(op, format!("indices are {}, expected i64", t.dtype())))
}

pub fn take(op: &'static str, axis: usize, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=2)?;
    let (x, ix) = (inputs[0], inputs[1]);
    let ids = indices(op, ix)?;
    let (outer, len, inner) = split_at_axis(op, &x.shape, axis)?;
    // A negative index counts from the end once, as in PyTorch; anything else outside is an
    // error rather than a wrap.
    let wrapped: Vec<usize> = ids
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + len as i64 } else { i };
            if j < 0 || j >= len as i64 {
                Err(InterpError::IndexOutOfRange {
                    op,
                    index: i,
                    size: len,
                })
            } else {
                Ok(j as usize)
            }
        })
        .collect::<Result<_, _>>()?;
    let mut idx = Vec::with_capacity(outer * wrapped.len() * inner);
    for o in 0..outer {
        for &k in &wrapped {
            idx.extend((0..inner).map(|n| (o * len + k) * inner + n));
        }
    }
    let mut shape = x.shape[..axis].to_vec();
    shape.extend_from_slice(&ix.shape);
    shape.extend_from_slice(&x.shape[axis + 1..]);
    Ok(Tensor {
        shape,
        data: select(&x.data, &idx),
    })
}

pub fn gather(op: &'static str, axis: usize, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=2)?;
    let (x, ix) = (inputs[0], inputs[1]);
    let ids = indices(op, ix)?;
    split_at_axis(op, &x.shape, axis)?;
    let fits = ix.shape.len() == x.shape.len()
        && (0..x.shape.len()).all(|d| d == axis || ix.shape[d] <= x.shape[d]);
    if !fits {
        return Err(invalid(
            op,
            format!("index {:?} does not fit input {:?}", ix.shape, x.shape),
        ));
    }
    let strides = contiguous_strides(&x.shape);
    let len = x.shape[axis];
    let mut idx = Vec::with_capacity(ids.len());
    let mut err = None;
    let mut flat = 0;
    for_each_index(&ix.shape, |o| {
        let k = ids[flat];
        flat += 1;
        // torch.gather rejects negative indices instead of counting from the end.
        if k < 0 || k >= len as i64 {
            err.get_or_insert(InterpError::IndexOutOfRange {
                op,
                index: k,
                size: len,
            });
            return;
        }
        idx.push(dot(o, &strides) - o[axis] * strides[axis] + k as usize * strides[axis]);
    });
    if let Some(e) = err {
        return Err(e);
    }
    Ok(Tensor {
        shape: ix.shape.clone(),
        data: select(&x.data, &idx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_embeds_index_shape_and_wraps_negatives() {
        // Take along axis 1 of torch.arange(6).reshape(2,3) with [[2,-3],[0,1]] (-3 wraps to 0):
        // x[:, [[2,0],[0,1]]].tolist() == [[[2,0],[0,1]],[[5,3],[3,4]]]
        let x = Tensor::i64(vec![2, 3], (0..6).collect());
        let i = Tensor::i64(vec![2, 2], vec![2, -3, 0, 1]);
        let y = take("t", 1, &[&x, &i]).unwrap();
        assert_eq!(y.shape, vec![2, 2, 2]);
        assert_eq!(y.as_i64().unwrap(), &[2, 0, 0, 1, 5, 3, 3, 4]);
    }

    #[test]
    fn take_rejects_out_of_range() {
        let x = Tensor::f32(vec![3], vec![1.0, 2.0, 3.0]);
        for bad in [3, -4] {
            let i = Tensor::i64(vec![1], vec![bad]);
            assert!(matches!(
                take("t", 0, &[&x, &i]),
                Err(InterpError::IndexOutOfRange { index, size: 3, .. }) if index == bad
            ));
        }
        let f = Tensor::f32(vec![1], vec![0.0]);
        assert!(take("t", 0, &[&x, &f]).is_err());
    }

    #[test]
    fn gather_along_each_axis() {
        let x = Tensor::i64(vec![2, 3], vec![10, 11, 12, 13, 14, 15]);
        // torch.gather(x, 1, torch.tensor([[2,2],[0,1]])).tolist() == [[12,12],[13,14]]
        let i = Tensor::i64(vec![2, 2], vec![2, 2, 0, 1]);
        let y = gather("t", 1, &[&x, &i]).unwrap();
        assert_eq!(y, Tensor::i64(vec![2, 2], vec![12, 12, 13, 14]));
        // torch.gather(x, 0, torch.tensor([[1,0,1]])).tolist() == [[13,11,15]]
        let i = Tensor::i64(vec![1, 3], vec![1, 0, 1]);
        let y = gather("t", 0, &[&x, &i]).unwrap();
        assert_eq!(y, Tensor::i64(vec![1, 3], vec![13, 11, 15]));
        let i = Tensor::i64(vec![1, 1], vec![-1]);
        assert!(matches!(
            gather("t", 1, &[&x, &i]),
            Err(InterpError::IndexOutOfRange { index: -1, .. })
        ));
    }
}
