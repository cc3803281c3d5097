//! The two ways of putting a program on probe points, chosen once when the programs
//! are loaded: one uprobe-multi link for many points (Linux 6.6+), or one perf-event
//! link per point (older kernels; one file descriptor each). The eBPF object holds
//! each program twice, one per path, over one body.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::programs::{
    UProbe,
    uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
};

use super::{
    PROGRAMS, ProbeError, Tracer,
    kernel::{Found, KernelSupport},
};
use crate::sys::thread_cpu_ns;

/// Environment variable forcing an attach path, `multi` or `per-probe`, instead of
/// the one the kernel's features choose (tests run both on one kernel).
pub const ATTACH_PATH_VAR: &str = "GHOSTRACE_ATTACH_PATH";

/// How probes are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// One `BPF_TRACE_UPROBE_MULTI` link for many points.
    Multi,
    /// One perf-event uprobe and BPF link per point.
    PerProbe,
}

impl AttachMode {
    /// Forced by [`ATTACH_PATH_VAR`], else the one `kernel` allows; the error is the
    /// one line for a kernel ghostrace cannot trace on.
    pub fn choose(kernel: impl FnOnce() -> KernelSupport) -> Result<Self, ProbeError> {
        if let Some(forced) = std::env::var_os(ATTACH_PATH_VAR) {
            return match forced.to_str() {
                Some("multi") => Ok(AttachMode::Multi),
                Some("per-probe") => Ok(AttachMode::PerProbe),
                _ => Err(ProbeError::Load(format!("{ATTACH_PATH_VAR} must be `multi` or `per-probe`, not {forced:?}"))),
            };
        }
        let kernel = kernel();
        kernel.attach_mode().map_err(|lack| match lack {
            // Unprivileged probes fail before they can tell anything.
            (_, Found::Unknown(why)) => ProbeError::refused(why.clone()),
            (missing, _) => ProbeError::KernelTooOld(super::kernel::too_old(&kernel.release, missing)),
        })
    }

    /// Its name (`ghostrace check`, the daemon's status).
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Multi => "multi",
            AttachMode::PerProbe => "per-probe",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            AttachMode::Multi => "multi (one uprobe-multi link per program and group of probes)",
            AttachMode::PerProbe => "per-probe (one perf-event link, and file descriptor, per probe)",
        }
    }

    /// The object's program that does what `program` (a name of [`PROGRAMS`]) does
    /// on this path.
    pub(super) fn program(self, program: &'static str) -> &'static str {
        self.program_named(program).unwrap_or(program)
    }

    pub(super) fn program_named(self, program: &str) -> Option<&'static str> {
        let &(multi, single) = PROGRAMS.iter().find(|p| p.0 == program)?;
        Some(if self == AttachMode::Multi { multi } else { single })
    }
}

/// The links of one [`Tracer::attach_points`] call.
pub(super) enum Attached {
    Multi(UProbeLinkId),
    /// One per point, in the order of the points.
    PerProbe(Vec<UProbeLinkId>),
}

impl Tracer {
    /// The loaded program doing what `program` does.
    fn uprobe(&mut self, program: &'static str) -> &mut UProbe {
        let name = self.mode.program(program);
        self.ebpf.program_mut(name).expect("loaded").try_into().expect("a uprobe")
    }

    /// Attaches `program` to `points` (file offset, cookie) of the file at `path`;
    /// `binary` names it in errors. Nothing stays attached when this fails.
    pub(super) fn attach_points(
        &mut self,
        program: &'static str,
        path: &Path,
        binary: &str,
        scope: UProbeScope,
        points: &[(u64, Option<u64>)],
    ) -> Result<Attached, ProbeError> {
        let point = |&(offset, cookie): &(u64, Option<u64>)| UProbeAttachPoint {
            location: UProbeAttachLocation::AbsoluteOffset(offset),
            cookie,
        };
        let failed = |e: aya::programs::ProgramError| {
            let (count, binary) = (points.len(), binary.to_string());
            if super::errno_in_chain(&e, &[libc::EMFILE, libc::ENFILE]) {
                return ProbeError::OpenFiles { program, count, binary };
            }
            ProbeError::Attach { program, count, binary, reason: super::chain(&e) }
        };
        let mode = self.mode;
        let uprobe = self.uprobe(program);
        match mode {
            AttachMode::Multi => uprobe.attach(points.iter().map(point), path, scope).map(Attached::Multi).map_err(failed),
            AttachMode::PerProbe => {
                let mut ids = Vec::with_capacity(points.len());
                for p in points {
                    match uprobe.attach([point(p)], path, scope) {
                        Ok(id) => ids.push(id),
                        Err(e) => {
                            self.detach_points(program, Attached::PerProbe(ids), &Default::default());
                            return Err(failed(e));
                        }
                    }
                }
                Ok(Attached::PerProbe(ids))
            }
        }
    }

    /// Closing a uprobe link takes its breakpoints out at once, then waits for a
    /// grace period (60–100 ms measured here) before returning: the links are
    /// closed on a thread of their own, which adds the CPU time it took to `cpu`
    /// (ns). On Linux 6.12+ each per-probe link's perf event waits a grace period
    /// of its own under a kernel-wide mutex (124 ms here): closing many in parallel
    /// gains nothing.
    pub(super) fn detach_points(&mut self, program: &'static str, attached: Attached, cpu: &Arc<AtomicU64>) {
        let uprobe = self.uprobe(program);
        let links: Vec<_> = match attached {
            Attached::Multi(id) => uprobe.take_link(id).into_iter().collect(),
            Attached::PerProbe(ids) => ids.into_iter().filter_map(|id| uprobe.take_link(id).ok()).collect(),
        };
        if links.is_empty() {
            return;
        }
        let cpu = cpu.clone();
        // If no thread can be started, the closure (and the links) are dropped here.
        let _ = std::thread::Builder::new().name("ghostrace-detach".into()).spawn(move || {
            let start = thread_cpu_ns();
            drop(links);
            cpu.fetch_add(thread_cpu_ns().saturating_sub(start), Ordering::Relaxed);
        });
    }
}
