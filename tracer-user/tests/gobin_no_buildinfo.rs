//! Go binaries without `.go.buildinfo` (as some distributors ship them): the fixture
//! of every installed toolchain (stripped and not, plus arm64 and PIE builds of the
//! oldest and newest) with the section removed by `objcopy` must give the version
//! `go version` gives for the original, the same modules, and the same layout and
//! probe plan. With the version string unreadable as well, only the release family
//! is known: tracing is refused unless DWARF gives the runtime offsets. And the real
//! thing: a third-party binary shipped that way, fetched from npm at test time
//! (skipped with a message offline or without npm).

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

fn json(v: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes")
}

fn plan_json(bin: &GoBinary) -> serde_json::Value {
    serde_json::to_value(bin.probe_plan(&Scope::Default)).expect("plan serializes")
}

#[test]
fn version_and_plan_without_buildinfo() {
    if !objcopy_available() {
        support::skip("version_and_plan_without_buildinfo", "objcopy (binutils) not installed");
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
        support::skip("release_family_only", "objcopy (binutils) not installed");
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
            let family_start = if real.at_least(1, 27) {
                GoVersion::new(1, 27, 0)
            } else if real.at_least(1, 26) {
                GoVersion::new(1, 26, 0)
            } else if real.at_least(1, 20) {
                GoVersion::new(1, 20, 0)
            } else {
                GoVersion::new(1, 18, 0)
            };
            assert_eq!(bin.version(), family_start, "{ctx}");
            assert_eq!(bin.main_module(), Some("example.com/ghostfix"), "{ctx}");
            // The family fixes the call conventions and moduledata's layout: the
            // same call sites and inlined Remove bodies are found.
            let plan = bin.probe_plan(&Scope::Default);
            let want = GoBinary::open(&orig).expect("original opens").probe_plan(&Scope::Default);
            assert_eq!(json(&plan.probes), json(&want.probes), "{ctx}");
            assert_eq!(json(&plan.list_sites), json(&want.list_sites), "{ctx}");
            // DWARF still gives the offsets; without it the table row is a guess.
            assert_eq!(bin.layout().verified, !stripped, "{ctx}");
            let report = bin.report(&Scope::Default).to_string();
            assert!(report.contains("pclntab magic only"), "{ctx}: {report}");
        }
    }
}

/// The npm package of esbuild (a JavaScript bundler written in Go) ships its Linux
/// binary without `.go.buildinfo`.
const NPM_PACKAGE: &str = "@esbuild/linux-x64@0.28.2";

/// The binary of [`NPM_PACKAGE`], fetched once with `npm pack` into the scratch
/// directory; None (with the reason printed) without npm or the registry.
fn npm_binary(test: &str) -> Option<PathBuf> {
    let dir = scratch_dir().join("npm");
    let bin = dir.join("package/bin/esbuild");
    if bin.exists() {
        return Some(bin);
    }
    if std::env::var_os("GHOSTRACE_OFFLINE").is_some() {
        support::skip(test, "GHOSTRACE_OFFLINE is set");
        return None;
    }
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let packed = Command::new("timeout")
        .args(["120", "npm", "pack", "--silent", NPM_PACKAGE, "--pack-destination"])
        .arg(&dir)
        .output();
    let name = match packed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            support::skip(test, &format!("npm pack {NPM_PACKAGE} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
            return None;
        }
        Err(e) => {
            support::skip(test, &format!("npm not available ({e})"));
            return None;
        }
    };
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dir.join(&name))
        .arg("-C")
        .arg(&dir)
        .arg("package/bin/esbuild")
        .status()
        .expect("run tar");
    assert!(status.success(), "cannot unpack {name}");
    Some(bin)
}

#[test]
fn real_binary_without_buildinfo() {
    let Some(path) = npm_binary("real_binary_without_buildinfo") else { return };
    let bin = GoBinary::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = std::fs::read(&path).expect("read");
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"\xff Go buildinf:"), "the package now ships build info: pick another");
    assert_eq!(bin.version_source(), VersionSource::StringHeader);
    // The one version string in the file is the one found.
    assert!(has(bin.go_version().as_bytes()) && bin.version().at_least(1, 20), "{}", bin.go_version());
    assert_eq!(bin.main_module(), Some("github.com/evanw/esbuild"));
    assert!(bin.layout().verified);
    let plan = bin.probe_plan(&Scope::Default);
    assert!(plan.functions.iter().any(|f| f.name == "runtime.growslice"));
    assert!(plan.probes.iter().all(|p| !p.package.starts_with("runtime")), "default scope took the runtime");
    assert!(plan.probes.len() > 1000, "{} probes", plan.probes.len());
}
