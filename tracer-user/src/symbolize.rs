//! Source positions for findings, from the traced binaries themselves (gobin) and
//! the user stacks the kernel captured.
#![forbid(unsafe_code)]

use std::{cell::RefCell, collections::HashMap, path::Path, sync::Arc};

use crate::{
    detect::{Frame, ProcessInfo, Symbolizer},
    gobin::GoBinary,
};

/// Symbolizes through each process's binary, opened once per path.
#[derive(Default)]
pub struct BinarySymbols {
    binaries: RefCell<HashMap<String, Option<Arc<GoBinary>>>>,
    /// (tgid, stack id) → user stack, innermost first.
    pub stacks: HashMap<(u32, u32), Vec<u64>>,
}

impl BinarySymbols {
    /// Uses an already opened binary for `path`.
    pub fn with_binary(path: &Path, binary: Arc<GoBinary>) -> Self {
        let mut symbols = Self::default();
        symbols.add_binary(path, binary);
        symbols
    }

    /// Uses an already opened binary for `path` from now on.
    pub fn add_binary(&mut self, path: &Path, binary: Arc<GoBinary>) {
        self.binaries.get_mut().insert(path.display().to_string(), Some(binary));
    }

    fn binary(&self, path: &str) -> Option<Arc<GoBinary>> {
        self.binaries
            .borrow_mut()
            .entry(path.to_string())
            .or_insert_with(|| GoBinary::open(Path::new(path)).ok().map(Arc::new))
            .clone()
    }
}

impl Symbolizer for BinarySymbols {
    fn frames(&self, process: &ProcessInfo, pc: u64) -> Vec<Frame> {
        let Some(binary) = self.binary(&process.binary) else { return Vec::new() };
        binary
            .symbolize(pc.wrapping_sub(process.load_bias))
            .unwrap_or_default()
            .into_iter()
            .map(|f| Frame { function: f.function, file: f.file, line: f.line })
            .collect()
    }

    fn stack(&self, process: &ProcessInfo, stack_id: u32) -> Vec<u64> {
        self.stacks.get(&(process.pid, stack_id)).cloned().unwrap_or_default()
    }
}
