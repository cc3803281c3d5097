//! What the detectors report: the detector table of DESIGN.md (names, severities,
//! evidence levels), findings with both goroutines and call sites, `--fail-on`.

use std::{fmt, str::FromStr};

use serde::Serialize;
use thiserror::Error;

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// How sure a finding is. Ordered: `Possible < Likely < Definite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Worth a look.
    Possible,
    /// A timing or shape heuristic; correct code produces it only in patterns
    /// docs/detectors.md names.
    Likely,
    /// Correctly synchronized code cannot produce it, or the call provably did nothing.
    Definite,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown severity `{given}` (expected info, warning or critical)")]
pub struct ParseSeverityError {
    pub given: String,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = ParseSeverityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Self::Info),
            "warning" | "warn" => Ok(Self::Warning),
            "critical" => Ok(Self::Critical),
            _ => Err(ParseSeverityError { given: s.to_owned() }),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Evidence {
    pub fn name(self) -> &'static str {
        match self {
            Self::Possible => "possible",
            Self::Likely => "likely",
            Self::Definite => "definite",
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The detectors of DESIGN.md, in its table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    SliceCapacityOverlap,
    SliceLostAppend,
    SliceStaleHeader,
    MapIterWrite,
    MapConcurrentWrite,
    MapWriteDuringRange,
    ListConcurrentRemove,
    ListForeignRemove,
    ListStaleRemove,
    ListConcurrentMutation,
    ListForeignElement,
}

impl Detector {
    pub const ALL: [Self; 11] = [
        Self::SliceCapacityOverlap,
        Self::SliceLostAppend,
        Self::SliceStaleHeader,
        Self::MapIterWrite,
        Self::MapConcurrentWrite,
        Self::MapWriteDuringRange,
        Self::ListConcurrentRemove,
        Self::ListForeignRemove,
        Self::ListStaleRemove,
        Self::ListConcurrentMutation,
        Self::ListForeignElement,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SliceCapacityOverlap => "slice_capacity_overlap",
            Self::SliceLostAppend => "slice_lost_append",
            Self::SliceStaleHeader => "slice_stale_header",
            Self::MapIterWrite => "map_iter_write",
            Self::MapConcurrentWrite => "map_concurrent_write",
            Self::MapWriteDuringRange => "map_write_during_range",
            Self::ListConcurrentRemove => "list_concurrent_remove",
            Self::ListForeignRemove => "list_foreign_remove",
            Self::ListStaleRemove => "list_stale_remove",
            Self::ListConcurrentMutation => "list_concurrent_mutation",
            Self::ListForeignElement => "list_foreign_element",
        }
    }

    /// Fixed per detector (DESIGN.md's table).
    pub fn severity(self) -> Severity {
        match self {
            Self::SliceCapacityOverlap
            | Self::MapIterWrite
            | Self::MapConcurrentWrite
            | Self::ListConcurrentRemove
            | Self::ListConcurrentMutation => Severity::Critical,
            Self::SliceLostAppend | Self::ListForeignRemove | Self::ListStaleRemove | Self::ListForeignElement => {
                Severity::Warning
            }
            Self::SliceStaleHeader | Self::MapWriteDuringRange => Severity::Info,
        }
    }

    /// Fixed per detector (DESIGN.md's table).
    pub fn evidence(self) -> Evidence {
        match self {
            Self::SliceLostAppend => Evidence::Likely,
            Self::SliceStaleHeader => Evidence::Possible,
            _ => Evidence::Definite,
        }
    }

    pub fn object_kind(self) -> ObjectKind {
        match self {
            Self::SliceCapacityOverlap | Self::SliceLostAppend | Self::SliceStaleHeader => ObjectKind::Slice,
            Self::MapIterWrite | Self::MapConcurrentWrite | Self::MapWriteDuringRange => ObjectKind::Map,
            Self::ListConcurrentRemove
            | Self::ListForeignRemove
            | Self::ListStaleRemove
            | Self::ListConcurrentMutation
            | Self::ListForeignElement => ObjectKind::List,
        }
    }

    /// Whether the two goroutines of a finding play the same part, so that the
    /// call-site pair (a, b) and (b, a) is one finding.
    pub(crate) fn symmetric(self) -> bool {
        matches!(
            self,
            Self::SliceLostAppend | Self::MapConcurrentWrite | Self::ListConcurrentRemove | Self::ListConcurrentMutation
        )
    }
}

impl fmt::Display for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What kind of object a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A slice backing array, identified by its END address (sub-slices share it).
    Slice,
    /// A map, identified by its header (`hmap` / `maps.Map`).
    Map,
    /// A `container/list.List`, identified by its `*List`.
    List,
}

impl ObjectKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Slice => "slice",
            Self::Map => "map",
            Self::List => "list",
        }
    }
}

/// The object a finding is about, as seen in the traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    pub address: u64,
}

/// The traced process a finding comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Path of the executable, as the tracer opened it.
    pub binary: String,
    /// `go1.24.11` and the like, from `.go.buildinfo`; empty when unknown.
    pub go_version: String,
    /// Runtime address minus link-time address of the text (0 for non-PIE binaries).
    pub load_bias: u64,
}

/// One source position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
}

/// What part a goroutine plays in a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Grew the sub-slice that starts at the lower address.
    LowerSlice,
    /// Grew the sub-slice that starts at the higher address.
    UpperSlice,
    /// One of two goroutines growing the same array at the same length.
    Appender,
    /// Grew the array first.
    FirstGrower,
    /// Grew the array again, well after.
    LaterGrower,
    /// Was ranging over the map.
    Iterator,
    /// Wrote the map.
    Writer,
    /// Was inside `(*list.List).Remove`.
    Remover,
    /// Was inside a mutating `*list.List` method (PushBack, MoveToFront…).
    Mutator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::LowerSlice => "lower_slice",
            Self::UpperSlice => "upper_slice",
            Self::Appender => "appender",
            Self::FirstGrower => "first_grower",
            Self::LaterGrower => "later_grower",
            Self::Iterator => "iterator",
            Self::Writer => "writer",
            Self::Remover => "remover",
            Self::Mutator => "mutator",
        }
    }
}

/// One goroutine of a finding and the call site where it touched the object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GoroutineSite {
    pub role: Role,
    pub goid: u64,
    pub tid: u32,
    /// The probed call site (runtime address).
    pub pc: u64,
    pub function: String,
    pub file: String,
    pub line: u32,
    /// The user stack captured with the record, innermost first; empty when none.
    pub stack: Vec<Frame>,
}

/// A deduplicated finding: every occurrence with the same detector and call-site pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub detector: Detector,
    pub severity: Severity,
    pub evidence: Evidence,
    /// One sentence that starts with the evidence level.
    pub message: String,
    pub object: ObjectRef,
    pub process: ProcessInfo,
    /// One entry for single-goroutine detectors (and when the other goroutine's record
    /// is missing), else two.
    pub goroutines: Vec<GoroutineSite>,
    /// Kernel timestamps (CLOCK_MONOTONIC ns) of the first and last occurrence.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub count: u64,
}

/// The worst severity among `findings`, for `--fail-on`.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Whether `--fail-on threshold` matches: some finding is at least that severe.
pub fn fails(findings: &[Finding], threshold: Severity) -> bool {
    worst(findings).is_some_and(|w| w >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_design() {
        let rows: Vec<_> = Detector::ALL.iter().map(|d| (d.name(), d.severity().name(), d.evidence().name())).collect();
        assert_eq!(
            rows,
            [
                ("slice_capacity_overlap", "critical", "definite"),
                ("slice_lost_append", "warning", "likely"),
                ("slice_stale_header", "info", "possible"),
                ("map_iter_write", "critical", "definite"),
                ("map_concurrent_write", "critical", "definite"),
                ("map_write_during_range", "info", "definite"),
                ("list_concurrent_remove", "critical", "definite"),
                ("list_foreign_remove", "warning", "definite"),
                ("list_stale_remove", "warning", "definite"),
                ("list_concurrent_mutation", "critical", "definite"),
                ("list_foreign_element", "warning", "definite"),
            ]
        );
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!("Warning".parse(), Ok(Severity::Warning));
        assert!("fatal".parse::<Severity>().is_err());
        assert_eq!(worst(&[]), None);
        assert!(!fails(&[], Severity::Info));
    }
}
