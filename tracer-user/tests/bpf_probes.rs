//! BPF tier: the kernel probes of issue 4 on the `probes` fixture (testdata/fixtures/probes):
//! code outside the scope causes no trap, goroutine-local work is filtered in the kernel
//! while cross-goroutine transitions are emitted, a finding names the objects and
//! goroutines the program itself prints, programs whose stacks grow and move run
//! unchanged, a slot of the kernel's growth cache counts only when whole and of its
//! own key, no probe outlives a `ghostrace run` however it ends, a write inside the
//! writer's own range is reported when it adds a key, not when it updates one, and
//! map writes under a mutex never seem to overlap, however many goroutines make them
//! and whether the probes came up before the program started or while it ran.

mod support;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_common::{RecordKind, hit_cache};
use support::{Toolchain, bpf_or_skip, build, ghostrace, read_findings, read_json, temp_file, toolchains};

const FIXTURE: &str = "fixtures/probes";

/// `ghostrace run --stats-out` of the fixture in `mode`; returns the output and the statistics.
fn run_stats(bin: &Path, tag: &str, flags: &[&str], mode: &[&str]) -> (Output, Value) {
    let stats = temp_file(&format!("probes-{tag}.json"));
    let _ = std::fs::remove_file(&stats);
    let out = ghostrace()
        .arg("run")
        .args(flags)
        .arg("--stats-out")
        .arg(&stats)
        .arg("--")
        .arg(bin)
        .args(mode)
        .output()
        .expect("run ghostrace");
    assert!(out.status.success(), "{tag}: ghostrace failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = read_json(&stats);
    (out, report)
}

/// `ghostrace run FLAGS --json-out F -- BIN ARGS`, which must succeed: its stdout
/// and stderr, and the findings of `detector`.
fn run_findings(bin: &Path, tag: &str, flags: &[&str], args: &[&str], detector: &str) -> (String, String, Vec<Value>) {
    let out_file = temp_file(&format!("{tag}.jsonl"));
    let _ = std::fs::remove_file(&out_file);
    let out = ghostrace()
        .arg("run")
        .args(flags)
        .arg("--json-out")
        .arg(&out_file)
        .arg("--")
        .arg(bin)
        .args(args)
        .output()
        .expect("run ghostrace");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{tag}: ghostrace failed: {stderr}");
    let findings = read_findings(&out_file).into_iter().filter(|f| f["detector"] == detector).collect();
    (stdout, stderr, findings)
}

fn sites(report: &Value) -> &Vec<Value> {
    report["sites"].as_array().expect("sites")
}

fn num(site: &Value, key: &str) -> u64 {
    site[key].as_u64().unwrap_or_else(|| panic!("{key} in {site}"))
}

fn function(site: &Value) -> &str {
    site["function"].as_str().unwrap_or("")
}

fn is_map_write(site: &Value) -> bool {
    site["kind"].as_str().is_some_and(|k| k.starts_with("MapWriteCall"))
}

/// The toolchains a per-version-independent test uses: the newest and 1.19.
fn newest_and_oldest() -> Vec<Toolchain> {
    let all = toolchains();
    let mut picked: Vec<Toolchain> = all.iter().filter(|t| t.version == "1.19").cloned().collect();
    if let Some(newest) = all.last().filter(|t| t.version != "1.19") {
        picked.push(newest.clone());
    }
    picked
}

#[test]
fn std_library_loop_traps_nothing_under_the_default_scope() {
    if !bpf_or_skip("std_library_loop_traps_nothing_under_the_default_scope") {
        return;
    }
    let mut checked = Vec::new();
    for tc in toolchains() {
        for stripped in [false, true] {
            let bin = build(&tc, FIXTURE, stripped);
            let tag = format!("std-{}-{stripped}", tc.version);
            let (_, report) = run_stats(&bin, &tag, &[], &["std", "200"]);
            assert!(!sites(&report).is_empty(), "{tag}: no user call site probed");
            for s in sites(&report) {
                assert!(function(s).starts_with("main."), "{tag}: default scope probed {s}");
            }
            let hits: u64 = sites(&report).iter().map(|s| num(s, "hits")).sum();
            assert_eq!(hits, 0, "{tag}: the encoding/json + fmt loop hit user probes: {report}");

            let (_, all) = run_stats(&bin, &format!("{tag}-all"), &["--scope", "all"], &["std", "200"]);
            let std_hits: u64 =
                sites(&all).iter().filter(|s| !function(s).starts_with("main.")).map(|s| num(s, "hits")).sum();
            let json_hits: u64 = sites(&all)
                .iter()
                .filter(|s| ["encoding/json", "reflect."].iter().any(|p| function(s).starts_with(p)))
                .map(|s| num(s, "hits"))
                .sum();
            assert!(json_hits > 0, "{tag}: --scope all saw no hit in encoding/json or reflect: {all}");
            checked.push(format!(
                "{}{}: default {} sites 0 hits, all {} sites {std_hits} hits",
                tc.version,
                if stripped { "-s" } else { "" },
                sites(&report).len(),
                sites(&all).len()
            ));
        }
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("scope:\n  {}", checked.join("\n  "));
}

#[test]
fn goroutine_local_work_is_filtered_and_shared_transitions_are_emitted() {
    if !bpf_or_skip("goroutine_local_work_is_filtered_and_shared_transitions_are_emitted") {
        return;
    }
    let mut checked = Vec::new();
    for tc in toolchains() {
        let bin = build(&tc, FIXTURE, false);
        let tag = format!("local-{}", tc.version);
        // Every hit counted: the governor would rightly switch this hot loop's probes off.
        let (_, local) = run_stats(&bin, &tag, &["--overhead-budget", "off"], &["local", "200000"]);
        let work: Vec<&Value> = sites(&local).iter().filter(|s| function(s) == "main.localWork").collect();
        let hits: u64 = work.iter().map(|s| num(s, "hits")).sum();
        let emitted: u64 = work.iter().map(|s| num(s, "emitted")).sum();
        let map_hits: u64 = work.iter().filter(|s| is_map_write(s)).map(|s| num(s, "hits")).sum();
        let map_emitted: u64 = work.iter().filter(|s| is_map_write(s)).map(|s| num(s, "emitted")).sum();
        assert!(map_hits >= 800_000, "{tag}: 4 goroutines x 200000 map writes, {map_hits} hits: {local}");
        assert!(emitted * 100 < hits, "{tag}: {emitted} of {hits} goroutine-local hits emitted: {local}");
        assert!(map_emitted * 100 < map_hits, "{tag}: {map_emitted} of {map_hits} local map writes emitted");
        // Growths alone: arrays freed by one goroutine and reused at the same end
        // address by another (after a GC cycle) are new lives, not transitions.
        let grows: Vec<&&Value> = work.iter().filter(|s| s["kind"] == "SliceGrowCall").collect();
        let grow_hits: u64 = grows.iter().map(|s| num(s, "hits")).sum();
        let grow_emitted: u64 = grows.iter().map(|s| num(s, "emitted")).sum();
        assert!(grow_hits >= 8_000, "{tag}: 4 goroutines x ~2,300 growths, {grow_hits} hits: {local}");
        assert!(grow_emitted * 100 < grow_hits, "{tag}: {grow_emitted} of {grow_hits} local growths emitted");

        let tag = format!("shared-{}", tc.version);
        let (_, shared) = run_stats(&bin, &tag, &["--overhead-budget", "off"], &["shared", "20000"]);
        let step: Vec<&Value> =
            sites(&shared).iter().filter(|s| function(s) == "main.sharedStep" && is_map_write(s)).collect();
        let s_hits: u64 = step.iter().map(|s| num(s, "hits")).sum();
        let s_emitted: u64 = step.iter().map(|s| num(s, "emitted")).sum();
        assert_eq!(s_hits, 20_000, "{tag}: map writes to the shared map: {shared}");
        // Every write follows one by the other goroutine: each is a transition.
        assert!(s_emitted * 2 >= s_hits, "{tag}: {s_emitted} of {s_hits} alternating writes emitted: {shared}");
        checked.push(format!(
            "{}: local {emitted}/{hits} = {:.3}% (map writes {map_emitted}/{map_hits}, growths {}/{}), shared map writes {s_emitted}/{s_hits}",
            tc.version,
            emitted as f64 * 100.0 / hits as f64,
            grow_emitted,
            grow_hits
        ));
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("filtering (emitted/hits):\n  {}", checked.join("\n  "));
}

/// Parses `key=value` fields of the fixture line starting with `prefix`.
fn field(stdout: &str, prefix: &str, key: &str) -> String {
    let line = stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} line in {stdout}"));
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .to_string()
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex address {s}"))
}

/// Requests the `handlers` fixture serves under `run`: several times more goroutines
/// than the kernel side keeps per-goroutine state for.
const REQUESTS: &str = "200000";


#[test]
fn map_writes_of_many_short_lived_goroutines_under_a_mutex_never_overlap() {
    if !bpf_or_skip("map_writes_of_many_short_lived_goroutines_under_a_mutex_never_overlap") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/handlers", false);
    let (stdout, _, overlaps) = run_findings(&bin, "handlers-run", &["--overhead-budget", "off"], &[REQUESTS], "map_concurrent_write");
    assert_eq!(stdout.trim(), format!("handlers requests={REQUESTS} keys=128"));
    assert!(overlaps.is_empty(), "writes under a mutex reported as concurrent: {overlaps:?}");
}

#[test]
fn map_writes_under_a_mutex_never_overlap_when_attached_to_a_running_process() {
    if !bpf_or_skip("map_writes_under_a_mutex_never_overlap_when_attached_to_a_running_process") {
        return;
    }
    let tc = toolchains().pop().expect("no Go toolchain installed: run `cargo xtask bootstrap`");
    let bin = build(&tc, "fixtures/handlers", false);
    // Each attach brings the write probes' links up one after another while the
    // program writes at full speed.
    for round in 0..3 {
        let mut program = Command::new(&bin).arg("1000000000").stdout(Stdio::null()).spawn().expect("start handlers");
        std::thread::sleep(Duration::from_millis(300));
        let (out_file, stats) = (temp_file(&format!("handlers-attach-{round}.jsonl")), temp_file(&format!("handlers-attach-{round}.json")));
        let _ = std::fs::remove_file(&out_file);
        let out = ghostrace()
            .args(["attach", "--pid", &program.id().to_string(), "--duration", "1s", "--overhead-budget", "off", "--json-out"])
            .arg(&out_file)
            .arg("--stats-out")
            .arg(&stats)
            .output()
            .expect("run ghostrace attach");
        let alive = program.try_wait().expect("poll handlers").is_none();
        let _ = program.kill();
        let _ = program.wait();
        assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(alive, "round {round}: the traced program did not outlive the attach");
        let hits: u64 = sites(&read_json(&stats)).iter().filter(|s| is_map_write(s)).map(|s| num(s, "hits")).sum();
        assert!(hits > 1000, "round {round}: only {hits} map write hits");
        let overlaps: Vec<Value> = read_findings(&out_file).into_iter().filter(|f| f["detector"] == "map_concurrent_write").collect();
        assert!(overlaps.is_empty(), "round {round}: writes under a mutex reported as concurrent: {overlaps:?}");
    }
}

#[test]
fn own_range_writes_are_reported_when_they_add_a_key() {
    if !bpf_or_skip("own_range_writes_are_reported_when_they_add_a_key") {
        return;
    }
    let tcs = newest_and_oldest();
    assert!(!tcs.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    for tc in tcs {
        let bin = build(&tc, "fixtures/rangewrite", false);
        for (mode, sum, reported) in [("update", 4000, false), ("insert", 8000, true)] {
            let tag = format!("rangewrite-{mode}-{}", tc.version);
            let (stdout, stderr, findings) =
                run_findings(&bin, &tag, &["--overhead-budget", "off"], &[mode, "1000"], "map_write_during_range");
            assert_eq!(stdout.trim(), format!("rangewrite {mode} sum={sum}"), "{tag}");
            if reported {
                assert!(!findings.is_empty(), "{tag}: insertions during the range not reported\n{stderr}");
                assert!(findings.iter().all(|f| f["goroutines"][0]["function"] == "main.insert"), "{tag}: {findings:?}");
            } else {
                assert!(findings.is_empty(), "{tag}: updates of existing keys reported: {findings:?}");
            }
        }
    }
}

#[test]
fn foreign_remove_names_the_printed_list_and_goroutine() {
    if !bpf_or_skip("foreign_remove_names_the_printed_list_and_goroutine") {
        return;
    }
    let mut checked = Vec::new();
    for tc in toolchains() {
        for stripped in [false, true] {
            let bin = build(&tc, FIXTURE, stripped);
            let tag = format!("list-{}-{stripped}", tc.version);
            let (stdout, stderr, findings) = run_findings(&bin, &tag, &[], &["list"], "list_foreign_remove");
            let list_a = hex(&field(&stdout, "list ", "a"));
            let list_b = field(&stdout, "list ", "b");
            let remover: u64 = field(&stdout, "remover ", "goid").parse().expect("goid");

            assert_eq!(findings.len(), 1, "{tag}: list_foreign_remove findings: {findings:?}\n{stderr}");
            let f = &findings[0];
            assert_eq!(f["object"]["kind"], "list", "{tag}: {f}");
            assert_eq!(hex(f["object"]["address"].as_str().expect("address")), list_a, "{tag}: the list Remove was called on: {f}");
            assert!(f["message"].as_str().unwrap_or("").contains(&list_b), "{tag}: e.list should be {list_b}: {f}");
            assert_eq!(f["goroutines"][0]["goid"], remover, "{tag}: remover goroutine: {f}");
            if !stripped {
                assert_eq!(f["goroutines"][0]["function"], "main.removeFrom", "{tag}: caller: {f}");
            }
            checked.push(format!("{}{}", tc.version, if stripped { "-s" } else { "" }));
        }
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("list_foreign_remove matches the fixture's prints for: {}", checked.join(" "));
}

#[test]
fn moving_stacks_run_to_the_same_output_traced() {
    if !bpf_or_skip("moving_stacks_run_to_the_same_output_traced") {
        return;
    }
    let mut checked = Vec::new();
    for tc in toolchains() {
        let bin = build(&tc, FIXTURE, false);
        let plain = Command::new(&bin).args(["stacks", "4"]).output().expect("run fixture");
        assert!(plain.status.success(), "Go {}: untraced fixture failed", tc.version);
        let moved = field(&String::from_utf8_lossy(&plain.stderr), "stacks ", "moved");
        assert_ne!(moved, "0", "Go {}: no goroutine stack moved; the fixture does not test what it should", tc.version);
        for flags in [&[][..], &["--sample-every", "1"][..]] {
            let tag = format!("stacks-{}-{}", tc.version, flags.len());
            let (out, report) = run_stats(&bin, &tag, flags, &["stacks", "4"]);
            assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&plain.stdout), "{tag}: output differs");
            let hits: u64 = sites(&report).iter().filter(|s| function(s) == "main.stacksWork").map(|s| num(s, "hits")).sum();
            assert!(hits > 0, "{tag}: no hit in main.stacksWork: {report}");
            checked.push(format!("{tag}: {hits} hits, {} records", report["records"]));
        }
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("moving stacks, same output:\n  {}", checked.join("\n  "));
}

/// Every uprobe_multi link on `path` held by a process this test started (another
/// ghostrace on the host, a daemon, may trace the same binary), as (holding pid,
/// traced pid), from /proc/*/fdinfo (the kernel lists each link's path and pid there).
fn uprobe_links(path: &Path) -> Vec<(u32, u32)> {
    let want = format!("path:\t{}", path.display());
    let mut links = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()) {
        let Ok(holder) = proc_dir.file_name().to_string_lossy().parse::<u32>() else { continue };
        if !started_here(holder) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fdinfo")) else { continue };
        for fd in fds.filter_map(|e| e.ok()) {
            let Ok(info) = std::fs::read_to_string(fd.path()) else { continue };
            if info.contains("link_type:\tuprobe_multi") && info.lines().any(|l| l.trim_end() == want) {
                let pid = info.lines().find_map(|l| l.strip_prefix("pid:")).and_then(|p| p.trim().parse().ok()).unwrap_or(0);
                links.push((holder, pid));
            }
        }
    }
    links
}

/// Whether `pid` descends from this test process.
fn started_here(pid: u32) -> bool {
    let me = std::process::id();
    let mut at = pid;
    while at > 1 {
        match tracer_user::procfs::parent_of(at) {
            Some(p) if p == me => return true,
            Some(p) => at = p,
            None => return false,
        }
    }
    false
}

/// Legacy (tracefs) uprobes naming `path`.
fn tracefs_uprobes(path: &Path) -> Vec<String> {
    let name = path.display().to_string();
    ["/sys/kernel/tracing/uprobe_events", "/sys/kernel/debug/tracing/uprobe_events"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|s| s.lines().filter(|l| l.contains(&name)).map(String::from).collect::<Vec<_>>())
        .collect()
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    Normal,
    ChildKilled,
    GhostraceTerminated,
    /// SIGHUP without a budget file to reload goes on to the child, as SIGTERM does.
    GhostraceHungUp,
}

fn assert_no_probe_left(bin: &Path, tag: &str) {
    assert_eq!(uprobe_links(bin), vec![], "{tag}: uprobe_multi links left on {}", bin.display());
    assert_eq!(tracefs_uprobes(bin), Vec::<String>::new(), "{tag}: tracefs uprobes left");
}

#[test]
fn no_probe_outlives_ghostrace_run() {
    if !bpf_or_skip("no_probe_outlives_ghostrace_run") {
        return;
    }
    let mut checked = Vec::new();
    for tc in newest_and_oldest() {
        // A private copy: other tests trace the shared fixture binary at the same time.
        let built = build(&tc, FIXTURE, false);
        let bin: PathBuf = temp_file(&format!("probes-left-{}", tc.version));
        std::fs::copy(&built, &bin).expect("copy fixture");
        for ending in [Ending::Normal, Ending::ChildKilled, Ending::GhostraceTerminated, Ending::GhostraceHungUp] {
            let tag = format!("Go {} {ending:?}", tc.version);
            let iterations = if matches!(ending, Ending::Normal) { "20" } else { "1000" };
            let mut gr = ghostrace()
                .args(["run", "--"])
                .arg(&bin)
                .args(["idle", iterations])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn ghostrace");
            let gr_pid = gr.id();
            // While tracing, the check sees ghostrace's links on the binary.
            let child = wait_until(&format!("{tag}: probes attached"), Duration::from_secs(20), || {
                let links = uprobe_links(&bin);
                (!links.is_empty()).then_some(links)
            });
            assert!(child.iter().all(|&(holder, _)| holder == gr_pid), "{tag}: links held by others: {child:?}");
            let child_pid = child[0].1;
            match ending {
                Ending::Normal => {}
                // SAFETY: kill has no memory preconditions; both pids are processes this test started.
                Ending::ChildKilled => assert_eq!(unsafe { libc::kill(child_pid as i32, libc::SIGKILL) }, 0),
                Ending::GhostraceTerminated => assert_eq!(unsafe { libc::kill(gr_pid as i32, libc::SIGTERM) }, 0),
                Ending::GhostraceHungUp => assert_eq!(unsafe { libc::kill(gr_pid as i32, libc::SIGHUP) }, 0),
            }
            wait_until(&format!("{tag}: ghostrace exit"), Duration::from_secs(20), || gr.try_wait().expect("try_wait").map(|_| ()));
            let output = gr.wait_with_output().expect("ghostrace output");
            let stderr = String::from_utf8_lossy(&output.stderr);
            match ending {
                Ending::Normal => assert!(output.status.success(), "{tag}: {stderr}"),
                // The child's fate passes through as a shell would report it.
                Ending::ChildKilled => assert_eq!(output.status.code(), Some(128 + 9), "{tag}: {stderr}"),
                Ending::GhostraceTerminated => assert_eq!(output.status.code(), Some(128 + 15), "{tag}: {stderr}"),
                Ending::GhostraceHungUp => assert_eq!(output.status.code(), Some(128 + 1), "{tag}: {stderr}"),
            }
            assert!(!Path::new(&format!("/proc/{gr_pid}")).exists(), "{tag}: ghostrace still exists");
            wait_until(&format!("{tag}: child gone"), Duration::from_secs(10), || {
                (!Path::new(&format!("/proc/{child_pid}/exe")).exists()).then_some(())
            });
            assert_no_probe_left(&bin, &tag);

            // The binary runs untraced, and a second traced run attaches afresh and sees every hit.
            let plain = Command::new(&bin).args(["idle", "3"]).output().expect("run untraced");
            assert!(plain.status.success(), "{tag}: untraced run after tracing failed");
            // Without a budget: an idle process's few writes could be duty-cycled on a busy host.
            let (again, report) =
                run_stats(&bin, &format!("left-{}-{ending:?}", tc.version), &["--overhead-budget", "off"], &["idle", "5"]);
            assert_eq!(String::from_utf8_lossy(&plain.stdout), "idle done len=3\n", "{tag}: untraced output");
            assert_eq!(String::from_utf8_lossy(&again.stdout), "idle done len=5\n", "{tag}: traced output");
            let map_hits: u64 = sites(&report).iter().filter(|s| function(s) == "main.main" && is_map_write(s)).map(|s| num(s, "hits")).sum();
            assert_eq!(map_hits, 5, "{tag}: second traced run: {report}");
            assert_no_probe_left(&bin, &tag);
            checked.push(tag);
        }
        let _ = std::fs::remove_file(&bin);
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("no probe left behind: {}", checked.join(", "));
}

/// A slot of the kernel's `LAST_GROWTH` cache as written there: the key, a held
/// `SliceGrow` record, `sent`, then the check word (tracer-ebpf maps.rs `Slot`).
fn growth_slot(key_tgid: u32, end: u64, held: &[u64; 12]) -> [u64; 15] {
    let mut words = [0u64; 15];
    words[0] = key_tgid as u64 | (RecordKind::SliceGrow as u64) << 32;
    words[1] = end;
    words[2..14].copy_from_slice(held);
    let body: &[u64; 14] = words[..14].try_into().expect("14 words");
    words[14] = hit_cache::check(body);
    words
}

/// The `LAST_GROWTH` map of the ghostrace process `pid`, found through its map fds.
fn last_growth_map(pid: u32) -> aya::maps::Array<aya::maps::MapData, [u64; 15]> {
    let dir = format!("/proc/{pid}/fdinfo");
    let ids = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")).filter_map(|fd| {
        let text = std::fs::read_to_string(fd.ok()?.path()).ok()?;
        text.lines().find_map(|l| l.strip_prefix("map_id:")).and_then(|id| id.trim().parse::<u32>().ok())
    });
    for id in ids {
        let Ok(info) = aya::maps::MapInfo::from_id(id) else { continue };
        if info.name_as_str() == Some("LAST_GROWTH") {
            let data = aya::maps::MapData::from_id(id).expect("LAST_GROWTH map");
            return aya::maps::Array::try_from(aya::maps::Map::Array(data)).expect("LAST_GROWTH as an array");
        }
    }
    panic!("ghostrace (pid {pid}) holds no LAST_GROWTH map");
}

#[test]
fn growth_cache_slots_count_only_when_whole_and_of_their_own_key() {
    if !bpf_or_skip("growth_cache_slots_count_only_when_whole_and_of_their_own_key") {
        return;
    }
    // Before each growth the test plants the "last growth" of its array by another
    // goroutine (goid 900000 + case) in the array's slot: whole, it makes the growth a
    // transition (the planted record is replayed); torn (one word changed after the
    // check, as when two CPUs write the slot at once) or of another process, it is a
    // miss and the goroutine-local growth is filtered.
    const WHOLE: u64 = 900_001;
    const TORN: u64 = 900_002;
    const FOREIGN: u64 = 900_003;
    let mut checked = Vec::new();
    for tc in newest_and_oldest() {
        let bin = build(&tc, FIXTURE, false);
        let tag = format!("slots-{}", tc.version);
        let stats = temp_file(&format!("probes-{tag}.json"));
        let _ = std::fs::remove_file(&stats);
        // No GC cycle: the planted records' count (0) is the process's.
        let mut child = ghostrace()
            .args(["run", "--overhead-budget", "off", "--stats-out"])
            .arg(&stats)
            .arg("--")
            .arg(&bin)
            .args(["slots", "3"])
            .env("GOGC", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run ghostrace");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().expect("stdout")));
        let mut table = None;
        let mut own = 0;
        for planted in [WHOLE, TORN, FOREIGN] {
            let line = lines.next().expect("a slot line").expect("fixture output");
            own = field(&line, "slot ", "goid").parse().expect("goid");
            // Loaded by now: the fixture runs once ghostrace has attached.
            let table = table.get_or_insert_with(|| last_growth_map(child.id()));
            let pid: u32 = field(&line, "slot ", "pid").parse().expect("pid");
            let ptr = hex(&field(&line, "slot ", "ptr"));
            let cap: u64 = field(&line, "slot ", "cap").parse().expect("cap");
            let elem: u64 = field(&line, "slot ", "elem").parse().expect("elem");
            let end = ptr + cap * elem;
            // kind|flags|probe, ts, tgid|tid, goid, pc, stack id, args (the same
            // header: ptr, len, cap, new len, element size | GC count 0), sent.
            let held = [RecordKind::SliceGrow as u64, 1, pid as u64 | (pid as u64) << 32, planted, 0, u64::MAX, ptr, cap, cap, cap + 1, elem, 0];
            let key_tgid = if planted == FOREIGN { pid + 1 } else { pid };
            let mut slot = growth_slot(key_tgid, end, &held);
            if planted == TORN {
                // The goroutine of another write to the slot.
                slot[5] ^= 1 << 40;
            }
            table.set(hit_cache::slot(pid, RecordKind::SliceGrow as u32, end), &slot, 0).expect("plant the slot");
            writeln!(stdin, "go").expect("fixture stdin");
        }
        drop(stdin);
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = child.wait().expect("ghostrace exit");
        assert!(status.success() && rest.iter().any(|l| l == "slots done"), "{tag}: ghostrace {status}, fixture said {rest:?}");
        let report = read_json(&stats);
        let goids: Vec<u64> = sites(&report)
            .iter()
            .flat_map(|s| s["goroutines"].as_array().expect("goroutines"))
            .map(|g| g["goid"].as_u64().expect("goid"))
            .collect();
        assert!(goids.contains(&WHOLE), "{tag}: the whole slot's record was not replayed; records from goroutines {goids:?}");
        assert!(!goids.contains(&TORN) && !goids.contains(&(TORN ^ 1 << 40)), "{tag}: a torn slot was taken for a hit: {goids:?}");
        assert!(!goids.contains(&FOREIGN), "{tag}: another process's slot was taken for a hit: {goids:?}");
        let sent: u64 = sites(&report)
            .iter()
            .filter(|s| function(s) == "main.main" && s["kind"] == "SliceGrowCall")
            .flat_map(|s| s["goroutines"].as_array().expect("goroutines"))
            .filter(|g| g["goid"] == own)
            .map(|g| num(g, "records"))
            .sum();
        assert_eq!(sent, 1, "{tag}: only the growth after the whole slot is a transition: {report}");
        checked.push(tc.version.clone());
    }
    assert!(!checked.is_empty(), "no Go toolchain installed: run `cargo xtask bootstrap`");
    eprintln!("growth cache slots checked for Go {}", checked.join(", "));
}
