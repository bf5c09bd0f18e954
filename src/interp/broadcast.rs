//! Shape arithmetic the kernels share: numpy broadcasting and row-major multi-index walks.
//! Invariant: every index map returned here holds only in-range flat indices of its source.

use super::{invalid, InterpError};

/// The numpy broadcast of `shapes` (right-aligned; a size-1 dim stretches to the other size).
pub fn broadcast_shapes(op: &'static str, shapes: &[&[usize]]) -> Result<Vec<usize>, InterpError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1; rank];
    for shape in shapes {
        let offset = rank - shape.len();
        for (i, &d) in shape.iter().enumerate() {
            let o = &mut out[offset + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Err(invalid(
                    op,
                    format!("shapes {shapes:?} do not broadcast together"),
                ));
            }
        }
    }
    Ok(out)
}

/// For every element of a tensor of shape `to` (row-major), the flat index of the element of a
/// tensor of shape `from` that broadcasting places there.
pub fn broadcast_map(
    op: &'static str,
    from: &[usize],
    to: &[usize],
) -> Result<Vec<usize>, InterpError> {
    if from.len() > to.len() {
        return Err(invalid(op, format!("{from:?} cannot broadcast to {to:?}")));
    }
    let offset = to.len() - from.len();
    let from_strides = super::contiguous_strides(from);
    // A size-1 source dim repeats its only element, so its stride along the target is zero.
    let mut strides = vec![0; to.len()];
    for (i, &d) in from.iter().enumerate() {
        if d == to[offset + i] {
            strides[offset + i] = from_strides[i];
        } else if d != 1 {
            return Err(invalid(op, format!("{from:?} cannot broadcast to {to:?}")));
        }
    }
    let mut map = Vec::with_capacity(to.iter().product());
    for_each_index(to, |idx| map.push(dot(idx, &strides)));
    Ok(map)
}

/// Calls `f` with every multi-index of `shape` in row-major order: once (with `[]`) for a 0-d
/// shape, never when some dim is 0.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0; shape.len()];
    loop {
        f(&idx);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// `Σ idx[i] · strides[i]`, the flat offset of a multi-index.
pub fn dot(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// Splits `shape` around `axis` into (outer, len, inner) so that element `(o, k, n)` of the
/// line view sits at flat index `(o · len + k) · inner + n`.
pub fn split_at_axis(
    op: &'static str,
    shape: &[usize],
    axis: usize,
) -> Result<(usize, usize, usize), InterpError> {
    if axis >= shape.len() {
        return Err(invalid(
            op,
            format!("axis {axis} is out of range for shape {shape:?}"),
        ));
    }
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_shapes_right_aligns_and_stretches_ones() {
        assert_eq!(
            broadcast_shapes("t", &[&[2, 1, 3], &[4, 1], &[]]).unwrap(),
            vec![2, 4, 3]
        );
        assert_eq!(broadcast_shapes("t", &[&[0], &[1]]).unwrap(), vec![0]);
        assert!(broadcast_shapes("t", &[&[2, 3], &[3, 3]]).is_err());
    }

    #[test]
    fn broadcast_map_repeats_size_one_dims() {
        // A [2, 1] column broadcast to [2, 2, 3]: each row repeats its single entry.
        assert_eq!(
            broadcast_map("t", &[2, 1], &[2, 2, 3]).unwrap(),
            vec![0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]
        );
        assert_eq!(broadcast_map("t", &[], &[2]).unwrap(), vec![0, 0]);
        assert!(broadcast_map("t", &[2], &[3]).is_err());
        assert!(broadcast_map("t", &[1, 2], &[2]).is_err());
    }

    #[test]
    fn for_each_index_walks_row_major() {
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        let mut n = 0;
        for_each_index(&[], |_| n += 1);
        assert_eq!(n, 1);
        for_each_index(&[3, 0], |_| n += 1);
        assert_eq!(n, 1);
    }
}
