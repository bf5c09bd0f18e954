//! Reading `torch.export` archives (`.pt2`). Invariant: an imported program's constants borrow
//! the memory-mapped archive; nothing is copied unless a weight is stored non-contiguously.
//!
//! Layout of an archive as `torch.export.save` writes it (all records stored, 64-byte aligned):
//!
//! ```text
//! <root>/                               # the zip's single top folder, any name
//!   archive_format                      # "pt2"
//!   archive_version                     # "0"
//!   byteorder                           # "little" (optional)
//!   models/<model>.json                 # the serialized ExportedProgram (schema 8.x)
//!   data/weights/<model>_weights_config.json    # FQN -> {path_name, tensor_meta, use_pickle}
//!   data/weights/weight_<i>             # raw storage bytes, shared by views of one storage
//!   data/constants/<model>_constants_config.json
//!   data/constants/tensor_<i>           # raw bytes of lifted tensor constants
//!   data/sample_inputs/<model>.pt       # pickled example inputs (ignored)
//! ```

pub mod schema;
mod zip;

pub use zip::{crc32, ZipError, ZipIndex};

use crate::ir::{Backing, ConstData, ConstKind, DType, Graph, TensorType, ValueId};
use crate::lower::{LowerError, Lowerer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// An import failure, always naming the archive.
#[derive(Debug, Error)]
#[error("{}: {kind}", path.display())]
pub struct ImportError {
    pub path: PathBuf,
    pub kind: ImportErrorKind,
}

#[derive(Debug, Error)]
pub enum ImportErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Zip(#[from] ZipError),
    #[error("not a torch.export archive: no `archive_format` record (write it with `torch.export.save`)")]
    NotPt2,
    #[error("`{member}` says \"{found}\", expected \"pt2\"")]
    WrongFormat { member: String, found: String },
    #[error("`{member}` says \"{found}\"; only little-endian archives are supported")]
    ByteOrder { member: String, found: String },
    #[error("the archive holds no model (no `models/*.json`)")]
    NoModel,
    #[error("the archive holds several models ({0}); etpkg imports one at a time")]
    ManyModels(String),
    #[error("missing archive member `{0}`")]
    MissingMember(String),
    #[error("missing archive member `{member}`, which should describe the stored tensor `{fqn}`")]
    MissingConfig { member: String, fqn: String },
    #[error("`{member}` is not a valid {what}: {err}")]
    Json {
        member: String,
        what: &'static str,
        err: serde_json::Error,
    },
    #[error("export schema version {major}.{minor} is not supported (etpkg reads {supported}.x); re-export with a PyTorch whose `torch._export.serde.schema.SCHEMA_VERSION` major is {supported}")]
    SchemaVersion {
        major: i64,
        minor: i64,
        supported: i64,
    },
    #[error("tensor `{name}`: {message}")]
    Tensor { name: String, message: String },
    #[error("input `{name}` of the graph signature: {message}")]
    Signature { name: String, message: String },
    #[error("{0}")]
    Lower(#[from] LowerError),
}

/// A dtype code from the export schema's `ScalarType` enum.
pub fn dtype_from_code(code: i64) -> Result<DType, String> {
    Ok(match code {
        1 => DType::U8,
        2 => DType::I8,
        3 => DType::I16,
        4 => DType::I32,
        5 => DType::I64,
        6 => DType::F16,
        7 => DType::F32,
        8 => DType::F64,
        12 => DType::Bool,
        13 => DType::BF16,
        9..=11 => return Err(format!("complex dtype (code {code}) is not supported")),
        _ => return Err(format!("unknown dtype code {code}")),
    })
}

fn static_ints(v: &[schema::SymInt], what: &str) -> Result<Vec<i64>, String> {
    v.iter()
        .map(|s| match s {
            schema::SymInt::AsInt(i) => Ok(*i),
            schema::SymInt::AsExpr(_) => Err(format!(
                "has a dynamic {what}; etpkg compiles static shapes, so export without \
                 `dynamic_shapes`"
            )),
        })
        .collect()
}

/// The static type a tensor's metadata describes.
pub fn tensor_type(meta: &schema::TensorMeta) -> Result<TensorType, String> {
    let dtype = dtype_from_code(meta.dtype)?;
    let sizes = static_ints(&meta.sizes, "size")?;
    if sizes.iter().any(|&d| d < 0) {
        return Err(format!("negative size in {sizes:?}"));
    }
    let shape: Vec<usize> = sizes.iter().map(|&d| d as usize).collect();
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| format!("shape {shape:?} is too large"))?;
    Ok(TensorType::new(dtype, shape))
}

/// Checks that `bytes` form a complete zip container (the build's export stage checks what a
/// command wrote before caching it, so that a torn write is never cached as a model).
pub fn check_container(bytes: &[u8]) -> Result<(), String> {
    ZipIndex::parse(bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// An opened archive: the mapped bytes and their zip index.
pub struct Archive {
    path: PathBuf,
    map: Arc<Backing>,
    zip: ZipIndex,
    root: String,
}

impl Archive {
    pub fn open(path: &Path) -> Result<Archive, ImportError> {
        let err = |kind| ImportError {
            path: path.to_path_buf(),
            kind,
        };
        let backing = Backing::read(path).map_err(|e| err(ImportErrorKind::Io(e)))?;
        Archive::from_shared(path, Arc::new(backing))
    }

    /// An archive held in memory; `path` only names it in errors.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Archive, ImportError> {
        Archive::from_shared(path, Arc::new(Backing::Owned(bytes)))
    }

    /// An archive over bytes someone else already holds (the build cache's mapped object);
    /// `path` only names it in errors.
    pub fn from_shared(path: &Path, map: Arc<Backing>) -> Result<Archive, ImportError> {
        let err = |kind| ImportError {
            path: path.to_path_buf(),
            kind,
        };
        let zip = ZipIndex::parse(&map).map_err(|e| err(ImportErrorKind::Zip(e)))?;
        let root = zip
            .names()
            .iter()
            .filter_map(|n| n.strip_suffix("archive_format"))
            .filter(|r| r.is_empty() || (r.ends_with('/') && r.matches('/').count() == 1))
            .min_by_key(|r| r.len())
            .map(str::to_string)
            .ok_or_else(|| err(ImportErrorKind::NotPt2))?;
        let a = Archive {
            path: path.to_path_buf(),
            map,
            zip,
            root,
        };
        let fmt = a.member("archive_format")?;
        let fmt = String::from_utf8_lossy(fmt).trim().to_string();
        if fmt != "pt2" {
            return Err(a.err(ImportErrorKind::WrongFormat {
                member: format!("{}archive_format", a.root),
                found: fmt,
            }));
        }
        if let Ok(order) = a.member("byteorder") {
            let order = String::from_utf8_lossy(order).trim().to_string();
            if order != "little" {
                return Err(a.err(ImportErrorKind::ByteOrder {
                    member: format!("{}byteorder", a.root),
                    found: order,
                }));
            }
        }
        Ok(a)
    }

    fn err(&self, kind: ImportErrorKind) -> ImportError {
        ImportError {
            path: self.path.clone(),
            kind,
        }
    }

    /// A metadata record's bytes, CRC-checked.
    fn member(&self, rel: &str) -> Result<&[u8], ImportError> {
        let name = format!("{}{rel}", self.root);
        let e = self
            .zip
            .get(&name)
            .ok_or_else(|| self.err(ImportErrorKind::MissingMember(name.clone())))?;
        e.checked_bytes(&self.map, &name)
            .map_err(|z| self.err(ImportErrorKind::Zip(z)))
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
        what: &'static str,
    ) -> Result<T, ImportError> {
        let bytes = self.member(rel)?;
        serde_json::from_slice(bytes).map_err(|err| {
            self.err(ImportErrorKind::Json {
                member: format!("{}{rel}", self.root),
                what,
                err,
            })
        })
    }

    /// The names of the models the archive holds (`models/<name>.json`).
    pub fn models(&self) -> Vec<String> {
        let prefix = format!("{}models/", self.root);
        let mut v: Vec<String> = self
            .zip
            .names()
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix)?.strip_suffix(".json"))
            .filter(|n| !n.contains('/'))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// The one model in the archive.
    pub fn single_model(&self) -> Result<String, ImportError> {
        let models = self.models();
        match models.len() {
            0 => Err(self.err(ImportErrorKind::NoModel)),
            1 => Ok(models[0].clone()),
            _ => Err(self.err(ImportErrorKind::ManyModels(models.join(", ")))),
        }
    }

    pub fn program(&self, model: &str) -> Result<schema::ExportedProgram, ImportError> {
        let ep: schema::ExportedProgram = self.json(
            &format!("models/{model}.json"),
            "serialized ExportedProgram",
        )?;
        if ep.schema_version.major != schema::SUPPORTED_MAJOR {
            return Err(self.err(ImportErrorKind::SchemaVersion {
                major: ep.schema_version.major,
                minor: ep.schema_version.minor,
                supported: schema::SUPPORTED_MAJOR,
            }));
        }
        Ok(ep)
    }

    /// A payload config, or None if the archive has no such record (a model without weights
    /// or constants may omit it).
    fn payloads(
        &self,
        rel: &str,
    ) -> Result<Option<HashMap<String, schema::PayloadMeta>>, ImportError> {
        let name = format!("{}{rel}", self.root);
        if self.zip.get(&name).is_none() {
            return Ok(None);
        }
        Ok(Some(
            self.json::<schema::PayloadConfig>(rel, "payload config")?
                .config,
        ))
    }

    /// The bytes of one payload (weight or constant), as a contiguous tensor of its own type.
    fn payload(
        &self,
        dir: &str,
        fqn: &str,
        meta: &schema::PayloadMeta,
    ) -> Result<(TensorType, ConstData), ImportError> {
        let terr = |message: String| {
            self.err(ImportErrorKind::Tensor {
                name: fqn.to_string(),
                message,
            })
        };
        if meta.use_pickle {
            return Err(terr(
                "is stored pickled (a tensor subclass); etpkg reads plain tensors only".into(),
            ));
        }
        let tm = meta
            .tensor_meta
            .as_ref()
            .ok_or_else(|| terr("has no tensor metadata".into()))?;
        let ty = tensor_type(tm).map_err(terr)?;
        let name = format!("{}{dir}{}", self.root, meta.path_name);
        let entry = self
            .zip
            .get(&name)
            .ok_or_else(|| self.err(ImportErrorKind::MissingMember(name.clone())))?;
        let storage = entry.bytes(&self.map);
        let el = ty.dtype.size();
        let offset = match tm.storage_offset {
            schema::SymInt::AsInt(o) if o >= 0 => o as usize,
            _ => return Err(terr("has an invalid storage offset".into())),
        };
        let strides = static_ints(&tm.strides, "stride").map_err(terr)?;
        if strides.len() != ty.rank() || strides.iter().any(|&s| s < 0) {
            return Err(terr(format!(
                "has strides {strides:?} that do not fit shape {:?}",
                ty.shape
            )));
        }
        let numel = ty.numel();
        if numel == 0 {
            return Ok((ty, ConstData::Owned(Arc::from(Vec::new()))));
        }
        // The furthest element the view touches must lie inside the stored bytes.
        let last = ty
            .shape
            .iter()
            .zip(&strides)
            .try_fold(offset, |acc, (&d, &s)| {
                acc.checked_add((d - 1).checked_mul(s as usize)?)
            });
        let needed = last
            .and_then(|l| l.checked_add(1))
            .and_then(|n| n.checked_mul(el));
        match needed {
            Some(n) if n <= storage.len() => {}
            _ => {
                return Err(terr(format!(
                    "needs {} bytes but `{name}` holds {}; the archive is truncated or its metadata is wrong",
                    needed.map_or("more than addressable".to_string(), |n| n.to_string()),
                    storage.len()
                )))
            }
        }
        let contiguous = crate::interp::contiguous_strides(&ty.shape);
        let is_contiguous = ty
            .shape
            .iter()
            .zip(strides.iter().zip(&contiguous))
            .all(|(&d, (&s, &c))| d == 1 || s as usize == c);
        if is_contiguous {
            let start = entry.offset + offset * el;
            return Ok((
                ty,
                ConstData::Mapped {
                    map: self.map.clone(),
                    offset: start,
                    len: numel * el,
                },
            ));
        }
        // A strided view of a shared storage: gather it into contiguous order.
        let mut out = Vec::with_capacity(numel * el);
        let mut index = vec![0usize; ty.rank()];
        for _ in 0..numel {
            let pos = offset
                + index
                    .iter()
                    .zip(&strides)
                    .map(|(&i, &s)| i * s as usize)
                    .sum::<usize>();
            out.extend_from_slice(&storage[pos * el..(pos + 1) * el]);
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < ty.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Ok((ty, ConstData::Owned(out.into())))
    }
}

/// An imported program: the graph in etpkg's IR and where it came from.
pub struct Imported {
    pub graph: Graph,
    pub model: String,
    /// The archive graph's ATen targets and how often each occurs, before lowering.
    pub aten_ops: std::collections::BTreeMap<String, usize>,
}

/// Reads `path` and lowers its single model to the core op set.
pub fn import(path: &Path) -> Result<Imported, ImportError> {
    let archive = Archive::open(path)?;
    let model = archive.single_model()?;
    import_model(&archive, &model)
}

pub fn import_model(archive: &Archive, model: &str) -> Result<Imported, ImportError> {
    let ep = archive.program(model)?;
    let weights_path = format!("data/weights/{model}_weights_config.json");
    let constants_path = format!("data/constants/{model}_constants_config.json");
    let weights = archive.payloads(&weights_path)?;
    let constants = archive.payloads(&constants_path)?;
    let g = &ep.graph_module.graph;
    let sig = &ep.graph_module.signature;

    let mut graph = Graph::default();
    let mut env: HashMap<String, ValueId> = HashMap::new();
    let serr = |name: &str, message: String| {
        archive.err(ImportErrorKind::Signature {
            name: name.to_string(),
            message,
        })
    };
    let placeholder_type = |name: &str| -> Result<TensorType, ImportError> {
        let meta = g
            .tensor_values
            .get(name)
            .ok_or_else(|| serr(name, "has no tensor metadata".into()))?;
        tensor_type(meta).map_err(|m| serr(name, m))
    };

    for spec in &sig.input_specs {
        use schema::InputSpec as S;
        let (arg, fqn, kind, table, dir) = match spec {
            S::UserInput { arg } => {
                let schema::Argument::Tensor(name) = arg else {
                    return Err(serr(
                        "<user input>",
                        format!("is a {}; only tensor inputs are supported", arg.kind()),
                    ));
                };
                let ty = placeholder_type(name)?;
                let v = graph.add_input(name.clone(), ty);
                env.insert(name.clone(), v);
                continue;
            }
            S::Parameter { arg, parameter_name } => {
                (arg, parameter_name, ConstKind::Parameter, &weights, "data/weights/")
            }
            S::Buffer { arg, buffer_name } => {
                // Non-persistent buffers are saved with the constants, not the state dict.
                let in_weights = weights.as_ref().is_some_and(|w| w.contains_key(buffer_name));
                let (table, dir) = if in_weights {
                    (&weights, "data/weights/")
                } else {
                    (&constants, "data/constants/")
                };
                (arg, buffer_name, ConstKind::Buffer, table, dir)
            }
            S::TensorConstant { arg, tensor_constant_name } => {
                (arg, tensor_constant_name, ConstKind::Tensor, &constants, "data/constants/")
            }
            S::CustomObj(_) | S::Token(_) | S::ConstantInput(_) => {
                return Err(serr(
                    "<signature>",
                    "uses custom objects, effect tokens or constant inputs, which etpkg does not support".into(),
                ))
            }
        };
        let Some(table) = table.as_ref() else {
            let config = if dir == "data/weights/" {
                &weights_path
            } else {
                &constants_path
            };
            return Err(archive.err(ImportErrorKind::MissingConfig {
                member: format!("{}{config}", archive.root),
                fqn: fqn.clone(),
            }));
        };
        let meta = table.get(fqn).ok_or_else(|| {
            serr(
                &arg.name,
                format!("refers to `{fqn}`, which the archive does not store"),
            )
        })?;
        let (ty, data) = archive.payload(dir, fqn, meta)?;
        let declared = placeholder_type(&arg.name)?;
        if declared != ty {
            return Err(serr(
                &arg.name,
                format!("is declared {declared} in the graph but `{fqn}` is stored as {ty}"),
            ));
        }
        let v = graph.add_constant(arg.name.clone(), ty, kind, Some(fqn.clone()), data);
        env.insert(arg.name.clone(), v);
    }

    let mut outputs = Vec::new();
    for spec in &sig.output_specs {
        match spec {
            schema::OutputSpec::UserOutput { arg: schema::Argument::Tensor(name) } => {
                outputs.push(name.clone())
            }
            schema::OutputSpec::UserOutput { arg } => {
                return Err(serr(
                    "<output>",
                    format!("the model returns a {}; only tensor outputs are supported", arg.kind()),
                ))
            }
            other => {
                return Err(serr(
                    "<output>",
                    format!(
                        "the graph has a {} output; export the model in eval mode with no state updates",
                        other.kind()
                    ),
                ))
            }
        }
    }

    let graph = Lowerer::new(graph, env, &g.tensor_values)
        .run(&g.nodes, &outputs)
        .map_err(|e| archive.err(ImportErrorKind::Lower(e)))?;
    let mut aten_ops = std::collections::BTreeMap::new();
    for n in &g.nodes {
        *aten_ops.entry(n.target.clone()).or_insert(0) += 1;
    }
    Ok(Imported {
        graph,
        model: model.to_string(),
        aten_ops,
    })
}
