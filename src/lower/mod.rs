//! Lowering: ATen nodes of either export flavour → etpkg's core op set. Invariant: every lowered
//! ATen output has exactly the dtype and shape the archive recorded for it.
//!
//! Each ATen op is handled by a rule in the file of its family (`conv.rs`, `linalg.rs`, ...).
//! A rule reads the node's arguments by their schema names, with the schema's defaults for
//! arguments the serializer omitted, and emits one or more core ops. Every emitted op is typed by
//! shape inference; the value bound to each ATen output is then checked against the archive's
//! metadata, which catches both lowering bugs and archives whose metadata disagrees with itself.

mod activation;
mod args;
mod composite;
mod conv;
mod creation;
mod elementwise;
mod index;
mod layout;
mod linalg;
mod norm;
mod pool;
mod reduce;
mod resize;

pub use args::Scalar;

use crate::ir::{infer, ConstData, ConstKind, DType, Graph, Op, Origin, TensorType, ValueId};
use crate::pt2::schema;
use args::Ctx;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use thiserror::Error;

/// Where in the model a lowering error happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub node: String,
    pub target: String,
    pub source: Option<String>,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node `{}` (`{}`)", self.node, self.target)?;
        if let Some(s) = &self.source {
            write!(f, ", from {s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum LowerError {
    #[error("unsupported op `{}` at node `{}`{}; etpkg has no lowering for it (`etpkg ops` lists the ops it covers)", site.target, site.node, site.source.as_ref().map(|s| format!(", from {s}")).unwrap_or_default())]
    UnsupportedOp { site: Box<Site> },
    #[error("{site}: {message}")]
    Invalid { site: Box<Site>, message: String },
    #[error("{site}: the archive says the result is {archive}, but lowering infers {ours}; the archive's metadata disagrees with its graph")]
    MetaMismatch {
        site: Box<Site>,
        archive: Box<TensorType>,
        ours: Box<TensorType>,
    },
    #[error("{site}: uses `{name}`, which no earlier node, input or constant defines")]
    UndefinedValue { site: Box<Site>, name: String },
    #[error("{site}: shape inference failed: {message}")]
    Infer { site: Box<Site>, message: String },
    #[error("graph output `{name}` is not defined by the graph")]
    UndefinedOutput { name: String },
}

/// A rule lowers one ATen node and returns the values bound to its outputs, in order; `None`
/// marks an output (such as batch norm's saved statistics) that has no lowering and must be
/// unused.
type Rule = fn(&mut Lowerer, &Ctx) -> Result<Vec<Option<ValueId>>, LowerError>;

/// All rules, keyed by the ATen target without its `torch.ops.aten.` prefix.
/// The rule tables of every family file.
const FAMILIES: &[&[(&str, Rule)]] = &[
    activation::RULES,
    composite::RULES,
    conv::RULES,
    creation::RULES,
    elementwise::RULES,
    index::RULES,
    layout::RULES,
    linalg::RULES,
    norm::RULES,
    pool::RULES,
    reduce::RULES,
    resize::RULES,
];

fn rules() -> &'static HashMap<&'static str, Rule> {
    static RULES: OnceLock<HashMap<&'static str, Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        FAMILIES
            .iter()
            .flat_map(|f| f.iter())
            .map(|&(name, rule)| (name, rule))
            .collect()
    })
}

/// Every ATen target etpkg can lower, sorted.
pub fn supported_targets() -> Vec<String> {
    let mut v: Vec<String> = rules().keys().map(|k| format!("aten.{k}")).collect();
    v.sort();
    v
}

const ATEN_PREFIX: &str = "torch.ops.aten.";

/// Builds the graph: `graph` already holds the user inputs and constants bound in `env`.
pub struct Lowerer<'a> {
    pub graph: Graph,
    env: HashMap<String, ValueId>,
    /// Names whose storage another live name shares (a view and its base). An in-place op on one
    /// of them would change the other too, which rebinding a single name cannot express.
    aliased: HashSet<String>,
    tensor_values: &'a HashMap<String, schema::TensorMeta>,
    site: Site,
}

impl<'a> Lowerer<'a> {
    pub fn new(
        graph: Graph,
        env: HashMap<String, ValueId>,
        tensor_values: &'a HashMap<String, schema::TensorMeta>,
    ) -> Self {
        Lowerer {
            graph,
            env,
            aliased: HashSet::new(),
            tensor_values,
            site: Site {
                node: String::new(),
                target: String::new(),
                source: None,
            },
        }
    }

    /// Lowers all `nodes` in order and binds the graph outputs named by `outputs`.
    pub fn run(mut self, nodes: &[schema::Node], outputs: &[String]) -> Result<Graph, LowerError> {
        for node in nodes {
            self.lower_node(node)?;
        }
        for name in outputs {
            let v = *self
                .env
                .get(name)
                .ok_or_else(|| LowerError::UndefinedOutput { name: name.clone() })?;
            self.graph.outputs.push(v);
        }
        Ok(self.graph)
    }

    fn lower_node(&mut self, node: &schema::Node) -> Result<(), LowerError> {
        let out_names: Vec<Option<String>> = node.outputs.iter().flat_map(output_names).collect();
        self.site = Site {
            node: node
                .name
                .clone()
                .or_else(|| out_names.iter().flatten().next().cloned())
                .unwrap_or_else(|| "<unnamed>".into()),
            target: node.target.clone(),
            source: node
                .metadata
                .get("stack_trace")
                .and_then(|s| source_line(s)),
        };
        let key = node.target.strip_prefix(ATEN_PREFIX);
        let rule = key
            .and_then(|k| rules().get(k))
            .ok_or_else(|| LowerError::UnsupportedOp {
                site: Box::new(self.site.clone()),
            })?;
        let ctx = Ctx::new(node, self.site.clone());
        let values = rule(self, &ctx)?;

        // An in-place op (`relu_`) also rebinds its `self` argument, so that later readers of the
        // mutated name see the new value.
        let op_name = key
            .unwrap_or_default()
            .split('.')
            .next()
            .unwrap_or_default();
        if op_name.ends_with('_') && !op_name.starts_with('_') {
            if let (Some(self_name), Some(Some(v))) = (ctx.tensor_name("self"), values.first()) {
                let unchanged = self.env.get(self_name) == Some(v);
                if !unchanged && self.aliased.contains(self_name) {
                    return Err(self.invalid(format!(
                        "in-place `{op_name}` on `{self_name}`, which shares storage with another \
                         tensor; export the graph after `run_decompositions()` to functionalize it"
                    )));
                }
                self.env.insert(self_name.to_string(), *v);
            }
        }

        if values.len() < out_names.len() {
            return Err(self.invalid(format!(
                "lowering produced {} outputs but the node has {}",
                values.len(),
                out_names.len()
            )));
        }
        for (name, value) in out_names.iter().zip(values) {
            let Some(name) = name else { continue };
            match value {
                Some(v) => {
                    self.check_meta(name, v)?;
                    self.env.insert(name.clone(), v);
                }
                None => {
                    // Outputs without a lowering are only allowed if nothing reads them; a
                    // later read reports `UndefinedValue` at the reader.
                    self.env.remove(name);
                }
            }
        }
        Ok(())
    }

    /// Checks a lowered value against the archive's metadata for the ATen output `name`.
    fn check_meta(&self, name: &str, v: ValueId) -> Result<(), LowerError> {
        let Some(meta) = self.tensor_values.get(name) else {
            return Ok(());
        };
        let archive = crate::pt2::tensor_type(meta).map_err(|e| self.invalid(e.to_string()))?;
        let ours = self.graph.ty(v);
        if &archive != ours {
            return Err(LowerError::MetaMismatch {
                site: Box::new(self.site.clone()),
                archive: Box::new(archive),
                ours: Box::new(ours.clone()),
            });
        }
        Ok(())
    }

    /// Resolves an argument's tensor name to its current value.
    pub fn value(&self, name: &str) -> Result<ValueId, LowerError> {
        self.env
            .get(name)
            .copied()
            .ok_or_else(|| LowerError::UndefinedValue {
                site: Box::new(self.site.clone()),
                name: name.to_string(),
            })
    }

    pub fn ty(&self, v: ValueId) -> &TensorType {
        self.graph.ty(v)
    }

    /// Marks `a` and `b` as sharing storage (a view and its base).
    pub fn mark_alias(&mut self, a: &str, b: &str) {
        self.aliased.insert(a.to_string());
        self.aliased.insert(b.to_string());
    }

    /// Emits `op` over `inputs`, typed by shape inference.
    pub fn emit(&mut self, op: Op, inputs: Vec<ValueId>) -> Result<ValueId, LowerError> {
        let tys: Vec<&TensorType> = inputs.iter().map(|&v| self.graph.ty(v)).collect();
        let ty = infer(&op, &tys).map_err(|e| LowerError::Infer {
            site: Box::new(self.site.clone()),
            message: e.to_string(),
        })?;
        let name = format!("{}.{}", self.site.node, self.graph.nodes.len());
        let origin = Origin {
            target: self.site.target.clone(),
            source: self.site.source.clone(),
        };
        Ok(self.graph.add_node(op, inputs, name, ty, origin))
    }

    /// A constant materialized by lowering (a scalar operand, `arange`, `full`).
    pub fn constant(&mut self, ty: TensorType, bytes: Vec<u8>) -> ValueId {
        let name = format!("{}.const{}", self.site.node, self.graph.constants.len());
        self.graph.add_constant(
            name,
            ty,
            ConstKind::Tensor,
            None,
            ConstData::Owned(bytes.into()),
        )
    }

    /// A 0-d constant holding a Python scalar: f32 for floats, i64 for ints, bool for bools, so
    /// that PyTorch's promotion of wrapped numbers yields the tensor's dtype.
    pub fn scalar(&mut self, s: Scalar) -> ValueId {
        let (dtype, bytes) = s.encode_default();
        self.constant(TensorType::new(dtype, vec![]), bytes)
    }

    /// A constant of `dtype` and `shape` filled with `s`.
    pub fn filled(
        &mut self,
        s: Scalar,
        dtype: DType,
        shape: Vec<usize>,
    ) -> Result<ValueId, LowerError> {
        let one = s.encode_as(dtype).ok_or_else(|| {
            self.invalid(format!("cannot materialize a constant of dtype {dtype}"))
        })?;
        let n: usize = shape.iter().product();
        let bytes = one.repeat(n);
        Ok(self.constant(TensorType::new(dtype, shape), bytes))
    }

    /// Casts `v` to `dtype` if it is not already of it.
    pub fn cast(&mut self, v: ValueId, dtype: DType) -> Result<ValueId, LowerError> {
        if self.ty(v).dtype == dtype {
            Ok(v)
        } else {
            self.emit(Op::Cast { to: dtype }, vec![v])
        }
    }

    pub fn invalid(&self, message: String) -> LowerError {
        LowerError::Invalid {
            site: Box::new(self.site.clone()),
            message,
        }
    }

    /// The archive's recorded type for the node's `i`-th output, for rules (creation ops) that
    /// take their dtype from it.
    pub fn output_meta(&self, ctx: &Ctx, i: usize) -> Result<TensorType, LowerError> {
        let name = ctx
            .output_name(i)
            .ok_or_else(|| self.invalid(format!("node has no output {i}")))?;
        let meta = self
            .tensor_values
            .get(name)
            .ok_or_else(|| self.invalid(format!("no metadata for output `{name}`")))?;
        crate::pt2::tensor_type(meta).map_err(|e| self.invalid(e.to_string()))
    }
}

fn output_names(arg: &schema::Argument) -> Vec<Option<String>> {
    match arg {
        schema::Argument::Tensor(n) => vec![Some(n.clone())],
        schema::Argument::Tensors(ns) => ns.iter().cloned().map(Some).collect(),
        schema::Argument::OptionalTensors(ns) => ns.clone(),
        schema::Argument::OptionalTensor(n) => vec![n.clone()],
        _ => vec![None],
    }
}

/// The most useful line of a node's `stack_trace`: the innermost frame outside PyTorch itself
/// (the user's model, or torchvision's), as `file.py:LINE: code`.
pub fn source_line(trace: &str) -> Option<String> {
    let mut best: Option<String> = None;
    let mut lines = trace.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("File \"") else {
            continue;
        };
        let Some((file, tail)) = rest.split_once('"') else {
            continue;
        };
        let lineno = tail
            .trim_start_matches(", line ")
            .split(',')
            .next()
            .unwrap_or("")
            .trim();
        let code = lines
            .peek()
            .filter(|l| !l.trim_start().starts_with("File \""))
            .map(|l| l.trim().to_string());
        let in_torch = file.contains("/torch/");
        let short = file.rsplit('/').next().unwrap_or(file);
        let here = match code {
            Some(c) if !c.is_empty() => format!("{short}:{lineno}: `{c}`"),
            _ => format!("{short}:{lineno}"),
        };
        if !in_torch || best.is_none() {
            best = Some(here);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_line_prefers_the_innermost_frame_outside_torch() {
        let trace = "File \"/tmp/m.py\", line 8, in forward\n    y = self.c(x)\n  File \"/venv/lib/site-packages/torch/nn/modules/conv.py\", line 565, in forward\n    return self._conv_forward(x)";
        assert_eq!(source_line(trace).unwrap(), "m.py:8: `y = self.c(x)`");
    }

    /// Lowers hand-written serialized nodes over one f32 input `x` of `shape`.
    fn lower_json(shape: &[usize], values: &str, nodes: &str) -> Result<Graph, LowerError> {
        let meta = |s: &[usize]| {
            let sizes: Vec<String> = s.iter().map(|d| format!("{{\"as_int\": {d}}}")).collect();
            format!(
                "{{\"dtype\": 7, \"sizes\": [{}], \"strides\": [], \"storage_offset\": {{\"as_int\": 0}}}}",
                sizes.join(",")
            )
        };
        let values = values
            .replace("META3", &meta(&[3]))
            .replace("METAX", &meta(shape));
        let tensor_values: HashMap<String, schema::TensorMeta> =
            serde_json::from_str(&values).unwrap();
        let nodes: Vec<schema::Node> = serde_json::from_str(nodes).unwrap();
        let mut graph = Graph::default();
        let x = graph.add_input("x".into(), TensorType::new(DType::F32, shape.to_vec()));
        let env = HashMap::from([("x".to_string(), x)]);
        Lowerer::new(graph, env, &tensor_values).run(&nodes, &[])
    }

    #[test]
    fn in_place_on_an_unbind_piece_is_refused() {
        // `a, b = x.unbind(0); a.relu_()` would change `x` too, which rebinding `a` cannot
        // express.
        let err = lower_json(
            &[2, 3],
            r#"{"x": METAX, "a": META3, "b": META3, "r": META3}"#,
            r#"[
              {"target": "torch.ops.aten.unbind.int",
               "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "x"}}}],
               "outputs": [{"as_tensors": [{"name": "a"}, {"name": "b"}]}]},
              {"target": "torch.ops.aten.relu_.default",
               "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "a"}}}],
               "outputs": [{"as_tensor": {"name": "r"}}]}
            ]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("shares storage"), "{err}");
    }

    #[test]
    fn no_target_has_two_rules() {
        // A second rule for a target would silently replace the first in the map.
        let listed: usize = FAMILIES.iter().map(|f| f.len()).sum();
        assert_eq!(listed, rules().len());
    }

    #[test]
    fn every_rule_key_is_a_plain_aten_overload() {
        for k in rules().keys() {
            assert_eq!(k.matches('.').count(), 1, "{k} should be `op.overload`");
        }
    }
}
