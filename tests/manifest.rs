//! Data-driven manifest tests: every folder in `tests/fixtures/manifests/` is one case, loaded
//! and snapshotted. Invariant: snapshots hold no machine-specific text — paths are relative to
//! the crate and the host device's detected triple and features are masked.

use etpkg::manifest::{self, Manifest};
use std::path::{Path, PathBuf};

const FIXTURES: &str = "tests/fixtures/manifests";

/// Loads one case and snapshots the rendered errors, or the resolved manifest as JSON.
fn check(case: &str) {
    let path = PathBuf::from(FIXTURES).join(case).join("ExecuTorch.toml");
    let out = match manifest::load(&path) {
        Ok(m) => stable_json(&m),
        Err(e) => {
            // Every located error must point inside a file that exists, at a real line.
            for d in e.diagnostics() {
                assert!(d.line >= 1 && d.column >= 1, "{case}: {d:?}");
                assert!(d.file.is_file(), "{case}: {}", d.file.display());
            }
            e.to_string()
        }
    };
    insta::assert_snapshot!(case, out);
}

/// The manifest as JSON with the checkout's location and the host machine masked.
fn stable_json(m: &Manifest) -> String {
    let mut v = serde_json::to_value(m).unwrap();
    for t in v["targets"].as_object_mut().unwrap().values_mut() {
        if t["device"]["name"] == "host" && t["device"]["origin"] == "Builtin" {
            t["device"]["triple"] = "<host triple>".into();
            t["device"]["features"] = "<detected>".into();
        }
    }
    let root = m.root.to_str().unwrap();
    serde_json::to_string_pretty(&v)
        .unwrap()
        .replace(&root.replace('\\', "\\\\"), "<root>")
}

#[test]
fn fixtures() {
    let mut cases: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "{cases:?}");
    for case in &cases {
        check(case);
    }
}

#[test]
fn diagnostics_are_structured() {
    let path = Path::new(FIXTURES).join("typo_target_key/ExecuTorch.toml");
    let err = manifest::load(&path).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (13, 1));
    assert_eq!(d.message, "unknown key `profle` in `[target.host]`");
    assert_eq!(d.help.as_deref(), Some("did you mean `profile`?"));
    assert_eq!(d.file, path);
}

#[test]
fn a_missing_manifest_is_one_line() {
    let err = manifest::load(Path::new("no/such/ExecuTorch.toml")).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("error: failed to read manifest `no/such/ExecuTorch.toml`: "));
    assert!(!text.contains('\n'));
    assert!(err.diagnostics().is_empty());
}

#[test]
fn the_classifier_example_loads() {
    let m = manifest::load(Path::new("examples/classifier/ExecuTorch.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.package.name, "classifier");
    assert!(m.model.source.is_file());
    assert!(m.model.source.is_absolute());
    assert_eq!(m.targets["host"].device.name, "host");
    assert_eq!(
        m.profile(Manifest::DEFAULT_PROFILE).unwrap().passes.len(),
        7
    );
}

/// `ExecuTorch.toml.example` documents every key, so it must stay valid: copy it into a scratch
/// folder next to the files it names and load it from there.
#[test]
fn the_documented_example_is_valid() {
    let dir = std::env::temp_dir().join(format!("etpkg-manifest-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for f in [
        "models/classifier.pt2",
        "export.py",
        "io/x.npy",
        "io/y.npy",
        "devices/board.toml",
    ] {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"placeholder").unwrap();
    }
    std::fs::copy(
        Path::new(FIXTURES).join("good/devices/board.toml"),
        dir.join("devices/board.toml"),
    )
    .unwrap();
    let text = std::fs::read_to_string("ExecuTorch.toml.example").unwrap();
    let path = dir.join("ExecuTorch.toml");
    let result = manifest::parse(&path, &text);
    let _ = std::fs::remove_dir_all(&dir);
    let m = result.unwrap_or_else(|e| panic!("{e}"));
    assert!(m.model.export.is_some());
    assert!(m.verify.is_some());
    assert!(m.targets.len() >= 3);
}
