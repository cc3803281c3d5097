//! Decoding of kernel ring-buffer records into typed events, by kind tag.
#![forbid(unsafe_code)]

use thiserror::Error;
pub use tracer_common::MapOp;
use tracer_common::{GC_CYCLE_SHIFT, ListOp, RECORD_REPEATED, RECORD_SIZE, Record, RecordKind};

/// One decoded probe hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub ts_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    pub goid: u64,
    /// Address of the probed call site in the process.
    pub pc: u64,
    /// Index of the probe in the attached probe table.
    pub probe: u32,
    pub stack_id: Option<u32>,
    pub kind: EventKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// `append` outgrew the backing array `[old_ptr, old_ptr + old_cap*elem_size)`.
    /// `gc_cycle` counts the process's GC cycle starts (wrapping, 0 when unknown):
    /// an address holds one array until a cycle frees it. `repeated`: the goroutine
    /// had grown this same header before (repeats the kernel folded into this record).
    SliceGrow {
        old_ptr: u64,
        old_len: u64,
        old_cap: u64,
        new_len: u64,
        elem_size: u64,
        gc_cycle: u32,
        #[serde(default)]
        repeated: bool,
    },
    MapIterStart { map: u64, iter: u64 },
    /// `unseen_until`: before this moment (`u64::MAX`: still) a range-start probe of
    /// the process was off, so the range stepped may have started unseen (0: never).
    MapIterNext {
        map: u64,
        iter: u64,
        writing: bool,
        #[serde(default)]
        unseen_until: u64,
    },
    MapWrite { map: u64, op: MapOp, writing: bool },
    /// A write the kernel saw inside the writing goroutine's own range over the map
    /// (`iter`): its next step followed. The step's record comes right after.
    MapWriteInRange { map: u64, op: MapOp, iter: u64 },
    /// A write that started while goroutine `other`'s write to the map had started
    /// and not returned; `other`'s start record came before this one.
    MapWriteOverlap { map: u64, op: MapOp, writing: bool, other: u64 },
    /// A mutating list method started (`op`; Remove in recordings made before the
    /// others were traced). `elem` is the element or mark whose list the method
    /// checks (0 for PushBack, Init…; `elem_list` is then the list).
    ListRemoveEnter {
        list: u64,
        elem: u64,
        elem_list: u64,
        #[serde(default = "list_op_serde::remove", with = "list_op_serde")]
        op: ListOp,
    },
    ListRemoveExit { list: u64, elem: u64 },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record is {len} bytes, expected {RECORD_SIZE}")]
    Size { len: usize },
    #[error("unknown record kind {kind}")]
    Kind { kind: u16 },
    #[error("unknown map operation {op}")]
    MapOp { op: u64 },
    #[error("unknown list method {op}")]
    ListOp { op: u64 },
}

/// A [`ListOp`] as its Go method name.
mod list_op_serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use tracer_common::ListOp;

    pub fn remove() -> ListOp {
        ListOp::Remove
    }

    pub fn serialize<S: Serializer>(op: &ListOp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(op.method())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ListOp, D::Error> {
        let name = String::deserialize(d)?;
        ListOp::ALL.into_iter().find(|op| op.method() == name).ok_or_else(|| D::Error::custom(format!("unknown list method {name}")))
    }
}

impl EventKind {
    /// The identity of the object the event is about: a slice's backing-array end
    /// address (sub-slices of one array share it), a map header, a `*list.List`.
    pub fn object(&self) -> u64 {
        match *self {
            Self::SliceGrow { old_ptr, old_cap, elem_size, .. } => {
                old_ptr.wrapping_add(old_cap.wrapping_mul(elem_size))
            }
            Self::MapIterStart { map, .. }
            | Self::MapIterNext { map, .. }
            | Self::MapWrite { map, .. }
            | Self::MapWriteInRange { map, .. }
            | Self::MapWriteOverlap { map, .. } => map,
            Self::ListRemoveEnter { list, .. } | Self::ListRemoveExit { list, .. } => list,
        }
    }
}

/// Decodes one record as the kernel wrote it (little-endian `Record`).
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let bytes: &[u8; RECORD_SIZE] = bytes.try_into().map_err(|_| DecodeError::Size { len: bytes.len() })?;
    from_record(&Record::from_bytes(bytes))
}

fn map_op(op: u64) -> Result<MapOp, DecodeError> {
    MapOp::from_u64(op).ok_or(DecodeError::MapOp { op })
}

pub fn from_record(rec: &Record) -> Result<Event, DecodeError> {
    let a = rec.args;
    let kind = match RecordKind::from_u16(rec.kind).ok_or(DecodeError::Kind { kind: rec.kind })? {
        RecordKind::SliceGrow => EventKind::SliceGrow {
            old_ptr: a[0],
            old_len: a[1],
            old_cap: a[2],
            new_len: a[3],
            elem_size: a[4] & 0xffff_ffff,
            gc_cycle: (a[4] >> GC_CYCLE_SHIFT) as u32,
            repeated: rec.flags & RECORD_REPEATED != 0,
        },
        RecordKind::MapIterStart => EventKind::MapIterStart { map: a[0], iter: a[1] },
        RecordKind::MapIterNext => {
            EventKind::MapIterNext { map: a[0], iter: a[1], writing: a[2] != 0, unseen_until: a[3] }
        }
        RecordKind::MapWrite => EventKind::MapWrite { map: a[0], op: map_op(a[1])?, writing: a[2] != 0 },
        RecordKind::MapWriteInRange => EventKind::MapWriteInRange { map: a[0], op: map_op(a[1])?, iter: a[3] },
        RecordKind::MapWriteOverlap => {
            EventKind::MapWriteOverlap { map: a[0], op: map_op(a[1])?, writing: a[2] != 0, other: a[3] }
        }
        RecordKind::ListRemoveEnter => {
            EventKind::ListRemoveEnter { list: a[0], elem: a[1], elem_list: a[2], op: ListOp::from_u64(a[3]).ok_or(DecodeError::ListOp { op: a[3] })? }
        }
        RecordKind::ListRemoveExit => EventKind::ListRemoveExit { list: a[0], elem: a[1] },
    };
    Ok(Event {
        ts_ns: rec.ts_ns,
        tgid: rec.tgid,
        tid: rec.tid,
        goid: rec.goid,
        pc: rec.pc,
        probe: rec.probe,
        stack_id: u32::try_from(rec.stack_id).ok(),
        kind,
    })
}

/// An event back in the kernel's record layout (only the flags the decoder reads).
pub fn to_record(ev: &Event) -> Record {
    let mut flags = 0u16;
    let (kind, args) = match ev.kind {
        EventKind::SliceGrow { old_ptr, old_len, old_cap, new_len, elem_size, gc_cycle, repeated } => {
            if repeated {
                flags |= RECORD_REPEATED;
            }
            let packed = (elem_size & 0xffff_ffff) | u64::from(gc_cycle) << GC_CYCLE_SHIFT;
            (RecordKind::SliceGrow, [old_ptr, old_len, old_cap, new_len, packed])
        }
        EventKind::MapIterStart { map, iter } => (RecordKind::MapIterStart, [map, iter, 0, 0, 0]),
        EventKind::MapIterNext { map, iter, writing, unseen_until } => {
            (RecordKind::MapIterNext, [map, iter, u64::from(writing), unseen_until, 0])
        }
        EventKind::MapWrite { map, op, writing } => (RecordKind::MapWrite, [map, op as u64, u64::from(writing), 0, 0]),
        EventKind::MapWriteInRange { map, op, iter } => (RecordKind::MapWriteInRange, [map, op as u64, 0, iter, 0]),
        EventKind::MapWriteOverlap { map, op, writing, other } => {
            (RecordKind::MapWriteOverlap, [map, op as u64, u64::from(writing), other, 0])
        }
        EventKind::ListRemoveEnter { list, elem, elem_list, op } => {
            (RecordKind::ListRemoveEnter, [list, elem, elem_list, op as u64, 0])
        }
        EventKind::ListRemoveExit { list, elem } => (RecordKind::ListRemoveExit, [list, elem, 0, 0, 0]),
    };
    Record {
        kind: kind as u16,
        flags,
        probe: ev.probe,
        ts_ns: ev.ts_ns,
        tgid: ev.tgid,
        tid: ev.tid,
        goid: ev.goid,
        pc: ev.pc,
        stack_id: ev.stack_id.map_or(-1, i64::from),
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grow_record() -> Record {
        Record {
            kind: RecordKind::SliceGrow as u16,
            flags: 0,
            probe: 7,
            ts_ns: 1,
            tgid: 10,
            tid: 11,
            goid: 42,
            pc: 0x401000,
            stack_id: -1,
            args: [0x1000, 4, 4, 5, 8 | 3 << GC_CYCLE_SHIFT],
        }
    }

    #[test]
    fn decodes_slice_growth_and_its_array_end() {
        let ev = decode(&grow_record().to_bytes()).unwrap();
        assert_eq!(ev.goid, 42);
        assert_eq!(ev.stack_id, None);
        assert_eq!(ev.kind.object(), 0x1000 + 4 * 8);
        assert!(matches!(ev.kind, EventKind::SliceGrow { elem_size: 8, gc_cycle: 3, .. }));
    }

    #[test]
    fn rejects_wrong_size_and_unknown_kind() {
        assert_eq!(decode(&[0; 10]), Err(DecodeError::Size { len: 10 }));
        let mut r = grow_record();
        r.kind = 99;
        assert_eq!(decode(&r.to_bytes()), Err(DecodeError::Kind { kind: 99 }));
    }
}
