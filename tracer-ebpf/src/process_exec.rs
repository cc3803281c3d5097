//! `sched/sched_process_exec`: a process started a new program; the daemon decides
//! whether it is a Go program to trace, and a descendant `run` follows is held
//! until its probes are up.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_send_signal},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{Followed, ProcEvent, ProcEventKind};

use crate::maps::{FOLLOWED, PROC_EVENTS};

/// SIGSTOP on Linux.
const SIGSTOP: u32 = 19;

#[tracepoint]
pub fn process_exec(_ctx: TracePointContext) -> u32 {
    // After exec the caller is its thread group's leader: the tgid is the pid.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // Stopped before its first instruction (the signal is taken on the way back to
    // user space); user space continues it once its probes are attached. Sent
    // before the event, so that the continuing signal cannot come first.
    // SAFETY: the value is copied out at once.
    if unsafe { FOLLOWED.get(&tgid) }.copied() == Some(Followed::Held as u32) {
        // SAFETY: bpf_send_signal signals the current process, which is not a kernel thread here.
        let _ = unsafe { bpf_send_signal(SIGSTOP) };
    }
    let _ = PROC_EVENTS.output(&ProcEvent { kind: ProcEventKind::Exec as u32, tgid }, 0);
    0
}
