//! Import properties beyond parity: weights are borrowed from the mapped archive, not copied,
//! and importing is deterministic.

mod common;

use etpkg::ir::{ConstData, ConstKind};
use std::path::Path;

fn fixture(name: &str, flavour: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/models/{name}/{flavour}.pt2"))
}

#[test]
fn parameters_and_buffers_borrow_the_archive() {
    for flavour in ["export", "core"] {
        let imported = etpkg::pt2::import(&fixture("mobilenet_v2", flavour)).unwrap();
        let stored: Vec<_> = imported
            .graph
            .constants
            .iter()
            .filter(|c| matches!(c.kind, ConstKind::Parameter | ConstKind::Buffer))
            .collect();
        assert!(
            stored.len() > 50,
            "expected the model's weights, found {}",
            stored.len()
        );
        for c in stored {
            assert!(
                matches!(c.data, ConstData::Mapped { .. }),
                "{:?} was copied on import ({flavour})",
                c.fqn
            );
        }
    }
}

#[test]
fn importing_twice_gives_the_same_graph() {
    let a = etpkg::pt2::import(&fixture("gpt", "core")).unwrap();
    let b = etpkg::pt2::import(&fixture("gpt", "core")).unwrap();
    assert_eq!(
        format!("{:?}", a.graph.nodes),
        format!("{:?}", b.graph.nodes)
    );
    assert_eq!(a.graph.values.len(), b.graph.values.len());
}

/// The build cache stores each lowered graph in `ir::serial`'s format: for every fixture, the
/// encoding must be deterministic, and the decoded graph must compute exactly what the
/// imported one does (bit for bit, NaN payloads aside, which the fixtures do not produce).
#[test]
fn every_fixture_survives_the_cache_format() {
    use etpkg::ir::{serial, Backing};
    use std::sync::Arc;
    let dirs = common::fixtures::fixture_dirs();
    assert!(dirs.len() >= 20);
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let inputs = common::fixtures::inputs(&dir);
        for flavour in ["export", "core"] {
            let graph = etpkg::pt2::import(&fixture(&name, flavour)).unwrap().graph;
            let bytes = serial::encode(&graph);
            let again = etpkg::pt2::import(&fixture(&name, flavour)).unwrap().graph;
            assert_eq!(
                serial::encode(&again),
                bytes,
                "{name}/{flavour}: not deterministic"
            );
            let decoded = serial::decode(Arc::new(Backing::Owned(bytes))).unwrap();
            let want = etpkg::interp::run(&graph, &inputs).unwrap();
            let got = etpkg::interp::run(&decoded, &inputs).unwrap();
            assert_eq!(
                got, want,
                "{name}/{flavour}: decoded graph computes differently"
            );
        }
    }
}
