//! Map detectors on synthetic iteration/write streams, positive and silent.

use crate::detect::{
    Detector, Evidence, Role, Severity,
    testkit::{Lcg, Stream, detectors, kernel_filter},
};
use crate::events::{
    EventKind,
    MapOp::{Assign, Clear, Delete},
};

const M: u64 = 0xc0_0020_0000;
const IT_A: u64 = 0xc0_004f_e000; // hiter on A's stack
const IT_C: u64 = 0xc0_005f_e000;
const RANGE: u64 = 0x4b_1000;
const WRITE: u64 = 0x4b_2000;

/// A ranges over M (start + `steps` steps, 10 µs apart), from `t0`.
fn range(s: &mut Stream, t0: f64, goid: u64, iter: u64, steps: u32) {
    s.iter_start(t0, goid, RANGE, M, iter);
    for i in 1..=steps {
        s.iter_next(t0 + 10.0 * i as f64, goid, RANGE + 0x10, M, iter, false);
    }
}

#[test]
fn write_between_two_steps_of_another_goroutine_is_map_iter_write() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 5);
    s.write(25.0, 2, WRITE, M, Assign, false);
    let s = s.sorted();
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::MapIterWrite]);
        assert_eq!((f[0].severity, f[0].evidence), (Severity::Critical, Evidence::Definite));
        let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.role, g.goid, g.pc)).collect();
        assert_eq!(who, [(Role::Iterator, 1, RANGE + 0x10), (Role::Writer, 2, WRITE)]);
        assert_eq!(f[0].object.address, M);
    }
}

#[test]
fn a_write_whose_record_arrives_after_the_next_step_still_counts_once() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 3);
    s.write(25.0, 2, WRITE, M, Delete, false); // arrives after the step at 30 µs
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::MapIterWrite]);
    assert_eq!(f[0].count, 1);
}

#[test]
fn writing_flag_seen_by_a_step_is_map_iter_write() {
    let mut s = Stream::new();
    s.iter_start(0.0, 1, RANGE, M, IT_A).write(9.8, 2, WRITE, M, Assign, false);
    s.iter_next(10.0, 1, RANGE, M, IT_A, true);
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::MapIterWrite]);
    assert_eq!(f[0].goroutines.len(), 2);
    assert!(f[0].message.contains("writing flag"), "{}", f[0].message);
}

#[test]
fn a_write_starting_inside_another_goroutines_write_is_map_concurrent_write() {
    // The kernel sent A's start (held until then) and B's overlapping start.
    let mut s = Stream::new();
    s.write(0.0, 1, WRITE, M, Assign, false).overlap(0.3, 2, WRITE + 8, M, Delete, 1);
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::MapConcurrentWrite]);
    assert_eq!((f[0].severity, f[0].evidence), (Severity::Critical, Evidence::Definite));
    // B, the later writer, first (though its call site is the higher one), with
    // its own op; A's assign second: each side's pc is its own op's call site.
    let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.goid, g.pc)).collect();
    assert_eq!(who, [(2, WRITE + 8), (1, WRITE)]);
    let m = &f[0].message;
    assert!(m.contains("goroutine 2 started a map write (delete) while a write (assign) by goroutine 1"), "{m}");
    assert!(m.contains("had started and not yet returned"), "{m}");
    // A's start long gone from the map's state: the finding still names B.
    let mut s = Stream::new();
    s.write(0.0, 1, WRITE, M, Assign, false);
    s.write(1.0, 3, WRITE + 16, M, Assign, false).write(2.0, 4, WRITE + 24, M, Assign, false);
    s.overlap(3.0, 2, WRITE + 8, M, Assign, 1);
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::MapConcurrentWrite]);
    assert!(f[0].message.contains("another goroutine"), "{}", f[0].message);
}

#[test]
fn writing_flag_at_a_write_start_is_map_concurrent_write() {
    let mut s = Stream::new();
    s.write(0.0, 1, WRITE, M, Assign, false).write(0.2, 2, WRITE + 8, M, Delete, true);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::MapConcurrentWrite]);
        // The goroutine that saw the flag first, with its delete; the writer second.
        let goids: Vec<_> = f[0].goroutines.iter().map(|g| g.goid).collect();
        assert_eq!(goids, [2, 1]);
        assert!(f[0].message.contains("goroutine 2 started a map write (delete)"), "{}", f[0].message);
        assert!(f[0].message.contains("a write (assign) by goroutine 1"), "{}", f[0].message);
    }
    // The other writer's record may be missing (lost, or long before): still definite.
    let mut s = Stream::new();
    s.write(0.0, 1, WRITE, M, Assign, false).write(50_000.0, 2, WRITE + 8, M, Assign, true);
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::MapConcurrentWrite]);
    assert_eq!(f[0].goroutines.len(), 1);
    assert!(f[0].message.contains("another goroutine"), "{}", f[0].message);
}

#[test]
fn inserting_during_ones_own_range_is_info_on_a_complete_stream() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 4);
    s.write(15.0, 1, WRITE, M, Assign, false);
    let s = s.sorted();
    let f = s.run_complete();
    assert_eq!(detectors(&f), [Detector::MapWriteDuringRange]);
    assert_eq!((f[0].severity, f[0].evidence), (Severity::Info, Evidence::Definite));
    let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.role, g.pc)).collect();
    assert_eq!(who, [(Role::Iterator, RANGE + 0x10), (Role::Writer, WRITE)]);
    // The kernel follows the goroutine's run over every hit and sends the write
    // (as a write in its own range) once the next step shows the range went on.
    let f = s.run_filtered();
    assert_eq!(detectors(&f), [Detector::MapWriteDuringRange]);
    let who: Vec<_> = f[0].goroutines.iter().map(|g| (g.role, g.pc)).collect();
    assert_eq!(who, [(Role::Iterator, RANGE + 0x10), (Role::Writer, WRITE)]);
    // A plain write record between records of the goroutine's own range claims
    // nothing: filtered out, its own hits may hide a new range starting.
    assert!(s.run().is_empty());
}

#[test]
fn a_write_between_two_own_ranges_is_not_during_a_range() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 2);
    s.write(25.0, 1, WRITE, M, Assign, false);
    range(&mut s, 30.0, 1, IT_A, 2);
    assert!(s.run_complete().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn a_write_in_range_is_sent_once_per_range_and_site() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 6);
    for k in 0..5 {
        s.write(15.0 + 10.0 * k as f64, 1, WRITE, M, Assign, false);
    }
    let s = s.sorted();
    let sent = kernel_filter(&s.events);
    let in_range = sent.iter().filter(|e| matches!(e.kind, EventKind::MapWriteInRange { .. })).count();
    assert_eq!(in_range, 1);
    assert_eq!(s.run_filtered()[0].count, 1);
}

// ---- patterns that must stay silent ----

#[test]
fn deleting_during_ones_own_range_is_silent() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 6);
    for k in 0..5 {
        s.write(15.0 + 10.0 * k as f64, 1, WRITE, M, Delete, false);
    }
    let s = s.sorted();
    assert!(s.run_complete().is_empty());
    assert!(s.run_filtered().is_empty());
}

/// Readers range under RLock, writers write under Lock: a write comes after every
/// step of the ranges that held the read lock before it, and before the next start.
fn rwmutex_stream(seed: u64) -> Stream {
    let mut s = Stream::new();
    let mut rng = Lcg(seed);
    let mut t = 0.0;
    for _ in 0..300 {
        if rng.next(3) == 0 {
            s.write(t, 10 + rng.next(4), WRITE, M, [Assign, Delete, Clear][rng.next(3) as usize], false);
            t += 2.0;
        } else {
            // Two readers hold the read lock together; their steps interleave.
            let steps = 1 + rng.next(5) as u32;
            s.iter_start(t, 1, RANGE, M, IT_A).iter_start(t + 0.5, 2, RANGE, M, IT_C);
            for i in 1..=steps {
                s.iter_next(t + i as f64, 1, RANGE, M, IT_A, false);
                s.iter_next(t + i as f64 + 0.5, 2, RANGE, M, IT_C, false);
            }
            t += steps as f64 + 2.0;
        }
    }
    s
}

#[test]
fn maps_behind_an_rwmutex_stay_silent() {
    for seed in 1..20 {
        let s = rwmutex_stream(seed);
        assert!(s.run().is_empty(), "seed {seed}");
        assert!(s.run_filtered().is_empty(), "seed {seed}");
    }
}

#[test]
fn writes_behind_a_mutex_stay_silent() {
    let mut s = Stream::new();
    let mut rng = Lcg(5);
    for i in 0..1_000 {
        s.write(i as f64, 1 + rng.next(16), WRITE + rng.next(3) * 8, M, Assign, false);
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn a_write_between_two_ranges_reusing_one_iterator_is_silent() {
    // The loop's hiter lives in the same stack slot every time: the new range starts
    // afresh, so the write does not fall between two steps of one range.
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 2);
    s.write(25.0, 2, WRITE, M, Assign, false);
    range(&mut s, 30.0, 1, IT_A, 2);
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn a_step_of_an_unknown_range_claims_nothing_before_it() {
    // The start of A's range is not in the stream: the write might precede it.
    let mut s = Stream::new();
    s.write(5.0, 2, WRITE, M, Assign, false);
    s.iter_next(10.0, 1, RANGE, M, IT_A, false).iter_next(20.0, 1, RANGE, M, IT_A, false);
    assert!(s.run().is_empty());
}

#[test]
fn different_maps_do_not_interact() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 3);
    s.write(15.0, 2, WRITE, M + 0x1000, Assign, false);
    assert!(s.sorted().run().is_empty());
}

#[test]
fn an_own_write_after_the_last_step_is_not_claimed() {
    // The range may have ended after its last step (the runtime's last next call
    // returns no key): without a next step the held write never goes out.
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 4);
    s.write(45.0, 1, WRITE, M, Assign, false);
    let s = s.sorted();
    assert!(s.run_filtered().is_empty());
    assert!(s.run_complete().is_empty());
}

#[test]
fn another_goroutines_write_ends_the_own_run() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 4);
    s.write(15.0, 1, WRITE, M, Assign, false).write(16.0, 2, WRITE + 8, M, Assign, false);
    let f = s.sorted().run_filtered();
    assert!(!detectors(&f).contains(&Detector::MapWriteDuringRange), "{f:#?}");
}

#[test]
fn a_range_started_after_the_write_is_not_blamed_for_it() {
    // What the kernel sends when A's second range over the same iterator slot starts
    // right after A's own write (A's hits after a sent one are filtered): the write
    // of B precedes A's write, which precedes the new range.
    let mut s = Stream::new();
    s.iter_start(0.0, 1, RANGE, M, IT_A).write(15.0, 2, WRITE, M, Assign, false);
    s.write(20.0, 1, WRITE + 8, M, Assign, false).iter_next(30.0, 1, RANGE, M, IT_A, false);
    assert!(s.run().is_empty());
}

#[test]
fn a_range_that_may_have_started_unseen_claims_no_earlier_write() {
    // A range-start probe was off from 25 to 35 µs: A's range stepped at 40 may have
    // started at 32, after B's write, with no record of its start.
    for unseen_us in [35.0, f64::INFINITY] {
        let mut s = Stream::new();
        range(&mut s, 0.0, 1, IT_A, 2);
        s.write(30.0, 2, WRITE, M, Assign, false);
        s.iter_next_unseen(40.0, 1, RANGE + 0x10, M, IT_A, unseen_us);
        let s = s.sorted();
        assert!(s.run().is_empty(), "unseen until {unseen_us}");
        assert!(s.run_filtered().is_empty(), "unseen until {unseen_us}");
    }
}

#[test]
fn a_write_after_the_start_probes_were_back_still_counts() {
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 2);
    s.write(37.0, 2, WRITE, M, Assign, false);
    s.iter_next_unseen(40.0, 1, RANGE + 0x10, M, IT_A, 35.0);
    let s = s.sorted();
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::MapIterWrite]);
    }
}

#[test]
fn an_own_write_before_an_unseen_range_start_is_not_inside_the_range() {
    // A's write at 30 may fall between its first range and a second one over the
    // same iterator slot that started unseen.
    let mut s = Stream::new();
    range(&mut s, 0.0, 1, IT_A, 2);
    s.write(30.0, 1, WRITE, M, Assign, false);
    s.iter_next_unseen(40.0, 1, RANGE + 0x10, M, IT_A, 35.0);
    let s = s.sorted();
    assert!(s.run_filtered().is_empty());
    assert!(s.run_complete().is_empty());
}
