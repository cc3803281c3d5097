//! Running set-up steps so that a failure says which step, why, and how to fix it.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs one named step; its error names the step and a fix.
pub fn step(name: &str, fix: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("xtask: {name}");
    f().with_context(|| format!("step '{name}' failed (fix: {fix})"))
}

/// Runs a command to completion, failing on a non-zero status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    Ok(())
}

/// Runs a command and returns its standard output.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs one stage of a longer task and prints how long it took.
pub fn timed<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = std::time::Instant::now();
    eprintln!("xtask: {name}");
    let result = f();
    eprintln!("xtask: {name}: {:.0} s{}", started.elapsed().as_secs_f64(), if result.is_ok() { "" } else { " (failed)" });
    result
}
