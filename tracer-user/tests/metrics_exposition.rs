//! The metrics exposition passes `promtool check metrics` (Prometheus' own lint:
//! names, types, help, units), with every metric family present, and
//! docs/metrics.md describes every family.

mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use tracer_user::{
    detect::{Detector, Severity},
    export::prometheus::{AttachFailure, Metrics},
};

/// An exposition with a sample in every family.
fn populated() -> String {
    let m = Metrics::new().unwrap();
    m.add_binary("svc", ["shop", "svc-0", "svc"]);
    m.count_finding(Detector::SliceCapacityOverlap, Severity::Critical, "svc", ["shop", "svc-0", "svc"], true, 4);
    m.findings_dropped.inc();
    for family in [&m.probe_hits, &m.records_emitted, &m.records_lost, &m.hits_filtered, &m.read_errors] {
        family.with_label_values(&["slice_grow", "svc"]).inc_by(7);
    }
    m.records_received.inc_by(7);
    m.traced_processes.set(2);
    m.go_processes.set(2);
    m.attached_binaries.set(1);
    m.attached_probes.set(12);
    m.attach_failed(AttachFailure::Unsupported);
    m.ignored_binaries.inc();
    m.discovered.with_label_values(&["exec"]).inc();
    m.detector_evictions.with_label_values(&["table_full"]).inc();
    m.detector_tracked.set(3);
    m.render().unwrap()
}

fn families(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn exposition_passes_promtool_check_metrics() {
    let path = std::path::Path::new("/usr/bin/promtool");
    if !path.exists() {
        support::skip("exposition_passes_promtool_check_metrics", "promtool is not installed (Debian package prometheus)");
        return;
    }
    let text = populated();
    let mut child = Command::new(path)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n--- exposition:\n{text}");
}

#[test]
fn every_family_is_documented() {
    let doc = std::fs::read_to_string(support::repo().join("docs/metrics.md")).unwrap();
    let names = families(&populated());
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        assert!(doc.contains(&format!("`{name}`")), "docs/metrics.md does not describe {name}");
    }
}
