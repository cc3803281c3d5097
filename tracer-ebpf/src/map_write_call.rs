//! A call into `mapassign*`, `mapdelete*` or `mapclear`: a map write starts. Its
//! interval lasts until `map_write_exit`; another goroutine's write starting inside
//! it is sent as an overlap.

use aya_ebpf::{bindings::BPF_NOEXIST, programs::ProbeContext};
use tracer_common::{MapOp, RECORD_REPLAYED, Record, RecordKind};

use crate::{
    atomic,
    emit::{self, Hit},
    maps::{Held, IN_WRITE, LAST_HIT, OWN_RANGES, ObjectKey, WriteSlot, orphaned, swap_writing_map},
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
    let (other, slot) = claim_write(&ctx, &hit, &wkey, &key);
    let kind = if other != 0 { RecordKind::MapWriteOverlap } else { RecordKind::MapWrite };
    let mut rec = hit.record(kind, [map, hit.aux[0] as u64, writing, other, 0]);
    let sent = hit.send_on_transition(&ctx, &LAST_HIT, &key, &mut rec, writing != 0 || other != 0, |_| {
        emit::Relation::SameObject
    });
    // No slot (the table full, its evictions racing this insert): the write goes
    // unfollowed.
    if let Some(slot) = slot {
        // SAFETY: the entry stays valid while this program runs (RCU); a write
        // racing this one can tear `start`, and then only which of the two
        // overlapping writers is named.
        unsafe { (*slot).start = Held { rec, sent: sent as u64 } };
    }
    hold_if_in_own_range(&ctx, &hit, map, &rec, sent);
    0
}

/// Claims the map's write slot for this goroutine: returns the goroutine whose write
/// to the map started and has not returned (0: none), and the map's slot (none: no
/// slot could be made). An overlapping write takes the slot over (the later one
/// ends later, as far as anyone can tell); the other write's start record goes out
/// first if it has not.
#[inline(always)]
fn claim_write(ctx: &ProbeContext, hit: &Hit, wkey: &ObjectKey, key: &ObjectKey) -> (u64, Option<*mut WriteSlot>) {
    let slot = match IN_WRITE.get_ptr_mut(wkey) {
        Some(slot) => slot,
        None => {
            // The map's first write: of two at once, one insert wins, the other
            // finds the winner's slot.
            let fresh = WriteSlot { writer: hit.goid, start: Held { rec: hit.record(RecordKind::MapWrite, [0; 5]), sent: 1 } };
            if IN_WRITE.insert(wkey, &fresh, BPF_NOEXIST as u64).is_ok() {
                return (0, IN_WRITE.get_ptr_mut(wkey));
            }
            let Some(slot) = IN_WRITE.get_ptr_mut(wkey) else { return (0, None) };
            slot
        }
    };
    // SAFETY: the entry stays valid while this program runs (RCU); `writer`, and
    // `start.sent` once the slot exists, are only ever accessed atomically.
    let writer = unsafe { &raw mut (*slot).writer };
    let start = unsafe { &mut (*slot).start };
    let seen = unsafe { atomic::load(writer) };
    // The slot is free where its writer ended, is this goroutine's own stale claim, or
    // a write the governor may have cut the exit probe of. A failed swap means another
    // write claimed it just now: that one is in progress.
    let free = seen == 0 || seen == hit.goid || (start.rec.goid == seen && orphaned(&start.rec));
    let other = if free {
        match unsafe { atomic::compare_exchange(writer, seen, hit.goid) } {
            Ok(_) => return (0, Some(slot)),
            Err(now) => now,
        }
    } else {
        seen
    };
    unsafe { atomic::store(writer, hit.goid) };
    if other == 0 || other == hit.goid {
        return (0, Some(slot));
    }
    // The other writer's record is there unless its program is still writing it.
    if start.rec.goid == other && unsafe { atomic::swap(&raw mut start.sent, 1) } == 0 {
        let mut replay = start.rec;
        replay.flags |= RECORD_REPLAYED;
        hit.send(ctx, &mut replay);
        // The same hit may be held as the map's last one: it is out now.
        if let Some(last) = LAST_HIT.get_ptr_mut(key) {
            // SAFETY: as above.
            let last = unsafe { &mut *last };
            if last.rec.goid == replay.goid && last.rec.ts_ns == replay.ts_ns {
                last.sent = 1;
            }
        }
    }
    (other, Some(slot))
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
        held.stack_id = emit::user_stack(ctx, hit.probe);
    }
    range.write = held;
    range.pending = 1;
}