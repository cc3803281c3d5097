//! BPF tier: the eBPF programs' lines for rare events reach ghostrace's log under
//! `--bpf-log`, and none is written without it. The event is a real one: a ring too
//! small for the `flood` fixture's records (four goroutines writing one map) loses
//! records, and the program that could not reserve one says so.

mod support;

use std::process::Stdio;

use support::{bpf_or_skip, build, ghostrace, read_json, temp_file, toolchains};

/// One page: the smallest ring the kernel accepts (about 40 records).
const TINY_RING: &str = "4096";
const WRITES: &str = "20000";
const LOST_LINE: &str = "record lost, ring buffer full";

/// Runs the fixture under `ghostrace run` with a tiny ring: its stderr, and the
/// records lost by the programs' own count.
fn run_flooded(bin: &std::path::Path, bpf_log: bool) -> (String, u64) {
    let stats = temp_file(if bpf_log { "bpf-log-on.json" } else { "bpf-log-off.json" });
    let _ = std::fs::remove_file(&stats);
    let mut cmd = ghostrace();
    cmd.args(["run", "--overhead-budget", "off", "--sample-every", "1", "--ring-bytes", TINY_RING, "--stats-out"]).arg(&stats);
    if bpf_log {
        cmd.arg("--bpf-log");
    }
    let out = cmd.arg("--").arg(bin).arg(WRITES).env_remove("RUST_LOG").stdin(Stdio::null()).output().expect("run ghostrace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ghostrace run: {}\n{stderr}", out.status);
    let report = read_json(&stats);
    let lost = report["sites"].as_array().expect("sites").iter().map(|s| s["lost"].as_u64().unwrap_or(0)).sum();
    (stderr, lost)
}

#[test]
fn the_programs_lines_reach_the_log_under_bpf_log_and_only_then() {
    if !bpf_or_skip("the_programs_lines_reach_the_log_under_bpf_log_and_only_then") {
        return;
    }
    let tc = toolchains().pop().expect("a Go toolchain: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/flood", false);

    let (stderr, lost) = run_flooded(&bin, true);
    assert!(lost > 0, "a {TINY_RING}-byte ring lost nothing\n{stderr}");
    let lines = stderr.lines().filter(|l| l.starts_with("ghostrace: bpf: probe ") && l.ends_with(LOST_LINE)).count();
    assert!(lines > 0, "{lost} records lost and no line from the programs said so:\n{stderr}");

    let (stderr, lost) = run_flooded(&bin, false);
    assert!(lost > 0, "a {TINY_RING}-byte ring lost nothing\n{stderr}");
    assert!(!stderr.contains("bpf: "), "lines from the programs without --bpf-log:\n{stderr}");
    eprintln!("{lines} lines for {lost} lost records with --bpf-log");
}
