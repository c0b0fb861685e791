//! End to end: lokiship tails audit logs made by gen-logs and ships them to a fake Loki.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;
use support::{audit_config, enable_server, gen_audit, http_get, FakeLoki, Lokiship, Received};

const WAIT: Duration = Duration::from_secs(60);

/// How often each line arrived.
fn counts(received: &[Received]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in received {
        *m.entry(r.line.clone()).or_insert(0) += 1;
    }
    m
}

fn json_field<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn assert_all_once(lines: &[String], received: &[Received]) {
    let counts = counts(received);
    let lost: Vec<_> = lines.iter().filter(|l| !counts.contains_key(*l)).collect();
    assert!(lost.is_empty(), "{} lines lost", lost.len());
    let dups: usize = counts.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    assert_eq!(dups, 0, "duplicated lines");
    assert_eq!(received.len(), lines.len());
}

#[test]
fn thousand_audit_lines_arrive_once_with_labels_and_timestamps() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 1000, 7);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "1000 entries", |r| r.len() >= lines.len());
    assert!(lokiship.terminate().success());

    let received = loki.accepted();
    assert_all_once(&lines, &received);
    for r in &received {
        let event: serde_json::Value = serde_json::from_str(&r.line).unwrap();
        let user = json_field(&event, &["user", "username"])
            .and_then(|v| v.as_str())
            .unwrap();
        let verb = event["verb"].as_str().unwrap();
        let mut expected = vec![
            ("job".to_string(), "audit".to_string()),
            ("user".into(), user.into()),
            ("verb".into(), verb.into()),
        ];
        if let Some(code) = json_field(&event, &["responseStatus", "code"]) {
            expected.push(("code".into(), code.to_string()));
        }
        expected.push(("filename".into(), log.display().to_string()));
        expected.sort();
        let selector = format!(
            "{{{}}}",
            expected
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(r.labels, selector);
        let stage_ts =
            chrono::DateTime::parse_from_rfc3339(event["stageTimestamp"].as_str().unwrap())
                .unwrap();
        assert_eq!(
            r.ts_ns,
            stage_ts.timestamp_nanos_opt().unwrap(),
            "entry timestamp is stageTimestamp"
        );
        assert_eq!(r.tenant, "ops");
        assert_eq!(
            r.structured_metadata,
            vec![(
                "audit_id".to_string(),
                event["auditID"].as_str().unwrap().to_string()
            )]
        );
    }
    let positions = std::fs::read_to_string(dir.path().join("positions.yaml")).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(
        positions.contains(&format!("'{size}'")),
        "positions at the end of the file: {positions}"
    );
}

#[test]
fn server_errors_are_retried_until_delivered() {
    let loki = FakeLoki::start();
    loki.script(&[503, 500, 503]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 300, 11);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "300 entries", |r| r.len() >= lines.len());
    assert!(lokiship.terminate().success());
    assert_all_once(&lines, &loki.accepted());
    let statuses: Vec<u16> = loki.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        &statuses[..4],
        &[503, 500, 503, 204],
        "the same batch retried until accepted"
    );
}

#[test]
fn rate_limited_pushes_are_retried_after_retry_after() {
    let loki = FakeLoki::start();
    loki.script_with_retry_after(429, 1);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 100, 12);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "100 entries", |r| r.len() >= lines.len());
    assert!(lokiship.terminate().success());
    assert_all_once(&lines, &loki.accepted());
    let requests = loki.requests();
    assert_eq!(requests[0].status, 429);
    let lines_of = |r: &support::Request| -> Vec<String> {
        support::decode(&r.body)
            .unwrap()
            .streams
            .into_iter()
            .flat_map(|s| s.entries.into_iter().map(|e| e.line))
            .collect()
    };
    let retried: std::collections::HashSet<String> = lines_of(&requests[1]).into_iter().collect();
    assert!(
        lines_of(&requests[0]).iter().all(|l| retried.contains(l)),
        "the rate-limited lines are sent again"
    );
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "the retry waits for Retry-After (1 s): {waited:?}"
    );
}

/// Loki answers the first push with `status`; then more lines are appended. Returns the lines of
/// the first push, the later lines, the fake Loki and /metrics at the end.
fn first_push_refused_then_more(
    status: u16,
    extra_client: &str,
) -> (Vec<String>, Vec<String>, FakeLoki, String) {
    let loki = FakeLoki::start();
    loki.script(&[status]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let first = gen_audit(&log, 50, 13);
    let config = audit_config(
        dir.path(),
        &log.display().to_string(),
        &loki.url(),
        extra_client,
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    // Wait for the refused batch, then append more lines.
    support::eventually(WAIT, "no push arrived", || !loki.requests().is_empty());
    let more = gen_audit(&dir.path().join("more.log"), 20, 14);
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for l in &more {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    loki.wait_for(WAIT, "the later lines", |r| r.len() >= more.len());
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(lokiship.terminate().success());
    assert_eq!(
        loki.requests()
            .iter()
            .filter(|r| r.status == status)
            .count(),
        1,
        "a {status} is not retried"
    );
    assert_all_once(&more, &loki.accepted());
    (first, more, loki, metrics)
}

/// The value of `promtail_dropped_entries_total` with `reason`.
fn dropped_with(metrics: &str, reason: &str) -> String {
    metrics
        .lines()
        .find(|l| {
            l.starts_with("promtail_dropped_entries_total{")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .unwrap_or_else(|| panic!("dropped metric ({reason}) missing:\n{metrics}"))
        .to_string()
}

#[test]
fn bad_request_is_not_retried_but_counted_and_later_lines_flow() {
    let (first, _, loki, metrics) = first_push_refused_then_more(400, "");
    let requests = loki.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.body == requests[0].body)
            .count(),
        1
    );
    // The fake Loki's 400 says "timestamp too old" about a stream of none of the batch's label
    // sets: the whole batch counts as refused, under the reason the body gives.
    let dropped = dropped_with(&metrics, "too_old");
    assert!(dropped.ends_with(&format!(" {}", first.len())), "{dropped}");
    assert!(
        metrics.contains("promtail_sent_entries_total{host=\"127.0.0.1:"),
        "{metrics}"
    );
}

#[test]
fn restart_while_appending_loses_and_duplicates_nothing() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let source = dir.path().join("source.log");
    let lines = gen_audit(&source, 3000, 21);
    std::fs::write(&log, b"").unwrap();
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");

    let writer = {
        let lines = lines.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            for chunk in lines.chunks(30) {
                for l in chunk {
                    writeln!(f, "{l}").unwrap();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "some entries", |r| r.len() >= 300);
    assert!(lokiship.terminate().success(), "SIGTERM exits 0");
    let before_restart = loki.accepted().len();
    assert!(
        before_restart < lines.len(),
        "stopped while lines were still being written"
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    writer.join().unwrap();
    loki.wait_for(WAIT, "all 3000 entries", |r| r.len() >= lines.len());
    support::wait_for_syncs(port, 2);
    assert!(lokiship.terminate().success());
    assert_all_once(&lines, &loki.accepted());
}

#[test]
fn rename_and_create_rotation_ships_both_files_once() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let log = logs.join("audit.log");
    let lines = gen_audit(&dir.path().join("source.log"), 2000, 31);
    std::fs::write(&log, b"").unwrap();
    // The glob also matches the rotated file: it must not be shipped twice.
    let config = audit_config(
        dir.path(),
        &format!("{}/*.log", logs.display()),
        &loki.url(),
        "",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);

    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for (i, l) in lines.iter().enumerate() {
        writeln!(f, "{l}").unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(10));
        }
        if i == 999 {
            // kube-apiserver style: rename the full file, then create a new one.
            std::fs::rename(&log, logs.join("audit-2026-11-24T10-15-30.123.log")).unwrap();
            // A writer that still holds the old descriptor appends a little more.
            f.flush().unwrap();
            f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
        }
    }
    drop(f);
    loki.wait_for(WAIT, "2000 entries", |r| r.len() >= lines.len());
    // Long enough for the rotated file to be finished and closed, and anything read twice sent.
    support::wait_for_syncs(port, 4);
    assert!(lokiship.terminate().success());
    assert_all_once(&lines, &loki.accepted());
}

#[test]
fn entries_older_than_reject_old_samples_max_age_are_dropped_before_sending() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    // gen-logs writes events of 2026-11-24; add three of now.
    let old = gen_audit(&log, 30, 21);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let fresh: Vec<String> = (0..3)
        .map(|i| format!(r#"{{"verb":"get","user":{{"username":"u{i}"}},"stageTimestamp":"{now}","auditID":"fresh-{i}"}}"#))
        .collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    for l in &fresh {
        writeln!(f, "{l}").unwrap();
    }
    drop(f);
    let config = audit_config(
        dir.path(),
        &log.display().to_string(),
        &loki.url(),
        "    reject_old_samples: true\n    reject_old_samples_max_age: 24h",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the fresh lines", |r| r.len() >= fresh.len());
    let size = std::fs::metadata(&log).unwrap().len();
    let deadline = std::time::Instant::now() + WAIT;
    let positions = dir.path().join("positions.yaml");
    while !std::fs::read_to_string(&positions).is_ok_and(|p| p.contains(&format!("'{size}'"))) {
        assert!(
            std::time::Instant::now() < deadline,
            "position did not reach the end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(lokiship.terminate().success());
    let mut got: Vec<String> = loki.accepted().into_iter().map(|r| r.line).collect();
    got.sort(); // three streams (one per user): their order in a push is not defined
    assert_eq!(got, fresh, "only entries within the max age are sent");
    let dropped = dropped_with(&metrics, "too_old");
    assert!(dropped.ends_with(&format!(" {}", old.len())), "{dropped}");
}

#[test]
fn json_encoding_ships_the_same_entries_gzipped() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 200, 23);
    let config = audit_config(
        dir.path(),
        &log.display().to_string(),
        &loki.url(),
        "    encoding: json",
    );
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "200 entries", |r| r.len() >= lines.len());
    assert!(lokiship.terminate().success());
    let requests = loki.requests();
    assert!(requests
        .iter()
        .all(|r| r.header("content-type") == Some("application/json")
            && r.header("content-encoding") == Some("gzip")));
    let received = loki.accepted();
    assert_all_once(&lines, &received);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let r = received.iter().find(|r| r.line == lines[0]).unwrap();
    assert!(
        r.labels
            .contains(&format!("verb=\"{}\"", first["verb"].as_str().unwrap())),
        "{}",
        r.labels
    );
    assert_eq!(
        r.structured_metadata,
        vec![(
            "audit_id".to_string(),
            first["auditID"].as_str().unwrap().to_string()
        )]
    );
    let ts =
        chrono::DateTime::parse_from_rfc3339(first["stageTimestamp"].as_str().unwrap()).unwrap();
    assert_eq!(r.ts_ns, ts.timestamp_nanos_opt().unwrap());
}

#[test]
fn drop_rate_limited_batches_drops_a_429_instead_of_retrying() {
    let (first, _, _, metrics) =
        first_push_refused_then_more(429, "    drop_rate_limited_batches: true");
    let dropped = dropped_with(&metrics, "rate_limited");
    assert!(dropped.ends_with(&format!(" {}", first.len())), "{dropped}");
}

#[test]
fn a_new_file_with_the_same_lines_as_a_file_being_read_is_read_too() {
    // It starts like a file being read, so it could be that file's copytruncate copy; that
    // file is never truncated, so it is not one, and its lines are shipped.
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("2.log");
    std::fs::write(&first, "more\n").unwrap();
    let glob = format!("{}/*.log", dir.path().display());
    let config = audit_config(dir.path(), &glob, &loki.url(), "");
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the first file's line", |r| !r.is_empty());
    std::fs::write(dir.path().join("3.log"), "more\n").unwrap();
    loki.wait_for(WAIT, "the second file's line", |r| r.len() >= 2);
    assert!(lokiship.terminate().success());
    let mut files: Vec<String> = loki
        .accepted()
        .iter()
        .map(|r| format!("{} {}", r.labels, r.line))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].contains("2.log") && files[1].contains("3.log"),
        "{files:?}"
    );
}
