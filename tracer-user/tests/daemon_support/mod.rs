//! Support for the daemon tests: the daemon, Go programs and a Prometheus server as
//! guards that kill what they started even when a test fails, a minimal HTTP
//! client for loopback, and bounded polling.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::repo;

/// Runs of a short hazard program [`Daemon::rerun_until`] makes at most.
pub const RERUNS: u32 = 3;

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local address").port()
}

/// A fresh directory of this test's own: the daemon selects what runs from it.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = repo().join("target/test-out/daemon").join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// Copies `binary` into `dir` under `name` (a copy is a file of its own: its own inode).
pub fn install(binary: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(binary, &to).expect("copy the program");
    to
}

/// One HTTP/1.0 GET on loopback: (status code, body).
pub fn http_get(port: u16, target: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_string()))
}

/// Percent-encodes a query parameter.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `probe` every 50 ms until it returns `Ok`, for at most `limit`; then fails
/// with the last thing it saw.
pub fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) if start.elapsed() >= limit => {
                panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A child process killed and reaped on drop.
pub struct Guard {
    pub child: Child,
    pub name: String,
}

impl Guard {
    pub fn spawn(name: &str, cmd: &mut Command) -> Self {
        let mut tries = 0;
        let child = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                // A program copied just now may still be open for writing in a child
                // another test thread forked meanwhile (until that child's exec).
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("start {name}: {e}"),
            }
        };
        Self { child, name: name.to_string() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; returns the status.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        // Our own child, not reaped yet: the pid is still its own.
        tracer_user::sys::send_signal(self.child.id() as i32, libc::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A Go program of the test, killed on drop.
pub fn start_program(path: &Path, args: &[&str]) -> Guard {
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    Guard::spawn(&name, Command::new(path).args(args).stdout(Stdio::null()).stderr(Stdio::null()))
}

/// `ghostrace daemon` on a free port, its stdout and stderr in files.
pub struct Daemon {
    pub guard: Guard,
    pub port: u16,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Daemon {
    /// Starts the daemon selecting everything under `dir`, and waits until it is
    /// ready. Unless `extra` says otherwise, an executable's probes go when its last
    /// process does (`--keep-idle 0s`), so that tests see everything forgotten.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_command(crate::support::ghostrace(), dir, extra)
    }

    /// [`Daemon::start`] with `cmd` running the daemon: the ghostrace binary, or a
    /// wrapper (such as `capsh`) whose arguments end where ghostrace's begin.
    pub fn start_command(mut cmd: Command, dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let (stdout, stderr) = (dir.join("daemon.out"), dir.join("daemon.err"));
        cmd.args(["daemon", "--listen", &format!("127.0.0.1:{port}"), "--select"])
            .arg(format!("path:{}/**", dir.display()))
            .args(extra)
            .args(if extra.contains(&"--keep-idle") { &[][..] } else { &["--keep-idle", "0s"][..] })
            .stdout(std::fs::File::create(&stdout).expect("daemon stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("daemon stderr file"));
        let mut daemon = Self { guard: Guard::spawn("ghostrace daemon", &mut cmd), port, stdout, stderr };
        wait_for("the daemon to be ready", Duration::from_secs(30), || {
            if let Ok(Some(status)) = daemon.guard.child.try_wait() {
                panic!("the daemon exited with {status}: {}", daemon.log());
            }
            match http_get(port, "/readyz") {
                Ok((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
        daemon
    }

    /// Runs `run` (a short program with a hazard) until `found` says its finding
    /// arrived, at most [`RERUNS`] times: a run whose race did not repeat is run
    /// again, but a detection rate that falls fails instead of being run away.
    /// Prints and returns how many runs it took.
    pub fn rerun_until(&self, what: &str, found: impl Fn() -> bool, mut run: impl FnMut()) -> u32 {
        let mut runs = 0;
        while !found() {
            assert!(runs < RERUNS, "no {what} after {runs} runs:\n{}", self.log());
            run();
            runs += 1;
            // Findings settle (1 s) and are looked at every second.
            let settled = Instant::now();
            while settled.elapsed() < Duration::from_secs(3) && !found() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // To the process's stderr itself: libtest keeps a passing test's eprintln! to itself.
        let _ = writeln!(std::io::stderr(), "{what}: found after {runs} of at most {RERUNS} runs");
        runs
    }

    /// Whether a finding of `detector` was written to stdout.
    pub fn has_finding(&self, detector: &str) -> bool {
        self.findings().iter().any(|l| l["detector"] == detector)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn findings(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.stdout)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
            .collect()
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = http_get(self.port, "/status").expect("GET /status");
        assert_eq!(code, 200, "GET /status: {body}");
        serde_json::from_str(&body).expect("status is JSON")
    }

    pub fn metrics(&self) -> String {
        let (code, body) = http_get(self.port, "/metrics").expect("GET /metrics");
        assert_eq!(code, 200, "GET /metrics: {body}");
        body
    }

    /// The value of one series, written as in the exposition (`name{a="b"}`).
    pub fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.metrics(), series)
    }

    /// Pids the daemon traces: in its status and in the kernel's table.
    pub fn traced_pids(&self) -> (Vec<u64>, Vec<u64>) {
        let status = self.status();
        let listed = status["binaries"]
            .as_array()
            .expect("binaries")
            .iter()
            .flat_map(|b| b["pids"].as_array().expect("pids").iter().map(|p| p.as_u64().expect("pid")))
            .collect();
        let kernel =
            status["kernel_traced_pids"].as_array().expect("kernel pids").iter().map(|p| p.as_u64().unwrap()).collect();
        (listed, kernel)
    }

    /// Asserts that nothing of any traced process is left: no binary, no process,
    /// no kernel entry, gauges at zero.
    pub fn assert_forgot_everything(&self) {
        wait_for("the daemon to forget every process", Duration::from_secs(10), || {
            let status = self.status();
            let metrics = self.metrics();
            let clean = status["binaries"].as_array().is_some_and(|b| b.is_empty())
                && status["kernel_traced_pids"].as_array().is_some_and(|k| k.is_empty())
                && status["untraced_go"].as_array().is_some_and(|u| u.is_empty())
                && sample(&metrics, "ghostrace_traced_processes") == Some(0.0)
                && sample(&metrics, "ghostrace_attached_probes") == Some(0.0)
                && sample(&metrics, "ghostrace_attached_binaries") == Some(0.0);
            if clean { Ok(()) } else { Err(status.to_string()) }
        });
    }

    /// SIGTERM: the daemon must detach and exit 0. Returns its log.
    pub fn stop(mut self) -> String {
        let status = self.guard.terminate(Duration::from_secs(20));
        assert!(status.is_some_and(|s| s.success()), "daemon exit: {status:?}\n{}", self.log());
        let log = self.log();
        assert!(log.contains("detaching every probe"), "{log}");
        log
    }
}

/// The value of one series in a text exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// The newest Go toolchain installed, or `None` (with a message) when there is none.
pub fn newest_go(test: &str) -> Option<crate::support::Toolchain> {
    crate::support::newest_or_skip(crate::support::toolchains(), test)
}
