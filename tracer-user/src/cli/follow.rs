//! `run` follows its child's descendants: a descendant that execs a Go program gets
//! the probe plan of that executable (planned once per file) and joins the session;
//! anything else it runs is noted once and left alone.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
};

use anyhow::Result;
use tokio::io::unix::AsyncFd;
use tracer_common::{ProcConfig, ProcEventKind};

use super::session::Session;
use crate::{
    gobin::{GoBinary, ProbePlan},
    probes::{self, ProcEvents, Target, TargetError},
    procfs::{self, FileStamp},
};

/// Ancestors looked at before giving up on a pid (a deeper tree is not followed).
const MAX_DEPTH: usize = 64;

/// An executable a descendant ran, planned once.
struct Planned {
    path: PathBuf,
    binary: Arc<GoBinary>,
    plan: ProbePlan,
    config: ProcConfig,
}

pub struct Follower {
    events: AsyncFd<ProcEvents>,
    root: u32,
    /// By executable file (a rebuilt file is another one); `None`: not traced
    /// (already noted).
    executables: HashMap<FileStamp, Option<Planned>>,
    followed: HashSet<u32>,
}

impl Follower {
    /// Watches execs and exits from now on (before the root child is released);
    /// inside a tokio runtime.
    pub fn start(session: &mut Session, root: u32) -> Result<Self> {
        let events = crate::sys::when_readable(session.tracer.watch_processes()?)?;
        session.tracer.follow_descendants(root)?;
        Ok(Self { events, root, executables: HashMap::new(), followed: HashSet::new() })
    }

    /// Completes when events may wait (then [`Self::handle_events`]).
    pub async fn readable(&mut self) {
        // Cleared before the drain: an event after it wakes the loop again.
        if let Ok(mut ready) = self.events.readable_mut().await {
            ready.clear_ready();
        }
    }

    /// Handles the events that arrived.
    pub fn handle_events(&mut self, session: &mut Session) {
        while let Some((kind, pid)) = self.events.get_mut().next_event() {
            match kind {
                ProcEventKind::Exec => {
                    self.exec(session, pid);
                    // Held at its exec by the kernel side: its probes are up (or it is
                    // not traced), it runs on.
                    session.tracer.continue_held(pid);
                }
                ProcEventKind::Exit => self.exit(session, pid),
            }
        }
    }

    fn exit(&mut self, session: &mut Session, pid: u32) {
        if self.followed.remove(&pid)
            && let Err(e) = session.drop_child(pid)
        {
            tracing::warn!("pid {pid} exited but is still traced: {e:#}");
        }
    }

    fn exec(&mut self, session: &mut Session, pid: u32) {
        if pid == self.root || !descends_from(pid, self.root) {
            return;
        }
        // It ran something else before: that program is gone.
        self.exit(session, pid);
        let (Ok(file), Ok(path)) = (procfs::file_of(pid), procfs::exe(pid)) else { return };
        let planned = self.executables.entry(file).or_insert_with(|| plan(pid, path, &session.settings));
        let Some(p) = planned else { return };
        match session.add_child(pid, &p.path, &p.binary, &p.plan, p.config) {
            Ok(probes) => {
                self.followed.insert(pid);
                tracing::info!("following pid {pid}: {} ({}), {probes} probes", p.path.display(), p.binary.go_version());
            }
            // Gone already, or its probes could not be placed: the others carry on.
            Err(e) => tracing::warn!("not following pid {pid} ({}): {e:#}", p.path.display()),
        }
    }
}

/// Opens and plans the executable of `pid`; `None` (with a one-line note) when it is
/// not a Go program ghostrace can trace.
fn plan(pid: u32, path: PathBuf, settings: &probes::Settings) -> Option<Planned> {
    match probes::prepare_target(&procfs::exe_link(pid), settings) {
        Ok(Target { binary, plan, config }) => Some(Planned { path, binary: Arc::new(binary), plan, config }),
        Err(TargetError::NotGo(_)) => {
            tracing::warn!("pid {pid} runs {}, not a Go program: not followed", path.display());
            None
        }
        Err(e) => {
            tracing::warn!("not following pid {pid} ({}): {e}", path.display());
            None
        }
    }
}

/// Whether `root` is an ancestor of `pid` (through /proc/PID/stat's parent pids).
fn descends_from(mut pid: u32, root: u32) -> bool {
    for _ in 0..MAX_DEPTH {
        match procfs::parent_of(pid) {
            Some(parent) if parent == root => return true,
            Some(parent) if parent > 1 => pid = parent,
            _ => return false,
        }
    }
    false
}
