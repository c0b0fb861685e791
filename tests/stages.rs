//! End to end through the binary: stages that hold lines back (multiline, cri partial lines) ship
//! every line once and move the position only past delivered blocks; a `metrics` stage's series
//! are on /metrics.

mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;
use support::{enable_server, http_get, recorded_offset, rfc3339_ns, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &Path, url: &str, stages: &str) -> std::path::PathBuf {
    support::ConfigBuilder::new(dir)
        .default_poll()
        .client(url, &["batchwait: 100ms"])
        .job(
            "app",
            "job: app",
            &format!("{}/*.log", dir.display()),
            &format!("{stages}\n"),
        )
        .write()
}

#[test]
fn multiline_blocks_arrive_whole_and_the_position_waits_for_them() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut blocks = Vec::new();
    for i in 0..200 {
        let mut block = format!("2026-11-26 10:00:{:02} ERROR request {i} failed", i % 60);
        if i % 3 == 0 {
            block.push_str(&format!(
                "\njava.lang.IllegalStateException: {i}\n\tat com.example.A.b(A.java:{i})\n\tat com.example.C.d(C.java:7)"
            ));
        }
        blocks.push(block);
    }
    let mut text = blocks.join("\n");
    text.push('\n');
    std::fs::write(&log, &text).unwrap();
    let config = config(
        dir.path(),
        &loki.url(),
        r"      - multiline: {firstline: '^\d{4}-\d{2}-\d{2} ', max_wait_time: 1500ms}",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "200 blocks", |r| r.len() >= blocks.len());

    // A block in progress: its first lines are read, but it is not complete before max_wait_time,
    // so the position must stay before it.
    let before = std::fs::metadata(&log).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    writeln!(
        f,
        "2026-11-26 10:01:00 ERROR late\n\tat com.example.Late.x(Late.java:1)"
    )
    .unwrap();
    drop(f);
    support::wait_for_syncs(port, 2);
    assert_eq!(
        recorded_offset(dir.path(), &log),
        Some(before),
        "held lines are not yet delivered"
    );
    loki.wait_for(WAIT, "the late block", |r| r.len() > blocks.len());
    assert!(lokiship.terminate().success());

    let received: Vec<String> = loki.accepted().into_iter().map(|r| r.line).collect();
    let mut expected = blocks.clone();
    expected.push("2026-11-26 10:01:00 ERROR late\n\tat com.example.Late.x(Late.java:1)".into());
    assert_eq!(received, expected, "every block once, whole, in order");
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(recorded_offset(dir.path(), &log), Some(size));
}

#[test]
fn cri_partial_lines_are_joined_and_metrics_are_exposed() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = [
        "2026-11-26T10:00:00.000000001Z stdout F level=info msg=\"started\"",
        "2026-11-26T10:00:01.000000000Z stderr P level=error msg=\"part one ",
        "2026-11-26T10:00:01.100000000Z stderr F and two\"",
        "2026-11-26T10:00:02.000000000Z stdout F level=info msg=\"done\"",
    ];
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let config = config(
        dir.path(),
        &loki.url(),
        r#"      - cri: {}
      - logfmt: {mapping: {level: }}
      - labels: {level: }
      - metrics:
          log_lines_total: {type: Counter, description: "lines by level", config: {match_all: true, action: inc}}"#,
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "3 entries", |r| r.len() >= 3);
    let metrics = http_get(port, "/metrics").unwrap_or_default();
    assert!(lokiship.terminate().success());

    let mut got: Vec<(String, String, i64)> = loki
        .accepted()
        .into_iter()
        .map(|r| (r.labels, r.line, r.ts_ns))
        .collect();
    got.sort_by_key(|g| g.2);
    let file = log.display().to_string();
    assert_eq!(
        got,
        vec![
            (
                format!(r#"{{filename="{file}", job="app", level="info", stream="stdout"}}"#),
                "level=info msg=\"started\"".to_string(),
                rfc3339_ns("2026-11-26T10:00:00.000000001Z")
            ),
            (
                format!(r#"{{filename="{file}", job="app", level="error", stream="stderr"}}"#),
                "level=error msg=\"part one and two\"".to_string(),
                // The last part's time, as Promtail 3.6 gives it (tests/differential.rs).
                rfc3339_ns("2026-11-26T10:00:01.1Z")
            ),
            (
                format!(r#"{{filename="{file}", job="app", level="info", stream="stdout"}}"#),
                "level=info msg=\"done\"".to_string(),
                rfc3339_ns("2026-11-26T10:00:02Z")
            ),
        ]
    );
    let series = format!(
        r#"promtail_custom_log_lines_total{{filename="{file}",job="app",level="info",stream="stdout"}} 2"#
    );
    assert!(metrics.contains(&series), "{series} in\n{metrics}");
    assert!(metrics.contains("# HELP promtail_custom_log_lines lines by level"));
}
