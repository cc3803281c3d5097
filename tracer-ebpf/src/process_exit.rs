//! `sched/sched_process_exit`: a thread exited; the leader's exit ends the process,
//! and the daemon forgets it.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::{ProcEvent, ProcEventKind};

use crate::maps::PROC_EVENTS;

#[tracepoint]
pub fn process_exit(_ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let (tgid, pid) = ((id >> 32) as u32, id as u32);
    // Other threads exit all the time; only the leader's exit matters.
    if tgid == pid {
        let _ = PROC_EVENTS.output(&ProcEvent { kind: ProcEventKind::Exit as u32, tgid }, 0);
    }
    0
}
