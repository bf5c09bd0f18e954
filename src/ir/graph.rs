//! The graph IR. Invariant: nodes are in a valid execution order and every value is defined
//! exactly once (a user input, a constant, or one node's output) before it is used.

use super::{Op, TensorType};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Index of a value in [`Graph::values`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a node in [`Graph::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ValueDef {
    /// The i-th user input of the program.
    Input(usize),
    /// A parameter, buffer or lifted constant, with its bytes in [`Graph::constants`].
    Const(ConstId),
    /// The output of a node.
    Node(NodeId),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// The name the archive gave this value (or a derived one for values lowering introduced).
    pub name: String,
    pub ty: TensorType,
    pub def: ValueDef,
}

/// Index of a constant in [`Graph::constants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConstId(pub u32);

/// What a constant is, as the export signature classified it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstKind {
    Parameter,
    Buffer,
    /// A lifted tensor constant, or one that lowering materialized (a scalar operand, `arange`).
    Tensor,
}

#[derive(Clone, Debug, Serialize)]
pub struct Constant {
    pub value: ValueId,
    pub kind: ConstKind,
    /// The fully qualified name in the exported module (`features.0.0.weight`), if any.
    pub fqn: Option<String>,
    #[serde(skip)]
    pub data: ConstData,
}

/// The bytes of a whole archive: memory-mapped from a file, or held in memory (fuzzing, tests).
pub enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    /// Reads a whole file: mapped when large, so that weights are not copied; read when small,
    /// where a mapping costs more than it saves.
    ///
    /// A mapped file that another process rewrites in place would change under the map. etpkg
    /// never writes in place (`crate::fsio` renames new files over old ones), and every reader
    /// of a file it does not own checks a digest of the bytes it read.
    pub fn read(path: &std::path::Path) -> std::io::Result<Backing> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len < 1 << 16 {
            let mut v = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut &file, &mut v)?;
            return Ok(Backing::Owned(v));
        }
        // SAFETY: read-only map; see above for why its bytes cannot change unnoticed.
        let map = unsafe { Mmap::map(&file)? };
        Ok(Backing::Mapped(map))
    }
}

impl std::ops::Deref for Backing {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// The raw, contiguous, little-endian bytes of a constant.
#[derive(Clone)]
pub enum ConstData {
    /// A byte range of the archive: weights are never copied on import.
    Mapped {
        map: Arc<Backing>,
        offset: usize,
        len: usize,
    },
    Owned(Arc<[u8]>),
}

impl ConstData {
    pub fn bytes(&self) -> &[u8] {
        match self {
            ConstData::Mapped { map, offset, len } => &map[*offset..*offset + *len],
            ConstData::Owned(b) => b,
        }
    }
}

impl fmt::Debug for ConstData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstData::Mapped { offset, len, .. } => write!(f, "Mapped({offset}+{len})"),
            ConstData::Owned(b) => write!(f, "Owned({})", b.len()),
        }
    }
}

/// Where a node came from, for diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    /// The ATen target the node was lowered from (`aten.conv2d.default`).
    pub target: String,
    /// The model's source line, from the node's `stack_trace` (`model.py:42`), if recorded.
    pub source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub op: Op,
    pub inputs: Vec<ValueId>,
    pub output: ValueId,
    pub origin: Origin,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Graph {
    pub values: Vec<Value>,
    pub nodes: Vec<Node>,
    pub constants: Vec<Constant>,
    /// User inputs in signature order.
    pub inputs: Vec<ValueId>,
    /// User outputs in signature order. A value may appear more than once, or be an input.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.index()]
    }

    pub fn ty(&self, id: ValueId) -> &TensorType {
        &self.values[id.index()].ty
    }

    pub fn add_value(&mut self, name: String, ty: TensorType, def: ValueDef) -> ValueId {
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value { name, ty, def });
        id
    }

    pub fn add_input(&mut self, name: String, ty: TensorType) -> ValueId {
        let id = self.add_value(name, ty, ValueDef::Input(self.inputs.len()));
        self.inputs.push(id);
        id
    }

    pub fn add_constant(
        &mut self,
        name: String,
        ty: TensorType,
        kind: ConstKind,
        fqn: Option<String>,
        data: ConstData,
    ) -> ValueId {
        let cid = ConstId(self.constants.len() as u32);
        let value = self.add_value(name, ty, ValueDef::Const(cid));
        self.constants.push(Constant {
            value,
            kind,
            fqn,
            data,
        });
        value
    }

    /// Appends a node whose output has type `ty`; returns the output value.
    pub fn add_node(
        &mut self,
        op: Op,
        inputs: Vec<ValueId>,
        name: String,
        ty: TensorType,
        origin: Origin,
    ) -> ValueId {
        let nid = NodeId(self.nodes.len() as u32);
        let output = self.add_value(name, ty, ValueDef::Node(nid));
        self.nodes.push(Node {
            op,
            inputs,
            output,
            origin,
        });
        output
    }

    /// The constant behind a value, if the value is one.
    pub fn constant(&self, id: ValueId) -> Option<&Constant> {
        match self.value(id).def {
            ValueDef::Const(c) => Some(&self.constants[c.0 as usize]),
            _ => None,
        }
    }
}
