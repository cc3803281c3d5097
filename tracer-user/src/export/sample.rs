//! A finding to render in the sinks' tests.

use crate::detect::{Detector, Finding, Frame, GoroutineSite, ObjectKind, ObjectRef, ProcessInfo, Role};

pub(crate) fn finding() -> Finding {
    let site = |goid: u64| GoroutineSite {
        role: Role::Appender,
        goid,
        tid: 1000 + goid as u32,
        pc: 0x4a_1000,
        function: "main.worker".into(),
        file: "/src/demo/main.go".into(),
        line: 31,
        stack: vec![Frame { function: "main.worker".into(), file: "/src/demo/main.go".into(), line: 9 }],
    };
    let d = Detector::SliceLostAppend;
    Finding {
        detector: d,
        severity: d.severity(),
        evidence: d.evidence(),
        message: "likely: goroutines 17 and 42 grew the same backing array.".into(),
        object: ObjectRef { kind: ObjectKind::Slice, address: 0xc0_0010_0080 },
        process: ProcessInfo { pid: 4242, binary: "/srv/bin/svc".into(), go_version: "go1.24.11".into(), load_bias: 0 },
        goroutines: vec![site(17), site(42)],
        first_seen_ns: 5_000,
        last_seen_ns: 9_000,
        count: 3,
    }
}
