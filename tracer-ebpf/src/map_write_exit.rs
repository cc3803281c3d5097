//! The end of a call into `mapassign*`, `mapdelete*` or `mapclear`: the goroutine's
//! map write is over. Placed only because `map_concurrent_write` needs the end of
//! every write interval: at the first emulated instruction straight-line code
//! reaches after the call without synchronizing with anything (the interval ends
//! later, but no other goroutine can be ordered between), else on the instruction
//! after the call, rarely emulated (a full-price trap).

use aya_ebpf::programs::ProbeContext;
use tracer_common::{Counter, RecordKind};

use crate::{
    emit,
    maps::{IN_WRITE, take_writing_map},
};

crate::uprobe_twins!(map_write_exit, map_write_exit_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    emit::count(hit.probe, Counter::Filtered);
    let map = take_writing_map(&hit.goroutine_key());
    if map != 0 {
        end_write(&hit.key(RecordKind::MapWriteOverlap, map), hit.goid);
    }
    0
}

/// Ends the map's write in progress if it is `goid`'s (a later writer took the slot
/// otherwise, and that one ends with its own exit), leaving the slot for the map's
/// next write.
#[inline(always)]
pub fn end_write(key: &crate::maps::ObjectKey, goid: u64) {
    if let Some(slot) = IN_WRITE.get_ptr_mut(key) {
        // SAFETY: the entry stays valid while this program runs (RCU); the word is
        // only ever accessed atomically.
        let _ = unsafe { crate::atomic::compare_exchange(&raw mut (*slot).writer, goid, 0) };
    }
}
