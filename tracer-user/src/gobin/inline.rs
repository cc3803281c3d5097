//! `runtime.moduledata` (located in the file) and the inline tree it leads to.
//!
//! moduledata (Go `src/runtime/symtab.go`, checked on 1.19 and 1.21–1.27) starts
//! with `pcHeader *pcHeader`, then six slices (`funcnametab`, `cutab`, `filetab`,
//! `pctab`, `pclntable`, `ftab`; three words each), `findfunctab`, `minpc`,
//! `maxpc`, `text`, `etext`, … `gofunc`. In word units:
//! `text` is word 22 in every version; `gofunc` is word 38 in 1.18–1.19 (offset
//! 304), 40 in 1.20–1.26 (`covctrs, ecovctrs` added; 320) and 43 from 1.27
//! (`typedesclen`, `itaboffset`, `itabsize` added; 344). It lives in `.noptrdata`
//! up to 1.25 and in its own `.go.module` section from 1.26.
//!
//! Inline tree entries (`inlinedCall`): 20 bytes in 1.16–1.19 (`parent i16, funcID
//! u8, _ u8, file i32, line i32, func_ i32, parentPc i32`) and 16 bytes from 1.20
//! (`funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32`). `parentPc` is an
//! offset from the outer function's entry of an instruction whose position is the
//! call site; the inline index at that pc names the caller's own tree entry.

use super::GoVersion;
use super::elf::ElfInfo;
use super::pclntab::{FUNCDATA_INL_TREE, FuncData, FuncDataRef, PclnVersion, Pclntab};
use super::read::{Bytes, Result};

/// The moduledata words ghostrace needs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ModuleData {
    /// Virtual address of the moduledata record.
    pub addr: u64,
    pub text: u64,
    pub etext: u64,
    /// Base of the funcdata offsets (`go:func.*`); 0 before 1.18.
    pub gofunc: u64,
}

const WORD_TEXT: u64 = 22;

fn gofunc_word(v: GoVersion) -> Option<u64> {
    if v.at_least(1, 27) {
        Some(43)
    } else if v.at_least(1, 20) {
        Some(40)
    } else if v.at_least(1, 18) {
        Some(38)
    } else {
        None
    }
}

impl ModuleData {
    /// Finds moduledata by its first words: `pcHeader` = the pclntab address and the
    /// `funcnametab`/`ftab` slices pointing inside the table.
    pub(crate) fn locate(
        file: &[u8],
        elf: &ElfInfo,
        version: GoVersion,
        pcln_addr: u64,
        pcln_size: u64,
    ) -> Option<ModuleData> {
        let candidates = [".go.module", ".noptrdata", ".data", ".data.rel.ro"];
        for name in candidates {
            let Some(section) = elf.section(name) else { continue };
            let Ok(bytes) = elf.section_bytes(file, section, "moduledata") else { continue };
            if let Some(md) = scan(bytes, section.addr, version, pcln_addr, pcln_size) {
                return Some(md);
            }
        }
        None
    }
}

fn scan(bytes: Bytes<'_>, base: u64, version: GoVersion, pcln_addr: u64, pcln_size: u64) -> Option<ModuleData> {
    let data = bytes.data();
    let needle = pcln_addr.to_le_bytes();
    let pcln_end = pcln_addr.checked_add(pcln_size)?;
    let inside = |v: u64| v >= pcln_addr && v <= pcln_end;
    let mut off = 0usize;
    while off + 8 <= data.len() {
        if data[off..off + 8] == needle {
            let w = |i: u64| bytes.u64(off as u64 + 8 * i).ok();
            // funcnametab.ptr (word 1) and ftab.ptr (word 16) point into the table.
            if w(1).is_some_and(inside) && w(16).is_some_and(inside) && w(4).is_some_and(inside) {
                let text = w(WORD_TEXT)?;
                let etext = w(WORD_TEXT + 1)?;
                let gofunc = match gofunc_word(version) {
                    Some(i) => w(i)?,
                    None => 0,
                };
                if text <= etext {
                    return Some(ModuleData { addr: base.wrapping_add(off as u64), text, etext, gofunc });
                }
            }
        }
        off += 8;
    }
    None
}

/// One inline-tree entry, normalised across layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InlinedCall {
    pub name_off: u32,
    /// Offset from the outer function's entry of an instruction at the call site.
    pub parent_pc: u32,
    pub func_id: u8,
}

/// The inline tree of one function: `count` entries are not stored in the binary,
/// so readers index it lazily and bounds-check against the file.
#[derive(Clone, Copy)]
pub(crate) struct InlineTree<'a> {
    bytes: Bytes<'a>,
    entry_size: u64,
}

impl<'a> InlineTree<'a> {
    /// The tree of `func`, or None when it has no inlined calls.
    pub(crate) fn of(
        file: &'a [u8],
        elf: &ElfInfo,
        module: Option<&ModuleData>,
        tab_version: PclnVersion,
        func: &FuncData<'a>,
    ) -> Result<Option<InlineTree<'a>>> {
        let Some(slot) = func.funcdata(FUNCDATA_INL_TREE)? else { return Ok(None) };
        let addr = match slot {
            FuncDataRef::Address(a) => a,
            FuncDataRef::GofuncOffset(off) => match module {
                Some(md) => md.gofunc.wrapping_add(u64::from(off)),
                None => return Ok(None),
            },
        };
        let entry_size = if tab_version >= PclnVersion::Go120 { 16 } else { 20 };
        let off = elf.addr_to_offset(addr).ok_or(super::GobinError::Unmapped { what: "inline tree", addr })?;
        let bytes = Bytes::new(file, 0, "inline tree").tail(off, "inline tree")?;
        Ok(Some(InlineTree { bytes, entry_size }))
    }

    pub(crate) fn get(&self, index: i32) -> Result<InlinedCall> {
        let i = u64::try_from(index).map_err(|_| self.bytes.malformed(0, format!("negative inline index {index}")))?;
        let e = self.bytes.sub(i * self.entry_size, self.entry_size, "inline tree entry")?;
        Ok(if self.entry_size == 16 {
            InlinedCall { func_id: e.u8(0)?, name_off: e.u32(4)?, parent_pc: e.u32(8)? }
        } else {
            InlinedCall { func_id: e.u8(2)?, name_off: e.u32(12)?, parent_pc: e.u32(16)? }
        })
    }
}

/// One frame of a symbolized pc, innermost first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Frame {
    pub function: String,
    /// Source file; empty when the pc has no line information (some assembly).
    pub file: String,
    /// Line number; 0 when unknown.
    pub line: u32,
    /// True for a frame that was inlined into the next one.
    pub inlined: bool,
}

/// Deepest inline chain followed (Go limits inlining depth far below this).
const MAX_INLINE_DEPTH: usize = 64;

/// Frames for `pc` inside `func`: inlined bodies first, the real function last.
pub(crate) fn frames<'a>(
    tab: &Pclntab<'a>,
    func: &FuncData<'a>,
    tree: Option<InlineTree<'a>>,
    pc: u64,
) -> Result<Vec<Frame>> {
    let mut out = Vec::new();
    let mut at = pc;
    let to_frame = |name: &str, at: u64, inlined: bool| -> Result<Frame> {
        let (file, line) = func.file_line(at)?;
        Ok(Frame {
            function: name.to_string(),
            file: file.unwrap_or("").to_string(),
            line: line.max(0) as u32,
            inlined,
        })
    };
    if let Some(tree) = tree {
        let mut ix = func.inline_index(at)?;
        while ix >= 0 && out.len() < MAX_INLINE_DEPTH {
            let call = tree.get(ix)?;
            out.push(to_frame(tab.name(call.name_off)?, at, true)?);
            at = func.entry().wrapping_add(u64::from(call.parent_pc));
            ix = func.inline_index(at)?;
        }
    }
    out.push(to_frame(func.name()?, at, false)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gofunc_word_per_version() {
        assert_eq!(gofunc_word(GoVersion::new(1, 17, 0)), None);
        assert_eq!(gofunc_word(GoVersion::new(1, 19, 8)).map(|w| w * 8), Some(304));
        assert_eq!(gofunc_word(GoVersion::new(1, 26, 6)).map(|w| w * 8), Some(320));
        assert_eq!(gofunc_word(GoVersion::new(1, 27, 3)).map(|w| w * 8), Some(344));
    }

    #[test]
    fn scan_finds_moduledata_by_pointers() {
        let mut words = vec![0u64; 64];
        let pcln = 0x4a0000u64;
        words[10] = pcln;
        words[11] = pcln + 0x60;
        words[14] = pcln + 0x80;
        words[26] = pcln + 0x100;
        words[10 + 22] = 0x401000;
        words[10 + 23] = 0x49f000;
        words[10 + 40] = 0x571000;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let md = scan(Bytes::new(&bytes, 0, "t"), 0x500000, GoVersion::new(1, 24, 0), pcln, 0x1000).unwrap();
        assert_eq!((md.addr, md.text, md.etext, md.gofunc), (0x500050, 0x401000, 0x49f000, 0x571000));
        assert!(scan(Bytes::new(&bytes, 0, "t"), 0x500000, GoVersion::new(1, 24, 0), pcln + 8, 0x1000).is_none());
    }

    #[test]
    fn reads_both_entry_layouts() {
        let mut b = vec![0u8; 40];
        b[16] = 7; // 1.20: entry 1 funcID
        b[20..24].copy_from_slice(&0x55u32.to_le_bytes());
        b[24..28].copy_from_slice(&0x12u32.to_le_bytes());
        let t = InlineTree { bytes: Bytes::new(&b, 0, "t"), entry_size: 16 };
        assert_eq!(t.get(1).unwrap(), InlinedCall { func_id: 7, name_off: 0x55, parent_pc: 0x12 });
        assert!(t.get(2).is_err());
        assert!(t.get(-1).is_err());
        let mut b = vec![0u8; 20];
        b[2] = 3;
        b[12..16].copy_from_slice(&0x99u32.to_le_bytes());
        b[16..20].copy_from_slice(&0x40u32.to_le_bytes());
        let t = InlineTree { bytes: Bytes::new(&b, 0, "t"), entry_size: 20 };
        assert_eq!(t.get(0).unwrap(), InlinedCall { func_id: 3, name_off: 0x99, parent_pc: 0x40 });
    }
}
