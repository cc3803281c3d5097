//! The Go version and module list of a binary without `.go.buildinfo`, from the
//! runtime's own string variables `runtime.buildVersion` and `runtime.modinfo`.
//!
//! The linker sets both as Go strings (Go `src/cmd/link/internal/ld/main.go` and
//! `ld.go`, `addstrdata1`; checked on 1.19 and 1.21–1.27): a header `{ptr, len}`
//! in `.data` pointing at the text in `.rodata` (symbols `runtime.buildVersion` and
//! `runtime.buildVersion.str`). `runtime.schedinit` reads `buildVersion` to keep it
//! linked (`src/runtime/proc.go`: `if buildVersion == ""`), so it is in every
//! binary. The module info text is framed by the 16-byte sentinels of
//! `cmd/go/internal/modload` (`infoStart`, `infoEnd`) wherever it is stored.
//! Some distributors remove `.go.buildinfo` (and with it `go version`'s answer);
//! these variables survive that, stripped or not.

use object::{Object, ObjectSymbol};

use super::GoVersion;
use super::elf::ElfInfo;
use super::read::Bytes;

/// `infoStart` of `cmd/go/internal/modload/build.go` (hex 3077af0c9274080241e1c107e6d618e6).
const INFO_START: &[u8; 16] = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
/// `infoEnd` (hex f932433186182072008242104116d8f2).
const INFO_END: &[u8; 16] = b"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";
/// Longest version string accepted (`go1.26.6 X:nodwarf5,...` stays well under it).
const MAX_VERSION_LEN: u64 = 128;
/// Sections that hold string headers of statically initialised variables.
const HEADER_SECTIONS: [&str; 3] = [".data", ".noptrdata", ".data.rel.ro"];
/// Sections that hold string data.
const TEXT_SECTIONS: [&str; 2] = [".rodata", ".data.rel.ro"];

/// Where a binary's Go version was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSource {
    /// The `.go.buildinfo` section (what `go version` reads).
    BuildInfo,
    /// `runtime.buildVersion`, located through the ELF symbol table.
    Symbol,
    /// `runtime.buildVersion`, located by its string header in the data sections.
    StringHeader,
    /// Only the pclntab magic, `.go.module` and moduledata's layout: the first
    /// release of the family, not the release.
    Pclntab,
}

impl VersionSource {
    /// Whether the source names the exact release (every source but the pclntab).
    pub fn exact(self) -> bool {
        self != VersionSource::Pclntab
    }
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VersionSource::BuildInfo => ".go.buildinfo",
            VersionSource::Symbol => "runtime.buildVersion via the symbol table (no .go.buildinfo)",
            VersionSource::StringHeader => {
                "runtime.buildVersion via its string header (no .go.buildinfo, no symbols)"
            }
            VersionSource::Pclntab => "pclntab magic only: release family, exact release unknown",
        })
    }
}

/// `runtime.buildVersion` of the binary, with where it was found. `referenced`
/// says whether code of `runtime.schedinit` addresses a header (None when that
/// cannot be checked); `family` is the inclusive release range the pclntab allows.
pub(crate) fn build_version(
    file: &[u8],
    elf: &ElfInfo,
    referenced: Option<&dyn Fn(u64) -> bool>,
    family: (GoVersion, GoVersion),
) -> Option<(String, VersionSource)> {
    let fits = |v: &str| GoVersion::parse(v).is_some_and(|v| v >= family.0 && v <= family.1);
    if elf.has_symtab
        && let Some(v) = by_symbol(file, elf).filter(|v| fits(v))
    {
        return Some((v, VersionSource::Symbol));
    }
    let mut found: Vec<(u64, String)> = headers(file, elf)
        .into_iter()
        .filter(|(_, v)| fits(v))
        .collect();
    // A program's own `var v = "go1.x"` looks the same: keep the header the
    // runtime reads, when the code can tell; else accept only one distinct text.
    if let Some(is_ref) = referenced {
        let read: Vec<_> = found
            .iter()
            .filter(|(a, _)| is_ref(*a) || is_ref(a + 8))
            .cloned()
            .collect();
        if !read.is_empty() {
            found = read;
        }
    }
    let first = found.first()?;
    found
        .iter()
        .all(|(_, v)| *v == first.1)
        .then(|| (first.1.clone(), VersionSource::StringHeader))
}

/// The module info text (between the sentinels) of `runtime.modinfo`.
pub(crate) fn modinfo<'a>(file: &'a [u8], elf: &ElfInfo) -> Option<&'a [u8]> {
    for name in TEXT_SECTIONS {
        let Some(s) = elf.section(name) else { continue };
        let Ok(bytes) = elf.section_bytes(file, s, "module info") else {
            continue;
        };
        let data = bytes.data();
        let Some(start) = find(data, INFO_START) else {
            continue;
        };
        let body = &data[start + INFO_START.len()..];
        if let Some(end) = find(body, INFO_END) {
            return Some(&body[..end]);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn by_symbol(file: &[u8], elf: &ElfInfo) -> Option<String> {
    let obj = object::File::parse(file).ok()?;
    let sym = obj
        .symbols()
        .find(|s| s.name() == Ok("runtime.buildVersion"))?;
    let hdr = elf
        .read_addr(file, sym.address(), 16, "runtime.buildVersion")
        .ok()?;
    version_text(file, elf, hdr.u64(0).ok()?, hdr.u64(8).ok()?)
}

/// Every `{ptr, len}` pair in the data sections whose text reads as a Go version,
/// with the header's address.
fn headers(file: &[u8], elf: &ElfInfo) -> Vec<(u64, String)> {
    let text: Vec<(u64, u64)> = TEXT_SECTIONS
        .iter()
        .filter_map(|n| elf.section(n))
        .filter(|s| s.file_offset.is_some())
        .map(|s| (s.addr, s.addr.saturating_add(s.size)))
        .collect();
    let mut out = Vec::new();
    for name in HEADER_SECTIONS {
        let Some(s) = elf.section(name) else { continue };
        let Ok(bytes) = elf.section_bytes(file, s, "string header") else {
            continue;
        };
        let data = bytes.data();
        for off in (0..data.len().saturating_sub(15)).step_by(8) {
            let word = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes"));
            let (ptr, len) = (word(off), word(off + 8));
            if !(5..=MAX_VERSION_LEN).contains(&len)
                || !text.iter().any(|&(lo, hi)| ptr >= lo && ptr < hi)
            {
                continue;
            }
            if let Some(v) = version_text(file, elf, ptr, len) {
                out.push((s.addr + off as u64, v));
            }
        }
    }
    out
}

/// The text at `ptr` if it is a Go version string (`go1.N…` or `devel go1.N…`).
fn version_text(file: &[u8], elf: &ElfInfo, ptr: u64, len: u64) -> Option<String> {
    if len > MAX_VERSION_LEN {
        return None;
    }
    let b: Bytes<'_> = elf.read_addr(file, ptr, len, "version string").ok()?;
    let s = std::str::from_utf8(b.data()).ok()?;
    let printable = s.bytes().all(|c| c.is_ascii_graphic() || c == b' ');
    let shaped = s.starts_with("go1.") || s.starts_with("devel go1.");
    (printable && shaped && GoVersion::parse(s).is_some()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x40_0000;

    /// A file whose `.rodata` and `.data` are the same bytes at BASE (enough for
    /// the readers, which look sections up by name).
    fn elf_with(sections: &[&str], size: u64) -> ElfInfo {
        let mut elf = ElfInfo::with_section_for_tests(sections[0], BASE, 0, size);
        for name in &sections[1..] {
            elf.sections.push(elf.sections[0].clone());
            elf.sections.last_mut().unwrap().name = name.to_string();
        }
        elf
    }

    fn header(file: &mut [u8], at: usize, ptr: u64, len: u64) {
        file[at..at + 8].copy_from_slice(&ptr.to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&len.to_le_bytes());
    }

    const ANY: (GoVersion, GoVersion) = (GoVersion::new(1, 16, 0), GoVersion::new(1, u32::MAX, 0));

    #[test]
    fn finds_the_header_and_refuses_ambiguity() {
        let mut file = vec![0u8; 0x200];
        file[0x100..0x108].copy_from_slice(b"go1.26.6");
        file[0x110..0x116].copy_from_slice(b"go1.21");
        header(&mut file, 0x40, BASE + 0x100, 8);
        let elf = elf_with(&[".rodata", ".data"], 0x200);
        assert_eq!(
            build_version(&file, &elf, None, ANY),
            Some(("go1.26.6".into(), VersionSource::StringHeader))
        );
        // Out of the pclntab's family: not taken.
        let old = (GoVersion::new(1, 18, 0), GoVersion::new(1, 19, u32::MAX));
        assert_eq!(build_version(&file, &elf, None, old), None);
        // A second, different version string: ambiguous unless the runtime's code
        // says which header it reads.
        header(&mut file, 0x80, BASE + 0x110, 6);
        assert_eq!(build_version(&file, &elf, None, ANY), None);
        let is_ref = |a: u64| a == BASE + 0x48;
        assert_eq!(
            build_version(&file, &elf, Some(&is_ref), ANY).map(|v| v.0),
            Some("go1.26.6".into())
        );
        // Length past the text, or not a version: nothing.
        header(&mut file, 0x80, 0, 0);
        header(&mut file, 0x40, BASE + 0x100, 0x1000);
        assert_eq!(build_version(&file, &elf, None, ANY), None);
    }

    #[test]
    fn finds_modinfo_between_sentinels() {
        let mut file = vec![0u8; 0x100];
        let text = b"path\tx\nmod\tx\t(devel)\t\n";
        file[0x10..0x20].copy_from_slice(INFO_START);
        file[0x20..0x20 + text.len()].copy_from_slice(text);
        file[0x20 + text.len()..0x30 + text.len()].copy_from_slice(INFO_END);
        let elf = elf_with(&[".rodata"], 0x100);
        assert_eq!(modinfo(&file, &elf), Some(&text[..]));
        file[0x20 + text.len()] = 0;
        assert_eq!(modinfo(&file, &elf), None);
    }
}
