//! The traced child process: started held at a gate so that it cannot run before
//! the probes are attached, waited for, and sent the signals ghostrace receives
//! (`event_loop::ChildSignals` catches them).
#![forbid(unsafe_code)]

use std::{
    ffi::{CString, OsStr, OsString},
    io::{self, Write},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::{ffi::OsStrExt, process::ExitStatusExt},
    },
    path::Path,
    process::ExitStatus,
};

use thiserror::Error;

use crate::sys;

#[derive(Debug, Error)]
pub enum ChildError {
    #[error("cannot start {program}: {source}")]
    Spawn { program: String, #[source] source: std::io::Error },
    #[error("cannot release {pid} from its start gate: {source}")]
    Release { pid: u32, #[source] source: std::io::Error },
    #[error("waiting for {pid} failed: {source}")]
    Wait { pid: u32, #[source] source: std::io::Error },
}

/// A started child still held before `exec`.
pub struct GatedChild {
    pid: libc::pid_t,
    gate: Option<std::fs::File>,
    /// Read end of a close-on-exec pipe whose only writer is the child: end of file
    /// once it has exec'd (or died).
    exec_seen: Option<std::io::PipeReader>,
    reaped: bool,
}

/// Forks and holds the child before `exec` until [`GatedChild::release`]. If
/// ghostrace dies first, the gate closes and the child exits without running.
/// (`std::process::Command` cannot do this: `spawn` waits until the child has
/// exec'd.)
pub fn spawn_gated(program: &Path, argv0: &OsStr, args: &[OsString]) -> Result<GatedChild, ChildError> {
    let spawn_err = |source| ChildError::Spawn { program: program.display().to_string(), source };
    let cstr = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| spawn_err(io::Error::from(io::ErrorKind::InvalidInput)));
    // Everything the child needs is allocated before fork: it may not allocate after.
    let path = cstr(program.as_os_str())?;
    let argv: Vec<CString> = std::iter::once(cstr(argv0)).chain(args.iter().map(|a| cstr(a))).collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let (gate_read, gate_write) = std::io::pipe().map_err(spawn_err)?;
    let (exec_seen, exec_notify) = std::io::pipe().map_err(spawn_err)?;
    let pid = sys::fork_gated_exec(&path, &argv_ptrs, gate_read.as_raw_fd(), gate_write.as_raw_fd()).map_err(spawn_err)?;
    drop((gate_read, exec_notify));
    Ok(GatedChild { pid, gate: Some(OwnedFd::from(gate_write).into()), exec_seen: Some(exec_seen), reaped: false })
}

impl GatedChild {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Lets the child `exec` its program. A child that died while held (killed by
    /// someone else: the gate's reader is gone) is not an error: waiting for it
    /// reports how it ended.
    pub fn release(&mut self) -> Result<(), ChildError> {
        let pid = self.pid();
        let mut gate = self.gate.take().expect("released once");
        match gate.write_all(&[1]) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(|source| ChildError::Release { pid, source }),
        }
    }

    /// After [`Self::release`]: returns once the child runs its program (or has died),
    /// when /proc shows the new program's process.
    pub fn wait_exec(&mut self) {
        if let Some(mut pipe) = self.exec_seen.take() {
            // Nothing is ever written: the read ends when the last writer is closed.
            let _ = io::Read::read(&mut pipe, &mut [0u8]);
        }
    }

    /// The child's status if it has exited (reaped then), without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, ChildError> {
        if self.reaped {
            return Ok(None);
        }
        let status = sys::try_wait_child(self.pid).map_err(|source| ChildError::Wait { pid: self.pid(), source })?;
        self.reaped = status.is_some();
        Ok(status.map(ExitStatus::from_raw))
    }

    /// Sends `sig` to the child, held or running, unless it has been reaped (its pid
    /// may be another process's by then).
    pub fn signal(&self, sig: libc::c_int) {
        if !self.reaped {
            sys::send_signal(self.pid, sig);
        }
    }
}

impl Drop for GatedChild {
    fn drop(&mut self) {
        // Never leave a child held at the gate: closing it makes the child exit, and
        // reaping it leaves no zombie.
        if self.gate.take().is_some() && !self.reaped {
            let _ = sys::wait_child(self.pid);
        }
    }
}

/// The exit code a shell would report for `status`.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    sys::process_exists(pid)
}
