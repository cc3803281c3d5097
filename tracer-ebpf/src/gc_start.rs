//! `runtime.gcStart`: a garbage-collection cycle may start. Counted per process so
//! that slice records can tell two lives of one address apart.

use aya_ebpf::{EbpfContext, macros::uprobe, programs::ProbeContext};

use crate::maps::{GC_CYCLES, PROCS};

#[uprobe(multi)]
pub fn gc_start(ctx: ProbeContext) -> u32 {
    let tgid = ctx.tgid();
    if PROCS.get_ptr(&tgid).is_none() {
        return 0;
    }
    match GC_CYCLES.get_ptr_mut(&tgid) {
        // SAFETY: the pointer is a live map value. Two racing entries may lose one
        // increment, never both: the runtime starts at most one cycle at a time
        // (work.startSema), so every real cycle start still changes the count.
        Some(count) => unsafe { *count += 1 },
        None => {
            let _ = GC_CYCLES.insert(&tgid, &1, 0);
        }
    }
    0
}
