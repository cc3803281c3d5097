//! Bounded per-object state: a table keyed by (tgid, address) with a capacity
//! (CLOCK eviction, an approximation of least-recently-used) and a time-to-live,
//! that hands every entry it drops back to its owner.

use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashTable;

/// A fast hasher for small integer keys of trusted origin (addresses, program
/// counters, enum tags) in the engine's side maps.
#[derive(Default)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn finish(&self) -> u64 {
        // Fold so the high bits (hashbrown's tag) depend on every input bit.
        let m = u128::from(self.0) * 0x2545_f491_4f6c_dd1d;
        (m as u64) ^ ((m >> 64) as u64)
    }
}

pub(crate) type FoldBuild = BuildHasherDefault<FoldHasher>;

/// An object of one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub tgid: u32,
    pub addr: u64,
}

impl Key {
    pub fn new(tgid: u32, addr: u64) -> Self {
        Self { tgid, addr }
    }

    /// Folded multiply: addresses share most of their high and low bits, and
    /// hashbrown takes the bucket from the low bits and its tag from the top 7.
    fn hash(self) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let x = self.addr ^ u64::from(self.tgid).rotate_left(40);
        let m = u128::from(x ^ 0x2545_f491_4f6c_dd1d) * u128::from(K);
        (m as u64) ^ ((m >> 64) as u64)
    }
}

/// Why an entry left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The table was full and the clock hand chose this entry.
    Evicted,
    /// Untouched for longer than the time-to-live.
    Expired,
    /// The stream ended.
    Drained,
}

const OCCUPIED: u8 = 1;
/// Used since the clock hand last passed (CLOCK's reference bit).
const REFERENCED: u8 = 2;

/// Laid out by hand so the flags share the key's padding word.
struct Slot<V> {
    addr: u64,
    tgid: u32,
    flags: u8,
    value: V,
}

impl<V> Slot<V> {
    fn key(&self) -> Key {
        Key::new(self.tgid, self.addr)
    }

    fn occupied(&self) -> bool {
        self.flags & OCCUPIED != 0
    }
}

/// Slots never move, so a touch writes only the slot it reads (no recency list to
/// relink: that cost two extra cache misses per record on large tables); the hash
/// table holds slot indexes only (4 bytes a bucket).
pub(crate) struct Table<V: Copy> {
    index: HashTable<u32>,
    slots: Vec<Slot<V>>,
    /// Engine time of each slot's last access, apart from the slots so the expiry
    /// sweep reads eight bytes per slot instead of the whole slot.
    touched: Vec<u64>,
    free: Vec<u32>,
    live: usize,
    cap: usize,
    ttl: u64,
    /// CLOCK's hand, and a second cursor that sweeps expired entries.
    hand: usize,
    sweep: usize,
    pub evicted: u64,
    pub expired: u64,
}

impl<V: Copy> Table<V> {
    /// `cap` must be below `u32::MAX` (the engine's config checks it).
    pub fn new(cap: usize, ttl_ns: u64) -> Self {
        Self {
            index: HashTable::new(),
            slots: Vec::new(),
            touched: Vec::new(),
            free: Vec::new(),
            live: 0,
            cap,
            ttl: ttl_ns,
            hand: 0,
            sweep: 0,
            evicted: 0,
            expired: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    fn find(&self, key: Key) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(key.hash(), |&i| slots[i as usize].key() == key).map(|&i| i as usize)
    }

    fn stale(&self, i: usize, now: u64) -> bool {
        self.touched[i].saturating_add(self.ttl) < now
    }

    /// The entry without marking it used.
    pub fn peek_mut(&mut self, key: Key) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots[i].value)
    }

    /// The entry, marked as used now. An entry past its time-to-live is dropped
    /// (handed to `dropped`) and reported absent, whether or not the sweep reached it.
    pub fn touch(&mut self, key: Key, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) -> Option<&mut V> {
        let i = self.touch_index(key, now, dropped)?;
        Some(&mut self.slots[i].value)
    }

    /// For tables whose entries need nothing done when dropped: the entry for `key`,
    /// marked as used now, created by `init` when absent or expired.
    pub fn get_or_insert_with(&mut self, key: Key, now: u64, init: impl FnOnce() -> V) -> &mut V {
        match self.touch_index(key, now, &mut |_, _, _| {}) {
            Some(i) => &mut self.slots[i].value,
            None => self.insert(key, init(), now, &mut |_, _, _| {}),
        }
    }

    fn touch_index(&mut self, key: Key, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) -> Option<usize> {
        let i = self.find(key)?;
        if self.stale(i, now) {
            let v = self.unindex(i);
            self.free.push(i as u32);
            self.expired += 1;
            dropped(key, v, Removal::Expired);
            return None;
        }
        self.touched[i] = now;
        self.slots[i].flags |= REFERENCED;
        Some(i)
    }

    /// Adds an entry for an absent key; when full, the clock hand first drops one
    /// (handed to `dropped`).
    pub fn insert(&mut self, key: Key, value: V, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) -> &mut V {
        debug_assert!(self.find(key).is_none(), "insert of a present key");
        let slot = Slot { addr: key.addr, tgid: key.tgid, flags: OCCUPIED, value };
        let i = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = slot;
            i as usize
        } else if self.slots.len() < self.cap {
            self.slots.push(slot);
            self.touched.push(now);
            self.slots.len() - 1
        } else {
            let i = self.victim(now, dropped);
            self.slots[i] = slot;
            i
        };
        self.touched[i] = now;
        self.live += 1;
        let slots = &self.slots;
        self.index.insert_unique(key.hash(), i as u32, |&j| slots[j as usize].key().hash());
        &mut self.slots[i].value
    }

    /// Frees a slot by CLOCK: expired entries go first, referenced ones get a
    /// second chance. Called only when every slot is occupied.
    fn victim(&mut self, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let (key, why) = (
                self.slots[i].key(),
                match self.stale(i, now) {
                    true => Removal::Expired,
                    false if self.slots[i].flags & REFERENCED != 0 => {
                        self.slots[i].flags &= !REFERENCED;
                        continue;
                    }
                    false => Removal::Evicted,
                },
            );
            let v = self.unindex(i);
            match why {
                Removal::Expired => self.expired += 1,
                _ => self.evicted += 1,
            }
            dropped(key, v, why);
            return i;
        }
    }

    /// Examines up to `budget` slots for entries past their time-to-live.
    pub fn expire(&mut self, now: u64, budget: usize, dropped: &mut impl FnMut(Key, V, Removal)) {
        if budget == 0 || self.live == 0 {
            return;
        }
        for _ in 0..budget.min(self.slots.len()) {
            let i = self.sweep;
            self.sweep += 1;
            if self.sweep == self.slots.len() {
                self.sweep = 0;
            }
            if !self.stale(i, now) {
                continue;
            }
            if self.slots[i].occupied() {
                let key = self.slots[i].key();
                let v = self.unindex(i);
                self.free.push(i as u32);
                self.expired += 1;
                dropped(key, v, Removal::Expired);
            }
        }
    }

    /// Empties the table in slot order (deterministic for a given input).
    pub fn drain(&mut self, dropped: &mut impl FnMut(Key, V, Removal)) {
        for i in 0..self.slots.len() {
            if self.slots[i].occupied() {
                let key = self.slots[i].key();
                dropped(key, self.slots[i].value, Removal::Drained);
            }
        }
        self.index.clear();
        self.slots.clear();
        self.touched.clear();
        self.free.clear();
        (self.live, self.hand, self.sweep) = (0, 0, 0);
    }

    /// Bytes allocated by the table (index, slots, free list), for the memory figure.
    pub fn allocated_bytes(&self) -> usize {
        self.index.allocation_size()
            + self.slots.capacity() * size_of::<Slot<V>>()
            + self.touched.capacity() * 8
            + self.free.capacity() * 4
    }

    /// Unindexes slot `i` and marks it free (the caller reuses or lists it).
    fn unindex(&mut self, i: usize) -> V {
        let key = self.slots[i].key();
        if let Ok(entry) = self.index.find_entry(key.hash(), |&j| j as usize == i) {
            entry.remove();
        }
        self.slots[i].flags = 0;
        self.live -= 1;
        self.slots[i].value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(out: &mut Vec<(u64, Removal)>) -> impl FnMut(Key, u32, Removal) + '_ {
        move |k, _, why| out.push((k.addr, why))
    }

    #[test]
    fn evicts_an_unreferenced_entry_when_full() {
        let mut t = Table::new(3, u64::MAX);
        let mut out = Vec::new();
        for a in 1..=3 {
            t.insert(Key::new(1, a), 0, 0, &mut keep(&mut out));
        }
        t.touch(Key::new(1, 1), 1, &mut keep(&mut out));
        t.insert(Key::new(1, 4), 0, 2, &mut keep(&mut out));
        assert_eq!(out, [(2, Removal::Evicted)], "1 was used, 2 is the oldest unused");
        assert_eq!((t.evicted, t.len()), (1, 3));
        assert!(t.peek_mut(Key::new(1, 1)).is_some() && t.peek_mut(Key::new(1, 2)).is_none());
        t.drain(&mut keep(&mut out));
        assert_eq!(&out[1..], [(1, Removal::Drained), (4, Removal::Drained), (3, Removal::Drained)]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn expired_entries_are_absent_and_swept() {
        let mut t = Table::new(10, 100);
        let mut out = Vec::new();
        t.insert(Key::new(1, 1), 0, 0, &mut keep(&mut out));
        t.insert(Key::new(1, 2), 0, 50, &mut keep(&mut out));
        assert!(t.touch(Key::new(1, 1), 120, &mut keep(&mut out)).is_none());
        assert_eq!(out, [(1, Removal::Expired)]);
        t.expire(200, 10, &mut keep(&mut out));
        assert_eq!(out, [(1, Removal::Expired), (2, Removal::Expired)]);
        assert_eq!((t.expired, t.len()), (2, 0));
    }

    #[test]
    fn keys_of_different_processes_differ() {
        let mut t = Table::new(10, u64::MAX);
        let mut out = Vec::new();
        t.insert(Key::new(1, 7), 1u32, 0, &mut keep(&mut out));
        t.insert(Key::new(2, 7), 2, 0, &mut keep(&mut out));
        assert_eq!(t.peek_mut(Key::new(1, 7)), Some(&mut 1));
        assert_eq!(t.peek_mut(Key::new(2, 7)), Some(&mut 2));
    }

    #[test]
    fn survives_random_churn() {
        // Index, free list and clock against a model of the live keys.
        let mut t = Table::new(64, 500);
        let mut live = std::collections::BTreeSet::new();
        let mut x = 0x1234_5678_u64;
        for now in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = Key::new(1, x % 200);
            let mut gone = Vec::new();
            if t.touch(key, now, &mut keep(&mut gone)).is_none() {
                t.insert(key, 0, now, &mut keep(&mut gone));
                live.insert(key.addr);
            }
            if now % 7 == 0 {
                t.expire(now, 3, &mut keep(&mut gone));
            }
            for (a, _) in gone {
                if a != key.addr {
                    assert!(live.remove(&a));
                }
            }
            assert_eq!(t.len(), live.len());
            assert!(t.len() <= 64);
            assert!(live.iter().all(|&a| t.peek_mut(Key::new(1, a)).is_some()));
        }
    }
}
