//! Helpers shared by the kernels' unit tests. Invariant: test-only; nothing here is compiled
//! into the library.

use super::Tensor;

/// Deterministic small values, exact in f32 so the expected outputs are exact too. The Python
/// side builds the same tensor as
/// `(((torch.arange(n) * 7 + seed * 3) % 9).float() * 0.25 - 1.0).reshape(shape)`.
pub fn pattern(shape: &[usize], seed: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((i * 7 + seed * 3) % 9) as f32 * 0.25 - 1.0)
        .collect();
    Tensor::f32(shape.to_vec(), v)
}

/// Asserts an f32 result's shape, and each element within 1e-5 relative of `want`.
pub fn assert_close(got: &Tensor, shape: &[usize], want: &[f32]) {
    assert_eq!(got.shape, shape);
    assert_values_close(got.as_f32().unwrap(), want);
}

/// Asserts each element of `got` within `1e-5 × max(1, |want|)` of `want`.
pub fn assert_values_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (x, y) in got.iter().zip(want) {
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}
