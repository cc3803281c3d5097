//! Detectors: turn decoded events into findings. Pure: no I/O, no aya.
//!
//! [`Engine`] takes [`Event`](crate::events::Event)s in arrival order and keeps
//! bounded per-object state; [`Engine::findings`] symbolizes what it found through a
//! [`Symbolizer`]. docs/detectors.md says what each detector claims and why.
//!
//! ```
//! use tracer_user::detect::{Config, Engine, NoSymbols, ProcessInfo, Severity, fails};
//! use tracer_user::events::{Event, EventKind};
//!
//! let mut engine = Engine::new(Config::default())?;
//! engine.add_process(ProcessInfo { pid: 7, binary: "/bin/svc".into(), ..Default::default() });
//! // Two goroutines append through one shared header at the same moment.
//! for (goid, ts_ns) in [(1, 1_000), (2, 1_400)] {
//!     let kind = EventKind::SliceGrow { old_ptr: 0xc000_0000, old_len: 8, old_cap: 8, new_len: 9, elem_size: 8, gc_cycle: 0, repeated: false };
//!     engine.process(&Event { ts_ns, tgid: 7, tid: 70 + goid as u32, goid, pc: 0x4a_1000, probe: 0, stack_id: None, kind });
//! }
//! // Live: call `engine.advance_to(now)` now and then; at the end:
//! engine.finish();
//! let findings = engine.findings(&NoSymbols);
//! assert_eq!(findings[0].detector.name(), "slice_lost_append");
//! assert!(fails(&findings, "warning".parse::<Severity>()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod config;
mod dedup;
mod engine;
mod finding;
mod lists;
mod maps;
mod message;
mod slices;
mod symbols;
mod table;

pub use config::{Config, ConfigError};
pub use engine::{Engine, Stats, detect_all};
pub use finding::{
    Detector, Evidence, Finding, Frame, GoroutineSite, ObjectKind, ObjectRef, ParseSeverityError, ProcessInfo, Role,
    Severity, fails, worst,
};
pub use symbols::{NoSymbols, Symbolizer, call_site};

#[cfg(test)]
mod props_tests;
#[cfg(test)]
pub(crate) mod testkit;
