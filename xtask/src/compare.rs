//! `cargo xtask compare`: every scenario of testdata/scenarios run untraced, built with
//! `-race`, and under `ghostrace run --json-out`, with Go 1.24.11; writes
//! docs/comparison.md (what each tool reported, run-time and peak-RSS ratios).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};

use crate::root;

/// The toolchain the scenarios' `race_detector` field was measured with.
const GO_VERSION: &str = "1.24.11";
/// Runs per scenario and mode; the median is reported.
const RUNS: usize = 3;
/// Upper bound of one run, in seconds (the scenarios take a few seconds at most).
const TIMEOUT_SECS: u32 = 120;
const TIME: &str = "/usr/bin/time";

struct Scenario {
    name: String,
    detectors: Vec<String>,
    twin: bool,
    crash: bool,
    race_expected: bool,
}

/// One measured run: wall seconds, peak RSS (KiB), exit code, and what was reported.
struct Run {
    wall: f64,
    rss_kib: u64,
    exit: Option<i32>,
    timed_out: bool,
    race: bool,
    /// ghostrace findings as (detector, severity).
    findings: Vec<(String, String)>,
    /// The last line of standard error.
    stderr_tail: String,
}

#[derive(Default)]
struct Measured {
    plain: Vec<Run>,
    race: Vec<Run>,
    traced: Vec<Run>,
}

pub fn run() -> Result<()> {
    let go = crate::golang::go_bin(GO_VERSION);
    ensure!(go.exists(), "Go {GO_VERSION} is missing at {} (run `cargo xtask bootstrap` first)", go.display());
    ensure!(Path::new(TIME).exists(), "{TIME} is missing (Debian package `time`; `cargo xtask bootstrap` installs it)");
    ensure!(which("timeout"), "`timeout` (coreutils) is not on PATH");
    ensure!(which("gcc"), "gcc is missing: `go build -race` needs cgo (run `cargo xtask bootstrap`)");

    let ghostrace = crate::build::release().context("building ghostrace (release)")?;
    let scenarios = scenarios()?;
    ensure!(!scenarios.is_empty(), "no scenario found in testdata/scenarios");

    let out_dir = root().join("target/compare");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    eprintln!("xtask: building {} scenarios with Go {GO_VERSION} (plain and -race)", scenarios.len());
    build_all(&go, &out_dir.join("plain"), false)?;
    build_all(&go, &out_dir.join("race"), true)?;

    let mut results: BTreeMap<String, Measured> = BTreeMap::new();
    for s in &scenarios {
        eprintln!("xtask: compare {} ({RUNS} runs per mode)", s.name);
        let plain_bin = out_dir.join("plain").join(&s.name);
        let race_bin = out_dir.join("race").join(&s.name);
        let mut m = Measured::default();
        for i in 0..RUNS {
            m.plain.push(measure(&out_dir, &[plain_bin.as_os_str()], None).with_context(|| format!("{} untraced run {i}", s.name))?);
            m.race.push(measure(&out_dir, &[race_bin.as_os_str()], None).with_context(|| format!("{} -race run {i}", s.name))?);
            let json = out_dir.join(format!("{}-{i}.jsonl", s.name));
            let _ = std::fs::remove_file(&json);
            let args = [ghostrace.as_os_str(), "run".as_ref(), "--json-out".as_ref(), json.as_os_str(), "--".as_ref(), plain_bin.as_os_str()];
            let traced = measure(&out_dir, &args, Some(&json)).with_context(|| format!("{} ghostrace run {i}", s.name))?;
            // A scenario that is not the crash program exits 0; anything else under ghostrace is ghostrace failing
            // (no root, no BPF, a probe it cannot place): stop rather than write a table of empty findings.
            if !s.crash && traced.exit != Some(0) && !traced.timed_out {
                bail!("`ghostrace run` on {} exited with {:?}: {}", s.name, traced.exit, traced.stderr_tail);
            }
            m.traced.push(traced);
        }
        results.insert(s.name.clone(), m);
    }

    let go_version = crate::step::output(crate::golang::go_command(&go).arg("version")).unwrap_or_else(|_| format!("go{GO_VERSION}"));
    let doc = render(&scenarios, &results, go_version.trim());
    let path = root().join("docs/comparison.md");
    std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
}

/// Scenario directories (those with an expect.json), sorted by name.
fn scenarios() -> Result<Vec<Scenario>> {
    let dir = root().join("testdata/scenarios");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let expect = path.join("expect.json");
        if !expect.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&expect).with_context(|| format!("reading {}", expect.display()))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        all.push(Scenario {
            detectors: json_str_array(&text, "detectors"),
            twin: json_str(&text, "twin").is_some(),
            crash: json_bool(&text, "crash").unwrap_or(false),
            race_expected: json_bool(&text, "race_detector").unwrap_or(false),
            name,
        });
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

/// Builds every scenario into `out` (one binary per package, named after it).
fn build_all(go: &PathBuf, out: &Path, race: bool) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut cmd = crate::golang::go_command(go);
    cmd.arg("build");
    if race {
        cmd.arg("-race").env("CGO_ENABLED", "1");
    }
    cmd.arg("-o").arg(format!("{}/", out.display())).arg("./...").current_dir(root().join("testdata/scenarios"));
    let out = cmd.output().context("cannot start go build")?;
    if !out.status.success() {
        bail!("go build{} of testdata/scenarios failed ({}):\n{}", if race { " -race" } else { "" }, out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Runs `argv` under /usr/bin/time and timeout; `json` is ghostrace's findings file.
fn measure(dir: &Path, argv: &[&std::ffi::OsStr], json: Option<&Path>) -> Result<Run> {
    let time_file = dir.join("time.out");
    let stderr_file = dir.join("stderr.out");
    let _ = std::fs::remove_file(&time_file);
    let stderr = std::fs::File::create(&stderr_file)?;
    let mut cmd = Command::new(TIME);
    cmd.arg("-o").arg(&time_file).args(["-f", "%M"]).args(["timeout", "-k", "5"]).arg(TIMEOUT_SECS.to_string()).args(argv);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("cannot start {TIME}"))?;
    let wall = start.elapsed().as_secs_f64();
    let err = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    let time_out = std::fs::read_to_string(&time_file).unwrap_or_default();
    // With a non-zero status GNU time writes "Command exited with non-zero status N" first.
    let rss_kib = time_out.lines().rev().find_map(|l| l.trim().parse::<u64>().ok()).unwrap_or(0);
    let findings = match json {
        Some(path) => std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| Some((json_str(l, "detector")?, json_str(l, "severity")?)))
            .collect(),
        None => Vec::new(),
    };
    Ok(Run {
        wall,
        rss_kib,
        exit: status.code(),
        timed_out: status.code() == Some(124),
        race: err.contains("WARNING: DATA RACE"),
        findings,
        stderr_tail: err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn median_wall(runs: &[Run]) -> f64 {
    median(runs.iter().map(|r| r.wall).collect())
}

fn median_rss(runs: &[Run]) -> f64 {
    median(runs.iter().map(|r| r.rss_kib as f64).collect())
}

/// Detectors seen at `warning`-or-above (`info` false) or at info (`info` true), each
/// with the number of runs it fired in.
fn fired(runs: &[Run], info: bool) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for r in runs {
        let set: BTreeSet<&String> = r.findings.iter().filter(|(_, sev)| (sev == "info") == info).map(|(d, _)| d).collect();
        for d in set {
            *count.entry(d.clone()).or_insert(0) += 1;
        }
    }
    count
}

fn show_fired(f: &BTreeMap<String, usize>) -> String {
    if f.is_empty() {
        return "–".into();
    }
    f.iter().map(|(d, n)| if *n == RUNS { format!("`{d}`") } else { format!("`{d}` ({n}/{RUNS})") }).collect::<Vec<_>>().join(", ")
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}", a / b) } else { "?".into() }
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").and_then(|r| r.trim().trim_end_matches(" kB").parse::<u64>().ok()))
        .map_or(String::new(), |kb| format!(", {:.1} GiB RAM", kb as f64 / 1048576.0));
    format!("{cpus} CPU(s) ({cpu}){mem}, Linux {kernel}")
}

fn render(scenarios: &[Scenario], results: &BTreeMap<String, Measured>, go_version: &str) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "# ghostrace and the Go race detector on the scenario corpus\n");
    let _ = writeln!(
        d,
        "Generated by `cargo xtask compare` (xtask/src/compare.rs) from a real run; do not edit by hand. Every \
         program of `testdata/scenarios/` (see its README for what each one does) is built with {go_version} and run \
         {RUNS} times in each of three ways: untraced, built with `-race` (`CGO_ENABLED=1`), and untraced binary under \
         `ghostrace run --json-out`. Each run is bounded by {TIMEOUT_SECS} s.\n"
    );
    let _ = writeln!(d, "Machine: {}. It is shared with other work, so treat the ratios as orders of magnitude.\n", machine());
    let _ = writeln!(d, "Columns:\n");
    let _ = writeln!(d, "- **expected**: the detectors the scenario's expect.json says must fire (`–` for fixed twins and clean programs);");
    let _ = writeln!(d, "- **-race**: runs in which the race detector printed `WARNING: DATA RACE`, and expect.json's measured `race_detector` in brackets;");
    let _ = writeln!(
        d,
        "- **ghostrace**: detectors with findings at `warning` or above, then info-level ones; `(n/{RUNS})` when a detector did not fire in every run;"
    );
    let _ = writeln!(
        d,
        "- **time**: median wall time of the untraced program, and the median of each tool's runs divided by it. The ghostrace \
         figure is the whole `ghostrace run`: reading the binary, placing the probes (the program is held meanwhile), the \
         traced run, and draining the last records;"
    );
    let _ = writeln!(
        d,
        "- **RSS**: median peak resident set (GNU time `%M`) of the untraced program, and the ratios. For `-race` it is the \
         program's; for ghostrace it is the largest of the `ghostrace` process and the traced program (the kernel reports \
         the maximum over the process tree, not the sum), so it mostly shows ghostrace's own footprint.\n"
    );
    let _ = writeln!(d, "| scenario | expected | -race | ghostrace (warning+) | ghostrace (info) | untraced time | -race ×| ghostrace × | untraced RSS | -race × | ghostrace × |");
    let _ = writeln!(d, "|---|---|---|---|---|---|---|---|---|---|---|");
    let mut totals = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut notes = Vec::new();
    for s in scenarios {
        let Some(m) = results.get(&s.name) else { continue };
        let race_runs = m.race.iter().filter(|r| r.race).count();
        let warn = fired(&m.traced, false);
        let info = fired(&m.traced, true);
        let expected = if s.detectors.is_empty() {
            if s.twin { "– (fixed twin)".to_string() } else { "– (clean)".to_string() }
        } else {
            s.detectors.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ")
        };
        let (pw, rw, tw) = (median_wall(&m.plain), median_wall(&m.race), median_wall(&m.traced));
        let (pr, rr, tr) = (median_rss(&m.plain), median_rss(&m.race), median_rss(&m.traced));
        if !s.crash {
            totals.0.push(rw / pw);
            totals.1.push(tw / pw);
            totals.2.push(rr / pr);
            totals.3.push(tr / pr);
        }
        for (mode, runs) in [("untraced", &m.plain), ("-race", &m.race), ("ghostrace", &m.traced)] {
            if runs.iter().any(|r| r.timed_out) {
                notes.push(format!("`{}` {mode}: a run hit the {TIMEOUT_SECS} s timeout", s.name));
            }
            let codes: BTreeSet<Option<i32>> = runs.iter().map(|r| r.exit).collect();
            if mode != "-race" && codes.iter().any(|c| *c != Some(0)) && !s.crash {
                notes.push(format!("`{}` {mode}: exit statuses {codes:?}", s.name));
            }
        }
        let _ = writeln!(
            d,
            "| `{}`{} | {} | {}/{RUNS} ({}) | {} | {} | {:.2} s | {} | {} | {:.1} MiB | {} | {} |",
            s.name,
            if s.crash { " ²" } else { "" },
            expected,
            race_runs,
            if s.race_expected { "yes" } else { "no" },
            show_fired(&warn),
            show_fired(&info),
            pw,
            ratio(rw, pw),
            ratio(tw, pw),
            pr / 1024.0,
            ratio(rr, pr),
            ratio(tr, pr),
        );
    }
    let _ = writeln!(
        d,
        "\n² the designated crash program: the Go runtime kills it (`fatal error: concurrent map writes`, exit 2) at a \
         moment that varies between runs, so its times say little; it is left out of the medians below.\n"
    );
    let _ = writeln!(
        d,
        "Median over the scenarios: run time ×{:.2} under `-race`, ×{:.2} under ghostrace; peak RSS ×{:.2} under `-race`, ×{:.2} under ghostrace (see the RSS column note).\n",
        median(totals.0),
        median(totals.1),
        median(totals.2),
        median(totals.3)
    );
    if !notes.is_empty() {
        let _ = writeln!(d, "Run notes:\n");
        for n in notes {
            let _ = writeln!(d, "- {n}");
        }
        let _ = writeln!(d);
    }

    // Disagreements, computed from this run.
    let mut race_only = Vec::new();
    let mut ghost_only = Vec::new();
    let mut both = Vec::new();
    for s in scenarios {
        let Some(m) = results.get(&s.name) else { continue };
        let race_runs = m.race.iter().filter(|r| r.race).count();
        let ghost_runs = m.traced.iter().filter(|r| r.findings.iter().any(|(det, _)| s.detectors.contains(det))).count();
        let warn = fired(&m.traced, false);
        let name = format!("`{}`", s.name);
        if race_runs > 0 && ghost_runs > 0 {
            both.push(if s.detectors.iter().any(|x| warn.contains_key(x)) { name.clone() } else { format!("{name} (ghostrace at info level only)") });
        }
        if race_runs > ghost_runs {
            race_only.push(if ghost_runs == 0 { name } else { format!("{name} (ghostrace in {ghost_runs}/{RUNS} runs, -race in {race_runs}/{RUNS})") });
        } else if race_runs == 0 && ghost_runs > 0 {
            ghost_only.push(name);
        }
    }
    let list = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ") };
    let join = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let _ = writeln!(d, "## Where the two disagree\n");
    let _ = writeln!(d, "In this run both tools reported the expected hazard of {}.\n", join(&both));
    let _ = writeln!(d, "### -race reports it, ghostrace does not (or in fewer runs): {}\n", join(&race_only));
    let _ = writeln!(
        d,
        "- **Only runtime calls are seen.** ghostrace's uprobes sit on the calls into the runtime's slice-growth \
         (`growslice`), map and list code. An `append` that fits in the capacity, a plain `s[i] = x` or a read of a \
         shared variable never calls the runtime, so a data race made only of such accesses is invisible to it; the race \
         detector instruments every memory access. A slice hazard is only seen once some goroutine grows an array that \
         another one is using."
    );
    let _ = writeln!(
        d,
        "- **`map_concurrent_writes_crash`**: the runtime kills the program at a moment that varies between runs. \
         ghostrace follows each map write from its call to the instruction after it, so two writes that overlap are usually \
         recorded before the runtime notices, and `ghostrace run` drains the records after the program died.\n"
    );
    let _ = writeln!(d, "### ghostrace reports it, -race does not: {}\n", join(&ghost_only));
    let _ = writeln!(
        d,
        "- **`container/list` misuse without a data race.** `list_deferred_double_remove` and `list_foreign_remove` run \
         under a mutex: every access is ordered, so the race detector has nothing to say, yet a second `Remove` of the same \
         element or a `Remove` through the wrong list silently corrupts the service's state (a gauge goes negative, \
         invalidated prices come back). ghostrace checks the element's list pointer at each call."
    );
    let _ = writeln!(
        d,
        "- **Writes to a map during its own range** (`map_range_rekey`) are legal Go and not a race (the results depend \
         on the iteration order), so this is ghostrace's alone: `map_write_during_range` (info level). The kernel follows \
         the goroutine's own range over every hit and sends the write once the range's next step shows the range went \
         on. Deleting during one's own range (`clean_range_delete`) is deterministic and not reported.\n"
    );
    let mut loud = Vec::new();
    let mut quiet_info = Vec::new();
    let mut raced = Vec::new();
    for s in scenarios.iter().filter(|s| s.detectors.is_empty()) {
        let Some(m) = results.get(&s.name) else { continue };
        if !fired(&m.traced, false).is_empty() {
            loud.push(s.name.as_str());
        } else if !fired(&m.traced, true).is_empty() {
            quiet_info.push(s.name.as_str());
        }
        if m.race.iter().any(|r| r.race) {
            raced.push(s.name.as_str());
        }
    }
    let silent = scenarios.iter().filter(|s| s.detectors.is_empty()).count();
    let _ = writeln!(d, "### Noise\n");
    let _ = writeln!(
        d,
        "In this run, of the {silent} fixed twins and clean programs, ghostrace reported something at warning or above on \
         {} and only info-level findings on {} ({}); the race detector reported a data race on {}.\n",
        list(&loud),
        quiet_info.len(),
        list(&quiet_info),
        list(&raced)
    );
    let _ = writeln!(
        d,
        "Nothing at warning or above is allowed on the fixed twins and clean programs (the BPF test tier checks this for \
         every Go version). `slice_stale_header` may be reported on some of them at its lowest confidence (info): a \
         read-only slice copied with `append(t[:n:n], x)` or a `sync.Pool` buffer reused by another goroutine looks like \
         a stale header to growth probes alone. This is also why the `slice_stale_header` reported for \
         `config_reload_stale` does not by itself tell the bug from a clean program: it is the same info-level \
         \"possible\" finding (its twin `config_reload_stale_fixed` stays silent). The race detector, which sees happens-before edges, reports none of them."
    );
    d
}

/// The first string value of `"key"` in a JSON text (enough for the flat fields used here).
fn json_str(text: &str, key: &str) -> Option<String> {
    let rest = after_key(text, key)?;
    let rest = rest.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

fn json_bool(text: &str, key: &str) -> Option<bool> {
    let rest = after_key(text, key)?;
    if rest.starts_with("true") {
        Some(true)
    } else if rest.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

/// The strings of a flat array value of `"key"`.
fn json_str_array(text: &str, key: &str) -> Vec<String> {
    let Some(rest) = after_key(text, key).and_then(|r| r.strip_prefix('[')) else { return Vec::new() };
    let body = &rest[..rest.find(']').unwrap_or(rest.len())];
    body.split(',').map(|s| s.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty()).collect()
}

/// The text after `"key":` and whitespace.
fn after_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let at = text.find(&pat)?;
    let rest = text[at + pat.len()..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}
