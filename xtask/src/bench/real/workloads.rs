//! What each program of the bench does: the command line, the inputs it is given
//! (generated, deterministic), and for a server the HTTP load wrk sends it on
//! 127.0.0.1.

use std::{
    ffi::OsString,
    fmt::Write as _,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

use super::programs::Installed;

/// A program's run: its command line and, by kind, what comes before.
pub struct Workload {
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
    pub batch: Option<Batch>,
    pub server: Option<Server>,
}

pub struct Batch {
    /// Commands run untraced before each timed run (a fresh repository, no output).
    pub prepare: Vec<Command>,
    /// Paths emptied before each timed run.
    pub clean: Vec<PathBuf>,
}

pub struct Server {
    pub port: u16,
    /// Answered with 2xx once the server is up.
    pub ready: &'static str,
    /// Requests sent once it is up (a database to write to).
    pub setup: Vec<(&'static str, String)>,
    /// wrk's Lua script and the URL it is given.
    pub script: PathBuf,
    pub url: String,
}

/// Ports of the servers (127.0.0.1 only), below the kernel's ephemeral range (32768 up)
/// where any program's `bind(0)` could take them first; a busy port fails up front.
const ETCD: (u16, u16) = (24379, 24380);
const INFLUXD: (u16, u16) = (24386, 24388);
const CADDY: u16 = 24381;
const PROMETHEUS: u16 = 24390;

pub fn for_program(name: &str, installed: &Installed, scratch: &Path) -> Result<Workload> {
    let s = |p: &str| scratch.join(p).into_os_string();
    let home = vec![("HOME", s("home"))];
    std::fs::create_dir_all(scratch.join("home"))?;
    Ok(match name {
        "etcd" => {
            let (client, peer) = ETCD;
            let c = format!("http://127.0.0.1:{client}");
            let p = format!("http://127.0.0.1:{peer}");
            let _ = std::fs::remove_dir_all(scratch.join("etcd"));
            let args = [
                "--data-dir", &scratch.join("etcd").display().to_string(), "--listen-client-urls", &c, "--advertise-client-urls", &c,
                "--listen-peer-urls", &p, "--initial-advertise-peer-urls", &p, "--initial-cluster", &format!("default={p}"),
                // The disk is not what is measured.
                "--unsafe-no-fsync", "--log-level", "error",
            ]
            .iter()
            .map(OsString::from)
            .collect();
            let script = lua(scratch, "etcd-put.lua", &etcd_put_script())?;
            Workload { args, env: home, batch: None, server: Some(Server { port: client, ready: "/health", setup: vec![], script, url: c }) }
        }
        "influxd" => {
            let (http, rpc) = INFLUXD;
            let _ = std::fs::remove_dir_all(scratch.join("influxdb"));
            let mut env = home;
            env.extend([
                ("INFLUXDB_META_DIR", s("influxdb/meta")),
                ("INFLUXDB_DATA_DIR", s("influxdb/data")),
                ("INFLUXDB_DATA_WAL_DIR", s("influxdb/wal")),
                ("INFLUXDB_HTTP_BIND_ADDRESS", format!("127.0.0.1:{http}").into()),
                ("INFLUXDB_BIND_ADDRESS", format!("127.0.0.1:{rpc}").into()),
                ("INFLUXDB_REPORTING_DISABLED", "true".into()),
                ("INFLUXDB_HTTP_LOG_ENABLED", "false".into()),
                ("INFLUXDB_DATA_QUERY_LOG_ENABLED", "false".into()),
            ]);
            let script = lua(scratch, "influx-write.lua", INFLUX_WRITE)?;
            let setup = vec![("POST", "/query?q=CREATE%20DATABASE%20bench".to_string())];
            let url = format!("http://127.0.0.1:{http}");
            Workload { args: vec!["run".into()], env, batch: None, server: Some(Server { port: http, ready: "/ping", setup, script, url }) }
        }
        "caddy" => {
            let site = scratch.join("caddy-site");
            generate_site_files(&site)?;
            let config = scratch.join("Caddyfile");
            std::fs::write(
                &config,
                format!("{{\n\tadmin off\n\tauto_https off\n}}\nhttp://127.0.0.1:{CADDY} {{\n\troot * {}\n\tencode gzip\n\tfile_server browse\n}}\n", site.display()),
            )?;
            let mut env = home;
            env.extend([("XDG_DATA_HOME", s("home/data")), ("XDG_CONFIG_HOME", s("home/config"))]);
            let args = ["run", "--adapter", "caddyfile", "--config"].iter().map(OsString::from).chain([config.into_os_string()]).collect();
            let script = lua(scratch, "caddy-get.lua", CADDY_GET)?;
            Workload { args, env, batch: None, server: Some(Server { port: CADDY, ready: "/", setup: vec![], script, url: format!("http://127.0.0.1:{CADDY}") }) }
        }
        "prometheus" => {
            let _ = std::fs::remove_dir_all(scratch.join("prometheus"));
            let config = scratch.join("prometheus.yml");
            // It scrapes itself and the daemon bench's fleet every second (a member that
            // is not running is a target down: no load).
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fleet\n    static_configs:\n      - targets: ['127.0.0.1:{PROMETHEUS}', \
                     '127.0.0.1:{}', '127.0.0.1:24391', '127.0.0.1:24392', '127.0.0.1:24393']\n  - job_name: probe\n    \
                     metrics_path: /probe\n    params:\n      module: [http_2xx]\n      target: ['http://127.0.0.1:{CADDY}/']\n    static_configs:\n      \
                     - targets: ['127.0.0.1:24393']\n",
                    ETCD.0
                ),
            )?;
            let args = [
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", scratch.join("prometheus").display()),
                format!("--web.listen-address=127.0.0.1:{PROMETHEUS}"),
                "--log.level=error".into(),
            ]
            .into_iter()
            .map(OsString::from)
            .collect();
            let script = lua(scratch, "prometheus-query.lua", PROMETHEUS_QUERY)?;
            let url = format!("http://127.0.0.1:{PROMETHEUS}");
            Workload { args, env: home, batch: None, server: Some(Server { port: PROMETHEUS, ready: "/-/ready", setup: vec![], script, url }) }
        }
        "restic" => {
            let data = scratch.join("restic-data");
            generate_tree(&data, 12, 240, 4_000..60_000)?;
            let repo = scratch.join("restic-repo");
            let mut env = home;
            env.push(("RESTIC_PASSWORD", "bench".into()));
            let mut init = Command::new(&installed.binary);
            init.args(["-q", "init", "-r"]).arg(&repo).envs(env.iter().map(|(k, v)| (k, v)));
            let args = ["-q", "--no-cache", "-r"].iter().map(OsString::from).chain([repo.clone().into_os_string(), "backup".into(), data.into_os_string()]).collect();
            Workload { args, env, batch: Some(Batch { prepare: vec![init], clean: vec![repo] }), server: None }
        }
        "hugo" => {
            let site = scratch.join("hugo-site");
            generate_hugo_site(&site, 2_500)?;
            let public = scratch.join("hugo-public");
            let mut env = home;
            env.push(("LD_LIBRARY_PATH", installed.library_path().into()));
            let args = ["--quiet", "--noBuildLock", "--source"]
                .iter()
                .map(OsString::from)
                .chain([site.into_os_string(), "--destination".into(), public.clone().into_os_string()])
                .collect();
            Workload { args, env, batch: Some(Batch { prepare: vec![], clean: vec![public] }), server: None }
        }
        other => bail!("no workload for {other}"),
    })
}

fn lua(scratch: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = scratch.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// etcd v3 puts through its JSON gateway (gRPC inside), over 64 keys.
fn etcd_put_script() -> String {
    let keys: Vec<String> = (0..64).map(|i| format!("\"{}\"", base64(format!("bench/key{i:03}").as_bytes()))).collect();
    format!(
        "local keys = {{{}}}\nlocal n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(\"POST\", \"/v3/kv/put\", \
         {{[\"Content-Type\"] = \"application/json\"}}, '{{\"key\":\"' .. keys[n % #keys + 1] .. '\",\"value\":\"{}\"}}')\nend\n",
        keys.join(","),
        base64(b"value-value-value-value")
    )
}

/// InfluxDB line protocol: 20 points a request over 50 hosts and 4 regions.
const INFLUX_WRITE: &str = r#"local n = 0
request = function()
  n = n + 1
  local lines = {}
  for i = 1, 20 do
    lines[i] = string.format("cpu,host=h%d,region=r%d usage=%d.5,idle=%di %d", (n + i) % 50, i % 4, (n * 7 + i) % 100, i, 1600000000000000000 + n * 1000 + i)
  end
  return wrk.format("POST", "/write?db=bench", nil, table.concat(lines, "\n"))
end
"#;

/// Files, a directory listing and a gzip-encoded page, in turn.
const CADDY_GET: &str = r#"local paths = {"/", "/d0/", "/d1/f3.txt", "/d2/f7.txt", "/d3/f1.txt", "/d4/f9.txt"}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1], {["Accept-Encoding"] = "gzip"})
end
"#;

/// PromQL instant queries over its own metrics.
const PROMETHEUS_QUERY: &str = r#"local queries = {
  "up",
  "sum%20by%20(handler)%20(rate(prometheus_http_requests_total%5B30s%5D))",
  "topk(5,%20prometheus_tsdb_head_series)",
  "histogram_quantile(0.9,%20sum%20by%20(le)%20(rate(prometheus_http_request_duration_seconds_bucket%5B30s%5D)))",
}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/query?query=" .. queries[n % #queries + 1])
end
"#;

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Deterministic pseudo-random numbers (a 64-bit LCG): the same inputs every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

const WORDS: &[&str] = &["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "lambda", "sigma", "omega"];

/// Text of `len` bytes: words and numbers, compressible as real text is.
fn text(rng: &mut Lcg, len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        let r = rng.next();
        if r.is_multiple_of(3) {
            let _ = write!(s, "{} ", r % 100_000);
        } else {
            s.push_str(WORDS[(r % WORDS.len() as u64) as usize]);
            s.push(if r.is_multiple_of(17) { '\n' } else { ' ' });
        }
    }
    s
}

/// `dirs` directories of `files` files each, sizes drawn from `sizes`; kept once made.
fn generate_tree(root: &Path, dirs: usize, files: usize, sizes: std::ops::Range<usize>) -> Result<()> {
    let done = root.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(root);
    let mut rng = Lcg(1);
    for d in 0..dirs {
        let dir = root.join(format!("d{d}"));
        std::fs::create_dir_all(&dir)?;
        for f in 0..files {
            let len = sizes.start + (rng.next() as usize) % (sizes.end - sizes.start);
            std::fs::write(dir.join(format!("f{f}.txt")), text(&mut rng, len))?;
        }
    }
    std::fs::write(done, "")?;
    Ok(())
}

fn generate_site_files(root: &Path) -> Result<()> {
    generate_tree(root, 6, 12, 2_000..40_000)
}

/// A Hugo site of `pages` posts with tags, its own minimal layouts (no theme).
fn generate_hugo_site(root: &Path, pages: usize) -> Result<()> {
    let done = root.join(".complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(root);
    let posts = root.join("content/posts");
    let layouts = root.join("layouts/_default");
    std::fs::create_dir_all(&posts)?;
    std::fs::create_dir_all(&layouts)?;
    std::fs::write(root.join("config.toml"), "baseURL = 'http://127.0.0.1/'\ntitle = 'bench'\n[taxonomies]\ntag = 'tags'\n")?;
    std::fs::write(layouts.join("baseof.html"), "<html><head><title>{{ .Title }}</title></head><body>{{ block \"main\" . }}{{ end }}</body></html>\n")?;
    std::fs::write(
        layouts.join("single.html"),
        "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ .Content }}<p>{{ .WordCount }} words</p><ul>{{ range .Params.tags }}<li>{{ . }}</li>{{ end }}</ul>{{ end }}\n",
    )?;
    std::fs::write(
        layouts.join("list.html"),
        "{{ define \"main\" }}<ul>{{ range .Paginator.Pages }}<li><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a> {{ .Summary }}</li>{{ end }}</ul>{{ end }}\n",
    )?;
    let mut rng = Lcg(7);
    for i in 0..pages {
        let tags: Vec<String> = (0..3).map(|_| format!("\"{}\"", WORDS[(rng.next() % WORDS.len() as u64) as usize])).collect();
        let mut body = String::new();
        for p in 0..6 {
            let _ = writeln!(body, "## Part {p}\n\n{}\n\n- *{}* and **{}**\n", text(&mut rng, 600), WORDS[p], WORDS[(p + i) % WORDS.len()]);
        }
        std::fs::write(posts.join(format!("post-{i}.md")), format!("---\ntitle: \"Post {i}\"\ndate: 2024-01-{:02}\ntags: [{}]\n---\n\n{body}", i % 28 + 1, tags.join(", ")))?;
    }
    std::fs::write(done, "")?;
    Ok(())
}

/// One HTTP/1.0 request to 127.0.0.1:`port`; returns the status code.
pub fn http(port: u16, method: &str, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let line = String::from_utf8_lossy(&head);
    line.get(9..12).and_then(|c| c.parse().ok()).with_context(|| format!("not an HTTP status line: {line:?}"))
}

/// Waits until `port` answers `path` with 2xx, or `timeout`.
pub fn wait_ready(port: u16, path: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match http(port, "GET", path) {
            Ok(status) if (200..300).contains(&status) => return Ok(()),
            other if start.elapsed() > timeout => bail!("127.0.0.1:{port}{path} not ready after {timeout:?}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Fails when something already listens on `port` (another run, another program).
pub fn port_free(port: u16) -> Result<()> {
    ensure!(TcpStream::connect(("127.0.0.1", port)).is_err(), "127.0.0.1:{port} is already in use: stop what listens there");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_pads_as_the_standard_says() {
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"f"), "Zg==");
    }
}
