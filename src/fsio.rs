//! Every atomic write, directory swap and file lock etpkg makes goes through this module.
//! Invariant: a reader sees a file or directory written here either complete or not at all.
//!
//! Writes go to a uniquely named temporary file in the destination's directory and are
//! renamed over the destination; rename is atomic within a file system. Files are not
//! `fsync`ed: that protects against power loss, which costs milliseconds per file, while a
//! killed process (the case the tests exercise) loses nothing that was renamed. An object that
//! a power loss does truncate fails its digest check and is rebuilt (see `crate::cache`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other writer uses at the same time: the process id and a per-process counter.
/// Temporary names start with `.` and end with `.tmp` so that `clean` and humans can spot them.
pub fn temp_path(dir: &Path, stem: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating its parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    fs::create_dir_all(dir)?;
    let tmp = temp_path(dir, &file_stem(path));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Replaces the directory `dest` with the fully written directory `staged`, atomically where
/// the platform allows: on Linux the two are exchanged with `renameat2(RENAME_EXCHANGE)`, so a
/// reader sees the old tree or the new one, never a mix or nothing. Elsewhere, or on file
/// systems without exchange, the old tree is moved aside first, which leaves a moment with no
/// `dest` but still never a partial one. `staged` is gone afterwards.
pub fn replace_dir(staged: &Path, dest: &Path) -> io::Result<()> {
    if let Some(dir) = dest.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return fs::rename(staged, dest),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    if exchange(staged, dest).is_ok() {
        // `staged` now holds the old tree.
        return remove_path(staged);
    }
    let aside = temp_path(parent(dest), &file_stem(dest));
    fs::rename(dest, &aside)?;
    if let Err(e) = fs::rename(staged, dest) {
        // Put the old tree back so that a failure leaves the previous outputs in place.
        let _ = fs::rename(&aside, dest);
        return Err(e);
    }
    remove_path(&aside)
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Removes a file or a directory tree; a missing path is not an error.
pub fn remove_path(path: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_stem(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into())
}

/// An advisory lock on a file, released when dropped (or when the process dies, which is what
/// makes a killed build harmless to the next one).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Takes the lock at `path`, creating the file if needed. When another process holds it,
    /// `on_wait` is called once (to tell the user why nothing happens) before blocking.
    pub fn acquire(path: &Path, kind: LockKind, on_wait: impl FnOnce()) -> io::Result<FileLock> {
        fs::create_dir_all(parent(path))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let got = match kind {
            LockKind::Shared => file.try_lock_shared(),
            LockKind::Exclusive => file.try_lock(),
        };
        match got {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                on_wait();
                match kind {
                    LockKind::Shared => file.lock_shared()?,
                    LockKind::Exclusive => file.lock()?,
                }
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(FileLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("etpkg-fsio-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let d = scratch("write");
        let p = d.join("sub/file.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(d.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_dir_swaps_whole_trees() {
        let d = scratch("swap");
        let dest = d.join("out");
        for (i, content) in ["first", "second"].iter().enumerate() {
            let staged = d.join(format!("staged{i}"));
            fs::create_dir_all(&staged).unwrap();
            fs::write(staged.join("a.txt"), content).unwrap();
            if i == 0 {
                fs::write(staged.join("only-in-first.txt"), "x").unwrap();
            }
            replace_dir(&staged, &dest).unwrap();
            assert!(!staged.exists());
        }
        assert_eq!(fs::read_to_string(dest.join("a.txt")).unwrap(), "second");
        assert!(!dest.join("only-in-first.txt").exists());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn exclusive_lock_excludes_within_a_process_too() {
        let d = scratch("lock");
        let p = d.join("lock");
        let a = FileLock::acquire(&p, LockKind::Exclusive, || {}).unwrap();
        // A second open file description conflicts with the first even in one process.
        let f = File::open(&p).unwrap();
        assert!(matches!(f.try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(a);
        assert!(f.try_lock().is_ok());
        fs::remove_dir_all(&d).unwrap();
    }
}
