//! A call into `runtime.growslice` (or a sibling with the same leading arguments):
//! `append` outgrew its backing array.

use aya_ebpf::{macros::uprobe, programs::ProbeContext};
use tracer_common::{GrowAbi, RecordKind};

use crate::{emit, maps::LAST_HIT, regs::args5};

#[uprobe(multi)]
pub fn slice_grow_call(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // Go 1.19: growslice(et, old slice, cap); Go 1.20+: growslice(oldPtr, newLen, oldCap, num, et).
    let [ax, bx, cx, di, si] = args5(&ctx);
    let (old_ptr, old_len, old_cap, new_len, et) = if hit.cfg.grow_abi == GrowAbi::Go119 as u32 {
        (bx, cx, di, si, ax)
    } else {
        (ax, bx.wrapping_sub(di), cx, bx, si)
    };
    // _type.size is the first word of every type descriptor.
    let elem_size = emit::read_u64(et).unwrap_or(0);
    let mut rec = hit.record(RecordKind::SliceGrow, [old_ptr, old_len, old_cap, new_len, elem_size]);
    if old_cap == 0 || elem_size == 0 {
        // Empty arrays all share runtime.zerobase: no identity to follow.
        hit.send_if_sampled(&ctx, &mut rec);
        return 0;
    }
    let end = old_ptr.wrapping_add(old_cap.wrapping_mul(elem_size));
    hit.send_on_transition(&ctx, &LAST_HIT, &hit.key(RecordKind::SliceGrow, end), &mut rec, false);
    0
}
