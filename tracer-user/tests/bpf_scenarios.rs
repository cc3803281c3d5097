//! BPF tier, end to end: every scenario of testdata/scenarios under `ghostrace run
//! --json-out` with every Go toolchain; the detectors its expect.json names fire,
//! nothing else fires at warning or above, and the program's exit status passes through.

mod support;

use std::{collections::BTreeSet, path::Path};

use serde_json::Value;
use support::{bpf_or_skip, build, ghostrace, repo, temp_file, toolchains};

/// Expected detectors ghostrace cannot yet deliver in the default configuration,
/// with the reason. A gap is printed, not failed; a false finding is never excused.
const KNOWN_GAPS: &[(&str, &str, &str)] = &[
    (
        "map_concurrent_writes_crash",
        "map_concurrent_write",
        "only the map's own writing flag is read, at each write's start, and it is rarely caught set before the runtime \
         itself dies; overlapping write intervals need write-exit probes, which are not placed yet",
    ),
    (
        "map_range_rekey",
        "map_write_during_range",
        "the kernel's transition filter drops a goroutine's own range steps, so a write inside its own range cannot be \
         told from one after it ended unless every hit is sent (--sample-every 1)",
    ),
];

fn known_gap(scenario: &str, detector: &str) -> Option<&'static str> {
    KNOWN_GAPS.iter().find(|(s, d, _)| *s == scenario && *d == detector).map(|(_, _, why)| *why)
}

struct Scenario {
    name: String,
    expect: Value,
}

fn scenarios() -> Vec<Scenario> {
    let dir = repo().join("testdata/scenarios");
    let mut all: Vec<Scenario> = std::fs::read_dir(&dir)
        .expect("testdata/scenarios")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expect.json").exists())
        .map(|e| Scenario {
            name: e.file_name().to_string_lossy().into_owned(),
            expect: serde_json::from_slice(&std::fs::read(e.path().join("expect.json")).expect("read")).expect("expect.json"),
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    // GHOSTRACE_SCENARIOS=a,b narrows the run while working on a detector.
    if let Ok(only) = std::env::var("GHOSTRACE_SCENARIOS") {
        all.retain(|s| only.split(',').any(|o| o == s.name));
    }
    all
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

/// Findings of a JSON-lines file as (detector, severity).
fn findings(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("finding JSON"))
        .map(|f| (f["detector"].as_str().unwrap_or("").to_string(), f["severity"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// Runs one scenario; returns what disagreed with its expect.json.
fn check(tc: &support::Toolchain, s: &Scenario) -> Vec<String> {
    let bin = build(tc, &format!("scenarios/{}", s.name), false);
    let out_file = temp_file(&format!("{}-{}.jsonl", tc.version, s.name));
    let _ = std::fs::remove_file(&out_file);
    let out = ghostrace().args(["run", "--json-out"]).arg(&out_file).arg("--").arg(&bin).output().expect("run ghostrace");
    let mut problems = Vec::new();
    let want_exit = s.expect["exit"].as_i64().unwrap_or(0) as i32;
    if out.status.code() != Some(want_exit) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        problems.push(format!("exit {:?}, expected {want_exit}: {}", out.status.code(), stderr.lines().last().unwrap_or("")));
    }
    let found = findings(&out_file);
    let fired: BTreeSet<String> = found.iter().map(|(d, _)| d.clone()).collect();
    for want in names(&s.expect["detectors"]) {
        if fired.contains(&want) {
            continue;
        }
        match known_gap(&s.name, &want) {
            Some(why) => eprintln!("known gap: Go {} {}: {want} did not fire: {why}", tc.version, s.name),
            None => problems.push(format!("{want} did not fire")),
        }
    }
    let allowed = names(&s.expect["detectors"]).union(&names(&s.expect["allow"])).cloned().collect::<BTreeSet<_>>();
    for (detector, severity) in &found {
        if severity != "info" && !allowed.contains(detector) {
            problems.push(format!("unexpected {severity} {detector}"));
        }
    }
    problems.dedup();
    problems
}

#[test]
fn every_scenario_fires_what_it_expects_and_nothing_else() {
    if !bpf_or_skip("every_scenario_fires_what_it_expects_and_nothing_else") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut failures = Vec::new();
    let mut runs = 0;
    // GHOSTRACE_GO_VERSIONS=1.19,1.27.3 narrows the toolchains likewise.
    let versions = std::env::var("GHOSTRACE_GO_VERSIONS").ok();
    let selected = toolchains().into_iter().filter(|tc| versions.as_ref().is_none_or(|v| v.split(',').any(|x| x == tc.version)));
    for tc in selected {
        for s in scenarios() {
            if s.expect["min_cpus"].as_u64().unwrap_or(1) as usize > cpus {
                eprintln!("skipped {} on {cpus} CPU(s): needs {}", s.name, s.expect["min_cpus"]);
                continue;
            }
            runs += 1;
            for problem in check(&tc, &s) {
                failures.push(format!("Go {} {}: {problem}", tc.version, s.name));
            }
        }
    }
    assert!(runs > 0, "no scenario ran");
    assert!(failures.is_empty(), "{} of {runs} scenario runs disagreed:\n{}", failures.len(), failures.join("\n"));
}
