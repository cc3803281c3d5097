//! What `run`, `attach` and `replay` share at the end: the JSON-lines file and the
//! exit status `--fail-on` asks for.

use std::{fs::File, io::BufWriter, path::Path};

use anyhow::{Context, Result};

use crate::{
    detect::{Finding, Severity, fails},
    export::json::{CoverageOf, JsonLines},
};

/// Exit status when `--fail-on` matched, as `go test -race` uses.
pub const FAIL_ON_STATUS: i32 = 66;

/// Writes `findings` as JSON lines to `path`, with wall-clock times
/// and each finding's coverage when known.
pub fn write_json(path: &Path, findings: &[Finding], unix_offset_ns: i128, coverage: Option<CoverageOf>) -> Result<()> {
    let out = File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut lines = JsonLines::new(BufWriter::new(out)).with_unix_offset(unix_offset_ns);
    if let Some(coverage) = coverage {
        lines = lines.with_coverage(coverage);
    }
    lines.write_all(findings)?;
    Ok(())
}

/// [`FAIL_ON_STATUS`] when a finding reaches `fail_on`, else `otherwise`.
pub fn exit_status(findings: &[Finding], fail_on: Option<Severity>, otherwise: i32) -> i32 {
    match fail_on {
        Some(threshold) if fails(findings, threshold) => FAIL_ON_STATUS,
        _ => otherwise,
    }
}
