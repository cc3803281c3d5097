//! The error type of Go binary analysis: one line each, with the file offset at fault.

use std::path::PathBuf;

use thiserror::Error;

/// Why a file could not be analysed. Messages are lowercase one-liners; offsets are
/// absolute file offsets.
#[derive(Debug, Error)]
pub enum GobinError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory, not a program")]
    Directory { path: PathBuf },
    #[error("not an ELF file (starts with \"{magic}\")")]
    NotElf { magic: String },
    #[error("malformed ELF file: {detail}")]
    Elf { detail: String },
    #[error("not a Go binary: {reason}")]
    NotGo { reason: &'static str },
    #[error("unsupported architecture {machine} (ghostrace reads 64-bit amd64 and arm64 Go binaries)")]
    UnsupportedArch { machine: String },
    #[error("unsupported Go version {version}: {reason}")]
    UnsupportedVersion { version: String, reason: &'static str },
    #[error("truncated {what}: need {len} bytes at offset {offset:#x}, {available} available")]
    Truncated { what: &'static str, offset: u64, len: u64, available: u64 },
    #[error("malformed {what} at offset {offset:#x}: {detail}")]
    Malformed { what: &'static str, offset: u64, detail: String },
    #[error("malformed DWARF: {detail}")]
    Dwarf { detail: String },
    #[error("address {addr:#x} ({what}) is not in any loaded section of the file")]
    Unmapped { what: &'static str, addr: u64 },
}
