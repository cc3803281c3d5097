//! One tracing session over one Go process: plan, load, attach, read, detect, and at
//! the end the findings, the summary and the output files. Shared by `run` and `attach`.

use std::{
    collections::HashMap,
    fs::File,
    io::BufWriter,
    ops::Range,
    path::{Path, PathBuf},
    sync::{
        Arc,
        mpsc::{Receiver, Sender},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use aya::maps::{MapData, StackTraceMap};
use tracer_common::ProcConfig;

use super::TraceOptions;
use crate::{
    detect::{Engine, Finding, ProcessInfo},
    events::Event,
    export,
    gobin::{GoBinary, ProbePlan},
    governor::{self, Budget, Coverage, Governor, HitCost},
    live::Live,
    pipeline::{self, ReadStats, Reader, Sink},
    probes::{self, Target, Tracer},
    procfs,
    recording::{ClockAnchor, Header, Writer},
    stats::SiteStats,
    symbolize::BinarySymbols,
    sys::monotonic_ns,
};

/// What the reader thread feeds with records.
struct Collector {
    live: Live,
    recording: Option<Writer<BufWriter<File>>>,
    recording_error: Option<String>,
    stack_map: StackTraceMap<MapData>,
    /// Records per (probe id, goroutine id).
    by_goroutine: HashMap<(u32, u64), u64>,
    /// Processes that join the session after it started (`run`'s followed children).
    joining: Receiver<Joined>,
}

/// A followed child: its probes' ids and the owner of their links.
struct Child {
    pid: u32,
    binary: Arc<GoBinary>,
    ids: Range<u32>,
    owner: u32,
}

/// A process joining a running session, with its executable.
struct Joined {
    info: ProcessInfo,
    binary: Arc<GoBinary>,
}

impl Collector {
    fn write(&mut self, f: impl FnOnce(&mut Writer<BufWriter<File>>) -> Result<(), crate::recording::WriteError>) {
        if let Some(writer) = &mut self.recording
            && let Err(e) = f(writer)
        {
            self.recording_error.get_or_insert(e.to_string());
            self.recording = None;
        }
    }
}

impl Collector {
    /// Takes in the processes that joined; called before each record, and they join
    /// before the kernel traces them, so none of their records comes first.
    fn admit(&mut self) {
        while let Ok(Joined { info, binary }) = self.joining.try_recv() {
            self.live.symbols.add_binary(Path::new(&info.binary), binary);
            self.write(|w| w.process(&info));
            self.live.engine.add_process(info);
        }
    }
}

impl Sink for Collector {
    fn record(&mut self, raw: &[u8], event: Event) {
        self.admit();
        *self.by_goroutine.entry((event.probe, event.goid)).or_default() += 1;
        let fresh = self.live.record(&self.stack_map, &event).map(<[u64]>::to_vec);
        if let (Some(pcs), Some(id)) = (fresh, event.stack_id) {
            self.write(|w| w.stack(event.tgid, id, &pcs));
        }
        self.write(|w| w.record(raw));
    }

    fn tick(&mut self) {
        self.admit();
        let now = monotonic_ns();
        self.live.tick(now);
        self.write(|w| w.clock(now));
    }
}

/// Probe table room kept beyond the traced program's plan for the Go programs it
/// starts (`run` follows them); ids of children gone are taken again.
const FOLLOW_ROOM: u32 = 16_384;

pub struct Session {
    pub binary: Arc<GoBinary>,
    plan: ProbePlan,
    config: ProcConfig,
    /// How the programs it follows are planned too.
    pub settings: probes::Settings,
    /// Where the executable is opened and probed.
    pub path: PathBuf,
    /// What findings and recordings call it: a path `replay` can open later.
    pub name: PathBuf,
    pub tracer: Tracer,
    reader: Option<Reader<Collector>>,
    process: Option<ProcessInfo>,
    /// Followed children traced in the kernel, and the way in for the reader.
    children: Vec<Child>,
    /// Probe ids of children that are gone, with links down, for the next child of
    /// the same executable: a CMD that runs many Go programs in turn (`go build`
    /// running `compile` per package) would fill the probe table otherwise.
    free: Vec<(Arc<GoBinary>, Range<u32>)>,
    join: Option<Sender<Joined>>,
    anchor: ClockAnchor,
    /// Probes attached by `start` and the time it took.
    pub attached: usize,
    pub attach_time: std::time::Duration,
    /// Probes of followed children's plans left out for want of room.
    left_out: usize,
    /// File descriptors held once attached.
    pub open_fds: usize,
    cost: HitCost,
    /// The overhead budget in force (SIGHUP may change it).
    budget: Budget,
    /// One governor per traced process (each has its own probes), by pid.
    governors: Vec<(u32, Governor)>,
    /// Coverage of the probes of processes gone before the end.
    gone: Vec<Coverage>,
}

/// What a finished session saw.
pub struct Outcome {
    pub findings: Vec<Finding>,
}

impl Outcome {
    /// `run`'s exit status: the child's, unless `--fail-on` matched.
    pub fn exit_code(&self, child_code: i32, options: &TraceOptions) -> i32 {
        super::output::exit_status(&self.findings, options.fail_on, child_code)
    }
}

/// Opens and plans `path`, and loads the probes (not attached yet): everything that
/// can fail before a process is touched.
pub fn prepare(path: &Path, options: &TraceOptions) -> Result<Session> {
    let settings = options.trace_settings()?;
    let Target { binary, plan, config } =
        probes::prepare_target(path, &settings).with_context(|| format!("{}", path.display()))?;
    options.detect_config().validate()?;
    let budget = governor::starting_budget(options.budget(), options.overhead_budget_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    let capacity = u32::try_from(plan.probes.len()).unwrap_or(u32::MAX).saturating_add(FOLLOW_ROOM);
    let mut tracer = Tracer::load(options.ring_bytes, capacity)?;
    let cost = governor::calibrate::at_startup(&mut tracer);
    Ok(Session {
        binary: Arc::new(binary),
        plan,
        config,
        settings,
        path: path.to_path_buf(),
        name: path.to_path_buf(),
        tracer,
        reader: None,
        process: None,
        children: Vec::new(),
        free: Vec::new(),
        join: None,
        anchor: ClockAnchor::now(),
        attached: 0,
        attach_time: std::time::Duration::ZERO,
        left_out: 0,
        open_fds: 0,
        cost,
        budget,
        governors: Vec::new(),
        gone: Vec::new(),
    })
}

impl Session {
    /// Attaches the plan's probes for `pid` and starts reading records. `load_bias`:
    /// where the process has the binary (see [`Self::relocate`] for one not running it yet).
    pub fn start(&mut self, pid: u32, load_bias: u64, options: &TraceOptions) -> Result<usize> {
        let plan = std::mem::take(&mut self.plan);
        if plan.probes.is_empty() {
            tracing::warn!(
                "warning: --scope {} matches no call site in {}: no slice, map or list operation is traced \
                 (`ghostrace inspect --scope ...` shows what each scope finds)",
                options.scope.join(","),
                self.path.display()
            );
        }
        let undetermined = plan.list_sites.iter().filter(|s| s.registers.is_err()).count();
        if undetermined > 0 {
            tracing::warn!(
                "{undetermined} of {} inlined list mutation sites are not probed (registers undetermined; `ghostrace inspect {}` says why)",
                plan.list_sites.len(),
                self.path.display()
            );
        }
        let config = self.config;
        let process =
            ProcessInfo { pid, binary: self.name.display().to_string(), go_version: self.binary.go_version().into(), load_bias };
        let mut engine = Engine::new(options.detect_config())?;
        engine.add_process(process.clone());
        let mut recording = match &options.record {
            Some(file) => {
                let header = Header { anchor: self.anchor, complete_stream: options.sample_every == 1 };
                Some(Writer::create(file, header).with_context(|| format!("recording to {}", file.display()))?)
            }
            None => None,
        };
        if let Some(writer) = &mut recording {
            writer.process(&process)?;
        }
        self.tracer.add_process(pid, config)?;
        let started = std::time::Instant::now();
        let attached = self.tracer.attach(&self.path, &plan, Some(pid))?;
        (self.attached, self.attach_time) = (attached, started.elapsed());
        self.open_fds = procfs::own_open_files();
        let (join, joining) = std::sync::mpsc::channel();
        self.join = Some(join);
        let collector = Collector {
            live: Live::new(engine, BinarySymbols::with_binary(&self.name, self.binary.clone())),
            recording,
            recording_error: None,
            stack_map: self.tracer.take_stacks()?,
            by_goroutine: HashMap::new(),
            joining,
        };
        self.reader = Some(pipeline::start(self.tracer.take_records()?, collector).context("starting the record reader")?);
        self.process = Some(process);
        self.add_governor(pid, 0..self.tracer.table.len() as u32);
        Ok(attached)
    }

    /// Learns where the started process, now running the binary, has it loaded: the
    /// reader takes the update like a joining process, in time for symbolizing.
    pub fn relocate(&mut self, pid: u32) -> Result<()> {
        let load_bias = procfs::load_bias(pid, &self.binary).with_context(|| format!("locating the program of pid {pid}"))?;
        let (Some(process), Some(join)) = (self.process.as_mut(), &self.join) else { return Ok(()) };
        if process.load_bias != load_bias {
            process.load_bias = load_bias;
            join.send(Joined { info: process.clone(), binary: self.binary.clone() }).context("the record reader has stopped")?;
        }
        Ok(())
    }

    /// Governs the probes `ids`, attached for `pid` alone.
    fn add_governor(&mut self, pid: u32, ids: Range<u32>) {
        let probes = ids.clone().filter_map(|id| self.tracer.table.get(id).map(|p| governor::probe_info(&p.probe)));
        let mut governor = Governor::new(self.budget, self.cost, ids, probes, Instant::now());
        governor.prime(&[pid]);
        self.governors.push((pid, governor));
    }

    /// Applies a new overhead budget to every process, from its next cycle on.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
        for (_, governor) in &mut self.governors {
            governor.set_budget(budget);
        }
    }

    /// Reads the budget file again (SIGHUP asked for it).
    pub fn reload_budget(&mut self, options: &TraceOptions) {
        if let Some(budget) = governor::reload_budget(options.overhead_budget_file.as_deref()) {
            self.set_budget(budget);
        }
    }

    /// Lets the governors switch what is due; returns how long until they need to
    /// run again.
    pub fn govern(&mut self) -> Duration {
        let now = Instant::now();
        let next = self.governors.iter_mut().map(|(pid, g)| g.step(&mut self.tracer, &[*pid], now)).min();
        next.map_or(governor::CYCLE, |next| next.saturating_duration_since(Instant::now()))
    }

    /// Adds a process started after the session (a followed child running `binary`
    /// from `path`): its own probes, then tracing in the kernel. Returns the probes.
    pub fn add_child(
        &mut self,
        pid: u32,
        path: &Path,
        binary: &Arc<GoBinary>,
        plan: &ProbePlan,
        config: ProcConfig,
    ) -> Result<usize> {
        let join = self.join.clone().context("the session has not started")?;
        let (ids, plan) = match self.free.iter().position(|(b, _)| Arc::ptr_eq(b, binary)) {
            Some(at) => (self.free.swap_remove(at).1, std::borrow::Cow::Borrowed(plan)),
            None => {
                let (plan, left_out) = self.tracer.fit(plan, path);
                self.left_out += left_out;
                (self.tracer.reserve(path, &plan)?, plan)
            }
        };
        let owner = match self.tracer.attach_process(path, &plan, pid, ids.clone()) {
            Ok(owner) => owner,
            Err(e) => {
                self.free.push((binary.clone(), ids));
                return Err(e.into());
            }
        };
        let attached = ids.len();
        self.add_governor(pid, ids.clone());
        // It has exec'd already; gone meanwhile, it leaves nothing to symbolize.
        let load_bias = procfs::load_bias(pid, binary).unwrap_or(0);
        let info = ProcessInfo { pid, binary: path.display().to_string(), go_version: binary.go_version().into(), load_bias };
        // The reader learns the process before the kernel sends its first record.
        join.send(Joined { info, binary: binary.clone() }).context("the record reader has stopped")?;
        self.tracer.add_process(pid, config)?;
        self.children.push(Child { pid, binary: binary.clone(), ids, owner });
        Ok(attached)
    }

    /// A followed child exited or exec'd another program: the kernel stops tracing
    /// it, and its probes come down, their ids kept for the next child of its
    /// executable (their counters add up per call site).
    pub fn drop_child(&mut self, pid: u32) -> Result<()> {
        if let Some(at) = self.children.iter().position(|c| c.pid == pid) {
            let child = self.children.swap_remove(at);
            self.tracer.remove_process(pid)?;
            self.tracer.detach_owner(child.owner);
            self.free.push((child.binary, child.ids));
        }
        // Its coverage stops here.
        if let Some(at) = self.governors.iter().position(|(p, _)| *p == pid) {
            let (_, governor) = self.governors.swap_remove(at);
            self.gone.extend(governor.coverage(Instant::now()));
        }
        Ok(())
    }

    /// Drains the records, detaches every probe, and writes findings, summary and files.
    pub fn finish(mut self, options: &TraceOptions) -> Result<Outcome> {
        let (mut collector, read) = match self.reader.take() {
            Some(reader) => {
                let (collector, read) = reader.finish();
                (Some(collector), read)
            }
            None => (None, ReadStats::default()),
        };
        let now = Instant::now();
        let mut coverage = std::mem::take(&mut self.gone);
        for (_, governor) in &self.governors {
            coverage.extend(governor.coverage(now));
            if let Some(e) = governor.switch_error() {
                tracing::warn!("the governor could not switch a probe ({e}): its coverage is lower than planned");
            }
        }
        let counters = self.tracer.counters()?;
        self.tracer.detach_all();
        for pid in self.process.as_ref().map(|p| p.pid).into_iter().chain(std::mem::take(&mut self.children).into_iter().map(|c| c.pid)) {
            self.tracer.remove_process(pid)?;
        }
        let mut stats = SiteStats { binary: &self.binary, path: &self.name, table: &self.tracer.table }.report(
            &counters,
            &coverage,
            collector.as_ref().map(|c| &c.by_goroutine).unwrap_or(&HashMap::new()),
            read,
            options.stats_out.is_some(),
        );
        (stats.attached, stats.attach_ms, stats.left_out) = (self.attached, self.attach_time.as_secs_f64() * 1e3, self.left_out);
        (stats.attach_path, stats.open_fds) = (self.tracer.attach_mode().name(), self.open_fds);
        stats.last_cycle_overhead = self.governors.first().map(|(_, g)| g.last_ratio());
        let findings = match &mut collector {
            Some(c) => {
                c.admit();
                c.live.engine.finish();
                let lost: u64 = counters.iter().map(|c| c.lost).sum();
                c.write(|w| w.lost(lost));
                if let Some(writer) = c.recording.take() {
                    writer.finish()?;
                }
                if let Some(e) = &c.recording_error {
                    tracing::warn!("the recording is incomplete: {e}");
                }
                let findings = c.live.findings();
                eprint!("{}", export::table::render(&findings, Some(&c.live.engine.stats())));
                findings
            }
            None => Vec::new(),
        };
        eprint!("{}", stats.table());
        if let Some((_, governor)) = self.governors.first() {
            let budget = match governor.budget() {
                Budget::Off => "off".to_string(),
                kept => format!("{kept}, planned to {:.0}% of it", governor::control::PLANNED_SHARE * 100.0),
            };
            eprintln!(
                "  estimated overhead {:.2}% of the process's CPU, {:.2}% in the last cycle (budget {budget}; {:.2} µs per emulated hit)",
                governor.overall_ratio() * 100.0,
                governor.last_ratio() * 100.0,
                self.cost.emulated_s * 1e6,
            );
        }
        if let Some(file) = &options.json_out {
            let by_address = stats.coverage_by_address();
            let coverage: crate::export::json::CoverageOf =
                Box::new(move |f| crate::stats::finding_coverage(&by_address, f));
            super::output::write_json(file, &findings, self.anchor.unix_offset_ns(), Some(coverage))?;
        }
        if let Some(file) = &options.stats_out {
            std::fs::write(file, serde_json::to_vec_pretty(&stats)?).with_context(|| format!("writing {}", file.display()))?;
        }
        Ok(Outcome { findings })
    }
}
