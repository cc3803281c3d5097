//! BPF tier: the daemon's HTTP endpoint, while it traces a Go process, keeps
//! answering its liveness probe and Prometheus behind 200 clients that each sent
//! half a request line and went silent, answers oversized and malformed requests
//! with 4xx at once, and still stops cleanly with those clients connected; with
//! `--log-format json` every line it writes to stderr is a JSON object.

mod daemon_support;
mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use daemon_support::{Daemon, install, newest_go, start_program, test_dir, wait_for};
use support::{bpf_or_skip, build};

/// The status code of the answer to `request`, read to its end (within 10 s).
fn status_of(port: u16, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request).ok()?;
    let mut out = Vec::new();
    // A request refused before it was read whole ends with a reset after the answer.
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn slow_clients_do_not_stall_the_endpoint() {
    let test = "slow_clients_do_not_stall_the_endpoint";
    if !bpf_or_skip(test) {
        return;
    }
    let Some(tc) = newest_go(test) else { return };
    let dir = test_dir("endpoint");
    let bin = install(&build(&tc, "fixtures/service", false), &dir, "svc-endpoint");
    let daemon = Daemon::start(&dir, &["--log-format", "json"]);
    let program = start_program(&bin, &["idle"]);
    let pid = u64::from(program.pid());
    wait_for("the process to be traced", Duration::from_secs(10), || {
        let (listed, _) = daemon.traced_pids();
        if listed.contains(&pid) { Ok(()) } else { Err(daemon.status().to_string()) }
    });

    let slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", daemon.port)).expect("connect");
            s.write_all(b"GET /metr").expect("half a request line");
            s
        })
        .collect();
    for path in ["/healthz", "/metrics"] {
        let started = Instant::now();
        let code = status_of(daemon.port, format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        let took = started.elapsed();
        eprintln!("{path} behind {} slow connections: {:.1} ms", slow.len(), took.as_secs_f64() * 1e3);
        assert_eq!(code, Some(200), "{path}");
        // A liveness probe's default timeout.
        assert!(took < Duration::from_secs(1), "{path} took {took:?}");
    }

    let huge = format!("GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 * 1024));
    for (what, request) in [("oversized head", huge.as_bytes()), ("malformed", &b"GET\x01 / HTTP/1.1\r\n\r\n"[..])] {
        let started = Instant::now();
        let code = status_of(daemon.port, request);
        assert!(code.is_some_and(|c| (400..500).contains(&c)), "{what}: {code:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{what}: {:?}", started.elapsed());
    }

    // SIGTERM with the slow clients still connected: a clean detach, promptly.
    let started = Instant::now();
    let log = daemon.stop();
    eprintln!("stopped in {:.0} ms with {} slow clients connected", started.elapsed().as_secs_f64() * 1e3, slow.len());
    drop(program);
    for line in log.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(line["level"].is_string() && line["message"].is_string(), "{line}");
    }
    assert!(log.contains("daemon ready"), "{log}");
}
