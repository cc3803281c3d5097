//! The bounded fuzz run of `test`: the Go binary readers' fuzz target
//! (tracer-user/fuzz) under cargo-fuzz, seeded with real Go binaries built from the
//! gobin fixture (amd64 with and without symbols, arm64, PIE), for a fixed time.
//! A crash or a hang fails the run; libFuzzer leaves the input in
//! tracer-user/fuzz/artifacts/.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::{golang, root, step::run};

/// How long each `test` run fuzzes (CI runs it on every test run).
const SECONDS: u32 = 60;
/// An input that takes longer is a hang.
const TIMEOUT_SECONDS: u32 = 10;
const TARGET: &str = "gobin";
/// Larger than every seed (the fixture builds are 1.5 to 2.6 MB).
const MAX_LEN: usize = 4 << 20;

/// Where the bootstrap installs cargo-fuzz.
pub fn cargo_fuzz_root() -> PathBuf {
    crate::cache().join("cargo-fuzz")
}

/// Builds the seeds (once per toolchain version) into a directory of their own.
fn seeds() -> Result<PathBuf> {
    let (version, go) = golang::toolchains().pop().expect("at least one toolchain");
    let dir = root().join("target/fuzz-seeds").join(&version);
    std::fs::create_dir_all(&dir)?;
    let variants: [(&str, &str, &[&str]); 4] = [
        ("amd64", "amd64", &[]),
        ("amd64-stripped", "amd64", &["-ldflags=-s -w"]),
        ("arm64-stripped", "arm64", &["-ldflags=-s -w"]),
        ("amd64-pie", "amd64", &["-buildmode=pie"]),
    ];
    for (name, arch, flags) in variants {
        let out = dir.join(name);
        if !out.exists() {
            run(golang::go_command(&go)
                .env("GOOS", "linux")
                .env("GOARCH", arch)
                .args(["build", "-trimpath", "-o"])
                .arg(&out)
                .args(flags)
                .arg(".")
                .current_dir(root().join("testdata/fixtures/gobin/app")))?;
        }
    }
    Ok(dir)
}

/// Fuzzes the target for [`SECONDS`] from the seeds.
pub fn run_bounded(ebpf_object: &std::path::Path) -> Result<()> {
    let seeds = seeds()?;
    // Fresh each run: its inputs are megabytes each, and a kept corpus only grows.
    let corpus = root().join("target/fuzz-corpus").join(TARGET);
    let _ = std::fs::remove_dir_all(&corpus);
    std::fs::create_dir_all(&corpus)?;
    let bin = cargo_fuzz_root().join("bin");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // No sanitizer: the readers are safe Rust, so panics and hangs are what there
    // is to find, and uninstrumented runs are about twice as fast.
    run(Command::new(bin.join("cargo-fuzz"))
        .args(["fuzz", "run", "--sanitizer", "none", "--debug-assertions", TARGET])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={SECONDS}"))
        .arg(format!("-timeout={TIMEOUT_SECONDS}"))
        // Whole seeds: libFuzzer would cut inputs to 1 MiB, short of a Go binary.
        .arg(format!("-max_len={MAX_LEN}"))
        .arg("-rss_limit_mb=4096")
        .current_dir(root().join("tracer-user"))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", root().join("target/fuzz"))
        .env("GHOSTRACE_EBPF_OBJECT", ebpf_object))
}
