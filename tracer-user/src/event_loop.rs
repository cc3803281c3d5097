//! What the tokio event loops of the daemon, `run` and `attach` share: SIGINT and
//! SIGTERM as one request to stop (probes are detached, never left behind), the
//! signals `run` passes on to its child, and an optional deadline.

use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    time::{Instant, sleep_until},
};

/// SIGINT and SIGTERM, caught from creation on (inside a runtime).
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Completes when either arrives.
    pub async fn requested(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Completes at `at`, or never.
pub async fn until(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What `run` hears while its child lives. Caught from creation on, before the child
/// is forked: ghostrace must outlive the child to detach its probes.
pub struct ChildSignals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
    child: Signal,
}

/// What a signal asks of `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Pass it on to the child, whose exit status then tells.
    Forward(i32),
    /// Read the budget file again (SIGHUP, where one is given).
    Reload,
    /// The child may have exited (SIGCHLD).
    ChildChanged,
    /// SIGINT: a terminal sends it to the whole process group, the child included.
    Ignored,
}

impl ChildSignals {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
            child: signal(SignalKind::child())?,
        })
    }

    /// The next signal; SIGHUP reloads where `reload_on_hangup`, else goes to the child.
    pub async fn next(&mut self, reload_on_hangup: bool) -> Heard {
        tokio::select! {
            _ = self.terminate.recv() => Heard::Forward(libc::SIGTERM),
            _ = self.hangup.recv() => if reload_on_hangup { Heard::Reload } else { Heard::Forward(libc::SIGHUP) },
            _ = self.child.recv() => Heard::ChildChanged,
            _ = self.interrupt.recv() => Heard::Ignored,
        }
    }

    /// A signal already received, if any (without waiting).
    pub async fn pending(&mut self, reload_on_hangup: bool) -> Option<Heard> {
        tokio::select! {
            biased;
            heard = self.next(reload_on_hangup) => Some(heard),
            () = std::future::ready(()) => None,
        }
    }
}
