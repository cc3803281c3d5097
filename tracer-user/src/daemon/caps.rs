//! The capabilities the daemon needs, checked at start-up so that a missing one is
//! named in one line instead of showing up later as processes silently not traced.
//! docs/deployment.md says why each is needed; tests/daemon_capabilities.rs
//! measures that these are enough and that each is necessary.
#![forbid(unsafe_code)]

/// A Linux capability the daemon needs (numbers from linux/capability.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub name: &'static str,
    bit: u32,
    /// What it is needed for.
    pub why: &'static str,
}

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Every capability the daemon needs.
pub const NEEDED: [Capability; 3] = [
    Capability { name: "CAP_BPF", bit: CAP_BPF, why: "create BPF maps and load the programs" },
    Capability {
        name: "CAP_PERFMON",
        bit: CAP_PERFMON,
        why: "attach uprobes and the exec tracepoint, read user memory and stacks",
    },
    Capability {
        name: "CAP_SYS_PTRACE",
        bit: CAP_SYS_PTRACE,
        why: "open other processes' /proc/PID/exe, cgroup and root",
    },
];

/// The needed capabilities missing from an effective mask. CAP_SYS_ADMIN stands in
/// for CAP_BPF and CAP_PERFMON, as the kernel allows (and as kernels before 5.8,
/// which lack both, require).
pub fn missing(mask: u64) -> Vec<Capability> {
    let has = |bit: u32| mask & (1 << bit) != 0;
    NEEDED.into_iter().filter(|c| !(has(c.bit) || (c.bit != CAP_SYS_PTRACE && has(CAP_SYS_ADMIN)))).collect()
}

/// The needed capabilities this process lacks; empty when /proc cannot tell (the
/// kernel will then say what it refuses).
pub fn missing_here() -> Vec<Capability> {
    crate::procfs::status(std::process::id()).map(|s| missing(s.capeff)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(mask: u64) -> Vec<&'static str> {
        missing(mask).iter().map(|c| c.name).collect()
    }

    #[test]
    fn names_what_is_missing() {
        let all = (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_PTRACE);
        assert!(names(all).is_empty());
        assert!(names(u64::MAX).is_empty());
        assert_eq!(names(all & !(1 << CAP_PERFMON)), ["CAP_PERFMON"]);
        assert_eq!(names(0), ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE"]);
        // CAP_SYS_ADMIN covers BPF and perf, never ptrace.
        assert_eq!(names(1 << CAP_SYS_ADMIN), ["CAP_SYS_PTRACE"]);
    }
}
