//! The per-record work of live tracing, shared by `run`/`attach` and the daemon:
//! read a record's user stack before the kernel reuses its id, feed the detection
//! engine, keep its clock moving, and symbolize what it found.
#![forbid(unsafe_code)]

use aya::maps::{MapData, StackTraceMap};

use crate::{
    detect::{Engine, Finding},
    events::Event,
    symbolize::BinarySymbols,
};

/// An engine with the symbols and stacks of the processes it watches.
pub struct Live {
    pub engine: Engine,
    /// Symbolizes findings; its `stacks` cache the user stacks read so far.
    pub symbols: BinarySymbols,
    /// Stacks cached before the cache starts over (a long-lived process would
    /// otherwise keep every stack it ever reported).
    stack_limit: usize,
}

impl Live {
    /// Caches every stack (a session ends with its process).
    pub fn new(engine: Engine, symbols: BinarySymbols) -> Self {
        Self { engine, symbols, stack_limit: usize::MAX }
    }

    /// Keeps at most `limit` stacks.
    pub fn with_stack_limit(mut self, limit: usize) -> Self {
        self.stack_limit = limit.max(1);
        self
    }

    /// Feeds one record's event; returns its user stack when it was read just now
    /// (for a recording to keep).
    pub fn record(&mut self, stack_map: &StackTraceMap<MapData>, event: &Event) -> Option<&[u64]> {
        let mut fresh = None;
        // Stack ids are reused once the kernel's table fills: read the stack now.
        if let Some(id) = event.stack_id
            && !self.symbols.stacks.contains_key(&(event.tgid, id))
            && let Ok(trace) = stack_map.get(&id, 0)
        {
            if self.symbols.stacks.len() >= self.stack_limit {
                self.symbols.stacks.clear();
            }
            self.symbols.stacks.insert((event.tgid, id), trace.frames().iter().map(|f| f.ip).collect());
            fresh = Some((event.tgid, id));
        }
        self.engine.process(event);
        fresh.and_then(|key| self.symbols.stacks.get(&key)).map(Vec::as_slice)
    }

    /// Moves the engine's clock to `now_ns` (kernel monotonic time).
    pub fn tick(&mut self, now_ns: u64) {
        self.engine.advance_to(now_ns);
    }

    /// The findings so far, symbolized.
    pub fn findings(&self) -> Vec<Finding> {
        self.engine.findings(&self.symbols)
    }
}
