//! Generation of the trimmed runtime crate for one target. Invariant: `generate` is a pure
//! function of its input, returning the same files in the same (path) order with the same bytes
//! every time; the crate holds the executor, the kernel variants in `kept` and what they need,
//! and nothing else from `kernels/`.
//!
//! The crate goes to `target/etpkg/<target>/runtime/` and embeds `../program.pte` (relative to
//! its root) under the `embed` feature. Every `.rs` file is written in rustfmt's format.

pub mod sources;
pub mod trim;

use crate::device::Device;
use crate::manifest::KernelObjective;
use crate::rt::kernels::meta::KernelInfo;
use crate::rt::kernels::shape::DType;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use thiserror::Error;
use trim::{Selection, TrimError};

/// One tensor of the model's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSig {
    /// The name in the program (`x`, `logits`); made into a Rust identifier for the typed API.
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

/// The model's inputs and outputs, in the program's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    pub inputs: Vec<TensorSig>,
    pub outputs: Vec<TensorSig>,
}

/// Everything the generated crate depends on.
pub struct Generate<'a> {
    /// The crate name: a valid Rust identifier (the manifest's package and the target).
    pub package: &'a str,
    pub device: &'a Device,
    pub objective: KernelObjective,
    /// Selected kernel variants as `"<family>.<variant>"`.
    pub kept: &'a BTreeSet<String>,
    pub signature: Signature,
    /// Bytes of arena the program needs (`Method::arena_bytes` of the program).
    pub arena_bytes: usize,
    /// The profile's thread count, written as `THREADS` for `threads::set_threads`.
    pub threads: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error(transparent)]
    Trim(#[from] TrimError),
    #[error("package name `{0}` is not a Rust identifier (letters, digits and `_`, not starting with a digit)")]
    BadPackage(String),
    #[error("the signature has no outputs; the typed API needs at least one")]
    NoOutputs,
}

/// Every family's `VARIANTS` table, for the README's account of the selected kernels.
const VARIANT_TABLES: &[&[KernelInfo]] = {
    use crate::rt::kernels::*;
    &[
        attention::VARIANTS,
        binary::VARIANTS,
        conv::VARIANTS,
        conv_transpose::VARIANTS,
        index::VARIANTS,
        layout::VARIANTS,
        matmul::VARIANTS,
        norm::VARIANTS,
        pool::VARIANTS,
        reduce::VARIANTS,
        softmax::VARIANTS,
        unary::VARIANTS,
        upsample::VARIANTS,
        where_::VARIANTS,
    ]
};

fn kernel_info(name: &str) -> Option<&'static KernelInfo> {
    VARIANT_TABLES
        .iter()
        .flat_map(|t| t.iter())
        .find(|k| k.name == name)
}

/// The files that the closure of `kept` copies, as (family, text) maps.
fn selection(kept: &BTreeSet<String>) -> Result<Selection, TrimError> {
    let kernels: BTreeMap<String, &str> = sources::kernel_families()
        .map(|(f, t)| (f.to_string(), t))
        .collect();
    let bindings: BTreeMap<String, &str> = sources::op_bindings()
        .map(|(f, t)| (f.to_string(), t))
        .collect();
    let plain: Vec<&str> = plain_runtime_files().map(|(_, t)| t).collect();
    trim::select(
        &trim::Sources {
            kernels: &kernels,
            bindings: &bindings,
            ops_mod: sources::source("runtime/src/ops/mod.rs"),
            plain: &plain,
        },
        kept,
    )
}

/// The runtime file that needs `std`: copied only when a kept kernel splits work
/// (`kernels::par` is selected), and compiled only under the crate's `std` feature.
const THREADS_FILE: &str = "runtime/src/threads.rs";

/// `runtime/src/<name>.rs` files (not under `ops/`, not `threads.rs`) as (module name, text).
fn plain_runtime_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    sources::SOURCES.iter().filter_map(|(p, t)| {
        let name = p.strip_prefix("runtime/src/")?.strip_suffix(".rs")?;
        (!name.contains('/') && *p != THREADS_FILE).then_some((name, *t))
    })
}

/// The `threads` module of a crate whose kernels never split work: `set_threads` has nothing
/// to spread, so every call leaves the program on the caller's thread.
const THREADS_NONE: &str =
    "//! Thread settings. Invariant: this program's kernels run on the caller's thread only:
//! none of the kernels etpkg selected for it splits its work, so there is no pool to start.

/// The most threads `set_threads` accepts, as in crates whose kernels split work.
pub const MAX_THREADS: usize = 256;

/// Accepts any count and keeps running on the caller's thread: no kernel here splits work.
pub fn set_threads(_n: usize) {}

/// Always 1: the kernels run on the caller's thread.
pub fn threads() -> usize {
    1
}
";

/// The generated crate's files as (path relative to the crate root, bytes), sorted by path.
pub fn generate(g: &Generate) -> Result<Vec<(String, Vec<u8>)>, GenerateError> {
    if !is_ident(g.package) {
        return Err(GenerateError::BadPackage(g.package.to_string()));
    }
    if g.signature.outputs.is_empty() {
        return Err(GenerateError::NoOutputs);
    }
    let sel = selection(g.kept)?;
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut modules = Vec::new();
    for (name, text) in plain_runtime_files() {
        let file = format!("runtime/src/{name}.rs");
        files.insert(format!("src/{name}.rs"), trim::check_plain(&file, text)?);
        modules.push(name.to_string());
    }
    if let Some(text) = sources::source("runtime/src/ops/mod.rs") {
        let out = trim::trim_ops_mod("runtime/src/ops/mod.rs", text, &sel.families)?;
        files.insert("src/ops/mod.rs".into(), out);
        modules.push("ops".into());
        for (family, text) in sources::op_bindings() {
            if sel.families.contains(family) {
                let file = format!("runtime/src/ops/{family}.rs");
                let out = trim::trim_op_binding(&file, text, &sel.variants)?;
                files.insert(format!("src/ops/{family}.rs"), out);
            }
        }
    }
    for (family, text) in sources::kernel_families() {
        if sel.families.contains(family) {
            let file = format!("kernels/src/{family}.rs");
            let keep = |v: &str| sel.variants.contains(&format!("{family}.{v}"));
            let out = trim::trim_kernel_family(&file, text, &keep)?;
            files.insert(format!("src/kernels/{family}.rs"), out);
        }
    }
    modules.push("kernels".into());
    // The pool comes with the splitter it installs; a crate without one gets the fallback.
    let threads = if sel.families.contains("par") {
        let text = sources::source(THREADS_FILE).unwrap_or_default();
        trim::check_plain(THREADS_FILE, text)?
    } else {
        THREADS_NONE.to_string()
    };
    files.insert("src/threads.rs".into(), threads);
    modules.push("threads".into());
    modules.sort();
    files.insert("src/kernels/mod.rs".into(), kernels_mod(&sel));
    files.insert("src/lib.rs".into(), lib_rs(g, &modules));
    files.insert("Cargo.toml".into(), cargo_toml(g));
    files.insert(".cargo/config.toml".into(), cargo_config(g.device));
    files.insert("README.md".into(), readme(g, &sel));
    files.insert("tests/no_alloc.rs".into(), no_alloc_test(g));
    files.insert("fuzz/Cargo.toml".into(), fuzz_cargo_toml(g.package));
    files.insert("fuzz/fuzz_targets/load.rs".into(), fuzz_target(g.package));
    files.insert(
        "fuzz/.gitignore".into(),
        "target\ncorpus\nartifacts\ncoverage\n".into(),
    );
    Ok(files
        .into_iter()
        .map(|(p, t)| (p, t.into_bytes()))
        .collect())
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s != "_"
}

/// `classifier_host` → `ClassifierHost`: the typed API's struct name.
fn camel(package: &str) -> String {
    let mut out = String::new();
    for word in package.split('_').filter(|w| !w.is_empty()) {
        let mut cs = word.chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Model");
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "try", "type", "typeof", "unsafe", "unsized",
    "use", "virtual", "where", "while", "yield",
];

/// Snake-case identifiers for tensor names, unique within `names` and never a keyword, so that
/// the typed API compiles without `non_snake_case` warnings whatever the program calls them.
fn idents(names: &[&str], fallback: &str, taken: &mut BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut id = String::new();
        for c in name.chars() {
            let c = if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            };
            if !(c == '_' && (id.is_empty() || id.ends_with('_'))) {
                id.push(c);
            }
        }
        while id.ends_with('_') {
            id.pop();
        }
        if id.is_empty() {
            id = format!("{fallback}{i}");
        }
        if id.starts_with(|c: char| c.is_ascii_digit()) {
            id.insert_str(0, fallback);
        }
        if KEYWORDS.contains(&id.as_str()) {
            id.push_str("_value");
        }
        let base = id.clone();
        let mut n = 1;
        while !taken.insert(id.clone()) {
            n += 1;
            id = format!("{base}_{n}");
        }
        out.push(id);
    }
    out
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The element type the typed API uses for a dtype; bool tensors are bytes 0 or 1.
fn rust_elem(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::I64 => "i64",
        DType::Bool => "u8",
    }
}

fn dtype_path(d: DType) -> &'static str {
    match d {
        DType::F32 => "DType::F32",
        DType::I64 => "DType::I64",
        DType::Bool => "DType::Bool",
    }
}

fn describe(t: &TensorSig) -> String {
    let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
    let name = match t.dtype {
        DType::F32 => "f32",
        DType::I64 => "i64",
        DType::Bool => "bool",
    };
    format!("{name}[{}]", dims.join(", "))
}

/// A `const NAME: &[(DType, &[usize])]` table in rustfmt's layout.
fn sig_table(out: &mut String, doc: &str, name: &str, ts: &[TensorSig]) {
    let entry = |t: &TensorSig| {
        let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        format!("({}, &[{}])", dtype_path(t.dtype), dims.join(", "))
    };
    let head = format!("const {name}: &[(DType, &[usize])] = &[");
    let one_line = format!(
        "{head}{}];",
        ts.iter().map(entry).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(out, "/// {doc}");
    if one_line.len() <= 100 && ts.iter().all(|t| entry(t).len() <= 60) {
        let _ = writeln!(out, "{one_line}");
    } else {
        let _ = writeln!(out, "{head}");
        for t in ts {
            let _ = writeln!(out, "    {},", entry(t));
        }
        let _ = writeln!(out, "];");
    }
}

fn lib_rs(g: &Generate, modules: &[String]) -> String {
    let ty = camel(g.package);
    let sig = &g.signature;
    let mut taken = BTreeSet::new();
    let in_names: Vec<&str> = sig.inputs.iter().map(|t| t.name.as_str()).collect();
    let out_names: Vec<&str> = sig.outputs.iter().map(|t| t.name.as_str()).collect();
    let ins = idents(&in_names, "input", &mut taken);
    let outs = idents(&out_names, "output", &mut BTreeSet::new());
    let mut s = String::new();
    let _ = write!(
        s,
        "//! The runtime of `{pkg}`, generated by etpkg for device `{dev}` ({triple}).\n\
         //! See README.md for how to use it.\n\
         //! Invariant: executing a loaded program allocates nothing, and every blob is validated\n\
         //! before use, so a malformed blob is an error, never undefined behaviour.\n\
         #![no_std]\n\
         \n\
         #[cfg(feature = \"std\")]\n\
         extern crate std;\n\
         \n",
        pkg = g.package,
        dev = g.device.name,
        triple = g.device.triple,
    );
    for m in modules {
        if m == "kernels" {
            s.push_str(
                "// The kernel families the program needs, trimmed to the selected variants. A family's\n\
                 // shared helpers and imports may serve only variants that were dropped.\n\
                 #[allow(dead_code, unused_imports)]\n",
            );
        }
        if m == "threads" {
            s.push_str(
                "// The thread pool the kernels split work over; it needs threads, so `std`.\n\
                 #[cfg(feature = \"std\")]\n",
            );
        }
        let _ = writeln!(s, "pub mod {m};");
    }
    s.push_str(
        "\n\
         pub use exec::{ExecError, LoadError, Method, Observer};\n\
         \n\
         use kernels::shape::DType;\n\
         use ops::TensorMeta;\n\
         \n",
    );
    let _ = write!(
        s,
        "/// Threads the build profile asks for (`threads` in ExecuTorch.toml): pass it to\n\
         /// `threads::set_threads` (feature `std`) to split the kernels' work that many ways.\n\
         pub const THREADS: usize = {};\n\
         \n",
        g.threads
    );
    let _ = write!(
        s,
        "/// Bytes of arena the program needs: what `Method::arena_bytes` computes for it.\n\
         pub const ARENA_BYTES: usize = {};\n\
         \n\
         /// An arena of `ARENA_BYTES` bytes, 64-byte aligned as `Method::load` requires. Keep it in a\n\
         /// `static` or on the heap when it is large.\n\
         #[repr(C, align(64))]\n\
         pub struct Arena(pub [u8; ARENA_BYTES]);\n\
         \n\
         impl Arena {{\n\
         \x20   pub const fn new() -> Self {{\n\
         \x20       Arena([0; ARENA_BYTES])\n\
         \x20   }}\n\
         }}\n\
         \n\
         impl Default for Arena {{\n\
         \x20   fn default() -> Self {{\n\
         \x20       Self::new()\n\
         \x20   }}\n\
         }}\n\
         \n",
        g.arena_bytes
    );
    s.push_str(
        "/// The program this crate was generated for, 64-byte aligned as `Method::load` requires.\n\
         #[cfg(feature = \"embed\")]\n\
         pub static PROGRAM: &[u8] = &EMBEDDED.0;\n\
         \n\
         #[cfg(feature = \"embed\")]\n\
         #[repr(C, align(64))]\n\
         struct Embedded<const N: usize>([u8; N]);\n\
         \n\
         #[cfg(feature = \"embed\")]\n\
         static EMBEDDED: Embedded<{ include_bytes!(\"../../program.pte\").len() }> =\n\
         \x20   Embedded(*include_bytes!(\"../../program.pte\"));\n\
         \n",
    );
    sig_table(
        &mut s,
        "The inputs' dtypes and shapes this crate was generated for.",
        "INPUTS",
        &sig.inputs,
    );
    s.push('\n');
    sig_table(
        &mut s,
        "The outputs' dtypes and shapes this crate was generated for.",
        "OUTPUTS",
        &sig.outputs,
    );
    s.push_str(
        "\n\
         fn matches(meta: Option<TensorMeta>, want: &(DType, &[usize])) -> bool {\n\
         \x20   meta.is_some_and(|m| m.dtype == want.0 && m.shape.dims.get(..m.shape.rank) == Some(want.1))\n\
         }\n\
         \n",
    );
    // Error type.
    let _ = write!(
        s,
        "/// Why [`{ty}`] failed: loading, executing, or a program whose signature is not the one\n\
         /// this crate was generated for.\n\
         #[derive(Debug)]\n\
         pub enum Error {{\n\
         \x20   Load(LoadError),\n\
         \x20   Exec(ExecError),\n\
         \x20   /// The program's input or output `index` has another dtype or shape.\n\
         \x20   Signature {{\n\
         \x20       what: &'static str,\n\
         \x20       index: usize,\n\
         \x20   }},\n\
         }}\n\
         \n\
         impl From<ExecError> for Error {{\n\
         \x20   fn from(e: ExecError) -> Self {{\n\
         \x20       Error::Exec(e)\n\
         \x20   }}\n\
         }}\n\
         \n\
         impl core::fmt::Display for Error {{\n\
         \x20   fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {{\n\
         \x20       match self {{\n\
         \x20           Error::Load(e) => write!(f, \"cannot load the program: {{e}}\"),\n\
         \x20           Error::Exec(e) => write!(f, \"cannot run the program: {{e}}\"),\n\
         \x20           Error::Signature {{ what, index }} => write!(\n\
         \x20               f,\n\
         \x20               \"the program's {{what}} {{index}} differs from the signature this crate was generated for\"\n\
         \x20           ),\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n\
         \n\
         #[cfg(feature = \"std\")]\n\
         impl std::error::Error for Error {{}}\n\
         \n",
    );
    // Output readers, only for the dtypes the outputs use so that none is dead code.
    let out_dtypes: BTreeSet<&str> = sig.outputs.iter().map(|t| rust_elem(t.dtype)).collect();
    for elem in &out_dtypes {
        let (doc, read) = match *elem {
            "f32" => ("`f32`", "output_f32(i)?"),
            "i64" => ("`i64`", "output_i64(i)?"),
            _ => ("bool (one byte, 0 or 1)", "output(i)?"),
        };
        let _ = write!(
            s,
            "/// Output `i` as an array of its {doc} elements.\n\
             fn output_{elem}<'m, const N: usize>(method: &'m Method<'_>, i: usize) -> Result<&'m [{elem}; N], Error> {{\n\
             \x20   let what = \"output\";\n\
             \x20   method\n\
             \x20       .{read}\n\
             \x20       .try_into()\n\
             \x20       .map_err(|_| Error::Signature {{ what, index: i }})\n\
             }}\n\
             \n",
        );
    }
    // The typed outputs: one array, or a struct of them.
    let multi = sig.outputs.len() > 1;
    let ret = if multi {
        format!("{ty}Outputs<'_>")
    } else {
        let t = &sig.outputs[0];
        format!("&[{}; {}]", rust_elem(t.dtype), numel(&t.shape))
    };
    if multi {
        let _ = writeln!(
            s,
            "/// The outputs of [`{ty}::forward`], named as in the program."
        );
        let _ = writeln!(s, "pub struct {ty}Outputs<'m> {{");
        for (t, id) in sig.outputs.iter().zip(&outs) {
            let _ = writeln!(s, "    /// `{}` {}.", t.name, describe(t));
            let _ = writeln!(
                s,
                "    pub {id}: &'m [{}; {}],",
                rust_elem(t.dtype),
                numel(&t.shape)
            );
        }
        s.push_str("}\n\n");
    }
    let sig_doc: Vec<String> = sig
        .inputs
        .iter()
        .zip(&ins)
        .map(|(t, id)| format!("`{id}`: {}", describe(t)))
        .collect();
    let _ = write!(
        s,
        "/// The program's `forward` with the types of its signature, over the general [`Method`].\n\
         pub struct {ty}<'a> {{\n\
         \x20   method: Method<'a>,\n\
         }}\n\
         \n\
         impl<'a> {ty}<'a> {{\n\
         \x20   /// Validates `blob` (64-byte aligned) and checks that its inputs and outputs are the ones\n\
         \x20   /// this crate was generated for. `arena` needs [`ARENA_BYTES`] bytes, 64-byte aligned.\n\
         \x20   pub fn load(blob: &'a [u8], arena: &'a mut [u8]) -> Result<Self, Error> {{\n\
         \x20       let method = Method::load(blob, arena).map_err(Error::Load)?;\n\
         \x20       if method.inputs() != INPUTS.len() {{\n\
         \x20           return Err(Error::Signature {{\n\
         \x20               what: \"input count\",\n\
         \x20               index: method.inputs(),\n\
         \x20           }});\n\
         \x20       }}\n\
         \x20       if method.outputs() != OUTPUTS.len() {{\n\
         \x20           return Err(Error::Signature {{\n\
         \x20               what: \"output count\",\n\
         \x20               index: method.outputs(),\n\
         \x20           }});\n\
         \x20       }}\n\
         \x20       for (index, want) in INPUTS.iter().enumerate() {{\n\
         \x20           if !matches(method.input_meta(index), want) {{\n\
         \x20               return Err(Error::Signature {{\n\
         \x20                   what: \"input\",\n\
         \x20                   index,\n\
         \x20               }});\n\
         \x20           }}\n\
         \x20       }}\n\
         \x20       for (index, want) in OUTPUTS.iter().enumerate() {{\n\
         \x20           if !matches(method.output_meta(index), want) {{\n\
         \x20               return Err(Error::Signature {{\n\
         \x20                   what: \"output\",\n\
         \x20                   index,\n\
         \x20               }});\n\
         \x20           }}\n\
         \x20       }}\n\
         \x20       Ok(Self {{ method }})\n\
         \x20   }}\n\
         \n\
         \x20   /// Loads the embedded [`PROGRAM`].\n\
         \x20   #[cfg(feature = \"embed\")]\n\
         \x20   pub fn embedded(arena: &'a mut [u8]) -> Result<Self, Error> {{\n\
         \x20       Self::load(PROGRAM, arena)\n\
         \x20   }}\n\
         \n\
         \x20   /// The general API underneath, e.g. for `execute_observed`.\n\
         \x20   pub fn method(&mut self) -> &mut Method<'a> {{\n\
         \x20       &mut self.method\n\
         \x20   }}\n\
         \n",
    );
    s.push_str(&doc_comment(
        "    ",
        &format!("Runs the program on {}.", sig_doc.join(", ")),
    ));
    let params: Vec<String> = sig
        .inputs
        .iter()
        .zip(&ins)
        .map(|(t, id)| format!("{id}: &[{}; {}]", rust_elem(t.dtype), numel(&t.shape)))
        .collect();
    let line = format!(
        "    pub fn forward(&mut self, {}) -> Result<{ret}, Error> {{",
        params.join(", ")
    );
    if line.len() <= 100 {
        let _ = writeln!(s, "{line}");
    } else {
        s.push_str("    pub fn forward(\n        &mut self,\n");
        for p in &params {
            let _ = writeln!(s, "        {p},");
        }
        let _ = writeln!(s, "    ) -> Result<{ret}, Error> {{");
    }
    for (i, (t, id)) in sig.inputs.iter().zip(&ins).enumerate() {
        let call = match t.dtype {
            DType::F32 => "set_input_f32",
            DType::I64 => "set_input_i64",
            DType::Bool => "set_input",
        };
        let _ = writeln!(s, "        self.method.{call}({i}, {id})?;");
    }
    s.push_str("        self.method.execute()?;\n");
    if multi {
        let _ = writeln!(s, "        Ok({ty}Outputs {{");
        for (i, (t, id)) in sig.outputs.iter().zip(&outs).enumerate() {
            let _ = writeln!(
                s,
                "            {id}: output_{}(&self.method, {i})?,",
                rust_elem(t.dtype)
            );
        }
        s.push_str("        })\n");
    } else {
        let _ = writeln!(
            s,
            "        output_{}(&self.method, 0)",
            rust_elem(sig.outputs[0].dtype)
        );
    }
    s.push_str("    }\n}\n");
    s
}

/// `text` as `///` lines indented by `indent`, wrapped at words to 100 columns.
fn doc_comment(indent: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 4 + line.len() + 1 + word.len() > 100 {
            let _ = writeln!(out, "{indent}/// {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{indent}/// {line}");
    out
}

fn kernels_mod(sel: &Selection) -> String {
    let mut s = String::from(
        "//! The kernel families this program's selected variants need, each trimmed by etpkg to\n\
         //! those variants. Invariant: every variant here was selected or is called by one that was.\n\
         \n",
    );
    for f in &sel.families {
        let _ = writeln!(s, "pub mod {f};");
    }
    s
}

fn objective_name(o: KernelObjective) -> &'static str {
    match o {
        KernelObjective::Speed => "speed",
        KernelObjective::Size => "size",
    }
}

fn cargo_toml(g: &Generate) -> String {
    let opt = match g.objective {
        KernelObjective::Speed => "3",
        // "s", not "z": on the size benchmark (scripts/size_bench.sh) "s" gave the smaller
        // mobilenet_v2 runner (148.8 KB against 151.6 KB) and the GPT decoder's within 0.1%,
        // and it keeps loop vectorization, so the kernels stay faster too.
        KernelObjective::Size => "\"s\"",
    };
    format!(
        "# Generated by etpkg for device `{dev}` ({triple}), kernels chosen for {obj}.\n\
         [package]\n\
         name = \"{pkg}\"\n\
         version = \"0.1.0\"\n\
         edition = \"2021\"\n\
         rust-version = \"1.89\"\n\
         publish = false\n\
         exclude = [\"fuzz\"]\n\
         \n\
         [lib]\n\
         path = \"src/lib.rs\"\n\
         \n\
         # No dependencies: the crate is no_std and allocation-free unless `std` is enabled.\n\
         [features]\n\
         default = []\n\
         # Implements std::error::Error for the typed API's Error.\n\
         std = []\n\
         # Embeds ../program.pte as PROGRAM.\n\
         embed = []\n\
         \n\
         [[test]]\n\
         name = \"no_alloc\"\n\
         path = \"tests/no_alloc.rs\"\n\
         required-features = [\"std\", \"embed\"]\n\
         \n\
         [profile.release]\n\
         opt-level = {opt}\n\
         lto = true\n\
         codegen-units = 1\n\
         panic = \"abort\"\n\
         \n\
         # Its own workspace, so that it builds wherever it is placed.\n\
         [workspace]\n",
        dev = g.device.name,
        triple = g.device.triple,
        obj = objective_name(g.objective),
        pkg = g.package,
    )
}

fn cargo_config(d: &Device) -> String {
    let mut s = format!(
        "# Lets the compiler use the ISA features of device `{}` in every kernel.\n",
        d.name
    );
    if d.triple != crate::device::host_triple() {
        let _ = write!(
            s,
            "# This machine is not a {t}. To build for it:\n\
             #   rustup target add {t}\n\
             #   cargo build --release --target {t}\n",
            t = d.triple
        );
    }
    if let Some(cpu) = &d.cpu {
        let _ = write!(
            s,
            "[target.{}]\nrustflags = [\"-C\", \"target-cpu={cpu}\"]\n",
            d.triple
        );
    } else if !d.features.is_empty() {
        let feats: Vec<String> = d.features.iter().map(|f| format!("+{f}")).collect();
        let _ = write!(
            s,
            "[target.{}]\nrustflags = [\"-C\", \"target-feature={}\"]\n",
            d.triple,
            feats.join(",")
        );
    }
    s
}

fn readme(g: &Generate, sel: &Selection) -> String {
    let ty = camel(g.package);
    let obj = objective_name(g.objective);
    let mut s = format!(
        "# {pkg}\n\n\
         The runtime of `{pkg}`, generated by etpkg for device `{dev}` (`{triple}`). It holds the\n\
         ExecuTorch program reader, the executor and only the kernel variants the program selected;\n\
         nothing else from etpkg's kernel library. It has no dependencies and is `#![no_std]`.\n\n\
         ## Kernels\n\n\
         Selected for **{obj}** (`kernels = \"{obj}\"` in the profile): per node, the {why} variant\n\
         the device allows. Families copied: {fams}.\n\n\
         | variant | shapes | speed tier | code bytes |\n\
         |---|---|---|---|\n",
        pkg = g.package,
        dev = g.device.name,
        triple = g.device.triple,
        why = match g.objective {
            KernelObjective::Speed => "fastest",
            KernelObjective::Size => "smallest",
        },
        fams = sel
            .families
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for v in &sel.variants {
        match kernel_info(v) {
            Some(k) => {
                let _ = writeln!(
                    s,
                    "| `{v}` | {} | {} | {} |",
                    k.shape, k.speed, k.code_bytes
                );
            }
            None => {
                let _ = writeln!(s, "| `{v}` | | | |");
            }
        }
    }
    let extra: Vec<&String> = sel.variants.difference(g.kept).collect();
    if !extra.is_empty() {
        let names: Vec<String> = extra.iter().map(|v| format!("`{v}`")).collect();
        let _ = writeln!(
            s,
            "\n{} not selected directly: selected variants call them.",
            names.join(", ")
        );
    }
    let inputs: Vec<String> = g
        .signature
        .inputs
        .iter()
        .map(|t| format!("`{}` {}", t.name, describe(t)))
        .collect();
    let outputs: Vec<String> = g
        .signature
        .outputs
        .iter()
        .map(|t| format!("`{}` {}", t.name, describe(t)))
        .collect();
    let _ = write!(
        s,
        "\n## Use\n\n\
         The program is `../program.pte`. Inputs: {ins}. Outputs: {outs}.\n\n\
         Typed API, with the program embedded (feature `embed`):\n\n\
         ```rust,ignore\n\
         // {pkg}::Arena is {arena} bytes, 64-byte aligned; a static one also works.\n\
         let mut arena = {pkg}::Arena::new();\n\
         let mut model = {pkg}::{ty}::embedded(&mut arena.0)?;\n\
         let y = model.forward(&x)?; // fixed-size arrays in, fixed-size arrays out\n\
         ```\n\n\
         General API, with a blob loaded at run time (it must be 64-byte aligned):\n\n\
         ```rust,ignore\n\
         let need = {pkg}::Method::arena_bytes(blob)?;\n\
         let mut method = {pkg}::Method::load(blob, arena)?; // validates every instruction\n\
         method.set_input_f32(0, &x)?;\n\
         method.execute()?;\n\
         let y = method.output_f32(0)?;\n\
         ```\n\n\
         A malformed blob is a `LoadError`, never undefined behaviour. `execute_observed` calls an\n\
         `Observer` before and after every instruction (per-op timing).\n\n\
         ## Features\n\n\
         - `std`: implements `std::error::Error` for the errors, and adds `threads::set_threads(n)`,\n\
         \x20 which starts `n - 1` worker threads once and splits the kernels that can split their work\n\
         \x20 (convolutions on AVX-512) over them and the caller. The build profile asked for\n\
         \x20 [`THREADS`]; call `threads::set_threads(THREADS)` before running to use it.\n\
         - `embed`: embeds `../program.pte` as `PROGRAM`, 64-byte aligned.\n\n\
         `.cargo/config.toml` passes the device's ISA features to the compiler; build from this\n\
         directory so that cargo reads it. The release profile is tuned for {obj}\n\
         (`opt-level = {opt}`, LTO, one codegen unit, `panic = \"abort\"`).\n\n\
         ## No allocation\n\n\
         The crate never allocates: the caller provides the arena ([`ARENA_BYTES`]) and the blob.\n\
         `tests/no_alloc.rs` proves it with a counting global allocator:\n\n\
         ```sh\n\
         cargo test --release --features std,embed\n\
         ```\n\n\
         ## Fuzzing\n\n\
         `fuzz/` is a cargo-fuzz crate whose `load` target feeds arbitrary bytes to `Method::load`\n\
         (and runs what loads). It is not built by default:\n\n\
         ```sh\n\
         cargo +nightly fuzz run load -- -max_total_time=60\n\
         ```\n",
        ins = inputs.join(", "),
        outs = outputs.join(", "),
        pkg = g.package,
        arena = g.arena_bytes,
        opt = match g.objective {
            KernelObjective::Speed => "3",
            KernelObjective::Size => "\"s\"",
        },
    );
    s
}

fn no_alloc_test(g: &Generate) -> String {
    let ty = camel(g.package);
    let pkg = g.package;
    let mut s = format!(
        "//! Executing the embedded program allocates nothing. Invariant: the counter below sees every\n\
         //! allocation this thread makes, and it does not move across `execute` or `forward`.\n\
         \n\
         // The crate under test, under a name that does not depend on the package.\n\
         use {pkg} as rt;\n\
         \n\
         use rt::kernels::shape::DType;\n\
         use std::alloc::{{GlobalAlloc, Layout, System}};\n\
         use std::cell::Cell;\n\
         \n\
         /// The system allocator, counting the calls each thread makes (tests run on threads of\n\
         /// their own, so other tests' allocations are not counted).\n\
         struct Counting;\n\
         \n\
         thread_local! {{\n\
         \x20   static ALLOCATIONS: Cell<usize> = const {{ Cell::new(0) }};\n\
         }}\n\
         \n\
         fn count() {{\n\
         \x20   ALLOCATIONS.with(|c| c.set(c.get() + 1));\n\
         }}\n\
         \n\
         fn allocations() -> usize {{\n\
         \x20   ALLOCATIONS.with(Cell::get)\n\
         }}\n\
         \n\
         // SAFETY: every call is forwarded unchanged to the system allocator.\n\
         unsafe impl GlobalAlloc for Counting {{\n\
         \x20   unsafe fn alloc(&self, layout: Layout) -> *mut u8 {{\n\
         \x20       count();\n\
         \x20       unsafe {{ System.alloc(layout) }}\n\
         \x20   }}\n\
         \n\
         \x20   unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {{\n\
         \x20       count();\n\
         \x20       unsafe {{ System.alloc_zeroed(layout) }}\n\
         \x20   }}\n\
         \n\
         \x20   unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {{\n\
         \x20       count();\n\
         \x20       unsafe {{ System.realloc(ptr, layout, new_size) }}\n\
         \x20   }}\n\
         \n\
         \x20   unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {{\n\
         \x20       unsafe {{ System.dealloc(ptr, layout) }}\n\
         \x20   }}\n\
         }}\n\
         \n\
         #[global_allocator]\n\
         static GLOBAL: Counting = Counting;\n\
         \n\
         /// A 64-byte-aligned zeroed buffer of `len` bytes inside `storage`.\n\
         fn aligned(storage: &mut Vec<u8>, len: usize) -> &mut [u8] {{\n\
         \x20   storage.resize(len + 64, 0);\n\
         \x20   let off = storage.as_ptr().align_offset(64);\n\
         \x20   &mut storage[off..off + len]\n\
         }}\n\
         \n\
         /// A deterministic, varied input value for element `i`.\n\
         fn value(i: usize) -> f32 {{\n\
         \x20   ((i * 7919) % 201) as f32 / 100.0 - 1.0\n\
         }}\n\
         \n\
         #[test]\n\
         fn general_api_executes_without_allocating() {{\n\
         \x20   let mut storage = Vec::new();\n\
         \x20   let arena = aligned(&mut storage, rt::ARENA_BYTES);\n\
         \x20   let mut method = rt::Method::load(rt::PROGRAM, arena).expect(\"the embedded program loads\");\n\
         \x20   for i in 0..method.inputs() {{\n\
         \x20       let meta = method.input_meta(i).expect(\"input metadata\");\n\
         \x20       let n: usize = meta.shape.dims[..meta.shape.rank].iter().product();\n\
         \x20       let bytes: Vec<u8> = match meta.dtype {{\n\
         \x20           DType::F32 => (0..n).flat_map(|j| value(j).to_le_bytes()).collect(),\n\
         \x20           DType::I64 => (0..n).flat_map(|j| (j as i64 % 3).to_le_bytes()).collect(),\n\
         \x20           DType::Bool => (0..n).map(|j| (j % 2) as u8).collect(),\n\
         \x20       }};\n\
         \x20       method.set_input(i, &bytes).expect(\"set_input\");\n\
         \x20   }}\n\
         \x20   let before = allocations();\n\
         \x20   method.execute().expect(\"execute\");\n\
         \x20   assert_eq!(allocations() - before, 0, \"execute allocated\");\n\
         \x20   for i in 0..method.outputs() {{\n\
         \x20       let meta = method.output_meta(i).expect(\"output metadata\");\n\
         \x20       let n: usize = meta.shape.dims[..meta.shape.rank].iter().product();\n\
         \x20       let size = match meta.dtype {{\n\
         \x20           DType::F32 => 4,\n\
         \x20           DType::I64 => 8,\n\
         \x20           DType::Bool => 1,\n\
         \x20       }};\n\
         \x20       assert_eq!(method.output(i).expect(\"output\").len(), n * size);\n\
         \x20   }}\n\
         }}\n\
         \n\
         #[test]\n\
         fn typed_api_executes_without_allocating() {{\n\
         \x20   let mut storage = Vec::new();\n\
         \x20   let arena = aligned(&mut storage, rt::ARENA_BYTES);\n\
         \x20   let mut model = rt::{ty}::embedded(arena).expect(\"the embedded program loads\");\n",
    );
    let mut taken = BTreeSet::new();
    let in_names: Vec<&str> = g.signature.inputs.iter().map(|t| t.name.as_str()).collect();
    let ins = idents(&in_names, "input", &mut taken);
    for (t, id) in g.signature.inputs.iter().zip(&ins) {
        let n = numel(&t.shape);
        let gen = match t.dtype {
            DType::F32 => "(0..N).map(value).collect()".to_string(),
            DType::I64 => "(0..N).map(|j| (j % 3) as i64).collect()".to_string(),
            DType::Bool => "(0..N).map(|j| (j % 2) as u8).collect()".to_string(),
        };
        let gen = gen.replace('N', &n.to_string());
        let _ = writeln!(s, "    let {id}: Vec<{}> = {gen};", rust_elem(t.dtype));
        let _ = writeln!(
            s,
            "    let {id}: &[{}; {n}] = {id}.as_slice().try_into().expect(\"input size\");",
            rust_elem(t.dtype)
        );
    }
    let args: Vec<&str> = ins.iter().map(String::as_str).collect();
    s.push_str("    let before = allocations();\n");
    let call = format!("    let outputs = model.forward({});", args.join(", "));
    // rustfmt puts a call's arguments one per line past 60 characters of them.
    if args.join(", ").len() <= 60 && call.len() <= 100 {
        let _ = writeln!(s, "{call}");
    } else {
        s.push_str("    let outputs = model.forward(\n");
        for a in &args {
            let _ = writeln!(s, "        {a},");
        }
        s.push_str("    );\n");
    }
    s.push_str(
        "    let outputs = outputs.expect(\"forward\");\n\
         \x20   assert_eq!(allocations() - before, 0, \"forward allocated\");\n",
    );
    if g.signature.outputs.len() == 1 {
        let n = numel(&g.signature.outputs[0].shape);
        let _ = writeln!(s, "    assert_eq!(outputs.len(), {n});");
    } else {
        let out_names: Vec<&str> = g
            .signature
            .outputs
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let outs = idents(&out_names, "output", &mut BTreeSet::new());
        for (t, id) in g.signature.outputs.iter().zip(&outs) {
            let _ = writeln!(
                s,
                "    assert_eq!(outputs.{id}.len(), {});",
                numel(&t.shape)
            );
        }
    }
    s.push_str("}\n");
    s
}

fn fuzz_cargo_toml(pkg: &str) -> String {
    format!(
        "# The loader's fuzz target: `cargo +nightly fuzz run load`.\n\
         [package]\n\
         name = \"{pkg}-fuzz\"\n\
         version = \"0.0.0\"\n\
         edition = \"2021\"\n\
         publish = false\n\
         \n\
         [package.metadata]\n\
         cargo-fuzz = true\n\
         \n\
         [dependencies]\n\
         libfuzzer-sys = \"0.4\"\n\
         {pkg} = {{ path = \"..\" }}\n\
         \n\
         [[bin]]\n\
         name = \"load\"\n\
         path = \"fuzz_targets/load.rs\"\n\
         test = false\n\
         doc = false\n\
         bench = false\n\
         \n\
         # Its own workspace, apart from the runtime's.\n\
         [workspace]\n"
    )
}

fn fuzz_target(pkg: &str) -> String {
    format!(
        "//! Arbitrary bytes given to the loader. Invariant: `Method::load` returns an error or a\n\
         //! method that executes to `Ok` or `Err`; it never crashes.\n\
         #![no_main]\n\
         \n\
         use libfuzzer_sys::fuzz_target;\n\
         \n\
         /// Arena sizes past this are refused here so that the fuzzer does not run out of memory.\n\
         const MAX_ARENA: usize = 1 << 26;\n\
         \n\
         fuzz_target!(|data: &[u8]| {{\n\
         \x20   // The loader requires 64-byte alignment, which libFuzzer's buffer does not promise.\n\
         \x20   let mut storage = vec![0u8; data.len() + 64];\n\
         \x20   let off = storage.as_ptr().align_offset(64);\n\
         \x20   storage[off..off + data.len()].copy_from_slice(data);\n\
         \x20   let blob = &storage[off..off + data.len()];\n\
         \x20   let Ok(need) = {pkg}::Method::arena_bytes(blob) else {{\n\
         \x20       return;\n\
         \x20   }};\n\
         \x20   if need > MAX_ARENA {{\n\
         \x20       return;\n\
         \x20   }}\n\
         \x20   let mut arena = vec![0u8; need + 64];\n\
         \x20   let off = arena.as_ptr().align_offset(64);\n\
         \x20   if let Ok(mut method) = {pkg}::Method::load(blob, &mut arena[off..off + need]) {{\n\
         \x20       let _ = method.execute();\n\
         \x20   }}\n\
         }});\n"
    )
}
