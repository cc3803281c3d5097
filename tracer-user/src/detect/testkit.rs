//! Test support: a builder for synthetic event streams (timestamps in µs) and the
//! kernel's transition filter over them (its decisions are `tracer_common::filter`'s,
//! the code the eBPF programs run; the tables it keeps are modelled here), so every
//! pattern can be checked on the full stream and on what the kernel actually sends.

use std::collections::HashMap;

use super::{Config, Detector, Finding, NoSymbols, Severity, Stats, detect_all};
use tracer_common::{
    ListOp,
    filter::{self, Relation},
};

use crate::events::{Event, EventKind, MapOp, to_record};

pub(crate) const TGID: u32 = 100;

#[derive(Clone, Default)]
pub(crate) struct Stream {
    pub events: Vec<Event>,
    /// GC cycle stamped on the growths that follow (see [`Stream::gc`]).
    gc_cycle: u32,
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// A GC cycle starts: later growths carry the next cycle count.
    pub fn gc(&mut self) -> &mut Self {
        self.gc_cycle += 1;
        self
    }

    fn push(&mut self, ts_us: f64, goid: u64, pc: u64, kind: EventKind) -> &mut Self {
        self.events.push(Event {
            ts_ns: (ts_us * 1000.0).round() as u64,
            tgid: TGID,
            tid: 1000 + goid as u32,
            goid,
            pc,
            probe: 0,
            stack_id: None,
            kind,
        });
        self
    }

    /// `append` through header (ptr, len, cap) of `elem`-byte elements outgrew it.
    #[allow(clippy::too_many_arguments)]
    pub fn grow(&mut self, ts_us: f64, goid: u64, pc: u64, ptr: u64, len: u64, cap: u64, elem: u64) -> &mut Self {
        let kind = EventKind::SliceGrow { old_ptr: ptr, old_len: len, old_cap: cap, new_len: len + 1, elem_size: elem, gc_cycle: self.gc_cycle, repeated: false };
        self.push(ts_us, goid, pc, kind)
    }

    pub fn iter_start(&mut self, ts_us: f64, goid: u64, pc: u64, map: u64, iter: u64) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::MapIterStart { map, iter })
    }

    pub fn iter_next(&mut self, ts_us: f64, goid: u64, pc: u64, map: u64, iter: u64, writing: bool) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::MapIterNext { map, iter, writing, unseen_until: 0 })
    }

    /// A step at a probe whose process had a range-start probe off until `unseen_us`
    /// (`f64::INFINITY`: still off).
    pub fn iter_next_unseen(&mut self, ts_us: f64, goid: u64, pc: u64, map: u64, iter: u64, unseen_us: f64) -> &mut Self {
        let unseen_until = if unseen_us.is_finite() { (unseen_us * 1000.0) as u64 } else { u64::MAX };
        self.push(ts_us, goid, pc, EventKind::MapIterNext { map, iter, writing: false, unseen_until })
    }

    pub fn write(&mut self, ts_us: f64, goid: u64, pc: u64, map: u64, op: MapOp, writing: bool) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::MapWrite { map, op, writing })
    }

    /// A write start the kernel found inside `other`'s write interval.
    pub fn overlap(&mut self, ts_us: f64, goid: u64, pc: u64, map: u64, op: MapOp, other: u64) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::MapWriteOverlap { map, op, writing: false, other })
    }

    pub fn enter(&mut self, ts_us: f64, goid: u64, pc: u64, list: u64, elem: u64, elem_list: u64) -> &mut Self {
        self.mutate(ts_us, goid, pc, ListOp::Remove, list, elem, elem_list)
    }

    /// The start of a list mutation `op` (`enter` is Remove's).
    #[allow(clippy::too_many_arguments)]
    pub fn mutate(&mut self, ts_us: f64, goid: u64, pc: u64, op: ListOp, list: u64, elem: u64, elem_list: u64) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::ListRemoveEnter { list, elem, elem_list, op })
    }

    pub fn exit(&mut self, ts_us: f64, goid: u64, pc: u64, list: u64) -> &mut Self {
        self.push(ts_us, goid, pc, EventKind::ListRemoveExit { list, elem: 0 })
    }

    /// Orders the events by timestamp (stable), as a well-behaved pipeline would.
    pub fn sorted(&self) -> Self {
        let mut events = self.events.clone();
        events.sort_by_key(|e| e.ts_ns);
        Self { events, gc_cycle: 0 }
    }

    pub fn run_with(&self, cfg: Config) -> (Vec<Finding>, Stats) {
        detect_all(cfg, [], &self.events, &NoSymbols).expect("valid config")
    }

    pub fn run(&self) -> Vec<Finding> {
        self.run_with(Config::default()).0
    }

    /// Runs the stream as one with every probe hit (`Config::complete_stream`).
    pub fn run_complete(&self) -> Vec<Finding> {
        self.run_with(Config { complete_stream: true, ..Config::default() }).0
    }

    /// Runs the stream as sent by the kernel's transition filter.
    pub fn run_filtered(&self) -> Vec<Finding> {
        Self { events: kernel_filter(&self.events), gc_cycle: self.gc_cycle }.run()
    }
}

pub(crate) fn detectors(f: &[Finding]) -> Vec<Detector> {
    f.iter().map(|f| f.detector).collect()
}

/// Fails unless nothing at `min` or above was found.
pub(crate) fn assert_quiet_at(f: &[Finding], min: Severity) {
    let loud: Vec<_> = f.iter().filter(|f| f.severity >= min).map(|f| &f.message).collect();
    assert!(loud.is_empty(), "expected nothing at {min} or above, got {loud:#?}");
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Obj {
    Array(u64),
    Map(u64),
    List(u64),
}

#[derive(Clone, Copy)]
struct Held {
    ev: Event,
    sent: bool,
}

/// How the kernel relates a held hit to a new one on the same object: only growths
/// have lives and headers (their stack-private test needs a real stack).
fn relate(held: &Event, ev: &Event) -> Relation {
    match (held.kind, ev.kind) {
        (EventKind::SliceGrow { .. }, EventKind::SliceGrow { .. }) => {
            filter::relate_growths(&to_record(held).args, &to_record(ev).args)
        }
        _ => Relation::SameObject,
    }
}

/// Marks a growth as folding its goroutine's earlier, filtered repeats.
fn mark_repeated(ev: &mut Event) {
    if let EventKind::SliceGrow { repeated, .. } = &mut ev.kind {
        *repeated = true;
    }
}

/// The goroutine's own range over a map, as the kernel keeps it (tracer-ebpf
/// map_iter_next_call and map_write_call): a write held until the next step, the
/// write sites already sent, and the time of the run's latest record.
struct OwnRange {
    goid: u64,
    iter: u64,
    held: Option<Event>,
    reported: [u64; 2],
    latest: u64,
}

impl OwnRange {
    fn new(ev: &Event, iter: u64) -> Self {
        Self { goid: ev.goid, iter, held: None, reported: [0; 2], latest: ev.ts_ns }
    }
}

/// The kernel's transition filter (tracer-ebpf `emit.rs` and the probes), without
/// sampling: a hit goes out when the previous hit on its object (of the same life)
/// came from another goroutine (with that held hit, if it had not gone out), or when
/// it matters alone; a goroutine's repeat of its own hit, or a repeat of a hit of an
/// earlier GC cycle, is marked on the record.
pub(crate) fn kernel_filter(events: &[Event]) -> Vec<Event> {
    let mut last: HashMap<Obj, Held> = HashMap::new();
    let mut removing: HashMap<u64, u64> = HashMap::new();
    let mut out = Vec::new();
    let on_transition = |table: &mut HashMap<Obj, Held>, key: Obj, ev: &Event, force: bool, out: &mut Vec<Event>| {
        let mut ev = *ev;
        let last = table.get(&key).copied();
        let seen = last.map(|prev| {
            let repeated = matches!(prev.ev.kind, EventKind::SliceGrow { repeated: true, .. });
            (filter::Held { goid: prev.ev.goid, sent: prev.sent, repeated }, relate(&prev.ev, &ev))
        });
        let verdict = filter::decide(seen, ev.goid, force);
        if verdict.replay_held
            && let Some(prev) = last
        {
            out.push(prev.ev);
        }
        if verdict.repeated {
            mark_repeated(&mut ev);
        }
        if verdict.send {
            out.push(ev);
        }
        if verdict.keep {
            table.insert(key, Held { ev, sent: verdict.send });
        }
        verdict.send
    };
    let mut ranges: HashMap<u64, OwnRange> = HashMap::new();
    for ev in events {
        match ev.kind {
            EventKind::SliceGrow { old_cap, elem_size, .. } => {
                if old_cap != 0 && elem_size != 0 {
                    on_transition(&mut last, Obj::Array(ev.kind.object()), ev, false, &mut out);
                }
            }
            EventKind::MapIterStart { map, iter } => {
                ranges.insert(map, OwnRange::new(ev, iter));
                on_transition(&mut last, Obj::Map(map), ev, false, &mut out);
            }
            EventKind::MapIterNext { map, iter, writing, unseen_until } => {
                let mut confirmed = false;
                match ranges.get_mut(&map) {
                    Some(run) if run.goid == ev.goid && run.iter == iter && run.latest >= unseen_until => {
                        if let Some(w) = run.held.take() {
                            run.reported = [w.pc, run.reported[0]];
                            out.push(w);
                            confirmed = true;
                        }
                    }
                    _ => {
                        ranges.insert(map, OwnRange::new(ev, iter));
                    }
                }
                on_transition(&mut last, Obj::Map(map), ev, writing || confirmed, &mut out);
            }
            EventKind::MapWrite { map, op, writing } => {
                let sent = on_transition(&mut last, Obj::Map(map), ev, writing, &mut out);
                match ranges.get_mut(&map) {
                    Some(run) if run.goid != ev.goid => {
                        ranges.remove(&map);
                    }
                    Some(run)
                        if run.held.is_none() && !sent && op != MapOp::Delete && !run.reported.contains(&ev.pc) =>
                    {
                        run.held = Some(Event { kind: EventKind::MapWriteInRange { map, op, iter: run.iter }, ..*ev });
                        run.latest = ev.ts_ns;
                    }
                    _ => {}
                }
            }
            // Made by the kernel itself (write intervals need exit probes the streams
            // here do not model): passed on.
            EventKind::MapWriteInRange { .. } | EventKind::MapWriteOverlap { .. } => out.push(*ev),
            EventKind::ListRemoveEnter { list, elem_list, .. } => {
                removing.insert(ev.goid, list);
                on_transition(&mut last, Obj::List(list), ev, elem_list != list, &mut out);
            }
            EventKind::ListRemoveExit { .. } => {
                let Some(list) = removing.remove(&ev.goid) else { continue };
                let (matters, ours) = match last.get(&Obj::List(list)) {
                    Some(h) => (h.ev.goid != ev.goid || h.sent, h.ev.goid == ev.goid),
                    None => (false, false),
                };
                if ours {
                    last.remove(&Obj::List(list));
                }
                if matters {
                    out.push(*ev);
                }
            }
        }
    }
    out
}

/// A small deterministic generator for interleavings.
pub(crate) struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}
