//! The daemon's reader-thread side: one detection engine per traced process, fed by
//! the ring buffer, whose findings go to stdout as JSON lines (rate-limited) and
//! into the metrics. The main thread adds and removes processes over a channel.

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, mpsc::Receiver},
    time::Duration,
};

use aya::maps::{MapData, StackTraceMap};

use super::{podseries::PodSeries, ratelimit::Limiter};
use crate::{
    container::{self, Container},
    detect::{Config, Engine, ProcessInfo, Stats},
    events::Event,
    export::{json::JsonLines, prometheus::Metrics},
    gobin::GoBinary,
    live::Live,
    pipeline::Sink,
    symbolize::BinarySymbols,
    sys::monotonic_ns,
};

/// Stacks kept per process before its cache starts over.
const STACK_LIMIT: usize = 4096;
/// How often each engine's findings and statistics are looked at.
const CHECK_EVERY_NS: u64 = 1_000_000_000;

/// A process to start or stop watching.
pub enum Control {
    Add {
        info: ProcessInfo,
        binary: Arc<GoBinary>,
        label: String,
        /// Boxed, or every message would be as large as a container's identity.
        container: Option<Box<Container>>,
    },
    Remove {
        pid: u32,
    },
}

struct Watched {
    live: Live,
    label: String,
    container: Option<Container>,
    limiter: Limiter,
    /// Engine statistics at the last look.
    last: Stats,
    /// Some finding's last line is behind its count.
    behind: bool,
}

/// Settings of the findings side.
pub struct Settings {
    pub detect: Config,
    /// `--finding-interval`: least time between two lines of one finding.
    pub interval: Duration,
    /// Unix time minus kernel monotonic time, for the lines' wall-clock fields.
    pub unix_offset_ns: i128,
}

/// The [`Sink`] of the daemon's reader thread.
pub struct Findings<W: Write> {
    control: Receiver<Control>,
    stack_map: StackTraceMap<MapData>,
    watched: HashMap<u32, Watched>,
    settings: Settings,
    metrics: Arc<Metrics>,
    out: JsonLines<W>,
    next_check_ns: u64,
    write_failed: bool,
    pod_series: PodSeries,
}

impl<W: Write> Findings<W> {
    pub fn new(
        control: Receiver<Control>,
        stack_map: StackTraceMap<MapData>,
        settings: Settings,
        metrics: Arc<Metrics>,
        out: W,
    ) -> Self {
        let out = JsonLines::new(out).with_unix_offset(settings.unix_offset_ns);
        Self {
            control,
            stack_map,
            watched: HashMap::new(),
            settings,
            metrics,
            out,
            next_check_ns: 0,
            write_failed: false,
            pod_series: PodSeries::default(),
        }
    }

    /// Adds each finding's probe coverage to its JSON line.
    pub fn with_coverage(mut self, coverage: crate::export::json::CoverageOf) -> Self {
        self.out = self.out.with_coverage(coverage);
        self
    }

    fn apply_control(&mut self) {
        while let Ok(message) = self.control.try_recv() {
            match message {
                Control::Add { info, binary, label, container } => {
                    let Ok(mut engine) = Engine::new(self.settings.detect.clone()) else { continue };
                    let symbols = BinarySymbols::with_binary(std::path::Path::new(&info.binary), binary);
                    let pid = info.pid;
                    engine.add_process(info);
                    let live = Live::new(engine, symbols).with_stack_limit(STACK_LIMIT);
                    let watched = Watched {
                        live,
                        label,
                        container: container.map(|c| *c),
                        limiter: Limiter::new(self.settings.interval),
                        last: Stats::default(),
                        behind: false,
                    };
                    if let Some(old) = self.watched.insert(pid, watched) {
                        self.retire(old);
                    }
                }
                Control::Remove { pid } => {
                    if let Some(old) = self.watched.remove(&pid) {
                        self.retire(old);
                    }
                }
            }
        }
    }

    /// A process is gone: its pending candidates settle, its last findings are
    /// written, and nothing of it is kept.
    fn retire(&mut self, mut w: Watched) {
        w.live.engine.finish();
        self.look(&mut w, true);
        self.pod_series.process_gone(&w.label, container::labels(w.container.as_ref()), monotonic_ns());
    }

    /// Writes what changed in one engine's findings and statistics.
    fn look(&mut self, w: &mut Watched, last: bool) {
        let stats = w.live.engine.stats();
        // Candidates settle into findings without new events, and rate-limited
        // lines fall due later: either is a reason to look.
        let moved = stats.events != w.last.events || stats.findings != w.last.findings;
        if stats.findings > 0 && (moved || w.behind || last) {
            let now = monotonic_ns();
            w.behind = false;
            for f in w.live.findings() {
                let verdict = w.limiter.observe(&f, now, last);
                w.behind |= verdict.behind;
                let place = container::labels(w.container.as_ref());
                self.metrics.count_finding(f.detector, f.severity, &w.label, place, verdict.new, verdict.occurrences);
                if verdict.print && !self.write_failed && self.out.write_in(&f, w.container.as_ref()).is_err() {
                    // stdout closed: metrics carry on, lines stop.
                    self.write_failed = true;
                }
            }
        }
        let m = &self.metrics;
        m.detector_evictions.with_label_values(&["table_full"]).inc_by(stats.evicted.saturating_sub(w.last.evicted));
        m.detector_evictions.with_label_values(&["idle"]).inc_by(stats.expired.saturating_sub(w.last.expired));
        m.findings_dropped.inc_by(stats.findings_dropped.saturating_sub(w.last.findings_dropped));
        w.last = stats;
    }

    /// Stops: every process is retired (the daemon is shutting down).
    pub fn close(mut self) {
        self.apply_control();
        for (_, w) in std::mem::take(&mut self.watched) {
            self.retire(w);
        }
    }
}

impl<W: Write + Send + 'static> Sink for Findings<W> {
    fn record(&mut self, _raw: &[u8], event: Event) {
        self.metrics.records_received.inc();
        if !self.watched.contains_key(&event.tgid) {
            // The kernel may report a process before its Add message is read.
            self.apply_control();
        }
        if let Some(w) = self.watched.get_mut(&event.tgid) {
            w.live.record(&self.stack_map, &event);
        }
    }

    fn tick(&mut self) {
        self.apply_control();
        let now = monotonic_ns();
        for w in self.watched.values_mut() {
            w.live.tick(now);
        }
        if now >= self.next_check_ns {
            self.next_check_ns = now + CHECK_EVERY_NS;
            let mut watched = std::mem::take(&mut self.watched);
            for w in watched.values_mut() {
                self.look(w, false);
            }
            self.watched = watched;
            let tracked: u64 = self.watched.values().map(|w| w.last.tracked).sum();
            self.metrics.detector_tracked.set(tracked as i64);
            let watched = &self.watched;
            let live = |(binary, labels): &(String, [String; 3])| {
                watched.values().any(|w| {
                    w.label == *binary
                        && container::labels(w.container.as_ref()) == labels.each_ref().map(String::as_str)
                })
            };
            for (binary, labels) in self.pod_series.due(now, live) {
                self.metrics.remove_binary(&binary, labels.each_ref().map(String::as_str));
            }
        }
    }
}
