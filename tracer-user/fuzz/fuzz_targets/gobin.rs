//! Any bytes as a Go binary: every reader (ELF, buildinfo, pclntab, inline tree,
//! DWARF) gives an error or a result, never a panic or a hang.
#![no_main]

// The same entry points the mutation test drives (tests/gobin_support/exercise.rs).
#[path = "../../tests/gobin_support/exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::exercise(data.to_vec()));
