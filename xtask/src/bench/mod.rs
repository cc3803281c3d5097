//! `cargo xtask bench`: what a probe hit costs the traced program. The workloads of
//! testdata/bench run untraced and under each tracing configuration of [`CONFIGS`],
//! alternating, for several rounds; the report gives median loop times, hits and the
//! time each configuration adds per hit, compared with the floor (a count-only
//! trace-event uprobe on the same CALL instructions ghostrace probes) and with
//! bpftrace (count-only uprobes on the runtime functions' entries). Then the
//! governor's table (`governed`) and the attach time of a large binary.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::{compare::which, root};

mod governed;
pub mod real;

/// How a configuration traces the workload.
#[derive(Clone, Copy)]
enum Tracing {
    Untraced,
    /// `ghostrace run` with these extra options.
    Ghostrace(&'static [&'static str]),
    /// bpftrace, `@hits = count()` on the entry of every runtime function ghostrace's
    /// default plan targets.
    Bpftrace,
    /// tracefs uprobe events, counted by the kernel and recorded nowhere, at the
    /// offsets of ghostrace's default plan.
    Floor,
}

struct Config {
    name: &'static str,
    tracing: Tracing,
}

/// The configurations, run in this order in every round; adding one is one entry.
const CONFIGS: &[Config] = &[
    Config { name: "untraced", tracing: Tracing::Untraced },
    // Per-hit figures need every hit: the governor is off here (its table follows).
    Config { name: "ghostrace", tracing: Tracing::Ghostrace(&["--overhead-budget", "off"]) },
    Config { name: "ghostrace --scope all", tracing: Tracing::Ghostrace(&["--overhead-budget", "off", "--scope", "all"]) },
    Config { name: "bpftrace (entries)", tracing: Tracing::Bpftrace },
    Config { name: "floor (trace event)", tracing: Tracing::Floor },
];

/// The configuration whose per-hit cost the goals are about.
const GHOSTRACE: &str = "ghostrace";
const BPFTRACE: &str = "bpftrace (entries)";
const FLOOR: &str = "floor (trace event)";

/// Workload modes of testdata/bench and their sizes (a fraction of a second untraced).
const WORKLOADS: &[(&str, &str)] = &[("append", "30000"), ("map", "200000"), ("json", "40000")];

/// Below this many hits a per-hit figure is noise.
const MIN_HITS: u64 = 100_000;

/// tracefs group of the floor's events (and name of its trace instance).
const FLOOR_GROUP: &str = "ghostrace_bench";
const TRACEFS: &str = "/sys/kernel/tracing";

/// One run of one workload under one configuration.
struct Sample {
    wall: f64,
    loop_ns: f64,
    hits: Option<u64>,
}

struct Bench {
    ghostrace: PathBuf,
    program: PathBuf,
    out_dir: PathBuf,
    bpftrace_script: String,
    floor: FloorEvents,
}

pub fn run(rounds: usize) -> Result<()> {
    ensure!(rounds > 0, "--rounds must be at least 1");
    ensure!(is_root(), "the bench attaches probes: run it as root");
    ensure!(which("bpftrace"), "bpftrace is missing (run `cargo xtask bootstrap`)");
    ensure!(Path::new(TRACEFS).join("uprobe_events").exists(), "{TRACEFS} is not mounted (run `cargo xtask bootstrap`)");
    let (go_version, go) = crate::golang::toolchains().pop().expect("at least one toolchain");
    ensure!(go.exists(), "Go {go_version} is missing at {} (run `cargo xtask bootstrap`)", go.display());

    let ghostrace = crate::build::release().context("building ghostrace (release)")?;
    let out_dir = root().join("target/bench");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let program = out_dir.join("bench");
    crate::step::run(crate::golang::go_command(&go).args(["build", "-o"]).arg(&program).arg(".").current_dir(root().join("testdata/bench")))?;
    let go_line = crate::step::output(crate::golang::go_command(&go).arg("version"))?.trim().to_string();

    let plan = inspect(&ghostrace, &program, "default")?;
    let offsets: Vec<u64> = probes(&plan).iter().filter_map(|p| p["file_offset"].as_u64()).collect();
    ensure!(!offsets.is_empty(), "the default plan of {} has no probe", program.display());
    let floor = FloorEvents::create(&program, &offsets)?;
    let bench = Bench { bpftrace_script: bpftrace_script(&program, &plan)?, ghostrace, program, out_dir, floor };

    eprintln!("xtask: bench, {rounds} rounds of {} workloads x {} configurations ({} probes in the default plan)", WORKLOADS.len(), CONFIGS.len(), offsets.len());
    // samples[workload][config]
    let mut samples: Vec<Vec<Vec<Sample>>> = WORKLOADS.iter().map(|_| CONFIGS.iter().map(|_| Vec::new()).collect()).collect();
    let mut checksums: Vec<Option<String>> = vec![None; WORKLOADS.len()];
    for round in 0..rounds {
        eprintln!("xtask: bench round {}/{rounds}", round + 1);
        for (w, workload) in WORKLOADS.iter().enumerate() {
            for (c, config) in CONFIGS.iter().enumerate() {
                let (sample, checksum) =
                    bench.once(config.tracing, workload).with_context(|| format!("{} under {}", workload.0, config.name))?;
                // Tracing must never change what the program computes.
                match &checksums[w] {
                    Some(expected) if *expected != checksum => {
                        bail!("{} under {}: checksum {checksum}, untraced {expected}", workload.0, config.name)
                    }
                    _ => checksums[w] = Some(checksum),
                }
                samples[w][c].push(sample);
            }
        }
    }
    println!("{}", report(&samples, &go_line, rounds));
    governed::table(&bench, rounds, &samples)?;
    drop(bench.floor);
    attach_time(&bench.ghostrace, &go)?;
    Ok(())
}

impl Bench {
    /// Runs `workload` once under `tracing`; returns the sample and the program's checksum.
    fn once(&self, tracing: Tracing, (mode, n): &(&str, &str)) -> Result<(Sample, String)> {
        let stats = self.out_dir.join("stats.json");
        let mut cmd = match tracing {
            Tracing::Untraced | Tracing::Floor => Command::new(&self.program),
            Tracing::Ghostrace(options) => {
                let _ = std::fs::remove_file(&stats);
                let mut cmd = Command::new(&self.ghostrace);
                cmd.arg("run").args(options).arg("--stats-out").arg(&stats).arg("--").arg(&self.program);
                cmd
            }
            Tracing::Bpftrace => {
                let mut cmd = Command::new("bpftrace");
                cmd.arg("-e").arg(&self.bpftrace_script).arg("-c").arg(format!("{} {mode} {n}", self.program.display()));
                cmd
            }
        };
        if !matches!(tracing, Tracing::Bpftrace) {
            cmd.args([mode, n]);
        }
        let before = match tracing {
            Tracing::Floor => Some(self.floor.enable()?),
            _ => None,
        };
        let start = Instant::now();
        let out = cmd.stdin(Stdio::null()).output();
        let wall = start.elapsed().as_secs_f64();
        let floor_hits = match before {
            Some(before) => Some(self.floor.disable()?.saturating_sub(before)),
            None => None,
        };
        let out = out.with_context(|| format!("cannot start {cmd:?}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(out.status.success(), "{cmd:?} exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        let field = |key: &str| {
            stdout.lines().find_map(|l| l.strip_prefix(key)).map(str::to_string).with_context(|| format!("no {key} line in: {stdout}"))
        };
        let loop_ns: f64 = field("loop_ns=")?.trim().parse().context("loop_ns")?;
        let hits = match tracing {
            Tracing::Untraced => None,
            Tracing::Floor => floor_hits,
            Tracing::Ghostrace(_) => {
                let text = std::fs::read_to_string(&stats).with_context(|| format!("reading {}", stats.display()))?;
                let report: Value = serde_json::from_str(&text).context("ghostrace --stats-out")?;
                Some(report["sites"].as_array().into_iter().flatten().filter_map(|s| s["hits"].as_u64()).sum())
            }
            Tracing::Bpftrace => Some(field("@hits: ")?.trim().parse().context("bpftrace @hits")?),
        };
        Ok((Sample { wall, loop_ns, hits }, field("checksum=")?))
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// `ghostrace inspect --json --scope SCOPE BIN`.
fn inspect(ghostrace: &Path, binary: &Path, scope: &str) -> Result<Value> {
    let text = crate::step::output(Command::new(ghostrace).args(["inspect", "--json", "--scope", scope]).arg(binary))?;
    serde_json::from_str(&text).context("ghostrace inspect --json")
}

fn probes(plan: &Value) -> &[Value] {
    plan["plan"]["probes"].as_array().map_or(&[], Vec::as_slice)
}

/// A bpftrace program counting entries of the runtime functions the plan's probes call.
fn bpftrace_script(binary: &Path, plan: &Value) -> Result<String> {
    let targets: std::collections::BTreeSet<&str> = probes(plan).iter().filter_map(|p| p["target"].as_str()).collect();
    let mut points: Vec<String> = targets
        .iter()
        .filter(|t| plan["plan"]["functions"].as_array().into_iter().flatten().any(|f| f["name"].as_str() == Some(t)))
        .map(|t| format!("uprobe:{}:\"{t}\"", binary.display()))
        .collect();
    points.dedup();
    ensure!(!points.is_empty(), "no runtime function of the plan found for bpftrace");
    Ok(format!("{} {{ @hits = count(); }}", points.join(",\n")))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 }
}

/// What a configuration's samples say: median and fastest loop time (ns), median
/// wall time (s) and hits.
struct Summary {
    loop_ns: f64,
    best_ns: f64,
    wall: f64,
    hits: Option<f64>,
}

fn summarize(samples: &[Sample]) -> Summary {
    let hits: Vec<f64> = samples.iter().filter_map(|s| s.hits.map(|h| h as f64)).collect();
    Summary {
        loop_ns: median(samples.iter().map(|s| s.loop_ns).collect()),
        best_ns: samples.iter().map(|s| s.loop_ns).fold(f64::INFINITY, f64::min),
        wall: median(samples.iter().map(|s| s.wall).collect()),
        hits: if hits.is_empty() { None } else { Some(median(hits)) },
    }
}

fn report(samples: &[Vec<Vec<Sample>>], go_line: &str, rounds: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\nghostrace bench: {go_line}; {}; {rounds} alternating rounds", crate::compare::machine());
    let _ = writeln!(
        out,
        "loop = the workload's own timing of its loop (tracer set-up excluded), median and fastest run; wall = the whole \
         command (median); added ns/hit = (loop - untraced loop) / hits, from the medians and from the fastest runs\n"
    );
    let _ = writeln!(out, "| workload | configuration | loop ms | fastest ms | wall s | probe hits | added ns/hit | (fastest) |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
    let mut summary = Vec::new();
    for (w, (mode, n)) in WORKLOADS.iter().enumerate() {
        let base = summarize(&samples[w][0]);
        // Per-hit cost by configuration: (from medians, from fastest runs).
        let mut per_hit = std::collections::HashMap::new();
        for (c, config) in CONFIGS.iter().enumerate() {
            let s = summarize(&samples[w][c]);
            let added = s.hits.filter(|h| *h >= MIN_HITS as f64).map(|h| ((s.loop_ns - base.loop_ns) / h, (s.best_ns - base.best_ns) / h));
            if let Some(a) = added {
                per_hit.insert(config.name, a);
            }
            let _ = writeln!(
                out,
                "| {mode} {n} | {} | {:.1} | {:.1} | {:.2} | {} | {} | {} |",
                config.name,
                s.loop_ns / 1e6,
                s.best_ns / 1e6,
                s.wall,
                s.hits.map_or("–".into(), |h| format!("{h:.0}")),
                added.map_or("–".into(), |a| format!("{:.0}", a.0)),
                added.map_or("–".into(), |a| format!("{:.0}", a.1)),
            );
        }
        let ratio = |a: &str, b: &str| match (per_hit.get(a), per_hit.get(b)) {
            (Some(x), Some(y)) if y.0 > 0.0 && y.1 > 0.0 => format!("{:.2}x (fastest runs {:.2}x)", x.0 / y.0, x.1 / y.1),
            _ => "n/a (too few hits)".into(),
        };
        if per_hit.contains_key(GHOSTRACE) {
            summary.push(format!(
                "{mode}: per hit ghostrace/floor {} (goal <= 1.25x); ghostrace/bpftrace {}",
                ratio(GHOSTRACE, FLOOR),
                ratio(GHOSTRACE, BPFTRACE)
            ));
        }
        if *mode == "json" {
            let traced = summarize(&samples[w][CONFIGS.iter().position(|c| c.name == GHOSTRACE).expect("ghostrace config")]);
            summary.push(format!(
                "json: loop slowdown under the default scope {:+.1}% (fastest runs {:+.1}%; {} probe hits; goal < 5%)",
                (traced.loop_ns - base.loop_ns) * 100.0 / base.loop_ns,
                (traced.best_ns - base.best_ns) * 100.0 / base.best_ns,
                traced.hits.map_or("?".into(), |h| format!("{h:.0}"))
            ));
        }
    }
    let _ = writeln!(out);
    for line in summary {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Attach time of a large binary: the Go compiler of the newest toolchain under
/// `ghostrace run --scope default` (thousands of call sites), on the multi path and
/// once on the per-probe one (one link and file descriptor per probe), with the
/// descriptors held and the whole run's time: on Linux 6.12+ closing each
/// per-probe link waits a grace period, minutes for thousands.
fn attach_time(ghostrace: &Path, go: &Path) -> Result<()> {
    let goroot = go.parent().and_then(Path::parent).context("GOROOT of the go command")?;
    let compile = goroot.join("pkg/tool/linux_amd64/compile");
    ensure!(compile.exists(), "{} is missing", compile.display());
    let size = std::fs::metadata(&compile)?.len();
    let stats = root().join("target/bench/compile-stats.json");
    let mut rows = Vec::new();
    for (scope, path, runs) in [("default", "multi", 3), ("all", "multi", 3), ("default", "per-probe", 1)] {
        let mut ms = Vec::new();
        let (mut sites, mut fds) = (0, 0);
        let started = std::time::Instant::now();
        for _ in 0..runs {
            let _ = std::fs::remove_file(&stats);
            let out = Command::new(ghostrace)
                .env("GHOSTRACE_ATTACH_PATH", path)
                .args(["run", "--scope", scope, "--stats-out"])
                .arg(&stats)
                .arg("--")
                .arg(&compile)
                .arg("-V=full")
                .stdin(Stdio::null())
                .output()
                .context("cannot start ghostrace")?;
            if !out.status.success() {
                rows.push(format!("scope {scope}, {path}: ghostrace run failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
                break;
            }
            let report: Value = serde_json::from_str(&std::fs::read_to_string(&stats)?).context("compile --stats-out")?;
            sites = report["attached"].as_u64().unwrap_or(0);
            fds = report["open_fds"].as_u64().unwrap_or(0);
            ms.push(report["attach_ms"].as_f64().context("attach_ms in --stats-out")?);
        }
        if !ms.is_empty() {
            rows.push(format!(
                "scope {scope}, {path} links: {sites} probes attached in {:.0} ms (median of {}, runs {ms:.0?}), {fds} open files; {:.1} s a run, detach included",
                median(ms.clone()),
                ms.len(),
                started.elapsed().as_secs_f64() / ms.len() as f64
            ));
        }
    }
    println!("attach time, {} ({:.1} MB):", compile.display(), size as f64 / 1e6);
    for row in rows {
        println!("  {row}");
    }
    Ok(())
}

/// The floor's uprobe events: created once, enabled only around floor runs (in a
/// trace instance of their own whose buffer is off, so a hit is counted and nothing
/// is recorded), and removed on drop, whatever happened (those of a run killed
/// before it could are removed by the next).
struct FloorEvents {
    names: Vec<String>,
    instance: PathBuf,
}

impl FloorEvents {
    fn create(binary: &Path, offsets: &[u64]) -> Result<Self> {
        Self::remove_leftovers();
        let instance = Path::new(TRACEFS).join("instances").join(FLOOR_GROUP);
        std::fs::create_dir_all(&instance).with_context(|| format!("creating trace instance {}", instance.display()))?;
        let mut events = Self { names: Vec::new(), instance };
        std::fs::write(events.instance.join("tracing_on"), "0").context("turning the bench instance's buffer off")?;
        for (i, offset) in offsets.iter().enumerate() {
            let name = format!("{FLOOR_GROUP}_{i}");
            append_uprobe_event(&format!("p:{FLOOR_GROUP}/{name} {}:{offset:#x}", binary.display()))
                .with_context(|| format!("uprobe event at {offset:#x}"))?;
            events.names.push(name);
        }
        Ok(events)
    }

    fn set_enabled(&self, on: bool) -> Result<()> {
        let file = self.instance.join("events").join(FLOOR_GROUP).join("enable");
        std::fs::write(&file, if on { "1" } else { "0" }).with_context(|| format!("writing {}", file.display()))
    }

    /// Enables the events; returns the hit count so far.
    fn enable(&self) -> Result<u64> {
        let hits = Self::hits()?;
        self.set_enabled(true)?;
        Ok(hits)
    }

    /// Disables the events; returns the hit count so far.
    fn disable(&self) -> Result<u64> {
        self.set_enabled(false)?;
        Self::hits()
    }

    /// Hits of the bench's events (uprobe_profile: file, [group/]event, hits[, misses]).
    fn hits() -> Result<u64> {
        let profile = std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_profile")).context("reading uprobe_profile")?;
        let ours = |event: &str| event.rsplit('/').next().is_some_and(|e| e.starts_with(&format!("{FLOOR_GROUP}_")));
        Ok(profile
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                (cols.len() >= 3 && ours(cols[1])).then(|| cols[2].parse::<u64>().ok()).flatten()
            })
            .sum())
    }

    /// Events of an earlier run that was killed before it could clean up.
    fn remove_leftovers() {
        let events = std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_events")).unwrap_or_default();
        let leftover = Self {
            names: events
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.split_once(':')?.1.strip_prefix(&format!("{FLOOR_GROUP}/")).map(str::to_string))
                .collect(),
            instance: Path::new(TRACEFS).join("instances").join(FLOOR_GROUP),
        };
        drop(leftover);
    }
}

impl Drop for FloorEvents {
    fn drop(&mut self) {
        let _ = self.set_enabled(false);
        for name in &self.names {
            if let Err(e) = append_uprobe_event(&format!("-:{FLOOR_GROUP}/{name}")) {
                eprintln!("xtask: could not remove uprobe event {FLOOR_GROUP}/{name}: {e:#}");
            }
        }
        let _ = std::fs::remove_dir(&self.instance);
        let left = std::fs::read_to_string(Path::new(TRACEFS).join("uprobe_events")).unwrap_or_default();
        if left.contains(&format!(":{FLOOR_GROUP}/")) {
            eprintln!("xtask: uprobe events of {FLOOR_GROUP} are still in {TRACEFS}/uprobe_events");
        }
    }
}

/// Appends one command to tracefs uprobe_events (one write per command).
fn append_uprobe_event(line: &str) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().append(true).open(Path::new(TRACEFS).join("uprobe_events"))?;
    file.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}
