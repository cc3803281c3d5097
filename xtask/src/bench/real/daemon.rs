//! `ghostrace daemon` over a fleet of real Go programs running at once: the servers
//! of the bench plus more Debian Go daemons (exporters, rclone twice, gopls, dlv),
//! Prometheus scraping them every second, and a restic backup started every few
//! seconds (processes that come and go). The same load runs untraced, then under a
//! fresh daemon with the default budget and one with the budget off, each selecting
//! only the fleet's executables (nothing else on the host is traced); reported: the
//! servers' throughput, the fleet's and the daemon's CPU, its RSS, /status, metrics.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{
    procfs::{self, Cpu},
    programs::{self, Program},
    server::Running,
    workloads,
};

/// Go daemons run only in the fleet (not load-tested one by one).
const EXTRA: &[Program] = &[
    Program { name: "node-exporter", kind: programs::Kind::Server, packages: &["prometheus-node-exporter"], binary: "usr/bin/prometheus-node-exporter" },
    Program { name: "pushgateway", kind: programs::Kind::Server, packages: &["prometheus-pushgateway"], binary: "usr/bin/prometheus-pushgateway" },
    Program { name: "blackbox-exporter", kind: programs::Kind::Server, packages: &["prometheus-blackbox-exporter"], binary: "usr/bin/prometheus-blackbox-exporter" },
    Program { name: "rclone", kind: programs::Kind::Server, packages: &["rclone"], binary: "usr/bin/rclone" },
    Program { name: "gopls", kind: programs::Kind::Server, packages: &["gopls"], binary: "usr/bin/gopls" },
    Program { name: "dlv", kind: programs::Kind::Server, packages: &["delve"], binary: "usr/bin/dlv" },
];

/// The daemon's endpoint.
const LISTEN: u16 = 24399;
/// Each window's length, and how long of it the servers are loaded.
const WINDOW: Duration = Duration::from_secs(30);
const LOADED: Duration = Duration::from_secs(20);
/// How often the daemon's RSS and CPU are read.
const SAMPLE: Duration = Duration::from_secs(1);

/// A fleet member's process.
struct Member {
    name: &'static str,
    process: Running,
}

/// Arguments, port and ready path of each process of a fleet-only program (empty:
/// not probed, only alive a second later: dlv's DAP server exits when the first
/// client that connected leaves).
fn extra_commands(name: &str, installed: &programs::Installed, scratch: &Path) -> Result<Vec<(Vec<OsString>, u16, &'static str)>> {
    let etc = |f: &str| installed.root.join("etc/prometheus").join(f).display().to_string();
    let commands: Vec<(Vec<String>, u16, &str)> = match name {
        "node-exporter" => vec![(vec!["--web.listen-address=127.0.0.1:24391".into()], 24391, "/metrics")],
        "pushgateway" => vec![(vec!["--web.listen-address=127.0.0.1:24392".into()], 24392, "/-/ready")],
        "blackbox-exporter" => vec![(vec!["--web.listen-address=127.0.0.1:24393".into(), format!("--config.file={}", etc("blackbox.yml"))], 24393, "/metrics")],
        "rclone" => {
            let dir = scratch.join("rclone-files");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("hello.txt"), "hello\n")?;
            // Two processes of one executable: they share its probes.
            vec![
                (vec!["serve".into(), "http".into(), "--addr".into(), "127.0.0.1:24395".into(), dir.display().to_string()], 24395, "/"),
                (vec!["rcd".into(), "--rc-addr".into(), "127.0.0.1:24396".into(), "--rc-no-auth".into()], 24396, ""),
            ]
        }
        "gopls" => vec![(vec!["serve".into(), "-listen=127.0.0.1:24398".into(), "-debug=127.0.0.1:24397".into()], 24397, "/")],
        // A Debug Adapter Protocol server waiting for its client (on a port nothing scrapes:
        // it exits after one bad client).
        "dlv" => vec![(vec!["dap".into(), "--listen=127.0.0.1:24389".into()], 24389, "")],
        other => bail!("no fleet command for {other}"),
    };
    Ok(commands.into_iter().map(|(args, port, ready)| (args.into_iter().map(OsString::from).collect(), port, ready)).collect())
}

/// Starts one member and waits until it answers.
fn start(name: &'static str, binary: &Path, args: &[OsString], env: &[(&'static str, OsString)], port: u16, ready: &str, logs: &Path) -> Result<Member> {
    workloads::port_free(port)?;
    let log = std::fs::File::create(logs.join(format!("{name}-{port}.log")))?;
    let child = Command::new(binary)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let member = Member { name, process: Running(child) };
    let answered = if ready.is_empty() {
        std::thread::sleep(Duration::from_secs(1));
        procfs::stat(member.process.0.id()).and_then(|s| if s.zombie { bail!("exited at once") } else { Ok(()) })
    } else {
        workloads::wait_ready(port, ready, Duration::from_secs(30))
    };
    answered.with_context(|| format!("{name} (log: {})", logs.join(format!("{name}-{port}.log")).display()))?;
    Ok(member)
}

/// The fleet's own CPU so far.
fn fleet_cpu(fleet: &[Member]) -> Cpu {
    fleet.iter().filter_map(|m| procfs::stat(m.process.0.id()).ok()).fold(Cpu::default(), |a, s| Cpu { user: a.user + s.own.user, sys: a.sys + s.own.sys })
}

/// The same load in every window: wrk on the three servers at once (2 connections
/// each, [`LOADED`], 127.0.0.1), as on a node where several services are busy, while
/// restic backs up every 8 s; returns each server's requests per second and the
/// restic runs' CPU.
fn load(servers: &[(&'static str, u16, PathBuf)], restic: &Restic) -> Result<(Vec<f64>, Cpu)> {
    let stop = Arc::new(AtomicBool::new(false));
    let backups = {
        let stop = stop.clone();
        let (binary, args, env, repo) = restic.clone();
        std::thread::spawn(move || -> Result<Cpu> {
            let mut cpu = Cpu::default();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let _ = std::fs::remove_dir_all(&repo);
                crate::step::run(Command::new(&binary).args(["-q", "init", "-r"]).arg(&repo).envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null()))?;
                let mut child = Command::new(&binary).args(&args).envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
                let (stat, _) = procfs::final_stat(&mut child)?;
                cpu = Cpu { user: cpu.user + stat.own.user, sys: cpu.sys + stat.own.sys };
                std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
            }
            Ok(cpu)
        })
    };
    let started = Instant::now();
    let loads: Vec<_> = servers
        .iter()
        .map(|(name, port, script)| {
            let mut wrk = Command::new("wrk");
            wrk.args(["-t1", "-c2", "-d"]).arg(format!("{}s", LOADED.as_secs())).arg("-s").arg(script).arg(format!("http://127.0.0.1:{port}"));
            (*name, std::thread::spawn(move || crate::step::output(&mut wrk)))
        })
        .collect();
    let mut rates = Vec::new();
    for (name, wrk) in loads {
        let rate = wrk.join().map_err(|_| anyhow::anyhow!("wrk's thread panicked")).and_then(|out| {
            let text = out?;
            let line = text.lines().find_map(|l| l.trim().strip_prefix("Requests/sec:")).context("no Requests/sec line")?;
            Ok(line.trim().parse::<f64>()?)
        });
        rates.push(rate.unwrap_or_else(|e| {
            eprintln!("xtask: bench-real daemon: wrk on {name}: {e:#}");
            f64::NAN
        }));
    }
    std::thread::sleep(WINDOW.saturating_sub(started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let cpu = backups.join().map_err(|_| anyhow::anyhow!("the restic loop panicked"))??;
    Ok((rates, cpu))
}

/// Body of a GET to 127.0.0.1:`port` (HTTP/1.0: read to the end).
fn get(port: u16, path: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_string()))
}

pub fn measure(ghostrace: &Path, out: &Path) -> Result<String> {
    let logs = out.join("daemon");
    std::fs::create_dir_all(&logs)?;
    let scratch = super::scratch().join("daemon");
    std::fs::create_dir_all(&scratch)?;
    let mut fleet = Vec::new();
    let mut servers = Vec::new();
    let mut restic = None;
    let mut started_at = String::new();
    for program in programs::PROGRAMS.iter().chain(EXTRA) {
        let installed = programs::install(program)?;
        let dir = scratch.join(program.name);
        std::fs::create_dir_all(&dir)?;
        if programs::PROGRAMS.iter().any(|p| p.name == program.name) {
            let w = workloads::for_program(program.name, &installed, &dir)?;
            match (&w.server, program.name) {
                (Some(s), _) => {
                    fleet.push(start(program.name, &installed.binary, &w.args, &w.env, s.port, s.ready, &logs)?);
                    for (method, path) in &s.setup {
                        workloads::http(s.port, method, path)?;
                    }
                    if program.name != "prometheus" {
                        servers.push((program.name, s.port, s.script.clone()));
                    }
                }
                (None, "restic") => {
                    let repo = w.batch.as_ref().and_then(|b| b.clean.first().cloned()).context("restic's repository")?;
                    restic = Some((installed.binary.clone(), w.args.clone(), w.env.clone(), repo));
                }
                // hugo: a batch program of the bench only.
                _ => continue,
            }
        } else {
            for (args, port, ready) in extra_commands(program.name, &installed, &dir)? {
                fleet.push(start(program.name, &installed.binary, &args, &[("HOME", dir.clone().into_os_string())], port, ready, &logs)?);
            }
        }
        let _ = write!(started_at, "{} ", program.name);
    }
    let restic = restic.context("restic is in the bench's programs")?;
    eprintln!("xtask: bench-real daemon: {} Go programs running ({started_at}) and restic every 8 s; untraced window", fleet.len());
    let since = procfs::host_cpu();
    let before = fleet_cpu(&fleet);
    let (rates_untraced, restic_untraced) = load(&servers, &restic)?;
    let fleet_untraced = fleet_cpu(&fleet).minus(before);
    let load_untraced = procfs::contention(since);

    // The kernel names executables by their real path (.cache may be a symbolic link).
    let select = format!("path:{}/**", std::fs::canonicalize(programs::dir())?.display());
    let mut windows = Vec::new();
    for budget in BUDGETS {
        eprintln!("xtask: bench-real daemon: window under the daemon, --overhead-budget {budget}");
        windows.push(traced_window(ghostrace, &select, budget, &fleet, &servers, &restic, &logs)?);
    }
    let fleet_size = fleet.len();
    let stopped: Vec<&str> = fleet.iter().filter(|m| procfs::stat(m.process.0.id()).map_or(true, |s| s.zombie)).map(|m| m.name).collect();
    drop(fleet);

    let mut text = String::new();
    let _ = writeln!(text, "\n## ghostrace daemon over {fleet_size} Go processes at once (+ restic every 8 s)\n");
    let _ = writeln!(
        text,
        "programs: {started_at}; --select {select}; windows of {} s, the same load in each (wrk 2 connections for {} s on etcd, \
         influxd and caddy at once; prometheus scraping all every 1 s); the daemon is started afresh for each traced window\n",
        WINDOW.as_secs(),
        LOADED.as_secs()
    );
    let rates = |r: &[f64]| servers.iter().zip(r).map(|((name, _, _), r)| format!("{name} {r:.0}")).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        text,
        "| window | requests/s (wrk) | fleet CPU user/sys s | restic CPU s | daemon CPU user/sys s | daemon RSS ready / peak MiB | load avg (CPUs busy) |\n|---|---|---:|---:|---:|---:|---|"
    );
    let _ = writeln!(
        text,
        "| untraced | {} | {:.2} / {:.2} | {:.2} | – | – | {load_untraced} |",
        rates(&rates_untraced),
        fleet_untraced.user,
        fleet_untraced.sys,
        restic_untraced.total()
    );
    for (budget, w) in BUDGETS.iter().zip(&windows) {
        let _ = writeln!(
            text,
            "| daemon, budget {budget} | {} | {:.2} / {:.2} | {:.2} | {:.2} / {:.2} | {} / {:.0} | {} |",
            rates(&w.rates),
            w.fleet.user,
            w.fleet.sys,
            w.restic.total(),
            w.daemon.user,
            w.daemon.sys,
            w.ready_rss.map_or("?".into(), |r| format!("{r:.0}")),
            w.peak_rss,
            w.load
        );
    }
    if !stopped.is_empty() {
        let _ = writeln!(text, "\nfleet members that had exited by the end: {}", stopped.join(", "));
    }
    for (budget, w) in BUDGETS.iter().zip(&windows) {
        let _ = writeln!(
            text,
            "\n### daemon, --overhead-budget {budget}\n\nready after {}; CPU over its whole life {:.2} user / {:.2} sys s; {}",
            w.ready.as_ref().map_or_else(|e| format!("never ({e:#})"), |d| format!("{:.1} s", d.as_secs_f64())),
            w.total.user,
            w.total.sys,
            w.exit
        );
        let _ = writeln!(text, "\n/status:");
        let _ = write!(text, "{}", summarize_status(&w.status));
        let _ = writeln!(text, "\nmetrics:");
        // Findings series are listed only where they counted something.
        for line in w.metrics.lines().filter(|l| !(l.starts_with("ghostrace_findings_total") && l.ends_with(" 0"))).filter(|l| {
            !l.starts_with('#')
                && ["ghostrace_attached_probes", "ghostrace_attached_binaries", "ghostrace_traced_processes", "ghostrace_go_processes", "ghostrace_attach_errors_total", "ghostrace_estimated_overhead_ratio", "ghostrace_findings_total"]
                    .iter()
                    .any(|m| l.starts_with(m))
        }) {
            let _ = writeln!(text, "    {line}");
        }
        let _ = writeln!(text, "\nghostrace_estimated_overhead_ratio read every second of the window (n, zero readings, min / median / max):");
        for (binary, values) in &w.estimates {
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let zeros = sorted.iter().filter(|v| **v == 0.0).count();
            let (min, mid, max) = (sorted.first().copied().unwrap_or(f64::NAN), sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN), sorted.last().copied().unwrap_or(f64::NAN));
            let _ = writeln!(text, "    {binary}: n {}, zero {zeros}, {min:.4} / {mid:.4} / {max:.4}", sorted.len());
        }
        let serious = w.findings.lines().filter(|l| l.contains("\"severity\":\"warning\"") || l.contains("\"severity\":\"critical\"")).count();
        let _ = writeln!(text, "\nfindings on stdout: {} lines, {serious} at warning or worse", w.findings.lines().count());
        let _ = writeln!(text, "\ndaemon stderr ({} lines; first 30):", w.stderr.lines().count());
        for line in w.stderr.lines().take(30) {
            let _ = writeln!(text, "    {line}");
        }
    }
    Ok(text)
}

/// The daemon's budgets, one traced window each.
const BUDGETS: &[&str] = &["1%", "off"];

/// One window under a fresh `ghostrace daemon`, and what it said.
struct Window {
    rates: Vec<f64>,
    fleet: Cpu,
    restic: Cpu,
    /// The daemon's CPU within the window and over its whole life.
    daemon: Cpu,
    total: Cpu,
    ready: Result<Duration>,
    ready_rss: Option<f64>,
    peak_rss: f64,
    /// Each binary's `ghostrace_estimated_overhead_ratio`, read every second.
    estimates: BTreeMap<String, Vec<f64>>,
    load: String,
    exit: std::process::ExitStatus,
    status: String,
    metrics: String,
    findings: String,
    stderr: String,
}

type Restic = (PathBuf, Vec<OsString>, Vec<(&'static str, OsString)>, PathBuf);

fn traced_window(ghostrace: &Path, select: &str, budget: &str, fleet: &[Member], servers: &[(&'static str, u16, PathBuf)], restic: &Restic, logs: &Path) -> Result<Window> {
    let tag = format!("daemon-budget-{}", budget.trim_end_matches('%'));
    let (findings_file, stderr_file) = (logs.join(format!("{tag}.findings.jsonl")), logs.join(format!("{tag}.stderr")));
    let mut daemon = Command::new(ghostrace)
        .args(["daemon", "--listen", &format!("127.0.0.1:{LISTEN}"), "--select", select, "--overhead-budget", budget])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&findings_file)?)
        .stderr(std::fs::File::create(&stderr_file)?)
        .spawn()
        .context("cannot start ghostrace daemon")?;
    let t0 = Instant::now();
    let ready = workloads::wait_ready(LISTEN, "/readyz", Duration::from_secs(120)).map(|()| t0.elapsed());
    let ready_rss = procfs::rss_mib(daemon.id());
    let since = procfs::host_cpu();
    let daemon_before = procfs::stat(daemon.id())?.own;
    let before = fleet_cpu(fleet);
    let sampler = {
        let pid = daemon.id();
        std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            let mut estimates: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            let until = Instant::now() + WINDOW;
            while Instant::now() < until {
                peak = peak.max(procfs::rss_mib(pid).unwrap_or(0.0));
                for (binary, ratio) in estimated_overhead(&get(LISTEN, "/metrics").unwrap_or_default()) {
                    estimates.entry(binary).or_default().push(ratio);
                }
                std::thread::sleep(SAMPLE);
            }
            (peak, estimates)
        })
    };
    let (rates, restic_cpu) = load(servers, restic)?;
    let fleet_cpu = fleet_cpu(fleet).minus(before);
    let daemon_cpu = procfs::stat(daemon.id())?.own.minus(daemon_before);
    let load = procfs::contention(since);
    let (peak_rss, estimates) = sampler.join().unwrap_or_default();
    let status = get(LISTEN, "/status").unwrap_or_default();
    let metrics = get(LISTEN, "/metrics").unwrap_or_default();
    std::fs::write(logs.join(format!("{tag}.status.json")), &status)?;
    std::fs::write(logs.join(format!("{tag}.metrics.txt")), &metrics)?;
    crate::step::run(Command::new("kill").args(["-TERM", &daemon.id().to_string()]))?;
    let (total, exit) = procfs::final_stat(&mut daemon)?;
    Ok(Window {
        rates,
        fleet: fleet_cpu,
        restic: restic_cpu,
        daemon: daemon_cpu,
        total: total.own,
        ready,
        ready_rss,
        peak_rss,
        estimates,
        load,
        exit,
        status,
        metrics,
        findings: std::fs::read_to_string(&findings_file).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_file).unwrap_or_default(),
    })
}

/// `ghostrace_estimated_overhead_ratio{binary="NAME"} VALUE` lines of a metrics text.
fn estimated_overhead(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("ghostrace_estimated_overhead_ratio{binary=\"")?;
            let (binary, value) = rest.split_once("\"} ")?;
            Some((binary.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The attached executables (path, probes, pids) and the untraced Go processes.
fn summarize_status(status: &str) -> String {
    let mut text = String::new();
    let Ok(v) = serde_json::from_str::<Value>(status) else {
        return format!("    (not JSON: {:?})\n", status.chars().take(200).collect::<String>());
    };
    for b in v["binaries"].as_array().into_iter().flatten() {
        let _ = writeln!(text, "    traced {} ({}): {} probes, pids {}", b["path"].as_str().unwrap_or("?"), b["go_version"].as_str().unwrap_or("?"), b["probes"], b["pids"]);
    }
    for u in v["untraced_go"].as_array().into_iter().flatten() {
        let _ = writeln!(text, "    untraced {u}");
    }
    let _ = writeln!(text, "    kernel_traced_pids: {}", v["kernel_traced_pids"]);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_binarys_estimate_is_read_from_the_metrics() {
        let text = "# HELP x\nghostrace_estimated_overhead_ratio{binary=\"etcd\"} 0.25\nghostrace_attached_probes 3\nghostrace_estimated_overhead_ratio{binary=\"influxd\"} 0\n";
        assert_eq!(estimated_overhead(text), vec![("etcd".to_string(), 0.25), ("influxd".to_string(), 0.0)]);
    }
}
