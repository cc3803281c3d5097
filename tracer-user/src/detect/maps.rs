//! Map detectors (`map_iter_write`, `map_concurrent_write`, `map_write_during_range`)
//! over iteration steps and write starts, with one state per map and per iterator.
//!
//! A write that starts between two steps of one iterator happened while that range
//! was live: under any lock that orders the writer after the range, the writer's
//! record would come after the iterator's last step. The map's own writing flag,
//! read before a call, means another goroutine's write is in progress right then.

use super::{
    config::Config,
    dedup::{Dedup, Detail, Sighting, Touch},
    finding::Detector,
    table::{Key, Table},
};
use crate::events::{Event, MapWriteOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WriteMark {
    at: Touch,
    op: MapWriteOp,
}

/// Recent writes and iterators of one map.
#[derive(Clone, Copy, Default)]
struct MapState {
    /// The latest write of the two goroutines that wrote last, newest first.
    writes: [Option<WriteMark>; 2],
    /// Iterators that stepped last (0: none), newest first.
    iters: [u64; 2],
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

/// One live (or finished, unbeknown to us) range loop.
#[derive(Clone, Copy)]
struct IterState {
    map: u64,
    /// Its latest step (the start counts as one: mapiterinit steps once itself).
    last: Touch,
    /// The step before `last`.
    prev_ts: u64,
}

pub(crate) struct Maps {
    maps: Table<MapState>,
    iters: Table<IterState>,
    window: u64,
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

    pub fn on_iter_start(&mut self, ev: &Event, map: u64, iter: u64, now: u64) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        self.maps.get_or_insert_with(Key::new(ev.tgid, map), now, MapState::default).note_iter(iter);
        let t = Touch::of(ev);
        let fresh = IterState { map, last: t, prev_ts: t.ts };
        *self.iters.get_or_insert_with(Key::new(ev.tgid, iter), now, || fresh) = fresh;
    }

    pub fn on_iter_next(&mut self, ev: &Event, map: u64, iter: u64, writing: bool, now: u64, out: &mut Dedup) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let window = self.window;
        let t = Touch::of(ev);
        let Self { maps, iters, .. } = self;
        let mkey = Key::new(ev.tgid, map);
        let ms = maps.get_or_insert_with(mkey, now, MapState::default);
        ms.note_iter(iter);
        if writing {
            let w = ms.recent_foreign(&t, window);
            out.add(sighting(Detector::MapIterWrite, mkey, t, w.map(|w| w.at), Detail::WritingFlag), 1);
        }
        let fresh = IterState { map, last: t, prev_ts: t.ts };
        let st = iters.get_or_insert_with(Key::new(ev.tgid, iter), now, || fresh);
        match st {
            // Created just now: no interval to check yet.
            st if st.last == t => {}
            st if st.map == map && st.last.goid == t.goid => {
                if t.ts <= st.last.ts {
                    return; // an older step arriving late: its interval is already covered
                }
                if !writing {
                    for w in ms.writes.iter().flatten().filter(|w| st.last.ts < w.at.ts && w.at.ts < t.ts) {
                        write_between_steps(mkey, t, w, out);
                    }
                }
                st.prev_ts = st.last.ts;
                st.last = t;
            }
            // Another map or goroutine: the iterator's memory belongs to a new range.
            st => *st = fresh,
        }
    }

    pub fn on_write(&mut self, ev: &Event, map: u64, op: MapWriteOp, writing: bool, now: u64, out: &mut Dedup) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let window = self.window;
        let t = Touch::of(ev);
        let Self { maps, iters, .. } = self;
        let mkey = Key::new(ev.tgid, map);
        let ms = maps.get_or_insert_with(mkey, now, MapState::default);
        if writing {
            let w = ms.recent_foreign(&t, window);
            out.add(
                sighting(Detector::MapConcurrentWrite, mkey, t, w.map(|w| w.at), Detail::Write { op, flag: true }),
                1,
            );
        }
        // The step after this write may have been processed first (records of
        // different CPUs interleave): check the last interval of recent iterators.
        let w = WriteMark { at: t, op };
        for iter in ms.iters.into_iter().filter(|&i| i != 0) {
            if let Some(st) = iters.peek_mut(Key::new(ev.tgid, iter))
                && st.map == map
                && st.prev_ts < t.ts
                && t.ts < st.last.ts
            {
                write_between_steps(mkey, st.last, &w, out);
            }
        }
        ms.note_write(w);
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

/// Write `w` started between two steps of the range whose later step is `step`.
fn write_between_steps(key: Key, step: Touch, w: &WriteMark, out: &mut Dedup) {
    let detail = Detail::Write { op: w.op, flag: false };
    if w.at.goid != step.goid {
        out.add(sighting(Detector::MapIterWrite, key, step, Some(w.at), detail), 1);
    } else if w.op != MapWriteOp::Delete {
        // Deleting during one's own range is deterministic (deleted keys are not
        // produced later) and idiomatic: not worth even an info finding.
        out.add(sighting(Detector::MapWriteDuringRange, key, step, Some(w.at), detail), 1);
    }
}

#[cfg(test)]
#[path = "maps_tests.rs"]
mod tests;
