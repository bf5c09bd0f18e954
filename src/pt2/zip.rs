//! A read-only view of a zip container over borrowed bytes. Invariant: every entry's data range
//! has been bounds-checked against the buffer, so slicing with it never panics.
//!
//! `torch.export.save` writes every record uncompressed ("stored") and 64-byte aligned, so a
//! record's bytes can be used in place from a memory map. Compressed records are refused with an
//! error rather than inflated: an archive that has been re-zipped with compression is not one
//! PyTorch wrote, and copying weights would defeat the zero-copy import.

use std::collections::HashMap;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum ZipError {
    #[error("not a zip archive (no end-of-central-directory record); the file may be truncated")]
    NoEndRecord,
    #[error("the zip central directory is cut short or points outside the file (truncated?)")]
    Truncated,
    #[error("zip entry `{0}`: bad local header signature (the archive is corrupted)")]
    BadLocalHeader(String),
    #[error("zip entry `{name}` is compressed (method {method}); etpkg reads archives as `torch.export.save` writes them, uncompressed")]
    Compressed { name: String, method: u16 },
    #[error("zip entry `{0}` is encrypted")]
    Encrypted(String),
    #[error("zip entry `{0}` appears twice")]
    Duplicate(String),
    #[error("multi-disk zip archives are not supported")]
    MultiDisk,
    #[error("zip entry `{name}`: CRC-32 mismatch (stored {stored:08x}, computed {computed:08x}); the archive is corrupted")]
    Crc {
        name: String,
        stored: u32,
        computed: u32,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Offset of the entry's data in the archive.
    pub offset: usize,
    pub len: usize,
    pub crc32: u32,
}

#[derive(Debug)]
pub struct ZipIndex {
    entries: HashMap<String, Entry>,
    /// Entry names in central-directory order, for deterministic listings and diagnostics.
    names: Vec<String>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

/// Little-endian reads that fail instead of panicking past the end.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(buf: &'a [u8], pos: usize) -> Self {
        Cursor { buf, pos }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ZipError> {
        let end = self.pos.checked_add(n).ok_or(ZipError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ZipError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, ZipError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, ZipError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, ZipError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}

fn to_usize(v: u64) -> Result<usize, ZipError> {
    usize::try_from(v).map_err(|_| ZipError::Truncated)
}

impl ZipIndex {
    /// Indexes the central directory of `buf`.
    pub fn parse(buf: &[u8]) -> Result<ZipIndex, ZipError> {
        let eocd = find_eocd(buf)?;
        let mut c = Cursor::at(buf, eocd + 4);
        let disk = c.u16()?;
        let cd_disk = c.u16()?;
        let _entries_here = c.u16()?;
        let mut count = c.u16()? as u64;
        let mut cd_size = c.u32()? as u64;
        let mut cd_offset = c.u32()? as u64;
        if disk != 0 || cd_disk != 0 {
            return Err(ZipError::MultiDisk);
        }
        // A zip64 archive marks the 32-bit fields as saturated and keeps the real values in a
        // zip64 end record, found through the locator that sits just before the classic one.
        if eocd >= 20 && read_u32(buf, eocd - 20) == Some(EOCD64_LOCATOR_SIG) {
            let mut l = Cursor::at(buf, eocd - 12);
            let rec = to_usize(l.u64()?)?;
            let mut r = Cursor::at(buf, rec);
            if r.u32()? != EOCD64_SIG {
                return Err(ZipError::Truncated);
            }
            let _size = r.u64()?;
            let _made_by = r.u16()?;
            let _needed = r.u16()?;
            if r.u32()? != 0 || r.u32()? != 0 {
                return Err(ZipError::MultiDisk);
            }
            let _here = r.u64()?;
            count = r.u64()?;
            cd_size = r.u64()?;
            cd_offset = r.u64()?;
        }
        let cd_start = to_usize(cd_offset)?;
        let cd_end = cd_start
            .checked_add(to_usize(cd_size)?)
            .ok_or(ZipError::Truncated)?;
        if cd_end > buf.len() {
            return Err(ZipError::Truncated);
        }
        // Each central record is at least 46 bytes, which bounds how many entries a
        // well-formed directory of this size can hold; a larger count is a lie.
        if count > (cd_size / 46) {
            return Err(ZipError::Truncated);
        }
        let cd = &buf[..cd_end];
        let mut c = Cursor::at(cd, cd_start);
        let mut entries = HashMap::with_capacity(count as usize);
        let mut names = Vec::with_capacity(count as usize);
        for _ in 0..count {
            if c.u32()? != CENTRAL_SIG {
                return Err(ZipError::Truncated);
            }
            let _made_by = c.u16()?;
            let _needed = c.u16()?;
            let flags = c.u16()?;
            let method = c.u16()?;
            let _time = c.u16()?;
            let _date = c.u16()?;
            let crc32 = c.u32()?;
            let mut comp = c.u32()? as u64;
            let mut size = c.u32()? as u64;
            let name_len = c.u16()? as usize;
            let extra_len = c.u16()? as usize;
            let comment_len = c.u16()? as usize;
            let _disk_start = c.u16()?;
            let _int_attr = c.u16()?;
            let _ext_attr = c.u32()?;
            let mut local = c.u32()? as u64;
            let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
            let extra = c.take(extra_len)?;
            c.take(comment_len)?;
            apply_zip64_extra(extra, &mut size, &mut comp, &mut local)?;
            if flags & 1 != 0 {
                return Err(ZipError::Encrypted(name));
            }
            if method != 0 {
                return Err(ZipError::Compressed { name, method });
            }
            if comp != size {
                return Err(ZipError::Truncated);
            }
            let offset = local_data_offset(buf, to_usize(local)?, &name)?;
            let len = to_usize(size)?;
            match offset.checked_add(len) {
                Some(end) if end <= buf.len() => {}
                _ => return Err(ZipError::Truncated),
            }
            if entries
                .insert(name.clone(), Entry { offset, len, crc32 })
                .is_some()
            {
                return Err(ZipError::Duplicate(name));
            }
            names.push(name);
        }
        Ok(ZipIndex { entries, names })
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Entry {
    pub fn bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.offset..self.offset + self.len]
    }

    /// The entry's bytes after checking its CRC-32. Used for metadata records, which are small;
    /// weights are not checked on import because that would read every byte of them.
    pub fn checked_bytes<'a>(&self, buf: &'a [u8], name: &str) -> Result<&'a [u8], ZipError> {
        let bytes = self.bytes(buf);
        let computed = crc32(bytes);
        if computed != self.crc32 {
            return Err(ZipError::Crc {
                name: name.to_string(),
                stored: self.crc32,
                computed,
            });
        }
        Ok(bytes)
    }
}

fn read_u32(buf: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        buf.get(pos..pos.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn find_eocd(buf: &[u8]) -> Result<usize, ZipError> {
    if buf.len() < 22 {
        return Err(ZipError::NoEndRecord);
    }
    // The end record is 22 bytes plus a comment of at most 65535 bytes.
    let lowest = buf.len().saturating_sub(22 + 0xFFFF);
    (lowest..=buf.len() - 22)
        .rev()
        .find(|&p| read_u32(buf, p) == Some(EOCD_SIG))
        .ok_or(ZipError::NoEndRecord)
}

fn apply_zip64_extra(
    mut extra: &[u8],
    size: &mut u64,
    comp: &mut u64,
    local: &mut u64,
) -> Result<(), ZipError> {
    while extra.len() >= 4 {
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = u16::from_le_bytes([extra[2], extra[3]]) as usize;
        let body = extra.get(4..4 + len).ok_or(ZipError::Truncated)?;
        if id == 0x0001 {
            // The zip64 field lists only the values whose 32-bit slots are saturated, in order.
            let mut c = Cursor::at(body, 0);
            for field in [size, comp, local] {
                if *field == 0xFFFF_FFFF {
                    *field = c.u64()?;
                }
            }
            return Ok(());
        }
        extra = &extra[4 + len..];
    }
    Ok(())
}

fn local_data_offset(buf: &[u8], local: usize, name: &str) -> Result<usize, ZipError> {
    let mut c = Cursor::at(buf, local);
    if c.u32()? != LOCAL_SIG {
        return Err(ZipError::BadLocalHeader(name.to_string()));
    }
    c.take(22)?;
    let name_len = c.u16()? as usize;
    let extra_len = c.u16()? as usize;
    c.take(name_len)?;
    c.take(extra_len)?;
    Ok(c.pos)
}

/// CRC-32 (IEEE 802.3, reflected), as zip uses.
pub fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in bytes {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32 check value for "123456789" is defined by the standard.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
