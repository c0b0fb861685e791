//! Soak: gen-logs writes audit logs with rotation (every style) while lokiship ships them to the
//! independent `loki-sink` (../shared/tools), and is killed with SIGKILL and restarted along the
//! way, or Loki goes down for a while; `loki-sink verify` must then report nothing lost (and,
//! without kills, nothing duplicated).
//!
//! Short in CI; `LOKISHIP_SOAK_LINES=400000` makes it long.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{tools_dir, Lokiship};

struct Sink {
    child: Child,
    port: u16,
}

impl Sink {
    fn start(record: &Path, faults: &[&str]) -> Self {
        let mut child = Command::new(tools_dir().join("loki-sink"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0", "--record"])
            .arg(record)
            .args(faults)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting loki-sink");
        let mut first = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("loki-sink port");
        Self { child, port }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn verify(dir: &Path, no_duplicates: bool) -> (bool, String) {
    let mut cmd = Command::new(tools_dir().join("loki-sink"));
    cmd.arg("verify")
        .arg("--manifest")
        .arg(dir.join("ids.txt"))
        .arg("--record")
        .arg(dir.join("rec.jsonl"));
    if no_duplicates {
        cmd.arg("--no-duplicates");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// One soak run: `kills` SIGKILLs spread over the run, `faults` for loki-sink, `max_backups` for
/// gen-logs (0 keeps every rotated file; 1 deletes them soon, so only open descriptors keep them).
struct Soak<'a> {
    style: &'a str,
    kills: usize,
    faults: &'a [&'a str],
    max_backups: usize,
    /// Gives the client a disk queue (`wal`).
    wal: bool,
}

fn soak(style: &str, kills: usize) {
    run(Soak {
        style,
        kills,
        faults: &[],
        max_backups: 0,
        wal: false,
    })
}

/// One soak at a time: seven of them at once (each with gen-logs and loki-sink in Python) overload
/// two cores, and the timing a soak depends on (how much is in flight at a kill) would be the load's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(soak: Soak) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Soak {
        style,
        kills,
        faults,
        max_backups,
        wal,
    } = soak;
    let lines: usize = std::env::var("LOKISHIP_SOAK_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let sink = Sink::start(&d.join("rec.jsonl"), faults);
    let config = d.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
target_config: {{sync_period: 1s}}
wal: {{enabled: {wal}, dir: {d}/wal}}
clients:
  - url: "http://127.0.0.1:{port}/loki/api/v1/push"
    tenant_id: soak
    batchwait: 200ms
    backoff_config: {{min_period: 100ms, max_period: 1s}}
scrape_configs:
  - job_name: audit
    static_configs: [{{targets: [localhost], labels: {{job: audit, __path__: "{d}/logs/audit*"}}}}]
    pipeline_stages:
      - json: {{expressions: {{verb: verb, code: responseStatus.code}}}}
      - labels: {{verb: "", code: ""}}
"#,
            d = d.display(),
            port = sink.port,
            wal = wal
        ),
    )
    .unwrap();

    let mut lokiship = Lokiship::start(&config, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let mut gen = Command::new(tools_dir().join("gen-logs"))
        .args([
            "k8s-audit",
            "--lines",
            &lines.to_string(),
            "--rate",
            "4000",
            "--rotate-bytes",
            "2000000",
        ])
        .args(["--max-backups", &max_backups.to_string()])
        .args(["--rotate-style", style, "--manifest"])
        .arg(d.join("ids.txt"))
        .arg("--out")
        .arg(d.join("logs/audit.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let run_for = Duration::from_millis((lines as u64 * 1000 / 4000) / (kills as u64 + 1));
    for _ in 0..kills {
        std::thread::sleep(run_for);
        lokiship.kill();
        lokiship = Lokiship::start(&config, &[]);
    }
    assert!(gen.wait().unwrap().success());

    let deadline = Instant::now() + Duration::from_secs(120);
    let (ok, report) = loop {
        let (ok, report) = verify(d, kills == 0);
        if ok || Instant::now() > deadline {
            break (ok, report);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(lokiship.terminate().success());
    eprintln!("soak {style}, {kills} kills: {report}");
    assert!(ok, "{style} with {kills} kills: {report}");
}

#[test]
fn rename_rotation_without_kills_loses_and_duplicates_nothing() {
    soak("rename", 0);
}

#[test]
fn rename_rotation_with_kills_loses_nothing() {
    soak("rename", 3);
}

#[test]
fn create_rotation_without_kills_loses_and_duplicates_nothing() {
    soak("create", 0);
}

#[test]
fn create_rotation_with_kills_loses_nothing() {
    soak("create", 3);
}

#[test]
fn copytruncate_without_kills_loses_and_duplicates_nothing() {
    soak("copytruncate", 0);
}

#[test]
fn copytruncate_with_kills_loses_nothing() {
    soak("copytruncate", 3);
}

/// Loki is down for 6 s while files rotate and rotated files are deleted (one backup kept): the
/// deleted files are still read through their open descriptors once Loki is back.
#[test]
fn loki_outage_with_rotation_and_deletion_loses_and_duplicates_nothing() {
    run(Soak {
        style: "rename",
        kills: 0,
        faults: &["--down-after", "3", "--down-for", "6"],
        max_backups: 1,
        wal: false,
    });
}

/// A fault drill with the disk queue on: 30 % of pushes refused with 429 and Retry-After, 20 ms of
/// latency, an outage (12 s) longer than the whole retry schedule (10 retries at most 1 s apart)
/// while files rotate, and a SIGKILL: nothing lost.
#[test]
fn fault_drill_with_disk_queue_loses_nothing() {
    run(Soak {
        style: "rename",
        kills: 1,
        faults: &[
            "--fail-rate",
            "0.3",
            "--fail-status",
            "429",
            "--retry-after",
            "1",
            "--latency-ms",
            "20",
            "--down-after",
            "5",
            "--down-for",
            "12",
        ],
        max_backups: 0,
        wal: true,
    });
}
