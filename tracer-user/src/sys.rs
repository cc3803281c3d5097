//! The few operating-system calls that need `unsafe`, each with its reason.

use std::fs::File;
use std::io;

use memmap2::Mmap;

/// Maps `file` read-only into memory.
pub fn map_readonly(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this process. If another process
    // truncates or rewrites the file while it is mapped, reads may see the new
    // bytes or fault with SIGBUS; every reader of the mapping bounds-checks and
    // validates what it reads, and ghostrace analyses executables that are not
    // being rewritten while they run.
    unsafe { Mmap::map(file) }
}

/// CLOCK_MONOTONIC in ns: the clock of the kernel records (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
