//! `--record FILE` and `ghostrace replay FILE`: the raw kernel records of a run with
//! what is needed to replay and symbolize them (format in docs/findings-schema.md).
//!
//! Layout, version 1, little-endian: a 32-byte header (magic `GHOSTREC`, version,
//! header length, record size, clock anchor), then chunks of `tag u32, length u32,
//! CRC-32 u32, payload`: process descriptions, raw 88-byte records, user stacks,
//! loss counts, and last an end marker with the record count.
#![forbid(unsafe_code)]

mod format;
mod reader;
mod replay;
mod writer;

pub use format::{ClockAnchor, Header, MAGIC, VERSION, encode};
pub use reader::{Item, Reader, RecordingError};
pub use replay::{Replay, ReplayError, replay, replay_from};
pub use writer::{WriteError, Writer};

#[cfg(test)]
mod tests;
