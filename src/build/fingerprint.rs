//! Content digests of source files, remembered by their file-system metadata so that a no-op
//! build need not read a 15 MB model to learn it has not changed.
//! Invariant: a remembered digest is used only while the file's size, modification time,
//! change time and inode are all as they were when it was hashed.
//!
//! Like git's index, a file modified within the file system's timestamp granularity of being
//! hashed could change again without its metadata showing it ("racy" entries). Entries whose
//! modification time is less than `RACY` before the moment they were hashed are therefore not
//! remembered; they are hashed again on the next build.

use crate::cache::Digest;
use crate::fsio;
use crate::ir::Backing;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RACY: Duration = Duration::from_secs(1);
const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat {
            len: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    digest: Digest,
}

#[derive(Default, Serialize, Deserialize)]
struct Table {
    format: u32,
    files: BTreeMap<PathBuf, Entry>,
}

/// The remembered digests of one project, kept in `target/etpkg/.fingerprints.json`.
pub struct Fingerprints {
    path: PathBuf,
    table: Table,
    dirty: bool,
}

impl Fingerprints {
    /// Loads the table; a missing or unreadable one starts empty (everything is hashed again).
    pub fn load(path: &Path) -> Fingerprints {
        let table = fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Table>(&b).ok())
            .filter(|t| t.format == FORMAT)
            .unwrap_or(Table {
                format: FORMAT,
                files: BTreeMap::new(),
            });
        Fingerprints {
            path: path.to_path_buf(),
            table,
            dirty: false,
        }
    }

    /// The blake3 digest of the file's bytes.
    pub fn digest(&mut self, file: &Path) -> io::Result<Digest> {
        let meta = fs::metadata(file)?;
        let stat = Stat::of(&meta);
        if let Some(e) = self.table.files.get(file) {
            if e.stat == stat {
                return Ok(e.digest);
            }
        }
        let digest = Digest::of(&Backing::read(file)?);
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        if now_ns - stat.mtime_ns.max(stat.ctime_ns) >= RACY.as_nanos() as i128 {
            self.table
                .files
                .insert(file.to_path_buf(), Entry { stat, digest });
            self.dirty = true;
        } else if self.table.files.remove(file).is_some() {
            self.dirty = true;
        }
        Ok(digest)
    }

    /// Writes the table back if anything changed. Losing it only costs re-hashing.
    pub fn save(&mut self) -> io::Result<()> {
        if self.dirty {
            let json = serde_json::to_vec(&self.table).expect("fingerprints serialize");
            fsio::write_atomic(&self.path, &json)?;
            self.dirty = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_old_files_and_notices_changes() {
        let d = std::env::temp_dir().join(format!("etpkg-fp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let f = d.join("m.bin");
        fs::write(&f, b"hello").unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let table = d.join("fp.json");
        let mut fp = Fingerprints::load(&table);
        assert_eq!(fp.digest(&f).unwrap(), Digest::of(b"hello"));
        // ctime was just bumped by set_modified, so the entry is racy and not remembered yet.
        fp.save().unwrap();
        fs::write(&f, b"world").unwrap();
        let mut fp = Fingerprints::load(&table);
        assert_eq!(fp.digest(&f).unwrap(), Digest::of(b"world"));
        fs::remove_dir_all(&d).unwrap();
    }
}
