//! Lines for the rare events worth one (a lost record, a failed map update, a
//! stack not captured, a `g` register that points nowhere), read by user space
//! only under `--bpf-log`. Each is called on its failure branch only; the loader
//! sets `AYA_LOG_LEVEL` (0 when off), and the verifier, knowing that constant,
//! drops the logging code.

use aya_log_ebpf::{debug, warn};

// aya-log's macros take a program context and ignore it: these helpers run where
// none is at hand (map helpers), so they pass a unit.

/// The record ring was full.
#[inline(always)]
pub fn record_lost(probe: u32) {
    warn!(&(), "probe {}: record lost, ring buffer full", probe);
}

/// `bpf_get_stackid` failed (`err`: -EFAULT with no user stack, -EEXIST on a bucket
/// taken by another stack, -ENOMEM): the record goes without a stack.
#[inline(always)]
pub fn no_stack(probe: u32, err: i32) {
    debug!(&(), "probe {}: no user stack (error {})", probe, err);
}

/// An update of `map` failed with `err`.
#[inline(always)]
pub fn update(result: Result<(), i32>, map: &str) {
    if let Err(err) = result {
        warn!(&(), "{} update failed (error {})", map, err);
    }
}

/// The goroutine id could not be read through R14: not a `g` at this probe.
#[inline(always)]
pub fn no_goid(probe: u32, g: u64) {
    warn!(&(), "probe {}: goroutine id unreadable, R14 = {:x}", probe, g);
}
