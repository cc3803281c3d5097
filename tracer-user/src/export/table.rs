//! The human table on stderr: findings grouped by detector, most severe first, each
//! with both goroutines and their call sites.

use std::fmt::Write as _;

use crate::detect::{Detector, Finding, GoroutineSite, Severity, Stats};

/// The last two components of a path: enough to recognise a Go source file.
fn short_file(path: &str) -> &str {
    match path.rmatch_indices('/').nth(1) {
        Some((i, _)) => &path[i + 1..],
        None => path,
    }
}

fn site(g: &GoroutineSite) -> String {
    let at = if g.file.is_empty() { format!("{:#x}", g.pc) } else { format!("{}:{}", short_file(&g.file), g.line) };
    format!("goroutine {} (tid {}) {}  {}  {at}", g.goid, g.tid, g.role.name(), g.function)
}

/// Renders the table; `stats` adds the engine's one-line summary.
pub fn render(findings: &[Finding], stats: Option<&Stats>) -> String {
    let mut out = String::new();
    let by = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    if findings.is_empty() {
        out.push_str("ghostrace: no findings\n");
    } else {
        let _ = writeln!(
            out,
            "ghostrace: {} finding(s): {} critical, {} warning, {} info",
            findings.len(),
            by(Severity::Critical),
            by(Severity::Warning),
            by(Severity::Info)
        );
    }
    let mut detectors: Vec<Detector> = findings.iter().map(|f| f.detector).collect();
    detectors.sort_by_key(|d| (std::cmp::Reverse(d.severity()), *d));
    detectors.dedup();
    for d in detectors {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.detector == d).collect();
        let occurrences: u64 = group.iter().map(|f| f.count).sum();
        let _ = writeln!(
            out,
            "\n{:<8}  {}  ({})  {} call-site pair(s), {} occurrence(s)",
            d.severity().name().to_uppercase(),
            d.name(),
            d.evidence(),
            group.len(),
            occurrences
        );
        for (i, f) in group.iter().enumerate() {
            let binary = f.process.binary.rsplit('/').next().unwrap_or_default();
            let _ = writeln!(
                out,
                "  #{:<3} x{:<5} {} {:#x}  pid {} {} {}",
                i + 1,
                f.count,
                f.object.kind.name(),
                f.object.address,
                f.process.pid,
                binary,
                f.process.go_version
            );
            for g in &f.goroutines {
                let _ = writeln!(out, "        {}", site(g));
            }
            let _ = writeln!(out, "        {}", f.message);
        }
    }
    if let Some(s) = stats {
        let _ = writeln!(
            out,
            "\nengine: {} events, {} ignored, {} tracked, {} evicted, {} expired, {} suppressed as copied by value",
            s.events, s.ignored, s.tracked, s.evicted, s.expired, s.suppressed
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::sample::finding;

    #[test]
    fn groups_by_detector_with_both_call_sites() {
        let text = render(&[finding()], Some(&Stats::default()));
        assert!(text.starts_with("ghostrace: 1 finding(s): 0 critical, 1 warning, 0 info\n"), "{text}");
        assert!(text.contains("WARNING   slice_lost_append  (likely)  1 call-site pair(s), 3 occurrence(s)"), "{text}");
        assert!(text.contains("goroutine 17 (tid 1017) appender  main.worker  demo/main.go:31"), "{text}");
        assert!(text.contains("goroutine 42 (tid 1042) appender  main.worker  demo/main.go:31"), "{text}");
        assert!(text.contains("pid 4242 svc go1.24.11"), "{text}");
        assert!(text.contains("engine: 0 events"), "{text}");
    }

    #[test]
    fn says_so_when_there_is_nothing() {
        assert_eq!(render(&[], None), "ghostrace: no findings\n");
        assert_eq!(short_file("/a/b/c.go"), "b/c.go");
        assert_eq!(short_file("c.go"), "c.go");
    }
}
