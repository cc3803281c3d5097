//! Slice detectors on synthetic growth streams: what must fire, and every pattern
//! DESIGN.md says must stay silent, on the full stream and through the kernel filter.

use std::time::Duration;

use crate::events::EventKind;

use crate::detect::{
    Config, Detector, Evidence, Role, Severity,
    testkit::{Lcg, Stream, assert_quiet_at, detectors, kernel_filter},
};

const BASE: u64 = 0xc0_0010_0000;
const SITE_A: u64 = 0x4a_1000;
const SITE_B: u64 = 0x4a_2000;

/// head := buf[:16], tail := buf[8:16] (both 2-index: they share buf's end); each
/// goroutine appends until its header reaches the end of the array and grows.
fn head_and_tail(gap_us: f64) -> Stream {
    let mut s = Stream::new();
    s.grow(100.0, 1, SITE_A, BASE, 16, 16, 8).grow(100.0 + gap_us, 2, SITE_B, BASE + 64, 8, 8, 8);
    s
}

#[test]
fn overlapping_sub_slices_fire_with_the_exact_overlap() {
    for f in [head_and_tail(200.0).run(), head_and_tail(200.0).run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceCapacityOverlap]);
        let f = &f[0];
        assert_eq!((f.severity, f.evidence), (Severity::Critical, Evidence::Definite));
        assert_eq!(f.object.address, BASE + 128);
        assert!(f.message.contains("overlap by 8 element(s) (64 bytes)"), "{}", f.message);
        let roles: Vec<_> = f.goroutines.iter().map(|g| (g.role, g.goid, g.pc)).collect();
        assert_eq!(roles, [(Role::LowerSlice, 1, SITE_A), (Role::UpperSlice, 2, SITE_B)]);
    }
}

#[test]
fn overlap_pairs_are_kept_within_the_window_only() {
    // Further apart, a different start may be a new life of the address (a GC cycle
    // freed the array and the allocator reused its memory): nothing below
    // `stale_after`, at most a stale header from there on.
    assert_eq!(detectors(&head_and_tail(900.0).run()), [Detector::SliceCapacityOverlap]);
    for gap in [1_500.0, 26_000.0, 90_000.0] {
        assert!(head_and_tail(gap).run().is_empty(), "{gap} µs apart");
    }
    for gap in [100_000.0, 2_000_000.0] {
        assert_eq!(detectors(&head_and_tail(gap).run()), [Detector::SliceStaleHeader]);
    }
}

#[test]
fn full_slice_expressions_never_share_an_array_state() {
    // Workers get s[0:4:4], s[4:8:8], ...: each chunk ends where the next starts.
    let mut s = Stream::new();
    for w in 0..8u64 {
        s.grow(10.0 + w as f64, w + 1, SITE_A, BASE + w * 32, 4, 4, 8);
        s.grow(20.0 + w as f64, w + 1, SITE_A, BASE + w * 32, 4, 4, 8);
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn overlap_is_exact_when_the_lower_slice_ends_early() {
    // The lower header holds 3 elements and appends 20 at once: it grows (copies)
    // without writing the array, and its elements end before the upper one starts.
    let mut s = Stream::new();
    s.grow(100.0, 1, SITE_A, BASE, 3, 16, 8).grow(150.0, 2, SITE_B, BASE + 64, 8, 8, 8);
    assert!(s.run().is_empty());
    // One element more and they overlap by exactly one element.
    let mut s = Stream::new();
    s.grow(100.0, 1, SITE_A, BASE, 9, 16, 8).grow(150.0, 2, SITE_B, BASE + 64, 8, 8, 8);
    let f = s.run();
    assert_eq!(detectors(&f), [Detector::SliceCapacityOverlap]);
    assert!(f[0].message.contains("(8 bytes)"), "{}", f[0].message);
}

/// Two goroutines append through one shared header at the same moment, array after
/// array as the slice keeps growing: each array is grown twice at once, then never.
fn racing_shared_header(arrays: u64) -> Stream {
    let mut s = Stream::new();
    let mut cap = 8;
    for i in 0..arrays {
        let t = 1_000.0 * i as f64;
        let ptr = BASE + i * 0x10_000;
        s.grow(t, 1, SITE_A, ptr, cap, cap, 8).grow(t + 0.4, 2, SITE_A, ptr, cap, cap, 8);
        cap *= 2;
    }
    s
}

#[test]
fn racing_appends_through_one_header_are_lost_appends() {
    for f in [racing_shared_header(3).run(), racing_shared_header(3).run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceLostAppend]);
        assert_eq!((f[0].severity, f[0].evidence, f[0].count), (Severity::Warning, Evidence::Likely, 3));
        assert!(f[0].message.starts_with("likely: goroutines 1 and 2"), "{}", f[0].message);
    }
}

#[test]
fn lost_append_candidates_settle_as_the_clock_moves() {
    let mut engine = crate::detect::Engine::new(Config::default()).unwrap();
    for ev in &racing_shared_header(1).events {
        engine.process(ev);
    }
    assert!(engine.findings(&crate::detect::NoSymbols).is_empty(), "not before settle");
    engine.advance_to(2_000_000_000);
    assert_eq!(detectors(&engine.findings(&crate::detect::NoSymbols)), [Detector::SliceLostAppend]);
}

#[test]
fn records_arriving_out_of_order_still_pair() {
    let mut s = Stream::new();
    s.grow(100.4, 2, SITE_B, BASE, 8, 8, 8).grow(100.0, 1, SITE_A, BASE, 8, 8, 8);
    assert_eq!(detectors(&s.run()), [Detector::SliceLostAppend]);
}

#[test]
fn a_header_used_long_after_its_slice_moved_is_a_possible_stale_header() {
    let mut s = Stream::new();
    s.grow(0.0, 1, SITE_A, BASE, 8, 8, 8).grow(2_000_000.0, 2, SITE_B, BASE, 8, 8, 8);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceStaleHeader]);
        assert_eq!((f[0].severity, f[0].evidence), (Severity::Info, Evidence::Possible));
        assert_eq!(f[0].goroutines[1].role, Role::LaterGrower);
    }
}

// ---- patterns that must stay silent at warning and above ----

#[test]
fn appends_under_a_mutex_grow_each_array_once_in_turn() {
    let mut s = Stream::new();
    let mut cap = 1;
    for i in 0..200u64 {
        // Whoever holds the lock when the slice is full grows it; the array it
        // grows is the one the previous holder's growth produced.
        s.grow(i as f64 * 3.0, 1 + i % 7, SITE_A, BASE + i * 0x100_000, cap, cap, 16);
        cap = (cap * 5 / 4 + 1).min(1 << 24);
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn slices_handed_over_a_channel_are_grown_by_the_receiver_only() {
    let mut s = Stream::new();
    for i in 0..50u64 {
        let t = i as f64 * 10.0;
        // The producer builds batch i (growing its own arrays), hands it over, and the
        // consumer appends to what it received.
        s.grow(t, 1, SITE_A, BASE + i * 0x1000, 4, 4, 8).grow(t + 1.0, 1, SITE_A, BASE + i * 0x1000 + 0x100, 8, 8, 8);
        s.grow(t + 5.0, 2, SITE_B, BASE + i * 0x1000 + 0x200, 16, 16, 8);
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn per_goroutine_slices_stay_silent() {
    let mut s = Stream::new();
    let mut rng = Lcg(7);
    for i in 0..2_000u64 {
        let g = 1 + rng.next(16);
        let array = BASE + g * 0x100_0000 + rng.next(64) * 0x1000;
        s.grow(i as f64 * 0.2, g, SITE_A + g, array, 64, 64, 8);
    }
    assert!(s.run().is_empty());
    assert!(s.run_filtered().is_empty());
}

#[test]
fn zero_capacity_slices_have_no_identity() {
    const ZEROBASE: u64 = 0x5a_6b00;
    let mut s = Stream::new();
    for g in 1..=50u64 {
        s.grow(g as f64 * 0.1, g, SITE_A, ZEROBASE, 0, 0, 8);
    }
    let (f, stats) = s.run_with(Config::default());
    assert!(f.is_empty());
    assert_eq!(stats.ignored, 50);
}

#[test]
fn read_only_template_copied_by_many_goroutines_is_not_a_lost_append() {
    // append(t[:n:n], x) in a handler run by 8 goroutines: the same array grown at
    // len == cap == n, concurrently, again and again, and never written.
    let mut s = Stream::new();
    let mut rng = Lcg(42);
    let mut t = 0.0;
    for _ in 0..4_000 {
        t += rng.next(100) as f64; // 0-100 µs apart: many pairs land within the window
        s.grow(t, 1 + rng.next(8), SITE_A, BASE, 12, 12, 8);
    }
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
    }
    let (_, stats) = s.run_with(Config::default());
    assert!(stats.suppressed > 0);
}

#[test]
fn template_used_twice_by_each_goroutine_in_one_burst_is_not_a_lost_append() {
    // All within the window: one goroutine growing the same slice twice is enough to
    // show that nobody stores the grown slice back into a shared header.
    let mut s = Stream::new();
    for round in 0..2 {
        for g in 1..=4u64 {
            s.grow(10.0 + round as f64 * 50.0 + g as f64, g, SITE_A, BASE, 12, 12, 8);
        }
    }
    assert!(s.run().is_empty());
}

#[test]
fn a_template_one_goroutine_kept_copying_is_not_a_lost_append_after_the_kernel_filter() {
    // A session copies a published table every 20 ms; in the table's last round a
    // second session copies it at the same moment, then the table is replaced. The
    // kernel filters the first session's repeats but marks the record it replays, so
    // the evidence that headers are copied by value survives.
    let mut s = Stream::new();
    for k in 0..3 {
        s.grow(k as f64 * 20_000.0, 2, SITE_A, BASE, 12, 12, 8);
    }
    s.grow(40_000.4, 1, SITE_B, BASE, 12, 12, 8);
    let sent = kernel_filter(&s.events);
    assert_eq!(sent.len(), 2, "the held repeat and the other session's copy");
    assert!(matches!(sent[0].kind, EventKind::SliceGrow { repeated: true, .. }));
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Info);
    }
    // Without the repeats the pair is a lost append, as it should be.
    let mut racing = Stream::new();
    racing.grow(40_000.0, 2, SITE_A, BASE, 12, 12, 8).grow(40_000.4, 1, SITE_B, BASE, 12, 12, 8);
    assert_eq!(detectors(&racing.run_filtered()), [Detector::SliceLostAppend]);
}

#[test]
fn a_template_copied_before_a_gc_cycle_ended_is_still_copied_by_value_after_it() {
    // A session copied the published table; a GC cycle ends; then the watcher's
    // clipped append that publishes the next table and another session's first copy
    // meet within the window. The kernel cannot pair growths across the cycle, but
    // it marks the same header grown again as a repeat.
    let mut s = Stream::new();
    for k in 0..3 {
        s.grow(k as f64 * 20_000.0, 2, SITE_A, BASE, 12, 12, 8);
    }
    s.gc();
    s.grow(50_000.0, 18, SITE_B, BASE, 12, 12, 8).grow(50_015.0, 20, SITE_A, BASE, 12, 12, 8);
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
    }
}

#[test]
fn read_only_suffixes_of_a_template_are_not_overlaps() {
    // append(t[i:], x) with len(t) == cap(t), i varying by request.
    let mut s = Stream::new();
    let mut rng = Lcg(3);
    for k in 0..2_000u64 {
        let i = rng.next(4);
        s.grow(k as f64 * 30.0, 1 + rng.next(6), SITE_A, BASE + i * 8, 12 - i, 12 - i, 8);
    }
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
    }
}

#[test]
fn pool_recycled_buffer_is_at_most_possible() {
    // b := pool.Get(); out := append(b[:0], data...); pool.Put(b): the same array,
    // grown whenever some request's data outgrows it, by whichever goroutine got it;
    // a hot pool hands it on within microseconds.
    let mut s = Stream::new();
    let mut rng = Lcg(11);
    let mut t = 0.0;
    for _ in 0..3_000 {
        t += 5.0 + rng.next(400) as f64;
        s.grow(t, 1 + rng.next(32), SITE_A, BASE, 0x200, 0x200, 1);
    }
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
        assert!(f.iter().all(|f| f.evidence == Evidence::Possible));
    }
}

// ---- bounds ----

#[test]
fn evicted_arrays_settle_their_candidates_and_are_counted() {
    let mut s = racing_shared_header(1);
    for i in 0..10u64 {
        s.grow(1.0 + i as f64, 9, SITE_B, BASE + 0x100_0000 + i * 0x1000, 4, 4, 8);
    }
    let cfg = Config { max_arrays: 4, ..Config::default() };
    let (f, stats) = s.run_with(cfg);
    assert_eq!(detectors(&f), [Detector::SliceLostAppend]);
    assert_eq!(stats.evicted, 7);
    assert_eq!(stats.tracked, 0, "finish drains");
}

#[test]
fn the_window_is_configurable() {
    let s = racing_shared_header(1);
    let cfg = Config { window: Duration::from_nanos(100), ..Config::default() };
    assert!(s.run_with(cfg).0.is_empty(), "0.4 µs apart is outside a 100 ns window");
    assert_eq!(kernel_filter(&s.events).len(), 2);
}

#[test]
fn the_settle_queue_stays_within_the_table_bound() {
    let mut s = Stream::new();
    for i in 0..20u64 {
        let ptr = BASE + i * 0x1000;
        s.grow(i as f64, 1, SITE_A, ptr, 8, 8, 8).grow(i as f64 + 0.2, 2, SITE_A, ptr, 8, 8, 8);
    }
    let (f, stats) = s.run_with(Config { max_arrays: 4, ..Config::default() });
    assert_eq!(detectors(&f), [Detector::SliceLostAppend]);
    assert_eq!(f[0].count, 20, "every pair settles once: evicted, early or at the end");
    assert_eq!(stats.evicted, 16);
}

#[test]
fn batch_shards_appending_past_their_end_overlap_even_if_an_address_comes_back() {
    // testdata/scenarios/batch_subslice_overlap: every ~10 ms a 675-element array of
    // 32-byte elements is cut into shards starting at 0, 100, ..., 500; shards 4 and 5
    // (always goroutines 5 and 6) grow theirs to the common end once per batch.
    // Batch 7 gets batch 2's address back from the allocator: the same slices grown
    // again look like copies by value, so batch 2's pair is dropped (a missed pair,
    // never a false one) and batch 7's does not pair with batch 2's first growth.
    let mut s = Stream::new();
    for batch in 0..12u64 {
        let base = BASE + if batch == 7 { 2 } else { batch } * 0x10_0000;
        let t = batch as f64 * 10_000.0;
        s.grow(t, 5, SITE_A, base + 400 * 32, 275, 275, 32).grow(t + 300.0, 6, SITE_B, base + 500 * 32, 175, 175, 32);
    }
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceCapacityOverlap]);
        assert_eq!(f[0].count, 10);
        assert!(f[0].message.contains("overlap by 175 element(s)"), "{}", f[0].message);
    }
}

#[test]
fn a_reloaded_configuration_grown_through_old_headers_is_a_stale_header() {
    // testdata/scenarios/config_reload_stale: the watcher (1) grows the route table
    // at 60, 300 and 780 ms; sessions 2 and 3 grow the arrays they kept at 650 and
    // 910 ms, from the same slices the watcher grew.
    let (a4, a8, a16) = (BASE, BASE + 0x1000, BASE + 0x2000);
    let mut s = Stream::new();
    s.grow(60_000.0, 1, SITE_A, a4, 4, 4, 16).grow(300_000.0, 1, SITE_A, a8, 8, 8, 16);
    s.grow(650_000.0, 2, SITE_B, a4, 4, 4, 16).grow(780_000.0, 1, SITE_A, a16, 16, 16, 16);
    s.grow(910_000.0, 3, SITE_B, a8, 8, 8, 16);
    for f in [s.run(), s.run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceStaleHeader]);
        assert_eq!(f[0].count, 2);
    }
}

// ---- address reuse: modelled on what the scenario programs produce ----

#[test]
fn an_end_address_shared_by_arrays_of_different_element_types_is_not_an_overlap() {
    // clean_channel_handover (Go 1.19): the writer's strings.Builder grows a 512-byte
    // []byte ending at E; 84 ms later, after GC cycles, the reader grows a 32-element
    // []Row (40 bytes) array that ends at E too and whose elements cover the first
    // one's start. One array has one element type: these are two arrays.
    const E: u64 = 0xc0_0010_ea00;
    for gap in [84_000.0, 300.0] {
        let mut s = Stream::new();
        s.grow(6_244.0, 20, SITE_A, E - 512, 507, 512, 1).grow(6_244.0 + gap, 18, SITE_B, E - 32 * 40, 32, 32, 40);
        for f in [s.run(), s.run_filtered()] {
            assert_quiet_at(&f, Severity::Warning);
        }
    }
}

#[test]
fn zero_capacity_sizes_and_reused_spans_stay_silent() {
    // clean_zero_capacity: six handlers clone a read-only header list with
    // append(defaults[:0:0], defaults...) (capacity 0: "ends" where it starts, which
    // is where the object before it ends), start slices with make([]T, 0) (zerobase),
    // and churn small arrays. A 64-byte array [X, X+64) grown at 4.5 ms; its span
    // freed and reused for 32-byte objects, one of them [X+32, X+64) grown at 78 ms
    // by another handler: same end, same element size, the lower elements cover the
    // upper start, but 74 ms apart.
    const X: u64 = 0xc0_000d_8000;
    const ZEROBASE: u64 = 0x5a_6b00;
    let mut s = Stream::new();
    s.grow(4_493.8, 23, SITE_A, X, 4, 4, 16);
    for g in 18..=23u64 {
        for i in 0..20u64 {
            let t = 5_000.0 + (i * 6 + g) as f64 * 0.7;
            s.grow(t, g, SITE_A, X + 64, 0, 0, 32); // defaults[:0:0]: starts where [X, X+64) ends
            s.grow(t + 0.1, g, SITE_B, ZEROBASE, 0, 0, 16);
        }
    }
    s.grow(78_220.5, 18, SITE_B, X + 32, 2, 2, 16);
    for f in [s.run(), s.run_filtered()] {
        assert!(f.is_empty(), "{f:#?}");
    }
    let (_, stats) = s.run_with(Config::default());
    assert_eq!(stats.ignored, 240);
}

#[test]
fn large_arrays_at_one_end_address_in_two_lives_are_not_an_overlap() {
    // shared_append_lost(_fixed): journals grow large arrays (own spans); a 57 KiB
    // array and, 95 ms later, a 112 KiB one of another journal end at the same page.
    const E: u64 = 0xc0_002f_8000;
    let mut s = Stream::new();
    s.grow(95_791.7, 21, SITE_A, E - 1792 * 32, 1792, 1792, 32);
    s.grow(191_234.8, 19, SITE_A, E - 3584 * 32, 3584, 3584, 32);
    for f in [s.run(), s.run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
    }
}

#[test]
fn a_published_table_copied_by_sessions_and_then_by_the_watcher_is_not_a_lost_append() {
    // config_reload_stale_fixed: every 60 ms the watcher (6) publishes a new table
    // with append(cur[:n:n], r); two sessions (7, 8) tick together every 20 ms and
    // build append(t[:n:n], pins...), the same slice grown by both within 20 µs. A
    // table that is current for one tick only is grown by both sessions once, then
    // by the watcher 10 ms later: the third growth of the same slice shows the copying.
    let mut s = Stream::new();
    for (i, n) in (14..20u64).enumerate() {
        let ptr = BASE + i as u64 * 0x1000;
        let t0 = 420_000.0 + 60_000.0 * i as f64;
        let ticks = if i == 0 { 1 } else { 3 };
        for k in 0..ticks {
            let t = t0 + 20_000.0 * k as f64;
            s.grow(t, 8, SITE_A, ptr, n, n, 32).grow(t + 17.3, 7, SITE_A, ptr, n, n, 32);
        }
        s.grow(t0 + 10_000.0 + 20_000.0 * (ticks - 1) as f64, 6, SITE_B, ptr, n, n, 32);
    }
    for f in [s.sorted().run(), s.sorted().run_filtered()] {
        assert_quiet_at(&f, Severity::Warning);
    }
}

#[test]
fn a_new_life_of_an_end_address_is_followed_on_its_own() {
    // The address first held a 16-byte-element array (grown by 1); after a GC cycle
    // it ends a 32-byte-element array whose sub-slices 2 and 3 grow at once: the
    // overlap is found in the new life, and nothing relates it to the old one.
    const E: u64 = BASE + 0x1000;
    let mut s = Stream::new();
    s.grow(0.0, 1, SITE_A, E - 16 * 16, 16, 16, 16);
    s.grow(50_000.0, 2, SITE_A, E - 16 * 32, 16, 16, 32).grow(50_200.0, 3, SITE_B, E - 4 * 32, 4, 4, 32);
    // A record of the old life arriving late relates to nothing.
    s.grow(10.0, 4, SITE_B, E - 8 * 16, 8, 8, 16);
    let (f, stats) = s.run_with(Config::default());
    assert_eq!(detectors(&f), [Detector::SliceCapacityOverlap]);
    let roles: Vec<_> = f[0].goroutines.iter().map(|g| g.goid).collect();
    assert_eq!(roles, [2, 3]);
    assert_eq!(stats.events, 4);
    let mut engine = crate::detect::slices::Slices::new(&Config::default());
    let mut out = crate::detect::dedup::Dedup::new(16);
    for (i, ev) in s.events.iter().enumerate() {
        engine.on_grow(ev, ev.ts_ns.max(i as u64), &mut out);
    }
    assert_eq!(engine.counters().reused, 2);
}

#[test]
fn racing_appends_still_fire_between_reused_lives() {
    // shared_append_lost: handlers race on a journal header (same slice, µs apart)
    // while unrelated arrays of other element sizes come and go at the same end
    // addresses before and after.
    let mut s = racing_shared_header(4);
    for i in 0..4u64 {
        let end = BASE + i * 0x10_000 + (8u64 << i) * 8;
        s.grow(500.0 + 1_000.0 * i as f64, 9, SITE_B, end - 3 * 24, 3, 3, 24);
    }
    for f in [s.sorted().run(), s.sorted().run_filtered()] {
        assert_eq!(detectors(&f), [Detector::SliceLostAppend]);
        assert_eq!(f[0].count, 4);
    }
}

#[test]
fn growths_separated_by_a_gc_cycle_start_are_never_paired() {
    // The same shapes as a lost append, an overlap and a stale header, but a GC cycle
    // ended in between: the first array may have been freed and its address reused
    // (goroutine-local arrays do that all the time), so no pair may be claimed.
    let mut lost = Stream::new();
    lost.grow(100.0, 1, SITE_A, BASE, 8, 8, 8).gc().grow(100.5, 2, SITE_A, BASE, 8, 8, 8);
    let mut overlap = Stream::new();
    overlap.grow(100.0, 1, SITE_A, BASE, 16, 16, 8).gc().grow(100.2, 2, SITE_B, BASE + 64, 8, 8, 8);
    let mut stale = Stream::new();
    stale.grow(100.0, 1, SITE_A, BASE, 8, 8, 8).gc().grow(300_000.0, 2, SITE_B, BASE, 8, 8, 8);
    for s in [lost, overlap, stale] {
        assert_quiet_at(&s.run(), Severity::Info);
        assert_quiet_at(&s.run_filtered(), Severity::Info);
    }
}
