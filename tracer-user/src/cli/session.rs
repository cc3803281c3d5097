//! One tracing session over one Go process: plan, load, attach, read, and at the
//! end the summary and output files. Shared by `run` and `attach`.

use std::{collections::HashMap, path::{Path, PathBuf}};

use anyhow::{Context, Result};

use super::TraceOptions;
use crate::{
    events::Event,
    gobin::GoBinary,
    pipeline::{self, ReadStats, Reader},
    probes::{self, Tracer},
    stats::{SiteStats, StatsReport},
};

/// What the reader thread feeds with events.
#[derive(Default)]
pub struct Collector {
    /// Records per (probe id, goroutine id).
    pub by_goroutine: HashMap<(u32, u64), u64>,
}

impl Collector {
    fn consume(&mut self, event: Event) {
        *self.by_goroutine.entry((event.probe, event.goid)).or_default() += 1;
    }
}

pub struct Session {
    pub binary: GoBinary,
    pub path: PathBuf,
    pub tracer: Tracer,
    reader: Option<Reader<Box<dyn FnMut(Event) + Send>>>,
    collector: std::sync::Arc<std::sync::Mutex<Collector>>,
}

/// Opens and plans `path`, and loads the probes (not attached yet): everything that
/// can fail before a process is touched.
pub fn prepare(path: &Path, options: &TraceOptions) -> Result<Session> {
    let binary = GoBinary::open(path).with_context(|| format!("{}", path.display()))?;
    let tracer = Tracer::load(options.ring_bytes)?;
    Ok(Session { binary, path: path.to_path_buf(), tracer, reader: None, collector: Default::default() })
}

impl Session {
    /// Attaches the plan's probes for `pid` and starts reading records.
    pub fn start(&mut self, pid: u32, options: &TraceOptions) -> Result<usize> {
        let plan = self.binary.probe_plan(&options.scope());
        let config = probes::proc_config(&self.binary, options.sample_every, !options.no_stacks);
        self.tracer.add_process(pid, config)?;
        let attached = self.tracer.attach(&self.path, &plan, Some(pid))?;
        let ring = self.tracer.take_records()?;
        let collector = self.collector.clone();
        let consumer: Box<dyn FnMut(Event) + Send> =
            Box::new(move |event| collector.lock().expect("collector lock").consume(event));
        self.reader = Some(pipeline::start(ring, consumer));
        Ok(attached)
    }

    /// Drains the records, detaches every probe, and writes the summary and files.
    pub fn finish(mut self, options: &TraceOptions) -> Result<StatsReport> {
        let read = match self.reader.take() {
            Some(reader) => reader.finish().1,
            None => ReadStats::default(),
        };
        let counters = self.tracer.counters()?;
        self.tracer.detach_all();
        let collector = std::mem::take(&mut *self.collector.lock().expect("collector lock"));
        let report = SiteStats { binary: &self.binary, path: &self.path, table: &self.tracer.table }
            .report(&counters, &collector.by_goroutine, read);
        eprint!("{}", report.table());
        if let Some(file) = &options.stats_out {
            std::fs::write(file, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", file.display()))?;
        }
        Ok(report)
    }
}
