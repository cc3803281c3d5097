//! [`GoBinary`]: one mapped Go executable and the tables parsed at open time.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::buildinfo::{self, BuildInfo, GoVersion, Module};
use super::dwarf::{self, DwarfData};
use super::elf::{Arch, ElfInfo};
use super::inline::{self, Frame, InlineTree, ModuleData};
use super::layout::{self, RuntimeLayout};
use super::pccache::PcCache;
use super::pclntab::{FuncData, PclnHeader, Pclntab};
use super::disasm;
use super::plan::{self, ProbePlan};
use super::read::{Bytes, Result};
use super::runtime_strings::{self, VersionSource};
use super::{GobinError, Scope};

/// Oldest Go release whose pclntab ghostrace reads (magic 0xfffffffa).
const OLDEST: GoVersion = GoVersion::new(1, 16, 0);

enum Backing {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A function of the binary's function table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Func {
    pub name: String,
    pub entry: u64,
    /// Entry of the next function (includes alignment padding).
    pub end: u64,
}

/// A Go executable, memory-mapped; tables are parsed lazily and zero-copy.
pub struct GoBinary {
    path: PathBuf,
    data: Backing,
    elf: ElfInfo,
    build: BuildInfo,
    version: GoVersion,
    version_source: VersionSource,
    pcln: PclnHeader,
    pcln_offset: u64,
    pcln_size: u64,
    pcln_addr: u64,
    text_base: u64,
    module: Option<ModuleData>,
    pc_cache: PcCache,
}

impl std::fmt::Debug for GoBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoBinary")
            .field("path", &self.path)
            .field("version", &self.build.go_version)
            .finish_non_exhaustive()
    }
}

impl GoBinary {
    /// Maps and parses the executable at `path`.
    pub fn open(path: &Path) -> std::result::Result<GoBinary, GobinError> {
        let io = |source| GobinError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            return Err(GobinError::Directory { path: path.to_path_buf() });
        }
        let file = File::open(path).map_err(io)?;
        let data = if meta.len() == 0 {
            Backing::Owned(Vec::new())
        } else {
            Backing::Map(crate::sys::map_readonly(&file).map_err(io)?)
        };
        Self::from_backing(path.to_path_buf(), data)
    }

    /// Parses an executable held in memory (tests, fuzzing, binaries read from
    /// another process).
    pub fn from_bytes(bytes: Vec<u8>) -> std::result::Result<GoBinary, GobinError> {
        Self::from_backing(PathBuf::from("<memory>"), Backing::Owned(bytes))
    }

    fn from_backing(path: PathBuf, data: Backing) -> Result<GoBinary> {
        let bytes = data.bytes();
        let elf = ElfInfo::parse(bytes)?;
        let section = elf
            .section(".gopclntab")
            .or_else(|| elf.sections.iter().find(|s| s.name.ends_with(".gopclntab")))
            .ok_or(GobinError::NotGo { reason: "no .gopclntab section" })?;
        let table = elf.section_bytes(bytes, section, ".gopclntab")?;
        let pcln = PclnHeader::parse(table)?;
        let (pcln_offset, pcln_size, pcln_addr) = (table.file_offset(), table.len(), section.addr);
        let (build, version_source) = match BuildInfo::read(bytes, &elf) {
            Ok(info) => (info, VersionSource::BuildInfo),
            Err(GobinError::NotGo { .. }) => identify(bytes, &elf, &pcln, table, pcln_addr),
            Err(e) => return Err(e),
        };
        let version = GoVersion::parse(&build.go_version).ok_or_else(|| GobinError::UnsupportedVersion {
            version: build.go_version.clone(),
            reason: "cannot parse the version string",
        })?;
        if version < OLDEST {
            return Err(GobinError::UnsupportedVersion {
                version: build.go_version.clone(),
                reason: "ghostrace reads Go 1.16 and later",
            });
        }
        let module = ModuleData::locate(bytes, &elf, version, pcln_addr, pcln_size);
        let text_base = text_base(&pcln, module.as_ref(), &elf);
        Ok(GoBinary {
            path,
            data,
            elf,
            build,
            version,
            version_source,
            pcln,
            pcln_offset,
            pcln_size,
            pcln_addr,
            text_base,
            module,
            pc_cache: PcCache::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version string, e.g. `go1.24.11`; `go1.20+` when only the release
    /// family is known (see [`Self::version_source`]).
    pub fn go_version(&self) -> &str {
        &self.build.go_version
    }

    /// The release; the family's first release when the source is not exact.
    pub fn version(&self) -> GoVersion {
        self.version
    }

    /// Where the version was read.
    pub fn version_source(&self) -> VersionSource {
        self.version_source
    }

    pub fn arch(&self) -> Arch {
        self.elf.arch
    }

    /// Built with `-buildmode=pie`: each process maps it at its own address.
    pub fn is_pie(&self) -> bool {
        self.elf.position_independent
    }

    /// Runtime minus link-time address in a process whose entry point the kernel
    /// placed at `runtime_entry` (AT_ENTRY); 0 for a fixed-address executable.
    pub fn load_bias(&self, runtime_entry: u64) -> u64 {
        if self.is_pie() { runtime_entry.wrapping_sub(self.elf.entry) } else { 0 }
    }

    /// No symbol table (`-ldflags=-s`).
    pub fn stripped(&self) -> bool {
        !self.elf.has_symtab
    }

    /// DWARF present (not built with `-ldflags=-w`).
    pub fn has_dwarf(&self) -> bool {
        self.elf.has_dwarf
    }

    /// Main module path (`mod` line), e.g. `example.com/app`.
    pub fn main_module(&self) -> Option<&str> {
        self.build.main.as_ref().map(|m| m.path.as_str())
    }

    /// Dependency modules (`dep` lines).
    pub fn deps(&self) -> &[Module] {
        &self.build.deps
    }

    pub fn build_info(&self) -> &BuildInfo {
        &self.build
    }

    /// moduledata, when it was found (not for PIE binaries, whose pointers are
    /// relocated at load time).
    pub fn module_data(&self) -> Option<&ModuleData> {
        self.module.as_ref()
    }

    /// Runtime struct offsets: DWARF when present, else the per-version table
    /// (unverified when only the release family is known).
    pub fn layout(&self) -> RuntimeLayout {
        match self.dwarf().and_then(|d| d.map(|d| dwarf::runtime_offsets(&d)).transpose()) {
            Ok(Some(Some(offsets))) => layout::dwarf_layout(offsets),
            _ => {
                let mut l = layout::table_layout(self.version);
                l.verified &= self.version_source.exact();
                l
            }
        }
    }

    /// The binary's DWARF sections, or None when built with `-ldflags=-w`.
    pub fn dwarf(&self) -> Result<Option<DwarfData<'_>>> {
        dwarf::load(self.data.bytes(), &self.elf)
    }

    pub(crate) fn pclntab(&self) -> Pclntab<'_> {
        let all = Bytes::new(self.data.bytes(), 0, "file");
        let table = all.sub(self.pcln_offset, self.pcln_size, ".gopclntab").expect("checked at open");
        Pclntab::new(&self.pcln, table, self.text_base).with_cache(&self.pc_cache)
    }

    /// Number of functions in the function table.
    pub fn function_count(&self) -> u64 {
        self.pcln.nfunc
    }

    /// Every function of the function table, in address order.
    pub fn functions(&self) -> impl Iterator<Item = Func> + '_ {
        let tab = self.pclntab();
        (0..tab.nfunc()).filter_map(move |i| {
            let row = tab.row(i).ok()?;
            let name = tab.func(&row).and_then(|f| f.name()).ok()?;
            Some(Func { name: name.to_string(), entry: row.entry, end: row.end })
        })
    }

    /// The function whose code holds `pc`.
    pub fn func_at(&self, pc: u64) -> Option<Func> {
        let tab = self.pclntab();
        let row = tab.find(pc)?;
        let name = tab.func(&row).and_then(|f| f.name()).ok()?;
        Some(Func { name: name.to_string(), entry: row.entry, end: row.end })
    }

    /// Source frames at `pc`, innermost first: inlined calls, then the function.
    pub fn symbolize(&self, pc: u64) -> Option<Vec<Frame>> {
        self.try_symbolize(pc).ok().flatten()
    }

    /// [`Self::symbolize`] with the reason when the tables are malformed.
    pub fn try_symbolize(&self, pc: u64) -> Result<Option<Vec<Frame>>> {
        let tab = self.pclntab();
        let Some(row) = tab.find(pc) else { return Ok(None) };
        let func = tab.func(&row)?;
        let tree = self.inline_tree(&func)?;
        inline::frames(&tab, &func, tree, pc).map(Some)
    }

    pub(crate) fn inline_tree<'a>(&'a self, func: &FuncData<'a>) -> Result<Option<InlineTree<'a>>> {
        InlineTree::of(self.data.bytes(), &self.elf, self.module.as_ref(), self.pcln.version, func)
    }

    /// Every probe for `scope`, and what could not be found.
    pub fn probe_plan(&self, scope: &Scope) -> ProbePlan {
        plan::build(self, scope)
    }

    /// File offset of virtual address `addr`.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        self.elf.addr_to_offset(addr)
    }

    /// Code bytes of `[entry, end)`, clipped to the file.
    pub(crate) fn code(&self, entry: u64, end: u64) -> Option<&[u8]> {
        let off = usize::try_from(self.file_offset(entry)?).ok()?;
        let len = usize::try_from(end.checked_sub(entry)?).ok()?;
        let data = self.data.bytes();
        data.get(off..off.checked_add(len)?.min(data.len()))
    }

    /// Address of `.gopclntab`.
    pub fn pclntab_addr(&self) -> u64 {
        self.pcln_addr
    }
}

/// Base of the pclntab's function offsets: 1.18–1.25 record the text start in the
/// header; 1.26+ write 0 there (Go src/runtime/symtab.go pcHeader), so use
/// moduledata.text or `.text`.
fn text_base(pcln: &PclnHeader, module: Option<&ModuleData>, elf: &ElfInfo) -> u64 {
    if pcln.text_start != 0 {
        pcln.text_start
    } else if let Some(md) = module {
        md.text
    } else {
        elf.text_section().map_or(0, |s| s.addr)
    }
}

/// Version and modules of a binary without `.go.buildinfo`, as far as its own
/// contents go: the release family from the pclntab magic, raised to 1.26 by a
/// `.go.module` section and to 1.27 by moduledata's layout, then
/// `runtime.buildVersion` within that family and the module info text of
/// `runtime.modinfo`.
fn identify(
    file: &[u8],
    elf: &ElfInfo,
    pcln: &PclnHeader,
    table: Bytes<'_>,
    pcln_addr: u64,
) -> (BuildInfo, VersionSource) {
    let (mut first, last) = pcln.version.releases();
    if elf.section(".go.module").is_some() {
        first = first.max(GoVersion::new(1, 26, 0));
    }
    // moduledata's `gofunc` moved in 1.27 (inline.rs); where the older word holds a
    // small number and the newer one an address of the file, the layout is 1.27's.
    let newer = GoVersion::new(1, 27, 0);
    if first < newer && newer <= last {
        let gofunc_mapped = |v| {
            ModuleData::locate(file, elf, v, pcln_addr, table.len())
                .is_some_and(|md| elf.addr_to_offset(md.gofunc).is_some())
        };
        if gofunc_mapped(newer) && !gofunc_mapped(first) {
            first = newer;
        }
    }
    // moduledata's text word does not depend on the release.
    let module = ModuleData::locate(file, elf, first, pcln_addr, table.len());
    let tab = Pclntab::new(pcln, table, text_base(pcln, module.as_ref(), elf));
    let refs = (elf.arch == Arch::Amd64).then(|| schedinit_references(file, elf, &tab)).flatten();
    let is_ref = refs.map(|r| move |a: u64| r.contains(&a));
    let is_ref = is_ref.as_ref().map(|f| f as &dyn Fn(u64) -> bool);
    let found = runtime_strings::build_version(file, elf, is_ref, (first, last));
    let mut info = runtime_strings::modinfo(file, elf)
        .map(|text| buildinfo::parse_modinfo(&String::from_utf8_lossy(text)))
        .unwrap_or_default();
    match found {
        Some((version, source)) => {
            info.go_version = version;
            (info, source)
        }
        None => {
            info.go_version = format!("go{}.{}+", first.major, first.minor);
            (info, VersionSource::Pclntab)
        }
    }
}

/// Addresses `runtime.schedinit`'s code reads RIP-relative (amd64), which include
/// `runtime.buildVersion`'s header.
fn schedinit_references(file: &[u8], elf: &ElfInfo, tab: &Pclntab<'_>) -> Option<Vec<u64>> {
    let row = (0..tab.nfunc())
        .filter_map(|i| tab.row(i).ok())
        .find(|row| tab.func(row).and_then(|f| f.name()).is_ok_and(|n| n == "runtime.schedinit"))?;
    let code = elf.read_addr(file, row.entry, row.end.checked_sub(row.entry)?, "runtime.schedinit").ok()?;
    Some(disasm::rip_relative_targets(code.data(), row.entry))
}
