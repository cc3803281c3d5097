//! CPU time: the traced processes' own, and ghostrace's spent switching probes.

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

/// CPU seconds of `pid`'s live threads, in ns precision from each thread's
/// schedstat (a 20 ms cycle is two 10 ms ticks of /proc/PID/stat), else from
/// /proc/PID/stat (user + system, all threads, exited ones included).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let from_schedstat = std::fs::read_dir(format!("/proc/{pid}/task")).ok().and_then(|tasks| {
        let mut ns = 0u64;
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            ns += text.split_ascii_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(ns as f64 / 1e9)
    });
    from_schedstat.or_else(|| {
        let fields = crate::daemon::procfs::stat_fields(pid)?;
        // utime and stime are fields 14 and 15 (man 5 proc); field 3 is the first here.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) as f64 / crate::sys::clock_ticks_per_second() as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn own_cpu_time_is_read() {
        let start = cpu_seconds(std::process::id()).expect("own stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_seconds(std::process::id()).unwrap() > start);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
