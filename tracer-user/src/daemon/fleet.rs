//! What the daemon traces: Go executables by file identity, each attached once and
//! shared by all its processes; the processes; and what it learnt about files it
//! will not trace. A process that exits leaves nothing here, and the last process
//! of an executable takes its probes with it.

use std::{
    collections::{BTreeSet, HashMap},
    os::fd::AsRawFd,
    path::Path,
    sync::{Arc, Mutex, mpsc::Sender},
    time::{Duration, Instant},
};

use serde_json::json;
use tracer_common::ProcConfig;

use super::{
    findings::Control,
    select::{Candidate, Selector},
};
use crate::{
    container::{self, Container},
    detect::ProcessInfo,
    export::prometheus::{AttachFailure, Metrics},
    gobin::{GoBinary, ProbeKind},
    governor::{Budget, Governor, HitCost},
    probes::{self, Attachment, ProbeCounters, ProbeError, Target, TargetError, Tracer},
    procfs::{self, FileId, FileStamp},
};

/// Files found not to be Go programs (or not traceable) remembered at most; the
/// memory starts over when full.
const MAX_VERDICTS: usize = 4096;

/// How the daemon came to know a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The start-up scan of /proc.
    Scan,
    /// An exec event.
    Exec,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Exec => "exec",
        }
    }
}

/// What is traced and how.
pub struct Options {
    pub selector: Selector,
    pub trace: probes::Settings,
    pub budget: Budget,
    /// How long an executable's probes stay attached once its last process is gone:
    /// a program run every few seconds or minutes (a backup job, a CNI plugin at each
    /// pod start, a cron task) is then planned and attached once, not at every run.
    /// Kept probes cost nothing while no process runs the file, and give their room
    /// in the probe table to a new executable that needs it.
    pub keep_idle: Duration,
}

/// A Go executable with probes attached.
struct Binary {
    label: String,
    path: String,
    binary: Arc<GoBinary>,
    config: ProcConfig,
    attachment: Attachment,
    pids: BTreeSet<u32>,
    /// Probes of its plan left out for want of room in the probe table.
    left_out: usize,
    /// The `probe` label of each probe, by id - first id.
    kinds: Vec<&'static str>,
    /// Kernel counters at the last refresh, same order.
    last: Vec<ProbeCounters>,
    /// Keeps the probes' cost under the budget, for all the binary's processes.
    governor: Governor,
    /// Since when no process runs it (its probes kept for `keep_idle`).
    idle_since: Option<Instant>,
}

/// Why a file is not traced.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    NotGo,
    /// A Go program ghostrace cannot trace, and the one-line reason.
    Failed(Arc<str>),
}

/// A selected Go process that is not traced, for `/status`.
struct Untraced {
    file: FileStamp,
    path: String,
    reason: Arc<str>,
}

pub struct Fleet {
    options: Options,
    binaries: HashMap<FileId, Binary>,
    verdicts: HashMap<FileStamp, Verdict>,
    /// Traced pid → its executable.
    traced: HashMap<u32, FileId>,
    /// Selected Go processes that could not be traced → their executable and why.
    untraced: HashMap<u32, Untraced>,
    /// Traced pids in a container → its identity (for `/status`).
    containers: HashMap<u32, Container>,
    control: Sender<Control>,
    metrics: Arc<Metrics>,
    changed: bool,
    /// Why the last Go executable could not be traced.
    last_failure: Option<String>,
    cost: HitCost,
    /// Each traced binary's probe coverage by call-site address, for the findings.
    coverage: SharedCoverage,
}

/// A container for the log: `namespace/pod/container` when known, else the
/// runtime's container id.
fn describe(c: &Container) -> String {
    match c.labels() {
        [ns, pod, name] if !pod.is_empty() => format!("pod {ns}/{pod} container {name}"),
        _ => format!("container {}", &c.id[..12]),
    }
}

/// Probe coverage by binary path and call-site address.
pub type SharedCoverage = Arc<Mutex<HashMap<String, HashMap<u64, f64>>>>;

/// The `probe` label of a probe kind.
fn kind_label(kind: &ProbeKind) -> &'static str {
    match kind {
        ProbeKind::SliceGrowCall => "slice_grow",
        ProbeKind::MapIterStartCall => "map_iter_start",
        ProbeKind::MapIterNextCall => "map_iter_next",
        ProbeKind::MapWriteCall(_) => "map_write",
        ProbeKind::ListRemoveEnter { .. } => "list_remove_enter",
        ProbeKind::ListRemoveExit => "list_remove_exit",
        ProbeKind::MapWriteExit => "map_write_exit",
    }
}

impl Fleet {
    pub fn new(options: Options, control: Sender<Control>, metrics: Arc<Metrics>, cost: HitCost) -> Self {
        Self {
            cost,
            coverage: SharedCoverage::default(),
            options,
            binaries: HashMap::new(),
            verdicts: HashMap::new(),
            traced: HashMap::new(),
            untraced: HashMap::new(),
            containers: HashMap::new(),
            control,
            metrics,
            changed: true,
            last_failure: None,
        }
    }

    pub fn is_known(&self, pid: u32) -> bool {
        self.traced.contains_key(&pid) || self.untraced.contains_key(&pid)
    }

    /// A process runs a new program (or was found by the scan): trace it if it is a
    /// selected Go program.
    pub fn exec(&mut self, tracer: &mut Tracer, pid: u32, source: Source) {
        if self.is_known(pid) {
            // It exec'd again: whatever it ran before is gone.
            self.exit(tracer, pid);
        }
        // Gone already, or a kernel thread: nothing to trace.
        let Ok(process) = procfs::read(pid, self.options.selector.needs_cgroup()) else { return };
        let candidate = Candidate { exe: &process.exe, comm: &process.comm, cgroup: &process.cgroup };
        if !self.options.selector.matches(&candidate) {
            return;
        }
        let file = process.file;
        let untraced = |fleet: &mut Self, reason: Arc<str>| {
            fleet.untraced.insert(pid, Untraced { file, path: process.exe.clone(), reason });
            fleet.changed = true;
        };
        if !self.binaries.contains_key(&file.id) {
            match self.verdicts.get(&file).cloned() {
                Some(Verdict::NotGo) => return,
                Some(Verdict::Failed(reason)) => return untraced(self, reason),
                None => match self.attach(tracer, &process) {
                    Ok(()) => {}
                    Err(Some(verdict)) => {
                        self.remember(file, verdict.clone());
                        if let Verdict::Failed(reason) = verdict {
                            untraced(self, reason);
                        }
                        return;
                    }
                    Err(None) => return,
                },
            }
        }
        let bin = self.binaries.get_mut(&file.id).expect("attached above");
        if let Err(e) = tracer.add_process(pid, bin.config) {
            tracing::warn!("cannot trace pid {pid} ({}): {e}", process.exe);
            self.metrics.attach_failed(AttachFailure::ProcessTableFull);
            self.last_failure = Some(e.to_string());
            return untraced(self, e.to_string().into());
        }
        let reuse = if bin.idle_since.take().is_some() {
            "kept"
        } else if bin.pids.is_empty() {
            "new"
        } else {
            "shared"
        };
        bin.pids.insert(pid);
        self.traced.insert(pid, file.id);
        // Per process: ASLR loads each run of a PIE elsewhere. Gone already, it has nothing to symbolize.
        let load_bias = procfs::load_bias(pid, &bin.binary).unwrap_or(0);
        let info = ProcessInfo { pid, binary: bin.path.clone(), go_version: bin.binary.go_version().into(), load_bias };
        let cgroup = if process.cgroup.is_empty() { procfs::cgroup(pid).unwrap_or_default() } else { process.cgroup };
        let container = container::identify(pid, &cgroup, &container::HOST_ROOTS.map(Path::new));
        self.metrics.add_binary(&bin.label, container::labels(container.as_ref()));
        let in_container = container.as_ref().map(|c| format!(" in {}", describe(c))).unwrap_or_default();
        if let Some(c) = &container {
            self.containers.insert(pid, c.clone());
        }
        let _ = self.control.send(Control::Add {
            info,
            binary: bin.binary.clone(),
            label: bin.label.clone(),
            container: container.map(Box::new),
        });
        self.metrics.discovered.with_label_values(&[source.name()]).inc();
        tracing::info!(
            "tracing pid {pid} ({}) {}{in_container} [{}, {} probes, {} attachment {}]",
            process.comm,
            process.exe,
            bin.binary.go_version(),
            bin.attachment.probes(),
            reuse,
            file.id,
        );
        self.changed = true;
    }

    /// Opens, plans and attaches the executable of `process`. `Err(None)`: the
    /// process went away meanwhile; `Err(Some(verdict))`: remember the file.
    fn attach(&mut self, tracer: &mut Tracer, process: &procfs::Process) -> Result<(), Option<Verdict>> {
        // Held open, the file stays reachable through /proc/self/fd even if the
        // process exits while it is analysed and attached.
        let Ok(file) = std::fs::File::open(procfs::exe_link(process.pid)) else { return Err(None) };
        let link = procfs::own_fd_path(file.as_raw_fd());
        let Target { binary, plan, config } = match probes::prepare_target(&link, &self.options.trace) {
            Ok(target) => target,
            Err(TargetError::NotGo(_)) => {
                self.metrics.ignored_binaries.inc();
                return Err(Some(Verdict::NotGo));
            }
            Err(TargetError::Unreadable(_)) => return Err(None),
            Err(e) => {
                tracing::warn!("not tracing {} (pid {}): {e}", process.exe, process.pid);
                self.metrics.attach_failed(AttachFailure::Unsupported);
                self.last_failure = Some(e.to_string());
                return Err(Some(Verdict::Failed(e.to_string().into())));
            }
        };
        self.make_room(tracer, plan.probes.len());
        let (plan, left_out) = tracer.fit(&plan, Path::new(&process.exe));
        let attached = if plan.probes.is_empty() && left_out > 0 {
            Err(ProbeError::TooManyProbes { wanted: left_out, room: 0 })
        } else {
            tracer.attach_binary(&link, &plan)
        };
        let attachment = match attached {
            Ok(attachment) => attachment,
            Err(e) => {
                let failure = match e {
                    ProbeError::TooManyProbes { .. } => AttachFailure::ProbeTableFull,
                    ProbeError::OpenFiles { .. } => AttachFailure::OpenFiles,
                    _ => AttachFailure::Attach,
                };
                tracing::warn!("not tracing {} (pid {}): {e}", process.exe, process.pid);
                self.last_failure = Some(e.to_string());
                self.metrics.attach_failed(failure);
                return Err(Some(Verdict::Failed(e.to_string().into())));
            }
        };
        let kinds = attachment
            .ids
            .clone()
            .map(|id| tracer.table.get(id).map_or("unknown", |p| kind_label(&p.probe.kind)))
            .collect::<Vec<_>>();
        let label = procfs::label_of(&process.exe);
        let probes = attachment.ids.clone().filter_map(|id| tracer.table.get(id).map(|p| crate::governor::probe_info(&p.probe)));
        let governor = Governor::new(self.options.budget, self.cost, attachment.ids.clone(), probes, Instant::now());
        self.binaries.insert(
            process.file.id,
            Binary {
                label,
                path: process.exe.clone(),
                binary: Arc::new(binary),
                config,
                last: vec![ProbeCounters::default(); kinds.len()],
                kinds,
                attachment,
                pids: BTreeSet::new(),
                left_out,
                governor,
                idle_since: None,
            },
        );
        Ok(())
    }

    fn remember(&mut self, file: FileStamp, verdict: Verdict) {
        if self.verdicts.len() >= MAX_VERDICTS {
            self.verdicts.clear();
        }
        self.verdicts.insert(file, verdict);
    }

    /// A process exited: forget it, and detach its executable if it was the last.
    pub fn exit(&mut self, tracer: &mut Tracer, pid: u32) {
        self.untrace(tracer, pid, true);
    }

    /// Stops tracing `pid` (`gone`: it exited; else the daemon is stopping and the
    /// process runs on, so nothing is said of it).
    fn untrace(&mut self, tracer: &mut Tracer, pid: u32, gone: bool) {
        if self.untraced.remove(&pid).is_some() {
            self.changed = true;
        }
        let Some(file) = self.traced.remove(&pid) else { return };
        self.containers.remove(&pid);
        self.changed = true;
        let _ = tracer.remove_process(pid);
        let _ = self.control.send(Control::Remove { pid });
        let Some(bin) = self.binaries.get_mut(&file) else { return };
        bin.pids.remove(&pid);
        if gone {
            tracing::info!("pid {pid} ({}) is gone: forgotten", bin.label);
        }
        if bin.pids.is_empty() {
            if gone && !self.options.keep_idle.is_zero() {
                bin.idle_since = Some(Instant::now());
                tracing::info!(
                    "{} probes kept on {} ({file}) for {} s in case it runs again",
                    bin.attachment.probes(),
                    bin.path,
                    self.options.keep_idle.as_secs_f64()
                );
            } else {
                self.detach(tracer, file);
            }
        }
    }

    fn detach(&mut self, tracer: &mut Tracer, file: FileId) {
        let Some(mut bin) = self.binaries.remove(&file) else { return };
        self.count(tracer, &mut bin);
        tracing::info!("detached {} probes from {} ({file})", bin.attachment.probes(), bin.path);
        self.forget_governed(&bin);
        tracer.detach(bin.attachment);
        self.changed = true;
    }

    /// Executables no process has run for at least `at_least`, oldest first.
    fn idle_for(&self, at_least: Duration) -> Vec<FileId> {
        let mut idle: Vec<(Instant, FileId)> =
            self.binaries.iter().filter_map(|(&file, b)| b.idle_since.filter(|t| t.elapsed() >= at_least).map(|t| (t, file))).collect();
        idle.sort();
        idle.into_iter().map(|(_, file)| file).collect()
    }

    /// Detaches kept executables, oldest first, until `probes` fit in the table.
    fn make_room(&mut self, tracer: &mut Tracer, probes: usize) {
        for file in self.idle_for(Duration::ZERO) {
            if tracer.table.room() >= probes {
                break;
            }
            self.detach(tracer, file);
        }
    }

    /// Safety net for lost exit events: known processes that are gone, or run
    /// another executable now, are handled as if the events had arrived.
    pub fn sweep(&mut self, tracer: &mut Tracer) {
        let traced: Vec<(u32, FileId)> = self.traced.iter().map(|(&p, &f)| (p, f)).collect();
        let untraced: Vec<(u32, FileId)> = self.untraced.iter().map(|(&p, u)| (p, u.file.id)).collect();
        for (pid, file) in traced.into_iter().chain(untraced) {
            match procfs::file_of(pid) {
                Ok(now) if now.id == file => {}
                Ok(_) => self.exec(tracer, pid, Source::Exec),
                Err(_) => self.exit(tracer, pid),
            }
        }
    }

    /// Adds what the kernel counted since the last refresh to the metrics.
    pub fn refresh_counters(&mut self, tracer: &Tracer) {
        let mut binaries = std::mem::take(&mut self.binaries);
        for bin in binaries.values_mut() {
            self.count(tracer, bin);
        }
        self.binaries = binaries;
    }

    fn count(&self, tracer: &Tracer, bin: &mut Binary) {
        let Ok(now) = tracer.counters_in(bin.attachment.ids.clone()) else { return };
        let mut sums: HashMap<&'static str, ProbeCounters> = HashMap::new();
        for ((kind, new), old) in bin.kinds.iter().zip(&now).zip(&bin.last) {
            let sum = sums.entry(kind).or_default();
            sum.hits += new.hits.saturating_sub(old.hits);
            sum.emitted += new.emitted.saturating_sub(old.emitted);
            sum.filtered += new.filtered.saturating_sub(old.filtered);
            sum.lost += new.lost.saturating_sub(old.lost);
            sum.read_errors += new.read_errors.saturating_sub(old.read_errors);
        }
        let m = &self.metrics;
        for (kind, d) in sums {
            let labels = [kind, bin.label.as_str()];
            m.probe_hits.with_label_values(&labels).inc_by(d.hits);
            m.records_emitted.with_label_values(&labels).inc_by(d.emitted);
            m.hits_filtered.with_label_values(&labels).inc_by(d.filtered);
            m.records_lost.with_label_values(&labels).inc_by(d.lost);
            m.read_errors.with_label_values(&labels).inc_by(d.read_errors);
        }
        bin.last = now;
    }

    /// Lets every binary's governor switch what is due; returns when to call again.
    pub fn govern(&mut self, tracer: &mut Tracer) -> Instant {
        let now = Instant::now();
        for file in self.idle_for(self.options.keep_idle) {
            self.detach(tracer, file);
        }
        let mut next = now + crate::governor::CYCLE;
        // Kept executables have no process to measure or to cost anything.
        for bin in self.binaries.values_mut().filter(|b| b.idle_since.is_none()) {
            let pids: Vec<u32> = bin.pids.iter().copied().collect();
            next = next.min(bin.governor.step(tracer, &pids, now));
        }
        next
    }

    /// Applies a new overhead budget to every binary, from their next cycle on.
    pub fn set_budget(&mut self, budget: Budget) {
        self.options.budget = budget;
        for bin in self.binaries.values_mut() {
            bin.governor.set_budget(budget);
        }
    }

    /// The coverage map the findings writer reads.
    pub fn coverage(&self) -> SharedCoverage {
        self.coverage.clone()
    }

    /// Publishes each binary's estimated overhead and probe coverage.
    pub fn refresh_governed(&self, tracer: &Tracer) {
        let now = Instant::now();
        let mut shared = self.coverage.lock().unwrap_or_else(|e| e.into_inner());
        for bin in self.binaries.values() {
            let coverage = bin.governor.coverage(now);
            self.metrics.estimated_overhead.with_label_values(&[bin.label.as_str()]).set(bin.governor.last_ratio());
            let mut least: HashMap<&'static str, f64> = HashMap::new();
            let mut by_address = HashMap::new();
            for (kind, c) in bin.kinds.iter().zip(&coverage) {
                let l = least.entry(kind).or_insert(1.0);
                *l = l.min(c.ratio);
                if let Some(placed) = tracer.table.get(c.probe) {
                    let a = by_address.entry(placed.probe.address).or_insert(1.0f64);
                    *a = a.min(c.ratio);
                }
            }
            for (kind, ratio) in least {
                self.metrics.probe_coverage.with_label_values(&[kind, bin.label.as_str()]).set(ratio);
            }
            shared.insert(bin.path.clone(), by_address);
        }
    }

    /// Drops what `refresh_governed` published about a detached binary.
    fn forget_governed(&self, bin: &Binary) {
        // Another executable may carry the same basename label: keep its series.
        if !self.binaries.values().any(|b| b.label == bin.label) {
            let _ = self.metrics.estimated_overhead.remove_label_values(&[bin.label.as_str()]);
            for kind in BTreeSet::from_iter(bin.kinds.iter()) {
                let _ = self.metrics.probe_coverage.remove_label_values(&[kind, bin.label.as_str()]);
            }
        }
        self.coverage.lock().unwrap_or_else(|e| e.into_inner()).remove(&bin.path);
    }

    /// Stops tracing everything (shutdown): processes untraced, probes detached.
    pub fn shutdown(&mut self, tracer: &mut Tracer) {
        let pids: Vec<u32> = self.traced.keys().copied().collect();
        for pid in pids {
            self.untrace(tracer, pid, false);
        }
        for file in self.idle_for(Duration::ZERO) {
            self.detach(tracer, file);
        }
        self.untraced.clear();
        self.update_gauges();
    }

    /// Whether the status changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Why the daemon is not ready although it runs: Go processes selected, and
    /// none of them traced.
    pub fn not_ready(&self) -> Option<String> {
        if !self.traced.is_empty() || self.untraced.is_empty() {
            return None;
        }
        let why = self.last_failure.as_deref().unwrap_or("see the daemon's log");
        Some(format!("{} selected Go processes, none traced: {why}", self.untraced.len()))
    }

    pub fn update_gauges(&self) {
        let m = &self.metrics;
        m.traced_processes.set(self.traced.len() as i64);
        m.go_processes.set((self.traced.len() + self.untraced.len()) as i64);
        m.attached_binaries.set(self.binaries.len() as i64);
        m.attached_probes.set(self.binaries.values().map(|b| b.attachment.probes() as i64).sum());
        m.left_out_probes.set(self.binaries.values().map(|b| b.left_out as i64).sum());
    }

    /// The `/status` document.
    pub fn status(&self, tracer: &Tracer, ready: bool) -> serde_json::Value {
        let mut binaries: Vec<_> = self.binaries.iter().collect();
        binaries.sort_by_key(|(file, _)| **file);
        let mut untraced: Vec<_> = self
            .untraced
            .iter()
            .map(|(pid, u)| json!({"pid": pid, "file": u.file.id.to_string(), "path": u.path, "reason": &*u.reason}))
            .collect();
        untraced.sort_by_key(|v| v["pid"].as_u64());
        let mut kernel = tracer.traced_tgids().unwrap_or_default();
        kernel.sort_unstable();
        json!({
            "ready": ready,
            "attach_path": tracer.attach_mode().name(),
            "not_ready": self.not_ready(),
            "binaries": binaries.iter().map(|(file, b)| json!({
                "file": file.to_string(),
                "path": b.path,
                "label": b.label,
                "go_version": b.binary.go_version(),
                "probes": b.attachment.probes(),
                "left_out_probes": b.left_out,
                "pids": b.pids,
                "idle_s": b.idle_since.map(|t| t.elapsed().as_secs()),
                "containers": b.pids.iter().filter_map(|pid| {
                    let c = serde_json::to_value(self.containers.get(pid)?).ok()?;
                    Some(json!({"pid": pid, "container": c}))
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "untraced_go": untraced,
            "kernel_traced_pids": kernel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::MapOp;

    /// docs/metrics.md counts and lists the values of the `probe` label.
    #[test]
    fn metrics_doc_lists_every_probe_kind() {
        let doc = include_str!("../../../docs/metrics.md");
        let kinds = [
            ProbeKind::SliceGrowCall,
            ProbeKind::MapIterStartCall,
            ProbeKind::MapIterNextCall,
            ProbeKind::MapWriteCall(MapOp::Assign),
            ProbeKind::ListRemoveEnter { list_reg: 0, elem_reg: 3, list_disp: 0, op: tracer_common::ListOp::PushBack },
            ProbeKind::ListRemoveExit,
            ProbeKind::MapWriteExit,
        ];
        let labels = BTreeSet::from_iter(kinds.iter().map(kind_label));
        assert!(doc.contains(&format!("`probe` ({} probe kinds)", labels.len())), "docs/metrics.md miscounts the kinds");
        for label in labels {
            assert!(doc.contains(&format!("`{label}`")), "docs/metrics.md does not list {label}");
        }
    }
}
