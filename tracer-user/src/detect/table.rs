//! Bounded per-object state: a least-recently-used table with a time-to-live, keyed
//! by (tgid, address), that hands every entry it drops back to its owner.

use hashbrown::HashTable;

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

const NIL: u32 = u32::MAX;

struct Slot<V> {
    key: Key,
    /// Engine time of the last access, for the time-to-live.
    touched: u64,
    prev: u32,
    next: u32,
    value: V,
}

/// Why an entry left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The table was full and this was the least recently used entry.
    Evicted,
    /// Untouched for longer than the time-to-live.
    Expired,
    /// The stream ended.
    Drained,
}

/// Slots live densely in a `Vec` (removal swaps the last one in), linked into a
/// recency list by index; the hash table holds only slot indexes (4 bytes a bucket).
pub(crate) struct Table<V> {
    index: HashTable<u32>,
    slots: Vec<Slot<V>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    cap: usize,
    ttl: u64,
    pub evicted: u64,
    pub expired: u64,
}

impl<V> Table<V> {
    /// `cap` must be below `u32::MAX` (the engine's config checks it).
    pub fn new(cap: usize, ttl_ns: u64) -> Self {
        Self { index: HashTable::new(), slots: Vec::new(), head: NIL, tail: NIL, cap, ttl: ttl_ns, evicted: 0, expired: 0 }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    fn find(&self, key: Key) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(key.hash(), |&i| slots[i as usize].key == key).copied()
    }

    /// The entry without changing its recency.
    pub fn peek_mut(&mut self, key: Key) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots[i as usize].value)
    }

    /// The entry, marked as just used.
    pub fn touch(&mut self, key: Key, now: u64) -> Option<&mut V> {
        let i = self.find(key)?;
        self.unlink(i);
        self.push_front(i);
        let slot = &mut self.slots[i as usize];
        slot.touched = now;
        Some(&mut slot.value)
    }

    /// Adds an entry for an absent key, first dropping expired entries and, when full,
    /// the least recently used one (each handed to `dropped`).
    pub fn insert(&mut self, key: Key, value: V, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) -> &mut V {
        debug_assert!(self.find(key).is_none(), "insert of a present key");
        self.expire(now, dropped);
        if self.slots.len() >= self.cap {
            let (k, v) = self.remove_at(self.tail);
            self.evicted += 1;
            dropped(k, v, Removal::Evicted);
        }
        let i = self.slots.len() as u32;
        self.slots.push(Slot { key, touched: now, prev: NIL, next: NIL, value });
        let slots = &self.slots;
        self.index.insert_unique(key.hash(), i, |&j| slots[j as usize].key.hash());
        self.push_front(i);
        &mut self.slots[i as usize].value
    }

    /// Drops the entries untouched for longer than the time-to-live.
    pub fn expire(&mut self, now: u64, dropped: &mut impl FnMut(Key, V, Removal)) {
        while self.tail != NIL && self.slots[self.tail as usize].touched.saturating_add(self.ttl) < now {
            let (k, v) = self.remove_at(self.tail);
            self.expired += 1;
            dropped(k, v, Removal::Expired);
        }
    }

    /// Empties the table, least recently used first (a deterministic order).
    pub fn drain(&mut self, dropped: &mut impl FnMut(Key, V, Removal)) {
        while self.tail != NIL {
            let (k, v) = self.remove_at(self.tail);
            dropped(k, v, Removal::Drained);
        }
    }

    /// Bytes allocated by the table (index and slots), for the memory figure.
    pub fn allocated_bytes(&self) -> usize {
        self.index.allocation_size() + self.slots.capacity() * size_of::<Slot<V>>()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
        }
        match old {
            NIL => self.tail = i,
            h => self.slots[h as usize].prev = i,
        }
        self.head = i;
    }

    /// Removes slot `i`, moving the last slot into its place.
    fn remove_at(&mut self, i: u32) -> (Key, V) {
        self.unlink(i);
        let key = self.slots[i as usize].key;
        if let Ok(entry) = self.index.find_entry(key.hash(), |&j| j == i) {
            entry.remove();
        }
        let last = self.slots.len() as u32 - 1;
        if i != last {
            let moved_key = self.slots[last as usize].key;
            if let Some(j) = self.index.find_mut(moved_key.hash(), |&j| j == last) {
                *j = i;
            }
            let (prev, next) = (self.slots[last as usize].prev, self.slots[last as usize].next);
            match prev {
                NIL => self.head = i,
                p => self.slots[p as usize].next = i,
            }
            match next {
                NIL => self.tail = i,
                n => self.slots[n as usize].prev = i,
            }
        }
        let slot = self.slots.swap_remove(i as usize);
        (slot.key, slot.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(out: &mut Vec<(u64, Removal)>) -> impl FnMut(Key, u32, Removal) + '_ {
        move |k, _, why| out.push((k.addr, why))
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let mut t = Table::new(3, u64::MAX);
        let mut out = Vec::new();
        for a in 1..=3 {
            t.insert(Key::new(1, a), 0, 0, &mut keep(&mut out));
        }
        t.touch(Key::new(1, 1), 1);
        t.insert(Key::new(1, 4), 0, 2, &mut keep(&mut out));
        assert_eq!(out, [(2, Removal::Evicted)]);
        assert_eq!(t.evicted, 1);
        assert!(t.peek_mut(Key::new(1, 1)).is_some() && t.peek_mut(Key::new(1, 2)).is_none());
        t.drain(&mut keep(&mut out));
        assert_eq!(&out[1..], [(3, Removal::Drained), (1, Removal::Drained), (4, Removal::Drained)]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn expires_untouched_entries() {
        let mut t = Table::new(10, 100);
        let mut out = Vec::new();
        t.insert(Key::new(1, 1), 0, 0, &mut keep(&mut out));
        t.insert(Key::new(1, 2), 0, 50, &mut keep(&mut out));
        t.insert(Key::new(1, 3), 0, 120, &mut keep(&mut out));
        assert_eq!(out, [(1, Removal::Expired)]);
        assert_eq!(t.expired, 1);
    }

    #[test]
    fn keys_of_different_processes_differ() {
        let mut t = Table::new(10, u64::MAX);
        let mut out = Vec::new();
        *t.insert(Key::new(1, 7), 1u32, 0, &mut keep(&mut out)) += 0;
        t.insert(Key::new(2, 7), 2, 0, &mut keep(&mut out));
        assert_eq!(t.peek_mut(Key::new(1, 7)), Some(&mut 1));
        assert_eq!(t.peek_mut(Key::new(2, 7)), Some(&mut 2));
    }

    #[test]
    fn survives_random_churn() {
        // Cross-checks index, recency links and swap-removal against a naive model.
        let mut t = Table::new(64, u64::MAX);
        let mut model: Vec<u64> = Vec::new(); // most recent last
        let mut x = 0x1234_5678_u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = x % 200;
            let key = Key::new(1, a);
            if t.touch(key, step).is_some() {
                model.retain(|&m| m != a);
            } else {
                let mut dropped = Vec::new();
                t.insert(key, 0, step, &mut keep(&mut dropped));
                for (d, _) in dropped {
                    assert_eq!(model.remove(0), d);
                }
            }
            model.push(a);
            assert_eq!(t.len(), model.len());
        }
    }
}
