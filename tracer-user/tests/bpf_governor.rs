//! BPF tier: under the default overhead budget, a hot append loop's probe is
//! duty-cycled while the rarely hit probes stay attached, and a shared-array
//! hazard at those rare call sites is still reported; map writes under a mutex,
//! whose call and exit probes are switched in and out together many times, are
//! never taken for overlapping ones; a range whose start probe was off claims no
//! write from before it.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{bpf_or_skip, build, ghostrace, read_findings, read_json, temp_file, toolchains};

/// Seconds the hotloop fixture runs: a hazard a second, well under the 30 s
/// give-up bound.
const SECONDS: &str = "6";
/// Each of the `flood` fixture's 4 goroutines writes the map this many times.
const FLOOD_WRITES: &str = "10000000";
/// Hand-overs the `handover` fixture makes: a couple of seconds traced.
const HANDOVER_ROUNDS: &str = "400000";
/// A budget under which shared call sites, which the governor favours, are still
/// cycled, with a window every cycle.
const SWITCHING_BUDGET: &str = "30ms/s";

/// One `ghostrace run` under a budget (the default 1%, unless told).
struct Governed {
    stdout: String,
    stderr: String,
    findings: Vec<Value>,
    sites: Vec<Value>,
}

impl Governed {
    fn run(bin: &Path, arg: &str, name: &str, budget: &str) -> Self {
        Self::run_on(bin, arg, name, budget, None)
    }

    /// As [`Governed::run`], on the attach path `path` (`GHOSTRACE_ATTACH_PATH`)
    /// when given.
    fn run_on(bin: &Path, arg: &str, name: &str, budget: &str, path: Option<&str>) -> Self {
        let (findings, stats) = (temp_file(&format!("{name}-findings.json")), temp_file(&format!("{name}-stats.json")));
        let mut cmd = ghostrace();
        if let Some(path) = path {
            cmd.env("GHOSTRACE_ATTACH_PATH", path);
        }
        let out = cmd
            .args(["run", "--overhead-budget", budget, "--json-out"])
            .arg(&findings)
            .arg("--stats-out")
            .arg(&stats)
            .arg("--")
            .arg(bin)
            .arg(arg)
            .output()
            .expect("run ghostrace");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ghostrace failed: {stderr}");
        let findings = read_findings(&findings);
        let sites = read_json(&stats)["sites"].as_array().expect("sites").clone();
        Self { stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr, findings, sites }
    }

    /// The call site in `function` whose probe kind starts with `kind`.
    fn site(&self, function: &str, kind: &str) -> &Value {
        let kind_is = |s: &Value| s["kind"].as_str().is_some_and(|k| k.starts_with(kind));
        self.sites
            .iter()
            .find(|s| s["function"] == function && kind_is(s))
            .unwrap_or_else(|| panic!("no {kind} site in {function}: {}", self.stderr))
    }

    fn findings_of(&self, detector: &str) -> Vec<&Value> {
        self.findings.iter().filter(|f| f["detector"] == detector).collect()
    }
}

fn coverage(site: &Value) -> f64 {
    site["coverage"].as_f64().expect("coverage")
}

/// The fixture's `per_second=R` figure.
fn per_second(stdout: &str) -> f64 {
    let field = stdout.split_whitespace().find_map(|f| f.strip_prefix("per_second=")).expect("per_second in the report");
    field.parse().expect("a number")
}

#[test]
fn hot_probe_is_duty_cycled_and_the_hazard_still_found() {
    if !bpf_or_skip("hot_probe_is_duty_cycled_and_the_hazard_still_found") {
        return;
    }
    duty_cycles_the_hot_probe(None);
}

/// The same on the path of kernels without uprobe-multi links: there a switch
/// closes or opens one perf-event link per probe.
#[test]
fn hot_probe_is_duty_cycled_on_per_probe_links() {
    if !bpf_or_skip("hot_probe_is_duty_cycled_on_per_probe_links") {
        return;
    }
    duty_cycles_the_hot_probe(Some("per-probe"));
}

fn duty_cycles_the_hot_probe(path: Option<&str>) {
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/hotloop", false);
    let untraced = std::process::Command::new(&bin).arg(SECONDS).output().expect("run the fixture");
    let name = format!("governor-hotloop-{}", path.unwrap_or("default"));
    let run = Governed::run_on(&bin, SECONDS, &name, "1%", path);
    if let Some(path) = path {
        assert!(run.stderr.contains(&format!("({path} links)")), "not attached through {path} links: {}", run.stderr);
    }

    let (hot, cold) = (run.site("main.hotLoop", "SliceGrowCall"), run.site("main.extend", "SliceGrowCall"));
    assert!(coverage(hot) < 1.0, "the hot loop's probe was never switched off: {}", run.stderr);
    assert!(hot["hits"].as_u64().expect("hits") > 0);
    assert_eq!(coverage(cold), 1.0, "a rarely hit probe was switched off: {}", run.stderr);

    let overlap = run.findings_of("slice_capacity_overlap");
    assert!(!overlap.is_empty(), "the hazard was not reported under the default budget: {}", run.stderr);
    assert_eq!(overlap[0]["coverage"].as_f64(), Some(1.0), "{}", overlap[0]);

    // A figure, not an assertion: the machine is shared.
    let (before, after) = (per_second(&String::from_utf8_lossy(&untraced.stdout)), per_second(&run.stdout));
    eprintln!(
        "Go {} ({} links): hot loop {before:.0} growths/s untraced, {after:.0} under ghostrace (slowdown {:.1}%), hot probe coverage {:.2}%",
        tc.version,
        path.unwrap_or("default"),
        (before / after - 1.0) * 100.0,
        coverage(hot) * 100.0
    );
}

#[test]
fn map_writes_switched_in_duty_cycles_never_seem_to_overlap() {
    if !bpf_or_skip("map_writes_switched_in_duty_cycles_never_seem_to_overlap") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/flood", false);
    // The writes cross goroutines, which earns their unit a large share of the
    // budget: a small absolute budget keeps them switching.
    let run = Governed::run(&bin, FLOOD_WRITES, "governor-flood", SWITCHING_BUDGET);
    let total = 4 * FLOOD_WRITES.parse::<u64>().expect("a number");
    assert_eq!(run.stdout.trim(), format!("flood writes={total} keys=64 appended={total}"));

    // The writes' call and exit probes were switched off and on again, many times
    // with writes in flight: each switch leaves some write begun with no exit seen.
    for kind in ["MapWriteCall", "MapWriteExit"] {
        let probe = run.site("main.(*shared).step", kind);
        assert!(coverage(probe) < 0.5, "the map write probes were not duty-cycled: {probe}");
        assert!(probe["hits"].as_u64().expect("hits") > 0, "{probe}");
    }
    let overlaps = run.findings_of("map_concurrent_write");
    assert!(overlaps.is_empty(), "writes under a mutex reported as concurrent: {overlaps:?}");
}

#[test]
fn a_range_that_may_have_started_unseen_claims_no_earlier_write() {
    if !bpf_or_skip("a_range_that_may_have_started_unseen_claims_no_earlier_write") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/handover", false);
    let run = Governed::run(&bin, HANDOVER_ROUNDS, "governor-handover", SWITCHING_BUDGET);
    let rounds = HANDOVER_ROUNDS.parse::<u64>().expect("a number");
    assert_eq!(run.stdout.trim(), format!("handover rounds={rounds} sum={}", 99 * rounds));

    // The range's start site is hit a hundred times as often as its step site, so
    // its probe is off while the step's is on: a step there may belong to a range
    // that started after the other goroutine's last write, unseen.
    let (start, step) = (run.site("main.found", "MapIterStartCall"), run.site("main.found", "MapIterNextCall"));
    assert!(coverage(start) < 0.5, "the range start probe was not duty-cycled: {start}");
    assert!(coverage(step) > coverage(start), "the step probe was attached no longer than the start's: {step}");
    assert!(run.site("main.edit", "MapWriteCall")["hits"].as_u64().expect("hits") > 0, "{}", run.stderr);
    let claims = run.findings_of("map_iter_write");
    assert!(claims.is_empty(), "a map handed over by channel reported as written during a range: {claims:?}");
}

#[test]
fn a_budget_file_is_read_again_on_sighup() {
    if !bpf_or_skip("a_budget_file_is_read_again_on_sighup") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/hotloop", false);
    let (budget, stats, log) =
        (temp_file("governor-budget"), temp_file("governor-sighup-stats.json"), temp_file("governor-sighup.err"));
    std::fs::write(&budget, "off\n").expect("write the budget file");
    let mut child = ghostrace()
        .args(["run", "--overhead-budget-file"])
        .arg(&budget)
        .arg("--stats-out")
        .arg(&stats)
        .arg("--")
        .arg(&bin)
        .arg(SECONDS)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start ghostrace");
    let started = std::time::Instant::now();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // SIGHUP before the probes are up would find its default action (stop).
    while !read_log().contains("probes on") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "ghostrace never attached: {}", read_log());
        assert!(child.try_wait().expect("wait").is_none(), "ghostrace exited early: {}", read_log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    std::fs::write(&budget, "1%\n").expect("write the budget file");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGHUP) }, 0);
    let status = child.wait().expect("wait for ghostrace");
    let stderr = read_log();
    assert!(status.success(), "ghostrace: {status}: {stderr}");
    assert!(stderr.contains("overhead budget now 1%"), "{stderr}");

    // Attached all the time while the budget was off, cycled from the change on.
    let sites = read_json(&stats)["sites"].as_array().expect("sites").clone();
    let hot = sites.iter().find(|s| s["function"] == "main.hotLoop").expect("hot loop site");
    let coverage = coverage(hot);
    assert!(coverage < 0.9 && coverage > 0.05, "coverage {coverage}: the new budget did not apply: {stderr}");
}
