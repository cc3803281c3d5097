//! BPF tier: under the default overhead budget, a hot append loop's probe is
//! duty-cycled while the rarely hit probes stay attached, and a shared-array
//! hazard at those rare call sites is still reported.

mod support;

use support::{bpf_or_skip, build, ghostrace, read_json, temp_file, toolchains};

/// Seconds the fixture runs: a hazard a second, well under the 30 s give-up bound.
const SECONDS: &str = "6";

/// The fixture's `per_second=R` figure.
fn per_second(stdout: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stdout);
    let field = text.split_whitespace().find_map(|f| f.strip_prefix("per_second=")).expect("per_second in the report");
    field.parse().expect("a number")
}

#[test]
fn hot_probe_is_duty_cycled_and_the_hazard_still_found() {
    if !bpf_or_skip("hot_probe_is_duty_cycled_and_the_hazard_still_found") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/hotloop", false);
    let (findings, stats) = (temp_file("governor-findings.json"), temp_file("governor-stats.json"));
    let untraced = std::process::Command::new(&bin).arg(SECONDS).output().expect("run the fixture");
    let out = ghostrace()
        .args(["run", "--json-out"])
        .arg(&findings)
        .arg("--stats-out")
        .arg(&stats)
        .arg("--")
        .arg(&bin)
        .arg(SECONDS)
        .output()
        .expect("run ghostrace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ghostrace failed: {stderr}");

    let report = read_json(&stats);
    let sites = report["sites"].as_array().expect("sites");
    let site = |function: &str| {
        sites.iter().find(|s| s["function"] == function && s["kind"] == "SliceGrowCall").unwrap_or_else(|| panic!("no {function} site: {stderr}"))
    };
    let (hot, cold) = (site("main.hotLoop"), site("main.extend"));
    let coverage = |s: &serde_json::Value| s["coverage"].as_f64().expect("coverage");
    assert!(coverage(hot) < 1.0, "the hot loop's probe was never switched off: {stderr}");
    assert!(hot["hits"].as_u64().expect("hits") > 0);
    assert_eq!(coverage(cold), 1.0, "a rarely hit probe was switched off: {stderr}");

    let text = std::fs::read_to_string(&findings).expect("findings file");
    let overlap: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|f: &serde_json::Value| f["detector"] == "slice_capacity_overlap")
        .collect();
    assert!(!overlap.is_empty(), "the hazard was not reported under the default budget: {stderr}");
    assert_eq!(overlap[0]["coverage"].as_f64(), Some(1.0), "{}", overlap[0]);

    // A figure, not an assertion: the machine is shared.
    let (before, after) = (per_second(&untraced.stdout), per_second(&out.stdout));
    eprintln!(
        "Go {}: hot loop {before:.0} growths/s untraced, {after:.0} under ghostrace (slowdown {:.1}%), hot probe coverage {:.2}%",
        tc.version,
        (before / after - 1.0) * 100.0,
        coverage(hot) * 100.0
    );
}
