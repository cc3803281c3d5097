//! The governor's table: the slowdown ghostrace adds under the default budget (1% of
//! the process's CPU). One long-running process per workload runs its loop in short
//! batches while `ghostrace attach` traces it for a few seconds and then leaves it
//! alone for a few, many times over; the batches that fall inside the traced and the
//! untraced windows are compared. Both sides are the same process: between two runs
//! of one program the loop time differs by up to ±5% here (heap layout, placement),
//! which would hide a 1% effect behind hundreds of runs.

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc::{self, Receiver},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::{BPFTRACE, Bench, CONFIGS, GHOSTRACE, Sample, WORKLOADS, median, summarize};

/// Batch sizes of the workloads' `repeat` mode: 10–30 ms a batch here.
const BATCHES: &[(&str, &str)] = &[("append", "30000"), ("map", "2000000"), ("json", "4000")];
/// Left out at the start of a workload process (page faults, heap growth).
const WARM_UP: Duration = Duration::from_secs(2);
/// How long each untraced window lasts.
const UNTRACED: Duration = Duration::from_secs(3);
/// How long ghostrace stays attached each round (`attach --duration`).
const TRACED: Duration = Duration::from_secs(4);
/// Traced windows per round of the bench: a 1% effect needs many of them (the
/// mean batch time of one 3 s window varies by a few percent here).
const ROUNDS_PER_BENCH_ROUND: usize = 4;
/// Left out at the start of a traced window: the governor's first, fully probed
/// cycle and ghostrace's own start-up are one-off costs, the table is about the
/// steady state a tracer left on costs.
const SETTLE: Duration = Duration::from_secs(1);
/// Left out after ghostrace exits (the kernel finishes taking probes out).
const AFTER: Duration = Duration::from_millis(500);

/// One loop of the workload, as the program timed it.
struct Batch {
    end: Instant,
    wall_ns: f64,
    cpu_ns: f64,
}

impl Batch {
    fn within(&self, (from, to): (Instant, Instant)) -> bool {
        self.end <= to && self.end.checked_sub(Duration::from_nanos(self.wall_ns as u64)).is_some_and(|start| start >= from)
    }
}

/// One traced window and what ghostrace said of it.
struct Traced {
    window: (Instant, Instant),
    estimated: f64,
    least_coverage: f64,
}

/// Kills the workload process however the bench ends.
struct Workload(Child);

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the workload's batch lines as they come; every batch must compute the same.
fn batches(stdout: ChildStdout) -> Receiver<Result<Batch>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut checksum = None;
        for line in BufReader::new(stdout).lines() {
            let end = Instant::now();
            let parsed = line.context("reading the workload").and_then(|line| {
                let field = |key: &str| {
                    line.split_whitespace().find_map(|f| f.strip_prefix(key)).with_context(|| format!("no {key} in {line:?}"))
                };
                let sum = field("checksum=")?.to_string();
                if *checksum.get_or_insert_with(|| sum.clone()) != sum {
                    bail!("checksum {sum} in a batch, {} in the first: tracing changed what the program computes", checksum.as_deref().unwrap_or(""));
                }
                Ok(Batch { end, wall_ns: field("batch_ns=")?.parse()?, cpu_ns: field("cpu_ns=")?.parse()? })
            });
            if tx.send(parsed).is_err() {
                return;
            }
        }
    });
    rx
}

/// `ghostrace attach` on `pid` for [`TRACED`]: the window measured (from
/// [`SETTLE`] after its probes were attached until it exited) and what it said.
fn attach(bench: &Bench, pid: u32) -> Result<Traced> {
    let stats = bench.out_dir.join("attach-stats.json");
    let _ = std::fs::remove_file(&stats);
    let mut child = Command::new(&bench.ghostrace)
        .args(["attach", "--pid", &pid.to_string(), "--duration", &format!("{}s", TRACED.as_secs())])
        .arg("--stats-out")
        .arg(&stats)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start ghostrace attach")?;
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut said = String::new();
    let ready = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line)? == 0 {
            let status = child.wait()?;
            bail!("ghostrace attach exited ({status}) before attaching: {}", said.trim());
        }
        said.push_str(&line);
        // "ghostrace: N probes on pid P (goX, PATH links); Ctrl-C to stop"
        if line.contains(" probes on pid ") {
            break Instant::now();
        }
    };
    // The exit table goes to stderr too: drained, or ghostrace would block on it.
    let rest = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let status = child.wait()?;
    let detached = Instant::now();
    let _ = rest.join();
    ensure!(status.success(), "ghostrace attach exited with {status}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&stats)?).context("ghostrace --stats-out")?;
    let (estimated, least_coverage) = overhead_and_coverage(&report);
    Ok(Traced { window: (ready + SETTLE, detached), estimated, least_coverage })
}

/// The governor's steady-state estimate in a `--stats-out` report (its last whole
/// cycle) and the least coverage of a probe that was hit.
fn overhead_and_coverage(report: &Value) -> (f64, f64) {
    let sites = report["sites"].as_array().map_or(&[][..], Vec::as_slice);
    let coverage = sites.iter().filter(|s| s["hits"].as_u64() > Some(0)).filter_map(|s| s["coverage"].as_f64()).fold(1.0, f64::min);
    (report["last_cycle_overhead"].as_f64().unwrap_or(f64::NAN), coverage)
}

/// What one workload process gave: `rounds + 1` untraced windows with a traced one
/// between each two, and every batch it timed.
struct Series {
    untraced: Vec<(Instant, Instant)>,
    traced: Vec<Traced>,
    batches: Vec<Batch>,
}

/// Runs `rounds` traced windows on one process of `mode`, each between two
/// untraced ones.
fn rounds_on(bench: &Bench, (mode, n): (&str, &str), rounds: usize) -> Result<Series> {
    let mut child = Command::new(&bench.program)
        .args([mode, n, "repeat"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", bench.program.display()))?;
    let lines = batches(child.stdout.take().expect("piped"));
    let workload = Workload(child);
    std::thread::sleep(WARM_UP);
    let untraced_window = || {
        let from = Instant::now();
        std::thread::sleep(UNTRACED);
        (from, Instant::now())
    };
    let (mut untraced, mut traced) = (vec![untraced_window()], Vec::new());
    for _ in 0..rounds {
        traced.push(attach(bench, workload.0.id())?);
        std::thread::sleep(AFTER);
        untraced.push(untraced_window());
    }
    drop(workload);
    let batches = lines.into_iter().collect::<Result<Vec<_>>>().with_context(|| format!("workload {mode}"))?;
    Ok(Series { untraced, traced, batches })
}

/// Mean wall and CPU time of the batches within `window`. The mean, not the median:
/// a duty-cycled probe slows only the few batches that overlap its attached time,
/// and those are the overhead.
fn means(batches: &[Batch], window: (Instant, Instant)) -> Result<(f64, f64)> {
    let inside: Vec<&Batch> = batches.iter().filter(|b| b.within(window)).collect();
    ensure!(!inside.is_empty(), "no batch finished inside a {:?} window", window.1 - window.0);
    let n = inside.len() as f64;
    Ok((inside.iter().map(|b| b.wall_ns).sum::<f64>() / n, inside.iter().map(|b| b.cpu_ns).sum::<f64>() / n))
}

/// Mean and half-width of the 95% confidence interval (normal approximation).
fn mean_and_margin(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, 1.96 * (var / n).sqrt())
}

/// Prints the governor's table, next to the slowdown without governor and under
/// bpftrace measured by the short runs (`short[workload][config]`).
pub(super) fn table(bench: &Bench, rounds: usize, short: &[Vec<Vec<Sample>>]) -> Result<()> {
    let slowdown = |mode: &str, name: &str| {
        let w = WORKLOADS.iter().position(|(m, _)| *m == mode).expect("a workload of the short runs");
        let c = CONFIGS.iter().position(|c| c.name == name).expect("configuration");
        summarize(&short[w][c]).loop_ns / summarize(&short[w][0]).loop_ns - 1.0
    };
    let rounds = rounds * ROUNDS_PER_BENCH_ROUND;
    println!(
        "governor (default budget 1%): one process per workload; {rounds} times `ghostrace attach` for {} s (its first {} s left \
         out) between untraced windows of {} s; each traced window's mean batch time against the mean of the untraced \
         windows before and after it (drift cancels), mean over the rounds ± 95% interval",
        TRACED.as_secs(),
        SETTLE.as_secs(),
        UNTRACED.as_secs()
    );
    println!("| workload (batch) | untraced batch ms | slowdown, governor | CPU per batch, governor | slowdown, no governor | slowdown, bpftrace | estimated overhead, last cycle | least coverage, session |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for &workload in BATCHES {
        let Series { untraced, traced, batches } = rounds_on(bench, workload, rounds)?;
        let plain = untraced.iter().map(|&u| means(&batches, u)).collect::<Result<Vec<_>>>()?;
        let (mut wall, mut cpu) = (Vec::new(), Vec::new());
        for (i, t) in traced.iter().enumerate() {
            let (t_wall, t_cpu) = means(&batches, t.window)?;
            wall.push(t_wall / ((plain[i].0 + plain[i + 1].0) / 2.0) - 1.0);
            cpu.push(t_cpu / ((plain[i].1 + plain[i + 1].1) / 2.0) - 1.0);
        }
        let ((wall, wall_margin), (cpu, cpu_margin)) = (mean_and_margin(&wall), mean_and_margin(&cpu));
        println!(
            "| {} {} | {:.1} | {:+.1}% ± {:.1} | {:+.1}% ± {:.1} | {:+.0}% | {:+.0}% | {:.2}% | {:.1}% |",
            workload.0,
            workload.1,
            median(plain.iter().map(|p| p.0).collect()) / 1e6,
            wall * 100.0,
            wall_margin * 100.0,
            cpu * 100.0,
            cpu_margin * 100.0,
            slowdown(workload.0, GHOSTRACE) * 100.0,
            slowdown(workload.0, BPFTRACE) * 100.0,
            median(traced.iter().map(|t| t.estimated).collect()) * 100.0,
            median(traced.iter().map(|t| t.least_coverage).collect()) * 100.0,
        );
    }
    println!("goal: slowdown under the governor <= 2x the budget (2%) on every workload\n");
    Ok(())
}
