//! List detectors on synthetic Remove enter/exit streams, positive and silent.

use tracer_common::ListOp;

use crate::detect::{
    Detector, Evidence, Role, Severity,
    testkit::{Lcg, Stream, detectors},
};

const L: u64 = 0xc0_0030_0000;
const OTHER: u64 = 0xc0_0031_0000;
const E: u64 = 0xc0_0032_0000;
const SITE_A: u64 = 0x4c_1000;
const SITE_B: u64 = 0x4c_2000;

#[test]
fn overlapping_removes_are_concurrent_once() {
    let mut s = Stream::new();
    s.enter(0.0, 1, SITE_A, L, E, L).enter(5.0, 2, SITE_B, L, E + 64, L).exit(10.0, 1, SITE_A + 4, L).exit(
        12.0,
        2,
        SITE_B + 4,
        L,
    );
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::ListConcurrentRemove]);
        assert_eq!((f[0].severity, f[0].evidence, f[0].count), (Severity::Critical, Evidence::Definite, 1));
        let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.role, g.goid)).collect();
        assert_eq!(who, [(Role::Remover, 1), (Role::Remover, 2)]);
    }
}

#[test]
fn nested_and_late_arriving_enters_count_once() {
    let mut nested = Stream::new();
    nested
        .enter(0.0, 1, SITE_A, L, E, L)
        .enter(2.0, 2, SITE_B, L, E + 64, L)
        .exit(3.0, 2, SITE_B, L)
        .exit(10.0, 1, SITE_A, L);
    let mut late = Stream::new();
    late.enter(0.0, 1, SITE_A, L, E, L)
        .exit(10.0, 1, SITE_A, L)
        .enter(5.0, 2, SITE_B, L, E + 64, L)
        .exit(12.0, 2, SITE_B, L);
    for s in [nested, late] {
        let f = s.run();
        assert_eq!(detectors(&f), [Detector::ListConcurrentRemove]);
        assert_eq!(f[0].count, 1);
    }
}

#[test]
fn removing_an_element_of_another_list_is_foreign() {
    let mut s = Stream::new();
    s.enter(0.0, 1, SITE_A, L, E, OTHER).exit(1.0, 1, SITE_A, L);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::ListForeignRemove]);
        assert_eq!((f[0].severity, f[0].evidence), (Severity::Warning, Evidence::Definite));
        assert_eq!(f[0].goroutines.len(), 1);
        assert!(f[0].message.contains(&format!("{OTHER:#x}")), "{}", f[0].message);
    }
}

#[test]
fn removing_a_removed_element_is_stale() {
    // defer l.Remove(e) after an explicit l.Remove(e).
    let mut s = Stream::new();
    s.enter(0.0, 1, SITE_A, L, E, L).exit(1.0, 1, SITE_A, L).enter(2.0, 1, SITE_B, L, E, 0).exit(3.0, 1, SITE_B, L);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::ListStaleRemove]);
        assert_eq!(f[0].goroutines[0].pc, SITE_B);
    }
}

#[test]
fn lists_behind_a_mutex_stay_silent() {
    let mut s = Stream::new();
    let mut rng = Lcg(9);
    let mut t = 0.0;
    for i in 0..2_000u64 {
        let g = 1 + rng.next(8);
        s.enter(t, g, SITE_A, L, E + i * 64, L).exit(t + 0.3, g, SITE_A, L);
        t += 0.5 + rng.next(3) as f64;
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn different_lists_may_be_removed_from_at_once() {
    let mut s = Stream::new();
    s.enter(0.0, 1, SITE_A, L, E, L)
        .enter(1.0, 2, SITE_A, OTHER, E + 64, OTHER)
        .exit(2.0, 1, SITE_A, L)
        .exit(3.0, 2, SITE_A, OTHER);
    assert!(s.run().is_empty());
}

#[test]
fn a_goroutine_keeps_one_span() {
    // Goroutine 1's first Remove never exits in the stream (its exit record was
    // lost); its next Remove replaces it instead of taking a second slot.
    let mut s = Stream::new();
    s.enter(0.0, 1, SITE_A, L, E, L).enter(10.0, 2, SITE_B, L, E + 64, L).exit(11.0, 2, SITE_B, L);
    s.enter(20.0, 1, SITE_A, L, E + 128, L).exit(21.0, 1, SITE_A, L);
    assert!(s.run().is_empty());
}

#[test]
fn a_push_overlapping_a_remove_is_a_concurrent_mutation() {
    // The unlocked work queue: one goroutine PushBack, another Front + Remove.
    let mut s = Stream::new();
    s.mutate(0.0, 1, SITE_A, ListOp::PushBack, L, 0, L)
        .enter(1.0, 2, SITE_B, L, E, L)
        .exit(2.0, 1, SITE_A, L)
        .exit(3.0, 2, SITE_B, L);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::ListConcurrentMutation]);
        assert_eq!((f[0].severity, f[0].evidence), (Severity::Critical, Evidence::Definite));
        let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.role, g.goid)).collect();
        assert_eq!(who, [(Role::Mutator, 1), (Role::Mutator, 2)]);
        assert!(f[0].message.contains("(PushBack)") && f[0].message.contains("(Remove)"), "{}", f[0].message);
    }
}

#[test]
fn lru_moves_and_pushes_behind_a_mutex_stay_silent_and_unlocked_ones_do_not() {
    let ops = [ListOp::MoveToFront, ListOp::PushFront, ListOp::Remove, ListOp::MoveToBack, ListOp::InsertAfter];
    let mut rng = Lcg(3);
    let (mut locked, mut unlocked) = (Stream::new(), Stream::new());
    let (mut t, mut prev) = (0.0, 0.0);
    for i in 0..2_000u64 {
        let g = 1 + rng.next(4);
        let op = ops[rng.next(ops.len() as u64) as usize];
        let e = if op.checks_element() { E + i * 64 } else { 0 };
        // Locked: each mutation exits before the next enters. Unlocked: every tenth,
        // by another goroutine, starts before the previous one ended.
        locked.mutate(t, g, SITE_A, op, L, e, L).exit(t + 0.3, g, SITE_A, L);
        let (start, g) = if i % 10 == 9 { (prev + 0.1, 10) } else { (t, g) };
        unlocked.mutate(start, g, SITE_B, op, L, e, L).exit(t + 0.3, g, SITE_B, L);
        prev = t;
        t += 0.5 + rng.next(3) as f64;
    }
    assert!(locked.run().is_empty());
    assert!(locked.run_filtered().is_empty());
    let f = unlocked.sorted().run();
    assert!(!f.is_empty());
    assert!(f.iter().all(|f| matches!(f.detector, Detector::ListConcurrentMutation | Detector::ListConcurrentRemove)), "{f:?}");
}

#[test]
fn moves_and_inserts_through_foreign_or_removed_elements_are_reported() {
    let mut s = Stream::new();
    s.mutate(0.0, 1, SITE_A, ListOp::MoveToFront, L, E, OTHER)
        .exit(1.0, 1, SITE_A, L)
        .mutate(2.0, 1, SITE_B, ListOp::InsertBefore, L, E, 0)
        .exit(3.0, 1, SITE_B, L);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::ListForeignElement, Detector::ListForeignElement]);
        assert_eq!(f[0].severity, Severity::Warning);
        let text: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert!(text.iter().any(|m| m.contains("MoveToFront") && m.contains(&format!("{OTHER:#x}"))), "{text:?}");
        assert!(text.iter().any(|m| m.contains("InsertBefore") && m.contains("nil")), "{text:?}");
    }
    // Pushes have no element: their records carry the list as e.list.
    let mut push = Stream::new();
    push.mutate(0.0, 1, SITE_A, ListOp::PushBack, L, 0, L).exit(1.0, 1, SITE_A, L);
    assert!(push.run().is_empty());
}
