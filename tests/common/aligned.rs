//! A 64-byte-aligned byte buffer for programs and arenas handed to the runtime, which refuses
//! misaligned ones. Invariant: safe code only: a vector with room to start at an aligned offset.

use etpkg::rt::exec::ALIGN;

pub struct AlignedBuf {
    v: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    /// An aligned copy of `bytes`.
    pub fn new(bytes: &[u8]) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(bytes.len());
        b.as_mut().copy_from_slice(bytes);
        b
    }

    /// `len` aligned zero bytes.
    pub fn zeroed(len: usize) -> AlignedBuf {
        let v = vec![0u8; len + ALIGN];
        let off = v.as_ptr().align_offset(ALIGN);
        AlignedBuf { v, off, len }
    }

    pub fn as_ref(&self) -> &[u8] {
        &self.v[self.off..self.off + self.len]
    }

    pub fn as_mut(&mut self) -> &mut [u8] {
        &mut self.v[self.off..self.off + self.len]
    }
}
