//! A spanned TOML tree and a checker that reads typed values out of it while collecting
//! diagnostics.
//!
//! toml_edit keeps spans, but it has separate types for standard and inline tables; copying into
//! one small tree lets the manifest and device readers treat `[a.b]`, `a.b = ..` and
//! `a = { b = .. }` identically.
//!
//! Invariant: every node and key carries the byte span it was parsed from, and every read that
//! fails records exactly one diagnostic pointing into the file.

use super::diag::{Diagnostic, Diagnostics, SourceFile};
use super::suggest::did_you_mean;
use std::ops::Range;
use toml_edit::{Item, Value};

#[derive(Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    pub span: Range<usize>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Table),
    TableArray,
}

#[derive(Debug, Default)]
pub(crate) struct Table {
    pub entries: Vec<Entry>,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Kind {
    /// The type's name with its article, for "expected a string, found an integer".
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime => "a datetime",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
            Kind::TableArray => "an array of tables",
        }
    }
}

impl Table {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Parses TOML text into the spanned tree, or returns the syntax error as the one diagnostic.
pub(crate) fn parse(file: &SourceFile<'_>) -> Result<Node, Diagnostics> {
    match toml_edit::Document::parse(file.text) {
        Ok(doc) => Ok(from_item(doc.as_item(), 0..0)),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            // toml_edit's message is a sentence fragment such as "duplicate key"; it is the whole
            // explanation, so it becomes the headline and nothing is repeated under the caret.
            Err(Diagnostics(vec![file.diagnostic(
                span,
                format!("invalid TOML: {}", e.message().trim_end()),
                None,
                None,
            )]))
        }
    }
}

fn from_item(item: &Item, fallback: Range<usize>) -> Node {
    match item {
        Item::Table(t) => {
            let entries = t
                .iter()
                .map(|(k, v)| {
                    let key_span = t.key(k).and_then(|k| k.span()).unwrap_or(fallback.clone());
                    Entry {
                        key: k.to_string(),
                        key_span: key_span.clone(),
                        value: from_item(v, key_span),
                    }
                })
                .collect();
            Node {
                kind: Kind::Table(Table { entries }),
                span: t.span().unwrap_or(fallback),
            }
        }
        Item::Value(v) => from_value(v, fallback),
        Item::ArrayOfTables(a) => Node {
            kind: Kind::TableArray,
            span: a.span().unwrap_or(fallback),
        },
        Item::None => Node {
            kind: Kind::Table(Table::default()),
            span: fallback,
        },
    }
}

fn from_value(v: &Value, fallback: Range<usize>) -> Node {
    let span = v.span().unwrap_or(fallback.clone());
    let kind = match v {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(x) => Kind::Float(*x.value()),
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(_) => Kind::Datetime,
        Value::Array(a) => Kind::Array(a.iter().map(|x| from_value(x, span.clone())).collect()),
        Value::InlineTable(t) => Kind::Table(Table {
            entries: t
                .iter()
                .map(|(k, v)| {
                    let key_span = t.key(k).and_then(|k| k.span()).unwrap_or(span.clone());
                    Entry {
                        key: k.to_string(),
                        key_span: key_span.clone(),
                        value: from_value(v, key_span),
                    }
                })
                .collect(),
        }),
    };
    Node { kind, span }
}

/// Reads typed values and collects diagnostics for one file.
pub(crate) struct Checker<'a> {
    pub file: SourceFile<'a>,
    pub diags: Vec<Diagnostic>,
}

/// Places a key for messages: "in `[target.host]`", or "at the top level" for the root.
pub(crate) fn in_table(path: &str) -> String {
    if path.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in `[{path}]`")
    }
}

/// Joins a table path and a key into a dotted key for messages.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Checker<'a> {
    pub fn new(file: SourceFile<'a>) -> Self {
        Checker {
            file,
            diags: Vec::new(),
        }
    }

    pub fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        label: Option<&str>,
        help: Option<String>,
    ) {
        let d = self
            .file
            .diagnostic(span, message, label.map(str::to_string), help);
        self.diags.push(d);
    }

    /// Reports a value of the wrong type.
    pub fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        self.error(
            node.span.clone(),
            format!(
                "expected {expected} for `{what}`, found {}",
                node.kind.describe()
            ),
            Some(&format!("expected {expected}")),
            None,
        );
    }

    /// Reports every key of `table` not in `allowed`, suggesting the nearest allowed key.
    pub fn unknown_keys(&mut self, table: &Table, path: &str, allowed: &[&str]) {
        for e in &table.entries {
            if !allowed.contains(&e.key.as_str()) {
                let help = did_you_mean(&e.key, allowed.iter().copied()).or_else(|| {
                    Some(format!(
                        "the keys allowed {} are {}",
                        in_table(path),
                        list(allowed)
                    ))
                });
                self.error(
                    e.key_span.clone(),
                    format!("unknown key `{}` {}", e.key, in_table(path)),
                    Some("unknown key"),
                    help,
                );
            }
        }
    }

    /// Reports a missing required key at the table's header.
    pub fn missing(&mut self, table_span: Range<usize>, path: &str, key: &str) {
        self.error(
            table_span,
            format!("missing key `{key}` {}", in_table(path)),
            Some(&format!("`{key}` is required here")),
            None,
        );
    }

    /// A sub-table, or `None` (with a diagnostic if the value has another type).
    pub fn table<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n Table> {
        match &node.kind {
            Kind::Table(t) => Some(t),
            _ => {
                self.wrong_type(node, what, "a table");
                None
            }
        }
    }

    pub fn str<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Str(s) => Some(s),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(node, what, "a boolean");
                None
            }
        }
    }

    pub fn int(&mut self, node: &Node, what: &str) -> Option<i64> {
        match node.kind {
            Kind::Int(i) => Some(i),
            _ => {
                self.wrong_type(node, what, "an integer");
                None
            }
        }
    }

    /// A number; integers are accepted where a float is expected, as TOML writers often drop
    /// the `.0`.
    pub fn float(&mut self, node: &Node, what: &str) -> Option<f64> {
        match node.kind {
            Kind::Float(x) => Some(x),
            Kind::Int(i) => Some(i as f64),
            _ => {
                self.wrong_type(node, what, "a number");
                None
            }
        }
    }

    pub fn array<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Array(a) => Some(a),
            _ => {
                self.wrong_type(node, what, "an array");
                None
            }
        }
    }

    /// An array of strings with each string's node; wrong elements are reported one by one.
    pub fn strings<'n>(&mut self, node: &'n Node, what: &str) -> Option<Vec<(&'n str, &'n Node)>> {
        let items = self.array(node, what)?;
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match &item.kind {
                Kind::Str(s) => out.push((s.as_str(), item)),
                _ => {
                    self.wrong_type(item, &format!("{what} element"), "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A byte size: a positive integer, or a string that [`crate::device::parse_size`] accepts.
    pub fn size(&mut self, node: &Node, what: &str) -> Option<u64> {
        let help = || {
            Some(
                "write a byte count, or a number with one of the suffixes B, KiB, MiB, GiB, KB, \
                 MB, GB, e.g. \"512KiB\""
                    .to_string(),
            )
        };
        match &node.kind {
            Kind::Int(i) if *i > 0 => Some(*i as u64),
            Kind::Str(s) => match crate::device::parse_size(s) {
                Some(n) if n > 0 => Some(n),
                _ => {
                    self.error(
                        node.span.clone(),
                        format!("invalid size `{s}` for `{what}`"),
                        Some("not a size"),
                        help(),
                    );
                    None
                }
            },
            Kind::Int(i) => {
                self.error(
                    node.span.clone(),
                    format!("invalid size {i} for `{what}`: sizes must be positive"),
                    Some("not a size"),
                    help(),
                );
                None
            }
            _ => {
                self.wrong_type(node, what, "a size (an integer or a string)");
                None
            }
        }
    }
}

/// Formats names as "`a`, `b` and `c`".
pub(crate) fn list<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        n => format!("{} and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
