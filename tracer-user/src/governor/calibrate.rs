//! What one probe hit costs on this host, measured on ghostrace's own code: a
//! small function run N times untraced, then with a probe on an instruction the
//! kernel emulates (a CALL) and on one it single-steps. Cached per boot.

use std::{
    fs::File,
    hint::black_box,
    os::unix::fs::FileExt,
    path::PathBuf,
};

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{gobin::disasm::amd64_emulated, probes::Tracer, sys::thread_cpu_ns};

/// Calls per measurement: about 5 ms emulated and 150 ms single-stepped here.
const CALLS: u64 = 10_000;
/// Measurements per kind; the least is kept (the others met interruptions).
const ROUNDS: usize = 3;
/// The program attached: it returns at once for a process nobody traces.
const PROGRAM: &str = "slice_grow_call";

#[derive(Debug, Error)]
pub enum CalibrateError {
    #[error("calibration needs an x86-64 host")]
    Arch,
    #[error("cannot find the calibration function in /proc/self/maps")]
    NotMapped,
    #[error("cannot read ghostrace's own executable: {0}")]
    Read(#[source] std::io::Error),
    #[error("no {0} instruction in the calibration function")]
    NoInstruction(&'static str),
    #[error(transparent)]
    Probe(#[from] crate::probes::ProbeError),
}

/// CPU seconds one hit costs, by instruction kind.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HitCost {
    /// On an instruction the kernel emulates (one trap).
    pub emulated_s: f64,
    /// On any other instruction (a trap, a single step, a second trap).
    pub single_stepped_s: f64,
}

impl HitCost {
    pub fn per_hit(&self, emulated: bool) -> f64 {
        if emulated { self.emulated_s } else { self.single_stepped_s }
    }
}

/// Where the cost came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Measured,
    Cached,
}

/// The function the probes go on. Its CALL is emulated; its other instructions
/// (stack and register moves) are single-stepped.
#[inline(never)]
pub fn calibration_target(x: u64) -> u64 {
    calibration_leaf(black_box(x)).wrapping_add(black_box(3))
}

#[inline(never)]
fn calibration_leaf(x: u64) -> u64 {
    black_box(x.rotate_left(7) ^ 0x5a)
}

/// Thread CPU ns of `CALLS` calls.
fn run_calls() -> u64 {
    let start = thread_cpu_ns();
    for i in 0..CALLS {
        black_box(calibration_target(black_box(i)));
    }
    thread_cpu_ns().saturating_sub(start)
}

/// File offsets of an emulated and a single-stepped instruction of the target.
fn probe_points() -> Result<(u64, u64), CalibrateError> {
    if std::env::consts::ARCH != "x86_64" {
        return Err(CalibrateError::Arch);
    }
    let addr = calibration_target as *const () as u64;
    let offset = crate::procfs::own_file_offset(addr).ok_or(CalibrateError::NotMapped)?;
    let mut code = [0u8; 96];
    let exe = File::open(crate::procfs::own_exe()).map_err(CalibrateError::Read)?;
    let n = exe.read_at(&mut code, offset).map_err(CalibrateError::Read)?;
    let (mut emulated, mut stepped) = (None, None);
    for insn in &mut Decoder::with_ip(64, &code[..n], offset, DecoderOptions::NONE) {
        if insn.mnemonic() == Mnemonic::Ret || insn.is_invalid() {
            break;
        }
        if amd64_emulated(&insn) {
            if insn.mnemonic() == Mnemonic::Call {
                emulated.get_or_insert(insn.ip());
            }
        } else {
            stepped.get_or_insert(insn.ip());
        }
    }
    Ok((emulated.ok_or(CalibrateError::NoInstruction("emulated CALL"))?, stepped.ok_or(CalibrateError::NoInstruction("single-stepped"))?))
}

/// Measures the cost of a hit now (about half a second).
pub fn measure(tracer: &mut Tracer) -> Result<HitCost, CalibrateError> {
    let (emulated_at, stepped_at) = probe_points()?;
    let mut best = [u64::MAX; 3];
    for _ in 0..ROUNDS {
        best[0] = best[0].min(run_calls());
        for (slot, offset) in [(1, emulated_at), (2, stepped_at)] {
            let owner = tracer.attach_to_self(PROGRAM, offset)?;
            let took = run_calls();
            tracer.detach_owner(owner);
            best[slot] = best[slot].min(took);
        }
    }
    let per_hit = |ns: u64| ns.saturating_sub(best[0]) as f64 / CALLS as f64 / 1e9;
    Ok(HitCost { emulated_s: per_hit(best[1]), single_stepped_s: per_hit(best[2]) })
}

/// The cache file: `$XDG_CACHE_HOME/ghostrace`, else `/var/cache/ghostrace` for
/// root, else `~/.cache/ghostrace`.
pub fn cache_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // /proc/self belongs to the effective user: root writes to /var/cache.
        None if crate::procfs::own_uid() == Some(0) => {
            PathBuf::from("/var/cache")
        }
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(dir.join("ghostrace").join("calibration.json"))
}

/// What the cache holds: valid for one boot of one kernel and one ghostrace.
#[derive(Serialize, Deserialize, PartialEq)]
struct Cached {
    boot_id: String,
    ghostrace: String,
    cost: HitCost,
}

fn key() -> (String, String) {
    (crate::procfs::boot_id(), env!("CARGO_PKG_VERSION").to_string())
}

fn load() -> Option<HitCost> {
    let cached: Cached = serde_json::from_slice(&std::fs::read(cache_path()?).ok()?).ok()?;
    let (boot_id, ghostrace) = key();
    (cached.boot_id == boot_id && cached.ghostrace == ghostrace && !boot_id.is_empty()).then_some(cached.cost)
}

/// Writes the cache; a read-only or missing cache directory only costs the next
/// start-up a new measurement.
fn store(cost: HitCost) {
    let Some(path) = cache_path() else { return };
    let (boot_id, ghostrace) = key();
    let Ok(text) = serde_json::to_vec_pretty(&Cached { boot_id, ghostrace, cost }) else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Write then rename: a concurrent reader sees the old file or the new one.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// The cached cost, or a fresh measurement (cached for the next start).
pub fn cached_or_measure(tracer: &mut Tracer) -> Result<(HitCost, Source), CalibrateError> {
    if let Some(cost) = load() {
        return Ok((cost, Source::Cached));
    }
    let cost = measure(tracer)?;
    store(cost);
    Ok((cost, Source::Measured))
}

/// Rough figures for when measuring fails (GO-RUNTIME.md, this project's hosts).
pub const FALLBACK: HitCost = HitCost { emulated_s: 0.7e-6, single_stepped_s: 5e-6 };

/// The cost at start-up: cached, measured, or (saying so) the fallback.
pub fn at_startup(tracer: &mut Tracer) -> HitCost {
    match cached_or_measure(tracer) {
        Ok((cost, _)) => cost,
        Err(e) => {
            tracing::warn!("cannot calibrate the cost of a probe hit ({e}); assuming {FALLBACK}");
            FALLBACK
        }
    }
}

impl std::fmt::Display for HitCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} µs per emulated hit, {:.2} µs per single-stepped hit", self.emulated_s * 1e6, self.single_stepped_s * 1e6)
    }
}

/// Measures again and replaces the cache (`inspect --calibrate`).
pub fn remeasure(tracer: &mut Tracer) -> Result<HitCost, CalibrateError> {
    let cost = measure(tracer)?;
    store(cost);
    Ok(cost)
}

// The integration tests' one skip gate, so that GHOSTRACE_REQUIRE_BPF=1 fails a skip here too.
#[cfg(test)]
#[path = "../../tests/support/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_has_both_kinds_of_instruction() {
        if std::env::consts::ARCH != "x86_64" {
            skip::skip("the_target_has_both_kinds_of_instruction", "x86-64 only");
            return;
        }
        let (emulated, stepped) = probe_points().unwrap();
        assert_ne!(emulated, stepped);
        assert_eq!(black_box(calibration_target(1)), (1u64.rotate_left(7) ^ 0x5a) + 3);
    }
}
