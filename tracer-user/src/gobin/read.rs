//! Bounds-checked little-endian reads over a borrowed byte range.
//!
//! Every Go runtime table ghostrace reads is little-endian on the architectures it
//! supports (amd64, arm64). A [`Bytes`] remembers the file offset of its first
//! byte so that errors name the absolute offset that was bad.

use super::GobinError;

/// A borrowed byte range plus the file offset of its first byte and what it holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bytes<'a> {
    data: &'a [u8],
    file_offset: u64,
    what: &'static str,
}

pub(crate) type Result<T> = std::result::Result<T, GobinError>;

impl<'a> Bytes<'a> {
    pub(crate) fn new(data: &'a [u8], file_offset: u64, what: &'static str) -> Self {
        Bytes { data, file_offset, what }
    }

    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub(crate) fn data(&self) -> &'a [u8] {
        self.data
    }

    pub(crate) fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Absolute file offset of `off` (for error messages).
    pub(crate) fn at(&self, off: u64) -> u64 {
        self.file_offset.saturating_add(off)
    }

    fn truncated(&self, off: u64, len: u64) -> GobinError {
        GobinError::Truncated { what: self.what, offset: self.at(off), len, available: self.len().saturating_sub(off) }
    }

    pub(crate) fn malformed(&self, off: u64, detail: impl Into<String>) -> GobinError {
        GobinError::Malformed { what: self.what, offset: self.at(off), detail: detail.into() }
    }

    /// The sub-range `[off, off+len)`, relabelled.
    pub(crate) fn sub(&self, off: u64, len: u64, what: &'static str) -> Result<Bytes<'a>> {
        let end = off.checked_add(len).ok_or_else(|| self.truncated(off, len))?;
        if end > self.len() {
            return Err(self.truncated(off, len));
        }
        Ok(Bytes { data: &self.data[off as usize..end as usize], file_offset: self.at(off), what })
    }

    /// The range from `off` to the end, relabelled.
    pub(crate) fn tail(&self, off: u64, what: &'static str) -> Result<Bytes<'a>> {
        if off > self.len() {
            return Err(self.truncated(off, 0));
        }
        self.sub(off, self.len() - off, what)
    }

    pub(crate) fn bytes(&self, off: u64, len: u64) -> Result<&'a [u8]> {
        Ok(self.sub(off, len, self.what)?.data)
    }

    fn array<const N: usize>(&self, off: u64) -> Result<[u8; N]> {
        let b = self.bytes(off, N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&self, off: u64) -> Result<u8> {
        Ok(self.array::<1>(off)?[0])
    }

    pub(crate) fn u32(&self, off: u64) -> Result<u32> {
        self.array(off).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&self, off: u64) -> Result<u64> {
        self.array(off).map(u64::from_le_bytes)
    }

    /// A target-pointer-sized word (4 or 8 bytes).
    pub(crate) fn uptr(&self, off: u64, ptr_size: u8) -> Result<u64> {
        match ptr_size {
            4 => self.u32(off).map(u64::from),
            8 => self.u64(off),
            n => Err(self.malformed(off, format!("pointer size {n}"))),
        }
    }

    /// Unsigned LEB128 varint as Go's `encoding/binary.Uvarint` writes it; returns
    /// the value and the offset just past it.
    pub(crate) fn uvarint(&self, off: u64) -> Result<(u64, u64)> {
        let mut value = 0u64;
        let mut shift = 0u32;
        let mut pos = off;
        loop {
            let b = self.u8(pos)?;
            pos += 1;
            if shift == 63 && b > 1 {
                return Err(self.malformed(off, "varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((value, pos));
            }
            shift += 7;
            if shift > 63 {
                return Err(self.malformed(off, "varint longer than 10 bytes"));
            }
        }
    }

    /// NUL-terminated UTF-8 string starting at `off`.
    pub(crate) fn cstr(&self, off: u64) -> Result<&'a str> {
        let rest = self.bytes(off, self.len().saturating_sub(off))?;
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| self.malformed(off, "unterminated string"))?;
        std::str::from_utf8(&rest[..end]).map_err(|_| self.malformed(off, "string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let b = Bytes::new(&[1, 2, 3, 4, 5], 100, "test");
        assert_eq!(b.u32(0).unwrap(), 0x0403_0201);
        assert_eq!(b.u8(4).unwrap(), 5);
        let err = b.u32(2).unwrap_err().to_string();
        assert!(err.contains("0x66"), "{err}");
        assert!(b.u64(u64::MAX - 2).is_err());
        assert!(b.sub(2, u64::MAX, "t").is_err());
    }

    #[test]
    fn uvarint_matches_go() {
        let b = Bytes::new(&[0xac, 0x02, 0x7f], 0, "test");
        assert_eq!(b.uvarint(0).unwrap(), (300, 2));
        assert_eq!(b.uvarint(2).unwrap(), (127, 3));
        let long = [0xffu8; 11];
        assert!(Bytes::new(&long, 0, "test").uvarint(0).is_err());
        assert!(Bytes::new(&[0x80], 0, "test").uvarint(0).is_err());
    }

    #[test]
    fn cstr_needs_terminator() {
        let b = Bytes::new(b"main.f\0x", 0, "test");
        assert_eq!(b.cstr(0).unwrap(), "main.f");
        assert!(b.cstr(7).is_err());
    }
}
