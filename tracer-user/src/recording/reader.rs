//! Reads a recording back, item by item. Every problem (foreign file, other version,
//! truncation, checksum, bad lengths, undecodable records, missing end marker) is a
//! typed error naming the byte offset where it starts; nothing here panics.

use std::{
    io::{self, Read},
    path::PathBuf,
};

use thiserror::Error;
use tracer_common::RECORD_SIZE;

use super::format::{CHUNK_HEADER_LEN, ClockAnchor, FLAG_COMPLETE, HEADER_LEN, Header, MAGIC, MAX_CHUNK, Tag, VERSION};
use crate::{
    detect::ProcessInfo,
    events::{DecodeError, Event, decode},
};

#[derive(Debug, Error)]
pub enum RecordingError {
    #[error("cannot open recording {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the recording at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a ghostrace recording: byte 0 starts with {found:02x?}, not \"GHOSTREC\"")]
    Foreign { found: Vec<u8> },
    #[error("recording format version {version} (at byte 8) is not supported; this build reads version {VERSION}")]
    Version { version: u16 },
    #[error("bad header field at byte {offset}: {what}")]
    Header { offset: u64, what: &'static str },
    #[error("truncated at byte {offset}: {what} needs {len} bytes, the file has {got}")]
    Truncated { offset: u64, what: &'static str, len: u64, got: u64 },
    #[error("corrupted chunk at byte {offset}: checksum {found:#010x}, expected {expected:#010x}")]
    Checksum { offset: u64, expected: u32, found: u32 },
    #[error("corrupted chunk at byte {offset}: unknown chunk tag {tag}")]
    UnknownChunk { offset: u64, tag: u32 },
    #[error("corrupted chunk at byte {offset}: {what}")]
    BadChunk { offset: u64, what: &'static str },
    #[error("corrupted record at byte {offset}")]
    Record {
        offset: u64,
        #[source]
        source: DecodeError,
    },
    #[error("truncated at byte {offset}: the recording ends without its end marker")]
    MissingEnd { offset: u64 },
    #[error("corrupted: data after the end marker at byte {offset}")]
    Trailing { offset: u64 },
}

impl RecordingError {
    /// The byte offset the error names, if it is about the file's content.
    pub fn offset(&self) -> Option<u64> {
        match *self {
            Self::Open { .. } => None,
            Self::Foreign { .. } => Some(0),
            Self::Version { .. } => Some(8),
            Self::Io { offset, .. }
            | Self::Header { offset, .. }
            | Self::Truncated { offset, .. }
            | Self::Checksum { offset, .. }
            | Self::UnknownChunk { offset, .. }
            | Self::BadChunk { offset, .. }
            | Self::Record { offset, .. }
            | Self::MissingEnd { offset }
            | Self::Trailing { offset } => Some(offset),
        }
    }
}

/// One thing a recording holds, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Process(ProcessInfo),
    Stack {
        tgid: u32,
        stack_id: u32,
        pcs: Vec<u64>,
    },
    Event(Event),
    Lost(u64),
    /// The live engine's clock moved to this time.
    Clock(u64),
}

pub struct Reader<R: Read> {
    input: R,
    /// Bytes consumed so far.
    offset: u64,
    header: Header,
    /// The current records chunk, its file offset, and the next record in it.
    records: Vec<u8>,
    records_at: u64,
    next_record: usize,
    seen: u64,
    done: bool,
}

/// Bounds-checked little-endian reads inside one chunk's payload.
struct Payload<'a> {
    bytes: &'a [u8],
    pos: usize,
    at: u64,
}

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordingError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(RecordingError::BadChunk { offset: self.at + self.pos as u64, what })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordingError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RecordingError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }

    fn string(&mut self, what: &'static str) -> Result<String, RecordingError> {
        let at = self.at + self.pos as u64;
        let len = self.u32(what)? as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| RecordingError::BadChunk { offset: at, what })
    }

    fn end(&self, what: &'static str) -> Result<(), RecordingError> {
        match self.pos == self.bytes.len() {
            true => Ok(()),
            false => Err(RecordingError::BadChunk { offset: self.at + self.pos as u64, what }),
        }
    }
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, RecordingError> {
        let mut r = Self {
            input,
            offset: 0,
            header: Header::default(),
            records: Vec::new(),
            records_at: 0,
            next_record: 0,
            seen: 0,
            done: false,
        };
        let h = r.read(HEADER_LEN as u64)?;
        let magic_len = h.len().min(MAGIC.len());
        if h[..magic_len] != MAGIC[..magic_len] {
            return Err(RecordingError::Foreign { found: h[..magic_len].to_vec() });
        }
        if h.len() < HEADER_LEN {
            return Err(RecordingError::Truncated {
                offset: 0,
                what: "header",
                len: HEADER_LEN as u64,
                got: h.len() as u64,
            });
        }
        let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        let version = u16_at(8);
        if version != VERSION {
            return Err(RecordingError::Version { version });
        }
        if usize::from(u16_at(10)) != HEADER_LEN {
            return Err(RecordingError::Header { offset: 10, what: "header length is not 32" });
        }
        if usize::from(u16_at(12)) != RECORD_SIZE {
            return Err(RecordingError::Header { offset: 12, what: "record size is not 88" });
        }
        let flags = u16_at(14);
        if flags & !FLAG_COMPLETE != 0 {
            return Err(RecordingError::Header { offset: 14, what: "unknown header flags" });
        }
        r.header = Header {
            anchor: ClockAnchor {
                unix_ns: i64::from_le_bytes(h[16..24].try_into().expect("8 bytes")),
                monotonic_ns: u64::from_le_bytes(h[24..32].try_into().expect("8 bytes")),
            },
            complete_stream: flags & FLAG_COMPLETE != 0,
        };
        Ok(r)
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// Up to `len` bytes (fewer only at the end of the file).
    fn read(&mut self, len: u64) -> Result<Vec<u8>, RecordingError> {
        let mut buf = Vec::new();
        (&mut self.input)
            .take(len)
            .read_to_end(&mut buf)
            .map_err(|source| RecordingError::Io { offset: self.offset, source })?;
        self.offset += buf.len() as u64;
        Ok(buf)
    }

    /// The payload of the chunk at `at`; a short one means a truncated file or a
    /// corrupted length, so the error names the chunk.
    fn read_payload(&mut self, at: u64, len: u32) -> Result<Vec<u8>, RecordingError> {
        let buf = self.read(u64::from(len))?;
        if buf.len() == len as usize {
            return Ok(buf);
        }
        let head = CHUNK_HEADER_LEN as u64;
        Err(RecordingError::Truncated {
            offset: at,
            what: "chunk",
            len: head + u64::from(len),
            got: head + buf.len() as u64,
        })
    }

    /// The next item, or `None` after a valid end marker.
    pub fn next_item(&mut self) -> Result<Option<Item>, RecordingError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.next_record * RECORD_SIZE < self.records.len() {
                let at = self.next_record * RECORD_SIZE;
                let offset = self.records_at + at as u64;
                self.next_record += 1;
                let ev = decode(&self.records[at..at + RECORD_SIZE])
                    .map_err(|source| RecordingError::Record { offset, source })?;
                return Ok(Some(Item::Event(ev)));
            }
            if let Some(item) = self.next_chunk()? {
                return Ok(Some(item));
            }
        }
    }

    /// Reads one chunk: an item, or `None` for a records chunk (now buffered) and
    /// for the end marker (now `done`).
    fn next_chunk(&mut self) -> Result<Option<Item>, RecordingError> {
        let at = self.offset;
        let head = self.read(CHUNK_HEADER_LEN as u64)?;
        if head.is_empty() {
            return Err(RecordingError::MissingEnd { offset: at });
        }
        if head.len() < CHUNK_HEADER_LEN {
            let got = head.len() as u64;
            return Err(RecordingError::Truncated {
                offset: at,
                what: "chunk header",
                len: CHUNK_HEADER_LEN as u64,
                got,
            });
        }
        let word = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let (tag, len, crc) = (word(0), word(4), word(8));
        let tag = Tag::from_u32(tag).ok_or(RecordingError::UnknownChunk { offset: at, tag })?;
        if len > MAX_CHUNK {
            return Err(RecordingError::BadChunk { offset: at + 4, what: "chunk length exceeds 64 MiB" });
        }
        let payload = self.read_payload(at, len)?;
        let found = crc32fast::hash(&payload);
        if found != crc {
            return Err(RecordingError::Checksum { offset: at, expected: crc, found });
        }
        let body = at + CHUNK_HEADER_LEN as u64;
        let mut p = Payload { bytes: &payload, pos: 0, at: body };
        let item = match tag {
            Tag::Records => {
                if payload.len() % RECORD_SIZE != 0 {
                    return Err(RecordingError::BadChunk {
                        offset: at + 4,
                        what: "records chunk is not a whole number of records",
                    });
                }
                self.seen += (payload.len() / RECORD_SIZE) as u64;
                self.records = payload;
                self.records_at = body;
                self.next_record = 0;
                return Ok(None);
            }
            Tag::Process => {
                let pid = p.u32("process pid")?;
                p.u32("process reserved word")?;
                let load_bias = p.u64("process load bias")?;
                let go_version = p.string("process Go version")?;
                let binary = p.string("process binary path")?;
                p.end("process chunk has trailing bytes")?;
                Item::Process(ProcessInfo { pid, binary, go_version, load_bias })
            }
            Tag::Stack => {
                let tgid = p.u32("stack tgid")?;
                let stack_id = p.u32("stack id")?;
                if !(payload.len() - p.pos).is_multiple_of(8) {
                    return Err(RecordingError::BadChunk {
                        offset: at + 4,
                        what: "stack is not a whole number of addresses",
                    });
                }
                let pcs = payload[p.pos..].chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
                Item::Stack { tgid, stack_id, pcs: pcs.collect() }
            }
            Tag::Lost => {
                let n = p.u64("lost count")?;
                p.end("lost chunk has trailing bytes")?;
                Item::Lost(n)
            }
            Tag::Clock => {
                let now = p.u64("clock")?;
                p.end("clock chunk has trailing bytes")?;
                Item::Clock(now)
            }
            Tag::End => {
                let n = p.u64("end record count")?;
                p.end("end chunk has trailing bytes")?;
                if n != self.seen {
                    return Err(RecordingError::BadChunk {
                        offset: body,
                        what: "end marker's record count does not match the records",
                    });
                }
                let tail_at = self.offset;
                if !self.read(1)?.is_empty() {
                    return Err(RecordingError::Trailing { offset: tail_at });
                }
                self.done = true;
                return Ok(None);
            }
        };
        Ok(Some(item))
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Item, RecordingError>;

    /// Stops after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_item() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
