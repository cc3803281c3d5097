//! Command-line interface: argument parsing and one module per subcommand.

mod daemon;
mod follow;
mod options;
mod output;
mod run;
mod session;

use clap::{Parser, Subcommand};

pub use self::options::TraceOptions;

#[derive(Parser)]
#[command(name = "ghostrace", version, about = "Finds shared slice, map and list hazards in running Go programs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what ghostrace reads from a Go binary: version, build settings, runtime
    /// layout and the probe plan.
    Inspect {
        /// The Go executable.
        #[arg(required_unless_present = "calibrate")]
        binary: Option<std::path::PathBuf>,
        /// Measure what a probe hit costs on this host (emulated and single-stepped
        /// instructions), print it and update the cache the governor reads.
        #[arg(long)]
        calibrate: bool,
        /// Print the report as JSON (stable; see docs/inspect.md).
        #[arg(long)]
        json: bool,
        /// Which call sites to plan probes for (see `run --help`).
        #[arg(long, value_delimiter = ',', default_value = "default")]
        scope: Vec<String>,
    },
    /// Start CMD held until the probes are attached, trace it until it exits, and
    /// exit with its status (66 when --fail-on matched a finding).
    Run {
        #[command(flatten)]
        options: TraceOptions,
        /// The command to run and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Run the detectors over a recording made with `--record`.
    Replay {
        /// The recording.
        file: std::path::PathBuf,
        /// Write findings as JSON lines to FILE.
        #[arg(long, value_name = "FILE")]
        json_out: Option<std::path::PathBuf>,
        /// Exit with status 66 when a finding of this severity or worse was found.
        #[arg(long, value_name = "SEVERITY")]
        fail_on: Option<crate::detect::Severity>,
        /// Concurrency window of slice_lost_append (as for `run`).
        #[arg(long, value_parser = options::parse_duration, default_value = "1ms", value_name = "DURATION")]
        window: std::time::Duration,
    },
    /// Trace a running process until Ctrl-C, SIGTERM, --duration or its exit.
    Attach {
        #[arg(long)]
        pid: u32,
        /// Stop tracing after this long (e.g. 30s, 5m) and leave the process running.
        #[arg(long, value_parser = options::parse_duration, value_name = "DURATION")]
        duration: Option<std::time::Duration>,
        #[command(flatten)]
        options: TraceOptions,
    },
    /// Probe the running kernel for each feature ghostrace uses, print which are
    /// found or missing and the attach path ghostrace will take; exit 1 when it
    /// cannot trace here (docs/deployment.md).
    Check,
    /// Trace every selected Go process on the host, those running now and those
    /// started later, until SIGINT/SIGTERM: findings to stdout as JSON lines
    /// (docs/findings-schema.md), Prometheus metrics on --listen (docs/metrics.md).
    Daemon(daemon::DaemonArgs),
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let (format, bpf_log) = match &cli.command {
        Command::Daemon(args) => (args.log_format, args.bpf_log),
        Command::Run { options, .. } | Command::Attach { options, .. } => (crate::logging::LogFormat::Text, options.bpf_log),
        _ => (crate::logging::LogFormat::Text, false),
    };
    crate::logging::init(format, bpf_log);
    let result = match cli.command {
        Command::Inspect { binary, json, scope, calibrate } => {
            let calibrated = if calibrate { self::calibrate(json) } else { Ok(0) };
            match binary {
                Some(binary) => calibrated.and_then(|_| inspect(&binary, json, &scope)),
                None => calibrated,
            }
        }
        Command::Replay { file, json_out, fail_on, window } => replay(&file, json_out.as_deref(), fail_on, window),
        Command::Run { options, command } => run::run(&options, &command),
        Command::Attach { pid, duration, options } => run::attach(&options, pid, duration),
        Command::Daemon(args) => daemon::daemon(args),
        Command::Check => check(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    }
}

fn inspect(binary: &std::path::Path, json: bool, scope: &[String]) -> anyhow::Result<i32> {
    let scope = crate::gobin::Scope::from_words(scope)?;
    let bin = crate::gobin::GoBinary::open(binary)?;
    let report = bin.report(&scope);
    let text = if json { serde_json::to_string_pretty(&report)? + "\n" } else { report.to_string() };
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.map(|()| 0).map_err(Into::into),
    }
}

fn check() -> anyhow::Result<i32> {
    let kernel = crate::probes::kernel::KernelSupport::probe();
    print!("{kernel}");
    match crate::probes::AttachMode::choose(|| kernel) {
        Ok(_) => Ok(0),
        Err(e) => {
            tracing::error!("{e}");
            Ok(1)
        }
    }
}

fn calibrate(json: bool) -> anyhow::Result<i32> {
    let mut tracer = crate::probes::Tracer::load(1 << 12, 1)?;
    let cost = crate::governor::calibrate::remeasure(&mut tracer)?;
    let cache = crate::governor::calibrate::cache_path();
    if json {
        println!("{}", serde_json::json!({ "hit_cost": cost, "cache": cache }));
    } else {
        println!("probe hit cost on this host: {cost}");
        if let Some(cache) = cache {
            println!("cached in {}", cache.display());
        }
    }
    Ok(0)
}

fn replay(
    file: &std::path::Path,
    json_out: Option<&std::path::Path>,
    fail_on: Option<crate::detect::Severity>,
    window: std::time::Duration,
) -> anyhow::Result<i32> {
    let config = crate::detect::Config { window, ..Default::default() };
    let symbols = crate::symbolize::BinarySymbols::default();
    let replay = crate::recording::replay(file, &config, &symbols)?;
    eprint!("{}", crate::export::table::render(&replay.findings, Some(&replay.stats)));
    if replay.lost > 0 {
        tracing::warn!("{} records were lost while recording: findings may be missing", replay.lost);
    }
    if let Some(out) = json_out {
        output::write_json(out, &replay.findings, replay.header.anchor.unix_offset_ns(), None)?;
    }
    Ok(output::exit_status(&replay.findings, fail_on, 0))
}
