//! Finding sinks: JSON lines, the human table, Prometheus.
#![forbid(unsafe_code)]

pub mod json;
pub mod prometheus;
pub mod table;

#[cfg(test)]
pub(crate) mod sample;
