//! Project tasks: set-up of every tool the project needs, builds, tests and the demo.

mod bench;
mod bootstrap;
mod build;
mod compare;
mod fuzz;
mod golang;
mod kernels;
mod race_suite;
mod step;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "ghostrace project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install everything the project needs (idempotent): Debian packages, bpf-linker,
    /// Go toolchains, the boot tier's kernels, bpffs/tracefs mounts.
    Bootstrap,
    /// Bootstrap, then build the eBPF object and the `ghostrace` binary (release).
    Build,
    /// Only bpf-linker and the release build, without the test tools.
    Release,
    /// The release build, then the container image `localhost/ghostrace:0.1.0` with podman from
    /// deploy/container/Containerfile (no registry: the binary and its libraries).
    Image,
    /// Bootstrap, build, and run every test tier (the pure one with overflow checks
    /// and debug assertions) and a bounded fuzz run; with ARGS only `cargo test
    /// --release ARGS`.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Bootstrap, build, and trace the bundled demo Go service.
    Demo,
    /// Build the ghostrace binary, run every scenario untraced, with -race and under ghostrace; write docs/comparison.md.
    Compare,
    /// The race detector's own test cases (GOROOT/src/runtime/race/testdata) under ghostrace,
    /// one test at a time on the chosen Go versions (root); writes docs/race-suite.md.
    RaceSuite {
        /// Go versions (repeatable; none: every installed one).
        #[arg(long = "go")]
        versions: Vec<String>,
        /// Traced runs of every test per version.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Build ghostrace and the testdata/bench workloads (newest Go), run them untraced
    /// and under every tracing configuration in alternating rounds, print the probe
    /// cost per hit against bpftrace and the trace-event floor, and the attach time of
    /// a large binary (root).
    Bench {
        /// Rounds of every workload under every configuration; medians are reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Large third-party Go programs from Debian packages (unpacked into .cache), untraced,
    /// under ghostrace's defaults and with the budget off, in alternating rounds: a server's
    /// throughput and CPU per request under a wrk load on 127.0.0.1, a batch program's wall
    /// and CPU time, ghostrace's own CPU, the governor's estimate against the measured cost
    /// (root).
    BenchReal {
        /// Rounds of every configuration on every program; medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Seconds of load in each server window.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Only these programs (by name; repeatable); the daemon's measurement is left out.
        #[arg(long)]
        only: Vec<String>,
        /// Only the daemon's measurement: ten or more of the programs at once under `ghostrace daemon`.
        #[arg(long, conflicts_with = "only")]
        daemon: bool,
    },
}

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent").to_path_buf()
}

/// Where set-up caches what it installs: git-ignored, inside the repository.
pub fn cache() -> PathBuf {
    root().join(".cache")
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Bootstrap => bootstrap::all(),
        Task::Build => bootstrap::all().and_then(|()| build::release()).map(|_| ()),
        Task::Release => bootstrap::build_tools().and_then(|()| build::release()).map(|_| ()),
        Task::Image => bootstrap::build_tools().and_then(|()| build::image()),
        Task::Test { args } => bootstrap::all().and_then(|()| build::test(&args)),
        Task::Demo => bootstrap::all().and_then(|()| build::demo()),
        Task::Compare => compare::run(),
        Task::RaceSuite { versions, runs } => bootstrap::all().and_then(|()| race_suite::run(&versions, runs)),
        Task::Bench { rounds } => bench::run(rounds),
        Task::BenchReal { rounds, seconds, only, daemon } => bench::real::run(&bench::real::Options { rounds, only, seconds, daemon }),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}
