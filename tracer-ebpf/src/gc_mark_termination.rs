//! `runtime.gcMarkTermination`: a GC cycle's marking is done (the world is stopped)
//! and its sweep, the only thing that frees heap objects, follows. Counted per process
//! so that slice records can tell two lives of one address apart.

use aya_ebpf::{EbpfContext, macros::uprobe, programs::ProbeContext};

use crate::maps::{GC_CYCLES, PROCS};

#[uprobe(multi)]
pub fn gc_mark_termination(ctx: ProbeContext) -> u32 {
    let tgid = ctx.tgid();
    if PROCS.get_ptr(&tgid).is_none() {
        return 0;
    }
    match GC_CYCLES.get_ptr_mut(&tgid) {
        // SAFETY: the pointer is a live map value; the runtime runs one mark
        // termination at a time, with the world stopped, so nothing races this.
        Some(count) => unsafe { *count += 1 },
        None => {
            let _ = GC_CYCLES.insert(&tgid, &1, 0);
        }
    }
    0
}
