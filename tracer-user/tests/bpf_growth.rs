//! BPF tier: slice-growth probes count exactly the growths a Go program makes, and
//! attribute them to the goroutine that made them, on every Go version.

mod support;

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
