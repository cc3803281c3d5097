//! The boot tier's kernels: Debian cloud kernel images fetched with apt, only their
//! vmlinuz kept under .cache/kernels/SERIES/ (never installed into the host's /boot).

use std::{path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::step::{output, run};

/// The file naming the kernels, one `SERIES PACKAGE` a line.
const LIST: &str = "xtask/boot-kernels.txt";

/// Fetches each listed kernel not cached yet (idempotent). `package` in its directory
/// names the package its vmlinuz came from; a different pin fetches again.
pub fn install() -> Result<()> {
    let list = std::fs::read_to_string(crate::root().join(LIST)).with_context(|| format!("read {LIST}"))?;
    for line in list.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
        let Some((series, package)) = line.split_once(char::is_whitespace) else {
            bail!("{LIST}: `{line}` is not `SERIES PACKAGE`");
        };
        let dir = crate::cache().join("kernels").join(series);
        let pinned = package.trim();
        let cached = std::fs::read_to_string(dir.join("package")).unwrap_or_default();
        if cached.lines().next() == Some(pinned) && dir.join("vmlinuz").exists() {
            continue;
        }
        let chosen = available(series, pinned)?;
        fetch(&chosen, &dir)?;
        if chosen != pinned {
            // Recorded under the pinned name so the next bootstrap does not fetch again.
            std::fs::write(dir.join("package"), format!("{pinned}\n{chosen} (the archive no longer has the pinned one)\n"))?;
        }
    }
    Ok(())
}

/// The pinned package when apt knows it, else the newest of its series.
fn available(series: &str, pinned: &str) -> Result<String> {
    let known = |name: &str| output(Command::new("apt-cache").args(["show", "--no-all-versions", name])).is_ok();
    if known(pinned) {
        return Ok(pinned.to_string());
    }
    let pattern = format!("^linux-image-{}[.-].*-cloud-amd64-unsigned$", series.replace('.', "\\."));
    let names = output(Command::new("apt-cache").args(["search", "--names-only"]).arg(&pattern))?;
    let newest = names
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by(|a, b| version_key(a).cmp(&version_key(b)))
        .with_context(|| format!("apt knows neither {pinned} nor any {pattern}"))?
        .to_string();
    eprintln!("xtask: {pinned} is gone from the archive; the boot tier takes {newest} (pin it in {LIST})");
    Ok(newest)
}

/// The numbers in a package name, for ordering ABIs and patch levels numerically.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// Downloads `package`, unpacks it aside and keeps its vmlinuz and config in `dir`.
fn fetch(package: &str, dir: &Path) -> Result<()> {
    let work = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    // apt's sandbox user cannot write into a root-only cache directory.
    run(Command::new("apt-get").args(["download", "-qq", "-o", "APT::Sandbox::User=root", package]).current_dir(&work))?;
    let deb = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let tree = work.join("tree");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
    let boot = tree.join("boot");
    let file = |prefix: &str| -> Result<std::path::PathBuf> {
        std::fs::read_dir(&boot)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .with_context(|| format!("{package} has no boot/{prefix}*"))
    };
    let kept = work.join("kept");
    std::fs::create_dir_all(&kept)?;
    std::fs::rename(file("vmlinuz-")?, kept.join("vmlinuz"))?;
    std::fs::rename(file("config-")?, kept.join("config"))?;
    std::fs::write(kept.join("package"), format!("{package}\n"))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.parent().expect("kernels dir"))?;
    std::fs::rename(&kept, dir)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
