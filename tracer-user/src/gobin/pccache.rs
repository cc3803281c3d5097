//! Decoded pc-value tables, kept per table. A look-up walks its table from the
//! function's entry, so naming every call site of one large function (an `init`
//! that fills a map with thousands of stores, a generated parser) costs a walk per
//! site, quadratic in the function's size: 44,000 probed sites of one real binary
//! took seconds. Decoded once, each later look-up is a binary search.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// Runs of one table: (end of the run relative to the function's entry, value),
/// in pc order; the first run starts at the entry.
pub(crate) type Runs = Arc<[(u32, i32)]>;

/// Most runs kept over all tables (8 bytes each): look-ups past it walk the table.
const MAX_RUNS: usize = 4 << 20;

#[derive(Default)]
pub(crate) struct PcCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// By offset into pctab: the linker shares one table between functions whose
    /// tables are equal, which relative pcs make harmless.
    tables: HashMap<u32, Runs>,
    runs: usize,
}

impl PcCache {
    pub(crate) fn get(&self, off: u32) -> Option<Runs> {
        self.lock().tables.get(&off).cloned()
    }

    /// Keeps `runs` while the cache has room.
    pub(crate) fn insert(&self, off: u32, runs: &Runs) {
        let mut inner = self.lock();
        if inner.runs + runs.len() <= MAX_RUNS && inner.tables.insert(off, runs.clone()).is_none() {
            inner.runs += runs.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves consistent data (plain inserts).
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value in effect `rel` bytes after the entry, or -1 past the last run.
pub(crate) fn value_at(runs: &[(u32, i32)], rel: u64) -> i32 {
    let i = runs.partition_point(|&(end, _)| u64::from(end) <= rel);
    runs.get(i).map_or(-1, |&(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_the_one_of_the_run_that_holds_the_pc() {
        let runs = [(4, 7), (10, -1), (12, 3)];
        assert_eq!([0, 3, 4, 9, 10, 11, 12, 100].map(|rel| value_at(&runs, rel)), [7, 7, -1, -1, 3, 3, -1, -1]);
        assert_eq!(value_at(&[], 0), -1);
    }

    #[test]
    fn the_cache_keeps_tables_until_it_is_full() {
        let cache = PcCache::default();
        let small: Runs = vec![(1, 1); 8].into();
        cache.insert(1, &small);
        assert_eq!(cache.get(1).map(|r| r.len()), Some(8));
        let huge: Runs = vec![(1, 1); MAX_RUNS].into();
        cache.insert(2, &huge);
        assert!(cache.get(2).is_none(), "past the bound a table is walked, not kept");
    }
}
