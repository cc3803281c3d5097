//! What the daemon needs beyond one traced process: the exec/exit tracepoints that
//! announce processes, attachments detachable one binary at a time, and a look at
//! the kernel's table of traced processes.

use std::{
    ops::Range,
    os::fd::{AsRawFd, RawFd},
    path::Path,
};

use aya::{
    maps::{Array, HashMap, MapData, RingBuf},
    programs::TracePoint,
};
use tracer_common::{Followed, PROC_EVENT_SIZE, ProcConfig, ProcEventKind};

use super::{ProbeError, Tracer, map_err};
use crate::gobin::ProbePlan;

/// The lifecycle programs and the tracepoints they attach to.
const LIFECYCLE: [(&str, &str, &str); 2] =
    [("process_exec", "sched", "sched_process_exec"), ("process_exit", "sched", "sched_process_exit")];

/// The probes of one binary (inode), attached for all its processes.
#[derive(Debug)]
pub struct Attachment {
    owner: u32,
    /// Their ids in the probe table (and counter indexes).
    pub ids: Range<u32>,
}

impl Attachment {
    pub fn probes(&self) -> usize {
        self.ids.len()
    }
}

/// Process execs and exits as the kernel announces them.
pub struct ProcEvents {
    ring: RingBuf<MapData>,
}

impl ProcEvents {
    /// The next event: (kind, tgid); `None` when none is waiting.
    pub fn next_event(&mut self) -> Option<(ProcEventKind, u32)> {
        loop {
            let item = self.ring.next()?;
            if item.len() != PROC_EVENT_SIZE {
                continue;
            }
            let word = |at: usize| u32::from_le_bytes(item[at..at + 4].try_into().expect("4 bytes"));
            if let Some(kind) = ProcEventKind::from_u32(word(0)) {
                return Some((kind, word(4)));
            }
        }
    }
}

/// Readable when an event waits: an event loop polls it (tokio's `AsyncFd`).
impl AsRawFd for ProcEvents {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}

impl Tracer {
    /// Loads and attaches the exec and exit tracepoints; their events arrive from
    /// now on, for every process on the host.
    pub fn watch_processes(&mut self) -> Result<ProcEvents, ProbeError> {
        for (name, category, event) in LIFECYCLE {
            let program: &mut TracePoint = self
                .ebpf
                .program_mut(name)
                .ok_or_else(|| ProbeError::Load(format!("program {name} missing from the object")))?
                .try_into()
                .map_err(|e| ProbeError::Load(format!("{name}: {e}")))?;
            program.load().map_err(|e| ProbeError::Load(format!("{name}: {e:#}")))?;
            program
                .attach(category, event)
                .map_err(|e| ProbeError::Load(format!("{name} on {category}/{event}: {e:#}")))?;
        }
        let ring = RingBuf::try_from(self.ebpf.take_map("PROC_EVENTS").expect("PROC_EVENTS map"))
            .map_err(map_err("PROC_EVENTS"))?;
        Ok(ProcEvents { ring })
    }

    /// Follows the processes `root` forks from now on, and their forks: each is
    /// stopped at its exec (before its first instruction) until
    /// [`Tracer::continue_held`], so that probes for its program can be attached
    /// before it runs. Call after [`Tracer::watch_processes`].
    pub fn follow_descendants(&mut self, root: u32) -> Result<(), ProbeError> {
        let at = fork_child_pid_offset()?;
        let mut offset: Array<&mut MapData, u32> =
            Array::try_from(self.ebpf.map_mut("FORK_CHILD_PID_AT").expect("FORK_CHILD_PID_AT map")).map_err(map_err("FORK_CHILD_PID_AT"))?;
        offset.set(0, &at, 0).map_err(map_err("FORK_CHILD_PID_AT"))?;
        self.followed()?.insert(&root, &(Followed::Root as u32), 0).map_err(map_err("FOLLOWED"))?;
        let program: &mut TracePoint = self
            .ebpf
            .program_mut("process_fork")
            .ok_or_else(|| ProbeError::Load("program process_fork missing from the object".into()))?
            .try_into()
            .map_err(|e| ProbeError::Load(format!("process_fork: {e}")))?;
        program.load().map_err(|e| ProbeError::Load(format!("process_fork: {e:#}")))?;
        program.attach("sched", "sched_process_fork").map_err(|e| ProbeError::Load(format!("process_fork on sched/sched_process_fork: {e:#}")))?;
        Ok(())
    }

    fn followed(&mut self) -> Result<HashMap<&mut MapData, u32, u32>, ProbeError> {
        HashMap::try_from(self.ebpf.map_mut("FOLLOWED").expect("FOLLOWED map")).map_err(map_err("FOLLOWED"))
    }

    /// Lets `pid` run on if the kernel held it at its exec (a no-op otherwise).
    pub fn continue_held(&mut self, pid: u32) {
        let held = self.followed().ok().and_then(|m| m.get(&pid, 0).ok()) == Some(Followed::Held as u32);
        if held {
            crate::sys::send_signal(pid as libc::pid_t, libc::SIGCONT);
        }
    }

    /// Stops holding anything at exec and lets every process still held run on:
    /// nothing ghostrace stopped stays stopped after it.
    pub fn release_held(&mut self) {
        let Ok(mut followed) = self.followed() else { return };
        let entries: Vec<(u32, u32)> = followed.iter().filter_map(Result::ok).collect();
        for (pid, _) in &entries {
            let _ = followed.remove(pid);
        }
        for (pid, how) in entries {
            if how == Followed::Held as u32 && crate::procfs::is_stopped(pid) {
                crate::sys::send_signal(pid as libc::pid_t, libc::SIGCONT);
            }
        }
    }

    /// Attaches `plan` to `binary` for all its processes (the `PROCS` map decides
    /// which are traced); [`Tracer::detach`] undoes it. Nothing stays attached when
    /// this fails.
    pub fn attach_binary(&mut self, binary: &Path, plan: &ProbePlan) -> Result<Attachment, ProbeError> {
        let ids = self.reserve(binary, plan)?;
        let owner = self.links.new_owner();
        let result = self.attach_as(owner, binary, plan, ids.clone(), None);
        let attachment = Attachment { owner, ids };
        match result {
            Ok(_) => Ok(attachment),
            Err(e) => {
                self.detach(attachment);
                Err(e)
            }
        }
    }

    /// Detaches one binary's probes and gives their ids back to the table (read
    /// their counters before).
    pub fn detach(&mut self, attachment: Attachment) {
        self.remove_links(attachment.owner);
        self.table.release(attachment.ids);
    }

    /// The tgids the kernel side traces now (the `PROCS` map's keys).
    pub fn traced_tgids(&self) -> Result<Vec<u32>, ProbeError> {
        let procs: HashMap<&MapData, u32, ProcConfig> =
            HashMap::try_from(self.ebpf.map("PROCS").expect("PROCS map")).map_err(map_err("PROCS"))?;
        procs.keys().collect::<Result<_, _>>().map_err(map_err("PROCS"))
    }
}

/// Where `child_pid` sits in a `sched_process_fork` record, from the tracepoint's
/// format (after `__data_loc` comm fields since Linux 6.x, after `char[16]` before).
fn fork_child_pid_offset() -> Result<u32, ProbeError> {
    let format = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| std::fs::read_to_string(format!("{root}/events/sched/sched_process_fork/format")).ok())
        .ok_or_else(|| ProbeError::Load("cannot read the format of sched/sched_process_fork (is tracefs mounted?)".into()))?;
    child_pid_offset(&format).ok_or_else(|| ProbeError::Load("no child_pid field in the format of sched/sched_process_fork".into()))
}

/// The offset of `child_pid` in a tracepoint format text.
fn child_pid_offset(format: &str) -> Option<u32> {
    let line = format.lines().find(|l| l.contains(" child_pid;"))?;
    line.split(';').find_map(|f| f.trim().strip_prefix("offset:"))?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn child_pid_is_found_in_both_layouts() {
        let new = "\tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
        let old = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";
        assert_eq!(super::child_pid_offset(new), Some(20));
        assert_eq!(super::child_pid_offset(old), Some(44));
        assert_eq!(super::child_pid_offset("field:pid_t parent_pid;\toffset:12;"), None);
    }
}
