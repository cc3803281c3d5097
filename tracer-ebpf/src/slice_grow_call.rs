//! A call into `runtime.growslice` (or a sibling with the same leading arguments):
//! `append` outgrew its backing array.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{helpers::bpf_probe_read_user, programs::ProbeContext};
use tracer_common::{GC_CYCLE_SHIFT, GrowAbi, RecordKind, filter};

use crate::{
    emit::{self, Relation},
    maps::{ELEM_SIZES, LAST_GROWTH},
    regs::{self, args5},
};

/// `g.stack` ({lo, hi}) is the first field of `runtime.g` in Go 1.19–1.27
/// (runtime/runtime2.go).
#[inline(always)]
fn on_own_stack(ctx: &ProbeContext, ptr: u64) -> bool {
    // SAFETY: bpf_probe_read_user checks the address and fails instead of faulting.
    match unsafe { bpf_probe_read_user(regs::g(ctx) as *const [u64; 2]) } {
        Ok([lo, hi]) => lo <= ptr && ptr < hi,
        Err(_) => false,
    }
}

/// The size of the element type `et` passed at growth site `probe` in process
/// `tgid`: from `ELEM_SIZES` when the site saw that type in that process last, else
/// read (`_type.size` is the first word of every type descriptor) and kept there.
/// The tag hashes the process too (a type's address means another type in another
/// process of a position-independent binary), and tells an entry torn by two
/// growths writing it at once.
#[inline(always)]
fn elem_size(probe: u32, tgid: u32, et: u64) -> u64 {
    let tag = (et ^ (tgid as u64) << 32).wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xffff_ffff_0000_0000;
    let Some(entry) = ELEM_SIZES.get_ptr_mut(probe) else { return emit::read_u64(et).unwrap_or(0) };
    // SAFETY: in bounds of the entry; volatile so that each word is read once.
    let [seen, word] = unsafe { [read_volatile(&(*entry)[0]), read_volatile(&(*entry)[1])] };
    if seen == et && word & 0xffff_ffff_0000_0000 == tag {
        return word & 0xffff_ffff;
    }
    let size = emit::read_u64(et).unwrap_or(0);
    if size != 0 && size <= 0xffff_ffff {
        // SAFETY: as above.
        unsafe {
            write_volatile(&mut (*entry)[0], et);
            write_volatile(&mut (*entry)[1], size | tag);
        }
    }
    size
}

crate::uprobe_twins!(slice_grow_call, slice_grow_call_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // Go 1.19: growslice(et, old slice, cap); Go 1.20+: growslice(oldPtr, newLen, oldCap, num, et).
    let [ax, bx, cx, di, si] = args5(&ctx);
    let (old_ptr, old_len, old_cap, new_len, et) = if hit.cfg.grow_abi == GrowAbi::Go119 as u32 {
        (bx, cx, di, si, ax)
    } else {
        (ax, bx.wrapping_sub(di), cx, bx, si)
    };
    let elem_size = elem_size(hit.probe, hit.tgid, et);
    let packed = (elem_size & 0xffff_ffff) | hit.cfg.gc_cycles << GC_CYCLE_SHIFT;
    let mut rec = hit.record(RecordKind::SliceGrow, [old_ptr, old_len, old_cap, new_len, packed]);
    if old_cap == 0 || elem_size == 0 {
        // Empty arrays all share runtime.zerobase: no identity to follow.
        hit.send_if_sampled(&ctx, &mut rec);
        return 0;
    }
    let end = old_ptr.wrapping_add(old_cap.wrapping_mul(elem_size));
    let now = rec.args;
    hit.send_on_transition(&ctx, &LAST_GROWTH, &hit.key(RecordKind::SliceGrow, end), &mut rec, false, |held| {
        // An array on the goroutine's own stack is private to it (and its address is
        // reused by the next goroutine given the same stack, with no GC in between):
        // no identity to follow. Tested only where the answer matters: when kept, its
        // growth is only ever found again by hits on that stack, which test it too.
        match filter::relate_growths(&held.args, &now) {
            Relation::OtherLife => Relation::OtherLife,
            _ if on_own_stack(&ctx, old_ptr) => Relation::Private,
            relation => relation,
        }
    });
    0
}
