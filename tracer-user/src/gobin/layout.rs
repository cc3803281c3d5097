//! Runtime struct offsets the kernel side needs: `g.goid`, `g.m`, `m.procid`.
//!
//! From the binary's DWARF (`runtime.g` / `runtime.m` members) when present,
//! otherwise from a per-version table measured on linux/amd64 and arm64
//! (../shared/GO-RUNTIME.md; checked against DWARF by `tests/gobin_oracle.rs` for
//! every installed toolchain).

use super::GoVersion;

/// Where a [`RuntimeLayout`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutSource {
    /// Read from the binary's DWARF.
    Dwarf,
    /// From the built-in per-version table.
    Table,
}

/// Offsets into runtime structures, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeLayout {
    /// `runtime.g.goid`
    pub goid_offset: u64,
    /// `runtime.g.m`
    pub m_offset: u64,
    /// `runtime.m.procid` (the thread id)
    pub procid_offset: u64,
    pub source: LayoutSource,
    /// False when the table row was extrapolated for a version nobody measured.
    pub verified: bool,
}

/// The layout from DWARF offsets.
pub(crate) fn dwarf_layout((goid_offset, m_offset, procid_offset): (u64, u64, u64)) -> RuntimeLayout {
    RuntimeLayout { goid_offset, m_offset, procid_offset, source: LayoutSource::Dwarf, verified: true }
}

/// A Go release as (major, minor).
type Release = (u32, u32);

/// (first version, last version, goid, m, procid) as measured.
const TABLE: &[(Release, Release, u64, u64, u64)] =
    &[((1, 19), (1, 22), 152, 48, 72), ((1, 23), (1, 24), 160, 48, 72), ((1, 25), (1, 27), 152, 48, 64)];

/// The table row for `v`; versions outside the measured range take the nearest
/// row and are marked unverified.
pub fn table_layout(v: GoVersion) -> RuntimeLayout {
    let key = (v.major, v.minor);
    let row = TABLE.iter().find(|(lo, hi, ..)| key >= *lo && key <= *hi);
    let (verified, row) = match row {
        Some(r) => (true, r),
        None if key < TABLE[0].0 => (false, &TABLE[0]),
        None => (false, &TABLE[TABLE.len() - 1]),
    };
    // 1.20 sits between measured rows; nobody had a 1.20 toolchain to check.
    let verified = verified && key != (1, 20);
    RuntimeLayout { goid_offset: row.2, m_offset: row.3, procid_offset: row.4, source: LayoutSource::Table, verified }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows() {
        let l = table_layout(GoVersion::new(1, 24, 11));
        assert_eq!((l.goid_offset, l.m_offset, l.procid_offset, l.verified), (160, 48, 72, true));
        let l = table_layout(GoVersion::new(1, 27, 3));
        assert_eq!((l.goid_offset, l.procid_offset), (152, 64));
        assert!(!table_layout(GoVersion::new(1, 20, 0)).verified);
        assert!(!table_layout(GoVersion::new(1, 30, 0)).verified);
        assert!(!table_layout(GoVersion::new(1, 17, 0)).verified);
    }
}
