//! Element selection by flat index, the primitive every data-movement kernel is built on.
//! Invariant: selection never changes an element's value or dtype, only where it sits.

use super::{Data, Tensor};

/// The elements of `data` at `idx`, in that order.
pub fn select(data: &Data, idx: &[usize]) -> Data {
    match data {
        Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(idx.iter().map(|&i| v[i]).collect()),
        Data::Bool(v) => Data::Bool(idx.iter().map(|&i| v[i]).collect()),
    }
}

/// Like [`select`], but `None` positions hold `fill` converted to the data's dtype the way
/// PyTorch converts a Python scalar (truncation for integers, `!= 0` for bool).
pub fn select_or(data: &Data, idx: &[Option<usize>], fill: f64) -> Data {
    match data {
        Data::F32(v) => Data::F32(
            idx.iter()
                .map(|i| i.map_or(fill as f32, |i| v[i]))
                .collect(),
        ),
        Data::I64(v) => Data::I64(
            idx.iter()
                .map(|i| i.map_or(fill as i64, |i| v[i]))
                .collect(),
        ),
        Data::Bool(v) => Data::Bool(
            idx.iter()
                .map(|i| i.map_or(fill != 0.0, |i| v[i]))
                .collect(),
        ),
    }
}

/// Picks element `idx[k].1` of tensor `idx[k].0` for every k. All `parts` must share one dtype,
/// which the caller guarantees by casting them first; the dtype is taken from `parts[0]`.
pub fn select_from_parts(parts: &[Tensor], idx: &[(usize, usize)]) -> Option<Data> {
    let first = parts.first()?;
    Some(match &first.data {
        Data::F32(_) => Data::F32(
            idx.iter()
                .map(|&(p, i)| parts[p].as_f32().map(|v| v[i]))
                .collect::<Option<_>>()?,
        ),
        Data::I64(_) => Data::I64(
            idx.iter()
                .map(|&(p, i)| parts[p].as_i64().map(|v| v[i]))
                .collect::<Option<_>>()?,
        ),
        Data::Bool(_) => Data::Bool(
            idx.iter()
                .map(|&(p, i)| parts[p].as_bool().map(|v| v[i]))
                .collect::<Option<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_or_fills_in_the_data_dtype() {
        let d = Data::I64(vec![7, 8]);
        assert_eq!(
            select_or(&d, &[Some(1), None, Some(0)], -2.7),
            Data::I64(vec![8, -2, 7])
        );
        let b = Data::Bool(vec![false]);
        assert_eq!(
            select_or(&b, &[None, Some(0)], 0.5),
            Data::Bool(vec![true, false])
        );
    }

    #[test]
    fn select_from_parts_rejects_mixed_dtypes() {
        let parts = [
            Tensor::f32(vec![1], vec![1.0]),
            Tensor::i64(vec![1], vec![2]),
        ];
        assert!(select_from_parts(&parts, &[(0, 0), (1, 0)]).is_none());
        assert_eq!(
            select_from_parts(&parts[..1], &[(0, 0), (0, 0)]),
            Some(Data::F32(vec![1.0, 1.0]))
        );
    }
}
