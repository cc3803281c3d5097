//! A call into `runtime.mapiternext` / `runtime.mapIterNext`: one step of a `range`.

use aya_ebpf::{macros::uprobe, programs::ProbeContext};
use tracer_common::RecordKind;

use crate::{emit, maps::LAST_HIT, regs::args5};

/// `hiter.h` and `maps.Iter.m` both sit at +24 in the iterator.
const ITER_MAP_OFFSET: u64 = 24;

#[uprobe(multi)]
pub fn map_iter_next_call(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    let [iter, ..] = args5(&ctx);
    let Some(map) = emit::read_u64(iter.wrapping_add(ITER_MAP_OFFSET)) else { return 0 };
    if map == 0 {
        return 0;
    }
    let writing = crate::map_write_call::writing(&hit, map);
    let mut rec = hit.record(RecordKind::MapIterNext, [map, iter, writing, 0, 0]);
    hit.send_on_transition(&ctx, &LAST_HIT, &hit.key(RecordKind::MapWrite, map), &mut rec, writing != 0);
    0
}
