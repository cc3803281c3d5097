//! A call into `mapassign*`, `mapdelete*` or `mapclear`: a map write starts.

use aya_ebpf::{macros::uprobe, programs::ProbeContext};
use tracer_common::RecordKind;

use crate::{
    emit::{self, Hit},
    maps::LAST_HIT,
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
    // A write right after this goroutine's own iteration step is a write during its
    // own range (info); anything after another goroutine's hit is a transition.
    let during_own_range = match LAST_HIT.get_ptr(&key) {
        // SAFETY: read-only copy of an entry that stays valid while this program runs.
        Some(prev) => unsafe {
            (*prev).rec.goid == hit.goid
                && ((*prev).rec.kind == RecordKind::MapIterNext as u16
                    || (*prev).rec.kind == RecordKind::MapIterStart as u16)
        },
        None => false,
    };
    hit.send_on_transition(&ctx, &LAST_HIT, &key, &mut rec, writing != 0 || during_own_range);
    0
}
