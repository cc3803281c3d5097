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
        let features = Feature::ALL.iter().map(|&f| (f, probe_feature(f))).collect();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |r| r.trim().to_string());
        KernelSupport { release, features }
    }

    pub fn found(&self, feature: Feature) -> &Found {
        self.features.iter().find(|(f, _)| *f == feature).map_or(&Found::No, |(_, found)| found)
    }

    /// The attach path these features allow: uprobe-multi links where they filter
    /// by process, else one perf link per probe; the first feature missing for
    /// both otherwise.
    pub fn attach_mode(&self) -> Result<AttachMode, Feature> {
        let missing = |needed: &[Feature]| needed.iter().copied().find(|&f| !self.found(f).yes());
        if let Some(f) = missing(&[Feature::Uprobes, Feature::RingBuffer]) {
            return Err(f);
        }
        if missing(&[Feature::UprobeMultiLink, Feature::UprobeMultiPidFilter]).is_none() {
            return Ok(AttachMode::Multi);
        }
        match missing(&[Feature::PerfLink, Feature::AttachCookie]) {
            None => Ok(AttachMode::PerProbe),
            Some(f) => Err(f),
        }
    }

    /// The first feature an unprivileged probe could not answer for.
    pub fn unknown(&self) -> Option<(Feature, &str)> {
        self.features.iter().find_map(|(f, found)| match found {
            Found::Unknown(why) => Some((*f, why.as_str())),
            _ => None,
        })
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
        Feature::ExecExitTracepoints => answer(Ok(["sched_process_exec", "sched_process_exit"].iter().all(|event| {
            ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
                .iter()
                .any(|root| std::path::Path::new(&format!("{root}/events/sched/{event}/id")).exists())
        }))),
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
        writeln!(f, "kernel {}", self.release)?;
        for (feature, found) in &self.features {
            let state = match found {
                Found::Yes => "found".to_string(),
                Found::No => "missing".to_string(),
                Found::Unknown(why) => format!("unknown ({why})"),
            };
            writeln!(
                f,
                "  {:<28} {:<8} {} (Linux {}; {})",
                feature.name(),
                state,
                feature.describe(),
                feature.since(),
                feature.need()
            )?;
        }
        match (std::env::var(super::attach::ATTACH_PATH_VAR).ok(), self.attach_mode()) {
            (Some(forced), _) => writeln!(f, "attach path: {forced} (forced by {})", super::attach::ATTACH_PATH_VAR),
            (None, Ok(mode)) => writeln!(f, "attach path: {}", mode.describe()),
            (None, Err(missing)) => writeln!(f, "attach path: none: {}", too_old(&self.release, missing)),
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
