//! Normalization kernels: inference BatchNorm, LayerNorm and GroupNorm.
//! Invariant: statistics are two-pass (mean, then squared deviations) in f64, variance biased.

use super::{f32_of, input_count, invalid, InterpError, Tensor};

/// Mean and biased variance of `v`, two-pass so that a large mean does not cancel the variance.
fn moments(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = v.clone().count() as f64;
    let mean = v.clone().sum::<f64>() / n;
    let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Checks that every per-channel parameter has shape `[c]` and returns their elements.
fn channel_params<'a>(
    op: &'static str,
    names: &[&str],
    params: &[&'a Tensor],
    c: usize,
) -> Result<Vec<&'a [f32]>, InterpError> {
    names
        .iter()
        .zip(params)
        .map(|(name, p)| {
            if p.shape != [c] {
                return Err(invalid(
                    op,
                    format!("{name} is {:?}, expected [{c}]", p.shape),
                ));
            }
            f32_of(op, name, p)
        })
        .collect()
}

pub fn batch_norm(op: &'static str, eps: f64, inputs: &[&Tensor]) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 5..=5)?;
    let x = inputs[0];
    let xv = f32_of(op, "x", x)?;
    if x.shape.len() < 2 {
        return Err(invalid(op, format!("x {:?} has no channel axis", x.shape)));
    }
    let c = x.shape[1];
    let inner: usize = x.shape[2..].iter().product();
    let p = channel_params(
        op,
        &["weight", "bias", "running mean", "running var"],
        &inputs[1..],
        c,
    )?;
    let (w, b, mean, var) = (p[0], p[1], p[2], p[3]);
    let out = xv
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / inner) % c;
            let norm = (v as f64 - mean[ch] as f64) / (var[ch] as f64 + eps).sqrt();
            (norm * w[ch] as f64 + b[ch] as f64) as f32
        })
        .collect();
    Ok(Tensor::f32(x.shape.clone(), out))
}

pub fn layer_norm(
    op: &'static str,
    axis: usize,
    eps: f64,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 3..=3)?;
    let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
    let xv = f32_of(op, "x", x)?;
    if axis > x.shape.len() {
        return Err(invalid(op, format!("axis {axis} for x {:?}", x.shape)));
    }
    let normalized = &x.shape[axis..];
    for (name, p) in [("weight", w), ("bias", b)] {
        if p.shape != normalized {
            return Err(invalid(
                op,
                format!("{name} is {:?}, expected {normalized:?}", p.shape),
            ));
        }
    }
    let (wv, bv) = (f32_of(op, "weight", w)?, f32_of(op, "bias", b)?);
    let m: usize = normalized.iter().product();
    let mut out = Vec::with_capacity(xv.len());
    for row in xv.chunks(m.max(1)) {
        let (mean, var) = moments(row.iter().map(|&v| v as f64));
        let inv = 1.0 / (var + eps).sqrt();
        out.extend(
            row.iter()
                .enumerate()
                .map(|(k, &v)| ((v as f64 - mean) * inv * wv[k] as f64 + bv[k] as f64) as f32),
        );
    }
    Ok(Tensor::f32(x.shape.clone(), out))
}

pub fn group_norm(
    op: &'static str,
    groups: usize,
    eps: f64,
    inputs: &[&Tensor],
) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 3..=3)?;
    let x = inputs[0];
    let xv = f32_of(op, "x", x)?;
    if x.shape.len() < 2 || groups == 0 || !x.shape[1].is_multiple_of(groups) {
        return Err(invalid(
            op,
            format!("x {:?} does not split into {groups} groups", x.shape),
        ));
    }
    let c = x.shape[1];
    let p = channel_params(op, &["weight", "bias"], &inputs[1..], c)?;
    let (w, b) = (p[0], p[1]);
    let inner: usize = x.shape[2..].iter().product();
    // Channels of one group are adjacent, so each (sample, group) pair is one contiguous chunk.
    let chunk = c / groups * inner;
    let mut out = Vec::with_capacity(xv.len());
    for (k, block) in xv.chunks(chunk.max(1)).enumerate() {
        let (mean, var) = moments(block.iter().map(|&v| v as f64));
        let inv = 1.0 / (var + eps).sqrt();
        let first_channel = (k % groups) * (c / groups);
        out.extend(block.iter().enumerate().map(|(i, &v)| {
            let ch = first_channel + i / inner;
            ((v as f64 - mean) * inv * w[ch] as f64 + b[ch] as f64) as f32
        }));
    }
    Ok(Tensor::f32(x.shape.clone(), out))
}

// Expected values keep every digit the reference printed, so they can be matched against its
// output by eye; the compiler rounds them to the nearest representable value.
#[cfg(test)]
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;
    use crate::interp::testing::{assert_values_close, pattern};

    fn t(v: &[f32]) -> Tensor {
        Tensor::f32(vec![v.len()], v.to_vec())
    }

    #[test]
    fn batch_norm_matches_pytorch() {
        // F.batch_norm(pattern((2,3,2,2),0), running_mean=[0.25,-0.5,0.], running_var=[1.,0.5,2.],
        //              weight=[0.5,-1.,2.], bias=[0.1,0.2,-0.3], training=False, eps=1e-3)
        let x = pattern(&[2, 3, 2, 2], 0);
        let (w, b) = (t(&[0.5, -1.0, 2.0]), t(&[0.1, 0.2, -0.3]));
        let (m, v) = (t(&[0.25, -0.5, 0.0]), t(&[1.0, 0.5, 2.0]));
        let y = batch_norm("batch_norm", 1e-3, &[&x, &w, &b, &m, &v]).unwrap();
        assert_values_close(
            y.as_f32().unwrap(),
            &[
                -0.5246877670288086,
                0.3498750925064087,
                0.10000000149011612,
                -0.14987510442733765,
                0.553200364112854,
                -1.9192023277282715,
                -1.212801456451416,
                -0.5064007639884949,
                -1.0069301128387451,
                -1.713860273361206,
                0.7603951692581177,
                0.053465038537979126,
                -0.14987510442733765,
                -0.3997502028942108,
                0.47481265664100647,
                0.2249375581741333,
                -0.5064007639884949,
                0.19999998807907104,
                0.906400740146637,
                -1.5660018920898438,
                0.053465038537979126,
                -0.6534650325775146,
                -1.3603951930999756,
                1.1138601303100586,
            ],
        );
        assert!(batch_norm("batch_norm", 1e-3, &[&x, &w, &b, &m, &t(&[1.0])]).is_err());
    }

    #[test]
    fn layer_norm_over_two_trailing_dims() {
        // F.layer_norm(pattern((2,3,4),1), (3,4), pattern((3,4),2), pattern((3,4),3), eps=1e-5)
        let x = pattern(&[2, 3, 4], 1);
        let (w, b) = (pattern(&[3, 4], 2), pattern(&[3, 4], 3));
        let y = layer_norm("layer_norm", 1, 1e-5, &[&x, &w, &b]).unwrap();
        assert_values_close(
            y.as_f32().unwrap(),
            &[
                -1.186769723892212,
                0.75,
                -0.4970790147781372,
                -0.9970790147781372,
                -0.75,
                0.8132302761077881,
                0.8735395073890686,
                -0.8404639363288879,
                -0.1264604926109314,
                -1.186769723892212,
                0.75,
                -0.4970790147781372,
                -0.5799219608306885,
                0.75,
                0.6700780391693115,
                1.4303122758865356,
                0.1951756775379181,
                1.1050195693969727,
                0.6050195097923279,
                0.9451756477355957,
                1.1803122758865356,
                -0.5799219608306885,
                0.75,
                0.6700780391693115,
            ],
        );
        assert!(layer_norm("layer_norm", 2, 1e-5, &[&x, &w, &b]).is_err());
    }

    #[test]
    fn group_norm_two_groups() {
        // F.group_norm(pattern((2,4,3),4), 2, weight=[1.,2.,-1.,0.5], bias=[0.,0.1,0.2,0.3],
        //              eps=1e-5)
        let x = pattern(&[2, 4, 3], 4);
        let (w, b) = (t(&[1.0, 2.0, -1.0, 0.5]), t(&[0.0, 0.1, 0.2, 0.3]));
        let y = group_norm("group_norm", 2, 1e-5, &[&x, &w, &b]).unwrap();
        assert_values_close(
            y.as_f32().unwrap(),
            &[
                -0.4200780987739563,
                -1.2602343559265137,
                1.6803123950958252,
                1.780312418937683,
                0.10000000149011612,
                -1.5803123712539673,
                1.5587198734283447,
                -0.8190398812294006,
                -0.139679953455925,
                0.13016003370285034,
                -0.20951992273330688,
                0.9793599247932434,
                0.8401561975479126,
                -6.25965146383578e-09,
                -0.8401561975479126,
                -3.260624885559082,
                2.6204686164855957,
                0.9401561617851257,
                0.6200780868530273,
                1.46023428440094,
                -1.4803123474121094,
                0.7200781106948853,
                0.30000001192092896,
                -0.12007808685302734,
            ],
        );
        assert!(group_norm("group_norm", 3, 1e-5, &[&x, &w, &b]).is_err());
    }

    #[test]
    fn variance_is_two_pass() {
        // A large common offset must not swamp the spread: [1e4+1, 1e4-1] has variance 1.
        let x = Tensor::f32(vec![1, 2], vec![10001.0, 9999.0]);
        let (w, b) = (t(&[1.0, 1.0]), t(&[0.0, 0.0]));
        let y = layer_norm("layer_norm", 1, 0.0, &[&x, &w, &b]).unwrap();
        assert_values_close(y.as_f32().unwrap(), &[1.0, -1.0]);
    }
}
