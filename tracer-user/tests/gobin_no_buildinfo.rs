//! Go binaries without `.go.buildinfo` (as some distributors ship them): the fixture
//! of every installed toolchain (stripped and not, plus arm64 and PIE builds of the
//! oldest and newest) with the section removed by `objcopy` must give the version
//! `go version` gives for the original, the same modules, and the same layout and
//! probe plan. With the version string unreadable as well, only the release family
//! is known: tracing is refused unless DWARF gives the runtime offsets.

mod gobin_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use gobin_support::*;
use tracer_user::gobin::{GoBinary, GoVersion, Scope, VersionSource};

fn objcopy_available() -> bool {
    Command::new("objcopy")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `bin` without its `.go.buildinfo` section, next to it.
fn without_buildinfo(bin: &Path) -> PathBuf {
    let out = bin.with_file_name(format!(
        "{}-nobuildinfo",
        bin.file_name().unwrap().to_string_lossy()
    ));
    // Both tests copy the same builds at once: each copy gets its own scratch name.
    static COPIES: AtomicU32 = AtomicU32::new(0);
    let tmp = out.with_extension(format!(
        "tmp{}-{}",
        std::process::id(),
        COPIES.fetch_add(1, Ordering::Relaxed)
    ));
    // The host's binutils may not know the binary's machine (arm64 on an amd64
    // host): the generic ELF target then does the same, but writes e_machine 0.
    let native = Command::new("objcopy")
        .args(["--remove-section", ".go.buildinfo"])
        .arg(bin)
        .arg(&tmp)
        .output();
    if !native.expect("run objcopy").status.success() {
        let res = Command::new("objcopy")
            .args([
                "-I",
                "elf64-little",
                "-O",
                "elf64-little",
                "--remove-section",
                ".go.buildinfo",
            ])
            .arg(bin)
            .arg(&tmp)
            .output()
            .expect("run objcopy");
        assert!(
            res.status.success(),
            "objcopy {}: {}",
            bin.display(),
            String::from_utf8_lossy(&res.stderr)
        );
        let machine = std::fs::read(bin).expect("read")[18..20].to_vec();
        let mut copy = std::fs::read(&tmp).expect("read copy");
        copy[18..20].copy_from_slice(&machine);
        std::fs::write(&tmp, copy).expect("write copy");
    }
    std::fs::rename(&tmp, &out).expect("rename");
    out
}

fn plan_json(bin: &GoBinary) -> serde_json::Value {
    serde_json::to_value(bin.probe_plan(&Scope::Default)).expect("plan serializes")
}

#[test]
fn version_and_plan_without_buildinfo() {
    if !objcopy_available() {
        eprintln!("SKIP version_and_plan_without_buildinfo: objcopy (binutils) not installed");
        return;
    }
    let mut checked = 0;
    for build in all_builds("version_and_plan_without_buildinfo") {
        for (orig, stripped) in [(&build.plain, false), (&build.stripped, true)] {
            let ctx = format!("{} stripped={stripped}", build.label());
            let copy = without_buildinfo(orig);
            let bin = GoBinary::open(&copy).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let want = GoBinary::open(orig).expect("original opens");
            assert_eq!(bin.go_version(), go_version_m(&build.tc, orig), "{ctx}");
            assert_eq!(bin.version(), want.version(), "{ctx}");
            let source = if stripped {
                VersionSource::StringHeader
            } else {
                VersionSource::Symbol
            };
            assert_eq!(bin.version_source(), source, "{ctx}");
            assert_eq!(want.version_source(), VersionSource::BuildInfo, "{ctx}");
            assert_eq!(bin.main_module(), Some("example.com/ghostfix"), "{ctx}");
            assert_eq!(bin.deps(), want.deps(), "{ctx}");
            assert_eq!(bin.layout(), want.layout(), "{ctx}");
            assert_eq!(plan_json(&bin), plan_json(&want), "{ctx}");
            let report = bin.report(&Scope::Default);
            assert!(
                report
                    .to_string()
                    .contains("version from runtime.buildVersion"),
                "{ctx}"
            );
            checked += 1;
        }
    }
    eprintln!("checked {checked} binaries without .go.buildinfo");
}

/// The binary's bytes with every copy of its version string defaced.
fn deface_version(bytes: &[u8], version: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let needle = version.as_bytes();
    let mut i = 0;
    while let Some(pos) = out[i..].windows(needle.len()).position(|w| w == needle) {
        out[i + pos] = b'x';
        i += pos + needle.len();
    }
    out
}

#[test]
fn release_family_only() {
    if !objcopy_available() {
        eprintln!("SKIP release_family_only: objcopy (binutils) not installed");
        return;
    }
    for tc in toolchains_or_skip("release_family_only") {
        for stripped in [false, true] {
            let orig = build_fixture(&tc, stripped);
            let ctx = format!("{} stripped={stripped}", tc.version);
            let real = GoBinary::open(&orig).expect("original opens").version();
            let bytes = std::fs::read(without_buildinfo(&orig)).expect("read");
            let bin = GoBinary::from_bytes(deface_version(&bytes, &go_version_m(&tc, &orig)))
                .expect(&ctx);
            assert_eq!(bin.version_source(), VersionSource::Pclntab, "{ctx}");
            assert!(
                bin.go_version().ends_with('+'),
                "{ctx}: {}",
                bin.go_version()
            );
            assert!(
                bin.version() <= real,
                "{ctx}: family start {} after {real}",
                bin.version()
            );
            let family_start = if real.at_least(1, 26) {
                GoVersion::new(1, 26, 0)
            } else if real.at_least(1, 20) {
                GoVersion::new(1, 20, 0)
            } else {
                GoVersion::new(1, 18, 0)
            };
            assert_eq!(bin.version(), family_start, "{ctx}");
            assert_eq!(bin.main_module(), Some("example.com/ghostfix"), "{ctx}");
            // DWARF still gives the offsets; without it the table row is a guess.
            assert_eq!(bin.layout().verified, !stripped, "{ctx}");
            let report = bin.report(&Scope::Default).to_string();
            assert!(report.contains("pclntab magic only"), "{ctx}: {report}");
        }
    }
}
