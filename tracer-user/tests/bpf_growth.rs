//! BPF tier: slice-growth probes count exactly the growths a Go program makes, and
//! attribute them to the goroutine that made them, on every Go version; the kernel's
//! run-time statistics of BPF programs are on while an overhead budget is, and only
//! sampled without one.
//! The statistics are switched on host-wide by whoever holds a `bpf-stats` file:
//! another ghostrace (a daemon on the host, another test) may keep them on at any
//! time, so the test looks at what the ghostrace under test holds, not at what the
//! kernel counted.

mod support;

use std::process::Stdio;

use support::{bpf_or_skip, build, ghostrace, read_json, temp_file, toolchains};

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

/// What a look every 50 ms at a running ghostrace saw.
struct Watched {
    /// The most runs any one of its own BPF programs had counted (`run_cnt` in the
    /// fdinfo of its program fds).
    most_runs: u64,
    /// Looks that found its programs loaded.
    looks: usize,
    /// Of those, the looks at which it held statistics on (a `bpf-stats` fd).
    stats_on: usize,
}

fn watch(child: &mut std::process::Child) -> Watched {
    let mut seen = Watched { most_runs: 0, looks: 0, stats_on: 0 };
    while child.try_wait().expect("wait for ghostrace").is_none() {
        let fds: Vec<std::path::PathBuf> =
            std::fs::read_dir(format!("/proc/{}/fd", child.id())).into_iter().flatten().flatten().map(|e| e.path()).collect();
        let runs: Vec<u64> = fds
            .iter()
            .filter_map(|fd| std::fs::read_to_string(fd.to_string_lossy().replace("/fd/", "/fdinfo/")).ok())
            .filter(|info| info.contains("prog_id:"))
            .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("run_cnt:")).and_then(|n| n.trim().parse().ok()))
            .collect();
        if !runs.is_empty() {
            seen.looks += 1;
            seen.most_runs = seen.most_runs.max(runs.into_iter().max().unwrap_or(0));
            let stats = |fd: &std::path::PathBuf| std::fs::read_link(fd).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-stats");
            seen.stats_on += usize::from(fds.iter().any(stats));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    seen
}

#[test]
fn bpf_run_statistics_are_sampled_without_a_budget() {
    if !bpf_or_skip("bpf_run_statistics_are_sampled_without_a_budget") {
        return;
    }
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
        let seen = watch(&mut child);
        assert!(child.wait().expect("ghostrace status").success(), "budget {budget}: ghostrace failed");
        assert!(seen.looks > 5, "budget {budget}: ghostrace's programs were seen loaded only {} times", seen.looks);
        let hits: u64 = read_json(&stats)["sites"].as_array().expect("sites").iter().map(|s| s["hits"].as_u64().unwrap_or(0)).sum();
        assert!(hits > 1000, "budget {budget}: only {hits} probe hits");
        // Its own programs counted runs while it held statistics on (whoever else did too).
        assert!(seen.most_runs > 0, "budget {budget}: the kernel counted no run of ghostrace's programs");
        eprintln!("budget {budget}: statistics held on at {} of {} looks, {hits} hits", seen.stats_on, seen.looks);
        runs.push(seen);
    }
    // Off: held for the first tenth of a second of the 2 s run and one cycle in ten
    // after it; under a budget: for the whole run, from the governor's first step.
    let (off, budget) = (&runs[0], &runs[1]);
    assert!(off.stats_on > 0, "with the budget off, statistics were never sampled");
    assert!(off.stats_on * 2 < off.looks, "with the budget off, statistics were held on at {} of {} looks", off.stats_on, off.looks);
    assert!(budget.stats_on * 4 >= budget.looks * 3, "under a budget, statistics were held on at only {} of {} looks", budget.stats_on, budget.looks);
}
