//! The third-party Go programs of `cargo xtask bench-real`, as Debian ships them:
//! each package is fetched with `apt-get download` and unpacked with `dpkg-deb -x`
//! into .cache/bench-programs/NAME/, nothing installed system-wide, once (a marker
//! file records the versions unpacked).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::step::{output, run};

/// How the bench drives a program.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Long-running, answers HTTP on 127.0.0.1: traced with `attach` under load.
    Server,
    /// Runs to completion: traced with `run`.
    Batch,
}

pub struct Program {
    pub name: &'static str,
    pub kind: Kind,
    /// Debian packages to unpack: the program's and any shared library it loads.
    pub packages: &'static [&'static str],
    /// The executable, relative to the unpacked tree.
    pub binary: &'static str,
}

/// Every program, in the order the bench runs them. Those whose default plan does not
/// fit ghostrace's probe table yet are kept: their rows say so, and they are measured
/// as soon as it does.
pub const PROGRAMS: &[Program] = &[
    Program { name: "etcd", kind: Kind::Server, packages: &["etcd-server"], binary: "usr/bin/etcd" },
    Program { name: "influxd", kind: Kind::Server, packages: &["influxdb"], binary: "usr/bin/influxd" },
    Program { name: "restic", kind: Kind::Batch, packages: &["restic"], binary: "usr/bin/restic" },
    Program { name: "caddy", kind: Kind::Server, packages: &["caddy"], binary: "usr/bin/caddy" },
    Program { name: "prometheus", kind: Kind::Server, packages: &["prometheus"], binary: "usr/bin/prometheus" },
    Program { name: "hugo", kind: Kind::Batch, packages: &["hugo", "libsass1"], binary: "usr/bin/hugo" },
];

/// An unpacked program.
pub struct Installed {
    pub root: PathBuf,
    pub binary: PathBuf,
    /// "package version" of each unpacked package.
    pub versions: Vec<String>,
}

impl Installed {
    /// The main package's Debian version.
    pub fn version(&self) -> &str {
        self.versions.first().and_then(|v| v.split_whitespace().nth(1)).unwrap_or("?")
    }

    /// Library directories of the unpacked tree, for LD_LIBRARY_PATH.
    pub fn library_path(&self) -> String {
        ["usr/lib/x86_64-linux-gnu", "usr/lib"].iter().map(|d| self.root.join(d).display().to_string()).collect::<Vec<_>>().join(":")
    }
}

const MARKER: &str = ".unpacked";

/// Where the programs are unpacked.
pub fn dir() -> PathBuf {
    crate::cache().join("bench-programs")
}

/// Unpacks `program`'s packages unless an earlier run did.
pub fn install(program: &Program) -> Result<Installed> {
    let root = dir().join(program.name);
    let marker = root.join(MARKER);
    if !marker.exists() {
        unpack(program, &root).with_context(|| format!("unpacking the Debian packages {} of {}", program.packages.join(" "), program.name))?;
    }
    let versions = std::fs::read_to_string(&marker)?.lines().map(str::to_string).collect();
    let binary = root.join(program.binary);
    if !binary.is_file() {
        bail!("{} is not in the packages {} (remove {} to unpack them again)", program.binary, program.packages.join(" "), root.display());
    }
    Ok(Installed { root, binary, versions })
}

/// Downloads and unpacks under a temporary name, renamed once complete.
fn unpack(program: &Program, root: &Path) -> Result<()> {
    let partial = root.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let debs = partial.join("debs");
    std::fs::create_dir_all(&debs)?;
    let download = || run(Command::new("apt-get").args(["download", "-qq", "-o", "APT::Sandbox::User=root"]).args(program.packages).current_dir(&debs));
    if download().is_err() {
        // A fresh machine has no package lists yet.
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        download()?;
    }
    let mut versions = Vec::new();
    for package in program.packages {
        let deb = std::fs::read_dir(&debs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb")))
            .with_context(|| format!("apt-get download left no {package}_*.deb"))?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&partial))?;
        versions.push(output(Command::new("dpkg-deb").args(["-f"]).arg(&deb).args(["Package", "Version"]))?.replace('\n', " ").replace("Package: ", "").replace("Version: ", "").trim().to_string());
    }
    std::fs::remove_dir_all(&debs)?;
    std::fs::write(partial.join(MARKER), versions.join("\n") + "\n")?;
    let _ = std::fs::remove_dir_all(root);
    std::fs::rename(&partial, root)?;
    Ok(())
}

/// Installs wrk, the load generator, with apt when it is missing.
pub fn load_generator() -> Result<()> {
    if crate::compare::which("wrk") {
        return Ok(());
    }
    run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", "wrk"]).env("DEBIAN_FRONTEND", "noninteractive"))
        .or_else(|_| {
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            run(Command::new("apt-get").args(["install", "-y", "-qq", "--no-install-recommends", "wrk"]).env("DEBIAN_FRONTEND", "noninteractive"))
        })
}
