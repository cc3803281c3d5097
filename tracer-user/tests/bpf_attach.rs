//! BPF tier: `ghostrace attach` traces a process already running, here of a PIE
//! executable (ASLR loads it at an address of its own): its findings name their
//! statements, live and replayed from the recording once the process is gone.

mod support;

use std::{
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;
use support::{bpf_or_skip, build_with, ghostrace, temp_file, toolchains};

/// The `list_stale_remove` findings of a JSON-lines file.
fn stale_removes(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("finding JSON"))
        .filter(|f| f["detector"] == "list_stale_remove")
        .collect()
}

#[test]
fn attach_names_the_statements_of_a_running_pie_process() {
    if !bpf_or_skip("attach_names_the_statements_of_a_running_pie_process") {
        return;
    }
    let tc = toolchains().pop().expect("a Go toolchain: run `cargo xtask bootstrap`");
    let bin = build_with(&tc, "fixtures/spawn", "-pie", &["-buildmode=pie"]);
    let (json, recording, replayed) =
        (temp_file("attach-pie.jsonl"), temp_file("attach-pie.ghostrace"), temp_file("attach-pie-replay.jsonl"));
    // A stale remove every millisecond for 3 s and more: attach traces one second of it.
    let mut program = Command::new(&bin).args(["remove", "3000"]).stdout(Stdio::null()).spawn().expect("start the fixture");
    let out = ghostrace()
        .args(["attach", "--duration", "1s", "--pid", &program.id().to_string(), "--json-out"])
        .arg(&json)
        .arg("--record")
        .arg(&recording)
        .output()
        .expect("run ghostrace attach");
    let status = program.wait().expect("wait for the fixture");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ghostrace attach: {}\n{stderr}", out.status);
    assert!(status.success(), "the traced process: {status}");
    let replay = ghostrace().arg("replay").arg(&recording).arg("--json-out").arg(&replayed).output().expect("run replay");
    assert!(replay.status.success(), "replay: {}\n{}", replay.status, String::from_utf8_lossy(&replay.stderr));
    let real = std::fs::canonicalize(&bin).expect("the fixture's path");
    for (what, file) in [("live", &json), ("replayed", &replayed)] {
        let found = stale_removes(file);
        assert!(!found.is_empty(), "{what}: no list_stale_remove finding\n{stderr}");
        for f in &found {
            let site = &f["goroutines"][0];
            assert_eq!(f["binary"], real.display().to_string(), "{what}: the executable's own path: {f}");
            assert_eq!(site["function"], "main.removeTwice", "{what}: call site: {f}");
            assert!(site["file"].as_str().is_some_and(|p| p.ends_with("/spawn/main.go")), "{what}: call site: {f}");
        }
    }
    for file in [&json, &recording, &replayed] {
        let _ = std::fs::remove_file(file);
    }
}

/// A scope that matches no call site: `run` says so in one line, attaches nothing,
/// and the program runs to its own exit status.
#[test]
fn run_with_a_scope_matching_nothing_says_so() {
    if !bpf_or_skip("run_with_a_scope_matching_nothing_says_so") {
        return;
    }
    let tc = toolchains().pop().expect("a Go toolchain: run `cargo xtask bootstrap`");
    let bin = support::build(&tc, "fixtures/grow", false);
    let out = ghostrace().args(["run", "--scope", "example.com/nosuch/..."]).arg("--").arg(&bin).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", out.status);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("matches no call site")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].starts_with("ghostrace: warning: --scope example.com/nosuch/..."), "{stderr}");
    assert!(stderr.contains("ghostrace: 0 probes on"), "{stderr}");
    let out = ghostrace().args(["run", "--scope", "main"]).arg("--").arg(&bin).output().expect("run");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("matches no call site"));
}
