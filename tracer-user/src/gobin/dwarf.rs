//! DWARF of unstripped binaries: section loading (Go compresses its DWARF) and the
//! runtime struct offsets read from it.
//!
//! Go's linker compresses `.debug_*` sections with zlib: `SHF_COMPRESSED` with an
//! `Elf64_Chdr` header (type 1 = zlib) since Go 1.12 on Linux, `.zdebug_*` with a
//! `"ZLIB"` + big-endian size header before (Go `src/cmd/link/internal/ld/dwarf.go`
//! `compressSyms`; seen SHF_COMPRESSED on 1.19 and 1.21–1.27).

use std::borrow::Cow;

use gimli::{DwarfSections, EndianSlice, LittleEndian, SectionId};

use super::GobinError;
use super::elf::ElfInfo;
use super::read::{Bytes, Result};

/// Largest decompressed section accepted (the Go compiler's `.debug_info` is ~30 MB).
const MAX_SECTION: u64 = 1 << 30;
const ELFCOMPRESS_ZLIB: u32 = 1;

/// Loaded DWARF sections; borrowed from the file or inflated.
pub struct DwarfData<'a> {
    sections: DwarfSections<Cow<'a, [u8]>>,
}

/// A gimli reader over loaded sections.
pub type DwarfReader<'a> = EndianSlice<'a, LittleEndian>;

impl<'a> DwarfData<'a> {
    /// The sections as a `gimli::Dwarf`.
    pub fn dwarf(&self) -> gimli::Dwarf<DwarfReader<'_>> {
        self.sections.borrow(|s| EndianSlice::new(s, LittleEndian))
    }
}

/// Loads DWARF, or None when the binary has none.
pub(crate) fn load<'a>(file: &'a [u8], elf: &ElfInfo) -> Result<Option<DwarfData<'a>>> {
    if !elf.has_dwarf {
        return Ok(None);
    }
    let sections = DwarfSections::load(|id: SectionId| section(file, elf, id.name()))?;
    Ok(Some(DwarfData { sections }))
}

fn section<'a>(file: &'a [u8], elf: &ElfInfo, name: &str) -> Result<Cow<'a, [u8]>> {
    if let Some(s) = elf.section(name) {
        let bytes = elf.section_bytes(file, s, "DWARF section")?;
        return if s.compressed { inflate_chdr(bytes) } else { Ok(Cow::Borrowed(bytes.data())) };
    }
    let zname = format!(".z{}", name.trim_start_matches('.'));
    if let Some(s) = elf.section(&zname) {
        return inflate_zdebug(elf.section_bytes(file, s, "DWARF section")?);
    }
    Ok(Cow::Borrowed(&[]))
}

/// `Elf64_Chdr { ch_type u32, ch_reserved u32, ch_size u64, ch_addralign u64 }` + data.
fn inflate_chdr(b: Bytes<'_>) -> Result<Cow<'static, [u8]>> {
    let kind = b.u32(0)?;
    if kind != ELFCOMPRESS_ZLIB {
        return Err(b.malformed(0, format!("compression type {kind} (only zlib is supported)")));
    }
    inflate(b, 24, b.u64(8)?)
}

/// `"ZLIB"` + big-endian u64 size + data.
fn inflate_zdebug(b: Bytes<'_>) -> Result<Cow<'static, [u8]>> {
    if b.bytes(0, 4)? != b"ZLIB" {
        return Err(b.malformed(0, "missing ZLIB header"));
    }
    inflate(b, 12, u64::from_be_bytes(b.bytes(4, 8)?.try_into().expect("8 bytes")))
}

fn inflate(b: Bytes<'_>, header: u64, size: u64) -> Result<Cow<'static, [u8]>> {
    if size > MAX_SECTION {
        return Err(b.malformed(0, format!("decompressed size {size} is implausible")));
    }
    let data = b.tail(header, "compressed DWARF")?.data();
    let out = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(data, size as usize)
        .map_err(|e| b.malformed(header, format!("zlib: {:?}", e.status)))?;
    Ok(Cow::Owned(out))
}

impl From<gimli::Error> for GobinError {
    fn from(e: gimli::Error) -> GobinError {
        GobinError::Dwarf { detail: e.to_string() }
    }
}

/// Member offsets of `runtime.g` (goid, m) and `runtime.m` (procid) from DWARF.
pub(crate) fn runtime_offsets(data: &DwarfData<'_>) -> Result<Option<(u64, u64, u64)>> {
    let dwarf = data.dwarf();
    let (mut goid, mut m, mut procid) = (None, None, None);
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let mut cursor = unit.entries();
        let mut depth = 0isize;
        // (struct name, depth of the struct DIE) while inside runtime.g / runtime.m.
        let mut inside: Option<(&str, isize)> = None;
        while let Some((delta, entry)) = cursor.next_dfs()? {
            depth += delta;
            if inside.is_some_and(|(_, d)| depth <= d) {
                inside = None;
            }
            let name = match entry.attr_value(gimli::DW_AT_name)? {
                Some(v) => dwarf.attr_string(&unit, v)?,
                None => continue,
            };
            match entry.tag() {
                gimli::DW_TAG_structure_type => {
                    inside = match name.slice() {
                        b"runtime.g" => Some(("g", depth)),
                        b"runtime.m" => Some(("m", depth)),
                        _ => None,
                    };
                }
                gimli::DW_TAG_member if inside.is_some_and(|(_, d)| depth == d + 1) => {
                    let Some(off) = entry.attr_value(gimli::DW_AT_data_member_location)?.and_then(|v| v.udata_value())
                    else {
                        continue;
                    };
                    match (inside.map(|(s, _)| s), name.slice()) {
                        (Some("g"), b"goid") => goid = Some(off),
                        (Some("g"), b"m") => m = Some(off),
                        (Some("m"), b"procid") => procid = Some(off),
                        _ => {}
                    }
                }
                _ => {}
            }
            if let (Some(g), Some(mm), Some(p)) = (goid, m, procid) {
                return Ok(Some((g, mm, p)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflates_both_headers() {
        let payload = b"hello dwarf hello dwarf";
        let z = miniz_oxide::deflate::compress_to_vec_zlib(payload, 6);
        let mut chdr = vec![0u8; 24];
        chdr[0] = 1;
        chdr[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        chdr.extend_from_slice(&z);
        assert_eq!(&*inflate_chdr(Bytes::new(&chdr, 0, "t")).unwrap(), payload);
        let mut zd = b"ZLIB".to_vec();
        zd.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        zd.extend_from_slice(&z);
        assert_eq!(&*inflate_zdebug(Bytes::new(&zd, 0, "t")).unwrap(), payload);
    }

    #[test]
    fn rejects_bombs_and_garbage() {
        let mut chdr = vec![0u8; 24];
        chdr[0] = 1;
        chdr[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(inflate_chdr(Bytes::new(&chdr, 0, "t")).is_err());
        // Claimed size smaller than the real output: the limit stops inflation.
        let z = miniz_oxide::deflate::compress_to_vec_zlib(&[0u8; 4096], 6);
        let mut small = vec![0u8; 24];
        small[0] = 1;
        small[8..16].copy_from_slice(&16u64.to_le_bytes());
        small.extend_from_slice(&z);
        assert!(inflate_chdr(Bytes::new(&small, 0, "t")).is_err());
        chdr[0] = 2;
        assert!(inflate_chdr(Bytes::new(&chdr, 0, "t")).is_err());
    }
}
