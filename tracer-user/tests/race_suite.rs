//! BPF tier: the race detector's own test cases (`GOROOT/src/runtime/race/testdata`
//! of each toolchain) as an oracle. They are copied into a temporary `module app`
//! (package `race_test`, so the binary's package is `app_test`: the default scope
//! must take it for the user's code), built with `go test -c` WITHOUT `-race`, and
//! each test of the files about maps, slices and appends runs alone under
//! `ghostrace run --fail-on info` (so with the overhead budget off) with
//! `-test.count=20`. Every `TestNoRace*` must give no finding at any level.
//!
//! By default the Go versions of [`CI_VERSIONS`] run the `TestNoRace*` tests once
//! (GHOSTRACE_RACE_SUITE_VERSIONS=v1,v2 or `all` changes them). With
//! GHOSTRACE_RACE_SUITE_OUT=FILE, every test runs GHOSTRACE_RACE_SUITE_RUNS times
//! (default 3) and one tab-separated line per run goes to FILE, for `cargo xtask
//! race-suite` to render docs/race-suite.md.

mod support;

use std::{
    collections::BTreeSet,
    io::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use support::{Toolchain, bpf_or_skip, ghostrace, read_findings, read_json, repo, temp_file, toolchains};

/// The oldest toolchain, the first with the Swiss-table map (1.24) and the newest:
/// about a minute each (the tier prints its time).
const CI_VERSIONS: &[&str] = &["1.19", "1.24.11", "1.27.3"];
/// The files whose races involve maps, slices or appends: what ghostrace probes.
const FILES: &[&str] = &["map_test.go", "slice_test.go", "mop_test.go"];
/// Iterations of each test within one traced run.
const COUNT: u32 = 20;

/// The testdata built for one toolchain: the test binary and, per kept file of
/// [`FILES`], its tests in source order.
struct Suite {
    binary: PathBuf,
    tests: Vec<(String, String)>,
}

/// Test files of `GOROOT/src/runtime/race/testdata` copied into `dir` as `module
/// app`. `runtime.RaceDisable` exists only in `-race` builds: its one caller
/// (TestNoRaceIssue60934, about the race runtime's own state) yields instead.
fn copy_testdata(tc: &Toolchain, dir: &Path) {
    let src = tc.goroot().join("src/runtime/race/testdata");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("suite dir");
    for entry in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display())).filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with("_test.go") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("read testdata");
        std::fs::write(dir.join(&name), text.replace("runtime.RaceDisable()", "runtime.Gosched()")).expect("copy");
    }
    let version = tc.run(&["env", "GOVERSION"]);
    let lang: String = version.trim().trim_start_matches("go").split('.').take(2).collect::<Vec<_>>().join(".");
    std::fs::write(dir.join("go.mod"), format!("module app\n\ngo {lang}\n")).expect("go.mod");
}

/// Builds what builds: files the compiler rejects (cgo, internal packages, race-only
/// runtime functions, language of a newer Go) are dropped until the rest compiles.
fn build(tc: &Toolchain) -> Suite {
    let dir = repo().join("target/race-suite").join(&tc.version);
    let module = dir.join("app");
    copy_testdata(tc, &module);
    let binary = dir.join("app.test");
    let mut dropped = Vec::new();
    loop {
        let out = tc
            .command()
            .current_dir(&module)
            .args(["test", "-c", "-o"])
            .arg(&binary)
            .arg(".")
            .output()
            .expect("go test -c");
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let bad: BTreeSet<String> = stderr
            .split(|c: char| c.is_whitespace() || c == '/')
            .filter_map(|w| w.split_once("_test.go:").map(|(f, _)| format!("{f}_test.go")))
            .filter(|f| module.join(f).exists())
            .collect();
        assert!(!bad.is_empty() && dropped.len() < 10, "go {} test -c: {stderr}", tc.version);
        for f in bad {
            std::fs::remove_file(module.join(&f)).expect("drop file");
            dropped.push(f);
        }
    }
    // Written to the process's stderr itself: libtest keeps a passing test's eprintln! to itself.
    let _ = writeln!(std::io::stderr(), "race suite, Go {}: built without {dropped:?}", tc.version);
    let mut tests = Vec::new();
    for file in FILES.iter().filter(|f| module.join(f).exists()) {
        let text = std::fs::read_to_string(module.join(file)).expect("read test file");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("func Test") else {
                continue;
            };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let relevant = *file != "mop_test.go" || ["Map", "Slice", "Append"].iter().any(|w| name.contains(w));
            if relevant || name.starts_with("NoRace") {
                tests.push((file.to_string(), format!("Test{name}")));
            }
        }
    }
    Suite { binary, tests }
}

/// What one traced run of one test showed.
struct Outcome {
    /// (detector, severity, occurrences).
    findings: Vec<(String, String, u64)>,
    /// Probed call sites in the test's own functions: present, and hit.
    sites: (usize, usize),
    /// Goroutines whose records came from those sites.
    goroutines: usize,
}

fn run_test(suite: &Suite, test: &str) -> Outcome {
    let json = temp_file(&format!("race-{test}.jsonl"));
    let stats = temp_file(&format!("race-{test}.stats.json"));
    let _ = (std::fs::remove_file(&json), std::fs::remove_file(&stats));
    // As in CI: `--fail-on` runs with every probe attached all the time, the most
    // records a false positive could come from and the same chances every run.
    let out = ghostrace()
        .args(["run", "--fail-on", "info"])
        .arg("--json-out")
        .arg(&json)
        .arg("--stats-out")
        .arg(&stats)
        .arg("--")
        .arg(&suite.binary)
        .arg(format!("-test.run=^{test}$"))
        .arg(format!("-test.count={COUNT}"))
        // A test that hangs without the race runtime panics instead of holding the tier.
        .arg("-test.timeout=120s")
        .output()
        .expect("run ghostrace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A race test may fail or crash (a concurrent map write throws), and its status
    // passes through; ghostrace failing itself writes no statistics.
    assert!(stats.exists(), "{test}: ghostrace wrote no statistics: {stderr}");
    let findings = read_findings(&json)
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("?").to_string();
            (s("detector"), s("severity"), f["count"].as_u64().unwrap_or(0))
        })
        .collect();
    let st = read_json(&stats);
    let own = |f: &str| f == test || f.strip_prefix(test).is_some_and(|r| r.starts_with('.'));
    let mut sites = (0, 0);
    let mut goroutines = BTreeSet::new();
    for site in st["sites"].as_array().into_iter().flatten() {
        let function = site["function"].as_str().unwrap_or("").trim_start_matches("app_test.");
        if !own(function) || site["exit"].as_bool().unwrap_or(false) {
            continue;
        }
        sites.0 += 1;
        if site["hits"].as_u64().unwrap_or(0) > 0 {
            sites.1 += 1;
        }
        goroutines.extend(site["goroutines"].as_array().into_iter().flatten().filter_map(|g| g["goid"].as_u64()));
    }
    let _ = (std::fs::remove_file(&json), std::fs::remove_file(&stats));
    Outcome { findings, sites, goroutines: goroutines.len() }
}

/// Whether a race could be seen at all: both sides must be calls ghostrace probes,
/// made by more goroutines than the test ran iterations.
fn reach(o: &Outcome) -> &'static str {
    match o.sites {
        (0, _) => "no probed call (plain loads and stores, map reads)",
        (_, 0) => "probed calls never ran (appends within capacity)",
        _ if o.goroutines <= COUNT as usize => "one side only is a probed call",
        _ => "both sides probed",
    }
}

fn versions() -> Vec<Toolchain> {
    let wanted = std::env::var("GHOSTRACE_RACE_SUITE_VERSIONS").unwrap_or_else(|_| CI_VERSIONS.join(","));
    let all = toolchains();
    if wanted == "all" {
        return all;
    }
    let chosen: Vec<Toolchain> = all.into_iter().filter(|t| wanted.split(',').any(|w| w == t.version)).collect();
    assert!(!chosen.is_empty(), "GHOSTRACE_RACE_SUITE_VERSIONS={wanted}: no such toolchain installed");
    chosen
}

#[test]
fn race_detector_testdata() {
    if !bpf_or_skip("race_detector_testdata") {
        return;
    }
    let out_file = std::env::var_os("GHOSTRACE_RACE_SUITE_OUT").map(PathBuf::from);
    let runs: usize = std::env::var("GHOSTRACE_RACE_SUITE_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut out =
        out_file.as_ref().map(|p| std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    let started = Instant::now();
    let mut noisy: Vec<String> = Vec::new();
    let mut silent = 0;
    for tc in versions() {
        let t0 = Instant::now();
        let suite = build(&tc);
        let norace = suite.tests.iter().filter(|(_, t)| t.starts_with("TestNoRace")).count();
        assert!(norace >= 15, "Go {}: only {norace} TestNoRace tests in {FILES:?}", tc.version);
        for (file, test) in &suite.tests {
            let race = !test.starts_with("TestNoRace");
            if race && out.is_none() {
                continue;
            }
            for run in 0..if out.is_some() { runs } else { 1 } {
                let o = run_test(&suite, test);
                if !race && !o.findings.is_empty() {
                    noisy.push(format!("Go {} {test}: {:?}", tc.version, o.findings));
                } else if !race {
                    silent += 1;
                }
                if let Some(out) = out.as_mut() {
                    let found: Vec<String> = o.findings.iter().map(|(d, s, n)| format!("{d}:{s}:{n}")).collect();
                    let line =
                        [&tc.version, file, test, &run.to_string(), &found.join(","), reach(&o)].map(|s| s.to_string());
                    writeln!(out, "{}", line.join("\t")).expect("write results");
                }
            }
        }
        let _ = writeln!(
            std::io::stderr(),
            "race suite, Go {}: {} tests ({norace} TestNoRace) in {:.0?}",
            tc.version,
            suite.tests.len(),
            t0.elapsed()
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "race suite: {silent} silent TestNoRace runs, {} noisy, {:.0?} in all",
        noisy.len(),
        started.elapsed()
    );
    assert!(noisy.is_empty(), "TestNoRace tests with findings:\n{}", noisy.join("\n"));
}
