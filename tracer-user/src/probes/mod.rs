//! Loading the eBPF object and attaching its programs to a binary's probe plan: the
//! only code that touches `aya::programs`.

mod attach;
pub mod bpf_log;
mod config;
pub mod kernel;
mod lifecycle;
mod links;
mod table;
mod target;

use std::{
    num::NonZeroU32,
    ops::Range,
    os::fd::AsFd,
    path::Path,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, RingBuf, StackTraceMap},
    programs::{UProbe, uprobe::UProbeScope},
};
use thiserror::Error;
use tracer_common::{COUNTER_COUNT, Counter, ProcConfig, counter_index};

pub use self::{
    attach::{ATTACH_PATH_VAR, AttachMode},
    config::{check_traceable, proc_config},
    lifecycle::{Attachment, ProcEvents},
    table::{PlacedProbe, ProbeTable, program_name},
    target::{Settings, Target, TargetError, prepare as prepare_target},
};
use crate::gobin::{ProbePlan, Role};

include!(concat!(env!("OUT_DIR"), "/ebpf_object.rs"));

/// Every uprobe program in the eBPF object: its name (the multi path's program,
/// and the name the rest of ghostrace knows it by) and its twin for the per-probe
/// path.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("slice_grow_call", "slice_grow_call_single"),
    ("map_iter_start_call", "map_iter_start_call_single"),
    ("map_iter_next_call", "map_iter_next_call_single"),
    ("map_write_call", "map_write_call_single"),
    ("list_remove_enter", "list_remove_enter_single"),
    ("list_remove_exit", "list_remove_exit_single"),
    ("map_write_exit", "map_write_exit_single"),
    ("gc_mark_termination", "gc_mark_termination_single"),
];

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("this ghostrace was built without its eBPF object: build it with `cargo xtask build`")]
    NoObject,
    #[error("tracing needs root (or CAP_BPF and CAP_PERFMON): loading eBPF programs was refused ({0})")]
    Permission(String),
    #[error(
        "loading eBPF programs was refused ({0}) under a seccomp filter: a container runtime's default profile may \
         allow bpf() and perf_event_open() only with CAP_SYS_ADMIN, not CAP_BPF and CAP_PERFMON (docs/deployment.md)"
    )]
    Seccomp(String),
    #[error("cannot load the eBPF programs: {0}")]
    Load(String),
    #[error("{0}")]
    KernelTooOld(String),
    #[error("cannot attach {count} {program} probes to {binary}: {reason}")]
    Attach { program: &'static str, count: usize, binary: String, reason: String },
    #[error(
        "cannot attach {count} {program} probes to {binary}: out of file descriptors (each link holds one: one \
         per probe on the per-probe attach path, one per 64 probes or switched probe on the multi path): raise the \
         hard RLIMIT_NOFILE (LimitNOFILE=, ulimit -Hn)"
    )]
    OpenFiles { program: &'static str, count: usize, binary: String },
    #[error("cannot trace this binary: {0}")]
    Unsupported(String),
    #[error("the probe table has room for {room} more probes, {wanted} wanted")]
    TooManyProbes { wanted: usize, room: usize },
    #[error("eBPF map {map}: {reason}")]
    Map { map: &'static str, reason: String },
}

impl ProbeError {
    /// A refusal to load: under a seccomp filter, the filter is the likelier cause
    /// (the daemon checks its capabilities before it loads anything).
    pub fn refused(why: String) -> Self {
        let filtered = crate::procfs::status(std::process::id()).is_some_and(|s| s.seccomp == Some(libc::SECCOMP_MODE_FILTER));
        if filtered { ProbeError::Seccomp(why) } else { ProbeError::Permission(why) }
    }
}

/// Probe hit counters of one probe, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProbeCounters {
    pub hits: u64,
    pub emitted: u64,
    pub filtered: u64,
    pub lost: u64,
    pub read_errors: u64,
}

/// The loaded programs, their attachments and the maps user space reads.
pub struct Tracer {
    ebpf: Ebpf,
    mode: AttachMode,
    links: links::Links,
    counters: Counters,
    pub table: ProbeTable,
    /// Keeps the kernel's run-time statistics of BPF programs on while held (a
    /// clock read around each run, host-wide): the governor weighs hits with them.
    run_stats: Option<std::os::fd::OwnedFd>,
    run_stats_wanted: bool,
    /// Writes the programs' rare-event lines, when the logger takes them; dropped
    /// after the probes are detached, with the last lines.
    _bpf_log: Option<bpf_log::BpfLog>,
}

/// `PROBE_COUNTERS` as mapped into this process.
struct Counters {
    words: crate::sys::SharedWords,
    /// Words of one CPU's block.
    stride: u32,
    /// Possible CPUs: blocks.
    cpus: u32,
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> ProbeError {
    move |e| ProbeError::Map { map, reason: e.to_string() }
}

impl Tracer {
    /// Loads the programs of the attach path the kernel allows (not yet attached
    /// anywhere; a kernel too old gets one line naming what it lacks), with kernel
    /// tables for `capacity` probes: 40 bytes a probe per possible CPU (counters)
    /// and 24 bytes a probe (switch times, element sizes).
    pub fn load(ring_bytes: u32, capacity: u32) -> Result<Self, ProbeError> {
        let object = EBPF_OBJECT.ok_or(ProbeError::NoObject)?;
        let mode = AttachMode::choose(kernel::KernelSupport::probe)?;
        // A link holds a descriptor: one per probe on the per-probe path, one per
        // chunk or switched probe on the multi path; a real service's thousands
        // exceed the usual soft limit of 1,024. An attach beyond the limit says so.
        let _ = crate::sys::raise_open_files_limit();
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| counter_err(e))?.get() as u32;
        let capacity = capacity.clamp(1, u32::MAX / COUNTER_COUNT / cpus);
        let stride = capacity * COUNTER_COUNT;
        let log_level = bpf_log::level();
        let mut loader = EbpfLoader::new();
        if log_level == 0 {
            loader.map_max_entries("AYA_LOGS", bpf_log::IDLE_RING_BYTES);
        }
        let mut ebpf = loader
            .override_global(aya_log::LEVEL, &log_level, true)
            .map_max_entries("RECORDS", ring_bytes)
            .map_max_entries("PROBE_COUNTERS", stride * cpus)
            .override_global("COUNTER_STRIDE", &stride, true)
            .map_max_entries("SWITCHED_AT", capacity)
            .map_max_entries("ELEM_SIZES", capacity)
            .load(object)
            .map_err(|e| {
            if denied(&e) { ProbeError::refused(chain(&e)) } else { ProbeError::Load(chain(&e)) }
        })?;
        for &(multi, single) in PROGRAMS {
            let name = if mode == AttachMode::Multi { multi } else { single };
            let program: &mut UProbe = ebpf
                .program_mut(name)
                .ok_or_else(|| ProbeError::Load(format!("program {name} missing from the object")))?
                .try_into()
                .map_err(|e| ProbeError::Load(format!("{name}: {e}")))?;
            program.load().map_err(|e| ProbeError::Load(format!("{name}: {e:#}")))?;
        }
        let bpf_log = if log_level == 0 { None } else { Some(bpf_log::BpfLog::start(&mut ebpf)?) };
        let aya::maps::Map::Array(data) = ebpf.map("PROBE_COUNTERS").expect("PROBE_COUNTERS map") else {
            unreachable!("PROBE_COUNTERS is an array")
        };
        let counters = Counters { words: crate::sys::SharedWords::map(data.fd().as_fd(), (stride * cpus) as usize).map_err(counter_err)?, stride, cpus };
        Ok(Self {
            ebpf,
            mode,
            links: links::Links::default(),
            counters,
            table: ProbeTable::with_capacity(capacity),
            run_stats: None,
            run_stats_wanted: false,
            _bpf_log: bpf_log,
        })
    }

    /// The attach path chosen at load.
    pub fn attach_mode(&self) -> AttachMode {
        self.mode
    }

    /// Turns the kernel's run-time statistics of BPF programs on or off. They cost
    /// every BPF program on the host a clock read around each run, so they are on
    /// only while an overhead budget needs the programs' run time.
    pub fn keep_run_stats(&mut self, on: bool) {
        if on != self.run_stats_wanted {
            self.run_stats_wanted = on;
            self.run_stats = if on { aya::sys::enable_stats(aya::sys::Stats::RunTime).ok() } else { None };
        }
    }

    /// Attaches every probe of `plan` to `binary`, for `pid` only or for every
    /// process of the binary (the `PROCS` map then decides who is traced).
    pub fn attach(&mut self, binary: &Path, plan: &ProbePlan, pid: Option<u32>) -> Result<usize, ProbeError> {
        let ids = self.reserve(binary, plan)?;
        let owner = self.links.new_owner();
        self.attach_as(owner, binary, plan, ids, pid)
    }

    /// `plan` cut to the room left in the probe table by [`ProbePlan::keep_within`]
    /// (said in one line on stderr), and how many probes were left out.
    pub fn fit<'p>(&self, plan: &'p ProbePlan, name: &Path) -> (std::borrow::Cow<'p, ProbePlan>, usize) {
        let room = self.table.room();
        if plan.probes.len() <= room {
            return (std::borrow::Cow::Borrowed(plan), 0);
        }
        let mut fitted = plan.clone();
        let left_out = fitted.keep_within(room);
        tracing::warn!(
            "{}: {left_out} of {} probes left out, slice growth first (the probe table has room for {room}; --max-probes raises it)",
            name.display(),
            plan.probes.len()
        );
        (std::borrow::Cow::Owned(fitted), left_out)
    }

    /// Takes probe ids for `plan`'s probes in `binary`, to attach with
    /// [`Tracer::attach_process`].
    pub fn reserve(&mut self, binary: &Path, plan: &ProbePlan) -> Result<Range<u32>, ProbeError> {
        let ids = self.table.add(binary, plan)?;
        // Ids given back by a detached executable keep its counts.
        self.reset_counters(ids.clone());
        Ok(ids)
    }

    /// Attaches `plan` to `binary` for process `pid` alone on `ids`, reserved for
    /// this plan (and free: no links up on them); returns the owner of the links.
    /// Nothing stays attached when this fails.
    pub fn attach_process(&mut self, binary: &Path, plan: &ProbePlan, pid: u32, ids: Range<u32>) -> Result<u32, ProbeError> {
        let owner = self.links.new_owner();
        match self.attach_as(owner, binary, plan, ids, Some(pid)) {
            Ok(_) => Ok(owner),
            Err(e) => {
                self.detach_owner(owner);
                Err(e)
            }
        }
    }

    fn attach_as(&mut self, owner: u32, binary: &Path, plan: &ProbePlan, ids: Range<u32>, pid: Option<u32>) -> Result<usize, ProbeError> {
        // Links come up one after another (tens of ms apart for thousands of
        // probes): a write or Remove begun before its exit's link is up may never
        // end, so none begun until all are up counts as in progress. The kernel
        // side decides at each hit, hence "always" first.
        self.void_intervals_before(ids.clone(), u64::MAX)?;
        let scope = match pid.and_then(NonZeroU32::new) {
            Some(pid) => UProbeScope::OneProcess(pid),
            None => UProbeScope::AllProcesses,
        };
        let probes = self.table.points(ids.clone());
        let mut attached = probes.len();
        self.add_probes(owner, binary, scope, probes)?;
        // GC cycle ends let slice records tell two lives of one address apart (of
        // no use, and not counted as tracing, without a call site in scope).
        if !plan.probes.is_empty()
            && let Some(gc) = plan.functions.iter().find(|f| f.role == Role::GcMarkTermination)
        {
            let site = gc.body.unwrap_or(gc.entry);
            self.add_plain("gc_mark_termination", binary, scope, site.file_offset, owner)?;
            attached += 1;
        }
        self.void_intervals_before(ids, crate::sys::monotonic_ns())?;
        Ok(attached)
    }

    fn procs(&mut self) -> Result<HashMap<&mut MapData, u32, ProcConfig>, ProbeError> {
        HashMap::try_from(self.ebpf.map_mut("PROCS").expect("PROCS map")).map_err(map_err("PROCS"))
    }

    /// Starts tracing a process.
    pub fn add_process(&mut self, tgid: u32, config: ProcConfig) -> Result<(), ProbeError> {
        self.procs()?.insert(&tgid, &config, 0).map_err(map_err("PROCS"))
    }

    /// Stops tracing a process (it exited, or was deselected).
    pub fn remove_process(&mut self, tgid: u32) -> Result<(), ProbeError> {
        match self.procs()?.remove(&tgid) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err("PROCS")(e)),
        }
    }

    /// Takes the record ring buffer out, for the reader thread.
    pub fn take_records(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        RingBuf::try_from(self.ebpf.take_map("RECORDS").expect("RECORDS map")).map_err(map_err("RECORDS"))
    }

    /// Takes the stack map out, for symbolizing records' stacks.
    pub fn take_stacks(&mut self) -> Result<StackTraceMap<MapData>, ProbeError> {
        StackTraceMap::try_from(self.ebpf.take_map("STACKS").expect("STACKS map")).map_err(map_err("STACKS"))
    }

    /// Total run time (ns) and runs of `program` while run-time statistics were on;
    /// `None` when the kernel does not keep them.
    pub fn program_runs(&self, program: &str) -> Option<(u64, u64)> {
        let prog: &UProbe = self.ebpf.program(self.mode.program_named(program)?)?.try_into().ok()?;
        let info = prog.info().ok()?;
        Some((info.run_time().as_nanos() as u64, info.run_count()))
    }

    /// Has the kernel side void the intervals (a map write, a `Remove`) probes `ids`
    /// opened before `until` (CLOCK_MONOTONIC ns, the records' clock): they may never
    /// be seen to end, as their exit probe was switched meanwhile. `u64::MAX` voids
    /// all of them, for as long as the probes are off.
    pub fn void_intervals_before(&mut self, ids: impl IntoIterator<Item = u32>, until: u64) -> Result<(), ProbeError> {
        let keys: Vec<u32> = ids.into_iter().collect();
        let values: Vec<u8> = keys.iter().flat_map(|_| until.to_ne_bytes()).collect();
        let aya::maps::Map::Array(data) = self.ebpf.map("SWITCHED_AT").expect("SWITCHED_AT map") else {
            unreachable!("SWITCHED_AT is an array")
        };
        crate::sys::array_update_keys(data.fd().as_fd(), &keys, &values)
            .map_err(|e| ProbeError::Map { map: "SWITCHED_AT", reason: e.to_string() })
    }

    /// Current counters of every probe in the table.
    pub fn counters(&self) -> Result<Vec<ProbeCounters>, ProbeError> {
        self.counters_in(0..self.table.len() as u32)
    }

    /// Current counters of the probes with ids in `ids`.
    pub fn counters_in(&self, ids: std::ops::Range<u32>) -> Result<Vec<ProbeCounters>, ProbeError> {
        let c = &self.counters;
        let sum = |probe: u32, counter: Counter| -> u64 {
            (0..c.cpus).map(|cpu| c.words.load(counter_index(c.stride, cpu, probe, counter as u32) as usize)).sum()
        };
        Ok(ids
            .map(|probe| ProbeCounters {
                hits: sum(probe, Counter::Hits),
                emitted: sum(probe, Counter::Emitted),
                filtered: sum(probe, Counter::Filtered),
                lost: sum(probe, Counter::Lost),
                read_errors: sum(probe, Counter::ReadErrors),
            })
            .collect())
    }

    /// Hits so far of all probes of the attachment whose ids start at `first_id`
    /// (one read, where [`Tracer::counters_in`] reads five words a probe).
    pub fn total_hits(&self, first_id: u32) -> Result<u64, ProbeError> {
        let map: aya::maps::PerCpuArray<&MapData, u64> =
            aya::maps::PerCpuArray::try_from(self.ebpf.map("TOTAL_HITS").expect("TOTAL_HITS map")).map_err(map_err("TOTAL_HITS"))?;
        Ok(map.get(&tracer_common::hit_slot(first_id), 0).map_err(map_err("TOTAL_HITS"))?.iter().sum())
    }

    /// Sets the counters of probes `ids` to zero, for ids taken again.
    fn reset_counters(&mut self, ids: std::ops::Range<u32>) {
        let c = &self.counters;
        for cpu in 0..c.cpus {
            let at = |probe| counter_index(c.stride, cpu, probe, 0) as usize;
            c.words.clear(at(ids.start)..at(ids.end));
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.detach_all();
    }
}

fn counter_err(e: std::io::Error) -> ProbeError {
    ProbeError::Map { map: "PROBE_COUNTERS", reason: e.to_string() }
}

/// The error and its sources, one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether the kernel refused for lack of privilege somewhere in the error chain.
fn denied(e: &(dyn std::error::Error + 'static)) -> bool {
    errno_in_chain(e, &[libc::EPERM, libc::EACCES])
}

/// Whether an I/O error with one of `errnos` is somewhere in the error chain.
fn errno_in_chain(e: &(dyn std::error::Error + 'static), errnos: &[i32]) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.raw_os_error().is_some_and(|n| errnos.contains(&n))
        {
            return true;
        }
        source = s.source();
    }
    false
}
