//! Detectors: turn decoded events into findings. Pure: no I/O, no aya.
#![forbid(unsafe_code)]
