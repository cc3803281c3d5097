//! Types shared by the eBPF programs and user space: ring-buffer records, probe kinds
//! and the per-process configuration the kernel side reads.
#![no_std]

pub mod filter;
pub mod hit_cache;

/// What a [`Record`] describes; the first field of every record.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A slice's backing array is about to grow (`runtime.growslice` and siblings).
    /// args: old array pointer, old length, old capacity, new length, element size
    /// in the low 32 bits with the process's count of GC mark terminations in the
    /// high 32 bits.
    SliceGrow = 1,
    /// A `range` over a map starts. args: map pointer, iterator pointer.
    MapIterStart = 2,
    /// One iteration step. args: map pointer, iterator pointer, map's writing flag.
    MapIterNext = 3,
    /// A map write starts. args: map pointer, [`MapOp`], map's writing flag.
    MapWrite = 4,
    /// A mutating `*list.List` method starts (the name is Remove's, the first one
    /// traced). args: list pointer, element pointer (the element or mark whose
    /// `list` the method checks; 0 for methods without one), `e.list` (the list
    /// pointer when there is no element), [`ListOp`].
    ListRemoveEnter = 5,
    /// The mutation finished. args: list pointer, element pointer.
    ListRemoveExit = 6,
    /// A map write (not a delete) by a goroutine inside its own range over the map,
    /// sent late, when the range's next step showed the range went on. args: map
    /// pointer, [`MapOp`], iterator pointer.
    MapWriteInRange = 7,
    /// A map write started while another goroutine's write to the same map had
    /// started and not returned (the kernel follows write intervals: the CALL and
    /// the instruction after it). args: map pointer, [`MapOp`], map's writing flag,
    /// the other goroutine's id; its start record was sent before this one.
    MapWriteOverlap = 8,
}

impl RecordKind {
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::SliceGrow,
            2 => Self::MapIterStart,
            3 => Self::MapIterNext,
            4 => Self::MapWrite,
            5 => Self::ListRemoveEnter,
            6 => Self::ListRemoveExit,
            7 => Self::MapWriteInRange,
            8 => Self::MapWriteOverlap,
            _ => return None,
        })
    }
}

/// The write a [`RecordKind::MapWrite`] record announces.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum MapOp {
    Assign = 0,
    Delete = 1,
    Clear = 2,
}

impl MapOp {
    pub fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => Self::Assign,
            1 => Self::Delete,
            2 => Self::Clear,
            _ => return None,
        })
    }
}

/// The `*list.List` method a [`RecordKind::ListRemoveEnter`] record announces
/// (Remove is 0: recordings made before the others were traced read as Remove).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListOp {
    Remove = 0,
    PushBack = 1,
    PushFront = 2,
    PushBackList = 3,
    PushFrontList = 4,
    InsertBefore = 5,
    InsertAfter = 6,
    MoveToFront = 7,
    MoveToBack = 8,
    MoveBefore = 9,
    MoveAfter = 10,
    Init = 11,
}

impl ListOp {
    pub const ALL: [ListOp; 12] = [
        Self::Remove,
        Self::PushBack,
        Self::PushFront,
        Self::PushBackList,
        Self::PushFrontList,
        Self::InsertBefore,
        Self::InsertAfter,
        Self::MoveToFront,
        Self::MoveToBack,
        Self::MoveBefore,
        Self::MoveAfter,
        Self::Init,
    ];

    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => Self::Remove,
            1 => Self::PushBack,
            2 => Self::PushFront,
            3 => Self::PushBackList,
            4 => Self::PushFrontList,
            5 => Self::InsertBefore,
            6 => Self::InsertAfter,
            7 => Self::MoveToFront,
            8 => Self::MoveToBack,
            9 => Self::MoveBefore,
            10 => Self::MoveAfter,
            11 => Self::Init,
            _ => return None,
        })
    }

    /// The Go method name.
    pub const fn method(self) -> &'static str {
        match self {
            Self::Remove => "Remove",
            Self::PushBack => "PushBack",
            Self::PushFront => "PushFront",
            Self::PushBackList => "PushBackList",
            Self::PushFrontList => "PushFrontList",
            Self::InsertBefore => "InsertBefore",
            Self::InsertAfter => "InsertAfter",
            Self::MoveToFront => "MoveToFront",
            Self::MoveToBack => "MoveToBack",
            Self::MoveBefore => "MoveBefore",
            Self::MoveAfter => "MoveAfter",
            Self::Init => "Init",
        }
    }

    /// The method acts on an element or mark of the list and does nothing unless
    /// its `list` field is the receiver (Remove, Move*, Insert*).
    pub const fn checks_element(self) -> bool {
        !matches!(self, Self::PushBack | Self::PushFront | Self::PushBackList | Self::PushFrontList | Self::Init)
    }
}

/// Number of argument words in a [`Record`].
pub const RECORD_ARGS: usize = 5;

/// One fixed-size ring-buffer record. Every record starts with its kind tag.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// A [`RecordKind`] value.
    pub kind: u16,
    /// [`RECORD_SAMPLED`] and friends.
    pub flags: u16,
    /// Index of the probe in the user-space probe table (the attach cookie).
    pub probe: u32,
    /// `bpf_ktime_get_ns` at the hit.
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    /// Goroutine id read through the `g` register; 0 on the scheduler stack.
    pub goid: u64,
    /// Address of the probed instruction (the call site) in the process.
    pub pc: u64,
    /// User stack id in the stack-trace map, or -1 when none was captured.
    pub stack_id: i64,
    pub args: [u64; RECORD_ARGS],
}

/// The record was sent because of 1-in-N sampling, not because it is a transition.
pub const RECORD_SAMPLED: u16 = 1;
/// The record was held back in a kernel table and sent late, as the first half of a
/// cross-goroutine transition.
pub const RECORD_REPLAYED: u16 = 2;
/// The goroutine of this hit made the very same hit before (same object and, for a
/// slice, the same header) and those repeats were filtered out: it holds its own copy
/// of the header rather than sharing one that moves on when it grows.
pub const RECORD_REPEATED: u16 = 4;

pub const RECORD_SIZE: usize = 88;

// The kernel writes a `Record` as it lies in memory, and user space reads it field by
// field at the struct's own offsets: no padding may hide between fields.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Record>() == RECORD_SIZE);
    assert!(offset_of!(Record, flags) == offset_of!(Record, kind) + size_of::<u16>());
    assert!(offset_of!(Record, probe) == offset_of!(Record, flags) + size_of::<u16>());
    assert!(offset_of!(Record, ts_ns) == offset_of!(Record, probe) + size_of::<u32>());
    assert!(offset_of!(Record, tgid) == offset_of!(Record, ts_ns) + size_of::<u64>());
    assert!(offset_of!(Record, tid) == offset_of!(Record, tgid) + size_of::<u32>());
    assert!(offset_of!(Record, goid) == offset_of!(Record, tid) + size_of::<u32>());
    assert!(offset_of!(Record, pc) == offset_of!(Record, goid) + size_of::<u64>());
    assert!(offset_of!(Record, stack_id) == offset_of!(Record, pc) + size_of::<u64>());
    assert!(offset_of!(Record, args) == offset_of!(Record, stack_id) + size_of::<i64>());
    assert!(offset_of!(Record, args) + size_of::<[u64; RECORD_ARGS]>() == RECORD_SIZE);
};

/// Reads and writes one field of a record's bytes at the field's offset in [`Record`].
macro_rules! record_bytes {
    (get $b:ident, $field:ident: $ty:ty) => {{
        let at = core::mem::offset_of!(Record, $field);
        const LEN: usize = core::mem::size_of::<$ty>();
        let mut v = [0u8; LEN];
        v.copy_from_slice(&$b[at..at + LEN]);
        <$ty>::from_le_bytes(v)
    }};
    (put $b:ident, $field:ident, $value:expr) => {{
        let at = core::mem::offset_of!(Record, $field);
        let v = $value.to_le_bytes();
        $b[at..at + v.len()].copy_from_slice(&v);
    }};
}

impl Record {
    /// The record as the ring buffer and recordings carry it: its memory on a
    /// little-endian machine.
    pub fn to_bytes(&self) -> [u8; RECORD_SIZE] {
        let mut b = [0u8; RECORD_SIZE];
        record_bytes!(put b, kind, self.kind);
        record_bytes!(put b, flags, self.flags);
        record_bytes!(put b, probe, self.probe);
        record_bytes!(put b, ts_ns, self.ts_ns);
        record_bytes!(put b, tgid, self.tgid);
        record_bytes!(put b, tid, self.tid);
        record_bytes!(put b, goid, self.goid);
        record_bytes!(put b, pc, self.pc);
        record_bytes!(put b, stack_id, self.stack_id);
        let args = core::mem::offset_of!(Record, args);
        for (i, a) in self.args.iter().enumerate() {
            b[args + 8 * i..args + 8 * (i + 1)].copy_from_slice(&a.to_le_bytes());
        }
        b
    }

    /// The inverse of [`Record::to_bytes`].
    pub fn from_bytes(b: &[u8; RECORD_SIZE]) -> Self {
        let args = core::mem::offset_of!(Record, args);
        Self {
            kind: record_bytes!(get b, kind: u16),
            flags: record_bytes!(get b, flags: u16),
            probe: record_bytes!(get b, probe: u32),
            ts_ns: record_bytes!(get b, ts_ns: u64),
            tgid: record_bytes!(get b, tgid: u32),
            tid: record_bytes!(get b, tid: u32),
            goid: record_bytes!(get b, goid: u64),
            pc: record_bytes!(get b, pc: u64),
            stack_id: record_bytes!(get b, stack_id: i64),
            args: core::array::from_fn(|i| {
                let mut v = [0u8; 8];
                v.copy_from_slice(&b[args + 8 * i..args + 8 * (i + 1)]);
                u64::from_le_bytes(v)
            }),
        }
    }
}
const _: () = assert!(core::mem::size_of::<Record>() == RECORD_SIZE);
const _: () = assert!(core::mem::offset_of!(Record, args) == 48);

/// Which `runtime.growslice` calling convention a binary uses.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrowAbi {
    /// Go 1.19: `growslice(et, old slice, cap)`: AX=et, BX=ptr, CX=len, DI=cap, SI=newcap.
    Go119 = 0,
    /// Go 1.20+: `growslice(oldPtr, newLen, oldCap, num, et)`: AX, BX, CX, DI, SI.
    Go120 = 1,
}

/// Per-process configuration, keyed by tgid in the `PROCS` map. A hit from a
/// process without an entry is ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcConfig {
    /// Offset of `goid` in `runtime.g`.
    pub goid_offset: u32,
    /// A [`GrowAbi`] value.
    pub grow_abi: u32,
    /// Offset of the "writing" flag in the map header; with `map_flag_mask`.
    pub map_flag_offset: u32,
    /// Bit(s) of the flag byte meaning "a write is in progress" (0: unknown layout).
    pub map_flag_mask: u32,
    /// Also send 1 in `sample_every` goroutine-local hits per probe (0: none).
    pub sample_every: u32,
    /// Capture a user stack for each record sent (0 or 1).
    pub stacks: u32,
    /// GC mark terminations of the process so far, counted by the kernel side (user
    /// space writes 0): an address can only hold a new array after a sweep, which
    /// follows a mark termination, freed the old one. Kept here, next to what every
    /// hit reads anyway, rather than in a table of its own looked up per growth.
    pub gc_cycles: u64,
}

const _: () = assert!(core::mem::size_of::<ProcConfig>() == 32);

/// Probes the kernel side's per-probe tables hold as compiled; user space sizes
/// them to its plans at load time. Probe ids are indexes into the user-space probe
/// table and travel in the attach cookie.
pub const MAX_PROBES: u32 = 16384;

/// Attach cookie layout: probe id in the low 32 bits, then two auxiliary bytes
/// (a [`MapOp`], or the list and element register numbers of a list mutation; for
/// a method without an element, the list register and the list's offset from it),
/// then the [`hit_slot`] of the probe's attachment in 12 bits, then a nibble (the
/// [`ListOp`] of a list mutation).
pub const fn cookie(probe: u32, aux0: u8, aux1: u8, nibble: u8, slot: u32) -> u64 {
    probe as u64
        | (aux0 as u64) << 32
        | (aux1 as u64) << 40
        | ((slot & (HIT_SLOTS - 1)) as u64) << 48
        | ((nibble & 15) as u64) << COOKIE_NIBBLE_SHIFT
}

/// Where the cookie's nibble starts.
pub const COOKIE_NIBBLE_SHIFT: u32 = 60;

/// Slots of the all-hits counters (`TOTAL_HITS`): one per attachment, so that a
/// governor reads its own executable's hits in one word.
pub const HIT_SLOTS: u32 = 4096;

/// The slot of the attachment whose probe ids start at `first_id` (live attachments
/// have disjoint ids; two sharing a slot only cost their governors extra reads).
pub const fn hit_slot(first_id: u32) -> u32 {
    (first_id.wrapping_mul(0x9e37_79b1) >> 20) & (HIT_SLOTS - 1)
}

/// The slot a cookie carries.
pub const fn cookie_slot(cookie: u64) -> u32 {
    (cookie >> 48) as u32 & (HIT_SLOTS - 1)
}

/// Where the GC cycle count sits in a [`RecordKind::SliceGrow`] record's last word.
pub const GC_CYCLE_SHIFT: u32 = 32;

/// List register number of an inlined `Remove` whose `e.list == l` test the compiler
/// proved true and removed: the list is `e.list`.
pub const LIST_REG_ELEMENT_LIST: u8 = 0xff;

/// Element register number of a list mutation without an element (PushBack, Init…).
pub const LIST_REG_NONE: u8 = 0xfe;

/// Offset of `list` in `container/list.Element` (all Go versions, amd64 and arm64).
pub const LIST_ELEMENT_LIST_OFFSET: u64 = 16;

/// Per-probe counters of one CPU, laid out in `PROBE_COUNTERS` (see [`counter_index`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Probe hits from traced processes.
    Hits = 0,
    /// Records written to the ring buffer.
    Emitted = 1,
    /// Hits handled in the kernel without a record.
    Filtered = 2,
    /// Records lost because the ring buffer was full.
    Lost = 3,
    /// Hits whose user memory could not be read.
    ReadErrors = 4,
}

pub const COUNTER_COUNT: u32 = 5;

/// Where a CPU's `counter` of `probe` sits in `PROBE_COUNTERS`, a plain array that
/// user space maps into its memory: one block of `stride` words (probes × counters)
/// per CPU, so that CPUs never write one cache line and reading a range of probes is
/// reading memory, not one system call or one kernel allocation per word.
pub const fn counter_index(stride: u32, cpu: u32, probe: u32, counter: u32) -> u32 {
    cpu.wrapping_mul(stride).wrapping_add(probe.wrapping_mul(COUNTER_COUNT)).wrapping_add(counter)
}

/// Values of the `FOLLOWED` map: a process whose descendants `run` follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Followed {
    /// The traced command itself: its forks are followed, its execs are not held.
    Root = 1,
    /// A descendant: held (stopped) at each exec until user space continues it.
    Held = 2,
}

/// What a [`ProcEvent`] announces.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEventKind {
    /// A process finished `execve` (`sched/sched_process_exec`).
    Exec = 1,
    /// A thread-group leader exited (`sched/sched_process_exit` with pid == tgid).
    Exit = 2,
}

impl ProcEventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Exit),
            _ => None,
        }
    }
}

/// A process lifecycle record of the `PROC_EVENTS` ring buffer, for the daemon's
/// discovery. Starts with its kind tag like every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcEvent {
    /// A [`ProcEventKind`] value.
    pub kind: u32,
    pub tgid: u32,
}

pub const PROC_EVENT_SIZE: usize = 8;
const _: () = assert!(core::mem::size_of::<ProcEvent>() == PROC_EVENT_SIZE);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] integers with no padding (checked by the size asserts).
    unsafe impl aya::Pod for super::Record {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProcConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ProcEvent {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_carries_probe_aux_and_slot_apart() {
        let c = cookie(0xdead_beef, 0x12, 0x34, ListOp::Init as u8, hit_slot(40_000));
        assert_eq!((c as u32, (c >> 32) as u8, (c >> 40) as u8), (0xdead_beef, 0x12, 0x34));
        assert_eq!(ListOp::from_u64(c >> COOKIE_NIBBLE_SHIFT), Some(ListOp::Init));
        assert_eq!(cookie_slot(c), hit_slot(40_000));
        // Attachments starting a chunk apart mostly get slots of their own.
        let mut slots = [0u32; 64];
        for (i, s) in slots.iter_mut().enumerate() {
            *s = hit_slot(i as u32 * 64);
        }
        slots.sort_unstable();
        let distinct = 1 + slots.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(distinct >= 60, "{slots:?}");
    }

    #[test]
    fn list_ops_fit_the_nibble_and_read_back() {
        for (i, op) in ListOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
            assert!((*op as u8) < 16);
            assert_eq!(ListOp::from_u64(i as u64), Some(*op));
        }
        assert_eq!(ListOp::from_u64(ListOp::ALL.len() as u64), None);
    }
}
