//! The traced child process: started held at a gate so that it cannot run before
//! the probes are attached, waited for, and sent the signals ghostrace receives.
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
    sync::atomic::{AtomicI32, Ordering},
};

use thiserror::Error;

use crate::sys::{self, SignalAction};

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
    // From now on ghostrace must outlive the child to detach its probes: a SIGTERM
    // meant for it goes to the child, held or running, whose status then tells.
    forward_signals_to(pid);
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
        // From here on ghostrace must outlive the child to detach: a SIGTERM goes to it.
        forward_signals_to(self.pid);
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

    /// Waits for the child, forwarding SIGTERM/SIGHUP to it meanwhile (SIGINT from a
    /// terminal already reaches the whole process group, so ghostrace ignores it;
    /// SIGHUP stays ghostrace's own where it reloads a budget file).
    pub fn wait(self) -> Result<ExitStatus, ChildError> {
        self.wait_by(sys::wait_child)
    }

    /// [`GatedChild::wait`], calling `between` until the child exits; `between` should
    /// return within a fraction of a second (it sets how soon the exit is seen).
    pub fn wait_with(self, mut between: impl FnMut()) -> Result<ExitStatus, ChildError> {
        self.wait_by(|pid| loop {
            match sys::try_wait_child(pid)? {
                Some(status) => return Ok(status),
                None => between(),
            }
        })
    }

    fn wait_by(mut self, wait: impl FnOnce(libc::pid_t) -> io::Result<i32>) -> Result<ExitStatus, ChildError> {
        forward_signals_to(self.pid);
        let status = wait(self.pid).map(ExitStatus::from_raw).map_err(|source| ChildError::Wait { pid: self.pid(), source });
        forward_signals_to(0);
        self.reaped = true;
        status
    }
}

impl Drop for GatedChild {
    fn drop(&mut self) {
        // Never leave a child held at the gate: closing it makes the child exit, and
        // reaping it leaves no zombie.
        if self.gate.take().is_some() && !self.reaped {
            let _ = sys::wait_child(self.pid);
            forward_signals_to(0);
        }
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
        sys::send_signal(pid, sig);
    }
}

fn forward_signals_to(pid: libc::pid_t) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    let (forwarded, interrupt) =
        if pid > 0 { (SignalAction::Handle(forward), SignalAction::Ignore) } else { (SignalAction::Default, SignalAction::Default) };
    sys::set_signal_action(libc::SIGTERM, forwarded);
    if RELOAD_ON_HUP.load(Ordering::Relaxed) == 0 {
        sys::set_signal_action(libc::SIGHUP, forwarded);
    }
    sys::set_signal_action(libc::SIGINT, interrupt);
}

/// Set by SIGHUP where it asks for a reload (the daemon; run/attach with a budget file).
static RELOAD: AtomicI32 = AtomicI32::new(0);

/// SIGHUP asks for a reload, so `run` does not forward it to its child.
static RELOAD_ON_HUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn request_reload(_sig: libc::c_int) {
    RELOAD.store(1, Ordering::Relaxed);
}

/// Makes SIGHUP request a reload of the settings kept in files instead of stopping ghostrace.
pub fn reload_on_sighup() {
    RELOAD_ON_HUP.store(1, Ordering::Relaxed);
    sys::set_signal_action(libc::SIGHUP, SignalAction::Handle(request_reload));
}

/// Whether SIGHUP arrived since the last call.
pub fn reload_requested() -> bool {
    RELOAD.swap(0, Ordering::Relaxed) != 0
}

/// Whether a process exists.
pub fn alive(pid: u32) -> bool {
    sys::process_exists(pid)
}

/// Waits until `fd` is readable or `timeout_ms` passes.
pub fn poll_readable(fd: i32, timeout_ms: i32) -> bool {
    sys::poll_readable(fd, timeout_ms)
}
