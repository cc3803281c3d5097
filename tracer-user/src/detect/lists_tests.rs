//! List detectors on synthetic Remove enter/exit streams, positive and silent.

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
