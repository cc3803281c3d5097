//! `sched/sched_process_exec`: a process started a new program; the daemon decides
//! whether it is a Go program to trace.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::{ProcEvent, ProcEventKind};

use crate::maps::PROC_EVENTS;

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    // After exec the caller is its thread group's leader: the tgid is the pid.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let _ = PROC_EVENTS.output(&ProcEvent { kind: ProcEventKind::Exec as u32, tgid }, 0);
    0
}
