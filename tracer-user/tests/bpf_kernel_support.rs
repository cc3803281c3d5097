//! BPF tier: what ghostrace does with the kernel's features. `ghostrace check`
//! names each one and the attach path; a kernel without uprobe-multi links (Linux
//! 6.1) gets per-probe links on its own; one without what the per-probe path needs
//! is refused in one line by `run`, `attach` and the daemon alike; and a daemon that
//! can trace none of its Go processes is not ready, says why and counts it. Older
//! kernels are played on this one by hiding features (GHOSTRACE_HIDE_KERNEL_FEATURES).

mod daemon_support;
mod support;

use std::{process::Command, time::Duration};

use daemon_support::{Guard, free_port, http_get, install, newest_go, sample, start_program, test_dir, wait_for};
use support::{bpf_or_skip, build, ghostrace};

const HIDE: &str = "GHOSTRACE_HIDE_KERNEL_FEATURES";
/// Linux 5.10: ring buffers, but neither perf-event BPF links nor uprobe-multi links.
const LINUX_5_10: &str = "perf_link,uprobe_cookie,uprobe_multi_link,uprobe_multi_pid_filter";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn check_names_every_feature_and_the_attach_path() {
    if !bpf_or_skip("check_names_every_feature_and_the_attach_path") {
        return;
    }
    let out = ghostrace().arg("check").output().expect("run ghostrace check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    for feature in ["uprobes", "ring_buffer", "perf_link", "uprobe_cookie", "uprobe_multi_link", "sched_exec_exit_tracepoints"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(feature)), "{feature} not listed:\n{text}");
    }
    assert!(text.contains("attach path: "), "{text}");

    let out = ghostrace().arg("check").env(HIDE, "uprobe_multi_link").output().expect("run ghostrace check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("attach path: per-probe"), "without multi links: {text}");

    let out = ghostrace().arg("check").env(HIDE, LINUX_5_10).output().expect("run ghostrace check");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_kernel_without_multi_links_traces_through_per_probe_links() {
    if !bpf_or_skip("a_kernel_without_multi_links_traces_through_per_probe_links") {
        return;
    }
    let Some(tc) = newest_go("a_kernel_without_multi_links_traces_through_per_probe_links") else { return };
    let bin = build(&tc, "scenarios/map_reporter_iter_write", false);
    let findings = support::temp_file("per-probe-chosen.jsonl");
    let out = ghostrace()
        .env(HIDE, "uprobe_multi_link")
        .args(["run", "--overhead-budget", "off", "--json-out"])
        .arg(&findings)
        .arg("--")
        .arg(&bin)
        .output()
        .expect("run ghostrace");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("(per-probe links)"), "{}", stderr(&out));
    let found = support::read_findings(&findings);
    assert!(found.iter().any(|f| f["detector"] == "map_iter_write"), "{found:?}\n{}", stderr(&out));
}

#[test]
fn a_kernel_too_old_is_refused_in_one_line_by_run_attach_and_the_daemon() {
    if !bpf_or_skip("a_kernel_too_old_is_refused_in_one_line_by_run_attach_and_the_daemon") {
        return;
    }
    let Some(tc) = newest_go("a_kernel_too_old_is_refused_in_one_line_by_run_attach_and_the_daemon") else { return };
    let bin = build(&tc, "fixtures/hotloop", false);
    let running = start_program(&bin, &["30"]);
    let pid = running.pid().to_string();
    let port = format!("127.0.0.1:{}", free_port());
    let commands: [&[&str]; 3] = [
        &["run", "--", bin.to_str().expect("utf-8 path")],
        &["attach", "--pid", &pid, "--duration", "1s"],
        &["daemon", "--listen", &port, "--duration", "5s"],
    ];
    for args in commands {
        let out = ghostrace().env(HIDE, LINUX_5_10).args(args).output().expect("run ghostrace");
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{args:?}: not one line: {text}");
        assert!(text.contains("BPF links on perf events") && text.contains("Linux 5.15 or later"), "{args:?}: {text}");
    }
}

#[test]
fn the_daemon_is_not_ready_while_it_traces_none_of_its_go_processes() {
    if !bpf_or_skip("the_daemon_is_not_ready_while_it_traces_none_of_its_go_processes") {
        return;
    }
    let Some(tc) = newest_go("the_daemon_is_not_ready_while_it_traces_none_of_its_go_processes") else { return };
    let dir = test_dir("not-ready");
    let program = install(&build(&tc, "fixtures/hotloop", false), &dir, "hotloop");
    let _running = start_program(&program, &["60"]);
    // Per-probe links under a low open-files limit, which ghostrace cannot raise
    // without CAP_SYS_RESOURCE: the program's hundreds of probes (scope all)
    // cannot all be attached.
    let port = free_port();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set=-sys_resource", "prlimit", "--nofile=100:100"])
        .arg(env!("CARGO_BIN_EXE_ghostrace"))
        .env("GHOSTRACE_ATTACH_PATH", "per-probe")
        .args(["daemon", "--listen", &format!("127.0.0.1:{port}"), "--scope", "all", "--select"])
        .arg(format!("path:{}/**", dir.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.err")).expect("daemon stderr file"));
    let mut daemon = Guard::spawn("ghostrace daemon", &mut cmd);
    let log = || std::fs::read_to_string(dir.join("daemon.err")).unwrap_or_default();
    let why = wait_for("the daemon to say why it is not ready", Duration::from_secs(60), || match http_get(port, "/readyz") {
        Ok((503, body)) if body.contains("none traced") => Ok(body),
        other => Err(format!("{other:?} {}", log())),
    });
    assert!(why.contains("out of file descriptors"), "{why}");
    let (_, metrics) = http_get(port, "/metrics").expect("GET /metrics");
    assert_eq!(sample(&metrics, "ghostrace_traced_processes"), Some(0.0), "{metrics}");
    assert!(sample(&metrics, "ghostrace_attach_errors_total{reason=\"open_files\"}").is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(sample(&metrics, "ghostrace_kernel_feature{feature=\"uprobes\"}"), Some(1.0), "{metrics}");
    daemon.terminate(Duration::from_secs(30));
}
