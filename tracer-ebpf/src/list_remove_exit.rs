//! An exit of an inlined `(*list.List).Remove(e)` body (or the first emulated
//! instruction after it that no other goroutine can be ordered before).

use aya_ebpf::{programs::ProbeContext};
use tracer_common::{Counter, RecordKind};

use crate::{
    emit,
    maps::{IN_REMOVE, REMOVING},
};

crate::uprobe_twins!(list_remove_exit, list_remove_exit_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    let gkey = hit.goroutine_key();
    // SAFETY: the value is copied out at once.
    let Some(list) = (unsafe { REMOVING.get(&gkey) }).copied() else { return 0 };
    let _ = REMOVING.remove(&gkey);
    let key = hit.key(RecordKind::ListRemoveEnter, list);
    // The exit matters only when the enter did: it was sent, or another goroutine
    // entered meanwhile (so this one's enter went out with that transition).
    let (matters, ours) = match IN_REMOVE.get_ptr(&key) {
        // SAFETY: read-only copy of an entry that stays valid while this program runs.
        Some(held) => unsafe {
            let ours = (*held).rec.goid == hit.goid;
            (!ours || (*held).sent != 0, ours)
        },
        None => (false, false),
    };
    if ours {
        let _ = IN_REMOVE.remove(&key);
    }
    if matters || hit.sampled {
        let mut rec = hit.record(RecordKind::ListRemoveExit, [list, 0, 0, 0, 0]);
        hit.send(&ctx, &mut rec);
    } else {
        emit::count(hit.probe, Counter::Filtered);
    }
    0
}
