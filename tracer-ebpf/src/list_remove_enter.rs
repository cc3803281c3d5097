//! The first instruction of an inlined `(*list.List).Remove(e)` body.

use aya_ebpf::{programs::ProbeContext};
use tracer_common::{LIST_ELEMENT_LIST_OFFSET, LIST_REG_ELEMENT_LIST, RecordKind};

use crate::{
    emit,
    maps::{IN_REMOVE, REMOVING, orphaned},
    regs,
};

crate::uprobe_twins!(list_remove_enter, list_remove_enter_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // Which registers hold l and e depends on the caller's code: the plan decoded them.
    let list = regs::by_number(&ctx, hit.aux[0]);
    let elem = regs::by_number(&ctx, hit.aux[1]);
    let elem_list = emit::read_u64(elem.wrapping_add(LIST_ELEMENT_LIST_OFFSET)).unwrap_or(0);
    // Where the compiler proved e.list == l, the list is e.list (nil only if another
    // goroutine removed e meanwhile: nothing to key the record by).
    let list = if hit.aux[0] == LIST_REG_ELEMENT_LIST { elem_list } else { list };
    if list == 0 && hit.aux[0] == LIST_REG_ELEMENT_LIST {
        return 0;
    }
    let mut rec = hit.record(RecordKind::ListRemoveEnter, [list, elem, elem_list, 0, 0]);
    // Remove(e) does nothing unless e.list == l: a stale or foreign element is misuse.
    let misuse = elem_list != list;
    let _ = REMOVING.insert(&hit.goroutine_key(), &list, 0);
    let key = hit.key(RecordKind::ListRemoveEnter, list);
    // A Remove whose exit the governor may have switched off is over.
    hit.send_on_transition(&ctx, &IN_REMOVE, &key, &mut rec, misuse, |held| {
        if orphaned(held) { emit::Relation::OtherLife } else { emit::Relation::SameObject }
    });
    0
}
