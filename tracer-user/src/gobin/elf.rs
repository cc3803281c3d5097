//! The ELF container: architecture, section table and address → file-offset mapping.
//!
//! Parsed once with the `object` crate into a small owned table so that
//! [`super::GoBinary`] can keep the memory map and hand out zero-copy views into it.

use object::{Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ObjectSegment, SectionKind};

use super::GobinError;
use super::read::{Bytes, Result};

/// Instruction set of the binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        })
    }
}

/// One section header, owned.
#[derive(Clone, Debug)]
pub(crate) struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// File range of the contents; `None` for NOBITS sections (.bss).
    pub file_offset: Option<u64>,
    /// SHF_COMPRESSED: contents are an Elf64_Chdr plus compressed data.
    pub compressed: bool,
}

/// A PT_LOAD segment: `[vaddr, vaddr+filesz)` is backed by `[offset, offset+filesz)`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

/// The facts about the ELF container that the Go readers need.
#[derive(Debug)]
pub(crate) struct ElfInfo {
    pub arch: Arch,
    pub sections: Vec<Section>,
    segments: Vec<Segment>,
    /// `.symtab` present (not built with `-ldflags=-s`).
    pub has_symtab: bool,
    /// `.debug_info` present (not built with `-ldflags=-w`).
    pub has_dwarf: bool,
    /// ET_DYN (`-buildmode=pie`): the kernel loads it at a per-process address.
    pub position_independent: bool,
    /// e_entry, the link-time entry point.
    pub entry: u64,
}

const SHF_COMPRESSED: u64 = 0x800;

impl ElfInfo {
    pub(crate) fn parse(data: &[u8]) -> Result<ElfInfo> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(GobinError::NotElf { magic: data[..data.len().min(4)].escape_ascii().to_string() });
        }
        let file = object::File::parse(data).map_err(|e| GobinError::Elf { detail: e.to_string() })?;
        if file.format() != BinaryFormat::Elf {
            return Err(GobinError::NotElf { magic: data[..4].escape_ascii().to_string() });
        }
        let arch = match (file.architecture(), file.is_64(), file.is_little_endian()) {
            (Architecture::X86_64, true, true) => Arch::Amd64,
            (Architecture::Aarch64, true, true) => Arch::Arm64,
            (other, is_64, little) => {
                let bits = if is_64 { 64 } else { 32 };
                let endian = if little { "little" } else { "big" };
                return Err(GobinError::UnsupportedArch {
                    machine: format!("{other:?} ({bits}-bit, {endian}-endian)"),
                });
            }
        };
        let mut sections = Vec::new();
        for s in file.sections() {
            let name = s.name().map_err(|e| GobinError::Elf { detail: e.to_string() })?.to_string();
            let file_offset = match s.kind() {
                SectionKind::UninitializedData | SectionKind::UninitializedTls => None,
                _ => s.file_range().map(|(off, _)| off),
            };
            let compressed = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => sh_flags & SHF_COMPRESSED != 0,
                _ => false,
            };
            sections.push(Section { name, addr: s.address(), size: s.size(), file_offset, compressed });
        }
        // Keep only sections whose contents are really inside the file.
        for s in &mut sections {
            if let Some(off) = s.file_offset
                && off.checked_add(s.size).is_none_or(|end| end > data.len() as u64)
            {
                return Err(GobinError::Elf {
                    detail: format!("section {} at offset {off:#x} size {:#x} runs past end of file", s.name, s.size),
                });
            }
        }
        let segments = file
            .segments()
            .filter_map(|seg| {
                let (offset, filesz) = seg.file_range();
                let end = offset.checked_add(filesz)?;
                (end <= data.len() as u64).then_some(Segment { vaddr: seg.address(), offset, filesz })
            })
            .collect();
        let has_symtab = sections.iter().any(|s| s.name == ".symtab");
        let has_dwarf = sections.iter().any(|s| s.name == ".debug_info" || s.name == ".zdebug_info");
        let position_independent = file.kind() == ObjectKind::Dynamic;
        Ok(ElfInfo { arch, sections, segments, has_symtab, has_dwarf, position_independent, entry: file.entry() })
    }

    pub(crate) fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// File offset backing virtual address `addr`, through sections first (exact)
    /// and then PT_LOAD segments.
    pub(crate) fn addr_to_offset(&self, addr: u64) -> Option<u64> {
        for s in &self.sections {
            if let Some(off) = s.file_offset
                && s.addr != 0
                && addr >= s.addr
                && addr - s.addr < s.size
            {
                return Some(off + (addr - s.addr));
            }
        }
        self.segments
            .iter()
            .find(|seg| addr >= seg.vaddr && addr - seg.vaddr < seg.filesz)
            .map(|seg| seg.offset + (addr - seg.vaddr))
    }

    /// `len` bytes at virtual address `addr`.
    pub(crate) fn read_addr<'a>(&self, file: &'a [u8], addr: u64, len: u64, what: &'static str) -> Result<Bytes<'a>> {
        let off = self.addr_to_offset(addr).ok_or(GobinError::Unmapped { what, addr })?;
        Bytes::new(file, 0, what).sub(off, len, what)
    }

    /// The bytes of a section (compressed sections come back as stored).
    pub(crate) fn section_bytes<'a>(&self, file: &'a [u8], s: &Section, what: &'static str) -> Result<Bytes<'a>> {
        let off = s.file_offset.ok_or(GobinError::Malformed {
            what,
            offset: 0,
            detail: format!("section {} has no file contents", s.name),
        })?;
        Bytes::new(file, 0, what).sub(off, s.size, what)
    }

    /// The executable section holding `addr`, for code reads.
    pub(crate) fn text_section(&self) -> Option<&Section> {
        self.section(".text")
    }
}

#[cfg(test)]
impl ElfInfo {
    pub(crate) fn with_section_for_tests(name: &str, addr: u64, file_offset: u64, size: u64) -> ElfInfo {
        let section = Section { name: name.to_string(), addr, size, file_offset: Some(file_offset), compressed: false };
        ElfInfo { sections: vec![section], ..ElfInfo::empty_for_tests() }
    }

    pub(crate) fn empty_for_tests() -> ElfInfo {
        ElfInfo {
            arch: Arch::Amd64,
            sections: Vec::new(),
            segments: Vec::new(),
            has_symtab: false,
            has_dwarf: false,
            position_independent: false,
            entry: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        let err = ElfInfo::parse(b"#!/bin/sh\necho hi\n").unwrap_err();
        assert!(matches!(err, GobinError::NotElf { .. }), "{err}");
        assert!(matches!(ElfInfo::parse(b"").unwrap_err(), GobinError::NotElf { .. }));
    }

    #[test]
    fn rejects_truncated_elf() {
        let err = ElfInfo::parse(b"\x7fELF\x02\x01\x01").unwrap_err();
        assert!(matches!(err, GobinError::Elf { .. }), "{err}");
    }
}
