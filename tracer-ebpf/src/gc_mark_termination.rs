//! `runtime.gcMarkTermination`: a GC cycle's marking is done (the world is stopped)
//! and its sweep, the only thing that frees heap objects, follows. Counted in the process's
//! `ProcConfig` so that slice records can tell two lives of one address apart.

use aya_ebpf::{EbpfContext, programs::ProbeContext};

use crate::maps::PROCS;

crate::uprobe_twins!(gc_mark_termination, gc_mark_termination_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    if let Some(cfg) = PROCS.get_ptr_mut(&ctx.tgid()) {
        // SAFETY: the pointer is a live map value; the runtime runs one mark
        // termination at a time, with the world stopped, so nothing races this.
        unsafe { (*cfg).gc_cycles += 1 };
    }
    0
}
