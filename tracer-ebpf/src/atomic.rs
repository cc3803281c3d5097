//! Compare-and-swap and swap on words of map values, where two CPUs' programs meet.
//! The kernel has had BPF_CMPXCHG and BPF_XCHG since 5.12, but the target offers no
//! atomic compare-and-swap (and the linker rejects the IR's `cmpxchg`): they are
//! written as the instructions themselves. An aligned word's plain load and store
//! are single instructions, atomic as they stand.

use core::arch::asm;

/// Stores `new` at `word` if it holds `old`: `Ok(old)`, else `Err(what it holds)`.
///
/// # Safety
/// `word` points at a live, 8-byte aligned word of a map value.
#[inline(always)]
pub unsafe fn compare_exchange(word: *mut u64, old: u64, new: u64) -> Result<u64, u64> {
    let mut seen = old;
    // SAFETY: the caller's; the instruction compares with and returns through r0.
    unsafe {
        asm!("r0 = cmpxchg_64({word} + 0, r0, {new})", word = in(reg) word, new = in(reg) new, inout("r0") seen, options(nostack));
    }
    if seen == old { Ok(seen) } else { Err(seen) }
}

/// Stores `new` at `word`, returning what it held.
///
/// # Safety
/// As [`compare_exchange`].
#[inline(always)]
pub unsafe fn swap(word: *mut u64, new: u64) -> u64 {
    let mut v = new;
    // SAFETY: the caller's.
    unsafe {
        asm!("{v} = xchg_64({word} + 0, {v})", word = in(reg) word, v = inout(reg) v, options(nostack));
    }
    v
}

/// # Safety
/// As [`compare_exchange`].
#[inline(always)]
pub unsafe fn load(word: *mut u64) -> u64 {
    // SAFETY: the caller's.
    unsafe { core::ptr::read_volatile(word) }
}

/// # Safety
/// As [`compare_exchange`].
#[inline(always)]
pub unsafe fn store(word: *mut u64, v: u64) {
    // SAFETY: the caller's.
    unsafe { core::ptr::write_volatile(word, v) }
}
