//! When a finding's JSON line is written: at once when it is new, then at most once
//! per interval while its count grows, and a last time when its process is gone,
//! so a hot bug cannot flood the log.

use std::collections::HashMap;

use crate::detect::{Detector, Finding};

/// A finding of one process: its detector and call-site pair (the engine's
/// deduplication key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    detector: Detector,
    pcs: [u64; 2],
}

impl Key {
    fn of(f: &Finding) -> Self {
        let pc = |i: usize| f.goroutines.get(i).map_or(0, |g| g.pc);
        Self { detector: f.detector, pcs: [pc(0), pc(1)] }
    }
}

struct Seen {
    count: u64,
    printed_count: u64,
    printed_at_ns: u64,
}

/// What to do with a finding now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// First time seen.
    pub new: bool,
    /// Occurrences since the last look.
    pub occurrences: u64,
    /// Write its line now.
    pub print: bool,
    /// Its last line is behind its count (a line is due later).
    pub behind: bool,
}

/// The findings of one process seen so far (bounded by the engine's finding bound).
pub struct Limiter {
    interval_ns: u64,
    seen: HashMap<Key, Seen>,
}

impl Limiter {
    pub fn new(interval: std::time::Duration) -> Self {
        Self { interval_ns: interval.as_nanos() as u64, seen: HashMap::new() }
    }

    /// Looks at `f` at `now_ns`; `last` when its process is gone (a grown count is
    /// printed whatever the interval).
    pub fn observe(&mut self, f: &Finding, now_ns: u64, last: bool) -> Verdict {
        match self.seen.get_mut(&Key::of(f)) {
            None => {
                self.seen.insert(Key::of(f), Seen { count: f.count, printed_count: f.count, printed_at_ns: now_ns });
                Verdict { new: true, occurrences: f.count, print: true, behind: false }
            }
            Some(seen) => {
                let occurrences = f.count.saturating_sub(seen.count);
                seen.count = seen.count.max(f.count);
                let due = last || now_ns.saturating_sub(seen.printed_at_ns) >= self.interval_ns;
                let print = seen.count > seen.printed_count && due;
                if print {
                    (seen.printed_count, seen.printed_at_ns) = (seen.count, now_ns);
                }
                Verdict { new: false, occurrences, print, behind: seen.count > seen.printed_count }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::sample::finding;

    const S: u64 = 1_000_000_000;

    #[test]
    fn new_findings_print_at_once_then_once_per_interval() {
        let mut limiter = Limiter::new(std::time::Duration::from_secs(60));
        let mut f = finding();
        assert_eq!(limiter.observe(&f, 0, false), Verdict { new: true, occurrences: 3, print: true, behind: false });
        f.count = 10;
        assert_eq!(
            limiter.observe(&f, 5 * S, false),
            Verdict { new: false, occurrences: 7, print: false, behind: true }
        );
        f.count = 500;
        assert_eq!(
            limiter.observe(&f, 30 * S, false),
            Verdict { new: false, occurrences: 490, print: false, behind: true }
        );
        assert_eq!(
            limiter.observe(&f, 61 * S, false),
            Verdict { new: false, occurrences: 0, print: true, behind: false }
        );
        // Unchanged: nothing to say, even when due or last.
        assert!(!limiter.observe(&f, 200 * S, true).print);
        f.count = 501;
        assert!(limiter.observe(&f, 201 * S, true).print, "a grown count is printed when the process is gone");
    }

    #[test]
    fn call_site_pairs_are_separate_keys() {
        let mut limiter = Limiter::new(std::time::Duration::from_secs(60));
        let f = finding();
        let mut g = finding();
        g.goroutines[1].pc += 8;
        assert!(limiter.observe(&f, 0, false).new);
        assert!(limiter.observe(&g, 0, false).new);
        assert!(!limiter.observe(&f, 0, false).new);
    }
}
