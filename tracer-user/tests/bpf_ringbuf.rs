//! BPF tier: a ring buffer too small for the record rate loses records, counts and
//! reports them, and never blocks or harms the traced program (the `flood` fixture:
//! four goroutines writing one map and growing one slice in turns).

mod support;

use std::{
    io::Read,
    process::Stdio,
    time::{Duration, Instant},
};

use support::{bpf_or_skip, build, ghostrace, read_json, temp_file, toolchains};

/// One page: the smallest ring the kernel accepts (96 bytes per record: about 40).
const TINY_RING: &str = "4096";
const WRITES: u64 = 500_000;
/// Give-up bound of the wait for `ghostrace run` (not a speed goal).
const GIVE_UP: Duration = Duration::from_secs(180);

#[test]
fn a_full_ring_counts_and_reports_lost_records_and_the_program_runs_unharmed() {
    if !bpf_or_skip("a_full_ring_counts_and_reports_lost_records_and_the_program_runs_unharmed") {
        return;
    }
    let tc = toolchains().pop().expect("a Go toolchain: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/flood", false);
    let stats = temp_file("ringbuf-stats.json");
    let _ = std::fs::remove_file(&stats);
    let mut child = ghostrace()
        // Every hit must reach the ring: the governor would switch this flood's probes
        // off, and cross-goroutine transitions alone come at a rate that depends on
        // how often the goroutines hand the mutex over (a few thousand a second with
        // cheap probes), so every hit is sent as a sample.
        .args(["run", "--overhead-budget", "off", "--sample-every", "1", "--ring-bytes", TINY_RING, "--stats-out"])
        .arg(&stats)
        .arg("--")
        .arg(&bin)
        .arg(WRITES.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ghostrace");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ghostrace") {
            break status;
        }
        if started.elapsed() > GIVE_UP {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ghostrace run did not finish within {GIVE_UP:?}: it blocks on a full ring buffer");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert!(status.success(), "ghostrace run: {status}\n{stderr}");
    let total = 4 * WRITES;
    assert_eq!(stdout.trim(), format!("flood writes={total} keys=64 appended={total}"), "the traced program's own output");

    let report = read_json(&stats);
    let sites = report["sites"].as_array().expect("sites");
    let sum = |key: &str| sites.iter().map(|s| s[key].as_u64().unwrap_or(0)).sum::<u64>();
    let (hits, emitted, lost) = (sum("hits"), sum("emitted"), sum("lost"));
    let records = report["records"].as_u64().expect("records");
    assert!(hits >= total, "every map write of main.(*shared).step is a hit: {hits} < {total}");
    assert!(lost > 0, "a {TINY_RING}-byte ring lost nothing: {emitted} records emitted, {records} read\n{stderr}");
    // Counted once: a lost record was never emitted, and every emitted one was read.
    assert_eq!(records, emitted, "records read vs emitted");
    assert!(stderr.contains(&format!("{lost} records were lost")), "the summary reports the loss:\n{stderr}");
    eprintln!(
        "ring of {TINY_RING} bytes: {hits} hits, {emitted} records emitted and read, {lost} lost ({:.1}% of those sent), {:.1} s",
        lost as f64 * 100.0 / (emitted + lost) as f64,
        started.elapsed().as_secs_f64()
    );
}
