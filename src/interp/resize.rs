//! Upsample of the trailing spatial dims: nearest, and (bi)linear with or without align_corners.
//! Invariant: source coordinates follow PyTorch's size-based rules and are clamped into range.

use super::broadcast::for_each_index;
use super::select::select;
use super::{f32_of, invalid, one_input, InterpError, Tensor};
use crate::ir::UpsampleMode;

pub fn upsample(
    op: &'static str,
    mode: UpsampleMode,
    size: &[usize],
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    let x = one_input(op, inputs)?;
    let sd = size.len();
    if sd == 0 || x.shape.len() < sd {
        return Err(invalid(
            op,
            format!("size {size:?} for input {:?}", x.shape),
        ));
    }
    let lead = x.shape.len() - sd;
    let in_sp = &x.shape[lead..];
    if in_sp.contains(&0) {
        if !size.contains(&0) {
            return Err(invalid(op, format!("empty input {:?}", x.shape)));
        }
        // Nothing to sample and nothing to produce; the source rules below assume in ≥ 1.
        let mut shape = x.shape[..lead].to_vec();
        shape.extend_from_slice(size);
        return Ok(Tensor {
            shape,
            data: select(&x.data, &[]),
        });
    }
    let n_planes: usize = x.shape[..lead].iter().product();
    let in_size: usize = in_sp.iter().product();
    let mut shape = x.shape[..lead].to_vec();
    shape.extend_from_slice(size);
    match mode {
        UpsampleMode::Nearest => {
            // src = min(floor(dst · in / out), in − 1), in exact integer arithmetic. PyTorch
            // computes in/out as an f32 scale first, which agrees except where that rounding
            // crosses an integer.
            let src: Vec<Vec<usize>> = (0..sd)
                .map(|d| {
                    (0..size[d])
                        .map(|o| (o * in_sp[d] / size[d]).min(in_sp[d] - 1))
                        .collect()
                })
                .collect();
            let mut spatial = Vec::new();
            for_each_index(size, |o| {
                spatial.push((0..sd).fold(0, |f, d| f * in_sp[d] + src[d][o[d]]));
            });
            let idx: Vec<usize> = (0..n_planes)
                .flat_map(|p| spatial.iter().map(move |s| p * in_size + s))
                .collect();
            Ok(Tensor {
                shape,
                data: select(&x.data, &idx),
            })
        }
        UpsampleMode::Bilinear { align_corners } => {
            let xv = f32_of(op, "x", x)?;
            let taps: Vec<Vec<LinearTap>> = (0..sd)
                .map(|d| {
                    (0..size[d])
                        .map(|o| linear_tap(o, in_sp[d], size[d], align_corners))
                        .collect()
                })
                .collect();
            let mut out = Vec::with_capacity(n_planes * size.iter().product::<usize>());
            let corners = vec![2; sd];
            for plane in xv.chunks(in_size.max(1)).take(n_planes) {
                for_each_index(size, |o| {
                    // Sum over the 2^sd corners of the cell, each weighted by the product of
                    // its per-dim weights.
                    let mut acc = 0f64;
                    for_each_index(&corners, |c| {
                        let mut w = 1.0;
                        let mut f = 0;
                        for d in 0..sd {
                            let t = &taps[d][o[d]];
                            let (i, wd) = if c[d] == 0 {
                                (t.i0, 1.0 - t.lambda)
                            } else {
                                (t.i1, t.lambda)
                            };
                            w *= wd;
                            f = f * in_sp[d] + i;
                        }
                        acc += w * plane[f] as f64;
                    });
                    out.push(acc as f32);
                });
            }
            Ok(Tensor::f32(shape, out))
        }
    }
}

/// The two neighbours of an output coordinate along one dim and the weight of the upper one.
struct LinearTap {
    i0: usize,
    i1: usize,
    lambda: f64,
}

/// PyTorch's source coordinate: `dst·(in−1)/(out−1)` with align_corners (0 when out is 1),
/// otherwise `max(0, (dst + ½)·in/out − ½)`; the upper neighbour is clamped at the border.
fn linear_tap(dst: usize, input: usize, output: usize, align_corners: bool) -> LinearTap {
    let src = if align_corners {
        if output > 1 {
            dst as f64 * (input - 1) as f64 / (output - 1) as f64
        } else {
            0.0
        }
    } else {
        ((dst as f64 + 0.5) * input as f64 / output as f64 - 0.5).max(0.0)
    };
    let i0 = (src.floor() as usize).min(input - 1);
    LinearTap {
        i0,
        i1: (i0 + 1).min(input - 1),
        lambda: src - i0 as f64,
    }
}

// Expected values keep every digit the reference printed, so they can be matched against its
// output by eye; the compiler rounds them to the nearest representable value.
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::interp::testing::{assert_close, pattern};

    #[test]
    fn nearest_up_and_down() {
        // F.interpolate(pattern((1,1,3,4),0), size=(5,3), mode='nearest')
        let x = pattern(&[1, 1, 3, 4], 0);
        let y = upsample("upsample", UpsampleMode::Nearest, &[5, 3], &[&x]).unwrap();
        assert_close(
            &y,
            &[1, 1, 5, 3],
            &[
                -1.0, 0.75, 0.25, -1.0, 0.75, 0.25, -0.75, 1.0, 0.5, -0.75, 1.0, 0.5, -0.5, -1.0,
                0.75,
            ],
        );
        // Nearest is pure data movement, so it works on integers too.
        let i = Tensor::i64(vec![1, 2], vec![4, 9]);
        let y = upsample("upsample", UpsampleMode::Nearest, &[5], &[&i]).unwrap();
        assert_eq!(y, Tensor::i64(vec![1, 5], vec![4, 4, 4, 9, 9]));
    }

    #[test]
    fn bilinear_half_pixel_and_align_corners() {
        let x = pattern(&[1, 1, 3, 4], 0);
        // F.interpolate(x, size=(5,3), mode='bilinear', align_corners=False)
        let mode = UpsampleMode::Bilinear {
            align_corners: false,
        };
        assert_close(
            &upsample("upsample", mode, &[5, 3], &[&x]).unwrap(),
            &[1, 1, 5, 3],
            &[
                -0.7083333,
                0.5,
                -0.16666675,
                -0.6083333,
                0.6,
                -0.06666674,
                -0.4583333,
                0.75,
                0.08333325,
                -0.53333336,
                0.22499987,
                0.2333333,
                -0.58333337,
                -0.125,
                0.33333325,
            ],
        );
        // Same with align_corners=True.
        let mode = UpsampleMode::Bilinear {
            align_corners: true,
        };
        assert_close(
            &upsample("upsample", mode, &[5, 3], &[&x]).unwrap(),
            &[1, 1, 5, 3],
            &[
                -1.0, 0.5, -0.25, -0.875, 0.625, -0.125, -0.75, 0.75, 0.0, -0.625, 0.3125, 0.125,
                -0.5, -0.125, 0.25,
            ],
        );
        // An output size of 1 with align_corners samples coordinate 0:
        // F.interpolate(x, size=(1,6), mode='bilinear', align_corners=True)
        assert_close(
            &upsample("upsample", mode, &[1, 6], &[&x]).unwrap(),
            &[1, 1, 1, 6],
            &[-1.0, 0.05, 0.65, 0.35, 0.05, -0.25],
        );
    }

    #[test]
    fn linear_one_spatial_dim() {
        // F.interpolate(pattern((1,2,3),1), size=(7,), mode='linear', align_corners=False)
        let mode = UpsampleMode::Bilinear {
            align_corners: false,
        };
        let y = upsample("upsample", mode, &[7], &[&pattern(&[1, 2, 3], 1)]).unwrap();
        assert_close(
            &y,
            &[1, 2, 7],
            &[
                -0.25,
                -0.3214286,
                -0.5357143,
                -0.75,
                0.0,
                0.75,
                1.0,
                0.5,
                0.42857143,
                0.2142857,
                0.0,
                -0.21428573,
                -0.42857146,
                -0.5,
            ],
        );
        let i = Tensor::i64(vec![1, 2], vec![4, 9]);
        assert!(upsample("upsample", mode, &[3], &[&i]).is_err());
    }
}
