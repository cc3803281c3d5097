//! The detection engine: hands each event to its detector family, keeps the stream's
//! clock, the traced processes and the deduplicated findings.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    config::{Config, ConfigError},
    dedup::Dedup,
    finding::{Finding, ProcessInfo},
    lists::Lists,
    maps::Maps,
    slices::Slices,
    symbols::Symbolizer,
};
use crate::events::{Event, EventKind};

/// Every `SWEEP_EVERY` events each table examines as many slots for expiry (one
/// per event, in sequential batches). Expired entries are also dropped when touched
/// and chosen first when a full table needs room: the sweep only gives memory back.
const SWEEP_EVERY: u64 = 64;
/// ... and per explicit clock move (`advance_to`), when the stream is quiet.
const QUIET_SWEEP: usize = 4096;

/// What the engine did, for metrics and the end-of-run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub events: u64,
    /// Records without an identity to follow (zero-capacity slices share
    /// `runtime.zerobase`) or without a goroutine (goid 0).
    pub ignored: u64,
    /// Per-object states dropped because their table was full (least recently used).
    pub evicted: u64,
    /// Per-object states dropped after `ttl` without use.
    pub expired: u64,
    /// Slice candidates dropped because their array proved to be copied by value.
    pub suppressed: u64,
    /// Occurrences of new call-site pairs beyond `max_findings`.
    pub findings_dropped: u64,
    /// Arrays, maps, iterators and lists tracked now.
    pub tracked: u64,
    /// Distinct findings so far.
    pub findings: u64,
}

/// Feed it events in the order they arrived; ask for findings at any time.
/// Deterministic: the same events in the same order give the same findings.
pub struct Engine {
    slices: Slices,
    maps: Maps,
    lists: Lists,
    found: Dedup,
    processes: BTreeMap<u32, ProcessInfo>,
    /// The latest timestamp seen: the stream's clock.
    now: u64,
    events: u64,
}

impl Engine {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            slices: Slices::new(&config),
            maps: Maps::new(&config),
            lists: Lists::new(&config),
            found: Dedup::new(config.max_findings),
            processes: BTreeMap::new(),
            now: 0,
            events: 0,
        })
    }

    /// Describes a traced process (binary, Go version) for its findings.
    pub fn add_process(&mut self, info: ProcessInfo) {
        self.processes.insert(info.pid, info);
    }

    pub fn processes(&self) -> impl Iterator<Item = &ProcessInfo> {
        self.processes.values()
    }

    pub fn process(&mut self, ev: &Event) {
        self.events += 1;
        self.now = self.now.max(ev.ts_ns);
        let (now, out) = (self.now, &mut self.found);
        match ev.kind {
            EventKind::SliceGrow { .. } => self.slices.on_grow(ev, now, out),
            EventKind::MapIterStart { map, iter } => self.maps.on_iter_start(ev, map, iter, now),
            EventKind::MapIterNext { map, iter, writing, unseen_until } => {
                self.maps.on_iter_next(ev, map, iter, writing, unseen_until, now, out)
            }
            EventKind::MapWrite { map, op, writing } => self.maps.on_write(ev, map, op, writing, now, out),
            EventKind::MapWriteInRange { map, op, iter } => self.maps.on_write_in_range(ev, map, op, iter, now, out),
            EventKind::MapWriteOverlap { map, op, other, .. } => self.maps.on_write_overlap(ev, map, op, other, now, out),
            EventKind::ListRemoveEnter { list, elem_list, op, .. } => {
                self.lists.on_enter(ev, list, elem_list, op, now, out)
            }
            EventKind::ListRemoveExit { list, .. } => self.lists.on_exit(ev, now, list, out),
        }
        let budget = if self.events.is_multiple_of(SWEEP_EVERY) { SWEEP_EVERY as usize } else { 0 };
        self.advance(budget);
    }

    /// Moves the clock to `now_ns` (kernel monotonic time) without an event, so that
    /// slice candidates settle and idle state expires during quiet periods. A run that
    /// records should record each call (`recording::Writer::clock`): replay then
    /// gives the same findings.
    pub fn advance_to(&mut self, now_ns: u64) {
        self.now = self.now.max(now_ns);
        self.advance(QUIET_SWEEP);
    }

    fn advance(&mut self, budget: usize) {
        self.slices.advance(self.now, budget, &mut self.found);
        self.maps.advance(self.now, budget);
        self.lists.advance(self.now, budget);
    }

    /// End of the stream: pending slice candidates settle now.
    pub fn finish(&mut self) {
        self.slices.finish(&mut self.found);
    }

    /// The findings so far, symbolized, most severe first.
    pub fn findings(&self, sym: &dyn Symbolizer) -> Vec<Finding> {
        self.found.findings(&self.processes, sym)
    }

    pub fn stats(&self) -> Stats {
        let slices = self.slices.counters();
        let (map_evicted, map_expired) = self.maps.evictions();
        let (list_evicted, list_expired) = self.lists.evictions();
        let (array_evicted, array_expired) = self.slices.evictions();
        Stats {
            events: self.events,
            ignored: slices.ignored + self.maps.ignored + self.lists.ignored,
            evicted: array_evicted + map_evicted + list_evicted,
            expired: array_expired + map_expired + list_expired,
            suppressed: slices.suppressed,
            findings_dropped: self.found.dropped,
            tracked: (self.slices.tracked() + self.maps.tracked() + self.lists.tracked()) as u64,
            findings: self.found.len() as u64,
        }
    }

    /// Bytes held by the per-object tables (the engine's memory that grows with the
    /// traced program).
    pub fn allocated_bytes(&self) -> usize {
        self.slices.allocated_bytes() + self.maps.allocated_bytes() + self.lists.allocated_bytes()
    }
}

/// Runs a whole stream through a fresh engine: the replay and test entry point.
pub fn detect_all<'a>(
    config: Config,
    processes: impl IntoIterator<Item = ProcessInfo>,
    events: impl IntoIterator<Item = &'a Event>,
    sym: &dyn Symbolizer,
) -> Result<(Vec<Finding>, Stats), ConfigError> {
    let mut engine = Engine::new(config)?;
    for p in processes {
        engine.add_process(p);
    }
    for ev in events {
        engine.process(ev);
    }
    engine.finish();
    Ok((engine.findings(sym), engine.stats()))
}
