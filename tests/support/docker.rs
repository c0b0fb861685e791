//! A fake Docker daemon on a unix socket, speaking the part of the Engine API that Promtail's and
//! lokiship's Docker discovery use: `HEAD /_ping`, `GET /v*/containers/json` (with the `name` and
//! `label` filters), `/v*/networks`, `/v*/containers/<id>/json` and `/v*/containers/<id>/logs`
//! (multiplexed frames, or the raw stream of a TTY container; `since` honoured; `follow=1` keeps
//! the stream open and sends what is logged later until the container stops).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Message {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub ts_ns: i64,
    /// The message as the container wrote it, with its newline (none: a piece Docker cut).
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub labels: Vec<(String, String)>,
    /// `Ports` of the list, as JSON.
    pub ports: serde_json::Value,
    pub network_mode: String,
    /// (network name, network id, IP).
    pub networks: Vec<(String, String, String)>,
    pub tty: bool,
    pub running: bool,
    pub logs: Vec<Message>,
}

impl Container {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            labels: Vec::new(),
            ports: serde_json::json!([]),
            network_mode: "bridge".into(),
            networks: vec![("bridge".into(), "n-bridge".into(), "172.17.0.9".into())],
            tty: false,
            running: true,
            logs: Vec::new(),
        }
    }
}

#[derive(Default)]
struct State {
    containers: Vec<Container>,
    networks: serde_json::Value,
    requests: Vec<String>,
}

pub struct FakeDocker {
    pub socket: PathBuf,
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
}

impl FakeDocker {
    pub fn start(networks: serde_json::Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        Self::start_at(socket, networks, dir)
    }

    /// A daemon listening at `socket` (a path a shipper was told before it existed).
    pub fn start_at(socket: PathBuf, networks: serde_json::Value, dir: tempfile::TempDir) -> Self {
        let listener = UnixListener::bind(&socket).unwrap();
        let state = Arc::new(Mutex::new(State {
            networks,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &state);
                });
            }
        });
        Self {
            socket,
            state,
            _dir: dir,
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn add(&self, c: Container) {
        self.state.lock().unwrap().containers.push(c);
    }

    pub fn log(&self, id: &str, stream: u8, ts_ns: i64, text: &str) {
        let mut st = self.state.lock().unwrap();
        let c = st.containers.iter_mut().find(|c| c.id == id).unwrap();
        c.logs.push(Message {
            stream,
            ts_ns,
            text: text.to_string(),
        });
    }

    pub fn set_running(&self, id: &str, running: bool) {
        let mut st = self.state.lock().unwrap();
        st.containers
            .iter_mut()
            .find(|c| c.id == id)
            .unwrap()
            .running = running;
    }

    pub fn remove(&self, id: &str) {
        self.state.lock().unwrap().containers.retain(|c| c.id != id);
    }

    /// Every request line received so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(conn: UnixStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    state
        .lock()
        .unwrap()
        .requests
        .push(format!("{method} {target}"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = parse_query(query);
    let mut out = conn;
    if path.ends_with("/_ping") {
        return write_response(&mut out, 200, "text/plain", b"OK", method == "HEAD");
    }
    let path = strip_version(path);
    if path == "/containers/json" {
        let body = list(
            state,
            query
                .iter()
                .find(|(k, _)| k == "filters")
                .map(|(_, v)| v.as_str()),
        );
        return write_response(&mut out, 200, "application/json", body.as_bytes(), false);
    }
    if path == "/networks" {
        let body = state.lock().unwrap().networks.to_string();
        return write_response(&mut out, 200, "application/json", body.as_bytes(), false);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let ["containers", id, what] = segments.as_slice() {
        let found = state
            .lock()
            .unwrap()
            .containers
            .iter()
            .find(|c| c.id == *id)
            .cloned();
        let Some(c) = found else {
            return write_response(
                &mut out,
                404,
                "application/json",
                br#"{"message":"No such container"}"#,
                false,
            );
        };
        if *what == "json" {
            let body = serde_json::json!({"Id": c.id, "Name": c.name, "Config": {"Tty": c.tty}, "State": {"Running": c.running}});
            return write_response(
                &mut out,
                200,
                "application/json",
                body.to_string().as_bytes(),
                false,
            );
        }
        if *what == "logs" {
            let get = |k: &str| {
                query
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let since = parse_since(&get("since"));
            return stream_logs(&mut out, state, id, since, get("follow") == "1");
        }
    }
    write_response(
        &mut out,
        404,
        "application/json",
        br#"{"message":"page not found"}"#,
        false,
    )
}

fn strip_version(path: &str) -> &str {
    match path.strip_prefix("/v") {
        Some(rest) => rest.find('/').map_or(path, |i| &rest[i..]),
        None => path,
    }
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `since` as the daemon reads it: Unix seconds, with an optional fraction.
fn parse_since(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().unwrap_or(0);
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")[..9].parse().unwrap_or(0)
    };
    secs * 1_000_000_000 + nanos
}

fn list(state: &Mutex<State>, filters: Option<&str>) -> String {
    let filters: serde_json::Value = filters
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(serde_json::json!({}));
    let keys = |name: &str| -> Vec<String> {
        filters
            .get(name)
            .and_then(|m| m.as_object())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (names, labels) = (keys("name"), keys("label"));
    let st = state.lock().unwrap();
    let listed: Vec<serde_json::Value> = st
        .containers
        .iter()
        .filter(|c| c.running)
        .filter(|c| names.is_empty() || names.iter().any(|n| c.name.contains(n.as_str())))
        .filter(|c| {
            labels.iter().all(|want| match want.split_once('=') {
                Some((k, v)) => c.labels.iter().any(|(lk, lv)| lk == k && lv == v),
                None => c.labels.iter().any(|(lk, _)| lk == want),
            })
        })
        .map(|c| {
            let networks: serde_json::Map<String, serde_json::Value> = c
                .networks
                .iter()
                .map(|(name, id, ip)| {
                    (
                        name.clone(),
                        serde_json::json!({"NetworkID": id, "IPAddress": ip}),
                    )
                })
                .collect();
            let labels: serde_json::Map<String, serde_json::Value> = c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                .collect();
            serde_json::json!({
                "Id": c.id, "Names": [c.name], "Image": "img", "Labels": labels, "State": "running",
                "Ports": c.ports, "HostConfig": {"NetworkMode": c.network_mode},
                "NetworkSettings": {"Networks": networks},
            })
        })
        .collect();
    serde_json::Value::Array(listed).to_string()
}

fn write_response(
    out: &mut UnixStream,
    status: u16,
    kind: &str,
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status} X\r\nApi-Version: 1.43\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()
}

/// Docker's log timestamp: RFC 3339 with nine fraction digits, UTC.
pub fn docker_time(ts_ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ts_ns);
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn encode(m: &Message, tty: bool) -> Vec<u8> {
    let payload = format!("{} {}", docker_time(m.ts_ns), m.text);
    if tty {
        return payload.into_bytes();
    }
    let mut f = vec![m.stream, 0, 0, 0];
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload.as_bytes());
    f
}

fn stream_logs(
    out: &mut UnixStream,
    state: &Mutex<State>,
    id: &str,
    since: i64,
    follow: bool,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let mut sent = 0;
    loop {
        let (pending, running, tty) = {
            let st = state.lock().unwrap();
            match st.containers.iter().find(|c| c.id == id) {
                Some(c) => (c.logs[sent..].to_vec(), c.running, c.tty),
                None => (Vec::new(), false, false),
            }
        };
        sent += pending.len();
        let mut chunk = Vec::new();
        for m in pending.iter().filter(|m| m.ts_ns >= since) {
            chunk.extend(encode(m, tty));
        }
        if !chunk.is_empty() {
            write!(out, "{:x}\r\n", chunk.len())?;
            out.write_all(&chunk)?;
            out.write_all(b"\r\n")?;
            out.flush()?;
        }
        if !follow || !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// Where the socket is, for configs.
pub fn socket_dir(d: &FakeDocker) -> &Path {
    d.socket.parent().unwrap()
}
