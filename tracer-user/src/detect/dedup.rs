//! Sightings (one occurrence, raw addresses) folded into findings by (detector,
//! process, call-site pair), symbolized only when findings are asked for.

use std::collections::{BTreeMap, HashMap};

use super::{
    finding::{Detector, Finding, GoroutineSite, ObjectRef, ProcessInfo},
    message,
    symbols::{Symbolizer, call_site, stack_frames},
    table::FoldBuild,
};
use tracer_common::ListOp;

use crate::events::{Event, MapOp};

const NO_STACK: u32 = u32::MAX;

/// One goroutine touching an object at a call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Touch {
    pub ts: u64,
    pub goid: u64,
    pub pc: u64,
    pub tid: u32,
    /// Kernel stack id, `NO_STACK` when none (kept unboxed: per-object state is sized).
    stack: u32,
}

impl Touch {
    pub fn of(ev: &Event) -> Self {
        Self { ts: ev.ts_ns, goid: ev.goid, pc: ev.pc, tid: ev.tid, stack: ev.stack_id.unwrap_or(NO_STACK) }
    }

    pub fn stack_id(self) -> Option<u32> {
        (self.stack != NO_STACK).then_some(self.stack)
    }
}

/// What a sighting adds to its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    None,
    /// The sub-slices' elements overlap by `bytes`.
    Overlap {
        bytes: u64,
        elem: u64,
    },
    /// Both grew the array at this length.
    Length {
        len: u64,
    },
    /// Time from the first growth to the later one.
    Gap {
        ns: u64,
    },
    /// The write that made the finding (side `a`'s for `map_concurrent_write`, `b`'s
    /// for the iterator detectors); `flag` when the map's own writing flag (rather
    /// than the order of records) showed it; `prior` the op of the write `b` had
    /// started, when known (`map_concurrent_write`).
    Write {
        op: MapOp,
        flag: bool,
        prior: Option<MapOp>,
    },
    /// An iteration step saw the map's writing flag set.
    WritingFlag,
    /// `e.list` of a foreign element.
    ElemList {
        list: u64,
    },
    /// The methods of two overlapping list mutations, `a`'s then `b`'s.
    ListOps {
        a: ListOp,
        b: ListOp,
    },
    /// A move or insert through an element (or mark) whose `list` is `list` (0: none).
    ElemOf {
        op: ListOp,
        list: u64,
    },
}

/// One occurrence of a detector's pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sighting {
    pub detector: Detector,
    pub tgid: u32,
    pub object: u64,
    pub a: Touch,
    /// The other goroutine; `None` for single-goroutine detectors or when its record
    /// is not in the stream.
    pub b: Option<Touch>,
    pub detail: Detail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DedupKey {
    detector: Detector,
    tgid: u32,
    pc_a: u64,
    pc_b: u64,
}

struct Aggregate {
    /// The first occurrence, which the finding describes.
    first: Sighting,
    first_seen: u64,
    last_seen: u64,
    count: u64,
}

/// Findings so far, in the order they were first seen.
pub(crate) struct Dedup {
    index: HashMap<DedupKey, usize, FoldBuild>,
    found: Vec<Aggregate>,
    cap: usize,
    /// Occurrences of new call-site pairs beyond `cap`.
    pub dropped: u64,
}

impl Dedup {
    pub fn new(cap: usize) -> Self {
        Self { index: HashMap::default(), found: Vec::new(), cap, dropped: 0 }
    }

    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// Records `count` occurrences of `s`.
    pub fn add(&mut self, mut s: Sighting, count: u64) {
        let (mut pc_a, mut pc_b) = (s.a.pc, s.b.map_or(0, |b| b.pc));
        if s.detector.symmetric()
            && let Some(b) = s.b
            && b.pc < s.a.pc
        {
            (pc_a, pc_b) = (pc_b, pc_a);
            // Sides in call-site order, for a stable listing; but a write's detail
            // says which side started while the other's write was in progress: those
            // stay as seen, so that the message names each goroutine's own op.
            if !matches!(s.detail, Detail::Write { .. }) {
                s.b = Some(s.a);
                s.a = b;
            }
        }
        let key = DedupKey { detector: s.detector, tgid: s.tgid, pc_a, pc_b };
        let (lo, hi) = s.b.map_or((s.a.ts, s.a.ts), |b| (s.a.ts.min(b.ts), s.a.ts.max(b.ts)));
        match self.index.get(&key) {
            Some(&i) => {
                let agg = &mut self.found[i];
                agg.first_seen = agg.first_seen.min(lo);
                agg.last_seen = agg.last_seen.max(hi);
                agg.count += count;
            }
            None if self.found.len() >= self.cap => self.dropped += count,
            None => {
                self.index.insert(key, self.found.len());
                self.found.push(Aggregate { first: s, first_seen: lo, last_seen: hi, count });
            }
        }
    }

    /// Symbolized findings, most severe first, then in order of first occurrence.
    pub fn findings(&self, processes: &BTreeMap<u32, ProcessInfo>, sym: &dyn Symbolizer) -> Vec<Finding> {
        let mut out: Vec<Finding> = self.found.iter().map(|agg| materialize(agg, processes, sym)).collect();
        out.sort_by(|x, y| {
            y.severity
                .cmp(&x.severity)
                .then(x.detector.cmp(&y.detector))
                .then(x.first_seen_ns.cmp(&y.first_seen_ns))
                .then(x.process.pid.cmp(&y.process.pid))
                .then_with(|| x.goroutines.iter().map(|g| g.pc).cmp(y.goroutines.iter().map(|g| g.pc)))
        });
        out
    }
}

fn materialize(agg: &Aggregate, processes: &BTreeMap<u32, ProcessInfo>, sym: &dyn Symbolizer) -> Finding {
    let s = &agg.first;
    let process = processes.get(&s.tgid).cloned().unwrap_or(ProcessInfo { pid: s.tgid, ..ProcessInfo::default() });
    let (role_a, role_b) = message::roles(s.detector);
    let site = |t: &Touch, role| {
        let at = call_site(sym, &process, t.pc);
        GoroutineSite {
            role,
            goid: t.goid,
            tid: t.tid,
            pc: t.pc,
            function: at.function,
            file: at.file,
            line: at.line,
            stack: stack_frames(sym, &process, t.stack_id()),
        }
    };
    let mut goroutines = vec![site(&s.a, role_a)];
    goroutines.extend(s.b.as_ref().map(|b| site(b, role_b)));
    Finding {
        detector: s.detector,
        severity: s.detector.severity(),
        evidence: s.detector.evidence(),
        message: message::sentence(s),
        object: ObjectRef { kind: s.detector.object_kind(), address: s.object },
        process,
        goroutines,
        first_seen_ns: agg.first_seen,
        last_seen_ns: agg.last_seen,
        count: agg.count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::symbols::NoSymbols;
    use crate::events::MapOp;

    fn touch(goid: u64, pc: u64, ts: u64) -> Touch {
        Touch { ts, goid, pc, tid: goid as u32, stack: NO_STACK }
    }

    fn sighting(detector: Detector, a: Touch, b: Touch) -> Sighting {
        Sighting { detector, tgid: 1, object: 0x100, a, b: Some(b), detail: Detail::None }
    }

    #[test]
    fn folds_by_call_site_pair_in_either_order_for_symmetric_detectors() {
        let mut d = Dedup::new(10);
        d.add(sighting(Detector::ListConcurrentRemove, touch(1, 0x20, 5), touch(2, 0x10, 6)), 1);
        d.add(sighting(Detector::ListConcurrentRemove, touch(3, 0x10, 9), touch(4, 0x20, 8)), 2);
        d.add(sighting(Detector::MapIterWrite, touch(1, 0x20, 5), touch(2, 0x10, 6)), 1);
        d.add(sighting(Detector::MapIterWrite, touch(1, 0x10, 5), touch(2, 0x20, 6)), 1);
        let f = d.findings(&BTreeMap::new(), &NoSymbols);
        assert_eq!(f.len(), 3);
        let list = f.iter().find(|f| f.detector == Detector::ListConcurrentRemove).unwrap();
        assert_eq!((list.count, list.first_seen_ns, list.last_seen_ns), (3, 5, 9));
        assert_eq!(list.goroutines[0].pc, 0x10);
        assert_eq!(list.process.pid, 1);
    }

    /// A delete that started inside another goroutine's assign: folded with the
    /// reverse pair, yet each goroutine keeps its own call site and op in the
    /// message, whichever call site is lower.
    #[test]
    fn overlapping_writes_keep_who_started_during_whose_write() {
        let detail = |op, prior| Detail::Write { op, flag: false, prior: Some(prior) };
        let mut d = Dedup::new(10);
        let mut first = sighting(Detector::MapConcurrentWrite, touch(7, 0x20, 5), touch(49, 0x10, 4));
        first.detail = detail(MapOp::Delete, MapOp::Assign);
        d.add(first, 1);
        let mut again = sighting(Detector::MapConcurrentWrite, touch(49, 0x10, 9), touch(7, 0x20, 8));
        again.detail = detail(MapOp::Assign, MapOp::Delete);
        d.add(again, 1);
        let f = d.findings(&BTreeMap::new(), &NoSymbols);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].count, 2);
        let sides: Vec<_> = f[0].goroutines.iter().map(|g| (g.goid, g.pc)).collect();
        assert_eq!(sides, [(7, 0x20), (49, 0x10)]);
        assert!(f[0].message.contains("goroutine 7 started a map write (delete)"), "{}", f[0].message);
        assert!(f[0].message.contains("a write (assign) by goroutine 49"), "{}", f[0].message);
    }

    #[test]
    fn counts_what_it_cannot_keep() {
        let mut d = Dedup::new(1);
        d.add(sighting(Detector::MapIterWrite, touch(1, 1, 0), touch(2, 2, 0)), 1);
        d.add(sighting(Detector::MapIterWrite, touch(1, 3, 0), touch(2, 4, 0)), 4);
        assert_eq!((d.len(), d.dropped), (1, 4));
    }
}
