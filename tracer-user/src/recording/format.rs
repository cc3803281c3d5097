//! The on-disk layout of a recording, version 1 (docs/findings-schema.md has the
//! table): constants, the header, chunk tags, and the record encoding.

use tracer_common::RECORD_SIZE;

use crate::events::Event;

/// First 8 bytes of every recording.
pub const MAGIC: [u8; 8] = *b"GHOSTREC";
/// The only version this build writes and reads.
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 32;
/// tag u32, payload length u32, CRC-32 (IEEE) of the payload u32.
pub const CHUNK_HEADER_LEN: usize = 12;
/// Upper bound on one chunk's payload, so a corrupted length cannot make the reader
/// allocate gigabytes.
pub const MAX_CHUNK: u32 = 64 << 20;
/// Records the writer gathers into one chunk.
pub const RECORDS_PER_CHUNK: usize = 4096;

/// When the recording started, on both clocks, so findings can get wall times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockAnchor {
    /// Unix time, ns.
    pub unix_ns: i64,
    /// CLOCK_MONOTONIC (the kernel records' clock) at the same instant, ns.
    pub monotonic_ns: u64,
}

impl ClockAnchor {
    /// Both clocks, read now.
    pub fn now() -> Self {
        let unix_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        Self { unix_ns, monotonic_ns: crate::sys::monotonic_ns() }
    }

    /// Unix time minus monotonic time, for `JsonLines::with_unix_offset`.
    pub fn unix_offset_ns(&self) -> i128 {
        i128::from(self.unix_ns) - i128::from(self.monotonic_ns)
    }
}

/// Header flag: every probe hit is in the recording (no kernel filtering).
pub(crate) const FLAG_COMPLETE: u16 = 1;

/// What the header says about the whole recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub anchor: ClockAnchor,
    /// Every probe hit was recorded (the kernel filter was off, or sampled every
    /// hit): replay sets `Config::complete_stream` from it.
    pub complete_stream: bool,
}

impl Header {
    /// Magic, version, header length, record size, flags, anchor.
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&VERSION.to_le_bytes());
        h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[12..14].copy_from_slice(&(RECORD_SIZE as u16).to_le_bytes());
        let flags = if self.complete_stream { FLAG_COMPLETE } else { 0 };
        h[14..16].copy_from_slice(&flags.to_le_bytes());
        h[16..24].copy_from_slice(&self.anchor.unix_ns.to_le_bytes());
        h[24..32].copy_from_slice(&self.anchor.monotonic_ns.to_le_bytes());
        h
    }
}

/// Chunk kinds. A reader rejects tags it does not know: version 1 has no optional chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Tag {
    /// pid u32, reserved u32, load bias u64, Go version (u32 length + UTF-8), binary
    /// path (u32 length + UTF-8).
    Process = 1,
    /// Raw kernel records, `RECORD_SIZE` bytes each, as `tracer_common::Record` in
    /// little-endian.
    Records = 2,
    /// tgid u32, stack id u32, then u64 addresses, innermost first.
    Stack = 3,
    /// u64: records the kernel reported lost while this recording was made.
    Lost = 4,
    /// u64: the live engine's clock was moved to this time (`Engine::advance_to`).
    Clock = 5,
    /// u64: number of records in the file. Last chunk; nothing may follow.
    End = 15,
}

impl Tag {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Process,
            2 => Self::Records,
            3 => Self::Stack,
            4 => Self::Lost,
            5 => Self::Clock,
            15 => Self::End,
            _ => return None,
        })
    }
}

/// A decoded event back in the kernel's record layout: how synthetic streams and
/// tests make recordings.
pub fn encode(ev: &Event) -> [u8; RECORD_SIZE] {
    crate::events::to_record(ev).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, MapOp, decode};

    #[test]
    fn encode_is_the_inverse_of_decode() {
        let kinds = [
            EventKind::SliceGrow { old_ptr: 1, old_len: 2, old_cap: 3, new_len: 4, elem_size: 5, gc_cycle: 6, repeated: true },
            EventKind::MapIterStart { map: 1, iter: 2 },
            EventKind::MapIterNext { map: 1, iter: 2, writing: true, unseen_until: 3 },
            EventKind::MapWrite { map: 1, op: MapOp::Clear, writing: true },
            EventKind::MapWriteInRange { map: 1, op: MapOp::Assign, iter: 2 },
            EventKind::MapWriteOverlap { map: 1, op: MapOp::Delete, writing: true, other: 4 },
            EventKind::ListRemoveEnter { list: 1, elem: 2, elem_list: 3, op: tracer_common::ListOp::MoveBefore },
            EventKind::ListRemoveExit { list: 1, elem: 2 },
        ];
        for (i, kind) in kinds.into_iter().enumerate() {
            let ev = Event {
                ts_ns: 10 + i as u64,
                tgid: 7,
                tid: 8,
                goid: 9,
                pc: 0x401000,
                probe: 3,
                stack_id: (i % 2 == 0).then_some(i as u32),
                kind,
            };
            assert_eq!(decode(&encode(&ev)), Ok(ev));
        }
    }
}
