//! Test support: an in-process fake Loki that decodes the real wire format (snappy block + protobuf
//! `PushRequest`), answers with scripted status codes, and records what it accepted; plus helpers to
//! run the lokiship binary.
#![allow(dead_code)]

pub mod config;
pub mod docker;
pub mod gen;
pub mod journal;
pub mod peers;
pub mod pki;

pub use config::ConfigBuilder;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One entry as Loki stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub tenant: String,
    pub labels: String,
    pub ts_ns: i64,
    pub line: String,
    pub structured_metadata: Vec<(String, String)>,
}

/// One push request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
    pub received_at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    /// Statuses to answer before answering 204; each may carry a Retry-After.
    script: VecDeque<(u16, Option<u64>)>,
    requests: Vec<Request>,
    accepted: Vec<Received>,
    /// Each answer waits this long (a slow Loki).
    delay: Duration,
}

pub struct FakeLoki {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

/// Decodes a push body as Loki does: raw snappy, then protobuf.
pub fn decode(body: &[u8]) -> Result<lokiship::wire::logproto::PushRequest, String> {
    lokiship::wire::decode_push(body)
}

impl FakeLoki {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let app = axum::Router::new().route(
                "/loki/api/v1/push",
                axum::routing::post(
                    move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                        let st = st.clone();
                        async move {
                            let delay = st.lock().unwrap().delay;
                            tokio::time::sleep(delay).await;
                            handle(&st, headers, body.to_vec())
                        }
                    },
                ),
            );
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/loki/api/v1/push", self.addr)
    }

    /// Every answer from now on waits `delay`.
    pub fn slow_down(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    /// The next pushes get these statuses (then 204).
    pub fn script(&self, statuses: &[u16]) {
        let mut st = self.state.lock().unwrap();
        st.script.extend(statuses.iter().map(|&s| (s, None)));
    }

    /// Answers 204 again from now on.
    pub fn clear_script(&self) {
        self.state.lock().unwrap().script.clear();
    }

    pub fn script_with_retry_after(&self, status: u16, seconds: u64) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((status, Some(seconds)));
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.state.lock().unwrap().accepted.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until `cond` holds for the accepted entries, or panics after `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl Fn(&[Received]) -> bool) {
        eventually(timeout, what, || cond(&self.accepted()));
    }
}

fn handle(
    state: &Mutex<State>,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut st = state.lock().unwrap();
    let (status, retry_after) = st.script.pop_front().unwrap_or((204, None));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let decoded = lokiship::wire::decode_body(
        header("content-type"),
        header("content-encoding").eq_ignore_ascii_case("gzip"),
        &body,
    );
    let status = if decoded.is_err() { 400 } else { status };
    st.requests.push(Request {
        headers: headers.clone(),
        body: body.clone(),
        status,
        received_at: Instant::now(),
    });
    if status == 204 {
        let tenant = headers
            .iter()
            .find(|(k, _)| k == "x-scope-orgid")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for stream in decoded.unwrap().streams {
            for e in stream.entries {
                let (ts_ns, line, structured_metadata) = lokiship::wire::entry_parts(e);
                st.accepted.push(Received {
                    tenant: tenant.clone(),
                    labels: stream.labels.clone(),
                    ts_ns,
                    line,
                    structured_metadata,
                });
            }
        }
    }
    let mut resp = (
        axum::http::StatusCode::from_u16(status).unwrap(),
        if status == 400 {
            "entry for stream '{job=\"audit\"}' has timestamp too old"
        } else {
            ""
        },
    )
        .into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
    }
    resp
}

/// Nanoseconds since the epoch of an RFC 3339 time.
pub fn rfc3339_ns(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap()
}

/// The offset `dir/positions.yaml` records for `log`.
pub fn recorded_offset(dir: &Path, log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("positions.yaml")).ok()?;
    let key = format!("{}: '", log.display());
    let start = text.find(&key)? + key.len();
    text[start..].split('\'').next()?.parse().ok()
}

/// Whether `../shared/tools` (gen-logs, loki-sink) is beside the checkout; says so when not.
pub fn have_shared_tools() -> bool {
    let there = tools_dir().join("gen-logs").exists();
    if !there {
        skip(&format!(
            "{} is not there (this test needs gen-logs or loki-sink)",
            tools_dir().display()
        ));
    }
    there
}

/// Says why a test does not run. Under CI (`CI=true`, where `../shared` is beside the checkout)
/// a skipped test is a failure: what it guards would otherwise go unchecked without anyone seeing.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true, and this test would be skipped: {why}");
    }
    eprintln!("SKIP: {why}");
}

/// Returns from the test, with a message, when `../shared/tools` is not beside the checkout.
#[macro_export]
macro_rules! require_shared_tools {
    () => {
        if !support::have_shared_tools() {
            return;
        }
    };
}

/// The shared tools (gen-logs, loki-sink).
pub fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools")
}

/// Writes `lines` k8s audit events to `out` ([`gen::audit_lines`]); returns the lines.
pub fn gen_audit(out: &Path, lines: usize, seed: u64) -> Vec<String> {
    gen_logs("k8s-audit", out, lines, seed)
}

/// Writes `lines` lines of `kind` (k8s-audit, auditd, syslog) to `out`, made by [`gen`] from
/// `seed`; returns the lines.
pub fn gen_logs(kind: &str, out: &Path, lines: usize, seed: u64) -> Vec<String> {
    let made = match kind {
        "k8s-audit" => gen::audit_lines(lines, seed),
        "auditd" => gen::auditd_lines(lines, seed),
        "syslog" => gen::syslog_lines(lines, seed),
        other => panic!("no generator for {other}"),
    };
    gen::write_lines(out, &made);
    made
}

/// A push recorded from Promtail (`tests/data/...jsonl`, one JSON `[labels, line, timestamp]`
/// per entry), `path` relative to the repository.
pub fn recorded_push(path: &str) -> Vec<(String, String, i64)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A process (a shipper, or a program a test drives) killed when dropped.
pub struct Shipper(pub Child);

impl Drop for Shipper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `binary` (lokiship or Promtail) on `config` and waits for its `/ready` on `http_port`
/// (its receivers listen by then).
pub fn start_shipper(binary: &Path, config: &Path, http_port: u16) -> Shipper {
    let child = Command::new(binary)
        .arg(format!("-config.file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the shipper");
    let mut shipper = Shipper(child);
    eventually(Duration::from_secs(30), "the shipper's /ready", || {
        assert!(
            shipper.0.try_wait().unwrap().is_none(),
            "{} exited",
            binary.display()
        );
        http_get(http_port, "/ready")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"))
    });
    shipper
}

/// Runs `config/<preset>` unchanged with `-config.expand-env`: the environment points it at
/// `loki`, a positions file in `dir` and its server on 127.0.0.1:`port`, plus `env`.
pub fn start_preset(
    preset: &str,
    dir: &Path,
    loki: &FakeLoki,
    port: u16,
    env: &[(&str, String)],
) -> Shipper {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!(
            "-config.file={}",
            root.join("config").join(preset).display()
        ))
        .arg("-config.expand-env=true")
        .env("LOKI_URL", loki.url().trim_end_matches("/loki/api/v1/push"))
        .env("LOKI_TENANT", "")
        .env("CLUSTER", "test")
        .env("LOKISHIP_POSITIONS", dir.join("positions.yaml"))
        .env("LOKISHIP_LISTEN_ADDRESS", "127.0.0.1")
        .env("LOKISHIP_LISTEN_PORT", port.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Shipper)
        .expect("starting lokiship on a preset")
}

/// SIGTERM to a preset's shipper; it must exit 0 within 30 s.
pub fn stop_preset(mut shipper: Shipper) {
    signal(&shipper.0, "TERM");
    assert!(wait_timeout(&mut shipper.0, Duration::from_secs(30)).success());
}

/// A running lokiship process.
pub struct Lokiship {
    pub child: Child,
}

impl Lokiship {
    pub fn start(config: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(config, extra, &[])
    }

    /// Started with `env` added to the environment.
    pub fn start_with_env(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .arg(format!("-config.file={}", config.display()))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting lokiship");
        Self { child }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        wait_timeout(&mut self.child, Duration::from_secs(30))
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Lokiship {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lokiship did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config that tails `path_glob` with the audit pipeline and pushes to `url` (tenant `ops`),
/// and to the clients in `extra_client` (YAML list items).
pub fn audit_config(dir: &Path, path_glob: &str, url: &str, extra_client: &str) -> PathBuf {
    ConfigBuilder::new(dir)
        .client(
            url,
            &[
                "batchwait: 100ms",
                "tenant_id: ops",
                "backoff_config: {min_period: 20ms, max_period: 200ms, max_retries: 5}",
            ],
        )
        .raw_clients(extra_client)
        .job("audit", "job: audit", path_glob, config::AUDIT_STAGES)
        .write()
}

/// Turns on lokiship's HTTP server on 127.0.0.1 in a config written by [`audit_config`]; returns the port.
pub fn enable_server(config: &Path) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(config).unwrap().replace(
        "server: {disable: true}",
        &format!("server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}"),
    );
    std::fs::write(config, text).unwrap();
    port
}

/// A plain HTTP GET to lokiship's server; the whole response, headers included.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A plain HTTP POST to 127.0.0.1:`port`; the status and the response body.
pub fn http_post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    status_and_body(&out)
}

/// The status and body of a whole HTTP/1 response.
pub fn status_and_body(response: &str) -> Option<(u16, String)> {
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// The samples of metric `name` in the Prometheus text `text` whose labels contain `filter`.
pub fn metric_samples<'a>(
    text: &'a str,
    name: &'a str,
    filter: &'a str,
) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .filter(move |l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(move |l| l.contains(filter))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
}

/// How many full looks lokiship's file source has made (`lokiship_file_syncs_total` on `port`).
pub fn file_syncs(port: u16) -> Option<f64> {
    let text = http_get(port, "/metrics")?;
    let syncs = metric_samples(&text, "lokiship_file_syncs_total", "").next();
    syncs
}

/// Waits until lokiship's file source has made `n` more full looks, each of which looks at every
/// target and reads every open file: whatever it would do with the files as they are now, it has
/// done. What a test asserts did not happen, did not happen by then.
pub fn wait_for_syncs(port: u16, n: u32) {
    let start = {
        let mut first = None;
        eventually(Duration::from_secs(20), "lokiship's /metrics", || {
            first = file_syncs(port);
            first.is_some()
        });
        first.unwrap_or_default()
    };
    eventually(
        Duration::from_secs(20),
        &format!("{n} more syncs of the file source"),
        || file_syncs(port).is_some_and(|now| now >= start + f64::from(n)),
    );
}

/// Waits until `cond` holds, looking every 20 ms; panics naming `what` after `timeout`.
pub fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs lokiship with `args` until `until` holds, then stops it with SIGTERM; its exit status and
/// log (read as it comes: a full pipe would stop lokiship at its next log line).
pub fn run_until(args: &[String], until: impl Fn() -> bool) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting lokiship");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
        log
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while !until() {
        if Instant::now() > deadline {
            signal(&child, "TERM");
            let _ = wait_timeout(&mut child, Duration::from_secs(30));
            panic!(
                "not met within 90 s, with {args:?}; lokiship's log:\n{}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "TERM");
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    (status, reader.join().unwrap())
}

/// A port that was free a moment ago, on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP endpoint that accepts connections (the kernel's backlog) and never answers: a blackholed
/// Loki. Keep the listener alive as long as it should stay so.
pub fn blackhole() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/loki/api/v1/push", listener.local_addr().unwrap());
    (listener, url)
}
