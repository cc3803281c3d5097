//! An executable made ready to trace, the same way for `run`, the programs it
//! follows and the daemon: opened as a Go binary, found traceable on this host,
//! planned within a scope, with the settings its kernel side reads.

use std::path::Path;

use thiserror::Error;
use tracer_common::ProcConfig;

use super::{ProbeError, check_traceable, proc_config};
use crate::gobin::{GoBinary, GobinError, ProbePlan, Scope};

pub struct Target {
    pub binary: GoBinary,
    pub plan: ProbePlan,
    pub config: ProcConfig,
}

#[derive(Debug, Error)]
pub enum TargetError {
    /// Not a Go program (not an ELF file, a directory): nothing to trace, no failure.
    #[error(transparent)]
    NotGo(GobinError),
    /// The file could not be read (its process may have exited with it).
    #[error(transparent)]
    Unreadable(GobinError),
    /// A Go program ghostrace cannot read.
    #[error(transparent)]
    Unsupported(GobinError),
    /// A Go program whose probes this host cannot run.
    #[error(transparent)]
    Untraceable(ProbeError),
}

/// How a followed program or the daemon's process is traced: `scope`, 1-in-N
/// sampling, user stacks or not.
#[derive(Clone, Debug)]
pub struct Settings {
    pub scope: Scope,
    pub sample_every: u32,
    pub stacks: bool,
}

/// Opens, checks and plans the executable at `path`.
pub fn prepare(path: &Path, settings: &Settings) -> Result<Target, TargetError> {
    let binary = GoBinary::open(path).map_err(|e| match e {
        GobinError::NotGo { .. } | GobinError::NotElf { .. } | GobinError::Directory { .. } => TargetError::NotGo(e),
        GobinError::Io { .. } => TargetError::Unreadable(e),
        e => TargetError::Unsupported(e),
    })?;
    check_traceable(&binary).map_err(TargetError::Untraceable)?;
    let plan = binary.probe_plan(&settings.scope);
    let config = proc_config(&binary, settings.sample_every, settings.stacks);
    Ok(Target { binary, plan, config })
}
