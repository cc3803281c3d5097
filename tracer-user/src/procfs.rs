//! Everything ghostrace reads from /proc, for the whole crate: a process's executable
//! (path and file identity), where the kernel loaded it, name, cgroup, stat, status
//! and CPU times; this process's own maps and open files; the pids running now; and
//! the few kernel settings under /proc/sys. The `procfs` crate parses what it knows;
//! files wanted as their text (comm, cgroup, environ, settings) are read as they are.
//! A process may exit at any moment: every read of another process can fail, and
//! callers treat that as the process being gone.
#![forbid(unsafe_code)]

use std::{
    fs, io,
    os::{fd::RawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
};

use ::procfs::{
    ProcError,
    process::{Process as Proc, Stat, Status},
};

use crate::gobin::GoBinary;

/// An executable file: (device, inode) names it while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// A file's identity with its mtime and size, which tell a reused inode from the
/// file once known under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub id: FileId,
    pub mtime_ns: i64,
    pub size: u64,
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// A process as the daemon sees it.
#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    /// The executable's path in the process's own mount namespace.
    pub exe: String,
    pub comm: String,
    /// Empty unless asked for.
    pub cgroup: String,
    pub file: FileStamp,
}

/// `/proc/PID/exe`: reaches the executable even in another mount namespace.
pub fn exe_link(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/exe"))
}

/// This process's own executable.
pub fn own_exe() -> &'static Path {
    Path::new("/proc/self/exe")
}

/// A file this process holds open, by its descriptor: stays reachable while the
/// descriptor is open, whatever becomes of the path it was opened by.
pub fn own_fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// `/proc/PID/root`: the process's root directory, seen from here.
pub fn root_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root"))
}

/// `/proc/PID/environ`, as its NUL-separated bytes are read.
pub fn environ_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/environ"))
}

/// The process's namespace of `kind` (`uts`, `mnt`...), named as its
/// `/proc/PID/ns/KIND` link reads (`uts:[4026531838]`): equal names, same namespace.
pub fn namespace(pid: u32, kind: &str) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
}

/// The identity of the file `/proc/PID/exe` points to.
pub fn file_of(pid: u32) -> io::Result<FileStamp> {
    stamp(&exe_link(pid))
}

fn stamp(path: &Path) -> io::Result<FileStamp> {
    let meta = fs::metadata(path)?;
    Ok(FileStamp {
        id: FileId { dev: meta.dev(), ino: meta.ino() },
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        size: meta.size(),
    })
}

/// The crate's error as the `io::Error` a plain read gives, which callers print and
/// match on.
fn io_error(e: ProcError) -> io::Error {
    match e {
        ProcError::NotFound(_) => io::Error::from_raw_os_error(libc::ENOENT),
        ProcError::PermissionDenied(_) => io::Error::from_raw_os_error(libc::EACCES),
        ProcError::Io(e, _) => e,
        e => io::Error::other(e),
    }
}

/// `pid`'s /proc directory, held open; fails once the process is gone.
fn process(pid: u32) -> io::Result<Proc> {
    // pids never exceed 2^22 (PID_MAX_LIMIT); a larger one names no process.
    Proc::new(i32::try_from(pid).unwrap_or(-1)).map_err(io_error)
}

fn myself() -> io::Result<Proc> {
    Proc::myself().map_err(io_error)
}

/// The path `/proc/PID/exe` links to (" (deleted)" appended once the file is gone).
pub fn exe(pid: u32) -> io::Result<PathBuf> {
    process(pid)?.exe().map_err(io_error)
}

/// The executable's own path, when it reaches from here the very file `pid` runs
/// (not once deleted, nor a path of another mount namespace): a name that outlives
/// the process, unlike /proc/PID/exe.
pub fn exe_path(pid: u32) -> Option<PathBuf> {
    let path = exe(pid).ok()?;
    (stamp(&path).ok()? == file_of(pid).ok()?).then_some(path)
}

/// Reads a process; fails for kernel threads (no executable) and processes that
/// are gone.
pub fn read(pid: u32, with_cgroup: bool) -> io::Result<Process> {
    let exe = exe(pid)?.to_string_lossy().into_owned();
    let file = file_of(pid)?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?.trim_end().to_string();
    let cgroup = if with_cgroup { cgroup(pid)? } else { String::new() };
    Ok(Process { pid, exe, comm, cgroup, file })
}

/// `/proc/PID/cgroup`: the process's cgroup path in each hierarchy, as its text
/// (selectors match substrings of it).
pub fn cgroup(pid: u32) -> io::Result<String> {
    fs::read_to_string(format!("/proc/{pid}/cgroup"))
}

/// How far the kernel moved `binary`, the executable `pid` runs, from its link-time
/// addresses (ASLR places each PIE process anew): the entry point it started at
/// (AT_ENTRY in /proc/PID/auxv) minus the ELF's.
pub fn load_bias(pid: u32, binary: &GoBinary) -> io::Result<u64> {
    if !binary.is_pie() {
        return Ok(0);
    }
    let auxv = process(pid)?.auxv().map_err(io_error)?;
    let entry = auxv.get(&AT_ENTRY).copied();
    entry.map(|e| binary.load_bias(e)).ok_or_else(|| io::Error::other(format!("no AT_ENTRY in /proc/{pid}/auxv")))
}

const AT_ENTRY: u64 = 9;

/// `/proc/PID/stat`; `None` once the process is gone.
pub fn stat(pid: u32) -> Option<Stat> {
    process(pid).ok()?.stat().ok()
}

/// Whether `pid` is stopped by a signal (state `T` in /proc/PID/stat).
pub fn is_stopped(pid: u32) -> bool {
    stat(pid).is_some_and(|s| s.state == 'T')
}

/// The parent pid of `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    u32::try_from(stat(pid)?.ppid).ok()
}

/// Whether /proc still lists `pid` (a zombie is listed until reaped).
pub fn is_listed(pid: u32) -> bool {
    process(pid).is_ok()
}

/// CPU seconds of `pid`'s live threads, in ns precision from each thread's
/// schedstat (a 20 ms cycle is two 10 ms ticks of /proc/PID/stat), else from
/// /proc/PID/stat (user + system, all threads, exited ones included).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let proc = process(pid).ok()?;
    let from_schedstat = proc.tasks().ok().and_then(|tasks| {
        let mut ns = 0u64;
        for task in tasks.flatten() {
            ns += task.schedstat().ok()?.sum_exec_runtime;
        }
        Some(ns as f64 / 1e9)
    });
    from_schedstat.or_else(|| {
        let stat = proc.stat().ok()?;
        Some((stat.utime + stat.stime) as f64 / crate::sys::clock_ticks_per_second() as f64)
    })
}

/// The pids of /proc now.
pub fn pids() -> io::Result<Vec<u32>> {
    let all = ::procfs::process::all_processes().map_err(io_error)?;
    // A process that exits while listed drops out with its error.
    Ok(all.filter_map(|p| u32::try_from(p.ok()?.pid).ok()).collect())
}

/// `/proc/PID/status`; `None` when /proc cannot tell.
pub fn status(pid: u32) -> Option<Status> {
    process(pid).ok()?.status().ok()
}

/// The file descriptors this process holds open now (0 when /proc cannot tell).
pub fn own_open_files() -> usize {
    myself().and_then(|p| p.fd_count().map_err(io_error)).unwrap_or(0)
}

/// The effective user of this process (the owner of /proc/self).
pub fn own_uid() -> Option<u32> {
    myself().ok()?.uid().ok()
}

/// The offset in its file of this process's mapped code at `addr` (from
/// /proc/self/maps).
pub fn own_file_offset(addr: u64) -> Option<u64> {
    let maps = myself().ok()?.maps().ok()?;
    let map = maps.into_iter().find(|m| (m.address.0..m.address.1).contains(&addr))?;
    Some(addr - map.address.0 + map.offset)
}

/// The id of this boot of the kernel (`kernel.random.boot_id`); empty when unknown.
pub fn boot_id() -> String {
    ::procfs::sys::kernel::random::boot_id().unwrap_or_default()
}

/// A kernel setting under /proc/sys (`kernel/osrelease`, `fs/nr_open`), trimmed.
pub fn kernel_setting(name: &str) -> Option<String> {
    fs::read_to_string(Path::new("/proc/sys").join(name)).ok().map(|t| t.trim().to_string())
}

/// The file name of an executable path, for the `binary` label (a deleted file
/// reads as "name (deleted)").
pub fn label_of(exe: &str) -> String {
    let name = exe.rsplit('/').next().unwrap_or(exe);
    name.strip_suffix(" (deleted)").unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use std::{
        fs::File,
        process::{Child, Command},
        time::{Duration, Instant},
    };

    use super::*;

    fn run(program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Waits up to 5 s for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let t = Instant::now();
        while !done() {
            if t.elapsed() > Duration::from_secs(5) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    fn sleeper() -> (Child, u32) {
        let child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id();
        // Until it has exec'd, /proc shows a copy of the test process.
        assert!(eventually(|| read(pid, false).is_ok_and(|p| p.comm == "sleep")));
        (child, pid)
    }

    #[test]
    fn reads_this_process() {
        let me = read(std::process::id(), true).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.exe, exe.to_string_lossy());
        assert_eq!(me.file.id, stamp(&exe).unwrap().id);
        assert!(!me.comm.is_empty());
        assert!(me.cgroup.contains("::") || me.cgroup.contains(':'), "{}", me.cgroup);
        assert!(pids().unwrap().contains(&std::process::id()));
        assert_eq!(exe_path(std::process::id()), Some(exe));
        assert_eq!(parent_of(std::process::id()), Some(std::os::unix::process::parent_id()));
        assert!(!is_stopped(std::process::id()));
    }

    #[test]
    fn reads_a_child_then_fails_softly_once_it_is_gone() {
        let (mut child, pid) = sleeper();
        let me = std::process::id();
        let process = read(pid, true).unwrap();
        let sleep = PathBuf::from(run("sh", &["-c", "readlink -f \"$(command -v sleep)\""]));
        assert_eq!(exe(pid).unwrap(), sleep);
        assert_eq!(exe_path(pid), Some(sleep.clone()));
        assert_eq!(process.file.id, stamp(&sleep).unwrap().id);
        assert_eq!(process.cgroup, cgroup(me).unwrap(), "a child starts in its parent's cgroup");
        assert_eq!(parent_of(pid), Some(me));
        assert_eq!(status(pid).map(|s| (s.name, s.ppid)), Some(("sleep".into(), i32::try_from(me).unwrap())));
        assert!(pids().unwrap().contains(&pid));
        assert!(cpu_seconds(pid).is_some_and(|s| s >= 0.0));
        assert_eq!(namespace(pid, "uts"), namespace(me, "uts"));
        assert!(namespace(pid, "uts").is_some());

        run("kill", &["-STOP", &pid.to_string()]);
        assert!(eventually(|| is_stopped(pid)));
        run("kill", &["-CONT", &pid.to_string()]);
        assert!(eventually(|| !is_stopped(pid)));

        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!is_listed(pid));
        assert_eq!(read(pid, true).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(exe(pid).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(file_of(pid).is_err() && cgroup(pid).is_err());
        assert!(stat(pid).is_none() && status(pid).is_none() && parent_of(pid).is_none() && cpu_seconds(pid).is_none());
        assert!(!is_stopped(pid) && exe_path(pid).is_none() && namespace(pid, "uts").is_none());
        assert!(!pids().unwrap().contains(&pid));
    }

    #[test]
    fn own_cpu_time_is_read() {
        let start = cpu_seconds(std::process::id()).expect("own stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_seconds(std::process::id()).unwrap() > start);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn reads_its_own_status_files_and_code() {
        let status = status(std::process::id()).unwrap();
        assert_eq!(u32::try_from(status.tgid).unwrap(), std::process::id());
        assert_eq!(status.name, read(std::process::id(), false).unwrap().comm);
        assert_eq!(own_uid(), Some(run("id", &["-u"]).parse().unwrap()));

        let before = own_open_files();
        let held = File::open(own_exe()).unwrap();
        assert!(own_open_files() > before);
        drop(held);

        // The code of a function lies in this executable, at the offset the maps give.
        let code = reads_its_own_status_files_and_code as *const () as u64;
        let offset = own_file_offset(code).unwrap();
        assert!(offset < fs::metadata(own_exe()).unwrap().len());
        assert_eq!(own_file_offset(code + 1), Some(offset + 1));
        assert_eq!(own_file_offset(0), None);
    }

    #[test]
    fn reads_kernel_settings() {
        assert_eq!(kernel_setting("kernel/osrelease"), Some(run("uname", &["-r"])));
        assert!(kernel_setting("fs/nr_open").unwrap().parse::<u64>().unwrap() > 0);
        assert_eq!(kernel_setting("kernel/no_such_setting"), None);
        let id = boot_id();
        assert_eq!((id.len(), id.matches('-').count()), (36, 4), "{id}");
        assert_eq!(boot_id(), id);
    }

    #[test]
    fn labels_are_file_names() {
        assert_eq!(label_of("/srv/bin/api"), "api");
        assert_eq!(label_of("/srv/bin/api (deleted)"), "api");
        assert_eq!(label_of("api"), "api");
    }
}
