//! `ghostrace daemon`: host-wide tracing. Finds the Go processes running at start-up
//! and those exec'd later (a `sched_process_exec` tracepoint), traces the selected
//! ones with one attachment per executable, forgets them when they exit, writes
//! findings to stdout as JSON lines and serves Prometheus metrics.
//!
//! Threads: the main loop, on a tokio runtime of its own (process events through
//! `AsyncFd`, the governor's switches and the sweep as timers, signals through
//! `tokio::signal`), owns the tracer (discovery, attachments, kernel counters); the
//! reader thread owns the detection engines, whose CPU-bound work stays off that
//! runtime; the HTTP thread, another runtime, serves what both publish, so that a
//! long attach in the main loop never delays a liveness probe.

pub mod caps;
mod findings;
mod fleet;
mod http;
mod podseries;
mod ratelimit;
pub mod select;

use std::{
    net::TcpListener,
    sync::{Arc, atomic::Ordering, mpsc},
    time::Duration,
};

use thiserror::Error;
use tokio::{
    signal::unix::{SignalKind, signal},
    time,
};
use tracer_common::ProcEventKind;

use self::{
    findings::{Findings, Settings},
    fleet::{Fleet, Source},
    http::Shared,
};
pub use self::{
    fleet::Options,
    select::{Rule, SelectError, Selector},
};
use crate::{
    detect::{Config, ConfigError},
    event_loop::{StopSignals, until},
    export::prometheus::{Metrics, MetricsError},
    probes::{ProbeError, Tracer},
};

/// How often known processes are checked against /proc and kernel counters are
/// read into the metrics.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Longest wait for an event or a timer before the loop goes round anyway (the
/// heartbeat `/healthz` looks at).
const MAX_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the event loop: {0}")]
    EventLoop(#[source] std::io::Error),
    #[error("cannot list processes in /proc: {0}")]
    Proc(#[source] std::io::Error),
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the daemon lacks {missing}: docs/deployment.md lists the capabilities it needs")]
    Capabilities { missing: String },
}

/// Everything `ghostrace daemon` is told.
pub struct DaemonConfig {
    pub listen: String,
    pub options: Options,
    pub detect: Config,
    pub ring_bytes: u32,
    /// Room in the probe table.
    pub max_probes: u32,
    /// Least time between two lines of one finding.
    pub finding_interval: Duration,
    /// Stop after this long (tests, benchmarks); `None`: until SIGINT/SIGTERM.
    pub duration: Option<Duration>,
    /// Where SIGHUP reads a new overhead budget from.
    pub budget_file: Option<std::path::PathBuf>,
}

/// Runs until SIGINT/SIGTERM (or `duration`), then detaches everything.
pub fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::EventLoop)?
        .block_on(serve(config))
}

async fn serve(config: DaemonConfig) -> Result<(), DaemonError> {
    let missing = caps::missing_here();
    if !missing.is_empty() {
        let missing = missing.iter().map(|c| format!("{} ({})", c.name, c.why)).collect::<Vec<_>>().join(", ");
        return Err(DaemonError::Capabilities { missing });
    }
    let listener = TcpListener::bind(&config.listen)
        .map_err(|source| DaemonError::Listen { addr: config.listen.clone(), source })?;
    let listening = listener.local_addr().map_or(config.listen.clone(), |a| a.to_string());
    config.detect.validate()?;
    let metrics = Arc::new(Metrics::new()?);
    let shared = Arc::new(Shared::new(metrics.clone()));

    let kernel = crate::probes::kernel::KernelSupport::probe();
    for (feature, found) in &kernel.features {
        metrics.kernel_feature.with_label_values(&[feature.name()]).set(found.yes() as i64);
    }
    let mut tracer = Tracer::load(config.ring_bytes, config.max_probes)?;
    let cost = crate::governor::calibrate::at_startup(&mut tracer);
    metrics.hit_cost.with_label_values(&["emulated"]).set(cost.emulated_s);
    metrics.hit_cost.with_label_values(&["single_stepped"]).set(cost.single_stepped_s);
    // Exec events queue up from here on, so none is missed between scan and loop.
    let events = tracer.watch_processes()?;
    let (control, control_rx) = mpsc::channel();
    let settings = Settings {
        detect: config.detect.clone(),
        interval: config.finding_interval,
        unix_offset_ns: crate::recording::ClockAnchor::now().unix_offset_ns(),
    };
    let mut fleet = Fleet::new(config.options, control, metrics.clone(), cost);
    let coverage = fleet.coverage();
    let findings = Findings::new(control_rx, tracer.take_stacks()?, settings, metrics.clone(), std::io::stdout())
        .with_coverage(Box::new(move |f| {
            let all = coverage.lock().unwrap_or_else(|e| e.into_inner());
            let by_address = all.get(&f.process.binary)?;
            crate::stats::finding_coverage(by_address, f)
        }));
    let reader = crate::pipeline::start(tracer.take_records()?, findings).map_err(DaemonError::EventLoop)?;
    let server = http::serve(listener, shared.clone(), http::Limits::default())
        .map_err(|source| DaemonError::Listen { addr: listening.clone(), source })?;
    let mut stop = StopSignals::new().map_err(DaemonError::EventLoop)?;
    // SIGHUP reads the budget file again.
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::EventLoop)?;
    let mut events = crate::sys::when_readable(events).map_err(DaemonError::EventLoop)?;

    let me = std::process::id();
    for pid in crate::procfs::pids().map_err(DaemonError::Proc)? {
        if pid != me {
            fleet.exec(&mut tracer, pid, Source::Scan);
        }
    }
    fleet.update_gauges();
    publish(&shared, &fleet, &tracer, true);
    shared.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        "daemon ready, {} processes traced ({} links); metrics on http://{listening}/metrics",
        metrics.traced_processes.get(),
        tracer.attach_mode().name()
    );

    let stop_at = config.duration.map(|d| time::Instant::now() + d);
    let mut sweep = time::interval_at(time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    sweep.set_missed_tick_behavior(time::MissedTickBehavior::Delay);
    loop {
        let next = time::Instant::from_std(fleet.govern(&mut tracer)).min(time::Instant::now() + MAX_WAIT);
        tokio::select! {
            () = stop.requested() => break,
            () = until(stop_at) => break,
            _ = hangup.recv() => {
                if let Some(budget) = crate::governor::reload_budget(config.budget_file.as_deref()) {
                    fleet.set_budget(budget);
                }
            }
            ready = events.readable_mut() => {
                // Cleared before the drain below: an event after it wakes the loop again.
                if let Ok(mut ready) = ready {
                    ready.clear_ready();
                }
            }
            _ = sweep.tick() => {
                fleet.sweep(&mut tracer);
                fleet.refresh_counters(&tracer);
                fleet.refresh_governed(&tracer);
            }
            () = time::sleep_until(next) => {}
        }
        while let Some((kind, tgid)) = events.get_mut().next_event() {
            match kind {
                ProcEventKind::Exec if tgid != me => fleet.exec(&mut tracer, tgid, Source::Exec),
                ProcEventKind::Exec => {}
                ProcEventKind::Exit => fleet.exit(&mut tracer, tgid),
            }
        }
        if fleet.take_changed() {
            fleet.update_gauges();
            publish(&shared, &fleet, &tracer, true);
        }
        shared.beat();
    }

    tracing::info!("stopping: detaching every probe");
    shared.ready.store(false, Ordering::Relaxed);
    fleet.refresh_counters(&tracer);
    fleet.shutdown(&mut tracer);
    let (findings, _) = reader.finish();
    findings.close();
    server.stop();
    Ok(())
}

fn publish(shared: &Shared, fleet: &Fleet, tracer: &Tracer, ready: bool) {
    let status = fleet.status(tracer, ready).to_string();
    *shared.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    *shared.blocked.lock().unwrap_or_else(|e| e.into_inner()) = fleet.not_ready();
}
