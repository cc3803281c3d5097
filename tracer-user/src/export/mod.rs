//! Finding sinks: JSON lines, the human table, Prometheus.
#![forbid(unsafe_code)]
