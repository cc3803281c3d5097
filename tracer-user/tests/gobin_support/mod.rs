//! Shared helpers of the gobin integration tests: locating Go toolchains, building
//! the fixture once per toolchain, and running the Go tools used as oracles.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use crate::support::Toolchain;

pub mod exercise;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// Scratch directory for built fixtures and Go caches, under the cargo target dir.
pub fn scratch_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() { target } else { workspace_root().join(target) };
    target.join("gobin-fixtures")
}

/// The toolchains the bootstrap installs (one list for every test tier).
pub fn toolchains() -> Vec<Toolchain> {
    crate::support::toolchains()
}

/// Toolchains, or a [`crate::support::skip`] and an empty list.
pub fn toolchains_or_skip(test: &str) -> Vec<Toolchain> {
    let tcs = toolchains();
    if tcs.is_empty() {
        crate::support::skip(test, "no Go toolchain installed (run the bootstrap)");
    }
    tcs
}

/// Only the toolchains whose label starts with one of `labels`.
pub fn select(tcs: Vec<Toolchain>, labels: &[&str]) -> Vec<Toolchain> {
    tcs.into_iter().filter(|t| labels.iter().any(|l| t.version == *l || t.version.starts_with(&format!("{l}.")))).collect()
}

/// The fixture sources.
pub fn fixture_dir() -> PathBuf {
    workspace_root().join("testdata/fixtures/gobin")
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// How the fixture is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// linux/amd64, default build mode.
    Amd64,
    /// linux/arm64 (cross-compiled).
    Arm64,
    /// linux/amd64 `-buildmode=pie`.
    Pie,
}

impl Variant {
    fn dir(self) -> &'static str {
        match self {
            Variant::Amd64 => "amd64",
            Variant::Arm64 => "arm64",
            Variant::Pie => "pie",
        }
    }
}

/// Builds `testdata/fixtures/gobin/app` with `tc` (stripped: `-ldflags=-s -w`).
pub fn build_fixture(tc: &Toolchain, stripped: bool) -> PathBuf {
    build_variant(tc, Variant::Amd64, stripped)
}

/// Builds the fixture as `variant`, reusing an earlier build newer than every
/// source file. Atomic rename, so test binaries running at once never see a
/// half-written file.
pub fn build_variant(tc: &Toolchain, variant: Variant, stripped: bool) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch_dir().join(&tc.version).join(variant.dir());
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let out = dir.join(if stripped { "ghostfix-stripped" } else { "ghostfix" });
    let newest_source = newest_mtime(&fixture_dir());
    if let (Ok(meta), Some(src)) = (std::fs::metadata(&out), newest_source)
        && meta.modified().is_ok_and(|m| m >= src)
    {
        return out;
    }
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), out.file_name().unwrap().to_string_lossy()));
    let mut cmd = tc.command();
    cmd.current_dir(fixture_dir().join("app")).args(["build", "-o"]).arg(&tmp);
    match variant {
        Variant::Amd64 => cmd.env("GOARCH", "amd64"),
        Variant::Arm64 => cmd.env("GOARCH", "arm64"),
        Variant::Pie => cmd.env("GOARCH", "amd64").arg("-buildmode=pie"),
    };
    if stripped {
        cmd.arg("-ldflags=-s -w");
    }
    let res = cmd.arg(".").output().expect("run go build");
    assert!(
        res.status.success(),
        "go build with {} ({variant:?}) failed: {}",
        tc.version,
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename fixture");
    out
}

/// One fixture build to check: toolchain, variant, unstripped and stripped paths.
pub struct Build {
    pub tc: Toolchain,
    /// Toolchain whose `addr2line` reads this build: `tc`, except for PIE builds,
    /// whose `.data.rel.ro.gopclntab` Go 1.19's tools do not look for (the newest
    /// toolchain's `cmd/internal/objfile` does).
    pub line_oracle: Toolchain,
    pub variant: Variant,
    pub plain: PathBuf,
    pub stripped: PathBuf,
}

impl Build {
    pub fn label(&self) -> String {
        format!("{} {:?}", self.tc.version, self.variant)
    }
}

/// The file bytes objdump shows for an instruction (arm64 words are little-endian).
pub fn objdump_bytes(insn: &ObjdumpInsn, variant: Variant) -> Vec<u8> {
    if variant == Variant::Arm64 {
        return u32::from_str_radix(&insn.hex, 16).expect("word").to_le_bytes().to_vec();
    }
    (0..insn.hex.len() / 2).map(|i| u8::from_str_radix(&insn.hex[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// The amd64 fixture for every toolchain, plus arm64 and PIE builds for the
/// oldest and newest toolchain (enough to cover both pclntab eras cheaply).
pub fn all_builds(test: &str) -> Vec<Build> {
    let tcs = toolchains_or_skip(test);
    let mut out = Vec::new();
    for (i, tc) in tcs.iter().enumerate() {
        let mut variants = vec![Variant::Amd64];
        if i == 0 || i + 1 == tcs.len() {
            variants.extend([Variant::Arm64, Variant::Pie]);
        }
        for variant in variants {
            let plain = build_variant(tc, variant, false);
            let stripped = build_variant(tc, variant, true);
            let line_oracle = if variant == Variant::Pie { tcs[tcs.len() - 1].clone() } else { tc.clone() };
            out.push(Build { tc: tc.clone(), line_oracle, variant, plain, stripped });
        }
    }
    out
}

fn newest_mtime(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let m = if e.path().is_dir() { newest_mtime(&e.path()) } else { e.metadata().ok()?.modified().ok() };
        newest = newest.max(m);
    }
    newest
}

/// Output of `go tool TOOL BIN`, cached next to the built fixtures (keyed by the
/// binary's path and modification time) so several tests share one run.
pub fn tool_output(tc: &Toolchain, tool: &str, bin: &Path) -> String {
    let key = format!(
        "{}-{}",
        bin.display(),
        std::fs::metadata(bin).and_then(|m| m.modified()).map(|t| format!("{t:?}")).unwrap_or_default()
    );
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let dir = scratch_dir().join("tool-cache");
    std::fs::create_dir_all(&dir).expect("cache dir");
    let file = dir.join(format!("{}-{tool}-{hash:016x}.txt", tc.version));
    if let Ok(text) = std::fs::read_to_string(&file) {
        return text;
    }
    let text = tc.run(&["tool", tool, bin.to_str().unwrap()]);
    // Tests of one binary run on several threads: each write gets its own file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{}-{n}-{hash:016x}-{tool}", std::process::id()));
    std::fs::write(&tmp, &text).expect("write cache");
    std::fs::rename(&tmp, &file).expect("rename cache");
    text
}

/// `go tool addr2line BIN` for `pcs`: (function, "file:line") per pc.
pub fn addr2line(tc: &Toolchain, bin: &Path, pcs: &[u64]) -> Vec<(String, String)> {
    use std::io::Write;
    let mut child = tc
        .command()
        .args(["tool", "addr2line", bin.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn addr2line");
    let input: String = pcs.iter().map(|pc| format!("{pc:#x}\n")).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("addr2line");
    writer.join().expect("writer").expect("write pcs");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(2).map(|c| (c[0].to_string(), c.get(1).copied().unwrap_or("").to_string())).collect()
}

/// `go tool nm` text symbols (types T and t) as (name, address), with the `.abi0`
/// suffix of assembly functions removed (the function table names them without it).
pub fn nm_text_symbols(tc: &Toolchain, bin: &Path) -> BTreeSet<(String, u64)> {
    let out = tool_output(tc, "nm", bin);
    let mut syms = BTreeSet::new();
    for line in out.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(kind)) = (f.next(), f.next()) else { continue };
        let name: Vec<&str> = f.collect();
        if (kind == "T" || kind == "t")
            && !name.is_empty()
            && let Ok(a) = u64::from_str_radix(addr, 16)
        {
            let name = name.join(" ");
            syms.insert((elide_brackets(name.strip_suffix(".abi0").unwrap_or(&name)), a));
        }
    }
    syms
}

/// One instruction line of `go tool objdump`.
#[derive(Clone, Debug)]
pub struct ObjdumpInsn {
    pub function: String,
    /// Innermost source position, `file.go:line`.
    pub pos: String,
    pub addr: u64,
    /// Encoding as printed: bytes in order (amd64) or the instruction word (arm64).
    pub hex: String,
    pub text: String,
}

/// Every instruction of `go tool objdump BIN`.
pub fn objdump(tc: &Toolchain, bin: &Path) -> Vec<ObjdumpInsn> {
    let out = tool_output(tc, "objdump", bin);
    let mut func = String::new();
    let mut insns = Vec::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("TEXT ") {
            func = rest.split("(SB)").next().unwrap_or("").to_string();
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).filter(|s| !s.is_empty()).collect();
        if fields.len() >= 4
            && let Some(addr) = fields[1].strip_prefix("0x").and_then(|a| u64::from_str_radix(a, 16).ok())
        {
            insns.push(ObjdumpInsn {
                function: func.clone(),
                pos: fields[0].to_string(),
                addr,
                hex: fields[2].to_string(),
                text: fields[3..].join(" "),
            });
        }
    }
    insns
}

/// The version `go version -m` reports.
pub fn go_version_m(tc: &Toolchain, bin: &Path) -> String {
    let out = tc.run(&["version", "-m", bin.to_str().unwrap()]);
    let first = out.lines().next().unwrap_or("");
    first.rsplit(": ").next().unwrap_or("").trim().to_string()
}

/// Go 1.19's linker writes function names into the pclntab with the contents of
/// top-level brackets (type arguments, array lengths) replaced by `...`; later
/// versions and nm write them in full. Comparisons elide both sides.
pub fn elide_brackets(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    out.push_str("[...");
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(']');
                }
            }
            // nm prints the middle dot of local type names (`untracedG·4`) as '.'.
            '·' if depth == 0 => out.push('.'),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Our frame's position in addr2line's format. Pcs without line information are
/// printed by addr2line as ":-1" or ":-2" (linker marker symbols); gobin reports
/// them with an empty file, which matches any of those.
pub fn position(frame: &tracer_user::gobin::Frame, addr2line_pos: &str) -> String {
    if frame.file.is_empty() && addr2line_pos.starts_with(':') {
        addr2line_pos.to_string()
    } else {
        format!("{}:{}", frame.file, frame.line)
    }
}
