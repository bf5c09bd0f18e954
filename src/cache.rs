//! The content-addressed build cache: objects stored by the blake3 digest of their bytes, and
//! an action map from a build node's key to the digests of the objects it produced.
//! Invariant: an object's file holds exactly the bytes its name is the digest of, or it is
//! detected as corrupt when read and removed.
//!
//! ```text
//! <store>/                     <project>/target/etpkg-cache, or $ETPKG_CACHE_DIR
//!   lock                       shared by every build, exclusive for `etpkg clean --cache`
//!   objects/
//!     3f/                      the first two hex digits of the digest
//!       3fa9…e1                an object: the output bytes themselves
//!   actions/
//!     c0/
//!       c07d…42                one node key's entry: JSON {stage, outputs: [{name, digest, bytes}]}
//! ```
//!
//! Every write goes through `crate::fsio` (temporary file and rename), so a killed build leaves
//! either a complete file or none. Objects are immutable and named by content, so two builds
//! writing the same object at once write the same bytes and either rename wins; that is why a
//! shared lock is enough for builds, even across projects sharing one `ETPKG_CACHE_DIR`.

use crate::fsio::{self, FileLock, LockKind};
use crate::ir::Backing;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A blake3 digest: of an object's bytes, or (as a build node's key) of what entered a node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// The first twelve hex digits, for messages and DOT labels.
    pub fn short(&self) -> String {
        self.hex()[..12].to_string()
    }

    pub fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Digest(out))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).ok_or_else(|| serde::de::Error::custom("not a 64-digit hex digest"))
    }
}

/// One named output of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    pub name: String,
    pub digest: Digest,
    pub bytes: u64,
}

/// What the action map records for a node key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionEntry {
    pub stage: String,
    pub outputs: Vec<OutputRef>,
}

impl ActionEntry {
    pub fn output(&self, name: &str) -> Option<&OutputRef> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot use the build cache at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cache object {digest} at {path} is corrupt (its bytes hash to {actual}); it was removed \
         and will be rebuilt"
    )]
    Corrupt {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    #[error("cache object {digest} is missing from {path}")]
    Missing { digest: Digest, path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An open store. Holding it holds the store's shared lock.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    _lock: FileLock,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, waiting behind an `etpkg clean --cache`
    /// that is removing it.
    pub fn open(root: &Path, on_wait: impl FnOnce()) -> Result<Store, CacheError> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let lock_path = root.join("lock");
        let lock =
            FileLock::acquire(&lock_path, LockKind::Shared, on_wait).map_err(io_err(&lock_path))?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn sharded(&self, dir: &str, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join(dir).join(&hex[..2]).join(hex)
    }

    pub fn object_path(&self, d: &Digest) -> PathBuf {
        self.sharded("objects", d)
    }

    /// Whether the object exists with the expected size. Contents are checked when read.
    pub fn has_object(&self, o: &OutputRef) -> bool {
        fs::metadata(self.object_path(&o.digest)).is_ok_and(|m| m.len() == o.bytes)
    }

    /// Stores `bytes` and returns their reference. An object already present is left alone:
    /// by construction it holds the same bytes.
    pub fn put_object(&self, name: &str, bytes: &[u8]) -> Result<OutputRef, CacheError> {
        let r = OutputRef {
            name: name.to_string(),
            digest: Digest::of(bytes),
            bytes: bytes.len() as u64,
        };
        if !self.has_object(&r) {
            let path = self.object_path(&r.digest);
            fsio::write_atomic(&path, bytes).map_err(io_err(&path))?;
        }
        Ok(r)
    }

    /// Reads an object and checks its digest. A corrupt object is removed, so that the next
    /// freshness check sees it missing and its producer runs again.
    pub fn read_object(&self, d: &Digest) -> Result<Arc<Backing>, CacheError> {
        let path = self.object_path(d);
        let backing = match Backing::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CacheError::Missing {
                    digest: *d,
                    path: self.root.clone(),
                })
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let actual = Digest::of(&backing);
        if actual != *d {
            let _ = fs::remove_file(&path);
            return Err(CacheError::Corrupt {
                digest: *d,
                actual,
                path,
            });
        }
        Ok(Arc::new(backing))
    }

    /// The action entry for `key`, if one exists and parses. A damaged entry reads as absent:
    /// the node simply runs again and rewrites it.
    pub fn action(&self, key: &Digest) -> Option<ActionEntry> {
        let bytes = fs::read(self.sharded("actions", key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put_action(&self, key: &Digest, entry: &ActionEntry) -> Result<(), CacheError> {
        let path = self.sharded("actions", key);
        let json = serde_json::to_vec(entry).expect("action entries serialize");
        fsio::write_atomic(&path, &json).map_err(io_err(&path))
    }

    pub fn remove_action(&self, key: &Digest) {
        let _ = fs::remove_file(self.sharded("actions", key));
    }
}

/// Removes the whole store at `root`, waiting for running builds to release it.
pub fn remove_store(root: &Path, on_wait: impl FnOnce()) -> Result<bool, CacheError> {
    if !root.exists() {
        return Ok(false);
    }
    let lock_path = root.join("lock");
    let _lock =
        FileLock::acquire(&lock_path, LockKind::Exclusive, on_wait).map_err(io_err(&lock_path))?;
    for dir in ["objects", "actions"] {
        let p = root.join(dir);
        fsio::remove_path(&p).map_err(io_err(&p))?;
    }
    // The lock file goes last, while we still hold it; a build that was waiting on it then
    // recreates the store from scratch.
    let _ = fs::remove_file(&lock_path);
    let _ = fs::remove_dir(root);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_corruption_is_detected() {
        let root = std::env::temp_dir().join(format!("etpkg-cache-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = Store::open(&root, || {}).unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let r = store.put_object("graph", &big).unwrap();
        assert_eq!(r.digest, Digest::of(&big));
        assert!(store.has_object(&r));
        assert_eq!(&**store.read_object(&r.digest).unwrap(), &big[..]);

        let mut bad = big.clone();
        bad[5000] ^= 1;
        fs::write(store.object_path(&r.digest), &bad).unwrap();
        assert!(matches!(
            store.read_object(&r.digest),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(!store.has_object(&r));
        assert!(matches!(
            store.read_object(&r.digest),
            Err(CacheError::Missing { .. })
        ));

        let key = Digest::of(b"key");
        let entry = ActionEntry {
            stage: "import".into(),
            outputs: vec![r.clone()],
        };
        store.put_action(&key, &entry).unwrap();
        assert_eq!(store.action(&key), Some(entry));
        store.remove_action(&key);
        assert_eq!(store.action(&key), None);
        drop(store);
        assert!(remove_store(&root, || {}).unwrap());
        assert!(!root.exists());
    }

    #[test]
    fn digest_hex_round_trips() {
        let d = Digest::of(b"abc");
        assert_eq!(Digest::from_hex(&d.hex()), Some(d));
        // blake3("abc"), from the reference implementation's test vectors.
        assert_eq!(
            d.hex(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(Digest::from_hex("zz"), None);
    }
}
