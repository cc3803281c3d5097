//! `ghostrace replay FILE`: a recording's events through a fresh engine, with the
//! recording's processes and stacks, giving the findings the live run gave.

use std::{
    collections::HashMap,
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

use thiserror::Error;

use super::{
    format::Header,
    reader::{Item, Reader, RecordingError},
};
use crate::detect::{Config, ConfigError, Engine, Finding, Frame, ProcessInfo, Stats, Symbolizer};

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error("invalid detector settings")]
    Config(#[from] ConfigError),
}

/// What a replay found.
#[derive(Debug)]
pub struct Replay {
    pub findings: Vec<Finding>,
    pub stats: Stats,
    pub processes: Vec<ProcessInfo>,
    /// Records the kernel lost while the recording was made: findings may be missing.
    pub lost: u64,
    pub header: Header,
}

/// Stacks from the recording (the last one stored under an id wins, as in the
/// kernel's map), frames from the caller's symbolizer.
struct RecordedStacks<'a> {
    stacks: HashMap<(u32, u32), Vec<u64>>,
    inner: &'a dyn Symbolizer,
}

impl Symbolizer for RecordedStacks<'_> {
    fn frames(&self, process: &ProcessInfo, pc: u64) -> Vec<Frame> {
        self.inner.frames(process, pc)
    }

    fn stack(&self, process: &ProcessInfo, stack_id: u32) -> Vec<u64> {
        match self.stacks.get(&(process.pid, stack_id)) {
            Some(pcs) => pcs.clone(),
            None => self.inner.stack(process, stack_id),
        }
    }
}

/// Replays the recording at `path`. `sym` gives source positions (a gobin-backed
/// symbolizer for the recorded binaries, or `NoSymbols`).
pub fn replay(path: &Path, config: &Config, sym: &dyn Symbolizer) -> Result<Replay, ReplayError> {
    let file = File::open(path).map_err(|source| RecordingError::Open { path: path.to_owned(), source })?;
    replay_from(BufReader::new(file), config, sym)
}

/// Replays a recording from any reader.
pub fn replay_from(input: impl Read, config: &Config, sym: &dyn Symbolizer) -> Result<Replay, ReplayError> {
    let mut reader = Reader::new(input)?;
    let header = reader.header();
    // Whether the kernel filtered is a fact of the run, not a choice of the replay.
    let mut engine = Engine::new(Config { complete_stream: header.complete_stream, ..config.clone() })?;
    let mut stacks = HashMap::new();
    let mut lost = 0u64;
    while let Some(item) = reader.next_item()? {
        match item {
            Item::Event(ev) => engine.process(&ev),
            Item::Process(p) => engine.add_process(p),
            Item::Stack { tgid, stack_id, pcs } => {
                stacks.insert((tgid, stack_id), pcs);
            }
            Item::Lost(n) => lost = lost.saturating_add(n),
            Item::Clock(now) => engine.advance_to(now),
        }
    }
    engine.finish();
    let sym = RecordedStacks { stacks, inner: sym };
    Ok(Replay {
        findings: engine.findings(&sym),
        stats: engine.stats(),
        processes: engine.processes().cloned().collect(),
        lost,
        header,
    })
}
