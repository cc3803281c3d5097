//! `cargo xtask bench-real`: what ghostrace costs large third-party Go programs, as
//! Debian ships them (programs.rs). Each runs untraced, under ghostrace with its
//! default settings, and with `--overhead-budget off`, the three in turn (rotated
//! every round) within one run, so each traced figure has an untraced one from the
//! same minutes beside it. A server (started once, traced with `attach`) is measured
//! under a wrk load on 127.0.0.1; a batch program (traced with `run`) end to end.
//! Reported: throughput and server CPU per request, or wall and CPU time; ghostrace's
//! own CPU beside the program's; the governor's estimate beside what was measured;
//! probes planned, attached and hit; findings at warning or worse; the load average.

mod batch;
mod daemon;
mod procfs;
mod programs;
mod report;
mod server;
mod session;
mod workloads;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use crate::root;

pub use session::CONFIGS;

/// One measured run of one configuration.
pub struct Sample {
    pub config: usize,
    pub round: usize,
    /// The 1-minute load average at its end and the host's busy share during it.
    pub load: String,
    pub outcome: Outcome,
}

pub enum Outcome {
    Measured(Measured),
    /// ghostrace stopped before tracing (or failed): its last line.
    Refused(String),
}

pub struct Measured {
    /// Server: requests per second. Batch: wall seconds.
    pub speed: f64,
    /// The program's CPU: per request (server) or in all (batch), seconds.
    pub program_cpu: f64,
    /// ghostrace's own CPU (user, sys) over the whole session, and within the load
    /// window (servers; the same for batch runs).
    pub ghostrace: Option<procfs::Cpu>,
    pub ghostrace_window: Option<procfs::Cpu>,
    pub estimated: Option<(f64, f64)>,
    pub attached: Option<u64>,
    pub hit: Option<u64>,
    pub hits: Option<u64>,
    pub records: Option<u64>,
    pub serious: Vec<String>,
}

/// A program's results.
pub struct Results {
    pub name: &'static str,
    pub kind: programs::Kind,
    pub version: String,
    pub go_version: String,
    pub planned: Option<u64>,
    pub samples: Vec<Sample>,
    /// Why the program could not be measured.
    pub error: Option<String>,
}

pub struct Options {
    pub rounds: usize,
    pub only: Vec<String>,
    /// Seconds of load per server window.
    pub seconds: u64,
    /// Only the daemon's measurement.
    pub daemon: bool,
}

pub fn run(options: &Options) -> Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    ensure!(super::is_root(), "the bench attaches probes: run it as root");
    for name in &options.only {
        ensure!(programs::PROGRAMS.iter().any(|p| p.name == name), "no program {name} (known: {})", names());
    }
    let ghostrace = crate::build::release().context("building ghostrace (release)")?;
    // Fixed ports and the kernel's uprobe locks are host-wide: one run at a time.
    let _alone = HostLock::take()?;
    crate::step::step("wrk (Debian package)", "run as root with apt reachable", programs::load_generator)?;
    let out = root().join("target/bench-real");
    std::fs::create_dir_all(&out)?;
    let mut all = Vec::new();
    let selected = programs::PROGRAMS.iter().filter(|p| !options.daemon && (options.only.is_empty() || options.only.iter().any(|o| o == p.name)));
    for program in selected {
        let installed = programs::install(program)?;
        let scratch = scratch().join(program.name);
        std::fs::create_dir_all(&scratch)?;
        let logs = out.join(program.name);
        std::fs::create_dir_all(&logs)?;
        let (go_version, planned) = plan(&ghostrace, &installed.binary);
        eprintln!(
            "xtask: bench-real {} (Debian {} {}, {go_version}, {} default-scope probes planned), load {}",
            program.name,
            program.packages[0],
            installed.version(),
            planned.map_or("?".into(), |p| p.to_string()),
            procfs::load_average()
        );
        let measured = workloads::for_program(program.name, &installed, &scratch).and_then(|workload| {
            let bench = Bench { ghostrace: &ghostrace, binary: &installed.binary, workload: &workload, logs: &logs, options };
            match program.kind {
                programs::Kind::Server => server::measure(&bench),
                programs::Kind::Batch => batch::measure(&bench),
            }
        });
        // One program's failure is its row: the others' figures are not lost.
        let (samples, error) = match measured {
            Ok(samples) => (samples, None),
            Err(e) => {
                eprintln!("xtask: bench-real {}: {e:#}", program.name);
                (Vec::new(), Some(format!("{e:#}")))
            }
        };
        all.push(Results { name: program.name, kind: program.kind, version: installed.version().to_string(), go_version, planned, samples, error });
        // Written after every program: a long run's first figures can be read at once.
        std::fs::write(out.join("report.md"), report::render(&all, options))?;
    }
    let mut text = if all.is_empty() { String::new() } else { report::render(&all, options) };
    // The programs' table first: a failure of the daemon's part does not hide it.
    println!("{text}");
    let mut failed = None;
    if options.daemon || options.only.is_empty() {
        let fleet = daemon::measure(&ghostrace, &out).unwrap_or_else(|e| {
            let line = format!("\n## ghostrace daemon\n\nnot measured: {e:#}\n");
            failed = Some(e);
            line
        });
        println!("{fleet}");
        text.push_str(&fleet);
    }
    std::fs::write(out.join("report.md"), &text)?;
    if let Some(e) = failed {
        return Err(e.context("the daemon's measurement"));
    }
    eprintln!("xtask: bench-real report in {} (ghostrace's stderr, stats and findings of every run beside it)", out.join("report.md").display());
    Ok(())
}

/// Inputs and data of the programs (repositories, databases): this work tree's own,
/// never a shared cache, which another tree's run would clean under it.
fn scratch() -> PathBuf {
    root().join("target/bench-real/scratch")
}

/// A host-wide marker that a bench-real runs (its pid in a file); a second run fails
/// at once instead of sharing the ports, the CPUs and the uprobe locks.
struct HostLock(PathBuf);

impl HostLock {
    const PATH: &str = "/run/ghostrace-bench-real.pid";

    fn take() -> Result<Self> {
        let path = PathBuf::from(Self::PATH);
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    use std::io::Write as _;
                    write!(file, "{}", std::process::id())?;
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = pid.trim();
                    ensure!(
                        pid.is_empty() || !Path::new("/proc").join(pid).exists(),
                        "another bench-real runs (pid {pid}, {}): they would share ports and CPUs",
                        Self::PATH
                    );
                    // Left by a run that was killed.
                    std::fs::remove_file(&path)?;
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", Self::PATH)),
            }
        }
        anyhow::bail!("cannot take {}", Self::PATH)
    }
}

impl Drop for HostLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn names() -> String {
    programs::PROGRAMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// What a measurement needs.
pub struct Bench<'a> {
    pub ghostrace: &'a Path,
    pub binary: &'a PathBuf,
    pub workload: &'a workloads::Workload,
    pub logs: &'a Path,
    pub options: &'a Options,
}

impl Bench<'_> {
    /// The configurations of `round` in the order they run: rotated each round.
    pub fn order(round: usize) -> impl Iterator<Item = usize> {
        (0..CONFIGS.len()).map(move |i| (i + round) % CONFIGS.len())
    }

    /// Log file tag of one run.
    pub fn tag(config: usize, round: usize) -> String {
        format!("{}-{round}", CONFIGS[config].name.replace(' ', "-"))
    }
}

/// Go version and default-scope probe count from `ghostrace inspect --json`.
fn plan(ghostrace: &Path, binary: &Path) -> (String, Option<u64>) {
    let report = crate::step::output(std::process::Command::new(ghostrace).args(["inspect", "--json"]).arg(binary))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match report {
        Some(r) => (r["go_version"].as_str().unwrap_or("?").to_string(), r["summary"]["probes"].as_u64()),
        None => ("not recognised by inspect".into(), None),
    }
}
