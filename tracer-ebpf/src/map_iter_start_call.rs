//! A call into `runtime.mapiterinit` / `runtime.mapIterStart`: a `range` over a map starts.

use aya_ebpf::{programs::ProbeContext};
use tracer_common::RecordKind;

use crate::{
    emit,
    maps::{LAST_HIT, OWN_RANGES, OwnRange},
    regs::args5,
};

crate::uprobe_twins!(map_iter_start_call, map_iter_start_call_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // (t *maptype, m *map, it *iterator) in both map layouts.
    let [_, map, iter, _, _] = args5(&ctx);
    if map == 0 {
        return 0;
    }
    let mut rec = hit.record(RecordKind::MapIterStart, [map, iter, 0, 0, 0]);
    let range = OwnRange { goid: hit.goid, iter, pending: 0, write: rec, reported: [0; 2] };
    crate::log::update(OWN_RANGES.insert(&hit.key(RecordKind::MapIterStart, map), &range, 0), "OWN_RANGES");
    hit.send_on_transition(&ctx, &LAST_HIT, &hit.key(RecordKind::MapWrite, map), &mut rec, false, |_| emit::Relation::SameObject);
    0
}
