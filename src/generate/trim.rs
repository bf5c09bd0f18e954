//! Trimming of the shared sources by their marker comments. Invariant: these are pure text
//! functions; a kept block is copied byte for byte without its marker lines, a dropped block
//! leaves nothing behind, and blank lines left at a seam are normalized so that a rustfmt-clean
//! input stays rustfmt-clean.
//!
//! Markers are whole lines whose text, after indentation, starts with `//@`:
//!
//! ```text
//! //@variant <name>   kernels/src/<family>.rs: one kernel variant
//! //@shared <v> <w>.. kernels/src/<family>.rs: code that variants <v>, <w>, ... of the same
//!                     file share; copied when any of them is kept
//! //@meta             kernels/src/<family>.rs: the `VARIANTS` table, never copied
//! //@use <f>.<v>      runtime/src/ops/<family>.rs: one arm of a binding's variant chain
//! //@family <f>       runtime/src/ops/mod.rs: everything specific to one family
//! //@end              closes the open block; blocks do not nest
//! ```

use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// A marker that is malformed or out of place; names the file and the 1-based line.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TrimError {
    #[error("{file}:{line}: unknown marker `{text}`")]
    UnknownMarker {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: marker `{text}` is not allowed in this file")]
    Misplaced {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: marker `{text}` opens a block inside the block opened at line {open}; blocks do not nest")]
    Nested {
        file: String,
        line: usize,
        text: String,
        open: usize,
    },
    #[error("{file}:{line}: block `{text}` is never closed by `//@end`")]
    Unclosed {
        file: String,
        line: usize,
        text: String,
    },
    #[error("{file}:{line}: `//@end` without an open block")]
    StrayEnd { file: String, line: usize },
    #[error("{file}:{line}: variant `{name}` is declared a second time")]
    DuplicateVariant {
        file: String,
        line: usize,
        name: String,
    },
    #[error("kernel variant `{0}` does not exist in the kernel library")]
    UnknownVariant(String),
    #[error("{file}:{line}: `//@shared` names `{name}`, which is not a variant of this file")]
    UnknownShared {
        file: String,
        line: usize,
        name: String,
    },
}

/// What a block holds, from its opening marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `//@variant <name>`: a kernel variant (the bare variant name, without family).
    Variant(String),
    /// `//@shared <v> <w> ...`: helpers that the named variants of the same file share.
    Shared(Vec<String>),
    /// `//@meta`: the kernel metadata table.
    Meta,
    /// `//@use <family>.<variant>`: a binding arm for one variant.
    Use(String),
    /// `//@family <family>`: what ops/mod.rs holds for one family.
    Family(String),
}

/// A run of lines: outside any block (`kind == None`), or one block without its markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment<'t> {
    pub kind: Option<BlockKind>,
    /// 1-based line of the opening marker, or of the first line for shared text.
    pub line: usize,
    /// The lines, each with its line terminator.
    pub lines: Vec<&'t str>,
}

/// Which markers a file may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `kernels/src/<family>.rs`: `variant`, `meta`.
    KernelFamily,
    /// `runtime/src/ops/<family>.rs`: `use`.
    OpBinding,
    /// `runtime/src/ops/mod.rs`: `family`.
    OpsMod,
    /// Every other runtime file: no markers.
    Plain,
}

enum Marker {
    Open(BlockKind),
    End,
}

fn parse_marker(file: &str, line: usize, text: &str) -> Result<Marker, TrimError> {
    let body = text.trim().trim_start_matches("//@");
    let mut words = body.split_whitespace();
    let unknown = || TrimError::UnknownMarker {
        file: file.to_string(),
        line,
        text: text.trim().to_string(),
    };
    let head = words.next().ok_or_else(unknown)?;
    if head == "shared" {
        let names: Vec<String> = words.map(str::to_string).collect();
        return if names.is_empty() {
            Err(unknown())
        } else {
            Ok(Marker::Open(BlockKind::Shared(names)))
        };
    }
    let arg = words.next();
    if words.next().is_some() {
        return Err(unknown());
    }
    let named = |f: fn(String) -> BlockKind| match arg {
        Some(a) => Ok(Marker::Open(f(a.to_string()))),
        None => Err(unknown()),
    };
    match (head, arg) {
        ("end", None) => Ok(Marker::End),
        ("meta", None) => Ok(Marker::Open(BlockKind::Meta)),
        ("variant", _) => named(BlockKind::Variant),
        ("use", _) => named(BlockKind::Use),
        ("family", _) => named(BlockKind::Family),
        _ => Err(unknown()),
    }
}

fn allowed(kind: FileKind, block: &BlockKind) -> bool {
    matches!(
        (kind, block),
        (
            FileKind::KernelFamily,
            BlockKind::Variant(_) | BlockKind::Shared(_) | BlockKind::Meta
        ) | (FileKind::OpBinding, BlockKind::Use(_))
            | (FileKind::OpsMod, BlockKind::Family(_))
    )
}

/// Splits `text` into shared runs and blocks, checking every marker.
pub fn parse<'t>(file: &str, kind: FileKind, text: &'t str) -> Result<Vec<Segment<'t>>, TrimError> {
    let mut out: Vec<Segment<'t>> = Vec::new();
    // The open block's kind, opening line and marker text.
    let mut open: Option<(BlockKind, usize, &'t str)> = None;
    let mut current: Vec<&'t str> = Vec::new();
    let mut current_line = 1;
    let mut variants = BTreeSet::new();
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line = i + 1;
        if !raw.trim_start().starts_with("//@") {
            if current.is_empty() && open.is_none() {
                current_line = line;
            }
            current.push(raw);
            continue;
        }
        match parse_marker(file, line, raw)? {
            Marker::End => {
                let Some((block, at, _)) = open.take() else {
                    return Err(TrimError::StrayEnd {
                        file: file.to_string(),
                        line,
                    });
                };
                out.push(Segment {
                    kind: Some(block),
                    line: at,
                    lines: std::mem::take(&mut current),
                });
            }
            Marker::Open(block) => {
                if let Some((_, at, _)) = &open {
                    return Err(TrimError::Nested {
                        file: file.to_string(),
                        line,
                        text: raw.trim().to_string(),
                        open: *at,
                    });
                }
                if !allowed(kind, &block) {
                    return Err(TrimError::Misplaced {
                        file: file.to_string(),
                        line,
                        text: raw.trim().to_string(),
                    });
                }
                if let BlockKind::Variant(name) = &block {
                    if !variants.insert(name.clone()) {
                        return Err(TrimError::DuplicateVariant {
                            file: file.to_string(),
                            line,
                            name: name.clone(),
                        });
                    }
                }
                if !current.is_empty() {
                    out.push(Segment {
                        kind: None,
                        line: current_line,
                        lines: std::mem::take(&mut current),
                    });
                }
                open = Some((block, line, raw));
            }
        }
    }
    if let Some((_, at, marker)) = open {
        return Err(TrimError::Unclosed {
            file: file.to_string(),
            line: at,
            text: marker.trim().to_string(),
        });
    }
    if !current.is_empty() {
        out.push(Segment {
            kind: None,
            line: current_line,
            lines: current,
        });
    }
    for seg in &out {
        if let Some(BlockKind::Shared(names)) = &seg.kind {
            if let Some(name) = names.iter().find(|n| !variants.contains(*n)) {
                return Err(TrimError::UnknownShared {
                    file: file.to_string(),
                    line: seg.line,
                    name: name.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Joins the kept segments and normalizes the blank lines that dropping blocks may leave: no
/// blank line at the start or end of the file, none right after a line that opens a block or
/// right before one that closes it, never two in a row.
fn assemble<'t>(segments: impl IntoIterator<Item = &'t str>) -> String {
    let lines: Vec<&str> = segments.into_iter().collect();
    let blank = |s: &str| s.trim().is_empty();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, &l) in lines.iter().enumerate() {
        if blank(l) {
            let prev = out.last().map(|p| p.trim_end());
            let next = lines[i + 1..].iter().find(|n| !blank(n)).map(|n| n.trim());
            let drop = match (prev, next) {
                (None, _) | (_, None) => true,
                (Some(p), Some(n)) => {
                    p.is_empty()
                        || p.ends_with('{')
                        || p.ends_with('(')
                        || p.ends_with('[')
                        || n.starts_with('}')
                        || n.starts_with(')')
                        || n.starts_with(']')
                }
            };
            if drop {
                continue;
            }
            out.push("\n");
        } else {
            out.push(l);
        }
    }
    let mut s: String = out.concat();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn keep_segments<'t>(
    segments: &[Segment<'t>],
    mut keep: impl FnMut(&BlockKind) -> bool,
) -> Vec<&'t str> {
    segments
        .iter()
        .filter(|s| s.kind.as_ref().is_none_or(&mut keep))
        .flat_map(|s| s.lines.iter().copied())
        .collect()
}

/// The variant names (bare, without family) a kernel family file declares, in file order.
pub fn kernel_variants(file: &str, text: &str) -> Result<Vec<String>, TrimError> {
    Ok(parse(file, FileKind::KernelFamily, text)?
        .into_iter()
        .filter_map(|s| match s.kind {
            Some(BlockKind::Variant(v)) => Some(v),
            _ => None,
        })
        .collect())
}

/// A kernel family file with its shared part and the variants whose bare names `keep` accepts;
/// the metadata block and all markers dropped.
pub fn trim_kernel_family(
    file: &str,
    text: &str,
    keep: &dyn Fn(&str) -> bool,
) -> Result<String, TrimError> {
    let segments = parse(file, FileKind::KernelFamily, text)?;
    Ok(assemble(keep_segments(&segments, |k| match k {
        BlockKind::Variant(v) => keep(v),
        BlockKind::Shared(vs) => vs.iter().any(|v| keep(v)),
        _ => false,
    })))
}

/// An op binding file with only the `//@use` arms of kept variants (`"<family>.<variant>"`).
pub fn trim_op_binding(
    file: &str,
    text: &str,
    kept: &BTreeSet<String>,
) -> Result<String, TrimError> {
    let segments = parse(file, FileKind::OpBinding, text)?;
    Ok(assemble(keep_segments(&segments, |k| match k {
        BlockKind::Use(v) => kept.contains(v),
        _ => false,
    })))
}

/// `ops/mod.rs` with only the `//@family` blocks of the copied families.
pub fn trim_ops_mod(
    file: &str,
    text: &str,
    families: &BTreeSet<String>,
) -> Result<String, TrimError> {
    let segments = parse(file, FileKind::OpsMod, text)?;
    Ok(assemble(keep_segments(&segments, |k| match k {
        BlockKind::Family(f) => families.contains(f),
        _ => false,
    })))
}

/// A runtime file that must contain no markers, checked and returned unchanged.
pub fn check_plain(file: &str, text: &str) -> Result<String, TrimError> {
    parse(file, FileKind::Plain, text)?;
    Ok(text.to_string())
}

/// The code of `text` without line comments (and so without doc comments), so that words in
/// prose are not taken for references. String literals holding `//` are rare enough in these
/// files that cutting them short only ever hides a reference inside a literal.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn ident_at(s: &str, i: usize) -> Option<&str> {
    let end = s[i..]
        .find(|c: char| !is_ident_char(c))
        .map_or(s.len(), |e| i + e);
    (end > i).then(|| &s[i..end])
}

/// Parses a path tree starting at byte `i` (`a::b`, `a::{b, c::d}`, `{a, b}`) and appends every
/// path it names (segments after the prefix) to `out`. Stops quietly at anything that is not
/// part of a path (`(`, `<`, `;`, `*`).
fn path_tree(s: &str, i: usize, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let b = s.as_bytes();
    let mut i = skip_ws(b, i);
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            let before = prefix.len();
            i = path_tree(s, i, prefix, out);
            prefix.truncate(before);
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => return i + 1,
                _ => return i,
            }
        }
    }
    let Some(id) = ident_at(s, i) else {
        if !prefix.is_empty() {
            out.push(prefix.clone());
        }
        return i;
    };
    prefix.push(id.to_string());
    i += id.len();
    let j = skip_ws(b, i);
    if s[j..].starts_with("::") {
        let k = skip_ws(b, j + 2);
        if k < b.len() && (b[k] == b'{' || is_ident_char(b[k] as char)) {
            return path_tree(s, k, prefix, out);
        }
    }
    out.push(prefix.clone());
    i
}

/// Every path that follows `prefix` (`super::` or `kernels::`) in the code of `text`, as
/// segment lists: `super::shape::{load, Dst}` gives `[shape, load]` and `[shape, Dst]`.
fn paths_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let code = strip_comments(text);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix) {
        let start = from + at;
        from = start + prefix.len();
        if code[..start].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        path_tree(&code, from, &mut Vec::new(), &mut out);
    }
    out
}

/// Bare variant names of `variants` that `text` calls as plain functions of the same file:
/// `name(`, `name::<`, `name_accepts(`, not after `.` or `::` and not in their own `fn` line.
fn local_calls<'v>(text: &str, variants: &'v [String]) -> BTreeSet<&'v str> {
    let code = strip_comments(text);
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !is_ident_char(b[i] as char) || (i > 0 && is_ident_char(b[i - 1] as char)) {
            i += 1;
            continue;
        }
        let id = ident_at(&code, i).unwrap_or_default();
        let end = i + id.len();
        let before = code[..i].trim_end();
        let after = code[skip_ws(b, end)..].to_string();
        let called = after.starts_with('(') || after.starts_with("::<");
        let qualified = before.ends_with('.') || before.ends_with("::") || before.ends_with("fn");
        if called && !qualified {
            let base = id.strip_suffix("_accepts").unwrap_or(id);
            if let Some(v) = variants.iter().find(|v| *v == base || *v == id) {
                found.insert(v.as_str());
            }
        }
        i = end.max(i + 1);
    }
    found
}

/// What the generated crate copies: the kernel families and the kernel variants (as
/// `"<family>.<variant>"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub families: BTreeSet<String>,
    pub variants: BTreeSet<String>,
}

/// The runtime sources the closure reads, by role.
pub struct Sources<'s> {
    /// `kernels/src/<family>.rs` by family name.
    pub kernels: &'s BTreeMap<String, &'s str>,
    /// `runtime/src/ops/<family>.rs` by family name.
    pub bindings: &'s BTreeMap<String, &'s str>,
    /// `runtime/src/ops/mod.rs`, if present.
    pub ops_mod: Option<&'s str>,
    /// The other runtime files (`pte.rs`, `step.rs`, ...), always copied whole.
    pub plain: &'s [&'s str],
}

/// Closes `kept` over what the copied text needs: kernel families named through `super::<f>`
/// (kernels) or `kernels::<f>` (runtime), variants of other families named by path, and
/// variants of the same file called by a kept text. Fails on a kept name that is not a variant.
pub fn select(src: &Sources<'_>, kept: &BTreeSet<String>) -> Result<Selection, TrimError> {
    let mut variants_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (family, text) in src.kernels {
        variants_of.insert(
            family,
            kernel_variants(&format!("kernels/src/{family}.rs"), text)?,
        );
    }
    let mut sel = Selection::default();
    for name in kept {
        let known = name.split_once('.').is_some_and(|(f, v)| {
            variants_of
                .get(f)
                .is_some_and(|vs| vs.iter().any(|x| x == v))
        });
        if !known {
            return Err(TrimError::UnknownVariant(name.clone()));
        }
        sel.variants.insert(name.clone());
        sel.families
            .insert(name.split('.').next().unwrap_or_default().into());
    }
    // Adds what one path names: a family, and a variant of it when the next segment is one.
    let note = |sel: &mut Selection, path: &[String]| {
        let Some(family) = path.first() else { return };
        let Some(vs) = variants_of.get(family.as_str()) else {
            return;
        };
        sel.families.insert(family.clone());
        if let Some(item) = path.get(1) {
            let base = item.strip_suffix("_accepts").unwrap_or(item);
            if let Some(v) = vs.iter().find(|v| *v == item || *v == base) {
                sel.variants.insert(format!("{family}.{v}"));
            }
        }
    };
    loop {
        let before = sel.clone();
        let mut runtime_texts: Vec<String> = src.plain.iter().map(|t| t.to_string()).collect();
        if let Some(m) = src.ops_mod {
            runtime_texts.push(trim_ops_mod("runtime/src/ops/mod.rs", m, &before.families)?);
        }
        for family in &before.families {
            if let Some(b) = src.bindings.get(family) {
                let file = format!("runtime/src/ops/{family}.rs");
                runtime_texts.push(trim_op_binding(&file, b, &before.variants)?);
            }
        }
        for text in &runtime_texts {
            for path in paths_after(text, "kernels::") {
                note(&mut sel, &path);
            }
        }
        for family in &before.families {
            let Some(text) = src.kernels.get(family) else {
                continue;
            };
            let vs = &variants_of[family.as_str()];
            let file = format!("kernels/src/{family}.rs");
            let keep = |v: &str| before.variants.contains(&format!("{family}.{v}"));
            let copied = trim_kernel_family(&file, text, &keep)?;
            for path in paths_after(&copied, "super::") {
                note(&mut sel, &path);
            }
            for v in local_calls(&copied, vs) {
                sel.variants.insert(format!("{family}.{v}"));
            }
        }
        if sel == before {
            return Ok(sel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: &str = "\
//! A family.

use super::math;

fn helper() -> f32 {
    1.0
}

//@variant generic
pub fn generic(x: f32) -> f32 {
    x
}
//@end

//@variant fast
pub fn fast(x: f32) -> f32 {
    if x < 0.0 {
        return generic(x);
    }
    x * super::act::scale()
}

pub fn fast_accepts() -> bool {
    true
}
//@end

//@variant lone
pub fn lone(x: f32) -> f32 {
    // generic(x) in a comment is not a call.
    x.generic(1)
}
//@end

//@meta
pub const VARIANTS: &[super::meta::KernelInfo] = &[];
//@end
";

    fn keep_only<'a>(names: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |v| names.contains(&v)
    }

    #[test]
    fn kernel_family_keeps_shared_and_kept_variants() {
        let out = trim_kernel_family("f.rs", FAMILY, &keep_only(&["fast"])).unwrap();
        assert!(out.contains("fn helper()"));
        assert!(out.contains("pub fn fast("));
        assert!(out.contains("pub fn fast_accepts("));
        assert!(!out.contains("pub fn generic("));
        assert!(!out.contains("VARIANTS"));
        assert!(!out.contains("//@"));
        assert!(!out.contains("\n\n\n"));
        assert!(out.ends_with("}\n") && !out.ends_with("\n\n"));
    }

    #[test]
    fn dropping_everything_leaves_shared_part_only() {
        let out = trim_kernel_family("f.rs", FAMILY, &keep_only(&[])).unwrap();
        assert_eq!(
            out,
            "//! A family.\n\nuse super::math;\n\nfn helper() -> f32 {\n    1.0\n}\n"
        );
    }

    #[test]
    fn markers_are_checked() {
        let err = |t: &str| parse("x.rs", FileKind::KernelFamily, t).unwrap_err();
        assert_eq!(
            err("a\n//@variant v\nb\n"),
            TrimError::Unclosed {
                file: "x.rs".into(),
                line: 2,
                text: "//@variant v".into()
            }
        );
        assert_eq!(
            err("//@variant v\n//@variant w\n//@end\n"),
            TrimError::Nested {
                file: "x.rs".into(),
                line: 2,
                text: "//@variant w".into(),
                open: 1
            }
        );
        assert_eq!(
            err("//@bogus\n"),
            TrimError::UnknownMarker {
                file: "x.rs".into(),
                line: 1,
                text: "//@bogus".into()
            }
        );
        assert!(matches!(
            err("//@variant\n//@end\n"),
            TrimError::UnknownMarker { line: 1, .. }
        ));
        assert!(matches!(
            err("x\n//@end\n"),
            TrimError::StrayEnd { line: 2, .. }
        ));
        assert!(matches!(
            err("//@use a.b\n//@end\n"),
            TrimError::Misplaced { line: 1, .. }
        ));
        assert!(matches!(
            err("//@variant a\n//@end\n//@variant a\n//@end\n"),
            TrimError::DuplicateVariant { line: 3, .. }
        ));
        assert!(matches!(
            parse("p.rs", FileKind::Plain, "  //@family x\n"),
            Err(TrimError::Misplaced { line: 1, .. })
        ));
        let msg = err("//@meta\n").to_string();
        assert_eq!(msg, "x.rs:1: block `//@meta` is never closed by `//@end`");
    }

    #[test]
    fn shared_blocks_follow_any_of_their_variants() {
        let text = "\
//@shared wide narrow
fn body() {}
//@end

//@variant wide
pub fn wide() {}
//@end

//@variant narrow
pub fn narrow() {}
//@end
";
        for kept in [&["wide"][..], &["narrow"], &["wide", "narrow"]] {
            let out = trim_kernel_family("f.rs", text, &keep_only(kept)).unwrap();
            assert!(out.contains("fn body()"), "{kept:?}");
        }
        let out = trim_kernel_family("f.rs", text, &keep_only(&[])).unwrap();
        assert_eq!(out, "");
        assert_eq!(
            kernel_variants("f.rs", text).unwrap(),
            ["wide".to_string(), "narrow".to_string()]
        );
        assert_eq!(
            parse(
                "f.rs",
                FileKind::KernelFamily,
                "//@shared a b\n//@end\n//@variant a\n//@end\n"
            )
            .unwrap_err(),
            TrimError::UnknownShared {
                file: "f.rs".into(),
                line: 1,
                name: "b".into()
            }
        );
        assert!(matches!(
            parse("f.rs", FileKind::KernelFamily, "//@shared\n//@end\n"),
            Err(TrimError::UnknownMarker { line: 1, .. })
        ));
        assert!(matches!(
            parse("b.rs", FileKind::OpBinding, "//@shared a\n//@end\n"),
            Err(TrimError::Misplaced { line: 1, .. })
        ));
    }

    #[test]
    fn bindings_and_ops_mod_keep_their_blocks() {
        let binding = "\
pub fn run(p: &P) -> Result<(), E> {
    //@use f.fast
    if kernels::f::fast_accepts(p) {
        return Ok(());
    }
    //@end

    //@use f.generic
    if kernels::f::generic_accepts(p) {
        return Ok(());
    }
    //@end

    Err(E)
}
";
        let kept: BTreeSet<String> = ["f.generic".to_string()].into();
        let out = trim_op_binding("b.rs", binding, &kept).unwrap();
        assert_eq!(
            out,
            "pub fn run(p: &P) -> Result<(), E> {\n    if kernels::f::generic_accepts(p) {\n        return Ok(());\n    }\n\n    Err(E)\n}\n"
        );
        let none = trim_op_binding("b.rs", binding, &BTreeSet::new()).unwrap();
        assert_eq!(
            none,
            "pub fn run(p: &P) -> Result<(), E> {\n    Err(E)\n}\n"
        );

        let ops = "//@family f\nmod f;\n//@end\n//@family g\nmod g;\n//@end\n\nfn x() {\n    match k {\n        //@family g\n        K::G => g::run(),\n        //@end\n        _ => Err(E),\n    }\n}\n";
        let fams: BTreeSet<String> = ["f".to_string()].into();
        let out = trim_ops_mod("mod.rs", ops, &fams).unwrap();
        assert_eq!(
            out,
            "mod f;\n\nfn x() {\n    match k {\n        _ => Err(E),\n    }\n}\n"
        );
    }

    #[test]
    fn paths_are_read_from_code_only() {
        let t = "use super::shape::{load, Dst};\nuse super::{math, act::Act};\n// super::conv::x\nlet a = super::binary::binary_accepts(p);\n";
        let mut paths = paths_after(t, "super::");
        paths.sort();
        let want: Vec<Vec<String>> = vec![
            vec!["act".into(), "Act".into()],
            vec!["binary".into(), "binary_accepts".into()],
            vec!["math".into()],
            vec!["shape".into(), "Dst".into()],
            vec!["shape".into(), "load".into()],
        ];
        assert_eq!(paths, want);
    }

    fn sources_with(
        kernels: &BTreeMap<String, &'static str>,
        f: impl FnOnce(&Sources<'_>) -> Selection,
    ) -> Selection {
        let bindings = BTreeMap::new();
        f(&Sources {
            kernels,
            bindings: &bindings,
            ops_mod: None,
            plain: &["pub use super::kernels::act::Act;\n"],
        })
    }

    #[test]
    fn selection_closes_over_calls_and_families() {
        let kernels: BTreeMap<String, &'static str> = [
            ("fam".to_string(), FAMILY),
            ("act".to_string(), "use super::math;\npub struct Act;\n"),
            ("math".to_string(), "pub fn exp() {}\n"),
            ("meta".to_string(), "pub struct KernelInfo;\n"),
            (
                "conv".to_string(),
                "//@variant generic\nfn generic() {}\n//@end\n",
            ),
        ]
        .into_iter()
        .collect();
        let kept: BTreeSet<String> = ["fam.fast".to_string()].into();
        let sel = sources_with(&kernels, |s| select(s, &kept).unwrap());
        let names = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
        assert_eq!(names(&sel.variants), ["fam.fast", "fam.generic"]);
        assert_eq!(names(&sel.families), ["act", "fam", "math"]);

        // A method call `.generic(` and a comment are not calls of the variant.
        let kept: BTreeSet<String> = ["fam.lone".to_string()].into();
        let sel = sources_with(&kernels, |s| select(s, &kept).unwrap());
        assert_eq!(names(&sel.variants), ["fam.lone"]);

        let kept: BTreeSet<String> = ["fam.nope".to_string()].into();
        let bindings = BTreeMap::new();
        let src = Sources {
            kernels: &kernels,
            bindings: &bindings,
            ops_mod: None,
            plain: &[],
        };
        assert_eq!(
            select(&src, &kept),
            Err(TrimError::UnknownVariant("fam.nope".into()))
        );
    }
}
