//! BPF tier: slice-growth probes count exactly the growths a Go program makes, and
//! attribute them to the goroutine that made them, on every Go version; the kernel's
//! run-time statistics of BPF programs are on while an overhead budget is, and only
//! sampled without one.
//! The statistics are host-wide, and every ghostrace samples them in its first
//! cycle: the tests here run one at a time (`ONE_AT_A_TIME`).

mod support;

use std::{process::Stdio, sync::Mutex};

use support::{bpf_or_skip, build, ghostrace, read_json, temp_file, toolchains};

/// Held by each test: another ghostrace starting meanwhile would turn the host-wide
/// statistics on under the one looking.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Parses the fixture's `goid=N changes=M` line.
fn fixture_report(stdout: &str) -> (u64, u64) {
    let line = stdout.lines().find(|l| l.starts_with("goid=")).expect("fixture report line");
    let mut fields = line.split_whitespace().map(|f| f.split('=').nth(1).expect("key=value").parse::<u64>().expect("number"));
    (fields.next().expect("goid"), fields.next().expect("changes"))
}

#[test]
fn growth_calls_are_counted_exactly_per_goroutine() {
    if !bpf_or_skip("growth_calls_are_counted_exactly_per_goroutine") {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut checked = Vec::new();
    for tc in toolchains() {
        for stripped in [false, true] {
            let bin = build(&tc, "fixtures/grow", stripped);
            let stats = temp_file(&format!("grow-{}-{stripped}.json", tc.version));
            // Exact counts need every hit: the governor would duty-cycle this hot
            // probe once its first step sees the fixture's tiny CPU time.
            let out = ghostrace()
                .args(["run", "--overhead-budget", "off", "--sample-every", "1", "--stats-out"])
                .arg(&stats)
                .arg("--")
                .arg(&bin)
                .arg("200")
                .output()
                .expect("run ghostrace");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "Go {} stripped={stripped}: ghostrace failed: {stderr}", tc.version);
            let (goid, changes) = fixture_report(&String::from_utf8_lossy(&out.stdout));
            assert!(changes > 1000, "fixture made {changes} growths");

            let report = read_json(&stats);
            let sites: Vec<&serde_json::Value> = report["sites"]
                .as_array()
                .expect("sites")
                .iter()
                .filter(|s| s["function"] == "main.appendLoop" && s["kind"] == "SliceGrowCall")
                .collect();
            assert!(!sites.is_empty(), "Go {}: no growth probe in main.appendLoop: {stderr}", tc.version);
            let hits: u64 = sites.iter().map(|s| s["hits"].as_u64().expect("hits")).sum();
            let by_goid: u64 = sites
                .iter()
                .flat_map(|s| s["goroutines"].as_array().expect("goroutines"))
                .filter(|g| g["goid"] == goid)
                .map(|g| g["records"].as_u64().expect("records"))
                .sum();
            assert_eq!(hits, changes, "Go {} stripped={stripped}: probe hits vs capacity changes", tc.version);
            assert_eq!(by_goid, changes, "Go {} stripped={stripped}: records from goroutine {goid}", tc.version);
            checked.push(format!("{}{}", tc.version, if stripped { "-s" } else { "" }));
        }
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("growth counts exact for: {}", checked.join(" "));
}

/// The most runs any one of ghostrace's BPF programs had counted (`run_cnt` in the
/// fdinfo of its program fds) at any look while it ran, and how many looks found
/// its programs loaded.
fn watch_program_runs(child: &mut std::process::Child) -> (u64, usize) {
    let (mut most, mut looks) = (0, 0);
    while child.try_wait().expect("wait for ghostrace").is_none() {
        let fds = std::fs::read_dir(format!("/proc/{}/fdinfo", child.id())).into_iter().flatten().flatten();
        let runs: Vec<u64> = fds
            .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
            .filter(|info| info.contains("prog_id:"))
            .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("run_cnt:")).and_then(|n| n.trim().parse().ok()))
            .collect();
        if !runs.is_empty() {
            looks += 1;
            most = most.max(runs.into_iter().max().unwrap_or(0));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (most, looks)
}

#[test]
fn bpf_run_statistics_are_sampled_without_a_budget() {
    if !bpf_or_skip("bpf_run_statistics_are_sampled_without_a_budget") {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/hotloop", false);
    let mut runs = Vec::new();
    for budget in ["off", "1%"] {
        let stats = temp_file(&format!("runstats-{budget}.json"));
        let mut child = ghostrace()
            .args(["run", "--overhead-budget", budget, "--stats-out"])
            .arg(&stats)
            .arg("--")
            .arg(&bin)
            .arg("2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ghostrace");
        let (most, looks) = watch_program_runs(&mut child);
        assert!(child.wait().expect("ghostrace status").success(), "budget {budget}: ghostrace failed");
        assert!(looks > 5, "budget {budget}: ghostrace's programs were seen loaded only {looks} times");
        let hits: u64 = read_json(&stats)["sites"].as_array().expect("sites").iter().map(|s| s["hits"].as_u64().unwrap_or(0)).sum();
        assert!(hits > 1000, "budget {budget}: only {hits} probe hits");
        runs.push((most, hits));
    }
    // Off: on for the first tenth of a second of the 2 s run only (and one cycle in
    // ten after it), so the kernel counted a small share of the hits.
    let (off_runs, off_hits) = runs[0];
    assert!(off_runs > 0, "with the budget off, statistics were never sampled");
    assert!(off_runs < off_hits / 4, "with the budget off, the kernel counted {off_runs} runs of {off_hits} hits: statistics stayed on");
    assert!(runs[1].0 > 0, "under a budget, the kernel counted no program runs: statistics were off");
}
