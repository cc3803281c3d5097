//! Detectors: turn decoded events into findings. Pure: no I/O, no aya.
//!
//! [`Engine`] takes [`Event`](crate::events::Event)s in arrival order and keeps
//! bounded per-object state; [`Engine::findings`] symbolizes what it found through a
//! [`Symbolizer`]. docs/detectors.md says what each detector claims and why.
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
pub use symbols::{NoSymbols, Symbolizer};

#[cfg(test)]
mod props_tests;
#[cfg(test)]
pub(crate) mod testkit;
