//! The one-sentence message of each detector; it opens with the evidence level and
//! says what the records show, not more.

use super::{
    dedup::{Detail, Sighting},
    finding::{Detector, Role},
};
use crate::events::MapOp;

/// The parts the two goroutines of a sighting play, `a` then `b`.
pub(crate) fn roles(d: Detector) -> (Role, Role) {
    match d {
        Detector::SliceCapacityOverlap => (Role::LowerSlice, Role::UpperSlice),
        Detector::SliceLostAppend => (Role::Appender, Role::Appender),
        Detector::SliceStaleHeader => (Role::FirstGrower, Role::LaterGrower),
        Detector::MapIterWrite => (Role::Iterator, Role::Writer),
        Detector::MapConcurrentWrite => (Role::Writer, Role::Writer),
        Detector::MapWriteDuringRange => (Role::Iterator, Role::Writer),
        Detector::ListConcurrentRemove | Detector::ListForeignRemove | Detector::ListStaleRemove => {
            (Role::Remover, Role::Remover)
        }
        Detector::ListConcurrentMutation | Detector::ListForeignElement => (Role::Mutator, Role::Mutator),
    }
}

fn op_name(op: MapOp) -> &'static str {
    match op {
        MapOp::Assign => "assign",
        MapOp::Delete => "delete",
        MapOp::Clear => "clear",
    }
}

/// ` (assign)` when the other side's op is known.
fn prior_op(op: Option<MapOp>) -> String {
    op.map_or_else(String::new, |op| format!(" ({})", op_name(op)))
}

fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}

/// The message of a sighting.
pub(crate) fn sentence(s: &Sighting) -> String {
    let ga = s.a.goid;
    let other = |what: &str| s.b.map_or_else(|| format!("another {what}"), |b| format!("goroutine {}", b.goid));
    let gb = other("goroutine");
    match (s.detector, s.detail) {
        (Detector::SliceCapacityOverlap, Detail::Overlap { bytes, elem }) => format!(
            "definite: goroutines {ga} and {gb_id} grew sub-slices of one backing array whose elements overlap by {n} \
             element(s) ({bytes} bytes), so appends through one of them overwrote elements of the other.",
            gb_id = s.b.map_or(0, |b| b.goid),
            n = bytes / elem.max(1),
        ),
        (Detector::SliceLostAppend, Detail::Length { len }) => format!(
            "likely: goroutines {ga} and {gb_id} grew the same backing array from the same slice at length {len} within \
             {gap} of each other, as two appends through one shared slice header do, and then one append is lost.",
            gb_id = s.b.map_or(0, |b| b.goid),
            gap = duration(s.b.map_or(0, |b| b.ts.abs_diff(s.a.ts))),
        ),
        (Detector::SliceStaleHeader, Detail::Gap { ns }) => format!(
            "possible: {gb} grew a backing array {gap} after goroutine {ga} first grew it, so a slice header may have \
             been used after its slice moved (or the buffer is reused on purpose, e.g. through a pool).",
            gap = duration(ns),
        ),
        (Detector::MapIterWrite, Detail::Write { op, flag: false, .. }) => format!(
            "definite: {gb} started a map write ({op}) while goroutine {ga} was between two steps of ranging over \
             the same map.",
            op = op_name(op),
        ),
        (Detector::MapIterWrite, _) => format!(
            "definite: goroutine {ga} stepped its range over a map while the map's own writing flag was set by {w}.",
            w = other("goroutine's write"),
        ),
        (Detector::MapConcurrentWrite, Detail::Write { op, flag: false, prior }) => format!(
            "definite: goroutine {ga} started a map write ({op}) while a write{prior} by {w} to the same map had \
             started and not yet returned.",
            op = op_name(op),
            prior = prior_op(prior),
            w = other("goroutine"),
        ),
        (Detector::MapConcurrentWrite, Detail::Write { op, prior, .. }) => format!(
            "definite: goroutine {ga} started a map write ({op}) while the map's own writing flag showed a \
             write{prior} by {w} still in progress.",
            op = op_name(op),
            prior = prior_op(prior),
            w = other("goroutine"),
        ),
        (Detector::MapWriteDuringRange, Detail::Write { op, .. }) => format!(
            "definite (legal Go): goroutine {ga} wrote ({op}) the map it was ranging over, between two steps of the \
             range; keys it inserts may or may not be visited.",
            op = op_name(op),
        ),
        (Detector::ListConcurrentRemove, _) => format!(
            "definite: goroutines {ga} and {gb_id} were inside (*list.List).Remove on the same list at the same time.",
            gb_id = s.b.map_or(0, |b| b.goid),
        ),
        (Detector::ListForeignRemove, Detail::ElemList { list }) => format!(
            "definite: goroutine {ga} called Remove(e) on a list e does not belong to (e.list is {list:#x}), so the \
             call did nothing."
        ),
        (Detector::ListConcurrentMutation, Detail::ListOps { a, b }) => format!(
            "definite: goroutines {ga} ({a}) and {gb_id} ({b}) were inside mutating methods of the same list at the \
             same time.",
            a = a.method(),
            b = b.method(),
            gb_id = s.b.map_or(0, |b| b.goid),
        ),
        (Detector::ListForeignElement, Detail::ElemOf { op, list: 0 }) => format!(
            "definite: goroutine {ga} called {op} through an element whose list is nil (removed, or never \
             inserted), so the call did nothing.",
            op = op.method(),
        ),
        (Detector::ListForeignElement, Detail::ElemOf { op, list }) => format!(
            "definite: goroutine {ga} called {op} through an element of another list (its list is {list:#x}), so \
             the call did nothing.",
            op = op.method(),
        ),
        (Detector::ListStaleRemove, _) => format!(
            "definite: goroutine {ga} called Remove(e) with e.list == nil (e was already removed, or never \
             inserted), so the call did nothing."
        ),
        (d, _) => format!("{}: goroutine {ga} ({d}).", d.evidence()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::dedup::Touch;
    use crate::events::{Event, EventKind};

    fn touch(goid: u64, ts: u64) -> Touch {
        let ev = Event {
            ts_ns: ts,
            tgid: 1,
            tid: 1,
            goid,
            pc: 0,
            probe: 0,
            stack_id: None,
            kind: EventKind::ListRemoveExit { list: 0, elem: 0 },
        };
        Touch::of(&ev)
    }

    #[test]
    fn every_message_starts_with_its_evidence_level() {
        let details = [
            Detail::Overlap { bytes: 16, elem: 8 },
            Detail::Length { len: 4 },
            Detail::Gap { ns: 2_500_000_000 },
            Detail::Write { op: MapOp::Assign, flag: false, prior: None },
            Detail::Write { op: MapOp::Delete, flag: true, prior: Some(MapOp::Assign) },
            Detail::Write { op: MapOp::Clear, flag: true, prior: None },
            Detail::ElemList { list: 0x10 },
            Detail::None,
            Detail::None,
        ];
        for (d, detail) in Detector::ALL.into_iter().zip(details) {
            for b in [Some(touch(2, 500)), None] {
                let s = Sighting { detector: d, tgid: 1, object: 0, a: touch(1, 0), b, detail };
                let m = sentence(&s);
                assert!(m.starts_with(d.evidence().name()), "{d}: {m}");
                assert!(m.ends_with('.'), "{d}: {m}");
            }
        }
        assert_eq!(duration(1_500), "1.5µs");
    }
}
