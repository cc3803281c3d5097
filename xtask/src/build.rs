//! Builds: the eBPF object (bpfel-unknown-none, build-std) and the user-space binary
//! that embeds it; the test run and the demo on top of them.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::{
    bootstrap::bpf_linker_bin,
    root,
    step::{run, timed},
};

/// Environment variable through which tracer-user's build script finds the eBPF object.
const EBPF_OBJECT_VAR: &str = "GHOSTRACE_EBPF_OBJECT";

fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root());
    cmd
}

/// Builds the eBPF programs; returns the object's path.
pub fn ebpf() -> Result<PathBuf> {
    let target_dir = root().join("target/ebpf");
    let linker_dir = bpf_linker_bin().parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", linker_dir.display(), std::env::var("PATH").unwrap_or_default());
    run(cargo()
        .args(["build", "--release", "-p", "tracer-ebpf", "--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("PATH", path))?;
    Ok(target_dir.join("bpfel-unknown-none/release/tracer-ebpf"))
}

/// Builds everything; returns the `ghostrace` binary's path.
pub fn release() -> Result<PathBuf> {
    let object = ebpf()?;
    run(cargo().args(["build", "--release", "-p", "tracer-user"]).env(EBPF_OBJECT_VAR, &object))?;
    Ok(root().join("target/release/ghostrace"))
}

/// The image's name in deploy/kubernetes (kustomization.yaml, daemonset.yaml).
const IMAGE_TAG: &str = "localhost/ghostrace:0.1.0";

/// Builds the container image: the release binary and the libraries it loads staged
/// by deploy/container/rootfs.sh, then deploy/container/Containerfile with podman.
pub fn image() -> Result<()> {
    let binary = release()?;
    let rootfs = root().join("target/image/rootfs");
    run(Command::new(root().join("deploy/container/rootfs.sh")).arg(&binary).arg(&rootfs))?;
    let containerfile = root().join("deploy/container/Containerfile");
    run(Command::new("podman").args(["build", "--file"]).arg(&containerfile).args(["--tag", IMAGE_TAG]).arg(&rootfs))
}

/// tracer-user's integration tests that load no BPF program: with the unit tests,
/// the pure tier, run under the `checked` profile (release with overflow checks and
/// debug assertions, Cargo.toml).
fn pure(test: &str) -> bool {
    test.starts_with("gobin_") || test.starts_with("metrics_") || ["cli_errors", "deploy_manifests"].contains(&test)
}

/// `--test NAME` of each of tracer-user's integration tests that `pure` says is
/// (or is not) of the pure tier: a new test file lands in one tier or the other.
fn integration_tests(want_pure: bool) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for entry in std::fs::read_dir(root().join("tracer-user/tests"))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(test) = name.strip_suffix(".rs").filter(|t| pure(t) == want_pure) {
            args.extend(["--test".to_string(), test.to_string()]);
        }
    }
    Ok(args)
}

/// Every test tier, each stage timed, then a bounded fuzz run; with `args`, only
/// `cargo test --release ARGS`. Tests that cannot run here (no root, tool, CPU or
/// Go toolchain) skip themselves unless GHOSTRACE_REQUIRE_BPF=1 makes that a failure.
pub fn test(args: &[String]) -> Result<()> {
    test_with_env(args, &[])
}

/// The test run, with extra environment variables for the tests.
pub fn test_with_env(args: &[String], env: &[(&str, &std::ffi::OsStr)]) -> Result<()> {
    let object = ebpf()?;
    let cargo_test = |profile: &str, targets: &[String]| {
        let mut cmd = cargo();
        cmd.args(["test", "--profile", profile, "--no-fail-fast"]).args(targets).env(EBPF_OBJECT_VAR, &object);
        run(cmd.envs(env.iter().copied()))
    };
    if !args.is_empty() {
        return cargo_test("release", args);
    }
    let packages = ["-p", "tracer-common", "-p", "tracer-user", "-p", "xtask"].map(String::from);
    let unit = ["--lib", "--bins", "--examples"].map(String::from);
    let pure_tier = [&packages[..], &unit[..], &integration_tests(true)?].concat();
    // In release like the shipped binary: their timing-sensitive checks measure what users run.
    let other_tiers = [&["-p".to_string(), "tracer-user".to_string()][..], &integration_tests(false)?].concat();
    let doc = ["-p", "tracer-common", "-p", "tracer-user", "--doc"].map(String::from);
    // Every stage runs; the failures are reported together.
    let stages = [
        timed("pure tier (checked profile: overflow checks, debug assertions)", || cargo_test("checked", &pure_tier)),
        timed("BPF, daemon, container, race-suite and boot tiers (release)", || cargo_test("release", &other_tiers)),
        timed("doc tests (release)", || cargo_test("release", &doc)),
        timed("fuzzing the Go binary readers", || crate::fuzz::run_bounded(&object)),
    ];
    let failed: Vec<String> = stages.into_iter().filter_map(|r| r.err().map(|e| format!("{e:#}"))).collect();
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("\n"));
    Ok(())
}

/// Builds the bundled demo service with the newest Go toolchain and traces it.
pub fn demo() -> Result<()> {
    let ghostrace = release()?;
    let (version, go) = crate::golang::toolchains().pop().expect("at least one toolchain");
    let out = root().join("target/demo/demo-service");
    run(crate::golang::go_command(&go).args(["build", "-o"]).arg(&out).arg(".").current_dir(root().join("testdata/demo")))?;
    eprintln!("xtask: tracing the demo service (built with Go {version}) under ghostrace");
    let status = Command::new(&ghostrace).args(["run", "--"]).arg(&out).status()?;
    anyhow::ensure!(status.success(), "ghostrace run exited with {status}");
    Ok(())
}
