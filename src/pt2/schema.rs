//! The serialized `ExportedProgram` (`models/<name>.json`) and payload configs, as far as etpkg
//! reads them. Invariant: these types mirror PyTorch's export schema field for field; meaning is
//! given to them elsewhere (`crate::lower`).
//!
//! Unions in the schema are JSON objects with a single key naming the variant
//! (`{"as_tensor": {"name": "x"}}`). Variants etpkg has no use for are kept by name, so an error
//! can say which one it met instead of failing the whole parse.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// The schema major version this reader understands. Minor versions only add fields.
pub const SUPPORTED_MAJOR: i64 = 8;

#[derive(Debug, Deserialize)]
pub struct ExportedProgram {
    pub graph_module: GraphModule,
    pub schema_version: SchemaVersion,
    #[serde(default)]
    pub torch_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SchemaVersion {
    pub major: i64,
    pub minor: i64,
}

#[derive(Debug, Deserialize)]
pub struct GraphModule {
    pub graph: Graph,
    pub signature: GraphSignature,
}

#[derive(Debug, Deserialize)]
pub struct Graph {
    pub inputs: Vec<Argument>,
    pub outputs: Vec<Argument>,
    pub nodes: Vec<Node>,
    pub tensor_values: HashMap<String, TensorMeta>,
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub target: String,
    pub inputs: Vec<NamedArgument>,
    pub outputs: Vec<Argument>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NamedArgument {
    pub name: String,
    pub arg: Argument,
}

#[derive(Debug, Deserialize)]
pub struct TensorMeta {
    pub dtype: i64,
    pub sizes: Vec<SymInt>,
    pub strides: Vec<SymInt>,
    pub storage_offset: SymInt,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymInt {
    AsInt(i64),
    AsExpr(IgnoredAny),
}

#[derive(Debug, Deserialize)]
pub struct TensorArgument {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionalTensor {
    AsTensor(TensorArgument),
    AsNone(IgnoredAny),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymIntArgument {
    AsInt(i64),
    AsName(String),
}

/// One argument value. `Other` keeps the variant name of anything etpkg does not interpret
/// (graphs of higher-order ops, custom objects, symbolic values, ...).
#[derive(Debug)]
pub enum Argument {
    None,
    Tensor(String),
    Tensors(Vec<String>),
    OptionalTensors(Vec<Option<String>>),
    OptionalTensor(Option<String>),
    Int(i64),
    Ints(Vec<i64>),
    SymInts(Vec<SymIntArgument>),
    Float(f64),
    Floats(Vec<f64>),
    Bool(bool),
    Bools(Vec<bool>),
    String(String),
    ScalarType(i64),
    MemoryFormat(i64),
    Layout(i64),
    Device(Device),
    Other(String),
}

#[derive(Debug, Deserialize)]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: String,
}

impl Argument {
    /// The schema's name for this variant, for diagnostics.
    pub fn kind(&self) -> &str {
        match self {
            Argument::None => "none",
            Argument::Tensor(_) => "tensor",
            Argument::Tensors(_) => "tensor list",
            Argument::OptionalTensors(_) => "optional tensor list",
            Argument::OptionalTensor(_) => "optional tensor",
            Argument::Int(_) => "int",
            Argument::Ints(_) => "int list",
            Argument::SymInts(_) => "symbolic int list",
            Argument::Float(_) => "float",
            Argument::Floats(_) => "float list",
            Argument::Bool(_) => "bool",
            Argument::Bools(_) => "bool list",
            Argument::String(_) => "string",
            Argument::ScalarType(_) => "dtype",
            Argument::MemoryFormat(_) => "memory format",
            Argument::Layout(_) => "layout",
            Argument::Device(_) => "device",
            Argument::Other(k) => k,
        }
    }
}

impl<'de> Deserialize<'de> for Argument {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ArgumentVisitor)
    }
}

struct ArgumentVisitor;

impl<'de> Visitor<'de> for ArgumentVisitor {
    type Value = Argument;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an argument object with a single `as_*` key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Argument, A::Error> {
        let key: String = map
            .next_key()?
            .ok_or_else(|| de::Error::custom("empty argument object"))?;
        let arg = match key.as_str() {
            "as_none" => {
                map.next_value::<IgnoredAny>()?;
                Argument::None
            }
            "as_tensor" => Argument::Tensor(map.next_value::<TensorArgument>()?.name),
            "as_tensors" => Argument::Tensors(
                map.next_value::<Vec<TensorArgument>>()?
                    .into_iter()
                    .map(|t| t.name)
                    .collect(),
            ),
            "as_optional_tensors" => Argument::OptionalTensors(
                map.next_value::<Vec<OptionalTensor>>()?
                    .into_iter()
                    .map(optional_name)
                    .collect(),
            ),
            "as_optional_tensor" => {
                Argument::OptionalTensor(optional_name(map.next_value::<OptionalTensor>()?))
            }
            "as_int" => Argument::Int(map.next_value()?),
            "as_ints" => Argument::Ints(map.next_value()?),
            "as_sym_ints" => Argument::SymInts(map.next_value()?),
            "as_float" => Argument::Float(map.next_value::<JsonFloat>()?.0),
            "as_floats" => Argument::Floats(
                map.next_value::<Vec<JsonFloat>>()?
                    .into_iter()
                    .map(|f| f.0)
                    .collect(),
            ),
            "as_bool" => Argument::Bool(map.next_value()?),
            "as_bools" => Argument::Bools(map.next_value()?),
            "as_string" => Argument::String(map.next_value()?),
            "as_scalar_type" => Argument::ScalarType(map.next_value()?),
            "as_memory_format" => Argument::MemoryFormat(map.next_value()?),
            "as_layout" => Argument::Layout(map.next_value()?),
            "as_device" => Argument::Device(map.next_value()?),
            _ => {
                map.next_value::<IgnoredAny>()?;
                Argument::Other(key)
            }
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("argument object has more than one key"));
        }
        Ok(arg)
    }
}

/// A float as PyTorch's serializer writes it: a JSON number, or one of the strings
/// `"Infinity"`, `"-Infinity"` and `"NaN"` for values JSON cannot hold.
struct JsonFloat(f64);

impl<'de> Deserialize<'de> for JsonFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonFloat;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, \"Infinity\", \"-Infinity\" or \"NaN\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonFloat, E> {
                Ok(JsonFloat(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonFloat, E> {
                match v {
                    "Infinity" | "inf" => Ok(JsonFloat(f64::INFINITY)),
                    "-Infinity" | "-inf" => Ok(JsonFloat(f64::NEG_INFINITY)),
                    "NaN" | "nan" => Ok(JsonFloat(f64::NAN)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn optional_name(t: OptionalTensor) -> Option<String> {
    match t {
        OptionalTensor::AsTensor(t) => Some(t.name),
        OptionalTensor::AsNone(_) => None,
    }
}

#[derive(Debug, Deserialize)]
pub struct GraphSignature {
    pub input_specs: Vec<InputSpec>,
    pub output_specs: Vec<OutputSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSpec {
    UserInput {
        arg: Argument,
    },
    Parameter {
        arg: TensorArgument,
        parameter_name: String,
    },
    Buffer {
        arg: TensorArgument,
        buffer_name: String,
    },
    TensorConstant {
        arg: TensorArgument,
        tensor_constant_name: String,
    },
    CustomObj(IgnoredAny),
    Token(IgnoredAny),
    ConstantInput(IgnoredAny),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputSpec {
    UserOutput { arg: Argument },
    LossOutput(IgnoredAny),
    BufferMutation(IgnoredAny),
    GradientToParameter(IgnoredAny),
    GradientToUserInput(IgnoredAny),
    UserInputMutation(IgnoredAny),
    Token(IgnoredAny),
    ParameterMutation(IgnoredAny),
}

impl OutputSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            OutputSpec::UserOutput { .. } => "user output",
            OutputSpec::LossOutput(_) => "loss output",
            OutputSpec::BufferMutation(_) => "buffer mutation",
            OutputSpec::GradientToParameter(_) => "gradient to parameter",
            OutputSpec::GradientToUserInput(_) => "gradient to user input",
            OutputSpec::UserInputMutation(_) => "user input mutation",
            OutputSpec::Token(_) => "token",
            OutputSpec::ParameterMutation(_) => "parameter mutation",
        }
    }
}

/// `data/weights/<model>_weights_config.json` and `data/constants/<model>_constants_config.json`.
#[derive(Debug, Deserialize)]
pub struct PayloadConfig {
    pub config: HashMap<String, PayloadMeta>,
}

#[derive(Debug, Deserialize)]
pub struct PayloadMeta {
    pub path_name: String,
    pub use_pickle: bool,
    pub tensor_meta: Option<TensorMeta>,
}
