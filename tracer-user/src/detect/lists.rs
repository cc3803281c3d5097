//! List detectors (`list_concurrent_remove`, `list_concurrent_mutation`,
//! `list_foreign_remove`, `list_stale_remove`, `list_foreign_element`) over the
//! enter and exit records of the mutating `*list.List` methods, with one state per
//! list.
//!
//! `Remove(e)`, `MoveToFront(e)`, `InsertBefore(v, mark)`… act only when the
//! element's `list` is the receiver and otherwise return without doing anything;
//! the kernel reads `e.list` as the body starts. Two goroutines are inside
//! mutations of one list at once when one's enter falls between the other's enter
//! and exit: a lock around the list would have ordered one exit before the other
//! enter. Mutations that never overlap are not reported, ordered or not: the
//! records cannot tell an unlocked list whose mutations happened to alternate from
//! a locked one.

use super::{
    config::Config,
    dedup::{Dedup, Detail, Sighting, Touch},
    finding::Detector,
    table::{Key, Table},
};
use crate::events::Event;
use tracer_common::ListOp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    enter: Touch,
    op: ListOp,
    /// Exit timestamp, 0 while still inside.
    exit: u64,
}

/// The latest mutation of the goroutines that mutated the list last.
#[derive(Clone, Copy, Default)]
struct ListState {
    spans: [Option<Span>; 3],
}

impl ListState {
    /// Keeps one span per goroutine: replaces that goroutine's own, else fills an
    /// empty slot, else replaces the oldest.
    fn put(&mut self, s: Span) {
        let spans = &self.spans;
        let slot = spans
            .iter()
            .position(|x| x.is_some_and(|x| x.enter.goid == s.enter.goid))
            .or_else(|| spans.iter().position(Option::is_none))
            .or_else(|| (0..spans.len()).min_by_key(|&i| spans[i].map_or(0, |x| x.enter.ts)))
            .expect("three slots");
        self.spans[slot] = Some(s);
    }
}

pub(crate) struct Lists {
    lists: Table<ListState>,
    /// List records from no known goroutine.
    pub ignored: u64,
}

impl Lists {
    pub fn new(cfg: &Config) -> Self {
        Self { lists: Table::new(cfg.max_lists, Config::ns(cfg.ttl)), ignored: 0 }
    }

    pub fn tracked(&self) -> usize {
        self.lists.len()
    }

    pub fn allocated_bytes(&self) -> usize {
        self.lists.allocated_bytes()
    }

    pub fn evictions(&self) -> (u64, u64) {
        (self.lists.evicted, self.lists.expired)
    }

    pub fn on_enter(&mut self, ev: &Event, list: u64, elem_list: u64, op: ListOp, now: u64, out: &mut Dedup) {
        let t = Touch::of(ev);
        let key = Key::new(ev.tgid, list);
        let single = |detector, detail| Sighting { detector, tgid: key.tgid, object: key.addr, a: t, b: None, detail };
        match op {
            ListOp::Remove if elem_list == 0 => out.add(single(Detector::ListStaleRemove, Detail::None), 1),
            ListOp::Remove if elem_list != list => {
                out.add(single(Detector::ListForeignRemove, Detail::ElemList { list: elem_list }), 1)
            }
            _ if op.checks_element() && elem_list != list => {
                out.add(single(Detector::ListForeignElement, Detail::ElemOf { op, list: elem_list }), 1)
            }
            _ => {}
        }
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let ls = self.lists.get_or_insert_with(key, now, ListState::default);
        // An enter that arrives after the exit of a span it falls into.
        for s in ls.spans.iter().flatten() {
            if s.enter.goid != t.goid && s.exit != 0 && s.enter.ts < t.ts && t.ts < s.exit {
                out.add(concurrent(key, *s, Span { enter: t, op, exit: 0 }), 1);
            }
        }
        ls.put(Span { enter: t, op, exit: 0 });
    }

    pub fn on_exit(&mut self, ev: &Event, now: u64, list: u64, out: &mut Dedup) {
        if ev.goid == 0 {
            self.ignored += 1;
            return;
        }
        let key = Key::new(ev.tgid, list);
        let Some(ls) = self.lists.touch(key, now, &mut |_, _, _| {}) else { return };
        let Some(i) = ls
            .spans
            .iter()
            .position(|s| s.is_some_and(|s| s.enter.goid == ev.goid && s.exit == 0 && s.enter.ts <= ev.ts_ns))
        else {
            return;
        };
        let mine = ls.spans[i].as_mut().expect("found above");
        mine.exit = ev.ts_ns;
        let mine = *mine;
        for s in ls.spans.iter().flatten() {
            if s.enter.goid != mine.enter.goid && mine.enter.ts < s.enter.ts && s.enter.ts < mine.exit {
                out.add(concurrent(key, mine, *s), 1);
            }
        }
    }

    /// Sweeps up to `budget` lists for expiry.
    pub fn advance(&mut self, now: u64, budget: usize) {
        self.lists.expire(now, budget, &mut |_, _, _| {});
    }
}

/// Two overlapping mutations: `list_concurrent_remove` when both are Remove (its
/// name predates the other methods), else `list_concurrent_mutation`.
fn concurrent(key: Key, a: Span, b: Span) -> Sighting {
    // Symmetric: ordered by call site here, so the methods stay with their sites.
    let (a, b) = if b.enter.pc < a.enter.pc { (b, a) } else { (a, b) };
    let (detector, detail) = if a.op == ListOp::Remove && b.op == ListOp::Remove {
        (Detector::ListConcurrentRemove, Detail::None)
    } else {
        (Detector::ListConcurrentMutation, Detail::ListOps { a: a.op, b: b.op })
    };
    Sighting { detector, tgid: key.tgid, object: key.addr, a: a.enter, b: Some(b.enter), detail }
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
