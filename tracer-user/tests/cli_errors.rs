//! Bad input gets one clear line on stderr and a non-zero status, never a panic, a
//! hang or a child left behind.

mod support;

use std::process::Output;

use support::{build, ghostrace, newest_or_skip, toolchains};

fn assert_one_line_error(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got {:?}; stderr: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("ghostrace: ") && lines[0].contains(expect), "unexpected message: {stderr}");
}

#[test]
fn missing_program() {
    let out = ghostrace().args(["run", "--", "/nonexistent/program"]).output().unwrap();
    assert_one_line_error(&out, "no such file");
    let out = ghostrace().args(["run", "--", "no-such-program-anywhere"]).output().unwrap();
    assert_one_line_error(&out, "not found in PATH");
}

#[test]
fn not_a_go_binary() {
    let out = ghostrace().args(["run", "--", "/bin/true"]).output().unwrap();
    assert_one_line_error(&out, "not a Go binary");
    let out = ghostrace().args(["run", "--", env!("CARGO_MANIFEST_DIR")]).output().unwrap();
    assert_one_line_error(&out, "directory");
    let script = support::temp_file("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let out = ghostrace().args(["run", "--"]).arg(&script).output().unwrap();
    assert_one_line_error(&out, "not an ELF file");
}

#[test]
fn binary_of_another_architecture() {
    let Some(tc) = newest_or_skip(toolchains(), "binary_of_another_architecture") else { return };
    let bin = support::temp_file("grow-arm64");
    let status = tc
        .command()
        .env("GOARCH", "arm64")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(support::repo().join("testdata/fixtures/grow"))
        .status()
        .unwrap();
    assert!(status.success(), "cross build failed");
    let out = ghostrace().args(["run", "--"]).arg(&bin).output().unwrap();
    assert_one_line_error(&out, "arm64 binary");
}

#[test]
fn attach_to_missing_pid() {
    let out = ghostrace().args(["attach", "--pid", "999999999"]).output().unwrap();
    assert_one_line_error(&out, "no process with pid");
}

/// Without privileges the error names what is missing, and the Go program is
/// never started (so it cannot be left stopped or orphaned).
#[test]
fn unprivileged_run_names_the_missing_privilege() {
    let Some(tc) = newest_or_skip(toolchains(), "unprivileged_run_names_the_missing_privilege") else { return };
    let bin = build(&tc, "fixtures/grow", false);
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        // Drop to nobody with no capabilities (util-linux setpriv).
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]);
        c.arg(env!("CARGO_BIN_EXE_ghostrace"));
        c
    } else {
        ghostrace()
    };
    let out = cmd.args(["run", "--"]).arg(&bin).arg("10").output().unwrap();
    assert_one_line_error(&out, "needs root");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("goid="), "the program ran although tracing failed");
}

#[test]
fn unreadable_or_bad_budget_file() {
    let Some(tc) = newest_or_skip(toolchains(), "unreadable_or_bad_budget_file") else { return };
    let bin = build(&tc, "fixtures/grow", false);
    let out = ghostrace().args(["run", "--overhead-budget-file", "/nonexistent/budget", "--"]).arg(&bin).output().unwrap();
    assert_one_line_error(&out, "cannot read /nonexistent/budget");
    let file = support::temp_file("bad-budget");
    std::fs::write(&file, "lots\n").unwrap();
    let out = ghostrace().args(["run", "--overhead-budget-file"]).arg(&file).arg("--").arg(&bin).output().unwrap();
    assert_one_line_error(&out, "invalid overhead budget \"lots\"");
}

#[test]
fn double_star_scope_is_refused() {
    // Refused before the program is even opened.
    let out = ghostrace().args(["run", "--scope", "github.com/acme/**", "--", "/bin/true"]).output().unwrap();
    assert_one_line_error(&out, "write `github.com/acme/...`");
    let out = ghostrace().args(["inspect", "--scope", "main,**", "/bin/true"]).output().unwrap();
    assert_one_line_error(&out, "`**` is not a package pattern");
}

#[test]
fn scope_matching_nothing_is_said() {
    let Some(tc) = newest_or_skip(toolchains(), "scope_matching_nothing_is_said") else { return };
    let bin = build(&tc, "fixtures/grow", false);
    let out = ghostrace().args(["inspect", "--scope", "example.com/nosuch/..."]).arg(&bin).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(": 0 probes") && text.contains("no call site matches the scope"), "{text}");
    let out = ghostrace().args(["inspect", "--scope", "main"]).arg(&bin).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("no call site matches"));
}

/// `--duration` belongs to `attach` (a `run` lasts as long as its program).
#[test]
fn duration_is_an_attach_option() {
    let help = |cmd: &str| String::from_utf8_lossy(&ghostrace().args([cmd, "--help"]).output().unwrap().stdout).to_string();
    assert!(help("attach").contains("--duration"));
    assert!(!help("run").contains("--duration"), "{}", help("run"));
    let out = ghostrace().args(["run", "--duration", "1s", "--", "/bin/true"]).output().unwrap();
    assert!(!out.status.success());
}

/// `inspect BIN | head`: the reader goes away early; ghostrace must not panic.
#[test]
fn inspect_into_a_closed_pipe() {
    let Some(tc) = newest_or_skip(toolchains(), "inspect_into_a_closed_pipe") else { return };
    let bin = build(&tc, "fixtures/grow", false);
    let mut child = ghostrace()
        .args(["inspect", "--scope", "all"])
        .arg(&bin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{}: {stderr}", out.status);
}
