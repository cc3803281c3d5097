//! Property tests over random event streams: one goroutine alone (in any order) never
//! makes a cross-goroutine finding, goroutines on disjoint objects never do either,
//! and the engine is deterministic.

use proptest::prelude::*;

use super::{Config, Finding, NoSymbols, detect_all, testkit::TGID};
use crate::events::{Event, EventKind, MapWriteOp};

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
        }
    });
    let map = (0..2u64).prop_map(move |m| base + 0x10_0000 + m * 0x100);
    let iter = (0..3u64).prop_map(move |i| base + 0x20_0000 + i * 0x100);
    let list = (0..2u64).prop_map(move |l| base + 0x30_0000 + l * 0x100);
    let op = prop_oneof![Just(MapWriteOp::Assign), Just(MapWriteOp::Delete), Just(MapWriteOp::Clear)];
    prop_oneof![
        3 => grow,
        1 => (map.clone(), iter.clone()).prop_map(|(map, iter)| EventKind::MapIterStart { map, iter }),
        2 => (map.clone(), iter, any::<bool>()).prop_map(|(map, iter, w)| EventKind::MapIterNext { map, iter, writing: w }),
        2 => (map, op, any::<bool>()).prop_map(|(map, op, writing)| EventKind::MapWrite { map, op, writing }),
        1 => (list.clone(), 0..3u64).prop_map(move |(list, e)| EventKind::ListRemoveEnter {
            list,
            elem: base + 0x40_0000 + e * 64,
            elem_list: [list, 0, base + 0x30_0800][e as usize],
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
