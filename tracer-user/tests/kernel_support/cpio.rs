//! An initramfs: a cpio archive in the kernel's "newc" format, uncompressed.

use std::io::{self, Write};

/// Writes entries one after the other; `finish` adds the trailer.
pub struct Cpio<W: Write> {
    out: W,
    inode: u32,
}

const DIR: u32 = 0o040_000;
const FILE: u32 = 0o100_000;
const CHAR_DEVICE: u32 = 0o020_000;

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Self { out, inode: 1 }
    }

    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        self.entry(path, DIR | 0o755, &[], (0, 0))
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, FILE | mode, data, (0, 0))
    }

    pub fn char_device(&mut self, path: &str, (major, minor): (u32, u32)) -> io::Result<()> {
        self.entry(path, CHAR_DEVICE | 0o600, &[], (major, minor))
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, &[], (0, 0))?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// One header (13 fields of 8 hex digits after the magic), the NUL-terminated
    /// name and the data, each padded to 4 bytes.
    fn entry(&mut self, path: &str, mode: u32, data: &[u8], (rdev_major, rdev_minor): (u32, u32)) -> io::Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| io::Error::other(format!("{path}: larger than 4 GiB")))?;
        let name_size = path.len() as u32 + 1;
        let fields = [self.inode, mode, 0, 0, 1, 0, size, 0, 0, rdev_major, rdev_minor, name_size, 0];
        self.inode += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(path.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(header.len() + name_size as usize)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }
}
