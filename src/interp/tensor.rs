//! Dense host tensors for the reference interpreter. Invariant: `data.len() == shape.product()`,
//! elements in row-major (C) order.

use super::InterpError;
use crate::ir::{DType, TensorType};

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            v.len(),
            "shape and data disagree"
        );
        Tensor {
            shape,
            data: Data::F32(v),
        }
    }

    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            v.len(),
            "shape and data disagree"
        );
        Tensor {
            shape,
            data: Data::I64(v),
        }
    }

    pub fn bool(shape: Vec<usize>, v: Vec<bool>) -> Tensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            v.len(),
            "shape and data disagree"
        );
        Tensor {
            shape,
            data: Data::Bool(v),
        }
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            Data::F32(_) => DType::F32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape.clone())
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decodes little-endian bytes of type `ty`. Only the interpreter's dtypes are accepted.
    pub fn from_le_bytes(ty: &TensorType, bytes: &[u8]) -> Result<Tensor, InterpError> {
        let n = ty.numel();
        if bytes.len() != n * ty.dtype.size() {
            return Err(InterpError::ByteLength {
                ty: ty.clone(),
                expected: n * ty.dtype.size(),
                actual: bytes.len(),
            });
        }
        let shape = ty.shape.clone();
        let data = match ty.dtype {
            DType::F32 => Data::F32(
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            DType::I64 => Data::I64(
                bytes
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            DType::Bool => Data::Bool(bytes.iter().map(|&b| b != 0).collect()),
            other => return Err(InterpError::UnsupportedDType(other)),
        };
        Ok(Tensor { shape, data })
    }

    /// Encodes the elements as little-endian bytes (bool as 0/1).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.data {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::Bool(v) => v.iter().map(|&b| b as u8).collect(),
        }
    }

    /// Converts to `to` with PyTorch's rules: float→int truncates toward zero, anything→bool is
    /// `!= 0`, bool→number is 0 or 1.
    pub fn cast(&self, to: DType) -> Result<Tensor, InterpError> {
        let shape = self.shape.clone();
        let data = match (&self.data, to) {
            (Data::F32(v), DType::F32) => Data::F32(v.clone()),
            (Data::F32(v), DType::I64) => Data::I64(v.iter().map(|&x| x as i64).collect()),
            (Data::F32(v), DType::Bool) => Data::Bool(v.iter().map(|&x| x != 0.0).collect()),
            (Data::I64(v), DType::F32) => Data::F32(v.iter().map(|&x| x as f32).collect()),
            (Data::I64(v), DType::I64) => Data::I64(v.clone()),
            (Data::I64(v), DType::Bool) => Data::Bool(v.iter().map(|&x| x != 0).collect()),
            (Data::Bool(v), DType::F32) => Data::F32(v.iter().map(|&b| b as u8 as f32).collect()),
            (Data::Bool(v), DType::I64) => Data::I64(v.iter().map(|&b| b as i64).collect()),
            (Data::Bool(v), DType::Bool) => Data::Bool(v.clone()),
            (_, other) => return Err(InterpError::UnsupportedDType(other)),
        };
        Ok(Tensor { shape, data })
    }

    /// The elements as f32, if this is an f32 tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }
}

/// Row-major strides, in elements, of a contiguous tensor of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}
