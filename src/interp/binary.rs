//! Broadcasting binary kernels and Where. Invariant: arithmetic happens in the recorded output
//! dtype, comparisons in the promoted input dtype, and integer faults are errors, never panics.

use super::broadcast::{broadcast_map, broadcast_shapes};
use super::select::select;
use super::{input_count, unsupported, Data, InterpError, Tensor};
use crate::ir::{BinaryOp, DType};

pub fn binary(
    op: &'static str,
    b: BinaryOp,
    inputs: &[&Tensor],
    out: DType,
) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 2..=2)?;
    let shape = broadcast_shapes(op, &[&inputs[0].shape, &inputs[1].shape])?;
    let x = broadcast_to(op, inputs[0], &shape)?;
    let y = broadcast_to(op, inputs[1], &shape)?;
    let result = match b {
        _ if b.is_comparison() => compare(op, b, &x, &y)?.cast(out)?,
        BinaryOp::And | BinaryOp::Or | BinaryOp::Xor => logical(op, b, &x, &y, out)?,
        _ => arithmetic(op, b, &x.cast(out)?, &y.cast(out)?)?,
    };
    Ok(result)
}

/// `torch.where(cond, a, b)`: cond by truthiness, a and b cast to the output dtype.
pub fn where_(op: &'static str, inputs: &[&Tensor], out: DType) -> Result<Tensor, InterpError> {
    input_count(op, inputs, 3..=3)?;
    let shape = broadcast_shapes(op, &[&inputs[0].shape, &inputs[1].shape, &inputs[2].shape])?;
    let cond = broadcast_to(op, inputs[0], &shape)?.cast(DType::Bool)?;
    let a = broadcast_to(op, inputs[1], &shape)?.cast(out)?;
    let b = broadcast_to(op, inputs[2], &shape)?.cast(out)?;
    let c = cond.as_bool().unwrap_or_default();
    let data = match (&a.data, &b.data) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(c, a, b)),
        (Data::I64(a), Data::I64(b)) => Data::I64(pick(c, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(c, a, b)),
        _ => return Err(unsupported(op, "branches disagree on dtype after casting")),
    };
    Ok(Tensor { shape, data })
}

fn pick<T: Copy>(c: &[bool], a: &[T], b: &[T]) -> Vec<T> {
    c.iter()
        .zip(a.iter().zip(b))
        .map(|(&c, (&a, &b))| if c { a } else { b })
        .collect()
}

fn broadcast_to(op: &'static str, t: &Tensor, shape: &[usize]) -> Result<Tensor, InterpError> {
    Ok(Tensor {
        shape: shape.to_vec(),
        data: select(&t.data, &broadcast_map(op, &t.shape, shape)?),
    })
}

fn zip_map<T: Copy, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U) -> Vec<U> {
    a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect()
}

fn zip_try<T: Copy, U>(
    a: &[T],
    b: &[T],
    f: impl Fn(T, T) -> Result<U, InterpError>,
) -> Result<Vec<U>, InterpError> {
    a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect()
}

/// Comparison in the promoted dtype of the two inputs: f32 if either is f32, else i64 if
/// either is i64, else bool.
fn compare(op: &'static str, b: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor, InterpError> {
    let promoted = [DType::F32, DType::I64, DType::Bool]
        .into_iter()
        .find(|&d| x.dtype() == d || y.dtype() == d)
        .unwrap_or(DType::Bool);
    let (x, y) = (x.cast(promoted)?, y.cast(promoted)?);
    fn cmp<T: PartialOrd>(b: BinaryOp, p: T, q: T) -> bool {
        match b {
            BinaryOp::Eq => p == q,
            BinaryOp::Ne => p != q,
            BinaryOp::Lt => p < q,
            BinaryOp::Le => p <= q,
            BinaryOp::Gt => p > q,
            _ => p >= q,
        }
    }
    let v = match (&x.data, &y.data) {
        (Data::F32(p), Data::F32(q)) => zip_map(p, q, |p, q| cmp(b, p, q)),
        (Data::I64(p), Data::I64(q)) => zip_map(p, q, |p, q| cmp(b, p, q)),
        (Data::Bool(p), Data::Bool(q)) => zip_map(p, q, |p, q| cmp(b, p, q)),
        _ => {
            return Err(unsupported(
                op,
                "operands disagree on dtype after promotion",
            ))
        }
    };
    Ok(Tensor::bool(x.shape.clone(), v))
}

/// And/Or/Xor: logical on truthiness for a bool output, bitwise on integers otherwise.
fn logical(
    op: &'static str,
    b: BinaryOp,
    x: &Tensor,
    y: &Tensor,
    out: DType,
) -> Result<Tensor, InterpError> {
    match out {
        DType::Bool => {
            let (p, q) = (x.cast(DType::Bool)?, y.cast(DType::Bool)?);
            let (p, q) = (
                p.as_bool().unwrap_or_default(),
                q.as_bool().unwrap_or_default(),
            );
            let v = zip_map(p, q, |p, q| match b {
                BinaryOp::And => p && q,
                BinaryOp::Or => p || q,
                _ => p != q,
            });
            Ok(Tensor::bool(x.shape.clone(), v))
        }
        DType::I64 if x.dtype() != DType::F32 && y.dtype() != DType::F32 => {
            let (p, q) = (x.cast(DType::I64)?, y.cast(DType::I64)?);
            let (p, q) = (
                p.as_i64().unwrap_or_default(),
                q.as_i64().unwrap_or_default(),
            );
            let v = zip_map(p, q, |p, q| match b {
                BinaryOp::And => p & q,
                BinaryOp::Or => p | q,
                _ => p ^ q,
            });
            Ok(Tensor::i64(x.shape.clone(), v))
        }
        _ => Err(unsupported(
            op,
            format!(
                "bitwise {} of {} and {} into {out}",
                b.name(),
                x.dtype(),
                y.dtype()
            ),
        )),
    }
}

fn arithmetic(
    op: &'static str,
    b: BinaryOp,
    x: &Tensor,
    y: &Tensor,
) -> Result<Tensor, InterpError> {
    let data = match (&x.data, &y.data) {
        (Data::F32(p), Data::F32(q)) => Data::F32(zip_map(p, q, |p, q| float_op(b, p, q))),
        (Data::I64(p), Data::I64(q)) => Data::I64(zip_try(p, q, |p, q| int_op(op, b, p, q))?),
        (Data::Bool(p), Data::Bool(q)) => Data::Bool(zip_try(p, q, |p, q| bool_op(op, b, p, q))?),
        _ => return Err(unsupported(op, "operands disagree on dtype after casting")),
    };
    Ok(Tensor {
        shape: x.shape.clone(),
        data,
    })
}

/// Float arithmetic in f32, mirroring PyTorch's CPU kernels operation for operation so that
/// results agree bit for bit; only `pow` goes through f64, where rounding once is more
/// accurate than libm's f32 `powf`.
fn float_op(b: BinaryOp, p: f32, q: f32) -> f32 {
    match b {
        BinaryOp::Add => p + q,
        BinaryOp::Sub => p - q,
        BinaryOp::Mul => p * q,
        BinaryOp::Div => p / q,
        BinaryOp::FloorDiv => floor_div_f32(p, q),
        BinaryOp::TruncDiv => (p / q).trunc(),
        BinaryOp::Rem => {
            // fmod is exact; shifting by the divisor moves the result to the divisor's sign.
            let m = p % q;
            if m != 0.0 && (q < 0.0) != (m < 0.0) {
                m + q
            } else {
                m
            }
        }
        BinaryOp::Pow => (p as f64).powf(q as f64) as f32,
        BinaryOp::Maximum => {
            if p.is_nan() || q.is_nan() {
                f32::NAN
            } else {
                p.max(q)
            }
        }
        BinaryOp::Minimum => {
            if p.is_nan() || q.is_nan() {
                f32::NAN
            } else {
                p.min(q)
            }
        }
        // Comparisons and logical ops never reach here: `binary` routes them away.
        _ => f32::NAN,
    }
}

/// PyTorch's `div_floor_floating`: floor(p / q) computed from the exact fmod so that a
/// quotient just below an integer is not rounded up to it first.
fn floor_div_f32(p: f32, q: f32) -> f32 {
    if q == 0.0 {
        return p / q;
    }
    let m = p % q;
    let mut div = (p - m) / q;
    if m != 0.0 && (q < 0.0) != (m < 0.0) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0f32.copysign(p / q);
    }
    let f = div.floor();
    if div - f > 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// Integer arithmetic with Python's rounding conventions; overflow wraps as in PyTorch.
fn int_op(op: &'static str, b: BinaryOp, p: i64, q: i64) -> Result<i64, InterpError> {
    let nonzero = |q: i64| {
        if q == 0 {
            Err(InterpError::DivisionByZero { op })
        } else {
            Ok(q)
        }
    };
    Ok(match b {
        BinaryOp::Add => p.wrapping_add(q),
        BinaryOp::Sub => p.wrapping_sub(q),
        BinaryOp::Mul => p.wrapping_mul(q),
        BinaryOp::FloorDiv => {
            let q = nonzero(q)?;
            let d = p.wrapping_div(q);
            if p.wrapping_rem(q) != 0 && ((p < 0) != (q < 0)) {
                d - 1
            } else {
                d
            }
        }
        BinaryOp::TruncDiv => p.wrapping_div(nonzero(q)?),
        BinaryOp::Rem => {
            let q = nonzero(q)?;
            let r = p.wrapping_rem(q);
            if r != 0 && ((r < 0) != (q < 0)) {
                r + q
            } else {
                r
            }
        }
        BinaryOp::Pow => int_pow(op, p, q)?,
        BinaryOp::Maximum => p.max(q),
        BinaryOp::Minimum => p.min(q),
        BinaryOp::Div => {
            return Err(unsupported(op, "true division cannot produce i64"));
        }
        other => return Err(unsupported(op, format!("`{}` on i64", other.name()))),
    })
}

/// Exponentiation by squaring with wrapping multiplication.
fn int_pow(op: &'static str, base: i64, exp: i64) -> Result<i64, InterpError> {
    if exp < 0 {
        return Err(InterpError::Arithmetic {
            op,
            reason: format!("integer {base} to the negative power {exp}"),
        });
    }
    let (mut result, mut base, mut exp) = (1i64, base, exp as u64);
    while exp > 0 {
        if exp & 1 == 1 {
            result = result.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    Ok(result)
}

/// PyTorch defines add and mul on bool as or and and; max and min follow the same order.
fn bool_op(op: &'static str, b: BinaryOp, p: bool, q: bool) -> Result<bool, InterpError> {
    match b {
        BinaryOp::Add | BinaryOp::Maximum => Ok(p || q),
        BinaryOp::Mul | BinaryOp::Minimum => Ok(p && q),
        other => Err(unsupported(op, format!("`{}` on bool", other.name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(b: BinaryOp, x: &Tensor, y: &Tensor, out: DType) -> Result<Tensor, InterpError> {
        binary(b.name(), b, &[x, y], out)
    }

    #[test]
    fn broadcasting_with_a_zero_d_operand() {
        let x = Tensor::f32(vec![2, 1], vec![1.0, 2.0]);
        let y = Tensor::f32(vec![3], vec![10.0, 20.0, 30.0]);
        let s = Tensor::f32(vec![], vec![0.5]);
        let z = bin(BinaryOp::Add, &x, &y, DType::F32).unwrap();
        assert_eq!(z.shape, vec![2, 3]);
        assert_eq!(z.as_f32().unwrap(), &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
        let z = bin(BinaryOp::Mul, &s, &x, DType::F32).unwrap();
        assert_eq!(z, Tensor::f32(vec![2, 1], vec![0.5, 1.0]));
        let z = bin(BinaryOp::Sub, &s, &s, DType::F32).unwrap();
        assert_eq!(z, Tensor::f32(vec![], vec![0.0]));
        assert!(bin(
            BinaryOp::Add,
            &y,
            &Tensor::f32(vec![2], vec![0.0; 2]),
            DType::F32
        )
        .is_err());
    }

    #[test]
    fn integer_floor_div_and_rem_follow_python() {
        // torch.floor_divide(torch.tensor([-7,7,-7,7]), torch.tensor([2,-2,-2,2])) == [-4,-4,3,3]
        // torch.remainder(same) == [1,-1,-1,1]
        let a = Tensor::i64(vec![4], vec![-7, 7, -7, 7]);
        let b = Tensor::i64(vec![4], vec![2, -2, -2, 2]);
        let d = bin(BinaryOp::FloorDiv, &a, &b, DType::I64).unwrap();
        assert_eq!(d.as_i64().unwrap(), &[-4, -4, 3, 3]);
        let r = bin(BinaryOp::Rem, &a, &b, DType::I64).unwrap();
        assert_eq!(r.as_i64().unwrap(), &[1, -1, -1, 1]);
        let t = bin(BinaryOp::TruncDiv, &a, &b, DType::I64).unwrap();
        assert_eq!(t.as_i64().unwrap(), &[-3, -3, 3, 3]);
        let zero = Tensor::i64(vec![], vec![0]);
        for op in [BinaryOp::FloorDiv, BinaryOp::TruncDiv, BinaryOp::Rem] {
            assert!(matches!(
                bin(op, &a, &zero, DType::I64),
                Err(InterpError::DivisionByZero { .. })
            ));
        }
        // i64::MIN // -1 wraps to i64::MIN in PyTorch instead of trapping.
        let m = Tensor::i64(vec![], vec![i64::MIN]);
        let n = Tensor::i64(vec![], vec![-1]);
        let d = bin(BinaryOp::FloorDiv, &m, &n, DType::I64).unwrap();
        assert_eq!(d.as_i64().unwrap(), &[i64::MIN]);
    }

    #[test]
    fn float_floor_div_and_rem_follow_pytorch() {
        // torch.floor_divide(torch.tensor([inf,-7.,7.,1.,5.,-0.]),
        //                    torch.tensor([2.,2.,-2.,0.1,0.,3.])) == [nan,-4,-4,9,inf,-0]
        let a = Tensor::f32(vec![6], vec![f32::INFINITY, -7.0, 7.0, 1.0, 5.0, -0.0]);
        let b = Tensor::f32(vec![6], vec![2.0, 2.0, -2.0, 0.1, 0.0, 3.0]);
        let d = bin(BinaryOp::FloorDiv, &a, &b, DType::F32).unwrap();
        let d = d.as_f32().unwrap();
        assert!(d[0].is_nan());
        assert_eq!(d[1..5], [-4.0, -4.0, 9.0, f32::INFINITY]);
        assert!(d[5] == 0.0 && d[5].is_sign_negative());
        // torch.remainder(torch.tensor([-7.5,7.5,-7.5,1e30]), torch.tensor([2.,-2.,-2.,3.]))
        // == [0.5,-0.5,-1.5,0.0]
        let a = Tensor::f32(vec![4], vec![-7.5, 7.5, -7.5, 1e30]);
        let b = Tensor::f32(vec![4], vec![2.0, -2.0, -2.0, 3.0]);
        let r = bin(BinaryOp::Rem, &a, &b, DType::F32).unwrap();
        assert_eq!(r.as_f32().unwrap(), &[0.5, -0.5, -1.5, 0.0]);
    }

    #[test]
    fn pow_maximum_and_mixed_dtypes() {
        let a = Tensor::i64(vec![3], vec![2, -3, 7]);
        let e = Tensor::i64(vec![3], vec![10, 3, 0]);
        let p = bin(BinaryOp::Pow, &a, &e, DType::I64).unwrap();
        assert_eq!(p.as_i64().unwrap(), &[1024, -27, 1]);
        let neg = Tensor::i64(vec![], vec![-1]);
        assert!(bin(BinaryOp::Pow, &a, &neg, DType::I64).is_err());
        // An i64 tensor plus a 0-d f32 into an f32 output: torch.tensor([2,-3,7]) + 0.5
        let h = Tensor::f32(vec![], vec![0.5]);
        let s = bin(BinaryOp::Add, &a, &h, DType::F32).unwrap();
        assert_eq!(s, Tensor::f32(vec![3], vec![2.5, -2.5, 7.5]));
        // torch.maximum(torch.tensor([nan,1.]), torch.tensor([1.,nan])) == [nan, nan]
        let x = Tensor::f32(vec![3], vec![f32::NAN, 1.0, 2.0]);
        let y = Tensor::f32(vec![3], vec![1.0, f32::NAN, -1.0]);
        let m = bin(BinaryOp::Maximum, &x, &y, DType::F32).unwrap();
        let m = m.as_f32().unwrap();
        assert!(m[0].is_nan() && m[1].is_nan() && m[2] == 2.0);
        let m = bin(BinaryOp::Minimum, &x, &y, DType::F32).unwrap();
        assert_eq!(m.as_f32().unwrap()[2], -1.0);
        assert!(bin(BinaryOp::Div, &a, &a, DType::I64).is_err());
    }

    #[test]
    fn comparisons_promote_and_yield_bool() {
        // torch.tensor([1, 2, 3]) < torch.tensor(2.5) == [True, True, False]
        let a = Tensor::i64(vec![3], vec![1, 2, 3]);
        let h = Tensor::f32(vec![], vec![2.5]);
        let c = bin(BinaryOp::Lt, &a, &h, DType::Bool).unwrap();
        assert_eq!(c, Tensor::bool(vec![3], vec![true, true, false]));
        let nan = Tensor::f32(vec![], vec![f32::NAN]);
        let c = bin(BinaryOp::Ne, &nan, &nan, DType::Bool).unwrap();
        assert_eq!(c.as_bool().unwrap(), &[true]);
        let t = Tensor::bool(vec![2], vec![true, false]);
        let c = bin(
            BinaryOp::Gt,
            &t,
            &Tensor::bool(vec![], vec![false]),
            DType::Bool,
        )
        .unwrap();
        assert_eq!(c.as_bool().unwrap(), &[true, false]);
    }

    #[test]
    fn logical_and_bitwise() {
        let x = Tensor::f32(vec![3], vec![0.0, 0.5, 2.0]);
        let y = Tensor::i64(vec![3], vec![3, 0, 1]);
        let c = bin(BinaryOp::Xor, &x, &y, DType::Bool).unwrap();
        assert_eq!(c.as_bool().unwrap(), &[true, true, false]);
        let c = bin(BinaryOp::And, &x, &y, DType::Bool).unwrap();
        assert_eq!(c.as_bool().unwrap(), &[false, false, true]);
        let p = Tensor::i64(vec![2], vec![12, -1]);
        let q = Tensor::i64(vec![2], vec![10, 6]);
        let c = bin(BinaryOp::And, &p, &q, DType::I64).unwrap();
        assert_eq!(c.as_i64().unwrap(), &[8, 6]);
        let c = bin(BinaryOp::Xor, &p, &q, DType::I64).unwrap();
        assert_eq!(c.as_i64().unwrap(), &[6, -7]);
        assert!(bin(BinaryOp::Or, &x, &q, DType::I64).is_err());
        // bool add is or, bool mul is and; bool sub is refused as in PyTorch.
        let t = Tensor::bool(vec![2], vec![true, false]);
        let f = Tensor::bool(vec![2], vec![true, true]);
        assert_eq!(
            bin(BinaryOp::Mul, &t, &f, DType::Bool)
                .unwrap()
                .as_bool()
                .unwrap(),
            &[true, false]
        );
        assert!(bin(BinaryOp::Sub, &t, &f, DType::Bool).is_err());
    }

    #[test]
    fn where_three_way_broadcast() {
        // torch.where(torch.tensor([[True],[False]]), torch.tensor([1, 2]), torch.tensor(0.5))
        // == [[1., 2.], [0.5, 0.5]]
        let c = Tensor::bool(vec![2, 1], vec![true, false]);
        let a = Tensor::i64(vec![2], vec![1, 2]);
        let b = Tensor::f32(vec![], vec![0.5]);
        let w = where_("where", &[&c, &a, &b], DType::F32).unwrap();
        assert_eq!(w, Tensor::f32(vec![2, 2], vec![1.0, 2.0, 0.5, 0.5]));
        // A float condition counts by truthiness.
        let c = Tensor::f32(vec![2], vec![0.0, -3.0]);
        let w = where_("where", &[&c, &a, &a], DType::I64).unwrap();
        assert_eq!(w.as_i64().unwrap(), &[1, 2]);
    }
}
