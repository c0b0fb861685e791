//! What lokiship counts when a real Loki 3.6.15 (`../shared/peers`) refuses part of a push, and
//! what an `-exit-at-eof` run then says and returns.

mod support;

use std::process::Command;
use support::peers::RealLoki;

/// `key=value` of the summary line lokiship logs at the end of a run.
fn summary_field(stderr: &str, key: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("msg=summary"))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .trim_matches('"')
        .to_string()
}

fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml}}
clients:
  - url: {url}
    batchwait: 200ms
    batchsize: 4194304
scrape_configs:
  - job_name: accounting
    static_configs:
      - targets: [localhost]
        labels: {{job: accounting, __path__: "{dir}/*.log"}}
    pipeline_stages:
      - json: {{expressions: {{ts: ts, part: part}}}}
      - labels: {{part: ""}}
      - timestamp: {{source: ts, format: RFC3339Nano}}
"#,
        dir = dir.display()
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_partly_refused_push_is_counted_as_loki_counts_it() {
    let Some(loki) = RealLoki::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 200 entries in 4 streams; 80 of them 9 days old, each in its own second (Loki names each
    // in a group of its own, as it did the demo's 197), the others from the last minute.
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..200i64 {
        let ts = if i % 5 < 2 {
            now - chrono::Duration::days(9) + chrono::Duration::seconds(i)
        } else {
            now - chrono::Duration::seconds(60) + chrono::Duration::milliseconds(i)
        };
        lines.push_str(&format!(
            "{{\"ts\":\"{}\",\"part\":\"p{}\",\"n\":{i},\"pad\":\"{}\"}}\n",
            ts.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            i % 4,
            "x".repeat(100)
        ));
    }
    std::fs::write(dir.path().join("a.log"), lines).unwrap();
    let before = loki.metric_sum("loki_discarded_samples_total", "");
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!(
            "-config.file={}",
            config(dir.path(), &loki.push_url()).display()
        ))
        .arg("-exit-at-eof")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let discarded = loki.metric_sum("loki_discarded_samples_total", "") - before;
    let stored = loki.instant_sum(r#"sum(count_over_time({job="accounting"}[1h]))"#);
    assert_eq!(
        (discarded, stored),
        (80, 120),
        "Loki's own counts\n{stderr}"
    );
    assert_eq!(
        summary_field(&stderr, "sent"),
        stored.to_string(),
        "{stderr}"
    );
    assert_eq!(summary_field(&stderr, "dropped"), discarded.to_string());
    assert_eq!(
        summary_field(&stderr, "refused_by_loki"),
        discarded.to_string()
    );
    assert_eq!(summary_field(&stderr, "dropped_by_reason"), "too_old=80");
    assert_eq!(out.status.code(), Some(3), "lines were lost: {stderr}");
    assert!(
        stderr.contains("lokiship: not every line was shipped: 80 refused by Loki"),
        "{stderr}"
    );
}

#[test]
fn a_url_loki_answers_404_fails_the_run() {
    let Some(loki) = RealLoki::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    std::fs::write(
        dir.path().join("a.log"),
        format!("{{\"ts\":\"{ts}\",\"part\":\"a\"}}\n"),
    )
    .unwrap();
    // The URL without /loki/api/v1/push: Loki answers 404.
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!(
            "-config.file={}",
            config(dir.path(), &loki.url()).display()
        ))
        .arg("-exit-at-eof")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(summary_field(&stderr, "refused_by_loki"), "1", "{stderr}");
    assert_eq!(
        summary_field(&stderr, "dropped_by_reason"),
        "ingester_error=1"
    );
}
