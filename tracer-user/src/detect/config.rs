//! Windows, thresholds and table bounds of the detection engine, with the defaults
//! docs/detectors.md justifies.

use std::time::Duration;

use thiserror::Error;

/// Engine settings. `Config::default()` holds the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `--window`: two growths of one array closer than this are concurrent
    /// (`slice_lost_append`, `slice_capacity_overlap`): so close that the array
    /// cannot have been freed by a GC cycle and its memory reused meanwhile; also how recent another goroutine's map write must be to
    /// be named as the one in progress. Default 1 ms: twice the p99 of a growslice on
    /// arrays up to 256 KiB (0.43 ms measured) plus the probe's own trap cost.
    pub window: Duration,
    /// A re-growth by another goroutine at least this long after the first growth is
    /// `slice_stale_header`. Default 100 ms: far beyond any racing append.
    pub stale_after: Duration,
    /// How long a slice candidate (`slice_lost_append`, `slice_capacity_overlap`) waits
    /// for evidence that the array is a template or pooled buffer copied by value before
    /// it becomes a finding. Default 1 s.
    pub settle: Duration,
    /// Per-object state untouched for this long is forgotten. Default 60 s.
    pub ttl: Duration,
    /// Bounds of the per-object tables (least recently used entries are evicted).
    pub max_arrays: usize,
    pub max_maps: usize,
    pub max_iterators: usize,
    pub max_lists: usize,
    /// Distinct (detector, call-site pair) findings kept; later ones are counted only.
    pub max_findings: usize,
    /// Every probe hit is in the stream: the kernel's transition filter was off (or
    /// sampled every hit). Only then can a goroutine's own write be placed inside
    /// its own range (`map_write_during_range`); the filter drops exactly the
    /// goroutine-local hits that would show a new range starting. Default false.
    pub complete_stream: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(1),
            stale_after: Duration::from_millis(100),
            settle: Duration::from_secs(1),
            ttl: Duration::from_secs(60),
            max_arrays: 1 << 20,
            max_maps: 1 << 16,
            max_iterators: 1 << 16,
            max_lists: 1 << 16,
            max_findings: 10_000,
            complete_stream: false,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("window must be longer than zero")]
    ZeroWindow,
    #[error("stale_after ({stale_after:?}) must not be shorter than the window ({window:?})")]
    StaleBeforeWindow { window: Duration, stale_after: Duration },
    #[error("settle ({settle:?}) must not be shorter than the window ({window:?})")]
    SettleBeforeWindow { window: Duration, settle: Duration },
    #[error("ttl ({ttl:?}) must not be shorter than settle ({settle:?})")]
    TtlBeforeSettle { settle: Duration, ttl: Duration },
    #[error("table bound `{name}` must be between 1 and {max}")]
    Bound { name: &'static str, max: usize },
}

/// Tables index their slots with u32.
const MAX_TABLE: usize = u32::MAX as usize - 1;

impl Config {
    /// Checks the relations the detectors rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.window.is_zero() {
            return Err(ConfigError::ZeroWindow);
        }
        if self.stale_after < self.window {
            return Err(ConfigError::StaleBeforeWindow { window: self.window, stale_after: self.stale_after });
        }
        if self.settle < self.window {
            return Err(ConfigError::SettleBeforeWindow { window: self.window, settle: self.settle });
        }
        if self.ttl < self.settle {
            return Err(ConfigError::TtlBeforeSettle { settle: self.settle, ttl: self.ttl });
        }
        for (name, v) in [
            ("max_arrays", self.max_arrays),
            ("max_maps", self.max_maps),
            ("max_iterators", self.max_iterators),
            ("max_lists", self.max_lists),
            ("max_findings", self.max_findings),
        ] {
            if v == 0 || v > MAX_TABLE {
                return Err(ConfigError::Bound { name, max: MAX_TABLE });
            }
        }
        Ok(())
    }

    pub(crate) fn ns(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ordered() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(c.window < c.stale_after && c.stale_after < c.settle && c.settle < c.ttl);
    }

    #[test]
    fn rejects_inconsistent_windows() {
        let c = Config { stale_after: Duration::from_micros(10), ..Config::default() };
        assert!(matches!(c.validate(), Err(ConfigError::StaleBeforeWindow { .. })));
        let c = Config { max_arrays: 0, ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::Bound { name: "max_arrays", max: MAX_TABLE }));
    }
}
