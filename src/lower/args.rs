//! Typed access to an ATen node's named arguments. Invariant: an omitted argument reads as the
//! default the caller passes, which is the op schema's default.

use super::{LowerError, Lowerer, Site};
use crate::ir::{DType, ValueId};
use crate::pt2::schema::{Argument, Node, SymIntArgument};

/// A Python scalar argument (`Scalar` in ATen schemas).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
            Scalar::Bool(b) => b as u8 as f64,
        }
    }

    /// The 0-d encoding PyTorch's promotion treats like this wrapped number.
    pub fn encode_default(self) -> (DType, Vec<u8>) {
        match self {
            Scalar::Int(i) => (DType::I64, i.to_le_bytes().to_vec()),
            Scalar::Float(f) => (DType::F32, (f as f32).to_le_bytes().to_vec()),
            Scalar::Bool(b) => (DType::Bool, vec![b as u8]),
        }
    }

    /// One element of `dtype` holding this value (float→int truncates), if `dtype` is one the
    /// interpreter computes with.
    pub fn encode_as(self, dtype: DType) -> Option<Vec<u8>> {
        Some(match dtype {
            DType::F32 => (self.as_f64() as f32).to_le_bytes().to_vec(),
            DType::I64 => {
                let v = match self {
                    Scalar::Int(i) => i,
                    Scalar::Float(f) => f as i64,
                    Scalar::Bool(b) => b as i64,
                };
                v.to_le_bytes().to_vec()
            }
            DType::Bool => vec![(self.as_f64() != 0.0) as u8],
            _ => return None,
        })
    }
}

/// One node's arguments, looked up by schema name.
pub struct Ctx<'n> {
    node: &'n Node,
    site: Site,
}

impl<'n> Ctx<'n> {
    pub fn new(node: &'n Node, site: Site) -> Self {
        Ctx { node, site }
    }

    fn err(&self, message: String) -> LowerError {
        LowerError::Invalid {
            site: Box::new(self.site.clone()),
            message,
        }
    }

    /// The argument named `name`, or None if the serializer omitted it (default) or it is None.
    pub fn get(&self, name: &str) -> Option<&'n Argument> {
        self.node
            .inputs
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.arg)
            .filter(|a| !matches!(a, Argument::None | Argument::OptionalTensor(None)))
    }

    fn wrong(&self, name: &str, want: &str, got: &Argument) -> LowerError {
        self.err(format!(
            "argument `{name}` should be {want}, found {}",
            got.kind()
        ))
    }

    pub fn output_name(&self, i: usize) -> Option<&'n str> {
        let mut names = self.node.outputs.iter().flat_map(|o| match o {
            Argument::Tensor(n) => vec![Some(n.as_str())],
            Argument::Tensors(ns) => ns.iter().map(|n| Some(n.as_str())).collect(),
            Argument::OptionalTensors(ns) => ns.iter().map(|n| n.as_deref()).collect(),
            _ => vec![None],
        });
        names.nth(i).flatten()
    }

    pub fn output_count(&self) -> usize {
        self.node
            .outputs
            .iter()
            .map(|o| match o {
                Argument::Tensors(ns) => ns.len(),
                Argument::OptionalTensors(ns) => ns.len(),
                _ => 1,
            })
            .sum()
    }

    /// The tensor name passed as `name`, if it is a tensor.
    pub fn tensor_name(&self, name: &str) -> Option<&'n str> {
        match self.get(name)? {
            Argument::Tensor(n) => Some(n),
            Argument::OptionalTensor(Some(n)) => Some(n),
            _ => None,
        }
    }

    /// A required tensor argument.
    pub fn tensor(&self, lw: &Lowerer, name: &str) -> Result<ValueId, LowerError> {
        match self.get(name) {
            Some(Argument::Tensor(n)) | Some(Argument::OptionalTensor(Some(n))) => lw.value(n),
            Some(other) => Err(self.wrong(name, "a tensor", other)),
            None => Err(self.err(format!("missing tensor argument `{name}`"))),
        }
    }

    /// An optional tensor argument.
    pub fn opt_tensor(&self, lw: &Lowerer, name: &str) -> Result<Option<ValueId>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.tensor(lw, name).map(Some),
        }
    }

    pub fn tensors(&self, lw: &Lowerer, name: &str) -> Result<Vec<ValueId>, LowerError> {
        match self.get(name) {
            Some(Argument::Tensors(ns)) => ns.iter().map(|n| lw.value(n)).collect(),
            Some(other) => Err(self.wrong(name, "a tensor list", other)),
            None => Err(self.err(format!("missing tensor list argument `{name}`"))),
        }
    }

    /// A list of optional tensors (`aten.index.Tensor`'s indices).
    pub fn opt_tensors(
        &self,
        lw: &Lowerer,
        name: &str,
    ) -> Result<Vec<Option<ValueId>>, LowerError> {
        match self.get(name) {
            Some(Argument::OptionalTensors(ns)) => ns
                .iter()
                .map(|n| n.as_ref().map(|n| lw.value(n)).transpose())
                .collect(),
            Some(Argument::Tensors(ns)) => ns.iter().map(|n| lw.value(n).map(Some)).collect(),
            Some(other) => Err(self.wrong(name, "a list of optional tensors", other)),
            None => Err(self.err(format!("missing argument `{name}`"))),
        }
    }

    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, LowerError> {
        match self.get(name) {
            None => Ok(default),
            Some(Argument::Int(i)) => Ok(*i),
            Some(Argument::Bool(b)) => Ok(*b as i64),
            Some(other) => Err(self.wrong(name, "an int", other)),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, LowerError> {
        match self.get(name) {
            None => Err(self.err(format!("missing int argument `{name}`"))),
            Some(_) => self.int_or(name, 0),
        }
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.int_or(name, 0).map(Some),
        }
    }

    /// An `int[]` argument; a lone int is accepted as a one-element list (schemas such as
    /// `int[2] padding=0` allow it).
    pub fn ints_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>, LowerError> {
        match self.get(name) {
            None => Ok(default.to_vec()),
            Some(Argument::Ints(v)) => Ok(v.clone()),
            Some(Argument::Int(i)) => Ok(vec![*i]),
            Some(Argument::SymInts(v)) => v
                .iter()
                .map(|s| match s {
                    SymIntArgument::AsInt(i) => Ok(*i),
                    SymIntArgument::AsName(n) => Err(self.err(format!(
                        "argument `{name}` uses the symbolic size `{n}`; etpkg compiles static \
                         shapes only, so export without `dynamic_shapes`"
                    ))),
                })
                .collect(),
            Some(other) => Err(self.wrong(name, "an int list", other)),
        }
    }

    pub fn ints(&self, name: &str) -> Result<Vec<i64>, LowerError> {
        match self.get(name) {
            None => Err(self.err(format!("missing int list argument `{name}`"))),
            Some(_) => self.ints_or(name, &[]),
        }
    }

    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.ints_or(name, &[]).map(Some),
        }
    }

    pub fn float_or(&self, name: &str, default: f64) -> Result<f64, LowerError> {
        match self.get(name) {
            None => Ok(default),
            Some(Argument::Float(f)) => Ok(*f),
            Some(Argument::Int(i)) => Ok(*i as f64),
            Some(other) => Err(self.wrong(name, "a float", other)),
        }
    }

    pub fn opt_float(&self, name: &str) -> Result<Option<f64>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.float_or(name, 0.0).map(Some),
        }
    }

    pub fn opt_floats(&self, name: &str) -> Result<Option<Vec<f64>>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(Argument::Floats(v)) => Ok(Some(v.clone())),
            Some(other) => Err(self.wrong(name, "a float list", other)),
        }
    }

    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, LowerError> {
        match self.get(name) {
            None => Ok(default),
            Some(Argument::Bool(b)) => Ok(*b),
            Some(Argument::Int(i)) => Ok(*i != 0),
            Some(other) => Err(self.wrong(name, "a bool", other)),
        }
    }

    pub fn string_or(&self, name: &str, default: &'n str) -> Result<&'n str, LowerError> {
        match self.get(name) {
            None => Ok(default),
            Some(Argument::String(s)) => Ok(s),
            Some(other) => Err(self.wrong(name, "a string", other)),
        }
    }

    /// A `Scalar` argument.
    pub fn scalar(&self, name: &str) -> Result<Scalar, LowerError> {
        match self.get(name) {
            Some(Argument::Int(i)) => Ok(Scalar::Int(*i)),
            Some(Argument::Float(f)) => Ok(Scalar::Float(*f)),
            Some(Argument::Bool(b)) => Ok(Scalar::Bool(*b)),
            Some(other) => Err(self.wrong(name, "a scalar", other)),
            None => Err(self.err(format!("missing scalar argument `{name}`"))),
        }
    }

    pub fn opt_scalar(&self, name: &str) -> Result<Option<Scalar>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.scalar(name).map(Some),
        }
    }

    /// An optional `ScalarType` argument (`dtype=`), mapped to etpkg's dtype.
    pub fn opt_dtype(&self, name: &str) -> Result<Option<DType>, LowerError> {
        match self.get(name) {
            None => Ok(None),
            Some(Argument::ScalarType(code)) => crate::pt2::dtype_from_code(*code)
                .map(Some)
                .map_err(|e| self.err(format!("argument `{name}`: {e}"))),
            Some(other) => Err(self.wrong(name, "a dtype", other)),
        }
    }

    /// A tensor argument, or a scalar materialized as a 0-d constant.
    pub fn tensor_or_scalar(&self, lw: &mut Lowerer, name: &str) -> Result<ValueId, LowerError> {
        match self.get(name) {
            Some(Argument::Tensor(_)) | Some(Argument::OptionalTensor(Some(_))) => {
                self.tensor(lw, name)
            }
            _ => {
                let s = self.scalar(name)?;
                Ok(lw.scalar(s))
            }
        }
    }
}
