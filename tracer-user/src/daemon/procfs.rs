//! What ghostrace reads about a process from /proc: its executable (path and file
//! identity), where the kernel loaded it, name, cgroup and /proc/PID/stat fields; and the pids running now, for
//! the start-up scan.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
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

/// The executable's own path, when it reaches from here the very file `pid` runs
/// (not once deleted, nor a path of another mount namespace): a name that outlives
/// the process, unlike /proc/PID/exe.
pub fn exe_path(pid: u32) -> Option<PathBuf> {
    let path = fs::read_link(exe_link(pid)).ok()?;
    (stamp(&path).ok()? == file_of(pid).ok()?).then_some(path)
}

/// Reads a process; fails for kernel threads (no executable) and processes that
/// are gone.
pub fn read(pid: u32, with_cgroup: bool) -> io::Result<Process> {
    let exe = fs::read_link(exe_link(pid))?.to_string_lossy().into_owned();
    let file = file_of(pid)?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm"))?.trim_end().to_string();
    let cgroup = if with_cgroup { cgroup(pid)? } else { String::new() };
    Ok(Process { pid, exe, comm, cgroup, file })
}

/// `/proc/PID/cgroup`: the process's cgroup path in each hierarchy.
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
    let auxv = fs::read(format!("/proc/{pid}/auxv"))?;
    // (key, value) pairs of native words, up to AT_NULL.
    let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let entry = auxv
        .chunks_exact(16)
        .map(|kv| (word(&kv[..8]), word(&kv[8..])))
        .take_while(|&(key, _)| key != AT_NULL)
        .find_map(|(key, value)| (key == AT_ENTRY).then_some(value));
    entry.map(|e| binary.load_bias(e)).ok_or_else(|| io::Error::other(format!("no AT_ENTRY in /proc/{pid}/auxv")))
}

const AT_NULL: u64 = 0;
const AT_ENTRY: u64 = 9;

/// The pids of /proc now.
/// Fields of /proc/PID/stat after the command name (man 5 proc numbers them from 3:
/// the state). The name is in parentheses and may itself hold spaces and parentheses,
/// so the fields start after the last ')'.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace().map(str::to_owned).collect())
}

/// Whether `pid` is stopped by a signal (state `T` in /proc/PID/stat).
pub fn is_stopped(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|state| state == "T"))
}

pub fn pids() -> io::Result<Vec<u32>> {
    Ok(fs::read_dir("/proc")?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
}

/// The file name of an executable path, for the `binary` label (a deleted file
/// reads as "name (deleted)").
pub fn label_of(exe: &str) -> String {
    let name = exe.rsplit('/').next().unwrap_or(exe);
    name.strip_suffix(" (deleted)").unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn labels_are_file_names() {
        assert_eq!(label_of("/srv/bin/api"), "api");
        assert_eq!(label_of("/srv/bin/api (deleted)"), "api");
        assert_eq!(label_of("api"), "api");
    }
}
