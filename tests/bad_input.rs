//! Bad input through the binary: every malformed archive gives an error that names the file and
//! what is wrong, exits with status 1 (not a panic's 101), and its message is snapshotted.
//!
//! Each case starts from a valid fixture archive and damages one thing, re-zipping with correct
//! CRCs where the damage is to the content, so the reader's later checks are reached.

mod common;

use common::stored_zip;

use etpkg::pt2::ZipIndex;
use std::path::{Path, PathBuf};
use std::process::Command;

const BASE: &str = "tests/fixtures/models/conv1d_net/export.pt2";

/// The entries of the base archive, in order.
fn entries() -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(BASE)).unwrap();
    let idx = ZipIndex::parse(&bytes).unwrap();
    idx.names()
        .iter()
        .map(|n| (n.clone(), idx.get(n).unwrap().bytes(&bytes).to_vec()))
        .collect()
}

fn edit(
    mut es: Vec<(String, Vec<u8>)>,
    suffix: &str,
    f: impl Fn(&mut Vec<u8>),
) -> Vec<(String, Vec<u8>)> {
    let e = es
        .iter_mut()
        .find(|(n, _)| n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix}"));
    f(&mut e.1);
    es
}

fn edit_json(
    es: Vec<(String, Vec<u8>)>,
    suffix: &str,
    from: &str,
    to: &str,
) -> Vec<(String, Vec<u8>)> {
    edit(es, suffix, |b| {
        let s = String::from_utf8(b.clone()).unwrap();
        assert!(s.contains(from), "{suffix} does not contain {from}");
        *b = s.replacen(from, to, 1).into_bytes();
    })
}

/// Runs `etpkg run --reference` on `bytes` and returns stderr with the temp path normalized.
fn run_bad(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("etpkg-bad-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model: PathBuf = dir.join("model.pt2");
    std::fs::write(&model, bytes).unwrap();
    let input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/conv1d_net/input_0.npy");
    let out = Command::new(env!("CARGO_BIN_EXE_etpkg"))
        .args(["run", "--reference", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("--output-dir")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: expected exit 1, got {:?}\n{stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
    assert!(
        stderr.contains(&*model.to_string_lossy()),
        "{name}: the error does not name the file:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
    stderr.replace(&*dir.to_string_lossy(), "<tmp>")
}

#[test]
fn truncated_zip() {
    let full = stored_zip(&entries());
    insta::assert_snapshot!(run_bad("truncated", &full[..full.len() / 2]));
}

#[test]
fn not_a_zip() {
    insta::assert_snapshot!(run_bad("not_zip", b"this is not an archive at all"));
}

#[test]
fn missing_model_json() {
    let es: Vec<_> = entries()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("models/model.json"))
        .collect();
    insta::assert_snapshot!(run_bad("no_model", &stored_zip(&es)));
}

#[test]
fn missing_weights_config() {
    let es: Vec<_> = entries()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("model_weights_config.json"))
        .collect();
    insta::assert_snapshot!(run_bad("no_weights_config", &stored_zip(&es)));
}

#[test]
fn missing_archive_format() {
    let es: Vec<_> = entries()
        .into_iter()
        .filter(|(n, _)| !n.ends_with("/archive_format"))
        .collect();
    insta::assert_snapshot!(run_bad("no_format", &stored_zip(&es)));
}

#[test]
fn malformed_json() {
    let es = edit(entries(), "models/model.json", |b| b.truncate(b.len() / 3));
    insta::assert_snapshot!(run_bad("bad_json", &stored_zip(&es)));
}

#[test]
fn corrupted_metadata_fails_its_crc() {
    let mut bytes = stored_zip(&entries());
    let idx = ZipIndex::parse(&bytes).unwrap();
    let name = idx
        .names()
        .iter()
        .find(|n| n.ends_with("models/model.json"))
        .unwrap()
        .clone();
    let off = idx.get(&name).unwrap().offset + 10;
    bytes[off] ^= 0x20;
    insta::assert_snapshot!(run_bad("crc", &bytes));
}

#[test]
fn weight_shorter_than_its_metadata() {
    let es = edit(entries(), "data/weights/weight_0", |b| {
        b.truncate(b.len() / 2)
    });
    insta::assert_snapshot!(run_bad("short_weight", &stored_zip(&es)));
}

#[test]
fn unsupported_schema_version() {
    let es = edit_json(
        entries(),
        "models/model.json",
        "\"major\": 8",
        "\"major\": 99",
    );
    insta::assert_snapshot!(run_bad("schema", &stored_zip(&es)));
}

#[test]
fn unknown_dtype() {
    // The user input's metadata claims dtype code 99.
    let es = edit_json(
        entries(),
        "models/model.json",
        "\"x\": {\"dtype\": 7",
        "\"x\": {\"dtype\": 99",
    );
    insta::assert_snapshot!(run_bad("dtype", &stored_zip(&es)));
}

#[test]
fn unknown_op() {
    let es = edit_json(
        entries(),
        "models/model.json",
        "torch.ops.aten.relu.default",
        "torch.ops.aten.frobnicate.default",
    );
    insta::assert_snapshot!(run_bad("op", &stored_zip(&es)));
}

#[test]
fn metadata_disagrees_with_the_graph() {
    // The first convolution's output claims 999 channels.
    let es = edit_json(
        entries(),
        "models/model.json",
        "\"conv1d\": {\"dtype\": 7, \"sizes\": [{\"as_int\": 1}, {\"as_int\": ",
        "\"conv1d\": {\"dtype\": 7, \"sizes\": [{\"as_int\": 1}, {\"as_int\": 999}, {\"as_int\": ",
    );
    insta::assert_snapshot!(run_bad("shapes", &stored_zip(&es)));
}
