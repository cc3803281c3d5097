//! Command-line interface: argument parsing and one module per subcommand.

mod options;
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
    /// Start CMD held until the probes are attached, trace it until it exits, and
    /// exit with its status (66 when --fail-on matched a finding).
    Run {
        #[command(flatten)]
        options: TraceOptions,
        /// The command to run and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Trace a running process until Ctrl-C, SIGTERM, --duration or its exit.
    Attach {
        #[arg(long)]
        pid: u32,
        #[command(flatten)]
        options: TraceOptions,
    },
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { options, command } => run::run(&options, &command),
        Command::Attach { pid, options } => run::attach(&options, pid),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ghostrace: {e:#}");
            1
        }
    }
}
