//! The overhead governor: keeps the estimated cost of the probes under a budget by
//! attaching the hottest probes only part of the time, and says how much of the
//! time each probe was attached (its coverage). docs/governor.md explains it.
//!
//! `control` decides (pure); `calibrate` measures what a hit costs on this host;
//! `budget` parses and reloads the budget; `probe_info` says how each probe is
//! governed; `cpu` measures the traced processes' and the switching CPU time;
//! this module applies the decisions to a tracer on time.

mod budget;
pub mod calibrate;
pub mod control;
mod cpu;
mod probe_info;

use std::{
    collections::HashMap,
    ops::Range,
    time::{Duration, Instant},
};

pub use self::budget::{Budget, reload_budget, starting_budget};
pub use self::calibrate::HitCost;
use crate::procfs::cpu_seconds;
use self::cpu::SwitchCpu;
pub use self::probe_info::{ProbeInfo, RangeRole, probe_info};
use self::control::{Controller, Estimate, ProbeCycle};
use crate::probes::Tracer;

/// How long one duty cycle lasts: the plan is made anew each cycle, and the windows
/// of a cycle open together, so two hot probes whose records a detector pairs are
/// attached at the same moments.
pub const CYCLE: Duration = Duration::from_secs(1);
/// The shortest window: a switch registers or unregisters every probe of the
/// window under kernel-wide locks and writes a breakpoint in each process of the
/// binary.
pub const QUANTUM: Duration = Duration::from_millis(10);
/// How often the resident probes' counters are looked at between cycle ends, to
/// take out those that turned hot at once (`Controller::overrun`); not in the first
/// cycle, which sees a program's first 100 ms whole (a short program's hazard is
/// often there: the corpus's map_concurrent_writes_crash was missed 1 in 3 with it).
const CHECK: Duration = Duration::from_millis(50);
/// Under `--overhead-budget off`, the cycles with the kernel's run-time statistics
/// on: one in this many (and the first).
const RUN_STATS_EVERY: u64 = 10;
/// The first cycle, with every probe attached: a process's first tenth of a
/// second (its start-up, its first requests and reports) is seen whole, and the
/// rates the first plan is made from are measured over more than a few hits. Kept
/// short: a hot loop runs fully probed this long, once per traced process.
pub const FIRST_CYCLE: Duration = Duration::from_millis(100);

/// One governed probe.
#[derive(Debug)]
struct Governed {
    /// The trap's cost (calibrated); the program's mean run time is added per cycle.
    cost_s: f64,
    program: &'static str,
    range: Option<RangeRole>,
    /// Hit and record counters at the start of the cycle.
    hits: u64,
    emitted: u64,
    attached_since: Option<Instant>,
    /// Attached time in this cycle and in all.
    cycle_attached: Duration,
    total_attached: Duration,
    /// Estimated CPU seconds its hits cost in all.
    cpu_s: f64,
}

impl Governed {
    /// Adds the attached time up to `now` (if attached) and starts counting anew.
    fn account(&mut self, now: Instant) {
        if let Some(since) = &mut self.attached_since {
            let d = now.saturating_duration_since(*since);
            *since = now;
            self.cycle_attached += d;
            self.total_attached += d;
        }
    }

    fn set_attached(&mut self, on: bool, now: Instant) {
        self.account(now);
        self.attached_since = on.then_some(now);
    }
}

/// Probes switched together; the controller plans one unit at a time.
#[derive(Debug)]
struct Unit {
    /// Indexes into the governor's probes.
    members: Vec<usize>,
    /// Attached all the time (in the tracer's resident links).
    resident: bool,
}

/// Units attached together for a while, as one batch of links.
struct Window {
    batch: u64,
    units: Vec<usize>,
    detach_at: Instant,
}

/// A probe's coverage (the share of the governed time it was attached) and cost.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Coverage {
    pub probe: u32,
    pub ratio: f64,
    /// Its estimated CPU time over the processes' own CPU time.
    pub overhead: f64,
}

/// Governs the probes `ids` of one tracer for the processes of one binary.
pub struct Governor {
    budget: Budget,
    ids: Range<u32>,
    probes: Vec<Governed>,
    units: Vec<Unit>,
    controller: Controller,
    started: Instant,
    cycle_started: Instant,
    cycle_len: Duration,
    /// Last CPU time (seconds) read per process.
    cpu: HashMap<u32, f64>,
    /// Sums of every cycle's estimate.
    total: Estimate,
    last: Estimate,
    switch_error: Option<String>,
    /// Per program: the kernel's (run ns, runs) at the last look, and the mean run
    /// time (s) seen so far.
    runs: HashMap<&'static str, ((u64, u64), f64)>,
    /// State of the generator that places each cycle's windows.
    phase_seed: u64,
    /// Cycles ended so far.
    cycles: u64,
    /// When this cycle's windows open, and which units for how long.
    pending: Option<(Instant, Vec<(usize, Duration)>)>,
    open: Vec<Window>,
    switch_cpu: SwitchCpu,
    /// When the counters were last read, each probe's hits then, and all probes'
    /// hits together.
    checked_at: Instant,
    checked_hits: Vec<u64>,
    checked_total: u64,
    next_check: Instant,
}

/// Where in the next cycle the windows start: anywhere in the first `room_s`
/// seconds, afresh each cycle. All of them start together (two hot probes a
/// detector pairs are attached at the same moments), but not always at the
/// cycle's start: work that repeats in step with the cycle (a ticker every 100 ms or
/// every second) would otherwise fall outside the windows every time.
fn window_start(seed: &mut u64, room_s: f64) -> Duration {
    // xorshift64*: statistical quality is all this needs.
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    let unit = (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64(unit * room_s.max(0.0))
}

impl Governor {
    /// Governs `ids` (attached now), described by `probes`, in that order.
    pub fn new(budget: Budget, cost: HitCost, ids: Range<u32>, probes: impl Iterator<Item = ProbeInfo>, now: Instant) -> Self {
        let mut units: Vec<Unit> = Vec::new();
        let mut unit_by_key: HashMap<String, usize> = HashMap::new();
        let probes: Vec<Governed> = probes
            .enumerate()
            .map(|(i, info)| {
                match info.unit.as_ref().and_then(|key| unit_by_key.get(key).copied()) {
                    Some(unit) => units[unit].members.push(i),
                    None => {
                        if let Some(key) = info.unit {
                            unit_by_key.insert(key, units.len());
                        }
                        units.push(Unit { members: vec![i], resident: true });
                    }
                }
                Governed {
                    cost_s: cost.per_hit(info.emulated),
                    program: info.program,
                    range: info.range,
                    hits: 0,
                    emitted: 0,
                    attached_since: Some(now),
                    cycle_attached: Duration::ZERO,
                    total_attached: Duration::ZERO,
                    cpu_s: 0.0,
                }
            })
            .collect();
        debug_assert_eq!(probes.len(), ids.len());
        let ids_len = probes.len();
        Self {
            budget,
            controller: Controller::new(units.len(), CYCLE.as_secs_f64(), QUANTUM.as_secs_f64()),
            ids,
            probes,
            units,
            started: now,
            cycle_started: now,
            cycle_len: FIRST_CYCLE,
            cpu: HashMap::new(),
            total: Estimate::default(),
            last: Estimate::default(),
            switch_error: None,
            runs: HashMap::new(),
            // Any non-zero start; processes traced at once need not share phases.
            phase_seed: crate::sys::monotonic_ns() | 1,
            cycles: 0,
            pending: None,
            open: Vec::new(),
            switch_cpu: SwitchCpu::default(),
            checked_at: now,
            checked_hits: vec![0; ids_len],
            checked_total: 0,
            next_check: now + CHECK,
        }
    }

    /// Reads the CPU time of `pids` now, so the first cycle counts from here.
    pub fn prime(&mut self, pids: &[u32]) {
        self.cpu_delta(pids);
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Takes effect at the next cycle.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// Opens and closes the windows that are due, and at the end of a cycle plans
    /// the next one from the counters and the CPU time of `pids`. Returns when to
    /// call again.
    pub fn step(&mut self, tracer: &mut Tracer, pids: &[u32], now: Instant) -> Instant {
        // The kernel's run-time statistics cost every BPF program on the host a clock
        // read a run: under no budget they are sampled (the first cycle, then one in
        // RUN_STATS_EVERY) to keep the estimate honest (a record's stack capture
        // can cost more than its trap).
        tracer.keep_run_stats(self.budget != Budget::Off || self.cycles.is_multiple_of(RUN_STATS_EVERY));
        let closing: Vec<Window> = self.open.extract_if(.., |w| w.detach_at <= now).collect();
        for window in closing {
            self.close_window(window, tracer, pids, now);
        }
        if let Some((at, _)) = &self.pending
            && *at <= now
        {
            let (_, units) = self.pending.take().expect("pending");
            self.open_windows(units, tracer, pids, now);
        }
        if now >= self.cycle_started + self.cycle_len {
            self.end_cycle(tracer, pids, now);
        } else if self.cycles > 0 && now >= self.next_check {
            self.next_check = now + CHECK;
            self.check(tracer, pids, now);
        }
        let cycle_end = self.cycle_started + self.cycle_len;
        let pending = self.pending.as_ref().map(|(at, _)| *at);
        let check = (self.budget != Budget::Off).then_some(self.next_check);
        self.open.iter().map(|w| w.detach_at).chain(pending).chain(check).fold(cycle_end, Instant::min)
    }

    /// Hits per unit (its busiest member's) since the last look, from `counters`.
    fn hits_since_check(&mut self, counters: &[crate::probes::ProbeCounters]) -> Vec<u64> {
        let fresh: Vec<u64> = self
            .checked_hits
            .iter_mut()
            .zip(counters)
            .map(|(seen, c)| {
                let new = c.hits.saturating_sub(*seen);
                *seen = c.hits;
                new
            })
            .collect();
        self.units.iter().map(|u| u.members.iter().map(|&i| fresh.get(i).copied().unwrap_or(0)).max().unwrap_or(0)).collect()
    }

    /// Takes the resident units that turned hot since the last look out at once.
    /// Every probe's counters are read only when the hits of all its probes together
    /// (one word, counted by the kernel side per attachment) could be an overrun.
    fn check(&mut self, tracer: &mut Tracer, pids: &[u32], now: Instant) {
        let interval_s = now.saturating_duration_since(self.checked_at).as_secs_f64();
        let total = tracer.total_hits(self.ids.start).unwrap_or(u64::MAX);
        let cheapest = self.probes.iter().map(|p| p.cost_s).fold(f64::INFINITY, f64::min);
        let hits = total.saturating_sub(self.checked_total);
        if !self.controller.may_overrun(self.budget, interval_s, hits as f64 * cheapest) {
            return;
        }
        self.checked_at = now;
        self.checked_total = total;
        let Ok(counters) = tracer.counters_in(self.ids.clone()) else { return };
        let hits = self.hits_since_check(&counters);
        let evicted = self.controller.overrun(self.budget, interval_s, &hits);
        self.set_resident(&evicted, false, tracer, pids, now);
    }

    /// The ids of `units`' probes, and of those that are not range steps (a step
    /// probe's kernel slot says something else: mark_unseen_starts).
    fn ids_of(&self, units: &[usize]) -> (Vec<u32>, Vec<u32>) {
        let members = units.iter().flat_map(|&u| self.units[u].members.iter().copied());
        let all: Vec<u32> = members.map(|i| self.ids.start + i as u32).collect();
        let voidable =
            all.iter().copied().filter(|&id| self.probes[(id - self.ids.start) as usize].range != Some(RangeRole::Step)).collect();
        (all, voidable)
    }

    fn has_starts(&self, ids: &[u32]) -> bool {
        ids.iter().any(|&id| self.probes[(id - self.ids.start) as usize].range == Some(RangeRole::Start))
    }

    /// Before probes go off: an interval (a map write, a `Remove`) begun while they
    /// are off or being switched may have no exit probe to end it, or a later call
    /// from another goroutine would seem to overlap it, so the kernel side voids
    /// every interval they open from now until they are all attached again
    /// (detached links go down in the background, a while later); range starts
    /// are marked unseen over the same span.
    fn before_off(&mut self, tracer: &mut Tracer, pids: &[u32], all: &[u32], voidable: &[u32]) {
        note(&mut self.switch_error, tracer.void_intervals_before(voidable.iter().copied(), u64::MAX), pids);
        if self.has_starts(all) {
            self.mark_unseen_starts(tracer, pids, u64::MAX);
        }
    }

    /// Once probes are attached: their intervals count from now.
    fn after_on(&mut self, tracer: &mut Tracer, pids: &[u32], all: &[u32], voidable: Vec<u32>) {
        let now_ns = crate::sys::monotonic_ns();
        note(&mut self.switch_error, tracer.void_intervals_before(voidable, now_ns), pids);
        if self.has_starts(all) && self.probes.iter().all(|p| p.range != Some(RangeRole::Start) || p.attached_since.is_some()) {
            self.mark_unseen_starts(tracer, pids, now_ns);
        }
    }

    /// Attaches units for their windows, those of one length as one batch (exits
    /// last: an exit probe never traps alone).
    fn open_windows(&mut self, units: Vec<(usize, Duration)>, tracer: &mut Tracer, pids: &[u32], now: Instant) {
        let mut by_length: std::collections::BTreeMap<Duration, Vec<usize>> = std::collections::BTreeMap::new();
        for (u, length) in units {
            by_length.entry(length).or_default().push(u);
        }
        for (length, units) in by_length {
            let (all, voidable) = self.ids_of(&units);
            match tracer.attach_batch(&all, &self.switch_cpu.windows) {
                Ok(batch) => {
                    for &id in &all {
                        self.probes[(id - self.ids.start) as usize].set_attached(true, now);
                    }
                    self.switch_cpu.window_probes += all.len() as u64;
                    self.open.push(Window { batch, units, detach_at: now + length });
                    self.after_on(tracer, pids, &all, voidable);
                }
                Err(e) => note(&mut self.switch_error, Err(e), pids),
            }
        }
    }

    fn close_window(&mut self, window: Window, tracer: &mut Tracer, pids: &[u32], now: Instant) {
        let (all, voidable) = self.ids_of(&window.units);
        for &id in &all {
            self.probes[(id - self.ids.start) as usize].set_attached(false, now);
        }
        self.before_off(tracer, pids, &all, &voidable);
        tracer.detach_batch(window.batch, &self.switch_cpu.windows);
        self.switch_cpu.window_probes += all.len() as u64;
    }

    /// Moves units in or out of the resident links, all in one go.
    fn set_resident(&mut self, units: &[usize], on: bool, tracer: &mut Tracer, pids: &[u32], now: Instant) {
        if units.is_empty() {
            return;
        }
        let (all, voidable) = self.ids_of(units);
        for &u in units {
            self.units[u].resident = on;
        }
        for &id in &all {
            self.probes[(id - self.ids.start) as usize].set_attached(on, now);
        }
        if !on {
            self.before_off(tracer, pids, &all, &voidable);
        }
        let changes: Vec<(u32, bool)> = all.iter().map(|&id| (id, on)).collect();
        note(&mut self.switch_error, tracer.set_resident(&changes, &self.switch_cpu.moves), pids);
        if on {
            self.after_on(tracer, pids, &all, voidable);
        }
    }

    /// Tells the step probes' kernel side that a range may have started unseen
    /// until `until` (`u64::MAX`: from now on, until told otherwise).
    fn mark_unseen_starts(&mut self, tracer: &mut Tracer, pids: &[u32], until: u64) {
        let steps: Vec<u32> =
            (self.ids.clone()).zip(&self.probes).filter(|(_, p)| p.range == Some(RangeRole::Step)).map(|(id, _)| id).collect();
        note(&mut self.switch_error, tracer.void_intervals_before(steps, until), pids);
    }

    fn end_cycle(&mut self, tracer: &mut Tracer, pids: &[u32], now: Instant) {
        for window in std::mem::take(&mut self.open) {
            self.close_window(window, tracer, pids, now);
        }
        self.pending = None;
        self.cycles += 1;
        let cycle_s = now.saturating_duration_since(self.cycle_started).as_secs_f64();
        let counters = tracer.counters_in(self.ids.clone()).unwrap_or_default();
        (self.checked_at, self.next_check) = (now, now + CHECK);
        self.checked_total = tracer.total_hits(self.ids.start).unwrap_or(0);
        self.hits_since_check(&counters);
        self.read_runs(tracer);
        let mut hits = Vec::with_capacity(self.probes.len());
        let mut emitted = Vec::with_capacity(self.probes.len());
        let mut costs = Vec::with_capacity(self.probes.len());
        for (i, p) in self.probes.iter_mut().enumerate() {
            p.account(now);
            let (total, sent) = counters.get(i).map_or((p.hits, p.emitted), |c| (c.hits, c.emitted));
            let new = total.saturating_sub(p.hits);
            emitted.push(sent.saturating_sub(p.emitted));
            (p.hits, p.emitted) = (total, sent);
            let cost = p.cost_s + self.runs.get(p.program).map_or(0.0, |r| r.1);
            p.cpu_s += new as f64 * cost;
            hits.push(new);
            costs.push(cost);
        }
        // A unit's events are its busiest member's hits; each costs all its members' hits.
        let cycle: Vec<ProbeCycle> = self
            .units
            .iter()
            .map(|Unit { members, .. }| {
                let events = members.iter().map(|&i| hits[i]).max().unwrap_or(0);
                let cpu: f64 = members.iter().map(|&i| hits[i] as f64 * costs[i]).sum();
                let per_event = if events > 0 { cpu / events as f64 } else { members.iter().map(|&i| costs[i]).sum() };
                ProbeCycle {
                    hits: events,
                    attached_s: self.probes[members[0]].cycle_attached.as_secs_f64(),
                    cost_s: per_event,
                    emitted: members.iter().map(|&i| emitted[i]).sum(),
                    probes: members.len(),
                }
            })
            .collect();
        for p in &mut self.probes {
            p.cycle_attached = Duration::ZERO;
        }
        let cpu_s = self.cpu_delta(pids);
        let switching = self.switch_cpu.cycle();
        self.last = self.controller.update(self.budget, cycle_s, cpu_s, &cycle, switching);
        self.total.probe_cpu_s += self.last.probe_cpu_s;
        self.total.own_cpu_s += self.last.own_cpu_s;
        (self.cycle_started, self.cycle_len) = (now, CYCLE);
        let plan: Vec<f64> = self.controller.attach_for().collect();
        let cycle_s = CYCLE.as_secs_f64();
        let (mut leaving, mut entering, mut windows) = (Vec::new(), Vec::new(), Vec::new());
        for (u, &attach_s) in plan.iter().enumerate() {
            let resident = attach_s >= cycle_s;
            match (self.units[u].resident, resident) {
                (true, false) => leaving.push(u),
                (false, true) => entering.push(u),
                _ => {}
            }
            if !resident && attach_s > 0.0 {
                windows.push((u, Duration::from_secs_f64(attach_s)));
            }
        }
        if std::env::var_os("GHOSTRACE_DEBUG_GOVERNOR").is_some() {
            eprintln!(
                "governor: cycle {} {:.3}s cpu {:.3}s est {:?} ratio {:.4} switch {:?} resident {} leaving {} entering {} windows {} hits {}",
                self.cycles, cycle_s, cpu_s, self.last, self.last.ratio(), switching,
                self.units.iter().filter(|u| u.resident).count(), leaving.len(), entering.len(), windows.len(), hits.iter().sum::<u64>()
            );
        }
        self.set_resident(&leaving, false, tracer, pids, now);
        self.set_resident(&entering, true, tracer, pids, now);
        if !windows.is_empty() {
            let longest = windows.iter().map(|w| w.1).max().unwrap_or_default().as_secs_f64();
            let start = now + window_start(&mut self.phase_seed, cycle_s - longest);
            self.pending = Some((start, windows));
        }
    }

    /// Updates each program's mean run time from the kernel's statistics (kept
    /// when a cycle saw no run).
    fn read_runs(&mut self, tracer: &Tracer) {
        let programs: std::collections::BTreeSet<&'static str> = self.probes.iter().map(|p| p.program).collect();
        for program in programs {
            let Some(now) = tracer.program_runs(program) else { continue };
            // First look: the mean since the statistics were turned on.
            let mean = if now.1 > 0 { now.0 as f64 / now.1 as f64 / 1e9 } else { 0.0 };
            let entry = self.runs.entry(program).or_insert((now, mean));
            let (ns, count) = (now.0.saturating_sub(entry.0.0), now.1.saturating_sub(entry.0.1));
            if count > 0 {
                entry.1 = ns as f64 / count as f64 / 1e9;
            }
            entry.0 = now;
        }
    }

    /// CPU seconds the processes used since the last look (a process seen for the
    /// first time counts from now).
    fn cpu_delta(&mut self, pids: &[u32]) -> f64 {
        let mut delta = 0.0;
        let mut seen = HashMap::with_capacity(pids.len());
        for &pid in pids {
            if let Some(now) = cpu_seconds(pid) {
                delta += (now - self.cpu.get(&pid).copied().unwrap_or(now)).max(0.0);
                seen.insert(pid, now);
            }
        }
        self.cpu = seen;
        delta
    }

    /// The last cycle's estimated overhead (probe CPU over the processes' own CPU).
    pub fn last_ratio(&self) -> f64 {
        self.last.ratio()
    }

    /// The estimated overhead over the whole time governed.
    pub fn overall_ratio(&self) -> f64 {
        self.total.ratio()
    }

    /// Every probe's coverage so far.
    pub fn coverage(&self, now: Instant) -> Vec<Coverage> {
        let span = now.saturating_duration_since(self.started).as_secs_f64();
        self.probes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let open = p.attached_since.map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                let ratio = if span > 0.0 { ((p.total_attached + open).as_secs_f64() / span).min(1.0) } else { 1.0 };
                let overhead = Estimate { probe_cpu_s: p.cpu_s, own_cpu_s: self.total.own_cpu_s }.ratio();
                Coverage { probe: self.ids.start + i as u32, ratio, overhead }
            })
            .collect()
    }

    /// The first switch that failed, if any (the probe stays as it was).
    pub fn switch_error(&self) -> Option<&str> {
        self.switch_error.as_deref()
    }
}

/// Keeps the first switch error, unless the processes are gone: a probe scoped to
/// one process cannot be attached once it has exited, and that is no failure.
fn note(first: &mut Option<String>, result: Result<(), crate::probes::ProbeError>, pids: &[u32]) {
    if let Err(e) = result
        && pids.iter().copied().any(crate::procfs::is_listed)
    {
        first.get_or_insert_with(|| e.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_anywhere_in_their_room() {
        let mut seed = 0x1234_5678_9abc_def1;
        let room = 0.9;
        let mut buckets = [0u32; 9];
        for _ in 0..2000 {
            let start = window_start(&mut seed, room).as_secs_f64();
            assert!((0.0..room).contains(&start), "{start}");
            buckets[(start / 0.1) as usize] += 1;
        }
        // Each tenth of the room gets about 222 of 2000 starts.
        assert!(buckets.iter().all(|&n| (150..300).contains(&n)), "{buckets:?}");
        assert_eq!(window_start(&mut seed, 0.0), Duration::ZERO);
    }

}
