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
