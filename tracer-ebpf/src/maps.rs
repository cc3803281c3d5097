//! The maps shared by all probes.

use aya_ebpf::{
    bindings::BPF_F_MMAPABLE,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf, StackTrace},
};
use tracer_common::{COUNTER_COUNT, HIT_SLOTS, MAX_PROBES, ProcConfig, Record, hit_cache};

/// Records for user space. Sized again by the loader.
#[map]
pub static RECORDS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// Traced processes by tgid; hits from any other process are ignored.
#[map]
pub static PROCS: HashMap<u32, ProcConfig> = HashMap::with_max_entries(4096, 0);

/// Hit counters, [`tracer_common::counter_index`] → count; user space reads them
/// through a memory mapping.
#[map]
pub static PROBE_COUNTERS: Array<u64> = Array::with_max_entries(MAX_PROBES * COUNTER_COUNT, BPF_F_MMAPABLE);

/// Words of one CPU's block of `PROBE_COUNTERS`, set by user space at load.
#[unsafe(no_mangle)]
pub static COUNTER_STRIDE: u32 = MAX_PROBES * COUNTER_COUNT;

/// Hits of all probes of an attachment together, per CPU, by the cookie's slot: one
/// word a governor can read often to learn whether any of its probes got hot, where
/// reading every probe's counters is costly.
#[map]
pub static TOTAL_HITS: PerCpuArray<u64> = PerCpuArray::with_max_entries(HIT_SLOTS, 0);

/// User stacks of the records sent (Go keeps frame pointers).
#[map]
pub static STACKS: StackTrace = StackTrace::with_max_entries(8192, 0);

/// An object of one process: a slice's backing-array end, a map or a list header.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ObjectKey {
    pub tgid: u32,
    pub kind: u32,
    pub addr: u64,
}

/// A record held back until a hit from another goroutine makes it interesting.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Held {
    pub rec: Record,
    /// The record already went to user space.
    pub sent: u64,
}

/// Whether the interval `rec` opened (a map write, a `Remove`) may never be seen
/// to end: the governor switched its probes (exit included) on or off after it
/// began, so it must not be taken for one still in progress.
#[inline(always)]
pub fn orphaned(rec: &Record) -> bool {
    SWITCHED_AT.get(rec.probe).is_some_and(|&at| rec.ts_ns < at)
}

/// When user space last switched each probe on or off (`bpf_ktime_get_ns` time,
/// i.e. CLOCK_MONOTONIC), by probe id; `u64::MAX` while it is being switched off or
/// is off. A range step probe's slot instead says until when a range of its
/// process may have started unseen, a range-start probe being off ([`unseen_until`]).
#[map]
pub static SWITCHED_AT: Array<u64> = Array::with_max_entries(MAX_PROBES, 0);

/// Until when (`u64::MAX`: still) a range stepped at `probe` may have started while
/// its start probe was off, so that no start record bounds it (0: never).
#[inline(always)]
pub fn unseen_until(probe: u32) -> u64 {
    SWITCHED_AT.get(probe).copied().unwrap_or(0)
}

/// Last hit per map: only cross-goroutine transitions are sent.
#[map]
pub static LAST_HIT: LruHashMap<ObjectKey, Held> = LruHashMap::with_max_entries(65536, 0);

/// One slot of [`LAST_GROWTH`]: the key it holds, that key's last hit, and the check
/// word over both (`tracer_common::hit_cache::check`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Slot {
    pub key: ObjectKey,
    pub held: Held,
    pub check: u64,
}

/// Per growth site (probe id): the element type last seen there and its size, with a
/// hash of the type and process in the high half, `[et, size | tag << 32]`. A call site
/// passes one type (`append` is compiled per static type; generic code may pass a
/// few), and a type descriptor never changes: a user-memory read saved per growth.
#[map]
pub static ELEM_SIZES: Array<[u64; 2]> = Array::with_max_entries(MAX_PROBES, 0);

/// Last hit per slice array, direct-mapped (`crate::hit_cache`): every growth is a
/// new array, and an LRU table evicting on each insert cost more than the trap.
#[map]
pub static LAST_GROWTH: Array<Slot> = Array::with_max_entries(hit_cache::SLOTS, 0);

/// The range over a map that its goroutine's latest records on the map belong to:
/// one goroutine's unbroken run of steps of one iterator and its own writes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OwnRange {
    pub goid: u64,
    pub iter: u64,
    /// `write` holds a write of the run, sent only if a next step of `iter` follows.
    pub pending: u64,
    pub write: Record,
    /// Write sites already sent for this range: one record per (range, site).
    pub reported: [u64; 2],
}

/// Map → the own range in progress on it (key kind `MapIterStart`).
#[map]
pub static OWN_RANGES: LruHashMap<ObjectKey, OwnRange> = LruHashMap::with_max_entries(4096, 0);

/// Lists some goroutine is inside `Remove` on, with the entering record.
#[map]
pub static IN_REMOVE: LruHashMap<ObjectKey, Held> = LruHashMap::with_max_entries(16384, 0);

/// (tgid, goid) → the list that goroutine is removing from, for the exit probe.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GoroutineKey {
    pub tgid: u32,
    pub _pad: u32,
    pub goid: u64,
}

#[map]
pub static REMOVING: LruHashMap<GoroutineKey, u64> = LruHashMap::with_max_entries(16384, 0);

/// A map's write in progress. `writer` (0: none) is claimed with a compare-and-swap
/// before anything else: when two goroutines start writing at once, the runtime
/// kills the process at once, and the two CPUs' programs run side by side; one claim
/// then always sees the other. `start` is the writer's start record, written after
/// the claim (so it may still be the previous writer's: compare its goid).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WriteSlot {
    pub writer: u64,
    pub start: Held,
}

/// Map → its write in progress (key kind `MapWriteOverlap`); an ended write leaves
/// the slot with no writer, for the map's next write. Maps being written stay few.
#[map]
pub static IN_WRITE: LruHashMap<ObjectKey, WriteSlot> = LruHashMap::with_max_entries(4096, 0);

/// (tgid, goid) → the map that goroutine is writing, for the exit probe (the map
/// pointer is gone from the registers after the call).
#[map]
pub static WRITING_MAP: LruHashMap<GoroutineKey, u64> = LruHashMap::with_max_entries(4096, 0);

/// The map goroutine `key` is writing (0: none), replaced by `map`: written in
/// place if the goroutine has an entry (only its probes touch it).
#[inline(always)]
pub fn swap_writing_map(key: &GoroutineKey, map: u64) -> u64 {
    match WRITING_MAP.get_ptr_mut(key) {
        // SAFETY: the entry stays valid while this program runs (RCU).
        Some(slot) => unsafe { core::mem::replace(&mut *slot, map) },
        None => {
            crate::log::update(WRITING_MAP.insert(key, &map, 0), "WRITING_MAP");
            0
        }
    }
}

/// The map goroutine `key` was writing (0: none), its entry dropped: the table holds
/// only goroutines inside a write. Left in place with 0, the entries of every
/// goroutine that ever wrote filled it, and the LRU evicted goroutines still inside
/// a write to make room: their writes never ended, and the next writer under the
/// same lock overlapped them (`map_concurrent_write` on a server's short-lived
/// request goroutines).
#[inline(always)]
pub fn take_writing_map(key: &GoroutineKey) -> u64 {
    // SAFETY: a plain read of the value.
    let map = unsafe { WRITING_MAP.get(key) }.copied().unwrap_or(0);
    if map != 0 {
        let _ = WRITING_MAP.remove(key);
    }
    map
}

/// Processes `run` follows ([`tracer_common::Followed`]): the traced command, and
/// every process forked from one in here (threads too: an LRU keeps the table
/// bounded).
#[map]
pub static FOLLOWED: LruHashMap<u32, u32> = LruHashMap::with_max_entries(8192, 0);

/// Where `child_pid` sits in a `sched_process_fork` record (user space reads the
/// tracepoint's format: it moved in Linux 6.x); 0 until set.
#[map]
pub static FORK_CHILD_PID_AT: Array<u32> = Array::with_max_entries(1, 0);

/// Process execs and exits for the daemon's discovery (small: one event per exec
/// or exit on the host, drained every few milliseconds).
#[map]
pub static PROC_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 18, 0);
