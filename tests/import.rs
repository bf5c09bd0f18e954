//! Import properties beyond parity: weights are borrowed from the mapped archive, not copied,
//! and importing is deterministic.

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
