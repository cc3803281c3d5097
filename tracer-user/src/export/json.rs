//! `--json-out FILE`: one finding per line, schema `ghostrace.finding/v1`
//! (docs/findings-schema.md).

use std::io::{self, Write};

use serde::Serialize;
use thiserror::Error;

use crate::{
    container::Container,
    detect::{Finding, Frame, GoroutineSite, Role},
};

/// The value of every line's `schema` key. Adding keys keeps it; removing, renaming
/// or changing the meaning of a key bumps it.
pub const SCHEMA: &str = "ghostrace.finding/v1";

#[derive(Debug, Error)]
pub enum JsonError {
    #[error("cannot write findings")]
    Io(#[from] io::Error),
    #[error("cannot serialize a finding")]
    Serialize(#[from] serde_json::Error),
}

#[derive(Serialize)]
struct Line<'a> {
    schema: &'static str,
    detector: &'static str,
    severity: &'static str,
    evidence: &'static str,
    message: &'a str,
    object: Object,
    binary: &'a str,
    go_version: &'a str,
    pid: u32,
    goroutines: Vec<Goroutine<'a>>,
    first_seen: u64,
    last_seen: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen_unix_ns: Option<i128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen_unix_ns: Option<i128>,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a Container>,
    /// The least coverage among the finding's probes (docs/governor.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<f64>,
}

#[derive(Serialize)]
struct Object {
    kind: &'static str,
    /// Hex: JSON numbers lose precision above 2^53.
    address: String,
}

#[derive(Serialize)]
struct Goroutine<'a> {
    role: Role,
    goid: u64,
    tid: u32,
    pc: String,
    function: &'a str,
    file: &'a str,
    line: u32,
    stack: &'a [Frame],
}

fn goroutine(g: &GoroutineSite) -> Goroutine<'_> {
    Goroutine {
        role: g.role,
        goid: g.goid,
        tid: g.tid,
        pc: format!("{:#x}", g.pc),
        function: &g.function,
        file: &g.file,
        line: g.line,
        stack: &g.stack,
    }
}

/// A finding's coverage, when the caller knows it.
pub type CoverageOf = Box<dyn Fn(&Finding) -> Option<f64> + Send>;

/// Writes findings as JSON lines.
pub struct JsonLines<W: Write> {
    out: W,
    /// Unix time minus kernel monotonic time, in ns, when the caller knows it.
    unix_offset_ns: Option<i128>,
    coverage: Option<CoverageOf>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out, unix_offset_ns: None, coverage: None }
    }

    /// Adds `coverage` to every line it knows.
    pub fn with_coverage(mut self, coverage: CoverageOf) -> Self {
        self.coverage = Some(coverage);
        self
    }

    /// Adds `first_seen_unix_ns` / `last_seen_unix_ns` (wall clock) to every line.
    pub fn with_unix_offset(mut self, unix_minus_monotonic_ns: i128) -> Self {
        self.unix_offset_ns = Some(unix_minus_monotonic_ns);
        self
    }

    pub fn write(&mut self, f: &Finding) -> Result<(), JsonError> {
        self.write_line(f, None)
    }

    /// Writes one finding of a process in `container`, and flushes.
    pub fn write_in(&mut self, f: &Finding, container: Option<&Container>) -> Result<(), JsonError> {
        self.write_line(f, container)?;
        self.out.flush()?;
        Ok(())
    }

    fn write_line(&mut self, f: &Finding, container: Option<&Container>) -> Result<(), JsonError> {
        let wall = |ns: u64| self.unix_offset_ns.map(|o| o + i128::from(ns));
        let line = Line {
            schema: SCHEMA,
            detector: f.detector.name(),
            severity: f.severity.name(),
            evidence: f.evidence.name(),
            message: &f.message,
            object: Object { kind: f.object.kind.name(), address: format!("{:#x}", f.object.address) },
            binary: &f.process.binary,
            go_version: &f.process.go_version,
            pid: f.process.pid,
            goroutines: f.goroutines.iter().map(goroutine).collect(),
            first_seen: f.first_seen_ns,
            last_seen: f.last_seen_ns,
            first_seen_unix_ns: wall(f.first_seen_ns),
            last_seen_unix_ns: wall(f.last_seen_ns),
            count: f.count,
            container,
            coverage: self.coverage.as_ref().and_then(|c| c(f)),
        };
        // One write per line: a reader of a growing file (the daemon's stdout) never
        // sees half a line, even past the 1 KiB buffer of a line-buffered stdout.
        let mut text = serde_json::to_vec(&line)?;
        text.push(b'\n');
        self.out.write_all(&text)?;
        Ok(())
    }

    pub fn write_all(&mut self, findings: &[Finding]) -> Result<(), JsonError> {
        findings.iter().try_for_each(|f| self.write(f))?;
        self.out.flush()?;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::sample::finding;

    #[test]
    fn every_line_has_the_required_keys() {
        let mut w = JsonLines::new(Vec::new());
        w.write_all(&[finding(), finding()]).unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(text.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        for key in [
            "schema",
            "detector",
            "severity",
            "evidence",
            "message",
            "object",
            "binary",
            "go_version",
            "pid",
            "goroutines",
            "first_seen",
            "last_seen",
            "count",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        for key in ["goid", "tid", "function", "file", "line", "stack"] {
            assert!(v["goroutines"][0].get(key).is_some(), "missing goroutines[].{key}");
        }
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["object"]["address"], "0xc000100080");
        assert_eq!(v["goroutines"][1]["stack"][0]["line"], 9);
        assert!(v.get("first_seen_unix_ns").is_none());
    }

    #[test]
    fn wall_clock_is_added_when_known() {
        let mut w = JsonLines::new(Vec::new()).with_unix_offset(1_000);
        w.write(&finding()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&w.into_inner()).unwrap();
        assert_eq!(v["first_seen_unix_ns"], 1_000 + 5_000);
    }
}
