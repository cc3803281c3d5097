//! What a bench run costs, read from /proc without tracing anything: a process's own
//! CPU time and that of the children it reaped, final values included (read while
//! the process is a zombie, before the bench reaps it), and the load average.

use std::{
    process::{Child, ExitStatus},
    time::Duration,
};

use anyhow::{Context, Result};

/// Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux ABI).
const TICKS: f64 = 100.0;

/// How often a run's end is looked for: the wall time of a run is this precise.
const POLL: Duration = Duration::from_millis(5);

/// User and system CPU time, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    pub user: f64,
    pub sys: f64,
}

impl Cpu {
    pub fn total(self) -> f64 {
        self.user + self.sys
    }

    pub fn minus(self, earlier: Cpu) -> Cpu {
        Cpu { user: self.user - earlier.user, sys: self.sys - earlier.sys }
    }
}

/// One reading of /proc/PID/stat.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub zombie: bool,
    /// The process's threads, live and exited.
    pub own: Cpu,
    /// Children it waited for (a traced program, for `ghostrace run`).
    pub children: Cpu,
}

pub fn stat(pid: u32) -> Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_stat(&text).with_context(|| format!("parsing /proc/{pid}/stat: {text:?}"))
}

/// Fields after the command name (which may hold spaces and parentheses): state is
/// field 3, utime..cstime fields 14..17.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Option<f64> { Some(fields.get(i - 3)?.parse::<u64>().ok()? as f64 / TICKS) };
    Some(Stat {
        zombie: fields.first()? == &"Z",
        own: Cpu { user: tick(14)?, sys: tick(15)? },
        children: Cpu { user: tick(16)?, sys: tick(17)? },
    })
}

/// Waits until `child` has exited and returns its final reading: taken while it is
/// a zombie, so nothing it or its reaped children ran is missed.
pub fn final_stat(child: &mut Child) -> Result<(Stat, ExitStatus)> {
    let pid = child.id();
    let last = loop {
        let now = stat(pid)?;
        if now.zombie {
            break now;
        }
        std::thread::sleep(POLL);
    };
    Ok((last, child.wait()?))
}

/// The 1-, 5- and 15-minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The host's CPU time so far (all CPUs, in ticks): busy and in all. Load averages
/// count threads blocked in the kernel too (a tracer waiting on uprobe locks), so the
/// busy share says better how contended the CPUs were.
#[derive(Clone, Copy)]
pub struct HostCpu {
    busy: u64,
    total: u64,
}

pub fn host_cpu() -> HostCpu {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal guest guest_nice
    let ticks: Vec<u64> = text.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    HostCpu { busy: total.saturating_sub(idle), total }
}

impl HostCpu {
    /// Share of the host's CPU time that was busy since `earlier`; none over less
    /// than a tenth of a second of one CPU.
    pub fn busy_since(self, earlier: HostCpu) -> Option<f64> {
        let total = self.total.saturating_sub(earlier.total);
        (total >= 10).then(|| self.busy.saturating_sub(earlier.busy) as f64 / total as f64)
    }
}

/// What the host was doing around a measurement: the 1-minute load average and the
/// busy share of all CPUs since `since`.
pub fn contention(since: HostCpu) -> String {
    let load = load_average().split(' ').next().unwrap_or("?").to_string();
    match host_cpu().busy_since(since) {
        Some(busy) => format!("{load} ({:.0}% busy)", busy * 100.0),
        None => load,
    }
}

/// Resident set size in MiB (VmRSS), if the process is there.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches(" kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "42 (a (b) c) Z 1 42 42 0 -1 4194560 100 0 0 0 250 75 30 5 20 0 1 0 100 0 0";
        let s = parse_stat(line).expect("parses");
        assert!(s.zombie);
        assert_eq!(s.own, Cpu { user: 2.5, sys: 0.75 });
        assert_eq!(s.children, Cpu { user: 0.3, sys: 0.05 });
    }
}
