//! The traced child process: started held at a gate so that it cannot run before
//! the probes are attached, waited for, and sent the signals ghostrace receives.
//! The few libc calls live here, each with its reason.

use std::{
    ffi::OsString,
    io::Write,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::process::{CommandExt, ExitStatusExt},
    },
    process::{Child, Command, ExitStatus},
    sync::atomic::{AtomicI32, Ordering},
};

use thiserror::Error;

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
    child: Child,
    gate: Option<std::fs::File>,
}

/// Forks and holds the child before `exec` until [`GatedChild::release`]. If
/// ghostrace dies first, the gate closes and the child exits without running.
pub fn spawn_gated(program: &std::path::Path, args: &[OsString]) -> Result<GatedChild, ChildError> {
    let spawn_err = |source| ChildError::Spawn { program: program.display().to_string(), source };
    let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
    let reader_fd: OwnedFd = reader.into();
    let writer: std::fs::File = OwnedFd::from(writer).into();
    let (read_end, write_end) = (reader_fd.as_raw_fd(), writer.as_raw_fd());
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: between fork and exec the closure only calls async-signal-safe
    // functions (close, read, _exit) on descriptors inherited from the parent.
    unsafe {
        cmd.pre_exec(move || {
            // The child's copy of the write end would keep the gate open forever.
            libc::close(write_end);
            let mut byte = 0u8;
            if libc::read(read_end, (&raw mut byte).cast(), 1) != 1 {
                libc::_exit(126);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(spawn_err)?;
    drop(reader_fd);
    Ok(GatedChild { child, gate: Some(writer) })
}

impl GatedChild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the child `exec` its program.
    pub fn release(&mut self) -> Result<(), ChildError> {
        let pid = self.pid();
        let mut gate = self.gate.take().expect("released once");
        gate.write_all(&[1]).map_err(|source| ChildError::Release { pid, source })
    }

    /// Waits for the child, forwarding SIGTERM/SIGHUP to it meanwhile (SIGINT from a
    /// terminal already reaches the whole process group, so ghostrace ignores it).
    pub fn wait(mut self) -> Result<ExitStatus, ChildError> {
        let pid = self.pid();
        forward_signals_to(pid as i32);
        let status = self.child.wait().map_err(|source| ChildError::Wait { pid, source });
        forward_signals_to(0);
        status
    }
}

impl Drop for GatedChild {
    fn drop(&mut self) {
        // Never leave a child held at the gate: closing it makes the child exit.
        self.gate.take();
    }
}

/// The exit code a shell would report for `status`.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn forward_signals_to(pid: i32) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    let handler = if pid > 0 { forward as *const () as libc::sighandler_t } else { libc::SIG_DFL };
    // SAFETY: installing handlers that only call async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGHUP, handler);
        libc::signal(libc::SIGINT, if pid > 0 { libc::SIG_IGN } else { libc::SIG_DFL });
    }
}

/// Set by SIGINT/SIGTERM while `attach` traces a process it did not start.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn request_stop(_sig: libc::c_int) {
    STOP.store(1, Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM request a clean stop instead of killing ghostrace.
pub fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, request_stop as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, request_stop as *const () as libc::sighandler_t);
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed) != 0
}

/// Whether a process exists (signal 0 probes without sending anything).
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 sends nothing.
    unsafe { libc::kill(pid as i32, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Waits until `fd` is readable or `timeout_ms` passes.
pub fn poll_readable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) > 0 }
}
