//! Per-call-site probe statistics: what each probe saw, symbolized, as the summary
//! table on stderr and the `--stats-out` JSON.
#![forbid(unsafe_code)]

use std::{collections::HashMap, fmt::Write, path::Path, sync::Arc};

use serde::Serialize;

use crate::{
    detect::{ProcessInfo, call_site},
    gobin::GoBinary,
    symbolize::BinarySymbols,
    pipeline::ReadStats,
    governor::Coverage,
    probes::{ProbeCounters, ProbeTable},
};

/// Inputs of a report.
pub struct SiteStats<'a> {
    pub binary: &'a Arc<GoBinary>,
    pub path: &'a Path,
    pub table: &'a ProbeTable,
}

#[derive(Debug, Serialize)]
pub struct StatsReport {
    pub binary: String,
    pub go_version: String,
    pub records: u64,
    pub undecodable: u64,
    /// Probes attached, and how long attaching them took.
    pub attached: usize,
    pub attach_ms: f64,
    /// Probes of the plans left out for want of room in the probe table.
    pub left_out: usize,
    /// The attach path taken (`multi` or `per-probe`) and the file descriptors
    /// ghostrace held once attached (the per-probe path holds one per probe).
    pub attach_path: &'static str,
    pub open_fds: usize,
    /// The governor's estimated overhead in its last whole cycle: the steady state
    /// (the sites' figures cover the whole session, its fully probed start included).
    pub last_cycle_overhead: Option<f64>,
    pub sites: Vec<SiteReport>,
}

#[derive(Debug, Serialize)]
pub struct SiteReport {
    pub probe: u32,
    /// The probed executable (another one than the report's for a followed child).
    pub binary: String,
    pub kind: String,
    /// Where a call's interval ends (a map write's, a Remove's), not the call itself.
    #[serde(skip)]
    pub exit: bool,
    pub target: String,
    pub function: String,
    pub file: String,
    pub line: u32,
    pub address: u64,
    #[serde(flatten)]
    pub counters: ProbeCounters,
    /// Share of the traced time the probe was attached (the governor's duty cycles).
    pub coverage: f64,
    /// Its estimated CPU time over the process's own.
    pub estimated_overhead: f64,
    /// Records received, by goroutine id.
    pub goroutines: Vec<GoroutineRecords>,
}

#[derive(Debug, Serialize)]
pub struct GoroutineRecords {
    pub goid: u64,
    pub records: u64,
}

impl SiteStats<'_> {
    /// Every probed site's figures; `every_site_named`: each site named by its source
    /// line (for `--stats-out`), else only the rows the table shows (naming tens of
    /// thousands of sites costs a large program's run a second at exit).
    pub fn report(
        &self,
        counters: &[ProbeCounters],
        coverage: &[Coverage],
        by_goroutine: &HashMap<(u32, u64), u64>,
        read: ReadStats,
        every_site_named: bool,
    ) -> StatsReport {
        // Indexed once: tens of thousands of probes each looking through every
        // coverage entry took seconds at exit.
        let coverage: HashMap<u32, &Coverage> = coverage.iter().map(|c| (c.probe, c)).collect();
        let mut by_probe: HashMap<u32, Vec<GoroutineRecords>> = HashMap::new();
        for (&(probe, goid), &records) in by_goroutine {
            by_probe.entry(probe).or_default().push(GoroutineRecords { goid, records });
        }
        let mut sites: Vec<SiteReport> = self
            .table
            .iter()
            .map(|(id, placed)| {
                let probe = &placed.probe;
                let governed = coverage.get(&id);
                let mut goroutines = by_probe.remove(&id).unwrap_or_default();
                goroutines.sort_by_key(|g| g.goid);
                SiteReport {
                    probe: id,
                    binary: placed.binary.display().to_string(),
                    kind: format!("{:?}", probe.kind),
                    exit: probe.kind.is_exit(),
                    target: probe.target.clone(),
                    function: probe.caller.clone(),
                    file: String::new(),
                    line: 0,
                    address: probe.address,
                    counters: counters.get(id as usize).copied().unwrap_or_default(),
                    coverage: governed.map_or(1.0, |c| c.ratio),
                    estimated_overhead: governed.map_or(0.0, |c| c.overhead),
                    goroutines,
                }
            })
            .collect();
        sites.sort_by(|a, b| b.counters.hits.cmp(&a.counters.hits).then(a.probe.cmp(&b.probe)));
        // Named by the user's statement, as findings are (an inlined Remove's
        // innermost frames are container/list code). Probes of followed children
        // live in their own binaries (opened on demand).
        let symbols = BinarySymbols::with_binary(self.path, self.binary.clone());
        let named = if every_site_named { sites.len() } else { TABLE_ROWS };
        for site in sites.iter_mut().take(named) {
            let process = ProcessInfo { binary: site.binary.clone(), ..ProcessInfo::default() };
            let frame = call_site(&symbols, &process, site.address);
            if !frame.file.is_empty() {
                (site.function, site.file, site.line) = (frame.function, frame.file, frame.line);
            }
        }
        StatsReport {
            binary: self.path.display().to_string(),
            go_version: self.binary.go_version().to_string(),
            records: read.records,
            undecodable: read.undecodable,
            attached: 0,
            attach_ms: 0.0,
            left_out: 0,
            attach_path: "",
            open_fds: 0,
            last_cycle_overhead: None,
            sites,
        }
    }
}

/// Rows shown in the summary table; the JSON has every site.
const TABLE_ROWS: usize = 20;

impl StatsReport {
    /// Each probed address's coverage (the least, where two probes share one).
    pub fn coverage_by_address(&self) -> HashMap<u64, f64> {
        let mut by_address = HashMap::new();
        for site in &self.sites {
            let c = by_address.entry(site.address).or_insert(site.coverage);
            *c = c.min(site.coverage);
        }
        by_address
    }

    /// The human summary: the busiest call sites.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let busy: Vec<&SiteReport> = self.sites.iter().filter(|s| s.counters.hits > 0).collect();
        let _ = writeln!(out, "ghostrace: {} ({}), {} records received", self.binary, self.go_version, self.records);
        if busy.is_empty() {
            let _ = writeln!(out, "  no probe was hit ({} call sites probed)", self.sites.len());
            return out;
        }
        let _ =
            writeln!(out, "  {:>10} {:>8} {:>8} {:>8}  {:<22} call site", "hits", "records", "overhead", "coverage", "probe");
        for site in busy.iter().take(TABLE_ROWS) {
            // An exit sits on the same line as its call: say which row is which.
            let probe = if site.exit { format!("{} end", site.target) } else { site.target.clone() };
            let _ = writeln!(
                out,
                "  {:>10} {:>8} {:>7.2}% {:>7.1}%  {:<22} {} ({}:{})",
                site.counters.hits,
                site.counters.emitted,
                site.estimated_overhead * 100.0,
                site.coverage * 100.0,
                probe,
                site.function,
                site.file,
                site.line
            );
        }
        if busy.len() > TABLE_ROWS {
            let _ = writeln!(out, "  … {} more call sites were hit (see --stats-out)", busy.len() - TABLE_ROWS);
        }
        let lost: u64 = self.sites.iter().map(|s| s.counters.lost).sum();
        if lost > 0 {
            let _ = writeln!(out, "  {lost} records were lost (ring buffer full): raise --ring-bytes");
        }
        out
    }
}

/// The least coverage among a finding's call sites, from [`StatsReport::coverage_by_address`]
/// (link-time addresses: a PIE process's are moved by its load bias).
pub fn finding_coverage(by_address: &HashMap<u64, f64>, f: &crate::detect::Finding) -> Option<f64> {
    f.goroutines.iter().filter_map(|g| by_address.get(&g.pc.wrapping_sub(f.process.load_bias)).copied()).reduce(f64::min)
}
