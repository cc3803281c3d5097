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

/// RLIMIT_NOFILE as this process found it, when [`raise_open_files_limit`] raised it:
/// children started with [`fork_gated_exec`] get it back.
static ORIGINAL_NOFILE: std::sync::OnceLock<libc::rlimit> = std::sync::OnceLock::new();

/// Raises the soft limit of open files to the hard one, and the hard one to the
/// kernel's `fs.nr_open` where allowed (root): every uprobe link holds a descriptor,
/// one per probe on the per-probe attach path. Returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let ceiling = crate::procfs::kernel_setting("fs/nr_open").and_then(|t| t.parse::<libc::rlim_t>().ok());
    let hard = ceiling.filter(|&c| c > limit.rlim_max).map_or(limit.rlim_max, |c| {
        let wider = libc::rlimit { rlim_cur: limit.rlim_cur, rlim_max: c };
        // SAFETY: setrlimit reads one rlimit through a valid pointer; refused without CAP_SYS_RESOURCE.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wider) } == 0 { c } else { limit.rlim_max }
    });
    if limit.rlim_cur < hard {
        let raised = libc::rlimit { rlim_cur: hard, rlim_max: hard };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let _ = ORIGINAL_NOFILE.set(limit);
    }
    Ok(hard)
}

/// Forks; the child waits for one byte on `gate_read` (closing its copy of
/// `gate_write` first, so that ghostrace's death closes the gate, and taking back the
/// open-files limit ghostrace started with), then execs `path`
/// with the null-terminated `argv`. Without the byte the child exits with 126; a
/// failed exec exits with 127. Returns the child's pid.
pub fn fork_gated_exec(
    path: &std::ffi::CStr,
    argv: &[*const libc::c_char],
    gate_read: std::os::fd::RawFd,
    gate_write: std::os::fd::RawFd,
) -> io::Result<libc::pid_t> {
    assert!(argv.last().is_some_and(|p| p.is_null()), "argv must be null-terminated");
    let nofile = ORIGINAL_NOFILE.get().copied();
    // SAFETY: after fork the child only calls async-signal-safe functions (close,
    // signal, setrlimit, read, execv, _exit) on memory the parent prepared before forking.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the child never returns from this block.
        unsafe {
            libc::close(gate_write);
            // The parent's handlers (tokio's) would run here on its copies of their
            // pipes: a held child takes these signals as any process does.
            for sig in CAUGHT_SIGNALS {
                libc::signal(sig, libc::SIG_DFL);
            }
            if let Some(limit) = &nofile {
                libc::setrlimit(libc::RLIMIT_NOFILE, limit);
            }
            let mut byte = 0u8;
            if libc::read(gate_read, (&raw mut byte).cast(), 1) != 1 {
                libc::_exit(126);
            }
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 { Err(io::Error::last_os_error()) } else { Ok(pid) }
}

/// Waits for a child of this process; returns its raw wait status.
pub fn wait_child(pid: libc::pid_t) -> io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer for the call.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The wait status of `pid` if it has exited, without blocking.
pub fn try_wait_child(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer for the call.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        n if n == pid => Ok(Some(status)),
        _ => {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(err) }
        }
    }
}

/// Sends `sig` to `pid`; async-signal-safe.
pub fn send_signal(pid: libc::pid_t, sig: libc::c_int) -> bool {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether a process exists (signal 0 probes without sending anything).
pub fn process_exists(pid: u32) -> bool {
    send_signal(pid as libc::pid_t, 0) || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The signals ghostrace's event loops catch (through tokio), reset in a forked child.
pub const CAUGHT_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD];

/// Clock ticks per second of the CPU times in /proc/PID/stat (`USER_HZ`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// CPU time used so far by the calling thread, in ns (user and system: uprobe
/// traps are charged to the thread that hit them).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `union bpf_attr` as the BPF_MAP_*_BATCH commands read it (linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;

/// Writes `values` (an equal share of bytes a key) to `keys` of the array map `map`
/// in one system call: one call a key cost 100 k calls to attach a large program.
pub fn array_update_keys(map: std::os::fd::BorrowedFd<'_>, keys: &[u32], values: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if keys.is_empty() {
        return Ok(());
    }
    assert_eq!(values.len() % keys.len(), 0, "one value a key");
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    // SAFETY: the attribute points at `count` keys and values the kernel only reads.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_UPDATE_BATCH, &raw mut attr, size_of::<BatchAttr>()) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The 8-byte words of a BPF array map created with `BPF_F_MMAPABLE`, mapped into
/// this process and written by the kernel side while user space reads them.
pub struct SharedWords {
    map: memmap2::MmapMut,
}

impl SharedWords {
    /// Maps the first `words` words of the array map `map`.
    pub fn map(map: std::os::fd::BorrowedFd<'_>, words: usize) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        let len = words.checked_mul(8).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "map too large"))?;
        // SAFETY: the kernel backs the mapping with the map's own pages for as long
        // as the mapping lives; every access below is an aligned atomic word.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(map.as_raw_fd())? };
        Ok(SharedWords { map })
    }

    fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(i < self.map.len() / 8, "word {i} past the mapping");
        // SAFETY: in bounds (above), 8-byte aligned (page-aligned base), and only
        // ever accessed atomically, here and by the kernel's plain aligned stores.
        unsafe { std::sync::atomic::AtomicU64::from_ptr(self.map.as_ptr().cast::<u64>().cast_mut().add(i)) }
    }

    pub fn load(&self, i: usize) -> u64 {
        self.word(i).load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn clear(&self, words: std::ops::Range<usize>) {
        for i in words {
            self.word(i).store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// What an event loop may wait on: each owns its descriptor from creation to drop
/// and always returns that one (implemented here only).
pub trait Pollable: std::os::fd::AsRawFd + sealed::Sealed {}

impl sealed::Sealed for crate::probes::ProcEvents {}
impl Pollable for crate::probes::ProcEvents {}
impl sealed::Sealed for aya::maps::RingBuf<aya::maps::MapData> {}
impl Pollable for aya::maps::RingBuf<aya::maps::MapData> {}
impl<T> sealed::Sealed for aya_log::EbpfLogger<T> {}
impl<T> Pollable for aya_log::EbpfLogger<T> {}

/// Registers `inner` with the current tokio runtime, to wait until it is readable.
pub fn when_readable<T: Pollable>(inner: T) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: a `Pollable` owns its descriptor until it is dropped and always returns
    // the same one, so it stays open and unchanged while the AsyncFd holds it.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}
