//! The on-disk form of a [`Graph`], as the build cache stores a stage's graph output.
//! Invariant: `decode(encode(g))` equals `g`, constants included, and `encode` is a pure
//! function of the graph, so equal graphs give equal bytes.
//!
//! ```text
//! offset 0   "ETIR"                     magic
//!        4   u32 LE                     format version (FORMAT_VERSION)
//!        8   u64 LE                     header length H
//!       16   H bytes                    the header: postcard encoding of `Header`
//!            zero padding to 64
//!            constant 0's bytes         each constant starts 64-byte aligned, in
//!            zero padding to 64         `Graph::constants` order; the header records
//!            constant 1's bytes ...     every offset and length
//! ```
//!
//! The structure goes through postcard because it is compact, keeps `f64` attributes
//! bit-exact and, unlike JSON, has no trouble with infinities. Constants stay raw and aligned
//! so that a decoded graph borrows them from the memory-mapped object instead of copying.

use super::graph::{Backing, ConstData, ConstKind, Constant, Graph, Node, Value, ValueDef};
use super::ValueId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"ETIR";
/// Bumped whenever the layout or any serialized IR type changes shape.
pub const FORMAT_VERSION: u32 = 2;
const ALIGN: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("not an etpkg graph (bad magic)")]
    Magic,
    #[error("graph format version {found}, this etpkg reads version {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("graph is truncated")]
    Truncated,
    #[error("graph header does not decode: {0}")]
    Header(String),
    #[error("graph is inconsistent: {0}")]
    Inconsistent(String),
}

#[derive(Serialize, Deserialize)]
struct ConstMeta {
    value: ValueId,
    kind: ConstKind,
    fqn: Option<String>,
    offset: u64,
    len: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    values: Vec<Value>,
    nodes: Vec<Node>,
    constants: Vec<ConstMeta>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
}

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Encodes `graph` into the layout above.
pub fn encode(graph: &Graph) -> Vec<u8> {
    // Offsets are relative to the start of the data region, which begins after the header;
    // computing them first keeps the header's own length out of them.
    let mut offset = 0usize;
    let constants = graph
        .constants
        .iter()
        .map(|c| {
            let len = c.data.bytes().len();
            let meta = ConstMeta {
                value: c.value,
                kind: c.kind,
                fqn: c.fqn.clone(),
                offset: offset as u64,
                len: len as u64,
            };
            offset = align_up(offset + len);
            meta
        })
        .collect();
    let header = Header {
        values: graph.values.clone(),
        nodes: graph.nodes.clone(),
        constants,
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.clone(),
    };
    let head = postcard::to_stdvec(&header).expect("postcard encodes every IR type");
    let data_start = align_up(16 + head.len());
    let mut out = Vec::with_capacity(data_start + offset);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for c in &graph.constants {
        out.resize(align_up(out.len()), 0);
        out.extend_from_slice(c.data.bytes());
    }
    out.resize(align_up(out.len()), 0);
    out
}

/// Decodes a graph whose constants borrow `backing`. Every index and byte range is checked,
/// so a damaged object is an error, not a panic.
pub fn decode(backing: Arc<Backing>) -> Result<Graph, DecodeError> {
    let bytes: &[u8] = &backing;
    if bytes.len() < 16 {
        return Err(if bytes.len() >= 4 && &bytes[..4] != MAGIC {
            DecodeError::Magic
        } else {
            DecodeError::Truncated
        });
    }
    if &bytes[..4] != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version { found: version });
    }
    let head_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    let head_end = usize::try_from(head_len)
        .ok()
        .and_then(|n| n.checked_add(16))
        .filter(|&e| e <= bytes.len())
        .ok_or(DecodeError::Truncated)?;
    let header: Header = postcard::from_bytes(&bytes[16..head_end])
        .map_err(|e| DecodeError::Header(e.to_string()))?;
    let data_start = align_up(head_end);
    check_ids(&header)?;
    let mut constants = Vec::with_capacity(header.constants.len());
    for (i, c) in header.constants.into_iter().enumerate() {
        let range = usize::try_from(c.offset)
            .ok()
            .zip(usize::try_from(c.len).ok())
            .and_then(|(o, l)| {
                let start = data_start.checked_add(o)?;
                Some((start, start.checked_add(l)?))
            })
            .filter(|&(_, end)| end <= bytes.len())
            .ok_or(DecodeError::Truncated)?;
        let value = &header.values[c.value.index()];
        if value.def != ValueDef::Const(super::ConstId(i as u32)) {
            return Err(DecodeError::Inconsistent(format!(
                "constant {i} names value `{}`, which is not defined as that constant",
                value.name
            )));
        }
        if range.1 - range.0 != value.ty.byte_size() {
            return Err(DecodeError::Inconsistent(format!(
                "constant `{}` holds {} bytes, its type {} needs {}",
                value.name,
                range.1 - range.0,
                value.ty,
                value.ty.byte_size()
            )));
        }
        constants.push(Constant {
            value: c.value,
            kind: c.kind,
            fqn: c.fqn,
            data: ConstData::Mapped {
                map: backing.clone(),
                offset: range.0,
                len: range.1 - range.0,
            },
        });
    }
    Ok(Graph {
        values: header.values,
        nodes: header.nodes,
        constants,
        inputs: header.inputs,
        outputs: header.outputs,
    })
}

/// Checks that every id the header mentions is in range and that values are defined where
/// they say, so that later `Graph` accessors cannot index out of bounds.
fn check_ids(h: &Header) -> Result<(), DecodeError> {
    let nv = h.values.len();
    let bad = |what: &str| Err(DecodeError::Inconsistent(what.to_string()));
    let in_range = |v: &ValueId| v.index() < nv;
    if !h.inputs.iter().chain(&h.outputs).all(in_range) {
        return bad("an input or output names a value that does not exist");
    }
    for c in &h.constants {
        if !in_range(&c.value) {
            return bad("a constant names a value that does not exist");
        }
    }
    for (i, n) in h.nodes.iter().enumerate() {
        if !n.inputs.iter().all(in_range) || !in_range(&n.output) {
            return bad("a node names a value that does not exist");
        }
        if h.values[n.output.index()].def != ValueDef::Node(super::NodeId(i as u32)) {
            return bad("a node's output is not defined by that node");
        }
    }
    for (i, v) in h.inputs.iter().enumerate() {
        if h.values[v.index()].def != ValueDef::Input(i) {
            return bad("an input value is not defined as that input");
        }
    }
    for v in &h.values {
        let ok = match v.def {
            ValueDef::Input(i) => i < h.inputs.len(),
            ValueDef::Const(c) => (c.0 as usize) < h.constants.len(),
            ValueDef::Node(n) => n.index() < h.nodes.len(),
        };
        if !ok {
            return bad("a value's definition is out of range");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{DType, Op, Origin, TensorType, UnaryOp};

    fn sample() -> Graph {
        let mut g = Graph::default();
        let x = g.add_input("x".into(), TensorType::new(DType::F32, vec![2, 3]));
        let w: Vec<u8> = (0..24u8).collect();
        let c = g.add_constant(
            "w".into(),
            TensorType::new(DType::F32, vec![2, 3]),
            ConstKind::Parameter,
            Some("layer.weight".into()),
            ConstData::Owned(w.into()),
        );
        let s = g.add_node(
            Op::Binary(crate::ir::BinaryOp::Add),
            vec![x, c],
            "s".into(),
            TensorType::new(DType::F32, vec![2, 3]),
            Origin {
                target: "aten.add.Tensor".into(),
                source: Some("m.py:3".into()),
            },
        );
        let y = g.add_node(
            Op::Pad {
                pads: vec![(1, -1)],
                value: f64::NEG_INFINITY,
            },
            vec![s],
            "y".into(),
            TensorType::new(DType::F32, vec![2, 3]),
            Origin::default(),
        );
        let z = g.add_node(
            Op::Unary(UnaryOp::Relu),
            vec![y],
            "z".into(),
            TensorType::new(DType::F32, vec![2, 3]),
            Origin::default(),
        );
        g.outputs = vec![z, x];
        g
    }

    fn backing(v: Vec<u8>) -> Arc<Backing> {
        Arc::new(Backing::Owned(v))
    }

    #[test]
    fn round_trips_exactly() {
        let g = sample();
        let bytes = encode(&g);
        let d = decode(backing(bytes.clone())).unwrap();
        assert_eq!(d.values, g.values);
        assert_eq!(d.nodes, g.nodes);
        assert_eq!(d.inputs, g.inputs);
        assert_eq!(d.outputs, g.outputs);
        assert_eq!(d.constants.len(), 1);
        assert_eq!(d.constants[0].data.bytes(), g.constants[0].data.bytes());
        assert_eq!(d.constants[0].fqn.as_deref(), Some("layer.weight"));
        // The constant is borrowed from the backing, aligned, not copied.
        match &d.constants[0].data {
            ConstData::Mapped { offset, .. } => assert_eq!(offset % ALIGN, 0),
            ConstData::Owned(_) => panic!("decoded constant was copied"),
        }
        // Encoding the decoded graph gives the same bytes: the format is canonical.
        assert_eq!(encode(&d), bytes);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error_or_a_valid_graph() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            let cut = bytes[..n].to_vec();
            // Cuts that only drop trailing padding still decode; nothing may panic.
            let _ = decode(backing(cut));
        }
        for i in 0..bytes.len().min(400) {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let _ = decode(backing(b));
        }
        assert!(matches!(
            decode(backing(b"ETIR".to_vec())),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(
            decode(backing(bytes[..20].to_vec())),
            Err(DecodeError::Truncated)
        ));
        let mut wrong = bytes.clone();
        wrong[0] = b'X';
        assert!(matches!(decode(backing(wrong)), Err(DecodeError::Magic)));
        let mut v2 = bytes;
        v2[4] = 9;
        assert!(matches!(
            decode(backing(v2)),
            Err(DecodeError::Version { found: 9 })
        ));
    }
}
