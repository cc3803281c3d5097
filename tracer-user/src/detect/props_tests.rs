//! Property tests over random event streams: one goroutine alone (in any order) never
//! makes a cross-goroutine finding, goroutines on disjoint objects never do either,
//! and the engine is deterministic.

use proptest::prelude::*;

use super::{Config, Finding, NoSymbols, detect_all, testkit::TGID};
use crate::events::{Event, EventKind, MapOp};

/// Small address pools so that records collide on objects, sub-slices and iterators.
fn kind(region: u64) -> impl Strategy<Value = EventKind> {
    let base = 0xc000_0000_0000 + region * 0x1_0000_0000;
    let grow = (0..3u64, 0..4u64, 0..3u64, 1..3u64).prop_map(move |(a, start, len_less, esz)| {
        let elem = esz * 8;
        let end = base + 0x1000 * (a + 1);
        let cap = 8 - start;
        EventKind::SliceGrow {
            old_ptr: end - cap * elem,
            old_len: cap.saturating_sub(len_less),
            old_cap: cap,
            new_len: cap + 1,
            elem_size: elem,
            gc_cycle: 0,
            repeated: false,
        }
    });
    let map = (0..2u64).prop_map(move |m| base + 0x10_0000 + m * 0x100);
    let iter = (0..3u64).prop_map(move |i| base + 0x20_0000 + i * 0x100);
    let list = (0..2u64).prop_map(move |l| base + 0x30_0000 + l * 0x100);
    let op = prop_oneof![Just(MapOp::Assign), Just(MapOp::Delete), Just(MapOp::Clear)];
    prop_oneof![
        3 => grow,
        1 => (map.clone(), iter.clone()).prop_map(|(map, iter)| EventKind::MapIterStart { map, iter }),
        2 => (map.clone(), iter, any::<bool>()).prop_map(|(map, iter, w)| EventKind::MapIterNext { map, iter, writing: w, unseen_until: 0 }),
        2 => (map, op, any::<bool>()).prop_map(|(map, op, writing)| EventKind::MapWrite { map, op, writing }),
        1 => (list.clone(), 0..3u64).prop_map(move |(list, e)| EventKind::ListRemoveEnter {
            list,
            elem: base + 0x40_0000 + e * 64,
            elem_list: [list, 0, base + 0x30_0800][e as usize],
            op: tracer_common::ListOp::Remove,
        }),
        1 => list.prop_map(|list| EventKind::ListRemoveExit { list, elem: 0 }),
    ]
}

fn event(goid: u64, region: u64) -> impl Strategy<Value = Event> {
    (0..3_000_000u64, 0..4u64, kind(region)).prop_map(move |(ts_ns, site, kind)| Event {
        ts_ns,
        tgid: TGID,
        tid: goid as u32,
        goid,
        pc: 0x40_0000 + site * 0x10,
        probe: 0,
        stack_id: None,
        kind,
    })
}

fn cross_goroutine(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.goroutines.windows(2).any(|w| w[0].goid != w[1].goid)).collect()
}

fn run(events: &[Event]) -> Vec<Finding> {
    detect_all(Config::default(), [], events, &NoSymbols).expect("default config").0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_goroutine_in_any_order_never_makes_a_cross_goroutine_finding(
        events in prop::collection::vec(event(7, 0), 1..200)
            .prop_flat_map(|v| Just(v).prop_shuffle())
    ) {
        let f = run(&events);
        prop_assert!(cross_goroutine(&f).is_empty(), "{:#?}", cross_goroutine(&f));
    }

    #[test]
    fn goroutines_on_disjoint_objects_never_make_cross_goroutine_findings(
        a in prop::collection::vec(event(1, 1), 0..100),
        b in prop::collection::vec(event(2, 2), 0..100),
        c in prop::collection::vec(event(3, 3), 0..100),
        order in prop::collection::vec(0..3usize, 300),
    ) {
        // Any interleaving of the three goroutines' records.
        let mut lanes = [a.into_iter(), b.into_iter(), c.into_iter()];
        let mut events = Vec::new();
        for lane in order.into_iter().chain((0..3).cycle().take(300)) {
            events.extend(lanes[lane].next());
        }
        let f = run(&events);
        prop_assert!(cross_goroutine(&f).is_empty(), "{:#?}", cross_goroutine(&f));
    }

    #[test]
    fn the_engine_is_deterministic(
        a in prop::collection::vec(event(1, 0), 0..150),
        b in prop::collection::vec(event(2, 0), 0..150),
    ) {
        let mut events: Vec<Event> = a.into_iter().chain(b).collect();
        events.sort_by_key(|e| e.ts_ns);
        let first = detect_all(Config::default(), [], &events, &NoSymbols).unwrap();
        let second = detect_all(Config::default(), [], &events, &NoSymbols).unwrap();
        prop_assert_eq!(first, second);
    }
}

/// What one goroutine does next, each taking some microseconds.
#[derive(Clone, Debug)]
enum Action {
    Range { steps: u8 },
    Write { op: u8, us: u8 },
    Remove { elem_list: u8 },
    Pause { us: u8 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..6u8).prop_map(|steps| Action::Range { steps }),
        (0..3u8, 1..4u8).prop_map(|(op, us)| Action::Write { op, us }),
        (0..6u8).prop_map(|elem_list| Action::Remove { elem_list }),
        (1..20u8).prop_map(|us| Action::Pause { us }),
    ]
}

/// Three goroutines acting on one map and one list at the same time, with the
/// map's writing flag as the runtime would show it.
fn concurrent_stream(scripts: &[Vec<Action>]) -> Vec<Event> {
    const MAP: u64 = 0xc000_1000;
    const LIST: u64 = 0xc000_2000;
    let mut events = Vec::new();
    let mut writes: Vec<(u64, u64)> = Vec::new(); // write intervals, ns
    for (g, script) in scripts.iter().enumerate() {
        let goid = g as u64 + 1;
        let mut t = 1_000 * goid;
        let ev =
            |ts_ns, pc, kind| Event { ts_ns, tgid: TGID, tid: goid as u32, goid, pc, probe: 0, stack_id: None, kind };
        for a in script {
            match *a {
                Action::Range { steps } => {
                    let iter = 0xc0f0_0000 + goid * 0x100;
                    events.push(ev(t, 0x10, EventKind::MapIterStart { map: MAP, iter }));
                    for _ in 0..steps {
                        t += 700;
                        events.push(ev(t, 0x11, EventKind::MapIterNext { map: MAP, iter, writing: false, unseen_until: 0 }));
                    }
                }
                Action::Write { op, us } => {
                    let op = [MapOp::Assign, MapOp::Delete, MapOp::Clear][op as usize];
                    events.push(ev(t, 0x20 + goid, EventKind::MapWrite { map: MAP, op, writing: false }));
                    writes.push((t, t + u64::from(us) * 1_000));
                }
                Action::Remove { elem_list } => {
                    let elem_list = [LIST, LIST, LIST, LIST, 0, 0xc000_3000][elem_list as usize];
                    events.push(ev(
                        t,
                        0x30 + goid,
                        EventKind::ListRemoveEnter { list: LIST, elem: 0xc000_4000, elem_list, op: tracer_common::ListOp::Remove },
                    ));
                    events.push(ev(t + 400, 0x31, EventKind::ListRemoveExit { list: LIST, elem: 0 }));
                }
                Action::Pause { .. } => {}
            }
            t += match *a {
                Action::Pause { us } | Action::Write { us, .. } => u64::from(us) * 1_000,
                _ => 900,
            };
        }
    }
    // The writing flag: another goroutine's write interval covers the record.
    for e in &mut events {
        let busy =
            |ts: u64, own_start: Option<u64>| writes.iter().any(|&(s, f)| s < ts && ts < f && Some(s) != own_start);
        match &mut e.kind {
            EventKind::MapIterNext { writing, .. } => *writing = busy(e.ts_ns, None),
            EventKind::MapWrite { writing, .. } => *writing = busy(e.ts_ns, Some(e.ts_ns)),
            _ => {}
        }
    }
    events.sort_by_key(|e| (e.ts_ns, e.goid));
    events
}

fn detector_set(f: &[Finding]) -> std::collections::BTreeSet<super::Detector> {
    f.iter().map(|f| f.detector).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_kernel_filter_never_adds_map_or_list_findings(
        scripts in prop::collection::vec(prop::collection::vec(action(), 0..25), 3),
    ) {
        let events = concurrent_stream(&scripts);
        let complete = Config { complete_stream: true, ..Config::default() };
        let full = detector_set(&detect_all(complete, [], &events, &NoSymbols).expect("valid config").0);
        let filtered = detector_set(&run(&super::testkit::kernel_filter(&events)));
        prop_assert!(filtered.is_subset(&full), "filtered {:?} but full {:?}", filtered, full);
    }
}
