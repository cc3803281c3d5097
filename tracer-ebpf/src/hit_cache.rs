//! A direct-mapped cache of last hits on an array map, like a CPU cache: a key has
//! one slot, a different key found there is a miss, and a new hit overwrites it.
//! Array lookups are inlined by the verifier and nothing is ever evicted by a scan.
//! Hits on two CPUs may write one slot at once: a slot is copied word by word and
//! used only when its check word matches, so a torn slot reads as a miss.

use core::{
    mem::{offset_of, size_of, transmute},
    ptr::{read_volatile, write_volatile},
};

use aya_ebpf::maps::Array;
use tracer_common::hit_cache::{check, slot};

use crate::{
    emit::LastHits,
    maps::{Held, ObjectKey, Slot},
};

/// A slot's words before its check word: what the check covers.
#[repr(C)]
#[derive(Clone, Copy)]
struct Entry {
    key: ObjectKey,
    held: Held,
}

const WORDS: usize = size_of::<Entry>() / 8;
const _: () = assert!(WORDS * 8 == size_of::<Entry>() && offset_of!(Slot, check) == size_of::<Entry>());

impl LastHits for Array<Slot> {
    #[inline(always)]
    fn last(&self, key: &ObjectKey) -> Option<Held> {
        let p = self.get_ptr(slot(key.tgid, key.kind, key.addr))?.cast::<u64>();
        let mut words = [0u64; WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            // SAFETY: in bounds of the slot; volatile so that what is checked is what
            // is used (no second load of a word another CPU may be writing).
            *w = unsafe { read_volatile(p.add(i)) };
        }
        // SAFETY: as above.
        let sum = unsafe { read_volatile(p.add(WORDS)) };
        // SAFETY: Entry is repr(C) u64-aligned words without padding (asserted above).
        let entry: Entry = unsafe { transmute(words) };
        (entry.key == *key && sum == check(&words)).then_some(entry.held)
    }

    #[inline(always)]
    fn set(&self, key: &ObjectKey, held: &Held) {
        let Some(p) = self.get_ptr_mut(slot(key.tgid, key.kind, key.addr)) else { return };
        let p = p.cast::<u64>();
        // SAFETY: as in `last`.
        let words: [u64; WORDS] = unsafe { transmute(Entry { key: *key, held: *held }) };
        for (i, w) in words.iter().enumerate() {
            // SAFETY: in bounds of the slot.
            unsafe { write_volatile(p.add(i), *w) };
        }
        // SAFETY: as above.
        unsafe { write_volatile(p.add(WORDS), check(&words)) };
    }
}
