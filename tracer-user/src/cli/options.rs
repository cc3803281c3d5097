//! Options shared by the tracing subcommands.

use std::path::PathBuf;

use clap::Args;

use crate::{
    detect::{Config, Severity},
    gobin::Scope,
};

#[derive(Args, Clone, Debug)]
pub struct TraceOptions {
    /// Write findings as JSON lines to FILE (docs/findings-schema.md).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Record the raw kernel records to FILE for `ghostrace replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Exit with status 66 when a finding of this severity or worse was seen
    /// (info, warning, critical). `run --fail-on` runs with the overhead budget off
    /// unless one is given: the same verdict every run (see --overhead-budget).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Two growths of one array closer than this are concurrent (slice_lost_append).
    #[arg(long, value_parser = parse_duration, default_value = "1ms", value_name = "DURATION")]
    pub window: std::time::Duration,
    /// Which call sites to probe: `default` (code outside the Go standard library),
    /// `all`, `std`, or comma-separated package patterns: `main`, `github.com/acme/...`
    /// (that package and everything below it), `github.com/acme/*` (`*` stays within
    /// one path element), `...db` (`...` elsewhere matches anything); `**` is refused.
    /// A scope that matches no call site is warned about (docs/inspect.md).
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub scope: Vec<String>,
    /// Write per-call-site probe statistics as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub stats_out: Option<PathBuf>,
    /// Also send 1 in N goroutine-local hits per probe to user space (0: none).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub sample_every: u32,
    /// Do not capture user stacks for records.
    #[arg(long)]
    pub no_stacks: bool,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    #[arg(long, default_value_t = 1 << 22, value_parser = parse_ring_bytes, value_name = "BYTES")]
    pub ring_bytes: u32,
    /// Write the eBPF programs' lines for rare events (a lost record, a failed map
    /// update, a stack not captured) among ghostrace's own messages; off by default,
    /// also on when `RUST_LOG` names `tracer_ebpf`.
    #[arg(long)]
    pub bpf_log: bool,
    /// Keep the estimated cost of the probes under this (docs/governor.md): a share
    /// of the traced process's own CPU time (`1%`), CPU time per second (`5ms/s`),
    /// or `off`. The hottest probes are attached only part of the time. Default: 1%;
    /// `run --fail-on` without this option runs with `off`, so that a CI verdict
    /// does not depend on which probes were attached when the race happened.
    #[arg(long, value_name = "BUDGET")]
    pub overhead_budget: Option<crate::governor::Budget>,
    /// Read the budget from FILE instead (one line, as --overhead-budget), at start
    /// and again on SIGHUP: the budget changes while tracing.
    #[arg(long, value_name = "FILE")]
    pub overhead_budget_file: Option<PathBuf>,
}

impl TraceOptions {
    /// The budget the options ask for: the one given, else the production default.
    pub fn budget(&self) -> crate::governor::Budget {
        self.overhead_budget.unwrap_or_default()
    }

    /// The options of `run`: with `--fail-on` and no budget given (neither option
    /// nor file), the budget is off. A short CI program under the default budget
    /// loses findings (the governor parks the hottest probes for part of each
    /// cycle), so the verdict would change from run to run; `attach` and the
    /// daemon, on long-running production processes, keep the default.
    pub fn for_run(&self) -> TraceOptions {
        let mut run = self.clone();
        if run.fail_on.is_some() && run.overhead_budget.is_none() && run.overhead_budget_file.is_none() {
            run.overhead_budget = Some(crate::governor::Budget::Off);
        }
        run
    }

    /// Whether SIGHUP reads the budget file again (where one is given) rather than
    /// stopping the traced program (`run`) or ghostrace (`attach`).
    pub fn reloads_on_hangup(&self) -> bool {
        self.overhead_budget_file.is_some()
    }
    /// The scope; `**` is refused in one line.
    pub fn scope(&self) -> Result<Scope, crate::gobin::ScopeError> {
        Scope::from_words(&self.scope)
    }

    /// How an executable is planned and traced.
    pub fn trace_settings(&self) -> Result<crate::probes::Settings, crate::gobin::ScopeError> {
        Ok(crate::probes::Settings { scope: self.scope()?, sample_every: self.sample_every, stacks: !self.no_stacks })
    }

    /// The detection engine's settings; `complete` when every hit reaches user space.
    pub fn detect_config(&self) -> Config {
        Config { window: self.window, complete_stream: self.sample_every == 1, ..Config::default() }
    }
}

/// A ring buffer size the kernel accepts: a power of two, at least one page.
fn parse_ring_bytes(text: &str) -> Result<u32, String> {
    let bytes: u32 = text.trim().parse().map_err(|_| format!("invalid size {text:?} (bytes)"))?;
    if bytes < 4096 || !bytes.is_power_of_two() {
        return Err(format!("{bytes} is not a power of two of at least 4096"));
    }
    Ok(bytes)
}

/// Parses `500ms`, `30s`, `5m`, `2h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration unit in {text:?} (use ms, s, m or h)")),
    };
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governor::Budget;

    fn options(args: &[&str]) -> TraceOptions {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            options: TraceOptions,
        }
        <Wrap as clap::Parser>::try_parse_from(std::iter::once("ghostrace").chain(args.iter().copied())).expect("parses").options
    }

    /// `run --fail-on` turns the budget off unless one is given; without --fail-on,
    /// and for attach (the options as parsed), the production default stays.
    #[test]
    fn fail_on_runs_without_a_budget_unless_one_is_given() {
        assert_eq!(options(&["--fail-on", "warning"]).for_run().budget(), Budget::Off);
        assert_eq!(options(&["--fail-on", "warning"]).budget(), Budget::default());
        assert_eq!(options(&[]).for_run().budget(), Budget::default());
        let explicit = options(&["--fail-on", "info", "--overhead-budget", "2%"]).for_run();
        assert_eq!(explicit.budget(), Budget::Share(0.02));
        let file = options(&["--fail-on", "info", "--overhead-budget-file", "/etc/budget"]).for_run();
        assert_eq!(file.overhead_budget, None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_bytes("4096"), Ok(4096));
        assert_eq!(parse_ring_bytes("4194304"), Ok(1 << 22));
        for bad in ["0", "1000", "6144", "2048", "x", "-4096"] {
            assert!(parse_ring_bytes(bad).is_err(), "{bad}");
        }
    }
}
