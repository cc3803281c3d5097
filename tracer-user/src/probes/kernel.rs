//! What the running kernel offers ghostrace, probed once at start-up: each feature
//! found or missing, the attach path that follows, and the one line a kernel too
//! old to trace on gets.

use std::fmt;

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, UProbeMultiFeature},
};

use super::attach::AttachMode;

/// The oldest kernel with everything the per-probe path needs (perf-event BPF
/// links and attach cookies came together in 5.15).
pub const MINIMUM_KERNEL: &str = "5.15";

/// Environment variable naming features (comma-separated, as in [`Feature::name`])
/// to report missing whatever the kernel has: tests play older kernels with it.
pub const HIDE_VAR: &str = "GHOSTRACE_HIDE_KERNEL_FEATURES";

/// A kernel feature ghostrace uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Uprobes,
    RingBuffer,
    PerfLink,
    AttachCookie,
    UprobeMultiLink,
    UprobeMultiPidFilter,
    ExecExitTracepoints,
    RunTimeStats,
    Btf,
}

/// Who needs a feature: what is lost without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing can be traced without it.
    Always,
    /// The per-probe path (kernels without uprobe-multi links) needs it.
    PerProbe,
    /// The uprobe-multi path needs it; without it the per-probe path is taken.
    Multi,
    /// The daemon and `run`'s followed children need it.
    Processes,
    /// Used where present; nothing is refused without it.
    Optional,
}

impl Feature {
    pub const ALL: [Feature; 9] = [
        Feature::Uprobes,
        Feature::RingBuffer,
        Feature::PerfLink,
        Feature::AttachCookie,
        Feature::UprobeMultiLink,
        Feature::UprobeMultiPidFilter,
        Feature::ExecExitTracepoints,
        Feature::RunTimeStats,
        Feature::Btf,
    ];

    /// Its name: the `feature` label of `ghostrace_kernel_feature`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Uprobes => "uprobes",
            Feature::RingBuffer => "ring_buffer",
            Feature::PerfLink => "perf_link",
            Feature::AttachCookie => "uprobe_cookie",
            Feature::UprobeMultiLink => "uprobe_multi_link",
            Feature::UprobeMultiPidFilter => "uprobe_multi_pid_filter",
            Feature::ExecExitTracepoints => "sched_exec_exit_tracepoints",
            Feature::RunTimeStats => "bpf_run_time_stats",
            Feature::Btf => "btf",
        }
    }

    /// What it is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::Uprobes => "uprobe perf events (the uprobe PMU)",
            Feature::RingBuffer => "BPF ring buffer maps",
            Feature::PerfLink => "BPF links on perf events",
            Feature::AttachCookie => "attach cookies in uprobes (bpf_get_attach_cookie)",
            Feature::UprobeMultiLink => "uprobe-multi links (BPF_TRACE_UPROBE_MULTI)",
            Feature::UprobeMultiPidFilter => "uprobe-multi links filtering a whole process, not one thread",
            Feature::ExecExitTracepoints => "sched_process_exec and sched_process_exit tracepoints",
            Feature::RunTimeStats => "BPF run-time statistics (BPF_ENABLE_STATS)",
            Feature::Btf => "BTF",
        }
    }

    /// The mainline release that brought it.
    pub fn since(self) -> &'static str {
        match self {
            Feature::Uprobes => "4.17",
            Feature::RingBuffer | Feature::RunTimeStats => "5.8",
            Feature::PerfLink | Feature::AttachCookie => "5.15",
            Feature::UprobeMultiLink => "6.6",
            Feature::UprobeMultiPidFilter => "6.10",
            Feature::ExecExitTracepoints => "3.4",
            Feature::Btf => "4.18",
        }
    }

    pub fn need(self) -> Need {
        match self {
            Feature::Uprobes | Feature::RingBuffer => Need::Always,
            Feature::PerfLink | Feature::AttachCookie => Need::PerProbe,
            Feature::UprobeMultiLink | Feature::UprobeMultiPidFilter => Need::Multi,
            Feature::ExecExitTracepoints => Need::Processes,
            Feature::RunTimeStats | Feature::Btf => Need::Optional,
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Need::Always => "required",
            Need::PerProbe => "per-probe path",
            Need::Multi => "multi path",
            Need::Processes => "daemon, followed children",
            Need::Optional => "optional",
        })
    }
}

/// The answer of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Yes,
    No,
    /// The probe itself failed (without privilege, most often).
    Unknown(String),
}

impl Found {
    pub fn yes(&self) -> bool {
        *self == Found::Yes
    }
}

/// Every feature of the running kernel, probed.
#[derive(Clone, Debug)]
pub struct KernelSupport {
    /// `uname -r`.
    pub release: String,
    pub features: Vec<(Feature, Found)>,
}

impl KernelSupport {
    /// Probes the running kernel: loads a few trivial programs, creates and drops
    /// a map, and briefly turns on BPF run-time statistics.
    pub fn probe() -> Self {
        let hidden = std::env::var(HIDE_VAR).unwrap_or_default();
        let hidden: Vec<&str> = hidden.split(',').map(str::trim).collect();
        let features = Feature::ALL
            .iter()
            .map(|&f| (f, if hidden.contains(&f.name()) { Found::No } else { probe_feature(f) }))
            .collect();
        let release = crate::procfs::kernel_setting("kernel/osrelease").unwrap_or_else(|| "unknown".into());
        KernelSupport { release, features }
    }

    pub fn found(&self, feature: Feature) -> &Found {
        self.features.iter().find(|(f, _)| *f == feature).map_or(&Found::No, |(_, found)| found)
    }

    /// The attach path these features allow: uprobe-multi links where they filter
    /// by process, else one perf link per probe; otherwise the first feature both
    /// lack, or could not be probed for.
    pub fn attach_mode(&self) -> Result<AttachMode, (Feature, &Found)> {
        let lacking = |needed: &[Feature]| needed.iter().map(|&f| (f, self.found(f))).find(|(_, found)| !found.yes());
        if let Some(lack) = lacking(&[Feature::Uprobes, Feature::RingBuffer]) {
            return Err(lack);
        }
        if lacking(&[Feature::UprobeMultiLink, Feature::UprobeMultiPidFilter]).is_none() {
            return Ok(AttachMode::Multi);
        }
        match lacking(&[Feature::PerfLink, Feature::AttachCookie]) {
            None => Ok(AttachMode::PerProbe),
            Some(lack) => Err(lack),
        }
    }
}

fn probe_feature(feature: Feature) -> Found {
    let answer = |r: Result<bool, String>| match r {
        Ok(true) => Found::Yes,
        Ok(false) => Found::No,
        Err(why) => Found::Unknown(why),
    };
    match feature {
        Feature::Uprobes => answer(Ok(std::path::Path::new("/sys/bus/event_source/devices/uprobe/type").exists())),
        Feature::RingBuffer => answer(aya::sys::is_map_supported(MapType::RingBuf).map_err(|e| super::chain(&e))),
        Feature::PerfLink => answer(aya::sys::is_perf_link_supported().map_err(|e| e.to_string())),
        Feature::AttachCookie => answer(
            aya::sys::is_helper_supported(ProgramType::KProbe, BpfHelper::BPF_FUNC_get_attach_cookie)
                .map_err(|e| super::chain(&e)),
        ),
        Feature::UprobeMultiLink => {
            answer(aya::sys::is_uprobe_multi_supported(UProbeMultiFeature::LinkCreation).map_err(|e| e.to_string()))
        }
        Feature::UprobeMultiPidFilter => answer(
            aya::sys::is_uprobe_multi_supported(UProbeMultiFeature::ProcessScopedPidFilter).map_err(|e| e.to_string()),
        ),
        Feature::ExecExitTracepoints => {
            let event = |root: &str, event: &str| std::fs::metadata(format!("{root}/events/sched/{event}/id"));
            let found = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].iter().map(|root| {
                event(root, "sched_process_exec").and_then(|_| event(root, "sched_process_exit")).map(|_| true)
            });
            let mut answer_here = Ok(false);
            for f in found {
                match f {
                    Ok(true) => return Found::Yes,
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => answer_here = Err(e.to_string()),
                    _ => {}
                }
            }
            answer(answer_here)
        }
        Feature::RunTimeStats => answer(match aya::sys::enable_stats(aya::sys::Stats::RunTime) {
            Ok(_fd) => Ok(true),
            Err(e) if e.io_error.raw_os_error() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e.to_string()),
        }),
        Feature::Btf => answer(aya::sys::is_btf_supported().map_err(|e| e.to_string())),
    }
}

impl fmt::Display for KernelSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel {} (ghostrace needs Linux {MINIMUM_KERNEL} or later)", self.release)?;
        writeln!(f, "  {:<28} {:<8} {:<6} {:<26} what", "feature", "state", "since", "needed by")?;
        for (feature, found) in &self.features {
            let state = match found {
                Found::Yes => "found",
                Found::No => "missing",
                Found::Unknown(_) => "unknown",
            };
            let why = match found {
                Found::Unknown(why) => format!(" (probe failed: {why})"),
                _ => String::new(),
            };
            let need = feature.need().to_string();
            writeln!(f, "  {:<28} {state:<8} {:<6} {need:<26} {}{why}", feature.name(), feature.since(), feature.describe())?;
        }
        match (std::env::var(super::attach::ATTACH_PATH_VAR).ok(), self.attach_mode()) {
            (Some(forced), _) => writeln!(f, "attach path: {forced} (forced by {})", super::attach::ATTACH_PATH_VAR),
            (None, Ok(mode)) => writeln!(f, "attach path: {}", mode.describe()),
            (None, Err((_, Found::Unknown(_)))) => writeln!(f, "attach path: unknown: probing the kernel needs root"),
            (None, Err((missing, _))) => writeln!(f, "attach path: none: {}", too_old(&self.release, missing)),
        }
    }
}

/// The one line a kernel ghostrace cannot trace on gets.
pub fn too_old(release: &str, missing: Feature) -> String {
    format!(
        "this kernel ({release}) lacks {} (Linux {}): ghostrace needs Linux {MINIMUM_KERNEL} or later",
        missing.describe(),
        missing.since()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(missing: &[Feature]) -> KernelSupport {
        let features =
            Feature::ALL.iter().map(|&f| (f, if missing.contains(&f) { Found::No } else { Found::Yes })).collect();
        KernelSupport { release: "test".into(), features }
    }

    #[test]
    fn multi_links_are_taken_only_where_they_filter_a_whole_process() {
        assert_eq!(kernel(&[]).attach_mode(), Ok(AttachMode::Multi));
        assert_eq!(kernel(&[Feature::UprobeMultiPidFilter]).attach_mode(), Ok(AttachMode::PerProbe));
        // Linux 6.1: no multi links, perf links with cookies.
        assert_eq!(
            kernel(&[Feature::UprobeMultiLink, Feature::UprobeMultiPidFilter]).attach_mode(),
            Ok(AttachMode::PerProbe)
        );
    }

    #[test]
    fn a_kernel_older_than_the_minimum_is_told_what_it_lacks() {
        // Linux 5.10: ring buffers, no perf links, no cookies, no multi links.
        let old = kernel(&[Feature::PerfLink, Feature::AttachCookie, Feature::UprobeMultiLink, Feature::UprobeMultiPidFilter]);
        let (missing, _) = old.attach_mode().expect_err("5.10 cannot trace");
        assert_eq!(missing, Feature::PerfLink);
        let line = too_old(&old.release, missing);
        assert!(line.contains("Linux 5.15 or later") && line.contains("perf events"), "{line}");
        assert_eq!(kernel(&[Feature::RingBuffer]).attach_mode().map_err(|e| e.0), Err(Feature::RingBuffer));
    }

    #[test]
    fn an_unanswered_probe_is_not_a_missing_feature() {
        let mut k = kernel(&[Feature::UprobeMultiLink]);
        k.features[3].1 = Found::Unknown("Operation not permitted".into());
        assert!(matches!(k.attach_mode(), Err((Feature::AttachCookie, Found::Unknown(_)))));
    }
}
