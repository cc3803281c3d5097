//! The first instruction of a mutating `*list.List` method's inlined body (or its
//! CALL): Remove, PushBack, MoveToFront… (the program keeps Remove's name).

use aya_ebpf::{programs::ProbeContext};
use tracer_common::{LIST_ELEMENT_LIST_OFFSET, LIST_REG_ELEMENT_LIST, ListOp, RecordKind};

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
    // PushBack, Init… have no element: nothing to check, `e.list` reads as the list,
    // which may sit at an offset from the register (a `list.List` field of a struct).
    let no_elem = !ListOp::from_u64(hit.nibble as u64).map_or(true, ListOp::checks_element);
    let list = if no_elem { list.wrapping_add(hit.aux[1] as u64) } else { list };
    let elem = if no_elem { 0 } else { elem };
    let elem_list = if no_elem { list } else { emit::read_u64(elem.wrapping_add(LIST_ELEMENT_LIST_OFFSET)).unwrap_or(0) };
    // Where the compiler proved e.list == l, the list is e.list (nil only if another
    // goroutine removed e meanwhile: nothing to key the record by).
    let list = if hit.aux[0] == LIST_REG_ELEMENT_LIST { elem_list } else { list };
    if list == 0 && hit.aux[0] == LIST_REG_ELEMENT_LIST {
        return 0;
    }
    let mut rec = hit.record(RecordKind::ListRemoveEnter, [list, elem, elem_list, hit.nibble as u64, 0]);
    // Remove(e), MoveToFront(e), InsertBefore(v, mark)… do nothing unless the
    // element's list is l: a stale or foreign element is misuse.
    let misuse = elem_list != list;
    crate::log::update(REMOVING.insert(&hit.goroutine_key(), &list, 0), "REMOVING");
    let key = hit.key(RecordKind::ListRemoveEnter, list);
    // A Remove whose exit the governor may have switched off is over.
    hit.send_on_transition(&ctx, &IN_REMOVE, &key, &mut rec, misuse, |held| {
        if orphaned(held) { emit::Relation::OtherLife } else { emit::Relation::SameObject }
    });
    0
}
