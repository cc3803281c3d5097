//! A call into `runtime.mapiternext` / `runtime.mapIterNext`: one step of a `range`.

use aya_ebpf::{programs::ProbeContext};
use tracer_common::{RECORD_REPLAYED, RecordKind};

use crate::{
    emit::{self, Hit},
    maps::{LAST_HIT, OWN_RANGES, OwnRange, unseen_until},
    regs::args5,
};

/// `hiter.h` and `maps.Iter.m` both sit at +24 in the iterator.
const ITER_MAP_OFFSET: u64 = 24;

crate::uprobe_twins!(map_iter_next_call, map_iter_next_call_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    let [iter, ..] = args5(&ctx);
    let Some(map) = emit::read_u64(iter.wrapping_add(ITER_MAP_OFFSET)) else { return 0 };
    if map == 0 {
        return 0;
    }
    let writing = crate::map_write_call::writing(&hit, map);
    let unseen = unseen_until(hit.probe);
    let mut rec = hit.record(RecordKind::MapIterNext, [map, iter, writing, unseen, 0]);
    let in_range_write = own_range_step(&ctx, &hit, map, iter, &rec);
    hit.send_on_transition(&ctx, &LAST_HIT, &hit.key(RecordKind::MapWrite, map), &mut rec, writing != 0 || in_range_write, |_| emit::Relation::SameObject);
    0
}

/// A step of the goroutine's own range: a write it held since the previous step was
/// inside the range, and goes out now (the step, forced, right after it) if the map
/// has more entries than before it. An assignment to a key already there (the one
/// being visited, say) adds none and changes nothing the range will produce. Any other
/// step starts a new run, as does one after a range may have started unseen (the
/// run's step came before the start probe was back). Returns whether a write went out.
#[inline(always)]
fn own_range_step(ctx: &ProbeContext, hit: &Hit, map: u64, iter: u64, rec: &tracer_common::Record) -> bool {
    let key = hit.key(RecordKind::MapIterStart, map);
    if let Some(range) = OWN_RANGES.get_ptr_mut(&key) {
        // SAFETY: the entry stays valid while this program runs (RCU).
        let range = unsafe { &mut *range };
        if range.goid == hit.goid && range.iter == iter && range.write.ts_ns >= rec.args[3] {
            if range.pending == 0 {
                return false;
            }
            range.pending = 0;
            if crate::map_write_call::map_len(map) <= range.write.args[4] {
                return false;
            }
            let mut write = range.write;
            write.flags |= RECORD_REPLAYED;
            range.reported = [write.pc, range.reported[0]];
            hit.send(ctx, &mut write);
            return true;
        }
    }
    let range = OwnRange { goid: hit.goid, iter, pending: 0, write: *rec, reported: [0; 2] };
    crate::log::update(OWN_RANGES.insert(&key, &range, 0), "OWN_RANGES");
    false
}
