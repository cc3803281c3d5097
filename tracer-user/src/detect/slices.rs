//! Slice detectors (`slice_capacity_overlap`, `slice_lost_append`,
//! `slice_stale_header`) over growth records, one state per backing array (keyed by
//! its end address, which every sub-slice of the array shares).
//!
//! A growth record is a header `(ptr, len, cap)` caught at the call into growslice:
//! growslice copies `[ptr, ptr+len)` to a new array and never writes the old one, and
//! an append within capacity calls nothing. What the records show is therefore which
//! headers reached the end of an array, when, and from which goroutine.
//!
//! An end address is not an array for ever: once the array is dead, a GC cycle can
//! free it and the allocator can hand its memory to a new array, whose end may be
//! the same address. Each growth record carries the process's count of GC mark
//! terminations, and what is related here is bounded by what one life of an array
//! must look like: one element size and one count, and for pairs that claim both
//! headers held the array at once, growths within `window`.

use std::collections::{HashMap, VecDeque};

use super::{
    config::Config,
    dedup::{Dedup, Detail, Sighting, Touch},
    finding::Detector,
    table::{FoldBuild, Key, Removal, Table},
};
use crate::events::{Event, EventKind};

/// One header caught growing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grow {
    at: Touch,
    start: u64,
    len: u64,
    elem: u64,
    /// The process's count of GC mark terminations at the growth.
    gc: u32,
}

impl Grow {
    /// Headers of one array agree on the element size: an array has one element
    /// type. Two sizes at one end address are two arrays, i.e. two lives of the
    /// address.
    fn same_life(&self, o: &Grow) -> bool {
        self.elem == o.elem
    }

    /// No GC mark terminated between the two growths, so no sweep can have freed the
    /// array and handed its address to another one: both saw one live array. (An
    /// array being grown is reachable; the sweep that frees it belongs to a cycle
    /// whose marking ends after the growth, with the world stopped.)
    fn same_cycle(&self, o: &Grow) -> bool {
        self.gc == o.gc
    }

    fn same_slice(&self, o: &Grow) -> bool {
        self.start == o.start && self.len == o.len && self.elem == o.elem
    }

    /// End (exclusive) of the elements the header holds.
    fn elems_end(&self) -> u64 {
        self.start.saturating_add(self.len.saturating_mul(self.elem))
    }
}

/// Bytes by which the elements of two sub-slices with different starts overlap,
/// with the lower and the upper one: the lower header's elements reach past the
/// upper one's start. Exact: `s[i:j:j]` has its own end, so it never shares an array
/// state with its neighbours in the first place.
fn overlap<'a>(x: &'a Grow, y: &'a Grow) -> Option<(u64, &'a Grow, &'a Grow)> {
    if x.start == y.start || !x.same_life(y) {
        return None;
    }
    let (lo, hi) = if x.start < y.start { (x, y) } else { (y, x) };
    let bytes = lo.elems_end().min(hi.elems_end()).saturating_sub(hi.start);
    (bytes > 0).then_some((bytes, lo, hi))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Candidate {
    LostAppend,
    Overlap,
}

/// A pair of growths waiting for `settle`: the array's first growth and `partner`.
/// Kept apart from the array states because few arrays ever have one, and every
/// array state stays in memory for the whole time-to-live.
#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: Candidate,
    partner: Grow,
    /// Further pairs of the same kind before it settled.
    extra: u32,
}

/// What is known about one backing array.
#[derive(Clone, Copy)]
struct ArrayState {
    /// The first growth seen.
    first: Grow,
    /// A `Pending` entry exists for this array.
    pending: bool,
    /// Evidence that the array is copied by value (a template, a pooled buffer, a
    /// published read-only table): a header that is shared and updated moves to a
    /// new array once it grows, so the same slice of this array grown again, by the
    /// same goroutine or later than `window`, means its users hold their own copies
    /// of the header. (Or the address came back for a new array of the same shape
    /// after a GC cycle: then a real candidate is dropped, a missed finding, never a
    /// false one.)
    by_value: bool,
}

impl ArrayState {
    /// `by_value`: the first growth already shows its goroutine repeating it.
    fn new(first: Grow, by_value: bool) -> Self {
        Self { first, pending: false, by_value }
    }

    fn by_value(&self) -> bool {
        self.by_value
    }
}

fn deadline(first: &Grow, p: &Pending, settle: u64) -> u64 {
    first.at.ts.max(p.partner.at.ts).saturating_add(settle)
}

/// Counters the slice detectors keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SliceCounters {
    /// Growths without an identity (zero capacity: `runtime.zerobase`), without a
    /// goroutine, or with an impossible header.
    pub ignored: u64,
    /// Candidates dropped because their array proved to be copied by value.
    pub suppressed: u64,
    /// Growths that showed an end address reused by another array (another
    /// element size): the state started over with them.
    pub reused: u64,
}

/// Windows in engine nanoseconds, the settle queue and counters.
struct Rules {
    window: u64,
    stale_after: u64,
    settle: u64,
    /// Arrays whose candidate awaits `settle`, in the order the candidates arose.
    due: VecDeque<(u64, Key)>,
    pending: HashMap<Key, Pending, FoldBuild>,
    counters: SliceCounters,
}

pub(crate) struct Slices {
    arrays: Table<ArrayState>,
    rules: Rules,
}

impl Slices {
    pub fn new(cfg: &Config) -> Self {
        Self {
            arrays: Table::new(cfg.max_arrays, Config::ns(cfg.ttl)),
            rules: Rules {
                window: Config::ns(cfg.window),
                stale_after: Config::ns(cfg.stale_after),
                settle: Config::ns(cfg.settle),
                due: VecDeque::new(),
                pending: HashMap::default(),
                counters: SliceCounters::default(),
            },
        }
    }

    pub fn counters(&self) -> SliceCounters {
        self.rules.counters
    }

    pub fn tracked(&self) -> usize {
        self.arrays.len()
    }

    pub fn evictions(&self) -> (u64, u64) {
        (self.arrays.evicted, self.arrays.expired)
    }

    pub fn allocated_bytes(&self) -> usize {
        let pending = self.rules.pending.capacity() * (size_of::<(Key, Pending)>() + 1);
        self.arrays.allocated_bytes() + self.rules.due.capacity() * size_of::<(u64, Key)>() + pending
    }

    pub fn on_grow(&mut self, ev: &Event, now: u64, out: &mut Dedup) {
        let Self { arrays, rules } = self;
        let EventKind::SliceGrow { old_ptr, old_len, old_cap, elem_size: elem, gc_cycle: gc, repeated, .. } = ev.kind else {
            return;
        };
        // A length beyond the capacity can only come from a failed read.
        if ev.goid == 0 || old_cap == 0 || elem == 0 || old_len > old_cap {
            rules.counters.ignored += 1;
            return;
        }
        let key = Key::new(ev.tgid, ev.kind.object());
        let g = Grow { at: Touch::of(ev), start: old_ptr, len: old_len, elem, gc };
        match arrays.touch(key, now, &mut |k, st, _| rules.settle(k, &mut { st }, out)) {
            Some(st) => {
                if st.pending && rules.due_by(key, st, now) {
                    rules.settle(key, st, out);
                }
                rules.relate(key, st, g, repeated, out);
            }
            None => {
                let st = ArrayState::new(g, repeated);
                arrays.insert(key, st, now, &mut |k, st, _| rules.settle(k, &mut { st }, out));
            }
        }
    }

    /// Settles the candidates whose time has come, and sweeps up to `budget` arrays
    /// for expiry.
    pub fn advance(&mut self, now: u64, budget: usize, out: &mut Dedup) {
        let Self { arrays, rules } = self;
        while let Some(&(deadline, key)) = rules.due.front() {
            // Over the table's bound, the oldest candidate settles early: the queue
            // holds at most one entry per array it could still concern.
            let early = rules.due.len() > arrays.capacity();
            if deadline > now && !early {
                break;
            }
            rules.due.pop_front();
            if let Some(st) = arrays.peek_mut(key)
                && st.pending
                && (early || rules.due_by(key, st, now))
            {
                rules.settle(key, st, out);
            }
        }
        arrays.expire(now, budget, &mut |k, st, _| rules.settle(k, &mut { st }, out));
    }

    /// End of the stream: every candidate settles.
    pub fn finish(&mut self, out: &mut Dedup) {
        let Self { arrays, rules } = self;
        arrays.drain(&mut |k, st, why| {
            debug_assert_eq!(why, Removal::Drained);
            rules.settle(k, &mut { st }, out)
        });
        rules.due.clear();
        debug_assert!(rules.pending.is_empty());
    }
}

impl Rules {
    fn due_by(&self, key: Key, st: &ArrayState, now: u64) -> bool {
        self.pending.get(&key).is_some_and(|p| deadline(&st.first, p, self.settle) <= now)
    }

    /// `repeated`: the kernel saw `g`'s goroutine grow this same header before and
    /// folded those growths into this record.
    fn relate(&mut self, key: Key, st: &mut ArrayState, g: Grow, repeated: bool, out: &mut Dedup) {
        if !st.first.same_life(&g) {
            // Another element size at this end address: another array. The address
            // was freed and reused in between, so the first life is over (nothing
            // later can be of it) and nothing relates across the two lives.
            self.counters.reused += 1;
            if g.at.ts > st.first.at.ts {
                self.settle(key, st, out);
                *st = ArrayState::new(g, repeated);
            }
            return;
        }
        // The same slice again, by the same goroutine or later than `window`: copied
        // by value. (By another goroutine within `window` it is a candidate pair.)
        let repeat = |prior: &Grow| {
            prior.same_slice(&g)
                && prior.at.ts != g.at.ts
                && (prior.at.goid == g.at.goid || prior.at.ts.abs_diff(g.at.ts) > self.window)
        };
        let partner = if st.pending { self.pending.get(&key).map(|p| p.partner) } else { None };
        st.by_value |= repeated || repeat(&st.first) || partner.as_ref().is_some_and(repeat);
        let first = st.first;
        if first.at.goid == g.at.goid {
            return;
        }
        let dt = first.at.ts.abs_diff(g.at.ts);
        // Both candidates claim that the two headers held one array at once: only
        // growths within one GC cycle can (between cycles the first array may have
        // died and its memory been given to a new array with the same end), and
        // within `window`, which also bounds the claim where the GC probe is missing.
        if dt <= self.window && first.same_cycle(&g) {
            if first.same_slice(&g) {
                self.candidate(key, st, Candidate::LostAppend, g);
                return;
            }
            if overlap(&first, &g).is_some() {
                self.candidate(key, st, Candidate::Overlap, g);
                return;
            }
        }
        // A stale header, too, must be one array: across a GC cycle a new array may
        // sit at the address (the kernel does not even send such pairs).
        if dt >= self.stale_after && first.same_cycle(&g) {
            let (early, late) = if first.at.ts <= g.at.ts { (first, g) } else { (g, first) };
            let s = Sighting {
                detector: Detector::SliceStaleHeader,
                tgid: key.tgid,
                object: key.addr,
                a: early.at,
                b: Some(late.at),
                detail: Detail::Gap { ns: dt },
            };
            out.add(s, 1);
        }
    }

    fn candidate(&mut self, key: Key, st: &mut ArrayState, kind: Candidate, g: Grow) {
        if st.by_value() {
            self.counters.suppressed += 1;
            return;
        }
        match self.pending.get_mut(&key) {
            None => {
                let p = Pending { kind, partner: g, extra: 0 };
                self.due.push_back((deadline(&st.first, &p, self.settle), key));
                self.pending.insert(key, p);
                st.pending = true;
            }
            Some(p) if p.kind == kind => p.extra = p.extra.saturating_add(1),
            Some(_) => {}
        }
    }

    /// Turns a pending candidate into a finding unless the array proved to be
    /// copied by value meanwhile.
    fn settle(&mut self, key: Key, st: &mut ArrayState, out: &mut Dedup) {
        if !std::mem::take(&mut st.pending) {
            return;
        }
        let Some(Pending { kind, partner, extra }) = self.pending.remove(&key) else { return };
        let count = 1 + u64::from(extra);
        if st.by_value() {
            self.counters.suppressed += count;
            return;
        }
        let first = st.first;
        let (detector, a, b, detail) = match kind {
            Candidate::LostAppend => {
                (Detector::SliceLostAppend, first.at, partner.at, Detail::Length { len: first.len })
            }
            Candidate::Overlap => {
                let Some((bytes, lo, hi)) = overlap(&first, &partner) else { return };
                (Detector::SliceCapacityOverlap, lo.at, hi.at, Detail::Overlap { bytes, elem: lo.elem })
            }
        };
        out.add(Sighting { detector, tgid: key.tgid, object: key.addr, a, b: Some(b), detail }, count);
    }
}

#[cfg(test)]
#[path = "slices_tests.rs"]
mod tests;
