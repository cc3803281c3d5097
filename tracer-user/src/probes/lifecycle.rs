//! What the daemon needs beyond one traced process: the exec/exit tracepoints that
//! announce processes, attachments detachable one binary at a time, and a look at
//! the kernel's table of traced processes.

use std::{ops::Range, os::fd::AsRawFd, path::Path};

use aya::{
    maps::{HashMap, MapData, RingBuf},
    programs::TracePoint,
};
use tracer_common::{PROC_EVENT_SIZE, ProcConfig, ProcEventKind};

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

    /// Waits up to `timeout_ms` for an event.
    pub fn wait(&self, timeout_ms: i32) -> bool {
        crate::child::poll_readable(self.ring.as_raw_fd(), timeout_ms)
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
