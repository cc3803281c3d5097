//! The daemon's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz`,
//! `/readyz` and `/status` (what is traced, as JSON). GET and HEAD, one request per
//! connection, served by hyper on a tokio runtime of its own thread: a scrape never
//! waits for the tracer, and no client, however slow, holds up another.

use std::{
    convert::Infallible,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, header, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::sync::{Semaphore, oneshot};

use crate::{export::prometheus::Metrics, sys::monotonic_ns};

/// The main loop is healthy while it went round within this.
const STALL_NS: u64 = 30_000_000_000;
/// Request heads longer than this get 431 (hyper's smallest read buffer).
const MAX_HEAD: usize = 8192;
/// In-flight requests get this long to finish once the server is told to stop.
const DRAIN: Duration = Duration::from_secs(2);

/// What a client may take of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at once; one more is closed as soon as it is accepted.
    pub connections: usize,
    /// A client gets this long to send its request head.
    pub header_timeout: Duration,
    /// A connection is closed after this long, whatever it is doing (a client that
    /// does not read its answer).
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { connections: 512, header_timeout: Duration::from_secs(5), lifetime: Duration::from_secs(30) }
    }
}

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

/// The running server: dropping it stops it gracefully.
pub struct Server {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish (for at most `DRAIN`) and
    /// waits for the server's thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Serves `listener` on a new thread until the returned server is stopped.
pub fn serve(listener: TcpListener, shared: Arc<Shared>, limits: Limits) -> std::io::Result<Server> {
    listener.set_nonblocking(true)?;
    let (stop, stopped) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let thread = std::thread::Builder::new().name("ghostrace-http".into()).spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve_until(listener, shared, limits, async { _ = stopped.await }).await,
                Err(e) => tracing::warn!("the HTTP endpoint cannot start: {e}"),
            }
        })
    })?;
    Ok(Server { stop: Some(stop), thread: Some(thread) })
}

/// Accepts connections until `stop` completes, then drains the open ones.
pub async fn serve_until(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(false)
        .max_buf_size(MAX_HEAD)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors or a connection reset before it was taken: go on.
                Err(_) => continue,
            },
            () = &mut stop => break,
        };
        // Full: the connection is closed at once rather than queued behind the others.
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let shared = shared.clone();
        let service = service_fn(move |request| {
            let response = answer(&request, &shared);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = tokio::time::timeout(limits.lifetime, connection).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

fn answer(request: &Request<hyper::body::Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if request.method() != Method::GET && request.method() != Method::HEAD {
        (StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8".to_string(), "GET only\n".to_string())
    } else {
        route(request.uri().path(), shared)
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    }
    response
}

fn route(path: &str, shared: &Shared) -> (StatusCode, String, String) {
    let text = |status, body: &str| (status, "text/plain; charset=utf-8".to_string(), body.to_string());
    match path {
        "/metrics" => match shared.metrics.render() {
            Ok(body) => (StatusCode::OK, shared.metrics.content_type(), body),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
        },
        "/healthz" => {
            let stalled = monotonic_ns().saturating_sub(shared.heartbeat_ns.load(Ordering::Relaxed)) > STALL_NS;
            if stalled {
                text(StatusCode::SERVICE_UNAVAILABLE, "main loop stalled\n")
            } else {
                text(StatusCode::OK, "ok\n")
            }
        }
        "/readyz" => {
            let blocked = shared.blocked.lock().unwrap_or_else(|e| e.into_inner()).clone();
            match (shared.ready.load(Ordering::Relaxed), blocked) {
                (false, _) => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
                (true, Some(why)) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n")),
                (true, None) => text(StatusCode::OK, "ready\n"),
            }
        }
        "/status" => {
            let body = shared.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (StatusCode::OK, "application/json".to_string(), body)
        }
        "/" => text(StatusCode::OK, "ghostrace daemon: /metrics /healthz /readyz /status\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::{SocketAddr, TcpStream},
        time::Instant,
    };

    use super::*;

    fn start(limits: Limits) -> (SocketAddr, Arc<Shared>, Server) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::new(Arc::new(Metrics::new().unwrap())));
        let server = serve(listener, shared.clone(), limits).unwrap();
        (addr, shared, server)
    }

    /// Sends `request` and reads the answer to its end (the server closes); a
    /// server that never answers fails the read after 10 s.
    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        // A connection closed unread is reset: what came before is the answer.
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn endpoints_answer() {
        let (addr, shared, _server) = start(Limits::default());
        let metrics = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("ghostrace_build_info"), "{metrics}");
        assert!(get(addr, b"GET /healthz HTTP/1.1\r\n\r\n").ends_with("\r\n\r\nok\n"));
        assert!(get(addr, b"GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503"));
        shared.ready.store(true, Ordering::Relaxed);
        assert!(get(addr, b"GET /readyz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        *shared.blocked.lock().unwrap() = Some("2 selected Go processes, none traced: refused".into());
        let blocked = get(addr, b"GET /readyz HTTP/1.1\r\n\r\n");
        assert!(blocked.starts_with("HTTP/1.1 503") && blocked.ends_with("none traced: refused\n"), "{blocked}");
        *shared.blocked.lock().unwrap() = None;
        assert!(get(addr, b"GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let head = get(addr, b"HEAD /healthz HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "{head}");
        let old = get(addr, b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n");
        assert!(old.starts_with("HTTP/1.0 200") && old.ends_with("\r\n\r\nok\n"), "{old}");
    }

    /// The liveness-probe contract: 200 clients that each sent half a request line
    /// and went silent do not delay `/healthz` or `/metrics` past 1 s.
    #[test]
    fn slow_clients_do_not_stall_the_probes() {
        let (addr, _shared, _server) = start(Limits::default());
        let slow: Vec<TcpStream> = (0..200)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /heal").unwrap();
                s
            })
            .collect();
        for path in ["/healthz", "/metrics"] {
            let started = Instant::now();
            let answer = get(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            let took = started.elapsed();
            println!("{path} behind {} slow connections: {:.1} ms", slow.len(), took.as_secs_f64() * 1e3);
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        }
    }

    /// A client that never finishes its head is cut off after the header timeout.
    #[test]
    fn silent_clients_are_cut_off() {
        let limits = Limits { header_timeout: Duration::from_millis(300), ..Limits::default() };
        let (addr, _shared, _server) = start(limits);
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost").unwrap();
        let started = Instant::now();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    }

    #[test]
    fn oversized_and_malformed_requests_get_4xx() {
        let (addr, _shared, _server) = start(Limits::default());
        let status = |answer: String| answer.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
        let huge_header = format!("GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 * 1024));
        let huge_target = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(64 * 1024));
        let cases: [(&str, Vec<u8>); 6] = [
            ("oversized header", huge_header.into_bytes()),
            ("oversized target", huge_target.into_bytes()),
            ("no version", b"GET /healthz\r\n\r\n".to_vec()),
            ("garbage", b"\x01\x02 not http at all\r\n\r\n".to_vec()),
            ("bad header", b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n".to_vec()),
            ("bad version", b"GET /healthz HTTP/9.9\r\n\r\n".to_vec()),
        ];
        for (what, request) in cases {
            let started = Instant::now();
            let code = status(get(addr, &request));
            assert!(code.is_some_and(|c| (400..500).contains(&c)), "{what}: {code:?}");
            assert!(started.elapsed() < Duration::from_secs(2), "{what}: {:?}", started.elapsed());
        }
    }

    /// Past the connection limit a client is closed at once, not queued; a slot
    /// freed is taken again.
    #[test]
    fn connections_past_the_limit_are_closed() {
        let limits = Limits { connections: 4, ..Limits::default() };
        let (addr, _shared, _server) = start(limits);
        let held: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /heal").unwrap();
                s
            })
            .collect();
        // Accepted in order: give the server a moment to take the four.
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(get(addr, b"GET /healthz HTTP/1.1\r\n\r\n"), "");
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(held);
        std::thread::sleep(Duration::from_millis(200));
        assert!(get(addr, b"GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    }

    /// Stopping returns within the drain time even with a silent client
    /// connected, and the port is closed after it.
    #[test]
    fn stops_gracefully() {
        let (addr, _shared, server) = start(Limits::default());
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        assert!(get(addr, b"GET /healthz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
        let started = Instant::now();
        server.stop();
        assert!(started.elapsed() < DRAIN + Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(TcpStream::connect(addr).is_err());
    }
}
