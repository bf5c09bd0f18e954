//! Max/avg pooling and adaptive pooling over the trailing spatial dims.
//! Invariant: each output is a function of an explicit window of in-bounds input offsets,
//! computed once per op from PyTorch's size and window rules and then applied to every plane.

use super::broadcast::for_each_index;
use super::{f32_of, invalid, one_input, unsupported, InterpError, Tensor};
use crate::ir::{PoolAttrs, PoolKind};

/// One output position: the flat spatial offsets of the input elements it reads, and the
/// divisor an average uses.
struct Window {
    offsets: Vec<usize>,
    divisor: f64,
}

/// Splits `[*lead, *spatial]` into the number of independent planes and the spatial shape,
/// accepting `[C, *spatial]` and `[N, C, *spatial]`.
fn planes<'a>(
    op: &'static str,
    shape: &'a [usize],
    sd: usize,
) -> Result<(usize, &'a [usize]), InterpError> {
    if sd == 0 || !(shape.len() == sd + 1 || shape.len() == sd + 2) {
        return Err(invalid(
            op,
            format!("{sd} spatial dims do not fit input {shape:?}"),
        ));
    }
    let lead = shape.len() - sd;
    Ok((shape[..lead].iter().product(), &shape[lead..]))
}

/// PyTorch's pooling output size, including the ceil_mode rule that drops a last window which
/// would start in the right padding.
fn out_size(
    input: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ceil_mode: bool,
) -> Option<usize> {
    let span = (d * (k - 1)) as i64 + 1;
    let num = input as i64 + 2 * p as i64 - span + if ceil_mode { s as i64 - 1 } else { 0 };
    if num < 0 {
        return None;
    }
    let mut out = num / s as i64 + 1;
    if ceil_mode && (out - 1) * s as i64 >= input as i64 + p as i64 {
        out -= 1;
    }
    (out >= 1).then_some(out as usize)
}

/// Row-major flat offset of `coords` in `shape`.
fn flat(coords: &[usize], shape: &[usize]) -> usize {
    coords.iter().zip(shape).fold(0, |f, (&c, &d)| f * d + c)
}

/// All row-major offsets of the box `ranges[d].0 .. ranges[d].1` within `shape`.
fn box_offsets(ranges: &[(usize, usize)], shape: &[usize]) -> Vec<usize> {
    let extent: Vec<usize> = ranges.iter().map(|&(a, b)| b.saturating_sub(a)).collect();
    let mut offsets = Vec::new();
    for_each_index(&extent, |i| {
        let coords: Vec<usize> = i.iter().zip(ranges).map(|(&i, &(a, _))| a + i).collect();
        offsets.push(flat(&coords, shape));
    });
    offsets
}

/// Reduces every plane over the windows: NaN-propagating max (an empty window is −inf, the
/// padding value), or f64 sum over the divisor.
fn apply(
    xv: &[f32],
    n_planes: usize,
    in_size: usize,
    windows: &[Window],
    kind: PoolKind,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(n_planes * windows.len());
    for plane in xv.chunks(in_size.max(1)).take(n_planes) {
        for w in windows {
            let v = match kind {
                PoolKind::Max => w.offsets.iter().fold(f64::NEG_INFINITY, |m, &o| {
                    let v = plane[o] as f64;
                    if v.is_nan() || v > m {
                        v
                    } else {
                        m
                    }
                }),
                PoolKind::Avg => {
                    w.offsets.iter().map(|&o| plane[o] as f64).sum::<f64>() / w.divisor
                }
            };
            out.push(v as f32);
        }
    }
    out
}

pub fn pool(op: &'static str, a: &PoolAttrs, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let xv = f32_of(op, "x", x)?;
    let sd = a.kernel.len();
    let (n_planes, in_sp) = planes(op, &x.shape, sd)?;
    if in_sp.contains(&0) {
        return Err(invalid(op, format!("empty spatial input {:?}", x.shape)));
    }
    let fits = [&a.stride, &a.padding, &a.dilation]
        .iter()
        .all(|v| v.len() == sd)
        && a.kernel
            .iter()
            .chain(&a.stride)
            .chain(&a.dilation)
            .all(|&v| v >= 1);
    if !fits {
        return Err(invalid(op, format!("attributes {a:?} do not fit")));
    }
    if a.kind == PoolKind::Avg && a.dilation.iter().any(|&d| d != 1) {
        return Err(unsupported(op, "average pooling has no dilation"));
    }
    let mut out_sp = Vec::with_capacity(sd);
    for (d, &input) in in_sp.iter().enumerate() {
        let (k, s, p, dil) = (a.kernel[d], a.stride[d], a.padding[d], a.dilation[d]);
        // PyTorch refuses padding beyond half the effective kernel, `((k−1)·d + 1) / 2`, which
        // also guarantees that no window lies entirely in the padding.
        let half = (dil * (k - 1)).div_ceil(2);
        match out_size(input, k, s, p, dil, a.ceil_mode) {
            Some(size) if p <= half => out_sp.push(size),
            _ => {
                return Err(invalid(
                    op,
                    format!("input {:?} is too small for {a:?}", x.shape),
                ))
            }
        }
    }
    let mut windows = Vec::new();
    for_each_index(&out_sp, |o| {
        windows.push(match a.kind {
            PoolKind::Max => max_window(o, a, in_sp),
            PoolKind::Avg => avg_window(o, a, in_sp),
        })
    });
    let out = apply(xv, n_planes, in_sp.iter().product(), &windows, a.kind);
    let mut shape = x.shape[..x.shape.len() - sd].to_vec();
    shape.extend(out_sp);
    Ok(Tensor::f32(shape, out))
}

/// The in-bounds taps `o·s − p + t·d` of a max window; out-of-bounds taps are −inf padding and
/// can never be the max, so they are simply left out.
fn max_window(o: &[usize], a: &PoolAttrs, in_sp: &[usize]) -> Window {
    let mut offsets = Vec::new();
    for_each_index(&a.kernel, |t| {
        let mut coords = Vec::with_capacity(o.len());
        for d in 0..o.len() {
            let c = (o[d] * a.stride[d] + t[d] * a.dilation[d]) as i64 - a.padding[d] as i64;
            if c < 0 || c >= in_sp[d] as i64 {
                return;
            }
            coords.push(c as usize);
        }
        offsets.push(flat(&coords, in_sp));
    });
    Window {
        offsets,
        divisor: 1.0,
    }
}

/// PyTorch's average window: `[start, min(start + k, in + p))` sets the padded pool size, then
/// the window is clipped to the input for the elements actually summed.
fn avg_window(o: &[usize], a: &PoolAttrs, in_sp: &[usize]) -> Window {
    let mut padded_size = 1i64;
    let mut ranges = Vec::with_capacity(o.len());
    for d in 0..o.len() {
        let start = (o[d] * a.stride[d]) as i64 - a.padding[d] as i64;
        let end = (start + a.kernel[d] as i64).min((in_sp[d] + a.padding[d]) as i64);
        padded_size *= end - start;
        let (lo, hi) = (start.max(0), end.min(in_sp[d] as i64));
        ranges.push((lo as usize, hi.max(lo) as usize));
    }
    let offsets = box_offsets(&ranges, in_sp);
    let divisor = match a.divisor_override {
        Some(d) => d as f64,
        None if a.count_include_pad => padded_size as f64,
        None => offsets.len() as f64,
    };
    Window { offsets, divisor }
}

pub fn adaptive_pool(
    op: &'static str,
    kind: PoolKind,
    output_size: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let xv = f32_of(op, "x", x)?;
    let (n_planes, in_sp) = planes(op, &x.shape, output_size.len())?;
    if in_sp.contains(&0) && !output_size.contains(&0) {
        return Err(invalid(op, format!("empty input {:?}", x.shape)));
    }
    let mut windows = Vec::new();
    for_each_index(output_size, |o| {
        // Bin i covers [floor(i·in/out), ceil((i+1)·in/out)), so neighbouring bins may overlap.
        let ranges: Vec<(usize, usize)> = (0..o.len())
            .map(|d| {
                let (i, n, m) = (o[d], in_sp[d], output_size[d]);
                (i * n / m, ((i + 1) * n).div_ceil(m))
            })
            .collect();
        let offsets = box_offsets(&ranges, in_sp);
        let divisor = offsets.len() as f64;
        windows.push(Window { offsets, divisor });
    });
    let out = apply(xv, n_planes, in_sp.iter().product(), &windows, kind);
    let mut shape = x.shape[..x.shape.len() - output_size.len()].to_vec();
    shape.extend_from_slice(output_size);
    Ok(Tensor::f32(shape, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::testing::{assert_close, pattern};

    /// `((torch.arange(n) * 37) % 61).float().reshape(shape)`: distinct values, so a max
    /// identifies exactly which element won.
    fn distinct(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::f32(
            shape.to_vec(),
            (0..n).map(|i| ((i * 37) % 61) as f32).collect(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn attrs(
        kind: PoolKind,
        kernel: &[usize],
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: Option<usize>,
    ) -> PoolAttrs {
        PoolAttrs {
            kind,
            kernel: kernel.to_vec(),
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            ceil_mode,
            count_include_pad,
            divisor_override,
        }
    }

    #[test]
    fn max_pool2d_dilated_ceil_mode() {
        // F.max_pool2d(distinct((1,2,5,6)), (3,2), stride=(2,2), padding=(1,1), dilation=(1,2),
        //              ceil_mode=True)
        let a = attrs(
            PoolKind::Max,
            &[3, 2],
            &[2, 2],
            &[1, 1],
            &[1, 2],
            true,
            true,
            None,
        );
        let y = pool("max_pool", &a, &[&distinct(&[1, 2, 5, 6])]).unwrap();
        assert_close(
            &y,
            &[1, 2, 3, 4],
            &[
                37.0, 50.0, 50.0, 41.0, 54.0, 54.0, 58.0, 58.0, 32.0, 45.0, 58.0, 58.0, 49.0, 49.0,
                53.0, 53.0, 44.0, 57.0, 57.0, 53.0, 44.0, 57.0, 57.0, 48.0,
            ],
        );
    }

    #[test]
    fn max_pool1d_ceil_mode_drops_window_starting_in_padding() {
        // F.max_pool1d(distinct((2,7)), 2, stride=3, padding=1, ceil_mode=True): the formula
        // gives 4 windows, but the 4th would start at 9 - 1 = 8 >= 7 + 1, so 3 remain.
        let a = attrs(PoolKind::Max, &[2], &[3], &[1], &[1], true, true, None);
        let y = pool("max_pool", &a, &[&distinct(&[2, 7])]).unwrap();
        assert_close(&y, &[2, 3], &[0.0, 50.0, 39.0, 15.0, 28.0, 54.0]);
        let nan = Tensor::f32(vec![1, 4], vec![1.0, f32::NAN, 2.0, 3.0]);
        let a = attrs(PoolKind::Max, &[2], &[2], &[0], &[1], false, true, None);
        let y = pool("max_pool", &a, &[&nan]).unwrap();
        assert!(y.as_f32().unwrap()[0].is_nan());
        assert_eq!(y.as_f32().unwrap()[1], 3.0);
    }

    #[test]
    fn avg_pool2d_ceil_mode_with_and_without_padding_in_divisor() {
        let x = pattern(&[1, 2, 5, 6], 0);
        // F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)
        let a = attrs(
            PoolKind::Avg,
            &[3, 3],
            &[2, 2],
            &[1, 1],
            &[1, 1],
            true,
            true,
            None,
        );
        assert_close(
            &pool("avg_pool", &a, &[&x]).unwrap(),
            &[1, 2, 3, 4],
            &[
                0.027777778,
                -0.083333336,
                0.0,
                0.20833333,
                -0.083333336,
                0.0,
                0.0,
                0.125,
                0.027777778,
                -0.083333336,
                0.0,
                0.20833333,
                -0.1388889,
                0.16666667,
                0.0,
                0.083333336,
                -0.083333336,
                0.0,
                0.0,
                0.125,
                -0.1388889,
                0.16666667,
                0.0,
                0.083333336,
            ],
        );
        // Same with count_include_pad=False.
        let a = attrs(
            PoolKind::Avg,
            &[3, 3],
            &[2, 2],
            &[1, 1],
            &[1, 1],
            true,
            false,
            None,
        );
        assert_close(
            &pool("avg_pool", &a, &[&x]).unwrap(),
            &[1, 2, 3, 4],
            &[
                0.0625, -0.125, 0.0, 0.625, -0.125, 0.0, 0.0, 0.25, 0.0625, -0.125, 0.0, 0.625,
                -0.3125, 0.25, 0.0, 0.25, -0.125, 0.0, 0.0, 0.25, -0.3125, 0.25, 0.0, 0.25,
            ],
        );
        // F.avg_pool2d(x, 2, stride=2, padding=(1,0), divisor_override=3)
        let a = attrs(
            PoolKind::Avg,
            &[2, 2],
            &[2, 2],
            &[1, 0],
            &[1, 1],
            false,
            true,
            Some(3),
        );
        assert_close(
            &pool("avg_pool", &a, &[&x]).unwrap(),
            &[1, 2, 3, 3],
            &[
                -0.083333336,
                0.0,
                0.083333336,
                -0.16666667,
                0.0,
                0.16666667,
                0.083333336,
                -0.5,
                0.41666666,
                -0.33333334,
                0.5,
                -0.16666667,
                0.083333336,
                -0.5,
                0.41666666,
                -0.41666666,
                0.5,
                -0.083333336,
            ],
        );
    }

    #[test]
    fn avg_pool1d_on_unbatched_input() {
        // F.avg_pool1d(pattern((2,7),1), 3, stride=2, padding=1, ceil_mode=True)
        let a = attrs(PoolKind::Avg, &[3], &[2], &[1], &[1], true, true, None);
        let y = pool("avg_pool", &a, &[&pattern(&[2, 7], 1)]).unwrap();
        assert_close(
            &y,
            &[2, 4],
            &[
                -0.33333334,
                0.25,
                0.0,
                -0.5,
                0.33333334,
                -0.25,
                0.25,
                0.16666667,
            ],
        );
    }

    #[test]
    fn pool_rejects_bad_attributes() {
        let x = pattern(&[1, 1, 4], 0);
        let too_much_pad = attrs(PoolKind::Max, &[2], &[1], &[2], &[1], false, true, None);
        assert!(pool("max_pool", &too_much_pad, &[&x]).is_err());
        let dilated_avg = attrs(PoolKind::Avg, &[2], &[1], &[0], &[2], false, true, None);
        assert!(pool("avg_pool", &dilated_avg, &[&x]).is_err());
        let big = attrs(PoolKind::Max, &[5], &[1], &[0], &[1], false, true, None);
        assert!(pool("max_pool", &big, &[&x]).is_err());
        let padded = attrs(PoolKind::Max, &[3], &[1], &[1], &[1], false, true, None);
        assert!(pool("max_pool", &padded, &[&pattern(&[1, 1, 0], 0)]).is_err());
    }

    #[test]
    fn adaptive_pools_with_overlapping_bins() {
        // F.adaptive_avg_pool2d(pattern((1,1,5,7),2), (3,4)): 5 -> 3 and 7 -> 4 both overlap.
        let x = pattern(&[1, 1, 5, 7], 2);
        let y = adaptive_pool("adaptive_avg_pool", PoolKind::Avg, &[3, 4], &[&x]).unwrap();
        assert_close(
            &y,
            &[1, 1, 3, 4],
            &[
                0.1875, 0.0, -0.25, -0.0625, 0.0, 0.25, 0.0, 0.125, -0.1875, 0.0, 0.125, 0.125,
            ],
        );
        // F.adaptive_max_pool2d(distinct((1,1,5,7)), (3,4))
        let y = adaptive_pool(
            "adaptive_max_pool",
            PoolKind::Max,
            &[3, 4],
            &[&distinct(&[1, 1, 5, 7])],
        )
        .unwrap();
        assert_close(
            &y,
            &[1, 1, 3, 4],
            &[
                52.0, 52.0, 50.0, 54.0, 52.0, 58.0, 56.0, 54.0, 60.0, 58.0, 49.0, 47.0,
            ],
        );
        // F.adaptive_avg_pool1d(pattern((2,5),3), 7): upsampling bins repeat elements.
        let y = adaptive_pool(
            "adaptive_avg_pool",
            PoolKind::Avg,
            &[7],
            &[&pattern(&[2, 5], 3)],
        )
        .unwrap();
        assert_close(
            &y,
            &[2, 7],
            &[
                -1.0, -0.125, 0.5, 0.25, 0.0, -0.5, -0.75, 1.0, 0.75, 0.25, 0.0, -0.25, -0.75, -1.0,
            ],
        );
    }
}
