//! The daemon's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz`,
//! `/readyz` and `/status` (what is traced, as JSON). GET only, one request per
//! connection, on its own thread: a scrape never waits for the tracer.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{export::prometheus::Metrics, sys::monotonic_ns};

/// The main loop is healthy while it went round within this.
const STALL_NS: u64 = 30_000_000_000;
/// A client gets this long to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Request heads longer than this are refused.
const MAX_HEAD: u64 = 8192;

/// What the endpoints show, shared with the main loop.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    /// Set once the start-up scan is done and exec events are watched.
    pub ready: AtomicBool,
    /// Why the daemon, though started, is not ready: it traces nothing.
    pub blocked: Mutex<Option<String>>,
    /// Kernel monotonic time of the main loop's last round.
    pub heartbeat_ns: AtomicU64,
    /// The `/status` document, replaced by the main loop when something changed.
    pub status: Mutex<String>,
}

impl Shared {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ready: AtomicBool::new(false),
            blocked: Mutex::new(None),
            heartbeat_ns: AtomicU64::new(monotonic_ns()),
            status: Mutex::new("{}".into()),
        }
    }

    pub fn beat(&self) {
        self.heartbeat_ns.store(monotonic_ns(), Ordering::Relaxed);
    }
}

/// Serves `listener` on a new thread for the rest of the process's life.
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    std::thread::Builder::new()
        .name("ghostrace-http".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = handle(stream, &shared);
            }
        })
        .expect("spawn the HTTP thread");
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut reader = BufReader::new((&stream).take(MAX_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read the rest of the head so the client is not reset while it still sends.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut words = request_line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = if method != "GET" && method != "HEAD" {
        ("405 Method Not Allowed", "text/plain".to_string(), "GET only\n".to_string())
    } else {
        route(path, shared)
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

fn route(path: &str, shared: &Shared) -> (&'static str, String, String) {
    let text = |status, body: &str| (status, "text/plain; charset=utf-8".to_string(), body.to_string());
    match path {
        "/metrics" => match shared.metrics.render() {
            Ok(body) => ("200 OK", shared.metrics.content_type(), body),
            Err(e) => text("500 Internal Server Error", &format!("{e}\n")),
        },
        "/healthz" => {
            let stalled = monotonic_ns().saturating_sub(shared.heartbeat_ns.load(Ordering::Relaxed)) > STALL_NS;
            if stalled { text("503 Service Unavailable", "main loop stalled\n") } else { text("200 OK", "ok\n") }
        }
        "/readyz" => {
            let blocked = shared.blocked.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match (shared.ready.load(Ordering::Relaxed), blocked) {
                (false, _) => text("503 Service Unavailable", "starting\n"),
                (true, Some(why)) => text("503 Service Unavailable", &format!("{why}\n")),
                (true, None) => text("200 OK", "ready\n"),
            }
        }
        "/status" => {
            let body = shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            ("200 OK", "application/json".to_string(), body)
        }
        "/" => text("200 OK", "ghostrace daemon: /metrics /healthz /readyz /status\n"),
        _ => text("404 Not Found", "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn endpoints_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::new(Arc::new(Metrics::new().unwrap())));
        serve(listener, shared.clone());
        let metrics = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("ghostrace_build_info"), "{metrics}");
        assert!(get(addr, "GET /healthz HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nok\n"));
        assert!(get(addr, "GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        shared.ready.store(true, Ordering::Relaxed);
        assert!(get(addr, "GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        *shared.blocked.lock().unwrap() = Some("2 selected Go processes, none traced: refused".into());
        let blocked = get(addr, "GET /readyz HTTP/1.1\r\n\r\n");
        assert!(blocked.starts_with("HTTP/1.1 503") && blocked.ends_with("none traced: refused\n"), "{blocked}");
        *shared.blocked.lock().unwrap() = None;
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let head = get(addr, "HEAD /healthz HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
