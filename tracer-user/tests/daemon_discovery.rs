//! BPF tier: the daemon finds Go processes it did not start (running before it, or
//! exec'd later), ignores other programs, attaches once per executable, keeps
//! nothing of a process that is gone, reads its budget file again on SIGHUP, and
//! symbolizes each process of a PIE executable where that process has it loaded,
//! and traces what fits of a plan larger than its probe table.

mod daemon_support;
mod support;

use std::time::{Duration, Instant};

use daemon_support::{Daemon, install, newest_go, start_program, test_dir, wait_for};
use support::{bpf_or_skip, build, build_with, repo};

/// The `service` fixture built with the newest toolchain, copied into `dir`.
fn service(test: &str, dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    let tc = newest_go(test)?;
    Some(install(&build(&tc, "fixtures/service", false), dir, name))
}

#[test]
fn go_program_started_later_is_traced_from_its_exec_event() {
    let test = "go_program_started_later_is_traced_from_its_exec_event";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("later");
    let Some(bin) = service(test, &dir, "svc-later") else { return };
    let daemon = Daemon::start(&dir, &[]);
    let started = Instant::now();
    let program = start_program(&bin, &["idle"]);
    let pid = u64::from(program.pid());
    wait_for("the new process to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed.contains(&pid) && kernel.contains(&pid) { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    // The latency is a figure to read, not a timed assertion; what must hold is that
    // the exec event found it (not the periodic /proc check).
    eprintln!("traced {:?} after start", started.elapsed());
    assert_eq!(daemon.metric("ghostrace_processes_discovered_total{source=\"exec\"}"), Some(1.0));
    drop(program);
    daemon.assert_forgot_everything();
    daemon.stop();
}

#[test]
fn non_go_program_is_ignored() {
    if !bpf_or_skip("non_go_program_is_ignored") {
        return;
    }
    let dir = test_dir("non-go");
    let bin = install(std::path::Path::new("/bin/sleep"), &dir, "not-go");
    let daemon = Daemon::start(&dir, &[]);
    let ignored_before = daemon.metric("ghostrace_ignored_binaries_total").expect("ignored counter");
    let program = start_program(&bin, &["30"]);
    wait_for("the daemon to look at the program", Duration::from_secs(10), || {
        match daemon.metric("ghostrace_ignored_binaries_total") {
            Some(n) if n > ignored_before => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let (listed, kernel) = daemon.traced_pids();
    assert!(!listed.contains(&u64::from(program.pid())) && kernel.is_empty(), "{}", daemon.status());
    assert_eq!(daemon.metric("ghostrace_go_processes"), Some(0.0));
    assert_eq!(daemon.metric("ghostrace_attached_binaries"), Some(0.0));
    drop(program);
    daemon.stop();
}

#[test]
fn processes_of_one_binary_share_one_attachment() {
    let test = "processes_of_one_binary_share_one_attachment";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("shared");
    let Some(bin) = service(test, &dir, "svc-shared") else { return };
    let daemon = Daemon::start(&dir, &["--keep-idle", "5m"]);
    let first = start_program(&bin, &["idle"]);
    let second = start_program(&bin, &["idle"]);
    let pids = [u64::from(first.pid()), u64::from(second.pid())];
    let status = wait_for("both processes to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        let both = pids.iter().all(|p| listed.contains(p) && kernel.contains(p));
        if both { Ok(daemon.status()) } else { Err(daemon.status().to_string()) }
    });
    let binaries = status["binaries"].as_array().expect("binaries");
    assert_eq!(binaries.len(), 1, "one attachment expected: {status}");
    let probes = binaries[0]["probes"].as_u64().expect("probes");
    assert!(probes > 0, "the service has call sites to probe: {status}");
    assert_eq!(daemon.metric("ghostrace_attached_probes"), Some(probes as f64), "probes counted once");
    assert_eq!(daemon.metric("ghostrace_traced_processes"), Some(2.0));
    // One of them goes: the other keeps the attachment.
    drop(first);
    wait_for("the first process to be forgotten", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed == [pids[1]] && kernel == [pids[1]] { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    assert_eq!(daemon.metric("ghostrace_attached_probes"), Some(probes as f64));
    // The last one goes: its processes are forgotten, its probes kept for the next run.
    drop(second);
    let status = wait_for("the executable to be kept without processes", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        let status = daemon.status();
        let kept = status["binaries"].as_array().is_some_and(|b| b.len() == 1 && b[0]["idle_s"].is_u64());
        if listed.is_empty() && kernel.is_empty() && kept { Ok(status) } else { Err(status.to_string()) }
    });
    assert_eq!(status["binaries"][0]["probes"].as_u64(), Some(probes), "{status}");
    assert_eq!(daemon.metric("ghostrace_traced_processes"), Some(0.0));
    // Run again, it is traced on the probes kept: nothing planned or attached anew.
    let third = start_program(&bin, &["idle"]);
    let pid = u64::from(third.pid());
    wait_for("the next process to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed == [pid] && kernel == [pid] { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    assert!(daemon.log().contains(&format!("tracing pid {pid} (svc-shared)")) && daemon.log().contains("kept attachment"), "{}", daemon.log());
    assert_eq!(daemon.metric("ghostrace_attached_probes"), Some(probes as f64));
    assert_eq!(daemon.status()["binaries"][0]["idle_s"], serde_json::Value::Null);
    drop(third);
    let log = daemon.stop();
    assert!(log.contains("detached"), "kept probes are detached at shutdown:\n{log}");
}

/// With `--keep-idle 0s` an executable's probes go with its last process.
#[test]
fn an_executable_is_detached_with_its_last_process_when_nothing_is_kept() {
    let test = "an_executable_is_detached_with_its_last_process_when_nothing_is_kept";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("unkept");
    let Some(bin) = service(test, &dir, "svc-unkept") else { return };
    let daemon = Daemon::start(&dir, &["--keep-idle", "0s"]);
    let program = start_program(&bin, &["idle"]);
    let pid = u64::from(program.pid());
    wait_for("the process to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed == [pid] && kernel == [pid] { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    drop(program);
    daemon.assert_forgot_everything();
    daemon.stop();
}

/// Stopping the daemon leaves its processes running: nothing calls them gone.
#[test]
fn shutdown_says_nothing_of_processes_still_running() {
    let test = "shutdown_says_nothing_of_processes_still_running";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("shutdown");
    let Some(bin) = service(test, &dir, "svc-shutdown") else { return };
    let daemon = Daemon::start(&dir, &[]);
    let program = start_program(&bin, &["idle"]);
    let pid = u64::from(program.pid());
    wait_for("the process to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed.contains(&pid) && kernel.contains(&pid) { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    let log = daemon.stop();
    assert!(!log.contains("is gone"), "a running process was called gone:\n{log}");
    assert!(log.contains("detached"), "{log}");
    drop(program);
}

/// ASLR loads a PIE executable at another address in every process: the findings of
/// two processes of one such file both name the statement the scenario marks.
#[test]
fn pie_processes_are_symbolized_at_their_own_load_addresses() {
    let test = "pie_processes_are_symbolized_at_their_own_load_addresses";
    if !bpf_or_skip(test) {
        return;
    }
    let Some(tc) = newest_go(test) else { return };
    let scenario = "list_deferred_double_remove";
    let source = std::fs::read_to_string(repo().join("testdata/scenarios").join(scenario).join("main.go")).expect("source");
    let marked = source.lines().position(|l| l.contains("ghostrace:expect list_stale_remove")).expect("a marked statement") + 1;
    let dir = test_dir("pie");
    let built = build_with(&tc, &format!("scenarios/{scenario}"), "-pie", &["-buildmode=pie"]);
    let bin = install(&built, &dir, "tracker-pie");
    let daemon = Daemon::start(&dir, &[]);
    let stale = || -> Vec<serde_json::Value> {
        daemon.findings().into_iter().filter(|l| l["detector"] == "list_stale_remove").collect()
    };
    let pids = || stale().iter().filter_map(|l| l["pid"].as_u64()).collect::<std::collections::BTreeSet<_>>();
    let runs = daemon.rerun_until("findings of two processes", || pids().len() >= 2, || {
        let status = std::process::Command::new(&bin).stdout(std::process::Stdio::null()).status().expect("run the scenario");
        assert!(status.success(), "{scenario}: {status}");
    });
    for line in stale() {
        let site = &line["goroutines"][0];
        let file = site["file"].as_str().unwrap_or("");
        assert!(file.ends_with(&format!("/{scenario}/main.go")) && site["line"] == marked, "pid {}: call site {site}", line["pid"]);
    }
    eprintln!("{runs} runs; call sites at {:?}", stale().iter().map(|l| l["goroutines"][0]["pc"].clone()).collect::<Vec<_>>());
    daemon.stop();
}

#[test]
fn killed_process_leaves_no_state() {
    let test = "killed_process_leaves_no_state";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("killed");
    let Some(bin) = service(test, &dir, "svc-killed") else { return };
    // Running before the daemon: found by the start-up scan.
    let mut program = start_program(&bin, &["busy", "2"]);
    std::thread::sleep(Duration::from_millis(100));
    let daemon = Daemon::start(&dir, &[]);
    let pid = u64::from(program.pid());
    let (listed, kernel) = daemon.traced_pids();
    assert!(listed.contains(&pid) && kernel.contains(&pid), "{}", daemon.status());
    assert_eq!(daemon.metric("ghostrace_processes_discovered_total{source=\"scan\"}"), Some(1.0));
    wait_for("probe hits to be counted", Duration::from_secs(10), || {
        let hits: f64 = daemon
            .metrics()
            .lines()
            .filter(|l| l.starts_with("ghostrace_probe_hits_total{") && l.contains("svc-killed"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if hits > 0.0 { Ok(()) } else { Err(daemon.metrics()) }
    });
    program.kill();
    daemon.assert_forgot_everything();
    assert!(daemon.log().contains(&format!("pid {pid} (svc-killed) is gone")), "{}", daemon.log());
    daemon.stop();
}

/// A Go program ghostrace cannot analyse (32-bit x86): logged once with the reason,
/// counted once, its processes listed as untraced, and the daemon carries on.
#[test]
fn unsupported_go_binary_is_logged_once_and_counted() {
    let test = "unsupported_go_binary_is_logged_once_and_counted";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("unsupported");
    let Some(tc) = newest_go(test) else { return };
    let bin386 = dir.join("svc-386");
    let built = tc
        .command()
        .env("GOARCH", "386")
        .args(["build", "-o"])
        .arg(&bin386)
        .arg(".")
        .current_dir(support::repo().join("testdata/fixtures/service"))
        .status()
        .expect("go build");
    assert!(built.success(), "GOARCH=386 build failed");
    let Some(good) = service(test, &dir, "svc-good") else { return };
    let daemon = Daemon::start(&dir, &[]);
    let (a, b) = (start_program(&bin386, &["idle"]), start_program(&bin386, &["idle"]));
    let pids = [u64::from(a.pid()), u64::from(b.pid())];
    wait_for("both 32-bit processes to be listed as untraced", Duration::from_secs(10), || {
        let status = daemon.status();
        let untraced: Vec<u64> =
            status["untraced_go"].as_array().unwrap().iter().map(|u| u["pid"].as_u64().unwrap()).collect();
        if pids.iter().all(|p| untraced.contains(p)) { Ok(()) } else { Err(status.to_string()) }
    });
    // Each says which program and why, not just a device and inode.
    for entry in daemon.status()["untraced_go"].as_array().unwrap() {
        assert!(entry["path"].as_str().is_some_and(|p| p.ends_with("svc-386")), "{entry}");
        assert!(entry["reason"].as_str().is_some_and(|r| r.contains("unsupported architecture")), "{entry}");
    }
    assert_eq!(daemon.metric("ghostrace_attach_errors_total{reason=\"unsupported\"}"), Some(1.0));
    assert_eq!(daemon.metric("ghostrace_go_processes"), Some(2.0));
    let log = daemon.log();
    assert_eq!(log.matches("not tracing").count(), 1, "logged once:\n{log}");
    assert!(log.contains("unsupported architecture"), "{log}");
    // It carries on: a Go program it can handle is traced.
    let program = start_program(&good, &["idle"]);
    let pid = u64::from(program.pid());
    wait_for("the amd64 program to be traced", Duration::from_secs(10), || {
        let (listed, kernel) = daemon.traced_pids();
        if listed.contains(&pid) && kernel.contains(&pid) { Ok(()) } else { Err(daemon.status().to_string()) }
    });
    assert_eq!(daemon.metric("ghostrace_go_processes"), Some(3.0));
    drop((a, b, program));
    daemon.assert_forgot_everything();
    daemon.stop();
}

/// The least coverage the daemon exports for `binary`'s probes, if any yet.
fn least_coverage(daemon: &Daemon, binary: &str) -> Option<f64> {
    daemon
        .metrics()
        .lines()
        .filter(|l| l.starts_with("ghostrace_probe_coverage_ratio{") && l.contains(binary))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::min)
}

#[test]
fn budget_file_is_read_again_on_sighup() {
    let test = "budget_file_is_read_again_on_sighup";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("budget");
    let Some(bin) = service(test, &dir, "svc-budget") else { return };
    let budget = dir.join("budget");
    std::fs::write(&budget, "off\n").expect("write the budget file");
    let daemon = Daemon::start(&dir, &["--overhead-budget-file", budget.to_str().expect("a UTF-8 path")]);
    let _program = start_program(&bin, &["busy", "30"]);
    wait_for("the busy program's probes to be covered in full", Duration::from_secs(10), || {
        match least_coverage(&daemon, "svc-budget") {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // A file that does not parse keeps the budget in force.
    std::fs::write(&budget, "plenty\n").expect("write the budget file");
    let hup = |d: &Daemon| {
        // SAFETY: kill(2) on the daemon's pid.
        assert_eq!(unsafe { libc::kill(d.guard.pid() as i32, libc::SIGHUP) }, 0);
    };
    hup(&daemon);
    wait_for("the daemon to refuse the bad budget", Duration::from_secs(10), || {
        if daemon.log().contains("keeping the overhead budget") { Ok(()) } else { Err(daemon.log()) }
    });
    assert_eq!(least_coverage(&daemon, "svc-budget"), Some(1.0), "a bad budget file changed the budget");

    std::fs::write(&budget, "1%\n").expect("write the budget file");
    hup(&daemon);
    wait_for("the busy program's hot probes to be duty-cycled", Duration::from_secs(20), || {
        match least_coverage(&daemon, "svc-budget") {
            Some(c) if c < 0.95 => Ok(()),
            other => Err(format!("{other:?}: {}", daemon.log())),
        }
    });
    assert!(daemon.log().contains("overhead budget now 1%"), "{}", daemon.log());
    daemon.stop();
}

#[test]
fn a_plan_larger_than_the_probe_table_is_traced_with_what_fits_and_gives_its_room_back() {
    let test = "a_plan_larger_than_the_probe_table_is_traced_with_what_fits_and_gives_its_room_back";
    if !bpf_or_skip(test) {
        return;
    }
    let dir = test_dir("table");
    let Some(bin) = service(test, &dir, "svc-table") else { return };
    // The fixture plans a few probes (`ghostrace inspect`): room for fewer.
    const ROOM: u64 = 2;
    let daemon = Daemon::start(&dir, &["--max-probes", &ROOM.to_string()]);
    for round in 0..2 {
        let program = start_program(&bin, &["idle"]);
        let pid = u64::from(program.pid());
        let binary = wait_for("the process to be traced", Duration::from_secs(10), || {
            let status = daemon.status();
            let found = status["binaries"].as_array().and_then(|b| b.iter().find(|b| b["pids"].as_array().is_some_and(|p| p.contains(&pid.into())))).cloned();
            found.ok_or_else(|| status.to_string())
        });
        // What fits is traced, and what did not is said; the second round gets
        // the room the first gave back when its process exited.
        let (probes, left_out) = (binary["probes"].as_u64().expect("probes"), binary["left_out_probes"].as_u64().expect("left out"));
        assert!(probes > 0 && probes <= ROOM && left_out > 0, "round {round}: {binary}");
        assert_eq!(daemon.metric("ghostrace_left_out_probes"), Some(left_out as f64), "round {round}");
        assert!(daemon.log().contains(&format!("{left_out} of {} probes left out", probes + left_out)), "{}", daemon.log());
        drop(program);
        daemon.assert_forgot_everything();
    }
    assert_eq!(daemon.metric("ghostrace_attach_errors_total{reason=\"probe_table_full\"}"), Some(0.0));
    daemon.stop();
}
