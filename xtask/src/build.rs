//! Builds: the eBPF object (bpfel-unknown-none, build-std) and the user-space binary
//! that embeds it; the test run and the demo on top of them.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::{bootstrap::bpf_linker_bin, root, step::run};

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

/// Every test tier. Tests that cannot run here (no root, tool, CPU or Go toolchain)
/// skip themselves unless GHOSTRACE_NO_SKIP=1, which turns every skip into a failure.
pub fn test(args: &[String]) -> Result<()> {
    let object = ebpf()?;
    run(cargo().args(["test", "--release", "--no-fail-fast"]).args(args).env(EBPF_OBJECT_VAR, &object))
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
