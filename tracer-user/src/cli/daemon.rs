//! `ghostrace daemon`: its flags and environment variables.

use std::time::Duration;

use clap::Args;

use super::options::parse_duration;
use crate::gobin::Scope;
use crate::{
    daemon::{DaemonConfig, Options, Rule, Selector},
    detect::Config,
};

/// Every flag can also be set by the environment variable named in its help.
#[derive(Args, Clone, Debug)]
pub struct DaemonArgs {
    /// Address of the HTTP endpoint: /metrics (Prometheus), /healthz, /readyz and
    /// /status (what is traced, JSON). Use 0.0.0.0:9560 to be scraped from elsewhere.
    #[arg(long, env = "GHOSTRACE_LISTEN", default_value = "127.0.0.1:9560", value_name = "ADDR")]
    pub listen: String,
    /// Trace only processes matching a rule: `path:GLOB` (executable path; `*` within
    /// a path element, `**` across), `name:NAME` (process name or executable file
    /// name; `*` allowed), `cgroup:TEXT` (substring of /proc/PID/cgroup). Repeat the
    /// flag or separate rules with commas; any rule matching selects. Default: every
    /// Go process.
    #[arg(long = "select", env = "GHOSTRACE_SELECT", value_delimiter = ',', value_name = "RULE")]
    pub select: Vec<Rule>,
    /// Which call sites to probe: `default` (code outside the Go standard library),
    /// `all`, `std`, or comma-separated package patterns (`github.com/acme/...` for a
    /// package and everything below it, `*` within one path element; `**` is
    /// refused): docs/inspect.md.
    #[arg(long, env = "GHOSTRACE_SCOPE", value_delimiter = ',', default_value = "default")]
    pub scope: Vec<String>,
    /// Two growths of one array closer than this are concurrent (slice_lost_append).
    #[arg(long, env = "GHOSTRACE_WINDOW", value_parser = parse_duration, default_value = "1ms", value_name = "DURATION")]
    pub window: Duration,
    /// Write a finding's JSON line again at most this often while its count grows
    /// (new findings are written at once, and a last time when the process exits).
    #[arg(long, env = "GHOSTRACE_FINDING_INTERVAL", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub finding_interval: Duration,
    /// Also send 1 in N goroutine-local hits per probe to user space (0: none).
    #[arg(long, env = "GHOSTRACE_SAMPLE_EVERY", default_value_t = 0, value_name = "N")]
    pub sample_every: u32,
    /// Do not capture user stacks for records.
    #[arg(long, env = "GHOSTRACE_NO_STACKS")]
    pub no_stacks: bool,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    #[arg(long, env = "GHOSTRACE_RING_BYTES", default_value_t = 1 << 22, value_name = "BYTES")]
    pub ring_bytes: u32,
    /// Keep the estimated cost of the probes under this for each traced executable
    /// (docs/governor.md): a share of its processes' own CPU time (`1%`), CPU time
    /// per second (`5ms/s`), or `off`.
    #[arg(long, env = "GHOSTRACE_OVERHEAD_BUDGET", default_value = "1%", value_name = "BUDGET")]
    pub overhead_budget: crate::governor::Budget,
    /// Read the budget from FILE instead (one line, as --overhead-budget), at start
    /// and again on SIGHUP: the budget changes without a restart.
    #[arg(long, env = "GHOSTRACE_OVERHEAD_BUDGET_FILE", value_name = "FILE")]
    pub overhead_budget_file: Option<std::path::PathBuf>,
    /// Room in the kernel's per-probe tables, for every traced executable together:
    /// 40 bytes a probe per possible CPU plus 24 (131,072 probes: 5 MiB per CPU).
    /// An executable detached gives its room back; one whose plan does not fit is
    /// traced with what fits, slice growth sites left out first.
    #[arg(long, env = "GHOSTRACE_MAX_PROBES", default_value_t = 131_072, value_name = "N")]
    pub max_probes: u32,
    /// Keep an executable's probes attached this long after its last process exits,
    /// so that a program run again and again (a periodic job, a plugin run per
    /// event) is planned and attached once; `0s` detaches at once. Kept probes cost
    /// nothing while no process runs the file and give way to new executables when
    /// the probe table is full.
    #[arg(long, env = "GHOSTRACE_KEEP_IDLE", value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub keep_idle: Duration,
    /// How the daemon's own messages are written to stderr: `text` lines or `json`
    /// lines for a log pipeline (findings stay JSON lines on stdout). `RUST_LOG`
    /// filters them (default `info`; `debug` says more).
    #[arg(long, env = "GHOSTRACE_LOG_FORMAT", value_enum, default_value = "text", value_name = "FORMAT")]
    pub log_format: crate::logging::LogFormat,
    /// Write the eBPF programs' lines for rare events (a lost record, a failed map
    /// update, a stack not captured) among ghostrace's own messages; off by default,
    /// also on when `RUST_LOG` names `tracer_ebpf`.
    #[arg(long, env = "GHOSTRACE_BPF_LOG")]
    pub bpf_log: bool,
    /// Stop after this long (default: run until SIGINT or SIGTERM).
    #[arg(long, env = "GHOSTRACE_DURATION", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,
}

pub fn daemon(args: DaemonArgs) -> anyhow::Result<i32> {
    let budget = crate::governor::starting_budget(args.overhead_budget, args.overhead_budget_file.as_deref())
        .map_err(anyhow::Error::msg)?;
    let options = Options {
        budget,
        selector: Selector::new(args.select),
        trace: crate::probes::Settings {
            scope: Scope::from_words(&args.scope)?,
            sample_every: args.sample_every,
            stacks: !args.no_stacks,
        },
        keep_idle: args.keep_idle,
    };
    let detect = Config { window: args.window, complete_stream: args.sample_every == 1, ..Config::default() };
    crate::daemon::run(DaemonConfig {
        listen: args.listen,
        options,
        detect,
        ring_bytes: args.ring_bytes,
        max_probes: args.max_probes,
        finding_interval: args.finding_interval,
        duration: args.duration,
        budget_file: args.overhead_budget_file,
    })?;
    Ok(0)
}
