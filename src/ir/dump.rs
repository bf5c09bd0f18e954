//! A readable text form of a graph for snapshots and debugging: one line per input, constant
//! and node. Invariant: the text is a pure function of the graph and never includes constant
//! bytes, so snapshots stay small and stable.

use super::{Graph, Op, ValueDef, ValueId};
use std::fmt::Write;

/// Renders `g` as text, for example
/// `%5 = conv(%x, %w, %b) {stride=[1, 1] ...} : f32[1,8,16,16]`.
pub fn dump(g: &Graph) -> String {
    let mut s = String::new();
    let name = |v: ValueId| format!("%{}", g.value(v).name);
    for &v in &g.inputs {
        let _ = writeln!(s, "input {} : {}", name(v), g.ty(v));
    }
    for c in &g.constants {
        let kind = format!("{:?}", c.kind).to_lowercase();
        let _ = writeln!(s, "const {} : {} ({kind})", name(c.value), g.ty(c.value));
    }
    for node in &g.nodes {
        let args: Vec<String> = node.inputs.iter().map(|&v| name(v)).collect();
        let _ = writeln!(
            s,
            "{} = {}({}){} : {}",
            name(node.output),
            node.op.name(),
            args.join(", "),
            attrs(&node.op),
            g.ty(node.output)
        );
    }
    let outs: Vec<String> = g.outputs.iter().map(|&v| name(v)).collect();
    let _ = writeln!(s, "return {}", outs.join(", "));
    // Values defined by something other than what is listed above would be a broken graph;
    // saying so in the dump makes such a bug visible in any snapshot.
    for (i, v) in g.values.iter().enumerate() {
        if let ValueDef::Node(n) = v.def {
            if g.nodes.get(n.index()).map(|n| n.output.index()) != Some(i) {
                let _ = writeln!(s, "# dangling value %{}", v.name);
            }
        }
    }
    s
}

/// The op's attributes in braces, or nothing for ops without any. The derived `Debug` form is
/// used because it names every field and cannot fall out of date as attributes change. Unary
/// and binary ops are unwrapped first, since their names already say which op they are.
fn attrs(op: &Op) -> String {
    let debug = match op {
        Op::Unary(u) => format!("{u:?}"),
        Op::Binary(_) => return String::new(),
        _ => format!("{op:?}"),
    };
    match debug.find(['(', '{']) {
        Some(i) => format!(" {{{}}}", debug[i + 1..debug.len() - 1].trim()),
        None => String::new(),
    }
}
