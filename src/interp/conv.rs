//! Convolution (1-d and 2-d, any spatial rank in fact), grouped, dilated, strided, padded and
//! transposed. Invariant: accumulation in f64, and only in-bounds input taps contribute.

use super::broadcast::for_each_index;
use super::{f32_of, input_count, invalid, InterpError, Tensor};
use crate::ir::ConvAttrs;

/// For every position `a` of `from` (row-major) and every kernel offset `t`, the flat index into
/// `to` of coordinate `a·stride + t·dilation − padding` per dim, or None when it falls outside.
///
/// A forward convolution reads input coordinate `out·s + t·d − p`; a transposed one writes output
/// coordinate `in·s + t·d − p`: the same relation, so one table serves both directions.
fn tap_table(from: &[usize], kernel: &[usize], a: &ConvAttrs, to: &[usize]) -> Vec<Option<usize>> {
    let mut table = Vec::new();
    for_each_index(from, |pos| {
        for_each_index(kernel, |t| {
            let mut flat = 0;
            for d in 0..pos.len() {
                let c = (pos[d] * a.stride[d] + t[d] * a.dilation[d]) as i64 - a.padding[d] as i64;
                if c < 0 || c >= to[d] as i64 {
                    table.push(None);
                    return;
                }
                flat = flat * to[d] + c as usize;
            }
            table.push(Some(flat));
        });
    });
    table
}

pub fn conv(op: &'static str, a: &ConvAttrs, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=3)?;
    let (x, w) = (inputs[0], inputs[1]);
    let (xv, wv) = (f32_of(op, "x", x)?, f32_of(op, "weight", w)?);
    let bad = |why: &str| invalid(op, format!("{why}: x {:?}, weight {:?}", x.shape, w.shape));
    let sd = x.shape.len().saturating_sub(2);
    let attrs_fit = sd >= 1
        && w.shape.len() == sd + 2
        && [&a.stride, &a.padding, &a.dilation]
            .iter()
            .all(|v| v.len() == sd)
        && (a.output_padding.len() == sd || a.output_padding.is_empty())
        && a.stride.iter().chain(&a.dilation).all(|&v| v >= 1)
        && a.groups >= 1;
    if !attrs_fit {
        return Err(bad(&format!("attributes {a:?} do not fit")));
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let in_sp = &x.shape[2..];
    let k_sp = &w.shape[2..];
    let g = a.groups;
    let (o, out_sp) = if a.transposed {
        if w.shape[0] != c || c % g != 0 {
            return Err(bad("channels do not split into groups"));
        }
        let mut out_sp = Vec::with_capacity(sd);
        for d in 0..sd {
            let extra = a.output_padding.get(d).copied().unwrap_or(0);
            let size = (in_sp[d] as i64 - 1) * a.stride[d] as i64 - 2 * a.padding[d] as i64
                + (a.dilation[d] * (k_sp[d].max(1) - 1)) as i64
                + extra as i64
                + 1;
            if size < 0 {
                return Err(bad("output would be empty"));
            }
            out_sp.push(size as usize);
        }
        (w.shape[1] * g, out_sp)
    } else {
        if w.shape[1] * g != c || w.shape[0] % g != 0 {
            return Err(bad("channels do not split into groups"));
        }
        let mut out_sp = Vec::with_capacity(sd);
        for d in 0..sd {
            let span = (a.dilation[d] * (k_sp[d].max(1) - 1) + 1) as i64;
            let room = in_sp[d] as i64 + 2 * a.padding[d] as i64 - span;
            if room < 0 || k_sp[d] == 0 {
                return Err(bad("kernel does not fit the padded input"));
            }
            out_sp.push(room as usize / a.stride[d] + 1);
        }
        (w.shape[0], out_sp)
    };
    let bias = match inputs.get(2) {
        Some(b) if b.shape == [o] => Some(f32_of(op, "bias", b)?),
        Some(b) => return Err(bad(&format!("bias {:?} for {o} channels", b.shape))),
        None => None,
    };
    let in_size: usize = in_sp.iter().product();
    let out_size: usize = out_sp.iter().product();
    let k_size: usize = k_sp.iter().product();

    let mut acc = vec![0f64; n * o * out_size];
    for (i, v) in acc.iter_mut().enumerate() {
        *v = bias.map_or(0.0, |b| b[(i / out_size.max(1)) % o] as f64);
    }
    if a.transposed {
        // Scatter: each input element adds x · w to every output position its taps reach.
        let (c_per_g, o_per_g) = (c / g, o / g);
        let table = tap_table(in_sp, k_sp, a, &out_sp);
        for b in 0..n {
            for ch in 0..c {
                let group = ch / c_per_g;
                for oo in 0..o_per_g {
                    let oc = group * o_per_g + oo;
                    let w_base = (ch * o_per_g + oo) * k_size;
                    let out_base = (b * o + oc) * out_size;
                    for p in 0..in_size {
                        let xval = xv[(b * c + ch) * in_size + p] as f64;
                        for t in 0..k_size {
                            if let Some(q) = table[p * k_size + t] {
                                acc[out_base + q] += xval * wv[w_base + t] as f64;
                            }
                        }
                    }
                }
            }
        }
    } else {
        // Gather: each output element sums x · w over its group's channels and in-bounds taps.
        let (c_per_g, o_per_g) = (c / g, o / g);
        let table = tap_table(&out_sp, k_sp, a, in_sp);
        for b in 0..n {
            for oc in 0..o {
                let group = oc / o_per_g;
                for q in 0..out_size {
                    let mut sum = 0f64;
                    for ci in 0..c_per_g {
                        let x_base = (b * c + group * c_per_g + ci) * in_size;
                        let w_base = (oc * c_per_g + ci) * k_size;
                        for t in 0..k_size {
                            if let Some(p) = table[q * k_size + t] {
                                sum += xv[x_base + p] as f64 * wv[w_base + t] as f64;
                            }
                        }
                    }
                    acc[(b * o + oc) * out_size + q] += sum;
                }
            }
        }
    }
    let mut shape = vec![n, o];
    shape.extend(out_sp);
    Ok(Tensor::f32(
        shape,
        acc.into_iter().map(|v| v as f32).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp::testing::{assert_close, pattern};

    fn attrs(
        stride: &[usize],
        padding: &[usize],
        dilation: &[usize],
        groups: usize,
        transposed: bool,
        output_padding: &[usize],
    ) -> ConvAttrs {
        ConvAttrs {
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            groups,
            transposed,
            output_padding: output_padding.to_vec(),
        }
    }

    #[test]
    fn conv1d_grouped_strided_dilated_with_bias() {
        // F.conv1d(pattern((1,4,7),0), pattern((6,2,3),1), pattern((6,),2),
        //          stride=2, padding=2, dilation=2, groups=2)
        let (x, w, b) = (
            pattern(&[1, 4, 7], 0),
            pattern(&[6, 2, 3], 1),
            pattern(&[6], 2),
        );
        let a = attrs(&[2], &[2], &[2], 2, false, &[0]);
        let y = conv("conv", &a, &[&x, &w, &b]).unwrap();
        assert_close(
            &y,
            &[1, 6, 4],
            &[
                2.0, -0.3125, 1.375, 0.4375, -1.6875, 2.0, -1.375, 1.625, -0.875, -1.3125, 0.375,
                -1.6875, -2.25, -2.375, 1.0, -0.9375, 2.6875, -1.1875, -1.1875, 2.6875, 0.3125,
                2.25, -1.125, -1.0,
            ],
        );
    }

    #[test]
    fn conv2d_asymmetric_stride_padding_dilation() {
        // F.conv2d(pattern((2,2,4,5),3), pattern((3,2,2,3),4), stride=(2,1), padding=(1,2),
        //          dilation=(1,2))
        let (x, w) = (pattern(&[2, 2, 4, 5], 3), pattern(&[3, 2, 2, 3], 4));
        let a = attrs(&[2, 1], &[1, 2], &[1, 2], 1, false, &[]);
        let y = conv("conv", &a, &[&x, &w]).unwrap();
        assert_close(&y, &[2, 3, 3, 5], &CONV2D_WANT);
    }

    #[test]
    fn conv_transpose2d_grouped_with_output_padding() {
        // F.conv_transpose2d(pattern((1,4,3,2),5), pattern((4,1,2,2),6), pattern((2,),7),
        //     stride=(2,3), padding=(1,0), output_padding=(1,2), groups=2, dilation=(2,1))
        let (x, w, b) = (
            pattern(&[1, 4, 3, 2], 5),
            pattern(&[4, 1, 2, 2], 6),
            pattern(&[2], 7),
        );
        let a = attrs(&[2, 3], &[1, 0], &[2, 1], 2, true, &[1, 2]);
        let y = conv("conv_transpose", &a, &[&x, &w, &b]).unwrap();
        assert_close(&y, &[1, 2, 6, 7], &CONVT_WANT);
    }

    #[test]
    fn conv_transpose1d_plain() {
        // F.conv_transpose1d(torch.tensor([[[1., 2.]]]), torch.tensor([[[1., 10., 100.]]]),
        //                    stride=2) == [[[1, 10, 102, 20, 200]]]
        let x = Tensor::f32(vec![1, 1, 2], vec![1.0, 2.0]);
        let w = Tensor::f32(vec![1, 1, 3], vec![1.0, 10.0, 100.0]);
        let a = attrs(&[2], &[0], &[1], 1, true, &[0]);
        let y = conv("conv_transpose", &a, &[&x, &w]).unwrap();
        assert_close(&y, &[1, 1, 5], &[1.0, 10.0, 102.0, 20.0, 200.0]);
    }

    #[test]
    fn conv_rejects_mismatched_groups() {
        let (x, w) = (pattern(&[1, 3, 5], 0), pattern(&[2, 2, 1], 0));
        let a = attrs(&[1], &[0], &[1], 2, false, &[]);
        assert!(conv("conv", &a, &[&x, &w]).is_err());
    }

    /// The flattened result of the conv2d expression in its test.
    const CONV2D_WANT: [f32; 90] = [
        -1.0625, 1.3125, 0.875, -0.3125, -0.0625, 0.3125, 0.375, -2.75, 1.25, 1.5625, -1.0625,
        -1.6875, 2.0, 1.9375, -1.375, -0.3125, 0.0, 0.875, -1.0625, -1.1875, -1.0, 1.125, 1.1875,
        -1.375, 1.5625, 1.375, 1.5, -0.8125, 0.0625, -0.25, 1.0, -0.75, -1.375, 1.0, 1.625, 0.5,
        -1.5, 0.625, 0.5, -2.9375, -0.125, -0.375, -0.8125, -1.25, 1.4375, -1.125, -1.0, 0.875,
        1.25, -0.1875, 0.0, 0.625, 0.625, 0.8125, 1.6875, -0.75, -1.375, 2.0, 1.625, -1.6875,
        -0.1875, 1.25, 0.875, -1.0, -1.125, 0.1875, 1.1875, -0.5, -1.4375, -1.3125, 1.3125, 1.4375,
        -0.8125, -0.0625, -0.375, 1.3125, -1.0, -1.375, -1.0, 1.3125, -1.3125, -1.0625, -1.0625,
        0.25, 0.75, 0.0, -0.25, -0.8125, -1.1875, 1.5,
    ];
    /// The flattened result of the conv_transpose2d expression in its test.
    const CONVT_WANT: [f32; 84] = [
        -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.5, 0.25, -0.25, 0.0, -0.5, -0.25,
        -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.625, 0.4375, -0.25, -0.125,
        -0.3125, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.0625, -0.4375,
        -0.25, -0.4375, -0.3125, -0.25, -0.25, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75,
        -1.0, -0.625, -0.75, 0.1875, 0.4375, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75,
        -0.75, -0.75, -0.875, -0.75, -0.75, -2.5, -2.5, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75,
        -0.75, -0.75, -0.75, -0.5625, -0.5625, -0.75, 0.25, -0.375, -0.75, -0.75,
    ];
}
