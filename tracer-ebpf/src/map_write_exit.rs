//! The end of a call into `mapassign*`, `mapdelete*` or `mapclear`: the goroutine's
//! map write is over. Placed only because `map_concurrent_write` needs the end of
//! every write interval: at the first emulated instruction straight-line code
//! reaches after the call without synchronizing with anything (the interval ends
//! later, but no other goroutine can be ordered between), else on the instruction
//! after the call, rarely emulated (a full-price trap).

use aya_ebpf::{macros::uprobe, programs::ProbeContext};
use tracer_common::{Counter, RecordKind};

use crate::{
    emit,
    maps::{GoroutineKey, IN_WRITE, WRITING_MAP},
};

#[uprobe(multi)]
pub fn map_write_exit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    emit::count(hit.probe, Counter::Filtered);
    let gkey = GoroutineKey { tgid: hit.tgid, _pad: 0, goid: hit.goid };
    // SAFETY: the value is copied out at once.
    let Some(map) = (unsafe { WRITING_MAP.get(&gkey) }).copied() else { return 0 };
    let _ = WRITING_MAP.remove(&gkey);
    end_write(&hit.key(RecordKind::MapWriteOverlap, map), hit.goid);
    0
}

/// Drops the map's write in progress if it is `goid`'s (a later writer's entry
/// replaced it otherwise, and that one ends with its own exit).
#[inline(always)]
pub fn end_write(key: &crate::maps::ObjectKey, goid: u64) {
    // SAFETY: read-only copy of an entry that stays valid while this program runs.
    let ours = IN_WRITE.get_ptr(key).is_some_and(|held| unsafe { (*held).rec.goid } == goid);
    if ours {
        let _ = IN_WRITE.remove(key);
    }
}
