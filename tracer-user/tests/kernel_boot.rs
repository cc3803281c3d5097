//! Boot tier: ghostrace under Debian's own cloud kernels, Linux 6.1 (the kernel of
//! Debian 12, Amazon Linux 2023 and many Kubernetes node images) and 6.12, each
//! booted with qemu (TCG) from an initramfs holding busybox, the ghostrace binary and
//! Go programs. In each guest: `run` of a slice, a map and a list hazard and of a
//! clean program, `attach` to a running process, and the daemon with a scrape of
//! /metrics. Each kernel must find what the same binary finds on the host, per case;
//! a failure prints the guest's console. Times go to stderr uncaptured: the tier's
//! cost is a figure CI shows.

mod daemon_support;
mod kernel_support;
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use daemon_support::{Guard, sample};
use kernel_support::{Guest, Kernel, detectors};
use serde_json::Value;
use support::{bpf_or_skip, build, repo, temp_file, toolchains};

/// One hazard of each kind and a clean program, run under `ghostrace run`.
const RUNS: &[&str] = &["batch_subslice_overlap", "map_reporter_iter_write", "list_foreign_remove", "clean_mutex_append"];
/// Built with the oldest Go toolchain too: its runtime layout is the furthest from the newest's.
const OLDEST_GO_RUN: &str = "batch_subslice_overlap";
/// What `attach` and the daemon must find in the `spawn remove` fixture.
const SPAWN_DETECTOR: &str = "list_stale_remove";
/// A guest still running after this is killed: a hang guard, far above the minutes
/// a guest takes under TCG.
const GUEST_LIMIT: Duration = Duration::from_secs(900);

/// The binary under test: GHOSTRACE_KERNEL_TIER_BIN (a build of another branch, say)
/// or this package's own. The host runs use the same one.
fn ghostrace() -> PathBuf {
    std::env::var_os("GHOSTRACE_KERNEL_TIER_BIN").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_ghostrace").into())
}

/// A line for the CI log: libtest keeps a passing test's `eprintln!` to itself.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "kernel-boot: {line}");
}

/// A case's result: exit status, detectors at warning or above, stderr, seconds taken.
#[derive(Debug)]
struct Outcome {
    status: Option<i32>,
    detectors: BTreeSet<String>,
    stderr: String,
    secs: f64,
}

impl Outcome {
    /// A case as the guest reported it.
    fn guest(guest: &Guest, case: &str) -> Self {
        let status = guest.status(case);
        Self {
            status: status.map(|s| s.0),
            detectors: detectors(&guest.section(case, "findings")),
            stderr: guest.section(case, "stderr"),
            secs: status.map_or(f64::NAN, |s| s.1),
        }
    }

    fn show(&self) -> String {
        format!("{} (exit {}, {:.1} s)", show(&self.detectors), self.status.map_or("none".to_string(), |s| s.to_string()), self.secs)
    }
}

/// What a `run` case must show, from the scenario's expect.json.
struct Expect {
    exit: i32,
    detectors: BTreeSet<String>,
    /// Detectors that may fire besides: left out of the comparison.
    allow: BTreeSet<String>,
}

/// The programs, the host's results and the initramfs, made once for every kernel.
struct Setup {
    /// Case name (`run:SCENARIO-goVERSION`, `attach`) → what the host found.
    host: BTreeMap<String, Outcome>,
    expect: BTreeMap<String, Expect>,
    initramfs: PathBuf,
    secs: f64,
}

static SETUP: OnceLock<Setup> = OnceLock::new();
/// When the tier's first test started: each kernel's report gives the tier's time so
/// far, the last one its total.
static TIER_START: OnceLock<Instant> = OnceLock::new();

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

fn setup() -> Setup {
    let started = Instant::now();
    let all = toolchains();
    let (oldest, newest) = (all.first().expect("a Go toolchain"), all.last().expect("a Go toolchain"));
    let mut scenarios = Vec::new();
    let mut expect = BTreeMap::new();
    for &name in RUNS {
        let e: Value = serde_json::from_slice(&std::fs::read(repo().join("testdata/scenarios").join(name).join("expect.json")).expect("read expect.json"))
            .expect("expect.json");
        let mut versions = vec![newest];
        if name == OLDEST_GO_RUN && oldest.version != newest.version {
            versions.push(oldest);
        }
        for tc in versions {
            let bin = format!("{name}-go{}", tc.version);
            scenarios.push((bin.clone(), build(tc, &format!("scenarios/{name}"), false)));
            let exit = e["exit"].as_i64().unwrap_or(0) as i32;
            expect.insert(format!("run:{bin}"), Expect { exit, detectors: names(&e["detectors"]), allow: names(&e["allow"]) });
        }
    }
    let spawn = build(newest, "fixtures/spawn", false);
    let mut host = BTreeMap::new();
    for (bin, path) in &scenarios {
        host.insert(format!("run:{bin}"), host_run(path));
    }
    host.insert("attach".to_string(), host_attach(&spawn));
    let initramfs = repo().join("target/kernel-boot/initramfs.cpio");
    kernel_support::initramfs(&initramfs, &ghostrace(), &scenarios, &[("spawn".to_string(), spawn)]);
    Setup { host, expect, initramfs, secs: started.elapsed().as_secs_f64() }
}

fn outcome(started: Instant, status: Option<i32>, findings: &Path, stderr: &[u8]) -> Outcome {
    let text = std::fs::read_to_string(findings).unwrap_or_default();
    let _ = std::fs::remove_file(findings);
    let stderr = String::from_utf8_lossy(stderr).into_owned();
    Outcome { status, detectors: detectors(&text), stderr, secs: started.elapsed().as_secs_f64() }
}

/// `ghostrace run` on the host, as the guest's init script runs it.
fn host_run(bin: &Path) -> Outcome {
    let json = temp_file("kernel-boot-host.jsonl");
    let started = Instant::now();
    let out = Command::new(ghostrace())
        .args(["run", "--overhead-budget", "off", "--json-out"])
        .arg(&json)
        .arg("--")
        .arg(bin)
        .stdout(Stdio::null())
        .output()
        .expect("run ghostrace");
    outcome(started, out.status.code(), &json, &out.stderr)
}

/// `ghostrace attach` on the host, as the guest's init script runs it.
fn host_attach(spawn: &Path) -> Outcome {
    let json = temp_file("kernel-boot-host-attach.jsonl");
    let started = Instant::now();
    let program = Guard::spawn("spawn", Command::new(spawn).args(["remove", "1000000"]).stdout(Stdio::null()));
    std::thread::sleep(Duration::from_secs(1));
    let out = Command::new(ghostrace())
        .args(["attach", "--pid", &program.pid().to_string(), "--duration", "3s", "--overhead-budget", "off", "--json-out"])
        .arg(&json)
        .stdout(Stdio::null())
        .output()
        .expect("run ghostrace attach");
    drop(program);
    outcome(started, out.status.code(), &json, &out.stderr)
}

/// Whether the tier can run here; else a [`support::skip`].
fn ready(test: &str, series: &str) -> Option<Kernel> {
    if !bpf_or_skip(test) {
        return None;
    }
    let found = kernel_support::host_tools().and_then(|()| kernel_support::kernel(series));
    match found {
        Ok(kernel) => Some(kernel),
        Err(reason) => {
            support::skip(test, &reason);
            report(&format!("skipped {test}: {reason}"));
            None
        }
    }
}

fn show(set: &BTreeSet<String>) -> String {
    if set.is_empty() { "nothing".to_string() } else { set.iter().cloned().collect::<Vec<_>>().join(", ") }
}

/// Boots `series` and compares every case with the host; panics with the guest's
/// console on any difference.
fn boot_tier(test: &str, series: &str) {
    let Some(kernel) = ready(test, series) else { return };
    let tier_start = *TIER_START.get_or_init(Instant::now);
    let setup = SETUP.get_or_init(|| {
        let s = setup();
        report(&format!("host runs and initramfs: {:.1} s (once for every kernel)", s.secs));
        s
    });
    // The guests run side by side (libtest's threads): they idle on the programs'
    // timers often enough that two together took 48-79 s, one after the other 82-108 s
    // (2 vCPUs, loaded by other builds).
    let guest = Guest::boot(&kernel, &setup.initramfs, &repo().join("target/kernel-boot").join(series), GUEST_LIMIT);
    let mut problems = Vec::new();
    let (boot, release) = guest.boot_time().unwrap_or((f64::NAN, "?".to_string()));
    report(&format!(
        "Linux {series} ({}, {release}): /init after {boot:.1} s of the kernel's and {:.1} s of qemu's, the guest ran {:.1} s in all; the tier has run {:.1} s",
        kernel.package,
        guest.to_init.map_or(f64::NAN, |d| d.as_secs_f64()),
        guest.wall.as_secs_f64(),
        tier_start.elapsed().as_secs_f64()
    ));
    if !guest.done() {
        problems.push("the guest's init script did not get to its end".to_string());
    }
    for (case, want) in &setup.expect {
        let host = &setup.host[case];
        let seen = |found: &BTreeSet<String>| found.difference(&want.allow).cloned().collect::<BTreeSet<_>>();
        let got = Outcome::guest(&guest, case);
        report(&format!("  {case}: guest {}, host {}", got.show(), host.show()));
        if host.status != Some(want.exit) || seen(&host.detectors) != want.detectors {
            problems.push(format!(
                "{case}: the host itself found {} with exit {:?}, expected {} with exit {}: {}",
                show(&host.detectors),
                host.status,
                show(&want.detectors),
                want.exit,
                host.stderr.trim()
            ));
        }
        if got.status != Some(want.exit) || seen(&got.detectors) != seen(&host.detectors) {
            problems.push(format!("{case}: the guest found {}, the host {}: {}", got.show(), host.show(), got.stderr));
        }
    }
    let wanted: BTreeSet<String> = [SPAWN_DETECTOR.to_string()].into();
    let host = &setup.host["attach"];
    if host.status != Some(0) || host.detectors != wanted {
        problems.push(format!("attach: the host itself found {} with exit {:?}: {}", show(&host.detectors), host.status, host.stderr.trim()));
    }
    let got = Outcome::guest(&guest, "attach");
    report(&format!("  attach: guest {}, host {}", got.show(), host.show()));
    if got.status != Some(0) || got.detectors != host.detectors {
        problems.push(format!("attach: the guest found {}, the host {}: {}", got.show(), host.show(), got.stderr));
    }
    problems.extend(daemon_problems(&guest, &host.detectors));
    assert!(problems.is_empty(), "Linux {series} ({}):\n{}\n{}", kernel.package, problems.join("\n"), guest.transcript());
}

/// The daemon in the guest: traced the program started after it, found what `attach`
/// finds on the host, was ready and served metrics that say so while tracing it, and
/// exited 0 on SIGTERM.
fn daemon_problems(guest: &Guest, host: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let got = Outcome::guest(guest, "daemon");
    let metrics = guest.section("daemon", "metrics");
    let findings_total: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ghostrace_findings_total{") && l.contains(&format!("detector=\"{SPAWN_DETECTOR}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b);
    let (traced, probes) = (sample(&metrics, "ghostrace_traced_processes"), sample(&metrics, "ghostrace_attached_probes"));
    report(&format!(
        "  daemon: guest {}; /metrics: {SPAWN_DETECTOR} findings {findings_total}, traced processes {traced:?}, attached probes {probes:?}",
        got.show()
    ));
    if guest.section("daemon", "readyz") != "ready" {
        problems.push(format!("daemon: /readyz while tracing: {:?}", guest.section("daemon", "readyz")));
    }
    if got.detectors != *host {
        problems.push(format!("daemon: found {} on stdout, `attach` on the host {}", show(&got.detectors), show(host)));
    }
    if findings_total < 1.0 || traced.is_none_or(|t| t < 1.0) || probes.is_none_or(|p| p <= 0.0) {
        problems.push(format!(
            "daemon: /metrics shows {findings_total} {SPAWN_DETECTOR} findings, {traced:?} traced processes, {probes:?} attached probes while the program ran"
        ));
    }
    if got.status != Some(0) {
        problems.push(format!("daemon: exit {:?} on SIGTERM", got.status));
    }
    if !problems.is_empty() {
        problems.push(format!("daemon stderr:\n{}", got.stderr));
    }
    problems
}

#[test]
fn linux_6_1() {
    boot_tier("linux_6_1", "6.1");
}

#[test]
fn linux_6_12() {
    boot_tier("linux_6_12", "6.12");
}
