//! End-to-end throughput: lokiship (built with the bench profile, i.e. release settings) tails logs made by gen-logs and pushes them to an
//! in-process receiver on 127.0.0.1 that counts every entry of every push; the bench reports lines/s,
//! MB/s of input, lokiship's CPU seconds per GB and peak RSS (from /proc), the lines received (must
//! equal the lines written), and the receiver's own CPU, to show it is not the bottleneck.
//!
//!     cargo bench --bench e2e                                  # 1,000,000 audit lines (~880 MB), one file
//!     LOKISHIP_BENCH_LINES=200000 cargo bench --bench e2e      # shorter
//!     LOKISHIP_BENCH_FILES=100 cargo bench --bench e2e         # the same lines in 100 files
//!     LOKISHIP_BENCH_KIND=syslog cargo bench --bench e2e       # syslog lines, regex pipeline
//!     LOKISHIP_BENCH_KIND=journal LOKISHIP_BENCH_LINES=300000 cargo bench --bench e2e
//!                                                              # the journal, through journalctl
//!     LOKISHIP_BENCH_KIND=syslog-tcp LOKISHIP_BENCH_LINES=500000 cargo bench --bench e2e
//!     LOKISHIP_BENCH_KIND=syslog-udp LOKISHIP_BENCH_LINES=500000 cargo bench --bench e2e
//!                                                              # the syslog receiver
//!     LOKISHIP_BENCH_KIND=backfill cargo bench --bench e2e     # lokiship backfill of the audit
//!                                                              # lines gzip'ed, beside plain
//!     LOKISHIP_BENCH_KIND=webhook LOKISHIP_BENCH_LINES=200000 cargo bench --bench e2e
//!                                                              # the audit webhook, 200 after fsync
//!     LOKISHIP_BENCH_RATE=10000 cargo bench --bench e2e        # append 10,000 lines/s for 20 s:
//!                                                              # CPU % of a core, append→received latency
//!     LOKISHIP_BENCH_RATE=50000 LOKISHIP_BENCH_FILES=100 cargo bench --bench e2e
//!
//! Generated logs are cached in target/bench-data/. `LOKISHIP_BENCH_BINARY=path` measures another
//! build (e.g. an older commit's) with the same harness.

#[path = "e2e/backfill.rs"]
mod backfill;
#[path = "e2e/journal.rs"]
mod journal;
#[path = "e2e/syslog_receiver.rs"]
mod syslog_receiver;
#[path = "e2e/webhook.rs"]
mod webhook;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let lines: usize = env_or("LOKISHIP_BENCH_LINES", 1_000_000);
    let rate: usize = env_or("LOKISHIP_BENCH_RATE", 0);
    let files: usize = env_or("LOKISHIP_BENCH_FILES", 1).max(1);
    let kind = std::env::var("LOKISHIP_BENCH_KIND").unwrap_or_else(|_| "k8s-audit".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data");
    std::fs::create_dir_all(&data).unwrap();
    if kind == "journal" || kind.starts_with("syslog-") {
        return bench_source(&kind, &data, lines);
    }
    let (backfill, webhook) = (kind == "backfill", kind == "webhook");
    let kind = if backfill || webhook {
        "k8s-audit".into()
    } else {
        kind
    };
    let source = data.join(format!("{kind}-{lines}.log"));
    if !source.exists() {
        eprintln!("generating {lines} {kind} lines with gen-logs ...");
        let status = Command::new(root.join("../shared/tools/gen-logs"))
            .args([&kind, "--lines", &lines.to_string(), "--seed", "1", "--out"])
            .arg(&source)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    let received = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(start_receiver(received.clone()));
    let url = format!("http://{addr}/loki/api/v1/push");
    if backfill {
        return backfill::run(&bench_binary(), &source, &url, &received);
    }
    if webhook {
        return webhook::run(&bench_binary(), &source, &url, lines, &received);
    }

    let work = tempfile::tempdir().unwrap();
    let logs: Vec<PathBuf> = (0..files)
        .map(|i| work.path().join(format!("bench-{i}.log")))
        .collect();
    let config = write_config(work.path(), &work.path().join("bench-*.log"), &url, &kind);
    let binary = bench_binary();

    match std::num::NonZeroUsize::new(rate) {
        None => {
            split_into(&source, &logs);
            let expected = logs.iter().map(|l| count_lines(l)).sum::<u64>();
            let bytes = logs
                .iter()
                .map(|l| std::fs::metadata(l).unwrap().len())
                .sum::<u64>();
            // Other processes share the two cores: report each of three runs.
            for run in 1..=3 {
                received.store(0, Ordering::Relaxed);
                let _ = std::fs::remove_file(work.path().join("positions.yaml"));
                print!("run {run}: ");
                batch_run(&binary, &config, expected, bytes, files, &received);
            }
        }
        Some(rate) => steady_run(&binary, &config, &source, &logs, rate.get(), &received),
    }
}

/// The lokiship measured: `LOKISHIP_BENCH_BINARY`, else the one Cargo builds with the bench
/// profile (release settings) for this bench.
fn bench_binary() -> PathBuf {
    std::env::var_os("LOKISHIP_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lokiship")))
}

/// The journal, or the syslog receiver (`syslog-tcp`, `syslog-udp`), into the counting receiver.
fn bench_source(kind: &str, data: &Path, lines: usize) {
    let received = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(start_receiver(received.clone()));
    let binary = bench_binary();
    let url = format!("http://{addr}/loki/api/v1/push");
    match kind {
        "journal" => journal::run(&binary, data, &url, lines, &received),
        "syslog-tcp" => syslog_receiver::run(&binary, &url, false, lines, &received),
        "syslog-udp" => syslog_receiver::run(&binary, &url, true, lines, &received),
        other => panic!("LOKISHIP_BENCH_KIND={other}: journal, syslog-tcp or syslog-udp"),
    }
}

/// Copies `source` into `logs`: consecutive slices of lines, one per file.
fn split_into(source: &Path, logs: &[PathBuf]) {
    let text = std::fs::read(source).unwrap();
    let per_file = text.len() / logs.len() + 1;
    let mut rest = &text[..];
    for log in logs {
        let mut end = per_file.min(rest.len());
        while end < rest.len() && rest[end - 1] != b'\n' {
            end += 1;
        }
        let mut f = std::fs::File::create(log).unwrap();
        f.write_all(&rest[..end]).unwrap();
        // On disk before the measurement, so writeback does not run during it.
        f.sync_all().unwrap();
        rest = &rest[end..];
    }
    std::thread::sleep(Duration::from_millis(500));
}

/// Ships the files as fast as possible: throughput, CPU seconds per GB and peak RSS.
fn batch_run(
    binary: &Path,
    config: &Path,
    expected: u64,
    bytes: u64,
    files: usize,
    received: &AtomicU64,
) {
    let own = std::process::id();
    let receiver_cpu_start = cpu_seconds(own);
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
    let receiver_cpu = cpu_seconds(own) - receiver_cpu_start;
    peak_rss = peak_rss.max(rss_kb(pid, "VmHWM"));
    let wall = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let got = received.load(Ordering::Relaxed);
    stop(&mut child);
    let gb = bytes as f64 / 1e9;
    println!(
        "e2e batch: {expected} lines in {files} file(s), {:.1} MB in {wall:.2} s wall ({:.0} MB/s, {:.0} lines/s); lokiship CPU {cpu:.2} s = {:.2} CPU-s/GB; peak RSS {:.1} MB; received {got} lines{}; receiver busy {:.0} % of a core",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / wall,
        expected as f64 / wall,
        cpu / gb,
        peak_rss as f64 / 1024.0,
        if got == expected { "" } else { " (MISMATCH)" },
        100.0 * receiver_cpu / wall,
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
    received: &Arc<AtomicU64>,
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
    // When each count of lines was received, sampled every 5 ms: with when each slice was written,
    // the latency from append to received by Loki.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let received = received.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                samples.push((Instant::now(), received.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        })
    };
    let mut written_at = Vec::new();
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
        written_at.push((Instant::now(), ((slice + 1) * rate / 10) as u64));
        if slice % 10 == 9 {
            let written = ((slice + 1) * rate / 10) as u64;
            behind.push(written.saturating_sub(received.load(Ordering::Relaxed)));
        }
        let next = started + Duration::from_millis(100 * (slice as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let sent = (seconds * rate) as u64;
    let written_at_end = Instant::now();
    while received.load(Ordering::Relaxed) < sent {
        std::thread::sleep(Duration::from_millis(20));
    }
    let drained = written_at_end.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let mut latencies: Vec<f64> = written_at
        .iter()
        .filter_map(|&(at, count)| {
            let (got_at, _) = samples.iter().find(|(_, got)| *got >= count)?;
            Some(got_at.saturating_duration_since(at).as_secs_f64())
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
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
    println!(
        "  append → received latency (batchwait 1s): p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        pct(0.5),
        pct(0.99),
        pct(1.0)
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

fn write_config(dir: &Path, glob: &Path, url: &str, kind: &str) -> PathBuf {
    let stages = if kind == "syslog" {
        r#"      - regex: {expression: '^(?P<ts>\w{3} +\d+ \d\d:\d\d:\d\d) (?P<host>\S+) (?P<app>[^\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$'}
      - labels: {host: "", app: ""}
      - structured_metadata: {pid: ""}
      - timestamp: {source: ts, format: Stamp, location: UTC}"#
    } else {
        r#"      - json: {expressions: {user: user.username, verb: verb, code: responseStatus.code, ts: stageTimestamp, audit_id: auditID}}
      - labels: {user: "", verb: "", code: ""}
      - structured_metadata: {audit_id: ""}
      - timestamp: {source: ts, format: RFC3339Nano}"#
    };
    let config = format!(
        r#"server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: "{url}", tenant_id: bench}}]
scrape_configs:
  - job_name: bench
    static_configs: [{{targets: [localhost], labels: {{job: bench, __path__: "{glob}"}}}}]
    pipeline_stages:
{stages}
"#,
        dir = dir.display(),
        glob = glob.display()
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
