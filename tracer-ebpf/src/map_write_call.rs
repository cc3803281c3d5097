//! A call into `mapassign*`, `mapdelete*` or `mapclear`: a map write starts.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    macros::uprobe,
    programs::{ProbeContext, tracing::StackIdContext},
};
use tracer_common::{MapOp, Record, RecordKind};

use crate::{
    emit::{self, Hit},
    maps::{LAST_HIT, OWN_RANGES, STACKS},
    regs::args5,
};

/// The map's own "write in progress" flag (hmap.flags&hashWriting, maps.Map.writing).
#[inline(always)]
pub fn writing(hit: &Hit, map: u64) -> u64 {
    if hit.cfg.map_flag_mask == 0 {
        return 0;
    }
    let flags = emit::read_u8(map.wrapping_add(hit.cfg.map_flag_offset as u64)).unwrap_or(0);
    (flags as u32 & hit.cfg.map_flag_mask != 0) as u64
}

#[uprobe(multi)]
pub fn map_write_call(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // (t *maptype, m *map, key...) for every write entry point; the op rides in the cookie.
    let [_, map, ..] = args5(&ctx);
    if map == 0 {
        return 0;
    }
    let writing = writing(&hit, map);
    let mut rec = hit.record(RecordKind::MapWrite, [map, hit.aux[0] as u64, writing, 0, 0]);
    let key = hit.key(RecordKind::MapWrite, map);
    let sent = hit.send_on_transition(&ctx, &LAST_HIT, &key, &mut rec, writing != 0, |_| emit::Relation::SameObject);
    hold_if_in_own_range(&ctx, &hit, map, &rec, sent);
    0
}

/// A write by the goroutine whose own range over the map is in progress is held
/// until the range's next step shows the range went on (map_iter_next_call). Deletes
/// are not: deleting during one's own range is deterministic and idiomatic. A write
/// by any other goroutine ends the run.
#[inline(always)]
fn hold_if_in_own_range(ctx: &ProbeContext, hit: &Hit, map: u64, rec: &Record, sent: bool) {
    let key = hit.key(RecordKind::MapIterStart, map);
    let Some(range) = OWN_RANGES.get_ptr_mut(&key) else { return };
    // SAFETY: the entry stays valid while this program runs (RCU).
    let range = unsafe { &mut *range };
    if range.goid != hit.goid {
        let _ = OWN_RANGES.remove(&key);
        return;
    }
    if sent || range.pending != 0 || rec.args[1] == MapOp::Delete as u64 || range.reported[0] == rec.pc || range.reported[1] == rec.pc {
        return;
    }
    let mut held = *rec;
    held.kind = RecordKind::MapWriteInRange as u16;
    held.args[3] = range.iter;
    if hit.cfg.stacks != 0 {
        held.stack_id = ctx.get_stackid(&STACKS, BPF_F_USER_STACK as u64).unwrap_or(-1);
    }
    range.write = held;
    range.pending = 1;
}