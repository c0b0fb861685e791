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
use support::{free_port, http_post, tools_dir, Lokiship};

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

fn verify(dir: &Path, record: &str, no_duplicates: bool) -> (bool, String) {
    let mut cmd = Command::new(tools_dir().join("loki-sink"));
    cmd.arg("verify")
        .arg("--manifest")
        .arg(dir.join("ids.txt"))
        .arg("--record")
        .arg(dir.join(record));
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
    /// `wal: {enabled: true}` (its `drop_oldest` default); else lokiship's default disk queue.
    wal: bool,
    /// A second client, to a second loki-sink with these faults.
    second: Option<&'a [&'a str]>,
}

fn soak(style: &str, kills: usize) {
    run(Soak {
        style,
        kills,
        faults: &[],
        max_backups: 0,
        wal: false,
        second: None,
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
        second,
    } = soak;
    let lines: usize = std::env::var("LOKISHIP_SOAK_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_000);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let sink = Sink::start(&d.join("rec.jsonl"), faults);
    let second = second.map(|faults| Sink::start(&d.join("rec2.jsonl"), faults));
    let second_client = second.as_ref().map_or(String::new(), |s| {
        format!(
            r#"  - url: "http://127.0.0.1:{}/loki/api/v1/push"
    tenant_id: soak
    batchwait: 200ms
    backoff_config: {{min_period: 100ms, max_period: 1s}}
"#,
            s.port
        )
    });
    // Without `wal: true`, lokiship's default disk queue (beside the positions file).
    let wal = if wal {
        format!("wal: {{enabled: true, dir: {}/wal}}", d.display())
    } else {
        String::new()
    };
    let config = d.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
target_config: {{sync_period: 1s}}
{wal}
clients:
  - url: "http://127.0.0.1:{port}/loki/api/v1/push"
    tenant_id: soak
    batchwait: 200ms
    backoff_config: {{min_period: 100ms, max_period: 1s}}
{second_client}scrape_configs:
  - job_name: audit
    static_configs: [{{targets: [localhost], labels: {{job: audit, __path__: "{d}/logs/audit*"}}}}]
    pipeline_stages:
      - json: {{expressions: {{verb: verb, code: responseStatus.code}}}}
      - labels: {{verb: "", code: ""}}
"#,
            d = d.display(),
            port = sink.port,
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

    let records: &[&str] = if second.is_some() {
        &["rec.jsonl", "rec2.jsonl"]
    } else {
        &["rec.jsonl"]
    };
    for record in records {
        let deadline = Instant::now() + Duration::from_secs(120);
        let (ok, report) = loop {
            let (ok, report) = verify(d, record, kills == 0);
            if ok || Instant::now() > deadline {
                break (ok, report);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        eprintln!("soak {style}, {kills} kills, faults {faults:?}, {record}: {report}");
        assert!(ok, "{style} with {kills} kills, {record}: {report}");
    }
    assert!(lokiship.terminate().success());
}

#[test]
fn rename_rotation_without_kills_loses_and_duplicates_nothing() {
    require_shared_tools!();
    soak("rename", 0);
}

#[test]
fn rename_rotation_with_kills_loses_nothing() {
    require_shared_tools!();
    soak("rename", 3);
}

#[test]
fn create_rotation_without_kills_loses_and_duplicates_nothing() {
    require_shared_tools!();
    soak("create", 0);
}

#[test]
fn create_rotation_with_kills_loses_nothing() {
    require_shared_tools!();
    soak("create", 3);
}

#[test]
fn copytruncate_without_kills_loses_and_duplicates_nothing() {
    require_shared_tools!();
    soak("copytruncate", 0);
}

#[test]
fn copytruncate_with_kills_loses_nothing() {
    require_shared_tools!();
    soak("copytruncate", 3);
}

/// Loki is down for 6 s while files rotate and rotated files are deleted (one backup kept): the
/// deleted files are still read through their open descriptors once Loki is back.
#[test]
fn loki_outage_with_rotation_and_deletion_loses_and_duplicates_nothing() {
    require_shared_tools!();
    run(Soak {
        style: "rename",
        kills: 0,
        faults: &["--down-after", "3", "--down-for", "6"],
        max_backups: 1,
        wal: false,
        second: None,
    });
}

/// A fault drill with the disk queue on: 30 % of pushes refused with 429 and Retry-After, 20 ms of
/// latency, an outage (12 s) longer than the whole retry schedule (10 retries at most 1 s apart)
/// while files rotate, and a SIGKILL: nothing lost.
#[test]
fn fault_drill_with_disk_queue_loses_nothing() {
    require_shared_tools!();
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
        second: None,
    });
}

/// The faults one at a time, each with the disk queue on and a SIGKILL: 503s on 30 % of pushes;
/// 429 with Retry-After on 30 %; 300 ms per push. Nothing lost in any. (Outages longer than the
/// retry schedule: the drill above and the two-Loki drill below.)
#[test]
fn each_fault_alone_with_disk_queue_loses_nothing() {
    require_shared_tools!();
    let drills: [&[&str]; 3] = [
        &["--fail-rate", "0.3", "--fail-status", "503"],
        &[
            "--fail-rate",
            "0.3",
            "--fail-status",
            "429",
            "--retry-after",
            "1",
        ],
        &["--latency-ms", "300"],
    ];
    for faults in drills {
        run(Soak {
            style: "rename",
            kills: 1,
            faults,
            max_backups: 0,
            wal: true,
            second: None,
        });
    }
}

/// Two Lokis, the first down for 20 s (longer than the retry schedule), no `wal` block: the disk
/// queue lokiship keeps by itself for several clients carries the first through the outage while
/// the second gets everything as it comes, through a SIGKILL too. Nothing lost at either.
#[test]
fn two_lokis_one_down_longer_than_the_retries_lose_nothing() {
    require_shared_tools!();
    run(Soak {
        style: "create",
        kills: 1,
        faults: &["--down-after", "3", "--down-for", "20"],
        max_backups: 0,
        wal: false,
        second: Some(&[]),
    });
}

/// Pushed lines through a flaky Loki: a sender pushes gen-logs lines (200 a request, retrying
/// until it gets a 204, as Promtail does) to lokiship's `loki_push_api` while loki-sink refuses
/// 20 % of pushes and goes down for 12 s, and lokiship is SIGKILLed halfway. A 204 must have meant
/// safe on disk: nothing lost.
#[test]
fn push_receiver_drill_loses_nothing() {
    require_shared_tools!();
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sink = Sink::start(
        &d.join("rec.jsonl"),
        &[
            "--fail-rate",
            "0.2",
            "--fail-status",
            "503",
            "--down-after",
            "10",
            "--down-for",
            "12",
        ],
    );
    let status = Command::new(tools_dir().join("gen-logs"))
        .args(["k8s-audit", "--lines", "8000", "--seed", "41", "--manifest"])
        .arg(d.join("ids.txt"))
        .arg("--out")
        .arg(d.join("source.log"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let lines: Vec<String> = std::fs::read_to_string(d.join("source.log"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let push_port = free_port();
    let config = d.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients:
  - url: "http://127.0.0.1:{port}/loki/api/v1/push"
    name: sink
    batchwait: 200ms
    backoff_config: {{min_period: 100ms, max_period: 1s}}
scrape_configs:
  - job_name: pushed
    loki_push_api:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {push_port}}}
"#,
            d = d.display(),
            port = sink.port,
        ),
    )
    .unwrap();
    let mut lokiship = Lokiship::start(&config, &[]);
    let requests: Vec<&[String]> = lines.chunks(200).collect();
    let (mut refused, mut killed) = (0, false);
    for (i, chunk) in requests.iter().enumerate() {
        if i == requests.len() / 2 && !killed {
            lokiship.kill();
            lokiship = Lokiship::start(&config, &[]);
            killed = true;
        }
        let entries = chunk
            .iter()
            .map(|l| lokiship::wire::entry_adapter(0, l.clone(), Vec::new()))
            .collect();
        let body = lokiship::wire::encode_push(vec![lokiship::wire::logproto::StreamAdapter {
            labels: r#"{job="pushed"}"#.into(),
            entries,
            hash: 0,
        }]);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answer = http_post(
                push_port,
                "/loki/api/v1/push",
                &[("Content-Type", "application/x-protobuf")],
                &body,
            );
            if answer.as_ref().is_some_and(|(status, _)| *status == 204) {
                break;
            }
            refused += 1;
            assert!(
                Instant::now() < deadline,
                "request {i} never accepted: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (ok, report) = loop {
        let (ok, report) = verify(d, "rec.jsonl", false);
        if ok || Instant::now() > deadline {
            break (ok, report);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(lokiship.terminate().success());
    eprintln!("push drill ({refused} attempts the sender had to repeat): {report}");
    assert!(ok, "{report}");
}
