//! A server under load: started once, then per round one wrk window per
//! configuration, `ghostrace attach` on it for the traced ones (attached before the
//! window, stopped after it). Throughput from wrk, CPU per request from the server's
//! /proc times over the window.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};

use super::{
    Bench, CONFIGS, Measured, Outcome, Sample,
    procfs,
    session::Session,
    workloads,
};

/// Left between attaching and the load: ghostrace's start is not the steady state.
const SETTLE: Duration = Duration::from_secs(1);
/// Between windows: the kernel finishes taking probes out.
const AFTER: Duration = Duration::from_millis(500);
/// Untraced load before the first window: caches, heap, JIT-less warm-up.
const WARM_UP_SECONDS: u64 = 2;
/// wrk's connections (one thread): 2 cores are shared by wrk, the server and ghostrace.
const CONNECTIONS: &str = "8";

/// A program the bench started, stopped (SIGTERM, then SIGKILL after 5 s) however
/// the bench ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn measure(bench: &Bench) -> Result<Vec<Sample>> {
    let spec = bench.workload.server.as_ref().context("not a server")?;
    workloads::port_free(spec.port)?;
    let log = std::fs::File::create(bench.logs.join("server.log"))?;
    let child = Command::new(bench.binary)
        .args(&bench.workload.args)
        .envs(bench.workload.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bench.binary.display()))?;
    let server = Running(child);
    let pid = server.0.id();
    workloads::wait_ready(spec.port, spec.ready, Duration::from_secs(30))?;
    for (method, path) in &spec.setup {
        let status = workloads::http(spec.port, method, path)?;
        ensure!((200..300).contains(&status), "{method} {path}: status {status}");
    }
    wrk(spec, WARM_UP_SECONDS)?;
    let mut samples = Vec::new();
    let mut refused = vec![None; CONFIGS.len()];
    for round in 0..bench.options.rounds {
        for config in Bench::order(round) {
            let since = procfs::host_cpu();
            let outcome = match &refused[config] {
                Some(why) => Outcome::Refused(String::clone(why)),
                None => window(bench, spec, pid, config, round)?,
            };
            if let Outcome::Refused(why) = &outcome {
                refused[config] = Some(why.clone());
            }
            samples.push(Sample { config, round, load: procfs::contention(since), outcome });
            if procfs::stat(pid).map_or(true, |s| s.zombie) {
                bail!("the server exited (see {})", bench.logs.join("server.log").display());
            }
        }
    }
    Ok(samples)
}

/// One load window under one configuration.
fn window(bench: &Bench, spec: &workloads::Server, pid: u32, config: usize, round: usize) -> Result<Outcome> {
    let session = match CONFIGS[config].options {
        None => None,
        Some(options) => {
            let mut args = vec!["attach".to_string(), "--pid".into(), pid.to_string()];
            args.extend(options.iter().map(|o| o.to_string()));
            match Session::start(bench.ghostrace, &args, &[], bench.logs, &Bench::tag(config, round))? {
                Ok(s) => Some(s),
                Err(why) => return Ok(Outcome::Refused(why)),
            }
        }
    };
    if session.is_some() {
        std::thread::sleep(SETTLE);
    }
    let server_before = procfs::stat(pid)?.own;
    let tracer_before = session.as_ref().map(|s| procfs::stat(s.pid())).transpose()?.map(|s| s.own);
    let load = wrk(spec, bench.options.seconds)?;
    let server_cpu = procfs::stat(pid)?.own.minus(server_before);
    let tracer_window = match (&session, tracer_before) {
        (Some(s), Some(before)) => Some(procfs::stat(s.pid())?.own.minus(before)),
        _ => None,
    };
    let ended = session.map(Session::stop).transpose()?;
    std::thread::sleep(AFTER);
    if let Some(e) = &ended
        && !e.ok
    {
        return Ok(Outcome::Refused(format!("failed: {}", e.last_line)));
    }
    Ok(Outcome::Measured(Measured {
        speed: load.requests as f64 / load.seconds,
        program_cpu: server_cpu.total() / load.requests as f64,
        ghostrace: ended.as_ref().map(|e| e.own),
        ghostrace_window: tracer_window,
        estimated: ended.as_ref().and_then(|e| e.estimated),
        attached: ended.as_ref().and_then(|e| e.attached),
        hit: ended.as_ref().and_then(|e| e.hit),
        hits: ended.as_ref().and_then(|e| e.hits),
        records: ended.as_ref().and_then(|e| e.records),
        serious: ended.map(|e| e.serious).unwrap_or_default(),
    }))
}

struct Load {
    requests: u64,
    seconds: f64,
}

/// `wrk` for `seconds` (bounded: its own duration, one thread, [`CONNECTIONS`]
/// connections, 127.0.0.1 only); every response must be 2xx.
fn wrk(spec: &workloads::Server, seconds: u64) -> Result<Load> {
    ensure!(spec.url.starts_with("http://127.0.0.1:"), "load goes to 127.0.0.1 only, not {}", spec.url);
    let text = crate::step::output(
        Command::new("wrk").args(["-t1", "-c", CONNECTIONS, "--timeout", "5s", "-d"]).arg(format!("{seconds}s")).arg("-s").arg(&spec.script).arg(&spec.url),
    )?;
    parse_wrk(&text).with_context(|| format!("wrk said: {text}"))
}

/// "  31890 requests in 5.04s, 11.68MB read"; errors: "Non-2xx or 3xx responses: N",
/// "Socket errors: connect N, read N, write N, timeout N".
fn parse_wrk(text: &str) -> Result<Load> {
    let line = text.lines().find(|l| l.contains(" requests in ")).context("no requests line")?;
    let mut words = line.split_whitespace();
    let requests: u64 = words.next().context("count")?.parse()?;
    let seconds = words.nth(2).context("duration")?.trim_end_matches(',');
    let seconds: f64 = match seconds.strip_suffix("ms") {
        Some(ms) => ms.parse::<f64>()? / 1e3,
        None => seconds.strip_suffix('s').context("duration unit")?.parse()?,
    };
    if let Some(bad) = text.lines().find(|l| l.contains("Non-2xx") || l.contains("Socket errors")) {
        bail!("the load had errors ({})", bad.trim());
    }
    ensure!(requests > 0, "no request completed");
    Ok(Load { requests, seconds })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_counts_and_errors_are_read() {
        let ok = "Running 5s test @ http://127.0.0.1:1\n  13498 requests in 5.04s, 5.55MB read\nRequests/sec:   2677.11\n";
        let load = parse_wrk(ok).expect("parses");
        assert_eq!((load.requests, load.seconds), (13498, 5.04));
        assert!(parse_wrk("  31890 requests in 5.04s, 11.68MB read\n  Non-2xx or 3xx responses: 31890\n").is_err());
    }
}
