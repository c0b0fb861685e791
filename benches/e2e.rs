//! End-to-end throughput: lokiship (release build) tails a k8s audit log made by gen-logs and pushes it
//! to an in-process receiver on 127.0.0.1 that decodes every push; the bench reports lokiship's CPU
//! seconds per GB read and its peak RSS, read from /proc while it runs.
//!
//!     cargo bench --bench e2e                       # 200,000 lines (~180 MB)
//!     LOKISHIP_BENCH_LINES=1000000 cargo bench --bench e2e
//!     LOKISHIP_BENCH_RATE=10000 cargo bench --bench e2e   # steady 10,000 lines/s: CPU % of a core
//!     LOKISHIP_BENCH_RATE=50000 LOKISHIP_BENCH_FILES=100 cargo bench --bench e2e
//!                                                   # the same spread over 100 files, with the lag
//!
//! The generated file is cached in target/bench-data/.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let lines: usize = env_or("LOKISHIP_BENCH_LINES", 200_000);
    let rate: usize = env_or("LOKISHIP_BENCH_RATE", 0);
    let files: usize = env_or("LOKISHIP_BENCH_FILES", 1).max(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data");
    std::fs::create_dir_all(&data).unwrap();
    let source = data.join(format!("audit-{lines}.log"));
    if !source.exists() {
        eprintln!("generating {lines} audit lines with gen-logs ...");
        let status = Command::new(root.join("../shared/tools/gen-logs"))
            .args([
                "k8s-audit",
                "--lines",
                &lines.to_string(),
                "--seed",
                "1",
                "--out",
            ])
            .arg(&source)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let expected = count_lines(&source);
    let bytes = std::fs::metadata(&source).unwrap().len();

    let received = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(start_receiver(received.clone()));

    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("audit.log");
    // Several files: audit-0.log, audit-1.log, ... (steady runs only).
    let glob = if files > 1 {
        work.path().join("audit-*.log")
    } else {
        log.clone()
    };
    let config = write_config(
        work.path(),
        &glob,
        &format!("http://{addr}/loki/api/v1/push"),
    );
    let binary = build_release(root);

    match std::num::NonZeroUsize::new(rate) {
        None => {
            // Other processes share the two cores: report each of three runs.
            for run in 1..=3 {
                received.store(0, Ordering::Relaxed);
                let _ = std::fs::remove_file(work.path().join("positions.yaml"));
                print!("run {run}: ");
                batch_run(&binary, &config, &source, &log, expected, bytes, &received);
            }
        }
        Some(rate) => {
            let logs: Vec<PathBuf> = if files > 1 {
                (0..files)
                    .map(|i| work.path().join(format!("audit-{i}.log")))
                    .collect()
            } else {
                vec![log]
            };
            steady_run(&binary, &config, &source, &logs, rate.get(), &received)
        }
    }
}

/// Ships the whole file as fast as possible: CPU seconds per GB and peak RSS.
fn batch_run(
    binary: &Path,
    config: &Path,
    source: &Path,
    log: &Path,
    expected: u64,
    bytes: u64,
    received: &AtomicU64,
) {
    std::fs::copy(source, log).unwrap();
    // Let the copy reach the disk first, so writeback does not run during the measurement.
    std::fs::File::open(log).unwrap().sync_all().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut child = spawn_lokiship(binary, config);
    let pid = child.id();
    let mut peak_rss = 0;
    while received.load(Ordering::Relaxed) < expected {
        peak_rss = peak_rss.max(rss_kb(pid, "VmHWM"));
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(900), "timed out");
    }
    let cpu = cpu_seconds(pid);
    peak_rss = peak_rss.max(rss_kb(pid, "VmHWM"));
    let wall = started.elapsed().as_secs_f64();
    stop(&mut child);
    let gb = bytes as f64 / 1e9;
    println!(
        "e2e batch: {expected} lines, {:.1} MB in {wall:.2} s wall ({:.0} MB/s, {:.0} lines/s); lokiship CPU {cpu:.2} s = {:.2} CPU-s/GB; peak RSS {:.1} MB",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / wall,
        expected as f64 / wall,
        cpu / gb,
        peak_rss as f64 / 1024.0
    );
}

/// Appends `rate` lines per second, spread over `logs`, for up to 20 s: lokiship's share of a core,
/// and how far delivery is behind writing (sampled every second: it must not grow).
fn steady_run(
    binary: &Path,
    config: &Path,
    source: &Path,
    logs: &[PathBuf],
    rate: usize,
    received: &AtomicU64,
) {
    for log in logs {
        std::fs::write(log, b"").unwrap();
    }
    let mut child = spawn_lokiship(binary, config);
    let pid = child.id();
    let text = std::fs::read_to_string(source).unwrap();
    let all: Vec<&str> = text.lines().collect();
    let seconds = 20usize.min(all.len() / rate).max(1);
    let mut files: Vec<std::fs::File> = logs
        .iter()
        .map(|l| std::fs::OpenOptions::new().append(true).open(l).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let cpu_start = cpu_seconds(pid);
    let started = Instant::now();
    let mut behind = Vec::new();
    // Write in 100 ms slices, as a busy API server does; with several files, each slice is spread
    // over all of them.
    for slice in 0..seconds * 10 {
        let chunk = &all[slice * rate / 10..(slice + 1) * rate / 10];
        let per_file = chunk.len().div_ceil(files.len()).max(1);
        for (lines, f) in chunk.chunks(per_file).zip(files.iter_mut()) {
            let mut buf = String::with_capacity(lines.len() * 1200);
            for l in lines {
                buf.push_str(l);
                buf.push('\n');
            }
            f.write_all(buf.as_bytes()).unwrap();
        }
        if slice % 10 == 9 {
            let written = ((slice + 1) * rate / 10) as u64;
            behind.push(written.saturating_sub(received.load(Ordering::Relaxed)));
        }
        let next = started + Duration::from_millis(100 * (slice as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let sent = (seconds * rate) as u64;
    let written_at = Instant::now();
    while received.load(Ordering::Relaxed) < sent {
        std::thread::sleep(Duration::from_millis(20));
    }
    let drained = written_at.elapsed().as_secs_f64();
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_start;
    let rss = rss_kb(pid, "VmHWM");
    stop(&mut child);
    println!(
        "e2e steady: {rate} lines/s over {} file(s) for {seconds} s: lokiship used {:.1} % of a core ({cpu:.2} CPU-s over {wall:.1} s); peak RSS {:.1} MB",
        logs.len(),
        100.0 * cpu / wall,
        rss as f64 / 1024.0
    );
    println!(
        "  lines written but not yet received, each second: {behind:?}; all received {drained:.2} s after the last write"
    );
}

fn spawn_lokiship(binary: &Path, config: &Path) -> std::process::Child {
    Command::new(binary)
        .arg(format!("-config.file={}", config.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGTERM, and wait for the exit.
fn stop(child: &mut std::process::Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64
}

/// The bench measures the optimized binary, whatever profile the bench itself was built with.
fn build_release(root: &Path) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "lokiship"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(status.success());
    root.join("target/release/lokiship")
}

fn write_config(dir: &Path, glob: &Path, url: &str) -> PathBuf {
    let config = format!(
        r#"server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: "{url}", tenant_id: bench}}]
scrape_configs:
  - job_name: kube-audit
    static_configs: [{{targets: [localhost], labels: {{job: kube-audit, __path__: "{log}"}}}}]
    pipeline_stages:
      - json: {{expressions: {{user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}}}
      - labels: {{user: "", verb: "", code: ""}}
      - structured_metadata: {{audit_id: ""}}
      - timestamp: {{source: ts, format: RFC3339Nano}}
"#,
        dir = dir.display(),
        log = glob.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

async fn start_receiver(received: Arc<AtomicU64>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/loki/api/v1/push",
        axum::routing::post(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
                received.fetch_add(count_entries(&raw), Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Counts the entries of a `PushRequest` by walking its wire format, so that the receiver takes
/// little of the CPU it shares with lokiship (decoding into structs doubled the noise).
fn count_entries(raw: &[u8]) -> u64 {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[*i];
            *i += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut n = 0;
    let mut i = 0;
    while i < raw.len() {
        let _key = varint(raw, &mut i);
        let len = varint(raw, &mut i) as usize;
        let stream = &raw[i..i + len];
        i += len;
        let mut j = 0;
        while j < stream.len() {
            let key = varint(stream, &mut j);
            let len = varint(stream, &mut j) as usize;
            j += len;
            if key >> 3 == 2 {
                n += 1;
            }
        }
    }
    n
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
