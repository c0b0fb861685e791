//! Disk queues (`wal`): a dead Loki does not hold back the other client, what it could not take
//! waits on disk, and after a crash (SIGKILL) and a restart it is delivered — nothing lost.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;
use support::{
    blackhole, enable_server, gen_audit, http_get, recorded_offset, ConfigBuilder, FakeLoki,
    Lokiship,
};

const WAIT: Duration = Duration::from_secs(90);

/// Two clients, `first` and `second`; `wal` is the config's `wal:` block (none: lokiship's default).
fn config(dir: &std::path::Path, dead: &str, alive: &str, wal: Option<&str>) -> std::path::PathBuf {
    let mut config = ConfigBuilder::new(dir).default_poll();
    if let Some(wal) = wal {
        config = config.wal(wal);
    }
    config
        .client(dead, &[&["name: first"], &QUICK_TO_FAIL[..]].concat())
        .client(alive, &["name: second", "batchwait: 100ms"])
        .job("audit", "job: audit", &audit_log(dir), "")
        .write()
}

/// The one file the configs here tail.
fn audit_log(dir: &std::path::Path) -> String {
    format!("{}/audit.log", dir.display())
}

/// Settings of a client that gives up on a dead Loki quickly.
const QUICK_TO_FAIL: [&str; 3] = [
    "batchwait: 100ms",
    "timeout: 500ms",
    "backoff_config: {min_period: 20ms, max_period: 100ms}",
];

/// Without any `wal` block: with two clients lokiship keeps a disk queue by itself, beside the
/// positions file.
#[test]
fn a_dead_client_spills_to_disk_and_delivers_after_a_crash_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // ~5 MB in all: more than a client's 2 MiB memory queue.
    let lines = gen_audit(&dir.path().join("source.log"), 6000, 31);
    std::fs::write(&log, "").unwrap();
    let (_hole, dead) = blackhole();
    let alive = FakeLoki::start();
    let config = config(dir.path(), &dead, &alive.url(), None);
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    // Three waves of 2,000 lines; each reaches the live Loki although the other never answers
    // (without a disk queue the second wave would wait for the dead one forever).
    for (wave, chunk) in lines.chunks(2000).enumerate() {
        let written = std::time::Instant::now();
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for l in chunk {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        let want = (wave + 1) * 2000;
        alive.wait_for(WAIT, "the wave at the live Loki", |r| r.len() >= want);
        eprintln!(
            "wave {wave}: at the live Loki {:?} after writing",
            written.elapsed()
        );
    }
    let metrics = http_get(port, "/metrics").unwrap_or_default();
    let wal_bytes: f64 = metrics
        .lines()
        .find(|l| l.starts_with("lokiship_wal_bytes{host=\"first\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        wal_bytes > 1e6,
        "the dead client's lines are on disk: {wal_bytes} bytes"
    );
    assert!(
        dir.path().join("lokiship-wal/client-0-first").is_dir(),
        "the disk queue is beside the positions file"
    );
    lokiship.kill();
    let got: HashSet<String> = alive.accepted().into_iter().map(|r| r.line).collect();
    assert_eq!(
        got.len(),
        lines.len(),
        "the live client got every line while the other was dead"
    );

    // The first Loki comes back; lokiship restarts after the crash.
    let back = FakeLoki::start();
    let config = self::config(dir.path(), &back.url(), &alive.url(), None);
    let lokiship = Lokiship::start(&config, &[]);
    back.wait_for(WAIT, "every line at the Loki that was dead", |r| {
        r.iter().map(|e| &e.line).collect::<HashSet<_>>().len() >= lines.len()
    });
    assert!(lokiship.terminate().success());
    let delivered: HashSet<String> = back.accepted().into_iter().map(|r| r.line).collect();
    let lost: Vec<&String> = lines.iter().filter(|l| !delivered.contains(*l)).collect();
    assert!(lost.is_empty(), "{} lines lost", lost.len());
}

/// Writes `count` lines, ships them while the first client is dead and the second alive, stops
/// (SIGTERM), checks that the positions reached the end, restarts with the first Loki back, and
/// returns what it received and how many lines the live one received in all.
fn stop_while_one_is_dead_then_restart(count: usize, seed: u64, wal: Option<&str>) -> Shipped {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, count, seed);
    let (_hole, dead) = blackhole();
    let alive = FakeLoki::start();
    let wal = wal.map(|w| w.replace("DIR", &dir.path().display().to_string()));
    let config = config(dir.path(), &dead, &alive.url(), wal.as_deref());
    let lokiship = Lokiship::start(&config, &[]);
    alive.wait_for(WAIT, "every line at the live Loki", |r| {
        r.len() >= lines.len()
    });
    assert!(lokiship.terminate().success());
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(
        recorded_offset(dir.path(), &log),
        Some(size),
        "every line is delivered or on disk"
    );

    let back = FakeLoki::start();
    let config = self::config(dir.path(), &back.url(), &alive.url(), wal.as_deref());
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    back.wait_for(WAIT, "every line at the Loki that was dead", |r| {
        r.len() >= lines.len()
    });
    support::wait_for_syncs(port, 3);
    assert!(lokiship.terminate().success());
    Shipped {
        delivered: back.accepted().into_iter().map(|r| r.line).collect(),
        at_the_live_one: alive.accepted().len(),
        lines,
    }
}

struct Shipped {
    lines: Vec<String>,
    /// At the Loki that was dead, after the restart, in arrival order.
    delivered: Vec<String>,
    at_the_live_one: usize,
}

#[test]
fn stopping_moves_a_dead_clients_lines_to_disk_so_positions_reach_the_end() {
    // These lines fit in the dead client's memory queue: only stopping puts them on disk.
    let shipped =
        stop_while_one_is_dead_then_restart(1500, 33, Some("{enabled: true, dir: DIR/queues}"));
    let unique: HashSet<&String> = shipped.delivered.iter().collect();
    assert_eq!(
        unique.len(),
        shipped.lines.len(),
        "every line, from the disk queue"
    );
    assert_eq!(shipped.delivered.len(), shipped.lines.len(), "once");
    assert_eq!(
        shipped.at_the_live_one,
        shipped.lines.len(),
        "nothing read again after the restart"
    );
}

/// Stopping while the dead client spills: its memory queue holds lines older than those on disk.
/// After the restart they must reach Loki first, in the order they were written — sent after the
/// newer ones, Loki could refuse them as out of order.
#[test]
fn lines_held_in_memory_at_a_stop_are_sent_before_the_newer_ones_on_disk() {
    let Shipped {
        lines, delivered, ..
    } = stop_while_one_is_dead_then_restart(6000, 35, None);
    assert!(
        delivered == lines,
        "every line once, in the order written ({} delivered; first out of place at {:?})",
        delivered.len(),
        delivered.iter().zip(&lines).position(|(a, b)| a != b)
    );
}

/// While a Loki fails, no line waits only in memory: once a push failed, the lines the client
/// held are on its disk queue, so the positions reach the end — and the log file may be deleted
/// (rotated away) before a crash without losing them.
#[test]
fn a_failed_push_moves_held_lines_to_disk_so_a_deleted_file_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // Fits in the memory queue: only the failed push puts these lines on disk.
    let lines = gen_audit(&log, 800, 37);
    let (_hole, dead) = blackhole();
    let alive = FakeLoki::start();
    let config = config(dir.path(), &dead, &alive.url(), None);
    let lokiship = Lokiship::start(&config, &[]);
    alive.wait_for(WAIT, "every line at the live Loki", |r| {
        r.len() >= lines.len()
    });
    let size = std::fs::metadata(&log).unwrap().len();
    support::eventually(
        WAIT,
        "the position never reached the end while the first Loki was dead",
        || recorded_offset(dir.path(), &log) == Some(size),
    );
    std::fs::remove_file(&log).unwrap();
    lokiship.kill();

    let back = FakeLoki::start();
    let config = self::config(dir.path(), &back.url(), &alive.url(), None);
    let lokiship = Lokiship::start(&config, &[]);
    back.wait_for(WAIT, "every line at the Loki that was dead", |r| {
        r.len() >= lines.len()
    });
    assert!(lokiship.terminate().success());
    let delivered: Vec<String> = back.accepted().into_iter().map(|r| r.line).collect();
    assert!(delivered == lines, "every line once, in order");
}

fn one_client_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    ConfigBuilder::new(dir)
        .default_sync()
        .default_poll()
        .client(url, &QUICK_TO_FAIL)
        .job("audit", "job: audit", &audit_log(dir), "")
        .write()
}

/// Runs lokiship on `config` with `extra` until `until` holds; its log.
fn run_until(config: &std::path::Path, extra: &[&str], until: impl Fn() -> bool) -> String {
    let mut args = vec![format!("-config.file={}", config.display())];
    args.extend(extra.iter().map(|a| a.to_string()));
    let (status, log) = support::run_until(&args, until);
    assert!(status.success(), "{log}");
    log
}

#[test]
fn a_queue_stranded_by_a_fixed_url_is_named_and_can_be_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 300, 37);
    let size = std::fs::metadata(&log).unwrap().len();
    // A wrong URL: nothing answers; the lines go to the disk queue and the position moves.
    let (hole, wrong) = blackhole();
    let wrong_host = format!("127.0.0.1:{}", hole.local_addr().unwrap().port());
    let config = one_client_config(dir.path(), &wrong);
    run_until(&config, &[], || {
        recorded_offset(dir.path(), &log) == Some(size)
    });
    drop(hole);
    // The URL fixed: the old queue is reported with the exact name that would send it.
    let loki = FakeLoki::start();
    let config = one_client_config(dir.path(), &loki.url());
    gen_audit(&dir.path().join("more.log"), 1, 38);
    let more = std::fs::read_to_string(dir.path().join("more.log")).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(more.as_bytes())
        .unwrap();
    let new_lines = more.lines().count();
    let stderr = run_until(&config, &[], || loki.accepted().len() == new_lines);
    assert!(
        stderr.contains(&format!("set `name: \\\"{wrong_host}\\\"` on that client")),
        "{stderr}"
    );
    assert!(stderr.contains("-wal.adopt-orphaned-queues"), "{stderr}");
    // Adopted: the stranded lines reach the Loki the client now sends to, and the old queue goes.
    run_until(&config, &["-wal.adopt-orphaned-queues"], || {
        loki.accepted().len() == lines.len() + new_lines
    });
    let queues: Vec<_> = std::fs::read_dir(dir.path().join("lokiship-wal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(queues.len(), 1, "the orphaned queue is deleted: {queues:?}");
    let got: HashSet<String> = loki.accepted().into_iter().map(|e| e.line).collect();
    assert!(
        lines.iter().all(|l| got.contains(l)),
        "every stranded line arrived"
    );
}

#[test]
fn a_stop_sends_from_the_disk_queue_for_at_most_the_client_timeout_and_the_rest_at_the_next_start()
{
    // Kubernetes sends SIGKILL 30 s after SIGTERM: a stop must not try to empty a large disk
    // queue into a slow Loki first. What it leaves there is sent at the next start.
    let loki = FakeLoki::start();
    loki.slow_down(Duration::from_millis(200));
    loki.script(&[503; 2]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("line {i:05} {}", "x".repeat(180)))
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    let d = dir.path().display();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml, sync_period: 200ms}}
wal: {{enabled: true}}
clients:
  - url: {url}
    batchwait: 50ms
    batchsize: 4096
    timeout: 1s
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
scrape_configs:
  - job_name: app
    static_configs:
      - labels: {{job: app, __path__: "{d}/app.log"}}
"#,
            url = loki.url()
        ),
    )
    .unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    // Everything read and, after the failed pushes, on the disk queue: positions at the end.
    support::eventually(WAIT, "every line on the disk queue", || {
        recorded_offset(dir.path(), &log) == Some(size)
    });
    let stopping = std::time::Instant::now();
    assert!(lokiship.terminate().success());
    let stop_took = stopping.elapsed();
    let at_stop = loki.accepted().len();
    assert!(
        at_stop < lines.len(),
        "the stop emptied the whole disk queue into a slow Loki ({at_stop} entries, {stop_took:?})"
    );

    loki.slow_down(Duration::ZERO);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "every line after the restart", |r| {
        r.iter().map(|e| &e.line).collect::<HashSet<_>>().len() == lines.len()
    });
    assert!(lokiship.terminate().success());
    let received = loki.accepted();
    let batch_lines = 4096 / lines[0].len() + 1;
    assert!(
        received.len() - lines.len() <= batch_lines,
        "at most the batch in flight at the stop is sent twice: {} extra",
        received.len() - lines.len()
    );
}
