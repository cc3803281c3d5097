//! Benchmark (root): the daemon's resident memory and CPU while it traces 20 idle Go
//! processes, then while it also traces one busy one. Prints figures; asserts nothing.
//!
//!     sudo -E cargo bench -p tracer-user --bench daemon        (GHOSTRACE_BENCH_SECS=20)

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const IDLE: usize = 20;

/// Kills and reaps on drop.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A number field of /proc/PID/status (`VmRSS:` in KiB; `Uid:` real, effective, ...).
fn status_field(pid: &str, key: &str, nth: usize) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().nth(nth)?.parse().ok())
        .unwrap_or(0)
}

/// (resident KiB, peak resident KiB) of a process.
fn memory(pid: u32) -> (u64, u64) {
    (status_field(&pid.to_string(), "VmRSS:", 0), status_field(&pid.to_string(), "VmHWM:", 0))
}

/// The body of a 200 answer, or `None` (not listening yet, not ready).
fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    // The answer's version follows the request's (HTTP/1.0).
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

fn metric_sum(port: u16, prefix: &str) -> f64 {
    get(port, "/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Measures the daemon over `secs`: (CPU % of one core, RSS MiB, peak RSS MiB, probe hits/s).
/// CPU is the daemon's own `process_cpu_seconds_total`.
fn measure(pid: u32, port: u16, secs: u64) -> (f64, f64, f64, f64) {
    let cpu0 = metric_sum(port, "process_cpu_seconds_total");
    let h0 = metric_sum(port, "ghostrace_probe_hits_total");
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu1 = metric_sum(port, "process_cpu_seconds_total");
    let (rss, peak) = memory(pid);
    let elapsed = start.elapsed().as_secs_f64();
    // Kernel counters are read into the metrics every 2 s.
    std::thread::sleep(Duration::from_millis(2100));
    let h1 = metric_sum(port, "ghostrace_probe_hits_total");
    ((cpu1 - cpu0) / elapsed * 100.0, rss as f64 / 1024.0, peak as f64 / 1024.0, (h1 - h0) / (elapsed + 2.1))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if status_field("self", "Uid:", 1) != 0 {
        eprintln!("daemon benchmark skipped: needs root (BPF)");
        return;
    }
    let Some(tc) = support::toolchains().pop() else {
        eprintln!("daemon benchmark skipped: no Go toolchain (cargo xtask bootstrap)");
        return;
    };
    let secs: u64 = std::env::var("GHOSTRACE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let dir = support::repo().join("target/bench-daemon");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("svc");
    std::fs::copy(support::build(&tc, "fixtures/service", false), &bin).unwrap();
    let start = |args: &[&str]| {
        Kill(Command::new(&bin).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start svc"))
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let daemon = Kill(
        Command::new(env!("CARGO_BIN_EXE_ghostrace"))
            .args(["daemon", "--listen", &format!("127.0.0.1:{port}"), "--select"])
            .arg(format!("path:{}/**", dir.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("daemon.err")).unwrap())
            .spawn()
            .expect("start the daemon"),
    );
    let pid = daemon.0.id();
    let wait_traced = |n: f64| {
        let t = Instant::now();
        while get(port, "/readyz").is_none() || metric_sum(port, "ghostrace_traced_processes") < n {
            assert!(t.elapsed() < Duration::from_secs(60), "daemon did not trace {n} processes: {}", log(&dir));
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_traced(0.0);
    let (rss_empty, _) = memory(pid);
    let idle: Vec<Kill> = (0..IDLE).map(|_| start(&["idle"])).collect();
    wait_traced(IDLE as f64);
    let (cpu_idle, rss_idle, peak_idle, hits_idle) = measure(pid, port, secs);
    let busy = start(&["busy"]);
    wait_traced(IDLE as f64 + 1.0);
    let (cpu_busy, rss_busy, peak_busy, hits_busy) = measure(pid, port, secs);
    // process_cpu_seconds_total counts clock ticks (10 ms).
    let resolution = 0.01 / secs as f64 * 100.0;
    println!(
        "ghostrace daemon ({}, Go {} service fixture, {secs} s per phase, CPU resolution {resolution:.2}%)",
        env!("CARGO_PKG_VERSION"),
        tc.version
    );
    println!("  ready, nothing traced:    RSS {:.1} MiB", rss_empty as f64 / 1024.0);
    println!(
        "  {IDLE} idle processes:        CPU {cpu_idle:.2}% of a core, RSS {rss_idle:.1} MiB (peak {peak_idle:.1}), {hits_idle:.0} probe hits/s"
    );
    println!(
        "  + 1 busy process:         CPU {cpu_busy:.2}% of a core, RSS {rss_busy:.1} MiB (peak {peak_busy:.1}), {hits_busy:.0} probe hits/s"
    );
    drop(busy);
    drop(idle);
    drop(daemon);
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("daemon.err")).unwrap_or_default()
}
