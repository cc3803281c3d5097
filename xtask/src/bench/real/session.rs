//! One ghostrace session of the bench: started, stopped, and what it said (the exit
//! table's estimates on stderr, `--stats-out`, the findings of `--json-out`) and
//! what it cost (its own CPU from /proc, final values read before it is reaped).

use std::{
    ffi::OsString,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
};

use anyhow::{Context, Result};
use serde_json::Value;

use super::procfs::{self, Cpu};

/// The tracing configurations, run in turn (rotated by round) on every program.
pub const CONFIGS: &[Config] = &[
    Config { name: "untraced", options: None },
    Config { name: "default", options: Some(&[]) },
    Config { name: "budget off", options: Some(&["--overhead-budget", "off"]) },
];

pub struct Config {
    pub name: &'static str,
    /// ghostrace's options; `None`: not traced.
    pub options: Option<&'static [&'static str]>,
}

/// A ghostrace process and where its reports go.
pub struct Session {
    pub child: Child,
    stderr: Option<JoinHandle<String>>,
    /// What it printed up to its "N probes on …" line.
    pub said: String,
    stats: PathBuf,
    findings: PathBuf,
    log: PathBuf,
}

/// What a finished session said and cost.
pub struct Ended {
    pub ok: bool,
    /// ghostrace's own CPU; `children` is a `run` session's traced program.
    pub own: Cpu,
    pub children: Cpu,
    pub attached: Option<u64>,
    pub hit: Option<u64>,
    /// Probe hits and records received, summed over the sites.
    pub hits: Option<u64>,
    pub records: Option<u64>,
    /// The exit table's estimates: whole session and last cycle (ratios).
    pub estimated: Option<(f64, f64)>,
    /// Findings at warning or worse: "detector at function (file:line) / …".
    pub serious: Vec<String>,
    pub last_line: String,
}

impl Session {
    /// Starts `ghostrace ARGS --stats-out … --json-out …` and waits for its probes to
    /// be attached (`env`: added to its environment, which a `run` program inherits); `Err` carries what it said when it stopped before that.
    pub fn start(ghostrace: &Path, args: &[String], env: &[(&str, OsString)], out: &Path, tag: &str) -> Result<Result<Session, String>> {
        let (stats, findings, log) = (out.join(format!("{tag}.stats.json")), out.join(format!("{tag}.findings.jsonl")), out.join(format!("{tag}.stderr")));
        let _ = std::fs::remove_file(&stats);
        let _ = std::fs::remove_file(&findings);
        let (verb, rest) = args.split_first().context("no ghostrace verb")?;
        let mut child = Command::new(ghostrace)
            .arg(verb)
            .arg("--stats-out")
            .arg(&stats)
            .arg("--json-out")
            .arg(&findings)
            .args(rest)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start ghostrace")?;
        let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
        let mut said = String::new();
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line)? == 0 {
                let _ = child.wait();
                let _ = std::fs::write(&log, &said);
                return Ok(Err(said.trim().lines().last().unwrap_or("exited without a word").to_string()));
            }
            said.push_str(&line);
            // "ghostrace: N probes on pid P (goX); …" (attach), "… probes on BIN (goX), pid P, …" (run)
            if line.contains(" probes on ") {
                break;
            }
        }
        // The exit table comes later on stderr: drained all along, or ghostrace blocks.
        let rest = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Ok(Session { child, stderr: Some(rest), said, stats, findings, log }))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks it to stop (SIGINT, as Ctrl-C), then [`Session::wait`].
    pub fn stop(self) -> Result<Ended> {
        crate::step::run(Command::new("kill").args(["-INT", &self.pid().to_string()]))?;
        self.wait()
    }

    /// Waits for it to exit on its own (a `run` session) and reads its reports.
    pub fn wait(mut self) -> Result<Ended> {
        let (stat, status) = procfs::final_stat(&mut self.child)?;
        let text = format!("{}{}", self.said, self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default());
        std::fs::write(&self.log, &text)?;
        let stats: Option<Value> = std::fs::read_to_string(&self.stats).ok().and_then(|t| serde_json::from_str(&t).ok());
        let sites = stats.as_ref().and_then(|s| s["sites"].as_array());
        Ok(Ended {
            ok: status.success(),
            own: stat.own,
            children: stat.children,
            attached: stats.as_ref().and_then(|s| s["attached"].as_u64()),
            hit: sites.map(|s| s.iter().filter(|s| s["hits"].as_u64() > Some(0)).count() as u64),
            hits: sites.map(|s| s.iter().filter_map(|s| s["hits"].as_u64()).sum()),
            records: stats.as_ref().and_then(|s| s["records"].as_u64()),
            estimated: estimates(&text),
            serious: serious_findings(&self.findings)?,
            last_line: text.trim().lines().last().unwrap_or("").to_string(),
        })
    }
}

/// "  estimated overhead 49.01% of the process's CPU, 0.13% in the last cycle (…)"
fn estimates(stderr: &str) -> Option<(f64, f64)> {
    let line = stderr.lines().rev().find_map(|l| l.trim().strip_prefix("estimated overhead "))?;
    let mut percents = line.split_whitespace().filter_map(|w| w.trim_end_matches(',').strip_suffix('%')?.parse::<f64>().ok());
    Some((percents.next()? / 100.0, percents.next()? / 100.0))
}

/// Findings of severity warning or critical in a `--json-out` file.
fn serious_findings(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Value = serde_json::from_str(line).with_context(|| format!("a finding in {}", path.display()))?;
        if !matches!(f["severity"].as_str(), Some("warning" | "critical")) {
            continue;
        }
        let sites: Vec<String> = f["goroutines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| format!("{} ({}:{})", g["function"].as_str().unwrap_or("?"), g["file"].as_str().unwrap_or("?"), g["line"]))
            .collect();
        out.push(format!("{} {} x{} at {}", f["severity"].as_str().unwrap_or("?"), f["detector"].as_str().unwrap_or("?"), f["count"], sites.join(" / ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_tables_estimates_are_read_as_ratios() {
        let text = "ghostrace: no findings\n  estimated overhead 49.01% of the process's CPU, 0.13% in the last cycle (budget 1%, planned to 50% of it; 0.79 µs per emulated hit)\n";
        assert_eq!(estimates(text), Some((0.4901, 0.0013)));
        assert_eq!(estimates("ghostrace: no findings\n"), None);
    }
}
