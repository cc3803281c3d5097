//! Go version and module list from the `.go.buildinfo` section.
//!
//! Format (Go source `src/debug/buildinfo/buildinfo.go`, checked on 1.19 and
//! 1.21–1.27): a 32-byte header starting with the 14-byte magic
//! `"\xff Go buildinf:"`, then `ptrSize u8` and `flags u8`. Flag bit 0x2 set (Go
//! 1.18+): the version and module-info strings follow inline at offset 32, each
//! prefixed by a uvarint length. Bit clear (before 1.18): two pointers at offset 16
//! to Go string headers (`data, len`) elsewhere in the file. The module info is
//! framed by 16-byte sentinels (`cmd/go/internal/modload` infoStart/infoEnd) and
//! holds tab-separated lines `path`, `mod`, `dep`, `=>` and `build`
//! (`src/runtime/debug/mod.go`).

use super::GobinError;
use super::elf::ElfInfo;
use super::read::{Bytes, Result};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const HEADER_SIZE: u64 = 32;
const FLAG_INLINE_STRINGS: u8 = 0x2;
const FLAG_BIG_ENDIAN: u8 = 0x1;
/// Longest version / module-info string we accept (the compiler's own is ~1 KB).
const MAX_STRING: u64 = 1 << 20;

/// A Go release number. `go1.24.11` is `{1, 24, 11}`; pre-releases (`go1.25rc1`)
/// and development builds count as patch 0 of their minor release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        GoVersion { major, minor, patch }
    }

    /// Parses `go1.24.11`, `go1.21rc2`, `go1.26-devel_abcdef`, `devel go1.27-abc…`.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let s = s.strip_prefix("devel ").unwrap_or(s);
        let rest = s.strip_prefix("go")?;
        let mut nums = [0u32; 3];
        let mut parts = 0;
        for (i, part) in rest.split('.').take(3).enumerate() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            nums[i] = digits.parse().ok()?;
            parts = i + 1;
            if digits.len() != part.len() {
                break;
            }
        }
        (parts >= 2).then_some(GoVersion::new(nums[0], nums[1], nums[2]))
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        *self >= GoVersion::new(major, minor, 0)
    }
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A module line of the build info.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    /// `=>` replacement (path, version) when the module was replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<(String, String)>,
}

/// What `.go.buildinfo` says (the oracle is `go version -m`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct BuildInfo {
    pub go_version: String,
    /// Package path of the main package (`path` line).
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` lines as (key, value), e.g. ("-ldflags", "-s -w"), ("CGO_ENABLED", "0").
    pub settings: Vec<(String, String)>,
}

impl BuildInfo {
    pub(crate) fn read(file: &[u8], elf: &ElfInfo) -> Result<BuildInfo> {
        let section = elf.section(".go.buildinfo").ok_or(GobinError::NotGo { reason: "no .go.buildinfo section" })?;
        let bytes = elf.section_bytes(file, section, ".go.buildinfo")?;
        let (version, modinfo) = read_strings(file, elf, bytes)?;
        let version = String::from_utf8_lossy(version).into_owned();
        if version.is_empty() {
            return Err(GobinError::NotGo { reason: "empty Go version in .go.buildinfo" });
        }
        let mut info = parse_modinfo(&String::from_utf8_lossy(strip_sentinels(modinfo)));
        info.go_version = version;
        Ok(info)
    }
}

fn read_strings<'a>(file: &'a [u8], elf: &ElfInfo, b: Bytes<'a>) -> Result<(&'a [u8], &'a [u8])> {
    if b.bytes(0, MAGIC.len() as u64).ok() != Some(&MAGIC[..]) {
        return Err(GobinError::NotGo { reason: ".go.buildinfo does not start with the build info magic" });
    }
    let ptr_size = b.u8(14)?;
    let flags = b.u8(15)?;
    if flags & FLAG_INLINE_STRINGS != 0 {
        let (version, next) = inline_string(b, HEADER_SIZE)?;
        let (modinfo, _) = inline_string(b, next)?;
        return Ok((version, modinfo));
    }
    if flags & FLAG_BIG_ENDIAN != 0 {
        return Err(b.malformed(15, "big-endian build info"));
    }
    let version = pointed_string(file, elf, b.uptr(16, ptr_size)?, ptr_size)?;
    let modinfo = pointed_string(file, elf, b.uptr(16 + u64::from(ptr_size), ptr_size)?, ptr_size)?;
    Ok((version, modinfo))
}

fn inline_string<'a>(b: Bytes<'a>, off: u64) -> Result<(&'a [u8], u64)> {
    let (len, start) = b.uvarint(off)?;
    if len > MAX_STRING {
        return Err(b.malformed(off, format!("string length {len} is implausible")));
    }
    let s = b.bytes(start, len)?;
    Ok((s, start + len))
}

/// A Go `string` header (`data, len`) at `addr`, pre-1.18 layout.
fn pointed_string<'a>(file: &'a [u8], elf: &ElfInfo, addr: u64, ptr_size: u8) -> Result<&'a [u8]> {
    let hdr = elf.read_addr(file, addr, 2 * u64::from(ptr_size), "build info string header")?;
    let data = hdr.uptr(0, ptr_size)?;
    let len = hdr.uptr(u64::from(ptr_size), ptr_size)?;
    if len > MAX_STRING {
        return Err(hdr.malformed(0, format!("string length {len} is implausible")));
    }
    let s = elf.read_addr(file, data, len, "build info string")?;
    Ok(s.data())
}

/// Drops the 16-byte sentinels around the module info, as `debug/buildinfo` does.
fn strip_sentinels(b: &[u8]) -> &[u8] {
    if b.len() >= 33 && b[b.len() - 17] == b'\n' { &b[16..b.len() - 16] } else { &[] }
}

pub(crate) fn parse_modinfo(text: &str) -> BuildInfo {
    let mut info = BuildInfo::default();
    let mut last_is_main = false;
    for line in text.lines() {
        let mut fields = line.split('\t');
        let kind = fields.next().unwrap_or("");
        let a = fields.next().unwrap_or("").to_string();
        let v = fields.next().unwrap_or("").to_string();
        match kind {
            "path" => info.path = Some(a),
            "mod" => {
                info.main = Some(Module { path: a, version: v, replaced_by: None });
                last_is_main = true;
            }
            "dep" => {
                info.deps.push(Module { path: a, version: v, replaced_by: None });
                last_is_main = false;
            }
            "=>" => {
                let target = if last_is_main { info.main.as_mut() } else { info.deps.last_mut() };
                if let Some(m) = target {
                    m.replaced_by = Some((a, v));
                }
            }
            "build" => {
                let (k, val) = a.split_once('=').unwrap_or((a.as_str(), ""));
                info.settings.push((k.to_string(), val.trim_matches('"').to_string()));
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(GoVersion::parse("go1.24.11"), Some(GoVersion::new(1, 24, 11)));
        assert_eq!(GoVersion::parse("go1.21rc2"), Some(GoVersion::new(1, 21, 0)));
        assert_eq!(GoVersion::parse("go1.19"), Some(GoVersion::new(1, 19, 0)));
        assert_eq!(GoVersion::parse("devel go1.27-abc123 Mon"), Some(GoVersion::new(1, 27, 0)));
        assert_eq!(GoVersion::parse("go1.26-devel_deadbeef"), Some(GoVersion::new(1, 26, 0)));
        assert_eq!(GoVersion::parse("gopher"), None);
        assert!(GoVersion::new(1, 9, 0) < GoVersion::new(1, 19, 8));
    }

    #[test]
    fn parses_modinfo() {
        let text = "path\texample.com/app/cmd/x\nmod\texample.com/app\t(devel)\t\n\
                    dep\texample.com/dep\tv0.0.0\t\n=>\t../dep\t(devel)\t\n\
                    dep\tgolang.org/x/sys\tv0.1.0\th1:abc=\n\
                    build\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\n";
        let info = parse_modinfo(text);
        assert_eq!(info.path.as_deref(), Some("example.com/app/cmd/x"));
        assert_eq!(info.main.as_ref().unwrap().path, "example.com/app");
        assert_eq!(info.deps.len(), 2);
        assert_eq!(info.deps[0].replaced_by, Some(("../dep".into(), "(devel)".into())));
        assert_eq!(info.settings[0], ("-ldflags".into(), "-s -w".into()));
        assert_eq!(info.settings[1], ("CGO_ENABLED".into(), "0".into()));
    }

    /// Before Go 1.18: pointers at offset 16 to Go string headers elsewhere.
    #[test]
    fn reads_pointer_header() {
        let base = 0x10000u64;
        let mut file = vec![0u8; 0x200];
        file[..14].copy_from_slice(MAGIC);
        file[14] = 8;
        file[15] = 0;
        let put = |file: &mut Vec<u8>, off: usize, v: u64| file[off..off + 8].copy_from_slice(&v.to_le_bytes());
        put(&mut file, 16, base + 0x40); // version string header
        put(&mut file, 24, base + 0x50); // modinfo string header
        put(&mut file, 0x40, base + 0x80);
        put(&mut file, 0x48, 9);
        put(&mut file, 0x50, base + 0x90);
        put(&mut file, 0x58, 0);
        file[0x80..0x89].copy_from_slice(b"go1.17.13");
        let elf = ElfInfo::with_section_for_tests(".go.buildinfo", base, 0, 0x200);
        let b = Bytes::new(&file, 0, "t");
        let (v, m) = read_strings(&file, &elf, b).unwrap();
        assert_eq!((v, m), (&b"go1.17.13"[..], &b""[..]));
        put(&mut file, 0x48, u64::MAX);
        assert!(read_strings(&file, &elf, Bytes::new(&file, 0, "t")).is_err());
    }

    #[test]
    fn reads_inline_header() {
        let mut blob = MAGIC.to_vec();
        blob.extend_from_slice(&[8, FLAG_INLINE_STRINGS]);
        blob.resize(32, 0);
        blob.push(9);
        blob.extend_from_slice(b"go1.24.11");
        blob.push(0);
        let elf = ElfInfo::empty_for_tests();
        let (v, m) = read_strings(&[], &elf, Bytes::new(&blob, 0, "t")).unwrap();
        assert_eq!((v, m), (&b"go1.24.11"[..], &b""[..]));
        blob[32] = 200;
        assert!(read_strings(&[], &elf, Bytes::new(&blob, 0, "t")).is_err());
    }
}
