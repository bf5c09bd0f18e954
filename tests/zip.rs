//! The zip container reader against archives built by an independent writer
//! (`common::stored_zip`).

mod common;

use common::stored_zip;
use etpkg::pt2::{ZipError, ZipIndex};

fn files(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect()
}

#[test]
fn reads_stored_entries_in_place() {
    let zip = stored_zip(&files(&[("a/x", b"hello"), ("a/y", b"")]));
    let idx = ZipIndex::parse(&zip).unwrap();
    assert_eq!(idx.names(), ["a/x", "a/y"]);
    let e = idx.get("a/x").unwrap();
    assert_eq!(e.checked_bytes(&zip, "a/x").unwrap(), b"hello");
    assert_eq!(idx.get("a/y").unwrap().bytes(&zip), b"");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let zip = stored_zip(&files(&[
        ("a/x", b"hello world"),
        ("a/y", b"more bytes here"),
    ]));
    for cut in 0..zip.len() {
        assert!(ZipIndex::parse(&zip[..cut]).is_err(), "cut at {cut} parsed");
    }
}

#[test]
fn corrupted_data_fails_its_crc() {
    let mut zip = stored_zip(&files(&[("a/x", b"hello")]));
    let idx = ZipIndex::parse(&zip).unwrap();
    let off = idx.get("a/x").unwrap().offset;
    zip[off] ^= 1;
    let err = idx
        .get("a/x")
        .unwrap()
        .checked_bytes(&zip, "a/x")
        .unwrap_err();
    assert!(matches!(err, ZipError::Crc { .. }));
}

#[test]
fn compressed_entries_are_refused() {
    let mut zip = stored_zip(&files(&[("a/x", b"hello")]));
    // Patch the central record's method field (offset 10 within the record).
    let cd = zip.len() - 22 - (46 + 3);
    zip[cd + 10] = 8;
    assert_eq!(
        ZipIndex::parse(&zip).unwrap_err(),
        ZipError::Compressed {
            name: "a/x".into(),
            method: 8
        }
    );
}
