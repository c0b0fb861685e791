//! At-least-once delivery: positions move only for lines Loki acknowledged, and every client must
//! acknowledge a line before its position moves.

mod support;

use std::time::Duration;
use support::{audit_config, gen_audit, recorded_offset, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

/// Promtail's way (`wal.enabled: false`): lines wait in the log file while Loki refuses them.
#[test]
fn without_a_disk_queue_positions_do_not_move_while_loki_refuses() {
    let loki = FakeLoki::start();
    loki.script(&[503; 400]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 200, 41);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let text = std::fs::read_to_string(&config).unwrap() + "wal: {enabled: false}\n";
    std::fs::write(&config, text).unwrap();

    let port = support::enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    support::eventually(WAIT, "no retries seen", || loki.requests().len() >= 5);
    // The positions are written (every 200 ms) while Loki is down, and the file is read.
    support::eventually(WAIT, "no positions written", || {
        recorded_offset(dir.path(), &log).is_some()
    });
    support::wait_for_syncs(port, 3);
    lokiship.kill();
    assert_eq!(
        recorded_offset(dir.path(), &log).unwrap_or(0),
        0,
        "nothing was acknowledged, so nothing is committed"
    );
    assert!(loki.accepted().is_empty());

    // Loki is back: everything read before the crash is shipped after the restart.
    let fresh = FakeLoki::start();
    let config = audit_config(dir.path(), &log.display().to_string(), &fresh.url(), "");
    let text = std::fs::read_to_string(&config).unwrap() + "wal: {enabled: false}\n";
    std::fs::write(&config, text).unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    fresh.wait_for(WAIT, "all 200 entries", |r| r.len() >= lines.len());
    assert!(lokiship.terminate().success());
    assert_eq!(fresh.accepted().len(), lines.len());
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(recorded_offset(dir.path(), &log), Some(size));
}

/// Two clients, the second failing for about two seconds; `wal` is appended to the config.
/// Returns the position recorded while the second still fails, and checks that both Lokis get
/// every line once and the position reaches the end.
fn one_of_two_fails_for_a_while(wal: &str) -> u64 {
    let fast = FakeLoki::start();
    let slow = FakeLoki::start();
    // About two seconds of failures (backoff 20 ms doubling to 100 ms, with jitter).
    slow.script(&[503; 40]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 100, 42);
    let second = format!(
        "  - url: {}\n    batchwait: 100ms\n    backoff_config: {{min_period: 20ms, max_period: 100ms}}\n",
        slow.url()
    );
    let config = audit_config(dir.path(), &log.display().to_string(), &fast.url(), &second);
    let text = std::fs::read_to_string(&config).unwrap() + wal;
    std::fs::write(&config, text).unwrap();
    let port = support::enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    fast.wait_for(WAIT, "100 entries at the healthy Loki", |r| {
        r.len() >= lines.len()
    });
    // The positions saver (every 200 ms) has had its chances.
    support::wait_for_syncs(port, 3);
    assert!(
        slow.accepted().is_empty(),
        "the second Loki is still failing"
    );
    let while_failing = recorded_offset(dir.path(), &log).unwrap_or(0);
    slow.wait_for(WAIT, "100 entries at the recovered Loki", |r| {
        r.len() >= lines.len()
    });
    assert!(lokiship.terminate().success());
    assert_eq!(fast.accepted().len(), lines.len());
    assert_eq!(slow.accepted().len(), lines.len());
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(recorded_offset(dir.path(), &log), Some(size));
    while_failing
}

/// Promtail's way (`wal.enabled: false`): a line's position moves once every client delivered it.
#[test]
fn without_a_disk_queue_positions_wait_for_the_slowest_client() {
    assert_eq!(
        one_of_two_fails_for_a_while("wal: {enabled: false}\n"),
        0,
        "the second Loki has not acknowledged anything"
    );
}

/// lokiship's default with several clients: the failing client keeps the lines in its disk queue,
/// so the position moves (a rotated file may go) and the lines reach it once it is back.
#[test]
fn with_the_default_disk_queue_positions_move_while_a_client_fails() {
    assert!(
        one_of_two_fails_for_a_while("") > 0,
        "the lines are on the failing client's disk queue"
    );
}

#[test]
fn positions_follow_acknowledgements_so_a_crash_after_delivery_resends_nothing() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 500, 43);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    // A sync period far longer than the test: only acknowledgements can trigger the writes.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "positions.yaml, sync_period: 200ms}",
        "positions.yaml, sync_period: 1h}",
    );
    std::fs::write(&config, text).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();

    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "500 entries", |r| r.len() >= lines.len());
    support::eventually(
        Duration::from_secs(5),
        "positions not written after the acknowledgement",
        || recorded_offset(dir.path(), &log) == Some(size),
    );
    lokiship.kill();

    let port = support::enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    support::wait_for_syncs(port, 3);
    assert!(lokiship.terminate().success());
    assert_eq!(
        loki.accepted().len(),
        lines.len(),
        "nothing shipped twice after the crash"
    );
}
