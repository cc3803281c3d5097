//! Map detectors (`map_iter_write`, `map_concurrent_write`, `map_write_during_range`)
//! over iteration steps and write starts, with one state per map and per iterator.
//!
//! `map_iter_write`: goroutine A steps its range at `t`; goroutine B's write started
//! after A's previous record on the map (of any kind) and before `t`. The range that
//! `t` steps was live at the write: had it started after the write, its start would
//! have been A's first hit after B's, which the kernel's transition filter always
//! sends, so it would be A's previous record. A lock ordering B after the range would
//! stamp B's write after `t`. The previous record, not the iterator's previous step,
//! bounds the interval: A's own hits right after one of its records may be filtered,
//! and a new range over the same iterator slot may hide among them. All of this
//! holds while every range-start probe is attached: a step says until when one was
//! off (`unseen_until`), and no earlier record bounds its range.
//!
//! The map's own writing flag, read before a call, means another goroutine's write
//! is in progress right then.

use super::{
    config::Config,
    dedup::{Dedup, Detail, Sighting, Touch},
    finding::Detector,
    table::{Key, Table},
};
use crate::events::{Event, MapOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WriteMark {
    at: Touch,
    op: MapOp,
}

/// The map's latest records form an unbroken run of one goroutine: a step of
/// `iter`, then only that goroutine's own writes (the first non-delete one kept).
/// A next step of `iter` then shows a write inside the goroutine's own range, if the
/// stream is complete: filtered, the run may hide the goroutine's own hits, a new
/// range over the same iterator slot among them. The kernel follows the same run
/// over every hit and sends such a write as `MapWriteInRange` (`confirmed`), right
/// before the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OwnRun {
    goid: u64,
    iter: u64,
    write: Option<WriteMark>,
    confirmed: bool,
}

/// Goroutines remembered per map with their latest record.
const RECENT: usize = 4;

/// Recent records of one map.
#[derive(Clone, Copy, Default)]
struct MapState {
    /// The latest write of the two goroutines that wrote last, newest first.
    writes: [Option<WriteMark>; 2],
    /// (goid, timestamp) of the latest record of the goroutines that touched the map
    /// last, newest first; goid 0 is an empty slot.
    recent: [(u64, u64); RECENT],
    /// Iterators that stepped last (0: none), newest first.
    iters: [u64; 2],
    own_run: Option<OwnRun>,
}

impl MapState {
    fn note_write(&mut self, w: WriteMark) {
        if self.writes[0].is_none_or(|x| x.at.goid != w.at.goid) {
            self.writes[1] = self.writes[0];
        }
        self.writes[0] = Some(w);
    }

    fn note_iter(&mut self, iter: u64) {
        if self.iters[0] != iter {
            self.iters = [iter, self.iters[0]];
        }
    }

    /// Timestamp of `goid`'s latest record on this map, if still remembered.
    fn latest_of(&self, goid: u64) -> Option<u64> {
        self.recent.iter().find(|r| r.0 == goid).map(|r| r.1)
    }

    fn note_record(&mut self, goid: u64, ts: u64) {
        let prior = self.latest_of(goid).unwrap_or(0);
        let at = self.recent.iter().position(|r| r.0 == goid).unwrap_or(RECENT - 1);
        self.recent.copy_within(0..at, 1);
        self.recent[0] = (goid, ts.max(prior));
    }

    /// The write of another goroutine that started at most `window` before `t`:
    /// the best candidate for the write in progress when `t` saw the writing flag.
    fn recent_foreign(&self, t: &Touch, window: u64) -> Option<WriteMark> {
        self.writes
            .iter()
            .flatten()
            .find(|w| w.at.goid != t.goid && w.at.ts <= t.ts && t.ts - w.at.ts <= window)
            .copied()
    }
}

/// One live (or finished, unbeknown to us) range loop, as of its latest step.
#[derive(Clone, Copy)]
struct IterState {
    map: u64,
    last: Touch,
    /// The goroutine's previous record on the map before `last`: foreign writes
    /// after it and before `last` fell inside the range.
    bound: u64,
}

pub(crate) struct Maps {
    maps: Table<MapState>,
    iters: Table<IterState>,
    window: u64,
    /// `Config::complete_stream`: own writes can be placed inside own ranges.
    complete: bool,
    /// Map records from no known goroutine.
    pub ignored: u64,
}

impl Maps {
    pub fn new(cfg: &Config) -> Self {
        let ttl = Config::ns(cfg.ttl);
        Self {
            maps: Table::new(cfg.max_maps, ttl),
            iters: Table::new(cfg.max_iterators, ttl),
            window: Config::ns(cfg.window),
            complete: cfg.complete_stream,
            ignored: 0,
        }
    }

    pub fn tracked(&self) -> usize {
        self.maps.len() + self.iters.len()
    }

    pub fn allocated_bytes(&self) -> usize {
        self.maps.allocated_bytes() + self.iters.allocated_bytes()
    }

    pub fn evictions(&self) -> (u64, u64) {
        (self.maps.evicted + self.iters.evicted, self.maps.expired + self.iters.expired)
    }

    /// A range starts (the runtime takes its first step inside this call).
    pub fn on_iter_start(&mut self, ev: &Event, map: u64, iter: u64, now: u64) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let t = Touch::of(ev);
        let ms = self.maps.get_or_insert_with(Key::new(ev.tgid, map), now, MapState::default);
        ms.note_iter(iter);
        ms.note_record(t.goid, t.ts);
        ms.own_run = Some(OwnRun { goid: t.goid, iter, write: None, confirmed: false });
        let fresh = IterState { map, last: t, bound: t.ts };
        *self.iters.get_or_insert_with(Key::new(ev.tgid, iter), now, || fresh) = fresh;
    }

    /// A step; `unseen_until` says until when the range may have started unseen
    /// (the governor had a range-start probe off): its goroutine's records before
    /// that moment do not bound the range.
    #[allow(clippy::too_many_arguments)]
    pub fn on_iter_next(&mut self, ev: &Event, map: u64, iter: u64, writing: bool, unseen_until: u64, now: u64, out: &mut Dedup) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let t = Touch::of(ev);
        let mkey = Key::new(ev.tgid, map);
        let ms = self.maps.get_or_insert_with(mkey, now, MapState::default);
        if writing {
            let w = ms.recent_foreign(&t, self.window);
            out.add(sighting(Detector::MapIterWrite, mkey, t, w.map(|w| w.at), Detail::WritingFlag), 1);
        } else if let Some(bound) = ms.latest_of(t.goid).map(|b| b.max(unseen_until)) {
            for w in ms.writes.iter().flatten().filter(|w| w.at.goid != t.goid && bound < w.at.ts && w.at.ts < t.ts) {
                let detail = Detail::Write { op: w.op, flag: false, prior: None };
                out.add(sighting(Detector::MapIterWrite, mkey, t, Some(w.at), detail), 1);
            }
        }
        if let Some(OwnRun { goid, iter: i, write: Some(w), confirmed }) = ms.own_run
            && (self.complete || confirmed)
            && goid == t.goid
            && i == iter
            && w.at.ts >= unseen_until
        {
            let detail = Detail::Write { op: w.op, flag: false, prior: None };
            out.add(sighting(Detector::MapWriteDuringRange, mkey, t, Some(w.at), detail), 1);
        }
        let bound = ms.latest_of(t.goid).unwrap_or(t.ts).max(unseen_until).min(t.ts);
        ms.note_iter(iter);
        ms.note_record(t.goid, t.ts);
        ms.own_run = Some(OwnRun { goid: t.goid, iter, write: None, confirmed: false });
        let step = IterState { map, last: t, bound };
        let st = self.iters.get_or_insert_with(Key::new(ev.tgid, iter), now, || step);
        if t.ts >= st.last.ts || st.map != map || st.last.goid != t.goid {
            *st = step;
        }
    }

    pub fn on_write(&mut self, ev: &Event, map: u64, op: MapOp, writing: bool, now: u64, out: &mut Dedup) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let t = Touch::of(ev);
        let Self { maps, iters, window, .. } = self;
        let mkey = Key::new(ev.tgid, map);
        let ms = maps.get_or_insert_with(mkey, now, MapState::default);
        let w = WriteMark { at: t, op };
        if writing {
            let other = ms.recent_foreign(&t, *window);
            let detail = Detail::Write { op, flag: true, prior: other.map(|o| o.op) };
            out.add(sighting(Detector::MapConcurrentWrite, mkey, t, other.map(|o| o.at), detail), 1);
        }
        // The step after this write may have been processed first (records of
        // different CPUs interleave): check the last interval of recent iterators.
        for iter in ms.iters.into_iter().filter(|&i| i != 0) {
            if let Some(st) = iters.peek_mut(Key::new(ev.tgid, iter))
                && st.map == map
                && st.last.goid != t.goid
                && st.bound < t.ts
                && t.ts < st.last.ts
            {
                let detail = Detail::Write { op, flag: false, prior: None };
                out.add(sighting(Detector::MapIterWrite, mkey, st.last, Some(t), detail), 1);
            }
        }
        ms.own_run = match ms.own_run {
            // Deleting during one's own range is deterministic (deleted keys are not
            // produced later) and idiomatic: it keeps the run but is not reported.
            Some(run) if run.goid == t.goid => {
                Some(OwnRun { write: run.write.or((op != MapOp::Delete).then_some(w)), ..run })
            }
            _ => None,
        };
        ms.note_write(w);
        ms.note_record(t.goid, t.ts);
    }

    /// A write the kernel saw inside the goroutine's own range over `iter`; the
    /// range's next step follows.
    pub fn on_write_in_range(&mut self, ev: &Event, map: u64, op: MapOp, iter: u64, now: u64, out: &mut Dedup) {
        self.on_write(ev, map, op, false, now, out);
        if let Some(ms) = self.maps.peek_mut(Key::new(ev.tgid, map))
            && ev.goid != 0
        {
            let write = Some(WriteMark { at: Touch::of(ev), op });
            ms.own_run = Some(OwnRun { goid: ev.goid, iter, write, confirmed: true });
        }
    }

    /// A write that started inside goroutine `other`'s write interval on the map (the
    /// kernel follows intervals from each write's CALL to the instruction after it).
    /// `other`'s start record came first; the overlap subsumes a writing flag.
    pub fn on_write_overlap(&mut self, ev: &Event, map: u64, op: MapOp, other: u64, now: u64, out: &mut Dedup) {
        let mkey = Key::new(ev.tgid, map);
        let started = self.maps.peek_mut(mkey).and_then(|ms| ms.writes.iter().flatten().find(|w| w.at.goid == other).copied());
        self.on_write(ev, map, op, false, now, out);
        if ev.goid == 0 || other == ev.goid {
            return;
        }
        let detail = Detail::Write { op, flag: false, prior: started.map(|w| w.op) };
        out.add(sighting(Detector::MapConcurrentWrite, mkey, Touch::of(ev), started.map(|w| w.at), detail), 1);
    }

    /// Sweeps up to `budget` maps and iterators for expiry.
    pub fn advance(&mut self, now: u64, budget: usize) {
        self.maps.expire(now, budget, &mut |_, _, _| {});
        self.iters.expire(now, budget, &mut |_, _, _| {});
    }
}

fn sighting(detector: Detector, key: Key, a: Touch, b: Option<Touch>, detail: Detail) -> Sighting {
    Sighting { detector, tgid: key.tgid, object: key.addr, a, b, detail }
}

#[cfg(test)]
#[path = "maps_tests.rs"]
mod tests;
