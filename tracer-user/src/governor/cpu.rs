//! ghostrace's CPU time spent switching probes (the traced processes' own is
//! read by `procfs::cpu_seconds`).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use super::control::{self, Switching};

/// ghostrace's CPU time spent switching probes, in ns: added by the governor's
/// thread as it attaches and by the threads that close links.
#[derive(Default)]
pub(super) struct SwitchCpu {
    /// Moving units in and out of the resident links.
    pub(super) moves: Arc<AtomicU64>,
    /// Opening and closing windows.
    pub(super) windows: Arc<AtomicU64>,
    /// Both, as read at the last cycle's end.
    seen: u64,
    /// Probes switched by windows since the last cycle's end, and their CPU then.
    pub(super) window_probes: u64,
    window_seen: u64,
    /// CPU seconds per probe switched by a window, as measured so far.
    per_probe_s: f64,
}

impl SwitchCpu {
    /// CPU seconds spent switching since the last look, and the cost per switched probe.
    pub(super) fn cycle(&mut self) -> Switching {
        let (moves, windows) = (self.moves.load(Ordering::Relaxed), self.windows.load(Ordering::Relaxed));
        let all = moves + windows;
        let cpu_s = all.saturating_sub(self.seen) as f64 / 1e9;
        self.seen = all;
        // Closing a link finishes on its own thread a little later: a mean over
        // several cycles' worth of switches.
        if self.window_probes >= 64 {
            let measured = windows.saturating_sub(self.window_seen) as f64 / 1e9 / self.window_probes as f64;
            self.per_probe_s = if self.per_probe_s > 0.0 { 0.5 * (self.per_probe_s + measured) } else { measured };
            (self.window_probes, self.window_seen) = (0, windows);
        }
        let per_probe_s = if self.per_probe_s > 0.0 { self.per_probe_s } else { control::SWITCH_COST_PRIOR_S };
        Switching { cpu_s, per_probe_s }
    }
}
