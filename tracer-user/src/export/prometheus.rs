//! The daemon's Prometheus metrics (docs/metrics.md): every family with its type and
//! labels, and the text exposition. Labels take bounded values only: detector,
//! severity, probe kind, binary basename, error reason, Kubernetes namespace, pod
//! and container; never addresses or ids.

use ::prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
    process_collector::ProcessCollector,
};
use thiserror::Error;

use crate::detect::{Detector, Severity};

#[derive(Debug, Error)]
pub enum MetricsError {
    #[error("cannot register metric {name}: {source}")]
    Register {
        name: String,
        #[source]
        source: ::prometheus::Error,
    },
    #[error("cannot encode the metrics: {0}")]
    Encode(#[source] ::prometheus::Error),
}

/// Why a binary could not be traced (`ghostrace_attach_errors_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachFailure {
    /// A Go binary ghostrace cannot analyse (architecture, version, malformed tables).
    Unsupported,
    /// The kernel refused the uprobes.
    Attach,
    /// The probe table (`--max-probes`) has no room left at all.
    ProbeTableFull,
    /// The kernel's table of traced processes is full.
    ProcessTableFull,
    /// Out of file descriptors: each uprobe link holds one.
    OpenFiles,
}

impl AttachFailure {
    pub const ALL: [Self; 5] =
        [Self::Unsupported, Self::Attach, Self::ProbeTableFull, Self::ProcessTableFull, Self::OpenFiles];

    pub fn name(self) -> &'static str {
        match self {
            Self::Unsupported => "unsupported",
            Self::Attach => "attach",
            Self::ProbeTableFull => "probe_table_full",
            Self::ProcessTableFull => "process_table_full",
            Self::OpenFiles => "open_files",
        }
    }
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    /// Distinct findings (detector, call-site pair, process), by detector/severity/binary.
    pub findings: IntCounterVec,
    /// Occurrences folded into those findings.
    pub finding_occurrences: IntCounterVec,
    /// Findings the engines could not keep (beyond their bound), counted only.
    pub findings_dropped: IntCounter,
    /// Kernel counters, by probe kind and binary.
    pub probe_hits: IntCounterVec,
    pub records_emitted: IntCounterVec,
    pub records_lost: IntCounterVec,
    pub hits_filtered: IntCounterVec,
    pub read_errors: IntCounterVec,
    /// Records the user side read from the ring buffer.
    pub records_received: IntCounter,
    /// Processes the kernel side traces now.
    pub traced_processes: IntGauge,
    /// Selected Go processes running now, traced or not.
    pub go_processes: IntGauge,
    pub attached_binaries: IntGauge,
    pub attached_probes: IntGauge,
    /// Probes of attached executables' plans left out for want of probe table room.
    pub left_out_probes: IntGauge,
    pub attach_errors: IntCounterVec,
    /// Executables looked at and found not to be Go programs.
    pub ignored_binaries: IntCounter,
    /// Processes that became traced, by how they were found (`scan`, `exec`).
    pub discovered: IntCounterVec,
    /// Detector per-object states dropped, by cause (`table_full`, `idle`).
    pub detector_evictions: IntCounterVec,
    /// Objects the detectors follow now.
    pub detector_tracked: IntGauge,
    /// The overhead governor's view, by binary: estimated probe CPU over the
    /// processes' own CPU in the last cycle.
    pub estimated_overhead: GaugeVec,
    /// Least share of time attached among a binary's probes of one kind.
    pub probe_coverage: GaugeVec,
    /// Calibrated CPU cost of one probe hit, by instruction kind.
    pub hit_cost: GaugeVec,
    /// 1 when the running kernel has a feature ghostrace uses, by feature.
    pub kernel_feature: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let metric = IntCounter::new(name, help).map_err(|source| MetricsError::Register { name: name.into(), source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    Ok(metric)
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, MetricsError> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    Ok(metric)
}

fn float_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, MetricsError> {
    let metric =
        GaugeVec::new(Opts::new(name, help), labels).map_err(|source| MetricsError::Register { name: name.into(), source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    Ok(metric)
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, MetricsError> {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    Ok(metric)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let metric = IntGauge::new(name, help).map_err(|source| MetricsError::Register { name: name.into(), source })?;
    registry
        .register(Box::new(metric.clone()))
        .map_err(|source| MetricsError::Register { name: name.into(), source })?;
    Ok(metric)
}

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();
        let by_finding = ["detector", "severity", "binary", "namespace", "pod", "container"];
        let by_probe = ["probe", "binary"];
        let metrics = Self {
            findings: counter_vec(
                &r,
                "ghostrace_findings_total",
                "Distinct findings (detector, call-site pair, process).",
                &by_finding,
            )?,
            finding_occurrences: counter_vec(
                &r,
                "ghostrace_finding_occurrences_total",
                "Occurrences of the patterns behind the findings.",
                &by_finding,
            )?,
            findings_dropped: counter(
                &r,
                "ghostrace_findings_dropped_total",
                "Occurrences of new call-site pairs beyond the per-process finding bound.",
            )?,
            probe_hits: counter_vec(&r, "ghostrace_probe_hits_total", "Uprobe hits from traced processes.", &by_probe)?,
            records_emitted: counter_vec(
                &r,
                "ghostrace_records_emitted_total",
                "Records the kernel side wrote to the ring buffer.",
                &by_probe,
            )?,
            records_lost: counter_vec(
                &r,
                "ghostrace_records_lost_total",
                "Records lost because the ring buffer was full.",
                &by_probe,
            )?,
            hits_filtered: counter_vec(
                &r,
                "ghostrace_kernel_filtered_hits_total",
                "Hits handled in the kernel without a record (goroutine-local use).",
                &by_probe,
            )?,
            read_errors: counter_vec(
                &r,
                "ghostrace_probe_read_errors_total",
                "Hits whose process memory could not be read.",
                &by_probe,
            )?,
            records_received: counter(&r, "ghostrace_records_received_total", "Records read from the ring buffer.")?,
            traced_processes: gauge(&r, "ghostrace_traced_processes", "Processes traced now.")?,
            go_processes: gauge(&r, "ghostrace_go_processes", "Selected Go processes running now, traced or not.")?,
            attached_binaries: gauge(
                &r,
                "ghostrace_attached_binaries",
                "Executables (inodes) with probes attached now.",
            )?,
            attached_probes: gauge(&r, "ghostrace_attached_probes", "Uprobes attached now.")?,
            left_out_probes: gauge(
                &r,
                "ghostrace_left_out_probes",
                "Probes of the attached executables' plans left out: the probe table (--max-probes) had no room.",
            )?,
            attach_errors: counter_vec(
                &r,
                "ghostrace_attach_errors_total",
                "Go executables that could not be traced.",
                &["reason"],
            )?,
            ignored_binaries: counter(
                &r,
                "ghostrace_ignored_binaries_total",
                "Executables found not to be Go programs.",
            )?,
            discovered: counter_vec(
                &r,
                "ghostrace_processes_discovered_total",
                "Processes that became traced.",
                &["source"],
            )?,
            detector_evictions: counter_vec(
                &r,
                "ghostrace_detector_evictions_total",
                "Detector per-object states dropped (table_full: least recently used; idle: unused for the ttl).",
                &["cause"],
            )?,
            detector_tracked: gauge(
                &r,
                "ghostrace_detector_tracked_objects",
                "Arrays, maps, iterators and lists followed now.",
            )?,
            estimated_overhead: float_gauge_vec(
                &r,
                "ghostrace_estimated_overhead_ratio",
                "Estimated CPU time of the probes over the traced processes' own CPU time, last governor cycle.",
                &["binary"],
            )?,
            probe_coverage: float_gauge_vec(
                &r,
                "ghostrace_probe_coverage_ratio",
                "Least share of the traced time a probe of this kind was attached (the governor's duty cycles).",
                &by_probe,
            )?,
            kernel_feature: gauge_vec(
                &r,
                "ghostrace_kernel_feature",
                "1 when the running kernel has this feature ghostrace uses, else 0 (`ghostrace check`).",
                &["feature"],
            )?,
            hit_cost: float_gauge_vec(
                &r,
                "ghostrace_probe_hit_cost_seconds",
                "Calibrated CPU time of one probe hit on this host.",
                &["instruction"],
            )?,
            registry: r,
        };
        let info = IntGaugeVec::new(
            Opts::new("ghostrace_build_info", "The ghostrace build: 1, labelled by version."),
            &["version"],
        )
        .map_err(|source| MetricsError::Register { name: "ghostrace_build_info".into(), source })?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        metrics
            .registry
            .register(Box::new(info))
            .map_err(|source| MetricsError::Register { name: "ghostrace_build_info".into(), source })?;
        metrics
            .registry
            .register(Box::new(ProcessCollector::for_self()))
            .map_err(|source| MetricsError::Register { name: "process".into(), source })?;
        // Series that exist from the start read as 0 rather than absent.
        for failure in AttachFailure::ALL {
            metrics.attach_errors.with_label_values(&[failure.name()]);
        }
        for source in ["scan", "exec"] {
            metrics.discovered.with_label_values(&[source]);
        }
        for cause in ["table_full", "idle"] {
            metrics.detector_evictions.with_label_values(&[cause]);
        }
        Ok(metrics)
    }

    /// Creates the finding series of a binary in a place (Kubernetes namespace, pod
    /// and container; empty outside Kubernetes) at 0, so that its first finding is
    /// an increase Prometheus can see.
    pub fn add_binary(&self, binary: &str, place: [&str; 3]) {
        for d in Detector::ALL {
            let labels = [d.name(), d.severity().name(), binary, place[0], place[1], place[2]];
            self.findings.with_label_values(&labels);
            self.finding_occurrences.with_label_values(&labels);
        }
    }

    /// Drops the finding series [`Metrics::add_binary`] made (a pod that is gone).
    pub fn remove_binary(&self, binary: &str, place: [&str; 3]) {
        for d in Detector::ALL {
            let labels = [d.name(), d.severity().name(), binary, place[0], place[1], place[2]];
            let _ = self.findings.remove_label_values(&labels);
            let _ = self.finding_occurrences.remove_label_values(&labels);
        }
    }

    pub fn count_finding(
        &self,
        detector: Detector,
        severity: Severity,
        binary: &str,
        place: [&str; 3],
        new: bool,
        occurrences: u64,
    ) {
        let labels = [detector.name(), severity.name(), binary, place[0], place[1], place[2]];
        if new {
            self.findings.with_label_values(&labels).inc();
        }
        self.finding_occurrences.with_label_values(&labels).inc_by(occurrences);
    }

    pub fn attach_failed(&self, failure: AttachFailure) {
        self.attach_errors.with_label_values(&[failure.name()]).inc();
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).map_err(MetricsError::Encode)?;
        Ok(String::from_utf8(out).expect("the text encoder writes UTF-8"))
    }

    /// The Content-Type of [`Metrics::render`].
    pub fn content_type(&self) -> String {
        TextEncoder::new().format_type().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_with_bounded_labels() {
        let m = Metrics::new().unwrap();
        let pod = ["shop", "api-0", "api"];
        m.add_binary("svc", ["", "", ""]);
        m.add_binary("svc", pod);
        m.count_finding(Detector::MapIterWrite, Severity::Critical, "svc", ["", "", ""], true, 3);
        m.count_finding(Detector::MapIterWrite, Severity::Critical, "svc", pod, true, 2);
        m.probe_hits.with_label_values(&["map_write", "svc"]).inc_by(10);
        m.add_binary("svc", ["shop", "api-1", "api"]);
        m.remove_binary("svc", ["shop", "api-1", "api"]);
        let text = m.render().unwrap();
        assert!(!text.contains("api-1"), "a removed pod's series are gone:\n{text}");
        for name in [
            "ghostrace_build_info{version=",
            "ghostrace_findings_total{binary=\"svc\",container=\"\",detector=\"map_iter_write\",namespace=\"\",pod=\"\",severity=\"critical\"} 1",
            "ghostrace_finding_occurrences_total{binary=\"svc\",container=\"\",detector=\"map_iter_write\",namespace=\"\",pod=\"\",severity=\"critical\"} 3",
            "ghostrace_findings_total{binary=\"svc\",container=\"api\",detector=\"map_iter_write\",namespace=\"shop\",pod=\"api-0\",severity=\"critical\"} 1",
            "ghostrace_finding_occurrences_total{binary=\"svc\",container=\"api\",detector=\"map_iter_write\",namespace=\"shop\",pod=\"api-0\",severity=\"critical\"} 2",
            "ghostrace_findings_total{binary=\"svc\",container=\"\",detector=\"slice_lost_append\",namespace=\"\",pod=\"\",severity=\"warning\"} 0",
            "ghostrace_probe_hits_total{binary=\"svc\",probe=\"map_write\"} 10",
            "ghostrace_attach_errors_total{reason=\"probe_table_full\"} 0",
            "ghostrace_traced_processes 0",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
