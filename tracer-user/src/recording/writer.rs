//! Writes a recording: the header, then process, stack, record and loss chunks in
//! the order the pipeline saw them, then the end marker.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
};

use thiserror::Error;
use tracer_common::RECORD_SIZE;

use super::format::{CHUNK_HEADER_LEN, Header, MAX_CHUNK, RECORDS_PER_CHUNK, Tag};
use crate::{
    detect::ProcessInfo,
    events::{DecodeError, decode},
};

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("cannot write the recording")]
    Io(#[from] io::Error),
    #[error("record {index} cannot be decoded; it is not written")]
    Record {
        index: u64,
        #[source]
        source: DecodeError,
    },
    #[error("{what} is too long for one chunk")]
    TooLong { what: &'static str },
}

/// Records are gathered and written as one chunk per `RECORDS_PER_CHUNK`; any other
/// chunk first flushes them, so the file keeps the order of calls.
pub struct Writer<W: Write> {
    out: W,
    pending: Vec<u8>,
    records: u64,
}

impl Writer<BufWriter<File>> {
    pub fn create(path: &Path, header: Header) -> Result<Self, WriteError> {
        Self::new(BufWriter::new(File::create(path)?), header)
    }
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, header: Header) -> Result<Self, WriteError> {
        out.write_all(&header.to_bytes())?;
        Ok(Self { out, pending: Vec::with_capacity(RECORDS_PER_CHUNK * RECORD_SIZE), records: 0 })
    }

    fn chunk(&mut self, tag: Tag, payload: &[u8], what: &'static str) -> Result<(), WriteError> {
        let len = u32::try_from(payload.len()).ok().filter(|&l| l <= MAX_CHUNK).ok_or(WriteError::TooLong { what })?;
        let mut head = [0u8; CHUNK_HEADER_LEN];
        head[0..4].copy_from_slice(&(tag as u32).to_le_bytes());
        head[4..8].copy_from_slice(&len.to_le_bytes());
        head[8..12].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        Ok(())
    }

    fn flush_records(&mut self) -> Result<(), WriteError> {
        if !self.pending.is_empty() {
            let payload = std::mem::take(&mut self.pending);
            self.chunk(Tag::Records, &payload, "records")?;
            self.pending = payload;
            self.pending.clear();
        }
        Ok(())
    }

    /// Describes a traced process; write it before its records.
    pub fn process(&mut self, p: &ProcessInfo) -> Result<(), WriteError> {
        self.flush_records()?;
        let mut b = Vec::with_capacity(24 + p.go_version.len() + p.binary.len());
        b.extend(p.pid.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(p.load_bias.to_le_bytes());
        for s in [&p.go_version, &p.binary] {
            let len = u32::try_from(s.len()).map_err(|_| WriteError::TooLong { what: "process string" })?;
            b.extend(len.to_le_bytes());
            b.extend(s.as_bytes());
        }
        self.chunk(Tag::Process, &b, "process")
    }

    /// A user stack the kernel stored under `stack_id`, innermost first; write it
    /// before the findings that name it are asked for.
    pub fn stack(&mut self, tgid: u32, stack_id: u32, pcs: &[u64]) -> Result<(), WriteError> {
        self.flush_records()?;
        let mut b = Vec::with_capacity(8 + 8 * pcs.len());
        b.extend(tgid.to_le_bytes());
        b.extend(stack_id.to_le_bytes());
        pcs.iter().for_each(|pc| b.extend(pc.to_le_bytes()));
        self.chunk(Tag::Stack, &b, "stack")
    }

    /// One raw kernel record, exactly as read from the ring buffer. Records that do
    /// not decode are refused, so every recording replays.
    pub fn record(&mut self, raw: &[u8]) -> Result<(), WriteError> {
        decode(raw).map_err(|source| WriteError::Record { index: self.records, source })?;
        self.pending.extend_from_slice(raw);
        self.records += 1;
        if self.pending.len() >= RECORDS_PER_CHUNK * RECORD_SIZE {
            self.flush_records()?;
        }
        Ok(())
    }

    /// Records the kernel reported lost (ring buffer full) since the last call.
    pub fn lost(&mut self, count: u64) -> Result<(), WriteError> {
        self.flush_records()?;
        self.chunk(Tag::Lost, &count.to_le_bytes(), "lost")
    }

    /// The live engine's clock was moved to `now_ns` (`Engine::advance_to`): replay
    /// moves it at the same point, so that candidates settle as they did live.
    pub fn clock(&mut self, now_ns: u64) -> Result<(), WriteError> {
        self.flush_records()?;
        self.chunk(Tag::Clock, &now_ns.to_le_bytes(), "clock")
    }

    /// Writes what is gathered, so that a reader sees it (the file stays open).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.flush_records()?;
        self.out.flush()?;
        Ok(())
    }

    /// Writes the end marker; without it a reader reports the file as truncated.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.flush_records()?;
        let records = self.records.to_le_bytes();
        self.chunk(Tag::End, &records, "end")?;
        self.out.flush()?;
        Ok(self.out)
    }
}
