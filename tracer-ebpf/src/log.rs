//! Lines for the rare events worth one (a lost record, a failed map update, a
//! stack not captured, a `g` register that points nowhere), read by user space
//! only under `--bpf-log`. The loader sets `AYA_LOG_LEVEL` (0 when off), and the
//! verifier, knowing that constant, drops the logging code.

use aya_log_ebpf::{debug, warn};

// Functions of their own, called on the failure branches only: inlined, their
// buffers grew the callers' frames past the 512-byte stack (map_write_call: 400 to
// 496 bytes). Linux 6.1 counts these calls in the stack even when the level makes
// them dead code. aya-log's macros take a
// program context and ignore it: these run where none is at hand, so they pass a unit.

/// The record ring was full.
#[inline(never)]
pub fn record_lost(probe: u32) {
    warn!(&(), "probe {}: record lost, ring buffer full", probe);
}

/// `bpf_get_stackid` failed (`err`: -EFAULT with no user stack, -EEXIST on a bucket
/// taken by another stack, -ENOMEM): the record goes without a stack.
#[inline(never)]
pub fn no_stack(probe: u32, err: i32) {
    debug!(&(), "probe {}: no user stack (error {})", probe, err);
}

/// An update of `map` failed with `err`.
#[inline(always)]
pub fn update(result: Result<(), i32>, map: &'static str) {
    if let Err(err) = result {
        update_failed(map, err);
    }
}

#[inline(never)]
fn update_failed(map: &str, err: i32) {
    warn!(&(), "{} update failed (error {})", map, err);
}

/// The goroutine id could not be read through R14: not a `g` at this probe.
#[inline(never)]
pub fn no_goid(probe: u32, g: u64) {
    warn!(&(), "probe {}: goroutine id unreadable, R14 = {:x}", probe, g);
}
