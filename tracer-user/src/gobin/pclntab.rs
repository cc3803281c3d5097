//! `.gopclntab`: the function table and the pc → value tables (file, line, inline index).
//!
//! Layouts from Go's `src/runtime/symtab.go` (`pcHeader`, `functab`),
//! `src/runtime/runtime2.go` (`_func`, 1.20+) and `src/debug/gosym/pclntab.go`,
//! checked on 1.19 and 1.21–1.27 (1.16–1.17 from the 1.19 `debug/gosym` reader):
//!
//! | magic | Go | header words after the 8-byte prefix | functab entry | `_func` |
//! |---|---|---|---|---|
//! | 0xfffffffa | 1.16–1.17 | nfunc, nfiles, funcname, cu, filetab, pctab, pcln | (entry uintptr, funcoff uintptr) | entry uintptr first, 36-byte tail |
//! | 0xfffffff0 | 1.18–1.19 | nfunc, nfiles, textStart, funcname, cu, filetab, pctab, pcln | (entryoff u32, funcoff u32) | 40 bytes |
//! | 0xfffffff1 | 1.20+ | same as 1.18 (textStart written as 0 from 1.26) | same | 44 bytes (adds startLine) |
//!
//! All offsets in the header are relative to the start of the table; `funcoff` is
//! relative to the `pcln` sub-table. A pc-value table is a sequence of
//! (zigzag value delta, pc delta / quantum) uvarint pairs starting from value -1 at
//! the function entry, ended by a zero value delta after the first pair.

use super::pccache::{self, PcCache};
use super::{GobinError, GoVersion};
use super::read::{Bytes, Result};

/// Which pclntab layout a binary uses, chosen from the magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PclnVersion {
    Go116,
    Go118,
    Go120,
}

impl PclnVersion {
    fn from_magic(magic: u32) -> Option<PclnVersion> {
        match magic {
            0xffff_fffa => Some(PclnVersion::Go116),
            0xffff_fff0 => Some(PclnVersion::Go118),
            0xffff_fff1 => Some(PclnVersion::Go120),
            _ => None,
        }
    }
}

impl PclnVersion {
    /// The Go releases that write this layout, inclusive.
    pub(crate) fn releases(self) -> (GoVersion, GoVersion) {
        let last = |minor| GoVersion::new(1, minor, u32::MAX);
        match self {
            PclnVersion::Go116 => (GoVersion::new(1, 16, 0), last(17)),
            PclnVersion::Go118 => (GoVersion::new(1, 18, 0), last(19)),
            PclnVersion::Go120 => (GoVersion::new(1, 20, 0), GoVersion::new(1, u32::MAX, u32::MAX)),
        }
    }
}

/// `_PCDATA_InlTreeIndex` and `_FUNCDATA_InlTree` (`src/internal/abi/symtab.go`,
/// `src/runtime/symtab.go` before 1.21); same values in every supported version.
pub(crate) const PCDATA_INL_TREE_INDEX: u32 = 2;
pub(crate) const FUNCDATA_INL_TREE: u32 = 3;

/// The parsed `pcHeader`: owned, small, offsets relative to the table start.
#[derive(Clone, Debug)]
pub(crate) struct PclnHeader {
    pub version: PclnVersion,
    pub quantum: u8,
    pub ptr_size: u8,
    pub nfunc: u64,
    /// `textStart` as written (1.18–1.25); 0 or absent otherwise.
    pub text_start: u64,
    funcname: u64,
    cutab: u64,
    filetab: u64,
    pctab: u64,
    pcln: u64,
}

/// Upper bound on the function count (the Go compiler has ~40 k).
const MAX_FUNCS: u64 = 1 << 24;

impl PclnHeader {
    pub(crate) fn parse(t: Bytes<'_>) -> Result<PclnHeader> {
        let magic = t.u32(0)?;
        let version = PclnVersion::from_magic(magic).ok_or_else(|| match magic {
            0xffff_fffb => GobinError::UnsupportedVersion {
                version: "go1.2–go1.15".into(),
                reason: "pclntab magic 0xfffffffb predates Go 1.16",
            },
            _ => t.malformed(0, format!("unknown pclntab magic {magic:#010x}")),
        })?;
        let (pad1, pad2, quantum, ptr_size) = (t.u8(4)?, t.u8(5)?, t.u8(6)?, t.u8(7)?);
        if pad1 != 0 || pad2 != 0 || !matches!(quantum, 1 | 2 | 4) || ptr_size != 8 {
            return Err(t.malformed(4, format!("bad header (pad {pad1},{pad2} quantum {quantum} ptrsize {ptr_size})")));
        }
        let word = |i: u64| t.uptr(8 + i * u64::from(ptr_size), ptr_size);
        let nfunc = word(0)?;
        // Go 1.18 inserted textStart as word 2; later words shift by one.
        let (text_start, first) = if version >= PclnVersion::Go118 { (word(2)?, 3) } else { (0, 2) };
        let hdr = PclnHeader {
            version,
            quantum,
            ptr_size,
            nfunc,
            text_start,
            funcname: word(first)?,
            cutab: word(first + 1)?,
            filetab: word(first + 2)?,
            pctab: word(first + 3)?,
            pcln: word(first + 4)?,
        };
        if nfunc > MAX_FUNCS {
            return Err(t.malformed(8, format!("{nfunc} functions is implausible")));
        }
        for (name, off) in
            [("funcname", hdr.funcname), ("cutab", hdr.cutab), ("filetab", hdr.filetab), ("pctab", hdr.pctab)]
        {
            if off > t.len() {
                return Err(t.malformed(8, format!("{name} offset {off:#x} is past the table end {:#x}", t.len())));
            }
        }
        // The functab holds nfunc (entry, funcoff) pairs plus the end pc.
        let fsize = hdr.functab_field();
        t.sub(hdr.pcln, (2 * nfunc + 1) * fsize, "pclntab functab")?;
        Ok(hdr)
    }

    fn functab_field(&self) -> u64 {
        if self.version >= PclnVersion::Go118 { 4 } else { u64::from(self.ptr_size) }
    }
}

/// Zero-copy view of the table: the header plus the bytes it describes.
#[derive(Clone, Copy)]
pub(crate) struct Pclntab<'a> {
    pub hdr: &'a PclnHeader,
    data: Bytes<'a>,
    /// Address the functab's entry offsets are relative to (1.18+).
    text_base: u64,
    cache: Option<&'a PcCache>,
}

/// A function's row in the function table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FuncRow {
    pub entry: u64,
    pub end: u64,
    funcoff: u64,
}

impl<'a> Pclntab<'a> {
    pub(crate) fn new(hdr: &'a PclnHeader, data: Bytes<'a>, text_base: u64) -> Self {
        Pclntab { hdr, data, text_base, cache: None }
    }

    /// Keeps decoded pc-value tables in `cache` (the binary's, for its lifetime).
    pub(crate) fn with_cache(self, cache: &'a PcCache) -> Self {
        Pclntab { cache: Some(cache), ..self }
    }

    pub(crate) fn nfunc(&self) -> u64 {
        self.hdr.nfunc
    }

    /// Field `i` of the functab (entries are pairs, then the final end pc).
    fn functab_field(&self, i: u64) -> Result<u64> {
        let size = self.hdr.functab_field();
        let off = self.hdr.pcln + i * size;
        if size == 4 { self.data.u32(off).map(u64::from) } else { self.data.uptr(off, self.hdr.ptr_size) }
    }

    fn functab_pc(&self, i: u64) -> Result<u64> {
        let v = self.functab_field(2 * i)?;
        Ok(if self.hdr.version >= PclnVersion::Go118 { self.text_base.wrapping_add(v) } else { v })
    }

    /// Row `i` (0 ≤ i < nfunc); `end` is the next function's entry.
    pub(crate) fn row(&self, i: u64) -> Result<FuncRow> {
        Ok(FuncRow {
            entry: self.functab_pc(i)?,
            end: self.functab_pc(i + 1)?,
            funcoff: self.functab_field(2 * i + 1)?,
        })
    }

    /// The row whose `[entry, end)` holds `pc`.
    pub(crate) fn find(&self, pc: u64) -> Option<FuncRow> {
        let n = self.nfunc();
        if n == 0 || pc < self.functab_pc(0).ok()? || pc >= self.functab_pc(n).ok()? {
            return None;
        }
        // Largest i with entry(i) <= pc.
        let (mut lo, mut hi) = (0u64, n);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.functab_pc(mid).ok()? <= pc { lo = mid } else { hi = mid }
        }
        let row = self.row(lo).ok()?;
        (pc >= row.entry && pc < row.end).then_some(row)
    }

    /// The `_func` record of a row.
    pub(crate) fn func(&self, row: &FuncRow) -> Result<FuncData<'a>> {
        let off = self.hdr.pcln.checked_add(row.funcoff).ok_or_else(|| self.data.malformed(0, "funcoff overflows"))?;
        let layout = FuncLayout::of(self.hdr.version);
        let rec = self.data.tail(off, "pclntab _func")?;
        rec.sub(0, layout.size, "pclntab _func")?;
        Ok(FuncData { tab: *self, rec, layout, entry: row.entry })
    }

    /// NUL-terminated name at `nameoff` in the function-name table.
    pub(crate) fn name(&self, nameoff: u32) -> Result<&'a str> {
        self.data.tail(self.hdr.funcname, "pclntab funcnametab")?.cstr(u64::from(nameoff))
    }

    /// File name of file number `fileno` of compilation unit `cu`.
    pub(crate) fn file(&self, cu: u32, fileno: i32) -> Result<Option<&'a str>> {
        if fileno < 0 {
            return Ok(None);
        }
        // uint32 arithmetic as in Go (linker marker functions carry cuOffset ^0).
        let idx = u64::from(cu.wrapping_add(fileno as u32));
        let off = self.data.u32(self.hdr.cutab + 4 * idx)?;
        if off == u32::MAX {
            return Ok(None);
        }
        self.data.tail(self.hdr.filetab, "pclntab filetab")?.cstr(u64::from(off)).map(Some)
    }

    /// Every name of the file table (NUL-terminated, laid out before the pc tables).
    pub(crate) fn file_names(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        let (start, end) = (self.hdr.filetab as usize, self.hdr.pctab.max(self.hdr.filetab) as usize);
        let names = self.data.data().get(start..end).unwrap_or(&[]);
        names.split(|&b| b == 0).filter(|s| !s.is_empty()).filter_map(|s| std::str::from_utf8(s).ok())
    }

    /// Runs the pc-value table at `off` (relative to pctab) for a function starting
    /// at `entry` and returns the value in effect at `pc`, or -1.
    pub(crate) fn pcvalue(&self, off: u32, entry: u64, pc: u64) -> Result<i32> {
        if let Some(cache) = self.cache
            && pc >= entry
        {
            let runs = match cache.get(off) {
                Some(runs) => runs,
                None => {
                    let runs = self.runs(off, entry)?;
                    cache.insert(off, &runs);
                    runs
                }
            };
            return Ok(pccache::value_at(&runs, pc - entry));
        }
        let mut found = -1;
        self.walk(off, entry, |start, end, val| {
            if pc >= start && pc < end {
                found = val;
                return false;
            }
            pc >= end
        })?;
        Ok(found)
    }

    /// Every run of the table at `off`, pcs relative to `entry` (a function is far
    /// smaller than 4 GiB; a malformed table's runs stop at that bound).
    fn runs(&self, off: u32, entry: u64) -> Result<pccache::Runs> {
        let mut runs = Vec::new();
        self.walk(off, entry, |_, end, value| {
            let rel = u32::try_from(end - entry).unwrap_or(u32::MAX);
            runs.push((rel, value));
            rel < u32::MAX
        })?;
        Ok(runs.into())
    }

    /// Calls `f(start, end, value)` for each run of the table until it returns false.
    /// Terminates: every step consumes at least two bytes of a bounded table.
    /// Offset 0 is read like any other (as `debug/gosym` and so `go tool addr2line`
    /// do for pcfile/pcln of C functions in cgo binaries); callers treat a 0 pcdata
    /// offset as "no table" before getting here.
    pub(crate) fn walk(&self, off: u32, entry: u64, mut f: impl FnMut(u64, u64, i32) -> bool) -> Result<()> {
        let tab = self.data.tail(self.hdr.pctab, "pclntab pctab")?;
        let mut pos = u64::from(off);
        let (mut pc, mut val) = (entry, -1i32);
        loop {
            let (uvdelta, next) = tab.uvarint(pos)?;
            // A zero delta ends the table, except while still at the entry pc
            // (Go src/runtime/symtab.go pcvalue: step(..., pc == entry)).
            if uvdelta == 0 && pc != entry {
                return Ok(());
            }
            let vdelta = if uvdelta & 1 != 0 { !(uvdelta >> 1) } else { uvdelta >> 1 } as i32;
            let (pcdelta, next) = tab.uvarint(next)?;
            pos = next;
            val = val.wrapping_add(vdelta);
            let end = pc.saturating_add(pcdelta.saturating_mul(u64::from(self.hdr.quantum)));
            if !f(pc, end, val) {
                return Ok(());
            }
            pc = end;
        }
    }
}

/// Byte offsets of `_func` fields for one pclntab version.
#[derive(Clone, Copy, Debug)]
struct FuncLayout {
    nameoff: u64,
    pcfile: u64,
    pcln: u64,
    npcdata: u64,
    cu_offset: u64,
    nfuncdata: u64,
    /// Size of the fixed part; pcdata offsets follow.
    size: u64,
    /// funcdata entries are pointers (aligned) instead of u32 offsets.
    funcdata_is_ptr: bool,
}

impl FuncLayout {
    fn of(v: PclnVersion) -> FuncLayout {
        match v {
            // entry uintptr, then 9 × 4-byte fields ending in funcID, pad, pad, nfuncdata.
            PclnVersion::Go116 => FuncLayout {
                nameoff: 8,
                pcfile: 24,
                pcln: 28,
                npcdata: 32,
                cu_offset: 36,
                nfuncdata: 43,
                size: 44,
                funcdata_is_ptr: true,
            },
            // entryOff u32, nameOff, args, deferreturn, pcsp, pcfile, pcln, npcdata,
            // cuOffset, then funcID u8, flag u8, pad u8, nfuncdata u8.
            PclnVersion::Go118 => FuncLayout {
                nameoff: 4,
                pcfile: 20,
                pcln: 24,
                npcdata: 28,
                cu_offset: 32,
                nfuncdata: 39,
                size: 40,
                funcdata_is_ptr: false,
            },
            // As 1.18 with startLine i32 inserted after cuOffset.
            PclnVersion::Go120 => FuncLayout {
                nameoff: 4,
                pcfile: 20,
                pcln: 24,
                npcdata: 28,
                cu_offset: 32,
                nfuncdata: 43,
                size: 44,
                funcdata_is_ptr: false,
            },
        }
    }
}

/// Typed view of one `_func` record.
#[derive(Clone, Copy)]
pub(crate) struct FuncData<'a> {
    tab: Pclntab<'a>,
    rec: Bytes<'a>,
    layout: FuncLayout,
    entry: u64,
}

/// A funcdata slot: a u32 offset from `moduledata.gofunc` (1.18+) or an absolute
/// address (1.16–1.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FuncDataRef {
    GofuncOffset(u32),
    Address(u64),
}

impl<'a> FuncData<'a> {
    pub(crate) fn entry(&self) -> u64 {
        self.entry
    }

    pub(crate) fn name(&self) -> Result<&'a str> {
        self.tab.name(self.rec.u32(self.layout.nameoff)?)
    }

    fn pcdata_base(&self) -> u64 {
        self.layout.size
    }

    pub(crate) fn npcdata(&self) -> Result<u32> {
        self.rec.u32(self.layout.npcdata)
    }

    pub(crate) fn nfuncdata(&self) -> Result<u8> {
        self.rec.u8(self.layout.nfuncdata)
    }

    /// Offset (into pctab) of pcdata table `i`, or None when absent.
    pub(crate) fn pcdata(&self, i: u32) -> Result<Option<u32>> {
        if i >= self.npcdata()? {
            return Ok(None);
        }
        let off = self.rec.u32(self.pcdata_base() + 4 * u64::from(i))?;
        Ok((off != 0).then_some(off))
    }

    /// Funcdata slot `i`, or None when absent.
    pub(crate) fn funcdata(&self, i: u32) -> Result<Option<FuncDataRef>> {
        let nfd = u32::from(self.nfuncdata()?);
        if i >= nfd {
            return Ok(None);
        }
        let base = self.pcdata_base() + 4 * u64::from(self.npcdata()?);
        if self.layout.funcdata_is_ptr {
            let ptr = u64::from(self.tab.hdr.ptr_size);
            let aligned = base.div_ceil(ptr) * ptr;
            let v = self.rec.uptr(aligned + ptr * u64::from(i), self.tab.hdr.ptr_size)?;
            Ok((v != 0).then_some(FuncDataRef::Address(v)))
        } else {
            let v = self.rec.u32(base + 4 * u64::from(i))?;
            Ok((v != u32::MAX).then_some(FuncDataRef::GofuncOffset(v)))
        }
    }

    /// File and line of `pc` (innermost position when inlined).
    pub(crate) fn file_line(&self, pc: u64) -> Result<(Option<&'a str>, i32)> {
        let fileno = self.tab.pcvalue(self.rec.u32(self.layout.pcfile)?, self.entry, pc)?;
        let line = self.tab.pcvalue(self.rec.u32(self.layout.pcln)?, self.entry, pc)?;
        let file = self.tab.file(self.rec.u32(self.layout.cu_offset)?, fileno)?;
        Ok((file, line))
    }

    /// Inline-tree index in effect at `pc` (-1: not inside inlined code).
    pub(crate) fn inline_index(&self, pc: u64) -> Result<i32> {
        match self.pcdata(PCDATA_INL_TREE_INDEX)? {
            Some(off) => self.tab.pcvalue(off, self.entry, pc),
            None => Ok(-1),
        }
    }

    /// Runs of the inline-index table: `f(start, end, index)`.
    pub(crate) fn walk_inline(&self, f: impl FnMut(u64, u64, i32) -> bool) -> Result<()> {
        match self.pcdata(PCDATA_INL_TREE_INDEX)? {
            Some(off) => self.tab.walk(off, self.entry, f),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a 1.20-layout table with two functions for the reader tests.
    pub(crate) fn synthetic_table() -> Vec<u8> {
        let mut t = vec![0u8; 0x200];
        t[0..4].copy_from_slice(&0xffff_fff1u32.to_le_bytes());
        t[6] = 1;
        t[7] = 8;
        let words: [u64; 8] = [2, 1, 0x1000, 0x60, 0x80, 0x90, 0xa0, 0x100];
        for (i, w) in words.iter().enumerate() {
            t[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        t[0x60..0x67].copy_from_slice(b"main.f\0");
        t[0x67..0x6e].copy_from_slice(b"main.g\0");
        t[0x80..0x84].copy_from_slice(&0u32.to_le_bytes()); // cutab[0] -> filetab+0
        t[0x90..0x98].copy_from_slice(b"a.go\0\0\0\0");
        // pctab: file table at 1 (value 0 for 0x20 bytes), line table at 4 (10 for
        // 0x10 bytes, then 12 for 0x10 bytes).
        t[0xa1..0xa4].copy_from_slice(&[0x02, 0x20, 0x00]);
        t[0xa4..0xa9].copy_from_slice(&[0x16, 0x10, 0x04, 0x10, 0x00]);
        // functab: (0, f0) (0x20, f1) end 0x30
        let ft: [u32; 5] = [0, 0x20, 0x20, 0x50, 0x30];
        for (i, w) in ft.iter().enumerate() {
            t[0x100 + 4 * i..0x104 + 4 * i].copy_from_slice(&w.to_le_bytes());
        }
        for (foff, entry, name) in [(0x120usize, 0u32, 0u32), (0x150, 0x20, 7)] {
            t[foff..foff + 4].copy_from_slice(&entry.to_le_bytes());
            t[foff + 4..foff + 8].copy_from_slice(&name.to_le_bytes());
            t[foff + 20..foff + 24].copy_from_slice(&1u32.to_le_bytes());
            t[foff + 24..foff + 28].copy_from_slice(&4u32.to_le_bytes());
        }
        t
    }

    #[test]
    fn reads_synthetic_table() {
        let data = synthetic_table();
        let bytes = Bytes::new(&data, 0, "pclntab");
        let hdr = PclnHeader::parse(bytes).unwrap();
        assert_eq!(hdr.version, PclnVersion::Go120);
        let tab = Pclntab::new(&hdr, bytes, 0x1000);
        let row = tab.find(0x1012).unwrap();
        assert_eq!((row.entry, row.end), (0x1000, 0x1020));
        let f = tab.func(&row).unwrap();
        assert_eq!(f.name().unwrap(), "main.f");
        assert_eq!(f.file_line(0x1004).unwrap(), (Some("a.go"), 10));
        assert_eq!(f.file_line(0x1014).unwrap(), (Some("a.go"), 12));
        let g = tab.func(&tab.find(0x1020).unwrap()).unwrap();
        assert_eq!(g.name().unwrap(), "main.g");
        assert!(tab.find(0x1030).is_none());
        assert!(tab.find(0xfff).is_none());
    }

    /// Go 1.16–1.17 layout: pointer-sized functab entries, `entry uintptr` first in
    /// `_func`, funcdata as pointers aligned after the pcdata offsets.
    #[test]
    fn reads_go116_layout() {
        let mut t = vec![0u8; 0x200];
        t[0..4].copy_from_slice(&0xffff_fffau32.to_le_bytes());
        t[6] = 1;
        t[7] = 8;
        // nfunc, nfiles, funcname, cu, filetab, pctab, pcln
        let words: [u64; 7] = [1, 1, 0x60, 0x80, 0x90, 0xa0, 0x100];
        for (i, w) in words.iter().enumerate() {
            t[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        t[0x60..0x67].copy_from_slice(b"main.h\0");
        t[0x90..0x95].copy_from_slice(b"b.go\0");
        t[0xa1..0xa4].copy_from_slice(&[0x02, 0x40, 0x00]); // file 0 for 0x40 bytes
        t[0xa4..0xa7].copy_from_slice(&[0x10, 0x40, 0x00]); // line -1+8 = 7 for 0x40 bytes
        // functab: (entry 0x2000, funcoff 0x20), end 0x2040
        for (i, w) in [0x2000u64, 0x20, 0x2040].iter().enumerate() {
            t[0x100 + 8 * i..0x108 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        let f = 0x120;
        t[f..f + 8].copy_from_slice(&0x2000u64.to_le_bytes());
        t[f + 24..f + 28].copy_from_slice(&1u32.to_le_bytes()); // pcfile
        t[f + 28..f + 32].copy_from_slice(&4u32.to_le_bytes()); // pcln
        t[f + 32..f + 36].copy_from_slice(&3u32.to_le_bytes()); // npcdata
        t[f + 43] = 4; // nfuncdata
        // pcdata[2] (inline index) at 44 + 8; funcdata starts at align8(44 + 12) = 56.
        t[f + 80..f + 88].copy_from_slice(&0x5000u64.to_le_bytes()); // funcdata[3]
        let bytes = Bytes::new(&t, 0, "pclntab");
        let hdr = PclnHeader::parse(bytes).unwrap();
        assert_eq!(hdr.version, PclnVersion::Go116);
        let tab = Pclntab::new(&hdr, bytes, 0);
        let row = tab.find(0x2010).unwrap();
        assert_eq!((row.entry, row.end), (0x2000, 0x2040));
        let func = tab.func(&row).unwrap();
        assert_eq!(func.name().unwrap(), "main.h");
        assert_eq!(func.file_line(0x2010).unwrap(), (Some("b.go"), 7));
        assert_eq!(func.funcdata(FUNCDATA_INL_TREE).unwrap(), Some(FuncDataRef::Address(0x5000)));
        assert_eq!(func.funcdata(4).unwrap(), None);
        assert_eq!(func.pcdata(PCDATA_INL_TREE_INDEX).unwrap(), None);
    }

    #[test]
    fn rejects_old_and_unknown_magic() {
        let mut data = synthetic_table();
        data[0..4].copy_from_slice(&0xffff_fffbu32.to_le_bytes());
        let err = PclnHeader::parse(Bytes::new(&data, 0, "pclntab")).unwrap_err();
        assert!(matches!(err, GobinError::UnsupportedVersion { .. }), "{err}");
        data[0..4].copy_from_slice(&0x1234u32.to_le_bytes());
        assert!(PclnHeader::parse(Bytes::new(&data, 0, "pclntab")).is_err());
    }

    #[test]
    fn rejects_huge_function_count() {
        let mut data = synthetic_table();
        data[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(PclnHeader::parse(Bytes::new(&data, 0, "pclntab")).is_err());
    }
}
