//! BPF tier, end to end: a real Prometheus server (Debian package) scrapes the daemon
//! every second with the shipped alert rules loaded; a scenario with a known hazard
//! runs; Prometheus must see the finding and the alert go pending or firing, and the
//! daemon must forget the scenario's process once it is gone. Every panel query of
//! the Grafana dashboard (deploy/grafana) must return series meanwhile. Also checks
//! the real exposition with `promtool check metrics`.

mod daemon_support;
mod support;

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use daemon_support::{Daemon, Guard, encode, free_port, http_get, install, newest_go, test_dir, wait_for};
use support::{bpf_or_skip, build, repo};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const DETECTOR: &str = "slice_capacity_overlap";
/// Bound of each wait on Prometheus.
const WAIT: Duration = Duration::from_secs(60);

/// Prometheus on loopback with its own configuration and storage under `dir`.
fn start_prometheus(dir: &Path, daemon_port: u16) -> (Guard, u16) {
    let port = free_port();
    let rules = repo().join("deploy/prometheus/ghostrace-alerts.yml");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: ghostrace\n    static_configs:\n      - targets: ['127.0.0.1:{daemon_port}']\n",
            rules.display()
        ),
    )
    .expect("write prometheus.yml");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
    let guard = Guard::spawn(
        "prometheus",
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log),
    );
    (guard, port)
}

/// The result of an instant query: (labels, value) per series.
fn query(port: u16, promql: &str) -> Result<Vec<(serde_json::Value, f64)>, String> {
    let (code, body) = http_get(port, &format!("/api/v1/query?query={}", encode(promql))).map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}: {body}"))?;
    let result = v["data"]["result"].as_array().ok_or_else(|| body.clone())?;
    Ok(result
        .iter()
        .map(|s| (s["metric"].clone(), s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN)))
        .collect())
}

fn check_exposition(exposition: &str) {
    let mut child = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().expect("stdin").write_all(exposition.as_bytes()).expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n---\n{exposition}");
}

/// Every (panel title, query) of the Grafana dashboard; each panel has at least one.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo().join("deploy/grafana/ghostrace-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read the dashboard")).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("a title").to_string();
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("panel {title:?}: a target without expr"));
            queries.push((title.clone(), expr.to_string()));
        }
    }
    queries
}

#[test]
fn prometheus_sees_the_finding_and_the_alert_fires() {
    let test = "prometheus_sees_the_finding_and_the_alert_fires";
    if !bpf_or_skip(test) {
        return;
    }
    if !Path::new(PROMETHEUS).exists() {
        support::skip(test, &format!("{PROMETHEUS} is not installed (Debian package prometheus)"));
        return;
    }
    let Some(tc) = newest_go(test) else { return };
    let dir = test_dir("prometheus");
    let scenario = install(&build(&tc, "scenarios/batch_subslice_overlap", false), &dir, "billing");
    let service = install(&build(&tc, "fixtures/service", false), &dir, "service");
    let daemon = Daemon::start(&dir, &[]);
    // Traced throughout: the per-executable series (coverage, overhead) stay.
    let mut running = daemon_support::start_program(&service, &["idle"]);
    let (mut prometheus, prom_port) = start_prometheus(&dir, daemon.port);
    let prom_log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    wait_for("Prometheus to scrape the daemon", WAIT, || {
        if let Ok(Some(status)) = prometheus.child.try_wait() {
            panic!("prometheus exited with {status}: {}", prom_log());
        }
        match query(prom_port, "up{job=\"ghostrace\"}") {
            Ok(r) if r.iter().any(|(_, v)| *v == 1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // The hazard happens in every batch of the scenario's 0.6 s run.
    let series = format!(
        "ghostrace_findings_total{{binary=\"billing\",container=\"\",detector=\"{DETECTOR}\",namespace=\"\",pod=\"\",severity=\"critical\"}}"
    );
    let runs = daemon.rerun_until(
        DETECTOR,
        || daemon.metric(&series).unwrap_or(0.0) > 0.0,
        || {
            let out = Command::new(&scenario).output().expect("run the scenario");
            assert!(out.status.success(), "scenario failed: {}", String::from_utf8_lossy(&out.stderr));
        },
    );
    eprintln!("{DETECTOR} found after {runs} scenario run(s)");

    let promql = format!("ghostrace_findings_total{{detector=\"{DETECTOR}\"}}");
    let seen = wait_for("Prometheus to see the finding", WAIT, || match query(prom_port, &promql) {
        Ok(r) if r.iter().any(|(_, v)| *v > 0.0) => Ok(r),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(seen[0].0["job"], "ghostrace", "{seen:?}");
    let alert = wait_for("GhostraceCriticalFinding to be pending or firing", WAIT, || {
        let (_, body) = http_get(prom_port, "/api/v1/alerts").map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        v["data"]["alerts"]
            .as_array()
            .and_then(|alerts| {
                alerts
                    .iter()
                    .find(|a| {
                        a["labels"]["alertname"] == "GhostraceCriticalFinding"
                            && a["labels"]["detector"] == DETECTOR
                            && (a["state"] == "pending" || a["state"] == "firing")
                    })
                    .cloned()
            })
            .ok_or(body)
    });
    assert_eq!(alert["labels"]["binary"], "billing", "{alert}");
    assert!(alert["annotations"]["runbook_url"].as_str().is_some_and(|u| u.contains("runbook.md#")), "{alert}");

    // The same finding on stdout, in the --json-out schema.
    let lines = daemon.findings();
    let line = lines.iter().find(|l| l["detector"] == DETECTOR).unwrap_or_else(|| panic!("no JSON line: {lines:?}"));
    assert_eq!(line["schema"], "ghostrace.finding/v1");
    assert!(line["binary"].as_str().is_some_and(|b| b.ends_with("/billing")), "{line}");
    assert!(line["goroutines"][0]["function"].as_str().is_some_and(|f| f.starts_with("main.")), "{line}");

    check_exposition(&daemon.metrics());

    let queries = dashboard_queries();
    for (panel, promql) in &queries {
        let series = wait_for(&format!("panel {panel:?} to show series"), WAIT, || match query(prom_port, promql) {
            Ok(r) if !r.is_empty() => Ok(r.len()),
            other => Err(format!("{promql}: {other:?}")),
        });
        eprintln!("dashboard panel {panel:?}: {series} series");
    }
    running.kill();

    // The scenario is gone: so is everything the daemon knew of it.
    daemon.assert_forgot_everything();
    wait_for("Prometheus to see no traced process", WAIT, || match query(prom_port, "ghostrace_traced_processes") {
        Ok(r) if r.len() == 1 && r[0].1 == 0.0 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let _ = prometheus.terminate(Duration::from_secs(10));
    daemon.stop();
}
