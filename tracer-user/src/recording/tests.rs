//! Recording round trips, replay equal to the live engine, and every kind of damage
//! giving a typed error with a byte offset instead of a panic.

use proptest::prelude::*;

use super::*;
use crate::detect::{
    Config, Detector, Frame, NoSymbols, ProcessInfo, Symbolizer, detect_all,
    testkit::{Stream, TGID},
};
use crate::events::Event;

fn process() -> ProcessInfo {
    ProcessInfo { pid: TGID, binary: "/srv/bin/svc".into(), go_version: "go1.24.11".into(), load_bias: 0 }
}

/// A stream with one finding of each family.
fn mixed() -> Stream {
    let mut s = Stream::new();
    s.grow(0.0, 1, 0x4a_1000, 0xc000_0100, 8, 8, 8).grow(0.3, 2, 0x4a_1000, 0xc000_0100, 8, 8, 8);
    s.iter_start(10.0, 3, 0x4b_1000, 0xc000_9000, 0xc00f_0000).write(
        15.0,
        4,
        0x4b_2000,
        0xc000_9000,
        crate::events::MapOp::Assign,
        false,
    );
    s.iter_next(20.0, 3, 0x4b_1010, 0xc000_9000, 0xc00f_0000, false);
    s.enter(30.0, 5, 0x4c_1000, 0xc000_a000, 0xc000_b000, 0);
    let mut s = s.sorted();
    s.events[0].stack_id = Some(7);
    s
}

fn bytes(events: &[Event]) -> Vec<u8> {
    let anchor = ClockAnchor { unix_ns: 1_700_000_000_000_000_000, monotonic_ns: 5 };
    let mut w = Writer::new(Vec::new(), Header { anchor, complete_stream: false }).unwrap();
    w.process(&process()).unwrap();
    w.stack(TGID, 7, &[0x4a_1000, 0x4a_2005]).unwrap();
    for (i, ev) in events.iter().enumerate() {
        w.record(&encode(ev)).unwrap();
        if i % 97 == 96 {
            w.clock(ev.ts_ns + 2_000_000_000).unwrap();
        }
    }
    w.lost(3).unwrap();
    w.finish().unwrap()
}

struct Names;

impl Symbolizer for Names {
    fn frames(&self, _: &ProcessInfo, pc: u64) -> Vec<Frame> {
        vec![Frame { function: format!("main.f{pc:x}"), file: "/src/main.go".into(), line: (pc & 0xfff) as u32 }]
    }
}

#[test]
fn items_come_back_in_order() {
    let s = mixed();
    let items: Vec<Item> = Reader::new(&bytes(&s.events)[..]).unwrap().map(Result::unwrap).collect();
    assert_eq!(items[0], Item::Process(process()));
    assert_eq!(items[1], Item::Stack { tgid: TGID, stack_id: 7, pcs: vec![0x4a_1000, 0x4a_2005] });
    let events: Vec<Event> =
        items.iter().filter_map(|i| if let Item::Event(e) = i { Some(*e) } else { None }).collect();
    assert_eq!(events, s.events);
    assert_eq!(items.last(), Some(&Item::Lost(3)));
}

#[test]
fn replay_gives_the_live_findings_with_recorded_stacks() {
    let s = mixed();
    let (live, live_stats) = detect_all(Config::default(), [process()], &s.events, &Names).unwrap();
    let r = replay_from(&bytes(&s.events)[..], &Config::default(), &Names).unwrap();
    let detectors: Vec<_> = r.findings.iter().map(|f| f.detector).collect();
    assert_eq!(detectors, [Detector::MapIterWrite, Detector::SliceLostAppend, Detector::ListStaleRemove]);
    assert_eq!((r.stats, r.lost, r.processes.clone()), (live_stats, 3, vec![process()]));
    // Live had no stack source; the replay has the recorded stack.
    let strip = |f: &[crate::detect::Finding]| {
        let mut f = f.to_vec();
        f.iter_mut().flat_map(|f| f.goroutines.iter_mut()).for_each(|g| g.stack.clear());
        f
    };
    assert_eq!(strip(&r.findings), strip(&live));
    let lost = r.findings.iter().find(|f| f.detector == Detector::SliceLostAppend).unwrap();
    let stack: Vec<_> = lost.goroutines.iter().flat_map(|g| g.stack.iter().map(|f| f.line)).collect();
    assert_eq!(stack, [0x000, 0x004], "second address looked up at the CALL (one byte before)");
    assert_eq!(r.findings[0].process.binary, "/srv/bin/svc");
}

#[test]
fn every_truncation_is_an_error_with_an_offset() {
    let full = bytes(&mixed().events);
    for len in 0..full.len() {
        let err = replay_from(&full[..len], &Config::default(), &NoSymbols).expect_err("truncated");
        let ReplayError::Recording(e) = err else { panic!("{err}") };
        let at = e.offset().expect("offset");
        assert!(at <= len as u64, "len {len}: {e}");
        assert!(e.to_string().contains(&format!("byte {at}")), "{e}");
        assert!(matches!(e, RecordingError::Truncated { .. } | RecordingError::MissingEnd { .. }), "len {len}: {e}");
    }
}

#[test]
fn every_corrupted_byte_is_caught_or_harmless() {
    let full = bytes(&mixed().events);
    let clean = replay_from(&full[..], &Config::default(), &NoSymbols).unwrap();
    for i in 0..full.len() {
        let mut bad = full.clone();
        bad[i] ^= 0x5a;
        match replay_from(&bad[..], &Config::default(), &NoSymbols) {
            Err(ReplayError::Recording(e)) => assert!(e.offset().is_some_and(|o| o <= i as u64), "byte {i}: {e}"),
            Err(e) => panic!("byte {i}: {e}"),
            // Only the clock anchor carries no checksum.
            Ok(r) => {
                assert!((16..32).contains(&i), "byte {i} flipped unnoticed");
                assert_eq!(r.findings, clean.findings);
            }
        }
    }
}

#[test]
fn foreign_and_future_files_are_named_as_such() {
    let e = Reader::new(&b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"[..]).err().unwrap();
    assert!(matches!(e, RecordingError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("byte 0"), "{e}");
    let mut v2 = bytes(&[]);
    v2[8] = 2;
    let e = Reader::new(&v2[..]).err().unwrap();
    assert!(matches!(e, RecordingError::Version { version: 2 }), "{e}");
    assert!(e.to_string().contains("byte 8"), "{e}");
}

#[test]
fn a_missing_end_marker_and_trailing_data_are_errors() {
    let full = bytes(&mixed().events);
    let end_chunk = 12 + 8;
    let cut = &full[..full.len() - end_chunk];
    let e = replay_from(cut, &Config::default(), &NoSymbols).unwrap_err();
    assert!(
        matches!(e, ReplayError::Recording(RecordingError::MissingEnd { offset }) if offset == cut.len() as u64),
        "{e}"
    );
    let mut long = full.clone();
    long.push(0);
    let e = replay_from(&long[..], &Config::default(), &NoSymbols).unwrap_err();
    assert!(
        matches!(e, ReplayError::Recording(RecordingError::Trailing { offset }) if offset == full.len() as u64),
        "{e}"
    );
}

#[test]
fn undecodable_records_are_refused_by_the_writer() {
    let mut w = Writer::new(Vec::new(), Header::default()).unwrap();
    let mut raw = encode(&mixed().events[0]);
    raw[0] = 99;
    assert!(matches!(w.record(&raw), Err(WriteError::Record { index: 0, .. })));
    assert!(matches!(w.record(&raw[..10]), Err(WriteError::Record { .. })));
}

#[test]
fn replay_reads_files() {
    let dir = std::env::temp_dir().join(format!("ghostrace-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.ghostrec");
    std::fs::write(&path, bytes(&mixed().events)).unwrap();
    let r = replay(&path, &Config::default(), &NoSymbols).unwrap();
    assert_eq!(r.findings.len(), 3);
    assert_eq!(r.header.anchor.unix_offset_ns(), 1_700_000_000_000_000_000 - 5);
    let missing = replay(&dir.join("absent"), &Config::default(), &NoSymbols).unwrap_err();
    assert!(missing.to_string().contains("absent"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn any_event() -> impl Strategy<Value = Event> {
    use crate::events::EventKind;
    let kind = prop_oneof![
        (0..4u64, 0..3u64).prop_map(|(a, s)| EventKind::SliceGrow {
            old_ptr: 0x1000 * (a + 1) + s * 8,
            old_len: 8 - s,
            old_cap: 8 - s,
            new_len: 9 - s,
            elem_size: 8,
            gc_cycle: s as u32,
            repeated: s == 2,
        }),
        (0..2u64, 0..2u64).prop_map(|(m, i)| EventKind::MapIterStart { map: 0x9000 + m, iter: 0xa000 + i }),
        (0..2u64, 0..2u64, any::<bool>(), 0..3u64).prop_map(|(m, i, w, u)| EventKind::MapIterNext {
            map: 0x9000 + m,
            iter: 0xa000 + i,
            writing: w,
            unseen_until: [0, 0x1234, u64::MAX][u as usize],
        }),
        (0..2u64, any::<bool>()).prop_map(|(m, w)| EventKind::MapWrite {
            map: 0x9000 + m,
            op: crate::events::MapOp::Assign,
            writing: w
        }),
        (0..2u64, 0..2u64).prop_map(|(m, i)| EventKind::MapWriteInRange {
            map: 0x9000 + m,
            op: crate::events::MapOp::Assign,
            iter: 0xa000 + i
        }),
        (0..2u64, 1..4u64).prop_map(|(m, g)| EventKind::MapWriteOverlap {
            map: 0x9000 + m,
            op: crate::events::MapOp::Delete,
            writing: false,
            other: g
        }),
        (0..2u64, 0..3u64).prop_map(|(l, e)| EventKind::ListRemoveEnter {
            list: 0xb000 + l,
            elem: 0xc000,
            elem_list: [0xb000 + l, 0, 1][e as usize],
            op: tracer_common::ListOp::ALL[e as usize * 5],
        }),
        (0..2u64).prop_map(|l| EventKind::ListRemoveExit { list: 0xb000 + l, elem: 0 }),
    ];
    (0..5_000_000u64, 1..5u64, 0..4u64, kind).prop_map(|(ts_ns, goid, site, kind)| Event {
        ts_ns,
        tgid: TGID,
        tid: goid as u32,
        goid,
        pc: 0x40_0000 + site,
        probe: 0,
        stack_id: None,
        kind,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn replay_is_deterministic_and_equals_the_live_run(events in prop::collection::vec(any_event(), 0..300)) {
        let file = bytes(&events);
        let a = replay_from(&file[..], &Config::default(), &Names).unwrap();
        let b = replay_from(&file[..], &Config::default(), &Names).unwrap();
        prop_assert_eq!(&a.findings, &b.findings);
        // The live run, with the clock moves the recording captured.
        let mut live = crate::detect::Engine::new(Config::default()).unwrap();
        live.add_process(process());
        for (i, ev) in events.iter().enumerate() {
            live.process(ev);
            if i % 97 == 96 {
                live.advance_to(ev.ts_ns + 2_000_000_000);
            }
        }
        live.finish();
        prop_assert_eq!(a.findings, live.findings(&Names));
        prop_assert_eq!(a.stats, live.stats());
    }
}

#[test]
fn the_complete_stream_flag_travels_with_the_recording() {
    // A goroutine assigning inside its own range: reported only from a complete stream.
    let mut s = Stream::new();
    s.iter_start(0.0, 1, 0x10, 0xc000_9000, 0xc00f_0000).iter_next(10.0, 1, 0x11, 0xc000_9000, 0xc00f_0000, false);
    s.write(15.0, 1, 0x20, 0xc000_9000, crate::events::MapOp::Assign, false);
    s.iter_next(20.0, 1, 0x11, 0xc000_9000, 0xc00f_0000, false);
    for complete in [false, true] {
        let mut w = Writer::new(Vec::new(), Header { complete_stream: complete, ..Header::default() }).unwrap();
        s.events.iter().for_each(|ev| w.record(&encode(ev)).unwrap());
        let file = w.finish().unwrap();
        let r = replay_from(&file[..], &Config::default(), &NoSymbols).unwrap();
        assert!(r.header.complete_stream == complete);
        assert_eq!(r.findings.len(), usize::from(complete));
    }
}
