//! Finding sinks: JSON lines, the human table, Prometheus.
#![forbid(unsafe_code)]

pub mod json;
pub mod table;

#[cfg(test)]
mod sample;
