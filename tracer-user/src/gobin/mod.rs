//! Go binary analysis: everything the probes need, read from the binary itself.
#![forbid(unsafe_code)]
