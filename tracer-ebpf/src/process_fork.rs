//! `sched/sched_process_fork`: a process forked; a child of a followed process is
//! followed too, so that `run` can hold it at its exec.

use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext};
use tracer_common::Followed;

use crate::maps::{FOLLOWED, FORK_CHILD_PID_AT};

#[tracepoint]
pub fn process_fork(ctx: TracePointContext) -> u32 {
    // The parent is the one forking.
    let parent = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: the value is only tested for presence.
    if unsafe { FOLLOWED.get(&parent) }.is_none() {
        return 0;
    }
    let Some(&at) = FORK_CHILD_PID_AT.get(0) else { return 0 };
    if at == 0 {
        return 0;
    }
    // SAFETY: read_at copies from the record with bpf_probe_read, which checks the address.
    if let Ok(child) = unsafe { ctx.read_at::<i32>(at as usize) } {
        crate::log::update(FOLLOWED.insert(&(child as u32), &(Followed::Held as u32), 0), "FOLLOWED");
    }
    0
}
