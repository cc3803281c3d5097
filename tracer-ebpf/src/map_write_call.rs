//! A call into `mapassign*`, `mapdelete*` or `mapclear`: a map write starts. Its
//! interval lasts until `map_write_exit`; another goroutine's write starting inside
//! it is sent as an overlap.

use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    programs::{ProbeContext, tracing::StackIdContext},
};
use tracer_common::{MapOp, RECORD_REPLAYED, Record, RecordKind};

use crate::{
    emit::{self, Hit},
    maps::{Held, IN_WRITE, LAST_HIT, OWN_RANGES, ObjectKey, STACKS, orphaned, swap_writing_map},
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

/// The map's entry count: `hmap.count` and `maps.Map.used` both lead the header.
#[inline(always)]
pub fn map_len(map: u64) -> u64 {
    emit::read_u64(map).unwrap_or(0)
}

crate::uprobe_twins!(map_write_call, map_write_call_single, on_hit);

#[inline(always)]
fn on_hit(ctx: ProbeContext) -> u32 {
    let Some(hit) = emit::begin(&ctx) else { return 0 };
    // (t *maptype, m *map, key...) for every write entry point; the op rides in the cookie.
    let [_, map, ..] = args5(&ctx);
    if map == 0 {
        return 0;
    }
    let writing = writing(&hit, map);
    let key = hit.key(RecordKind::MapWrite, map);
    let wkey = hit.key(RecordKind::MapWriteOverlap, map);
    // A goroutine is never inside two map writes: an entry of its own left from an
    // earlier write means that write is over (the next write's CALL is that write's
    // end where no exit probe follows it; or it never returned: a recovered panic
    // while hashing its key).
    let prev = swap_writing_map(&hit.goroutine_key(), map);
    if prev != 0 {
        crate::map_write_exit::end_write(&hit.key(RecordKind::MapWriteOverlap, prev), hit.goid);
    }
    let (other, in_write) = write_in_progress(&ctx, &hit, &wkey, &key);
    let kind = if other != 0 { RecordKind::MapWriteOverlap } else { RecordKind::MapWrite };
    let mut rec = hit.record(kind, [map, hit.aux[0] as u64, writing, other, 0]);
    let sent = hit.send_on_transition(&ctx, &LAST_HIT, &key, &mut rec, writing != 0 || other != 0, |_| {
        emit::Relation::SameObject
    });
    let held = Held { rec, sent: sent as u64 };
    // Kept and written in place: an LRU insert allocates.
    match in_write {
        // SAFETY: the entry stays valid while this program runs (RCU); another
        // goroutine's write racing this one can tear it, and then only which of the
        // two overlapping writers is named.
        Some(entry) => unsafe { *entry = held },
        None => {
            let _ = IN_WRITE.insert(&wkey, &held, 0);
        }
    }
    hold_if_in_own_range(&ctx, &hit, map, &rec, sent);
    0
}

/// The goroutine whose write to the map started and has not returned (0: none, or
/// this goroutine's own stale entry), and the map's entry for writes in progress if
/// it has one. The other write's start record goes out first if it has not.
#[inline(always)]
fn write_in_progress(ctx: &ProbeContext, hit: &Hit, wkey: &ObjectKey, key: &ObjectKey) -> (u64, Option<*mut Held>) {
    let Some(entry) = IN_WRITE.get_ptr_mut(wkey) else { return (0, None) };
    // SAFETY: the entry stays valid while this program runs (RCU).
    let held = unsafe { &mut *entry };
    // goid 0: the write there ended (map_write_exit::end_write).
    if held.rec.goid == 0 || held.rec.goid == hit.goid || orphaned(&held.rec) {
        return (0, Some(entry));
    }
    if held.sent == 0 {
        held.sent = 1;
        let mut start = held.rec;
        start.flags |= RECORD_REPLAYED;
        hit.send(ctx, &mut start);
        // The same hit may be held as the map's last one: it is out now.
        if let Some(last) = LAST_HIT.get_ptr_mut(key) {
            // SAFETY: as above.
            let last = unsafe { &mut *last };
            if last.rec.goid == start.goid && last.rec.ts_ns == start.ts_ns {
                last.sent = 1;
            }
        }
    }
    (held.rec.goid, Some(entry))
}

/// A write by the goroutine whose own range over the map is in progress is held
/// until the range's next step shows the range went on (map_iter_next_call), with the
/// map's entry count before it. Deletes are not: deleting during one's own range is
/// deterministic and idiomatic. A write by any other goroutine ends the run.
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
    held.args[4] = map_len(map);
    if hit.cfg.stacks != 0 {
        held.stack_id = ctx.get_stackid(&STACKS, BPF_F_USER_STACK as u64).unwrap_or(-1);
    }
    range.write = held;
    range.pending = 1;
}