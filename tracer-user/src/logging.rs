//! ghostrace's own messages (not findings, which go to stdout): through `tracing`,
//! filtered by `RUST_LOG` (default `info`), to stderr as `ghostrace: ...` lines or,
//! for log pipelines, as JSON lines.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    EnvFilter,
    filter::LevelFilter,
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    registry::LookupSpan,
};

/// The target of the eBPF programs' lines (`tracer-ebpf/src/log.rs`): their module
/// paths start with it.
pub const BPF_TARGET: &str = "tracer_ebpf";

/// How messages are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `ghostrace: MESSAGE`, a level word before it below `info`.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, message, target.
    Json,
}

/// Installs the process's logger, filtered by `RUST_LOG`; a second call changes nothing.
/// The eBPF programs' lines come only with `bpf_log` or when `RUST_LOG` names them.
pub fn init(format: LogFormat, bpf_log: bool) {
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::INFO.into()).from_env_lossy();
    let named = std::env::var("RUST_LOG").is_ok_and(|v| v.contains(BPF_TARGET));
    let filter = bpf_filter(filter, bpf_log, named);
    let _ = tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr));
}

/// `filter` with the eBPF programs' target on (all their lines) or off, unless
/// `RUST_LOG` `named` it.
fn bpf_filter(filter: EnvFilter, bpf_log: bool, named: bool) -> EnvFilter {
    let level = match (bpf_log, named) {
        (true, _) => "debug",
        (false, true) => return filter,
        (false, false) => "off",
    };
    filter.add_directive(format!("{BPF_TARGET}={level}").parse().expect("a valid directive"))
}

fn subscriber<W>(format: LogFormat, filter: EnvFilter, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.event_format(Plain).finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    }
}

/// The lines ghostrace always wrote: the program's name, then the message.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "ghostrace: ")?;
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if meta.target().starts_with(BPF_TARGET) {
            write!(writer, "bpf: ")?;
        }
        match *meta.level() {
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
            _ => {}
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `emit` logs through a subscriber of `format` filtered by `directives`.
    fn logged(format: LogFormat, directives: &str, emit: impl FnOnce()) -> String {
        logged_through(format, EnvFilter::builder().parse(directives).unwrap(), emit)
    }

    fn logged_through(format: LogFormat, filter: EnvFilter, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        tracing::subscriber::with_default(subscriber(format, filter, move || sink.clone()), emit);
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    fn emit() {
        tracing::info!("tracing pid {} ({})", 42, "svc");
        tracing::warn!("not tracing pid 7: gone");
        tracing::debug!("a detail");
    }

    #[test]
    fn text_lines_are_the_ones_ghostrace_always_wrote() {
        assert_eq!(logged(LogFormat::Text, "info", emit), "ghostrace: tracing pid 42 (svc)\nghostrace: not tracing pid 7: gone\n");
        assert!(logged(LogFormat::Text, "debug", emit).ends_with("\nghostrace: debug: a detail\n"));
        assert_eq!(logged(LogFormat::Text, "error", emit), "");
    }

    #[test]
    fn the_programs_lines_come_only_when_asked_for() {
        let line = |directives: &str, bpf_log, named| {
            let filter = bpf_filter(EnvFilter::builder().parse(directives).unwrap(), bpf_log, named);
            logged_through(LogFormat::Text, filter, || tracing::warn!(target: "tracer_ebpf::emit", "probe 3: record lost"))
        };
        assert_eq!(line("info", false, false), "", "off by default");
        assert_eq!(line("info", true, false), "ghostrace: bpf: probe 3: record lost\n", "--bpf-log");
        assert_eq!(line("error,tracer_ebpf=warn", false, true), "ghostrace: bpf: probe 3: record lost\n", "RUST_LOG naming them");
        assert_eq!(line("tracer_ebpf=error", false, true), "", "RUST_LOG naming them at a lower level");
    }

    #[test]
    fn json_lines_carry_level_and_message() {
        let text = logged(LogFormat::Json, "info", emit);
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "tracing pid 42 (svc)");
        assert_eq!(lines[1]["level"], "WARN");
        assert!(lines[1]["timestamp"].is_string(), "{text}");
    }
}
