//! `loki_push_api`: lokiship as a Loki push endpoint. A pushed line cannot be read again, so the
//! sender's 204 must mean the line is safe: on the disk queue, which survives a SIGKILL, or
//! delivered.

mod support;

use lokiship::wire::logproto::StreamAdapter;
use lokiship::wire::{encode_push, entry_adapter};
use std::time::{Duration, Instant};
use support::{blackhole, free_port, http_get, http_post, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &std::path::Path, loki: &str, push_port: u16, wal: &str) -> std::path::PathBuf {
    let d = dir.display();
    let text = format!(
        r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: {server}}}
positions: {{filename: {d}/positions.yaml}}
{wal}
clients:
  - url: {loki}
    name: loki
    batchwait: 100ms
    timeout: 500ms
    backoff_config: {{min_period: 20ms, max_period: 100ms}}
scrape_configs:
  - job_name: pushed
    loki_push_api:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {push_port}}}
      labels: {{via: lokiship}}
      use_incoming_timestamp: true
    pipeline_stages:
      - json: {{expressions: {{level: level}}}}
      - labels: {{level: ""}}
"#,
        server = free_port(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A protobuf push of `n` JSON lines in stream `{app="web"}`, timestamps 1..=n s after 2023-11-14.
fn push_body(from: usize, n: usize) -> Vec<u8> {
    let entries = (from..from + n)
        .map(|i| {
            entry_adapter(
                1_700_000_000_000_000_000 + i as i64 * 1_000_000_000,
                format!(r#"{{"level":"info","n":{i}}}"#),
                vec![("request".into(), i.to_string())],
            )
        })
        .collect();
    encode_push(vec![StreamAdapter {
        labels: r#"{app="web"}"#.into(),
        entries,
        hash: 0,
    }])
}

fn push(port: u16, body: &[u8]) -> (u16, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        // Until the receiver listens.
        if let Some(answer) = http_post(
            port,
            "/loki/api/v1/push",
            &[("Content-Type", "application/x-protobuf")],
            body,
        ) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "the push receiver never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_204_while_loki_is_down_means_on_disk_and_survives_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (_hole, dead) = blackhole();
    let port = free_port();
    // No wal block: a push receiver turns the disk queue on by itself.
    let config = config(dir.path(), &dead, port, "");
    let lokiship = Lokiship::start(&config, &[]);
    for request in 0..5 {
        let (status, body) = push(port, &push_body(request * 100, 100));
        assert_eq!(status, 204, "request {request}: {body}");
    }
    // Loki never answered, yet the sender may forget the lines: they must be on disk.
    lokiship.kill();

    let loki = FakeLoki::start();
    let config = self::config(dir.path(), &loki.url(), port, "");
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "the 500 pushed lines", |r| r.len() >= 500);
    assert!(lokiship.terminate().success());
    let got = loki.accepted();
    assert_eq!(got.len(), 500, "each line once");
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.line, format!(r#"{{"level":"info","n":{i}}}"#), "in order");
        assert_eq!(e.labels, r#"{app="web", level="info", via="lokiship"}"#);
        assert_eq!(
            e.ts_ns,
            1_700_000_000_000_000_000 + i as i64 * 1_000_000_000
        );
        assert_eq!(
            e.structured_metadata,
            vec![("request".to_string(), i.to_string())]
        );
    }
}

#[test]
fn without_a_disk_queue_the_204_waits_for_loki() {
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let port = free_port();
    let config = config(dir.path(), &loki.url(), port, "wal: {enabled: false}");
    let lokiship = Lokiship::start(&config, &[]);
    let (status, _) = push(port, &push_body(0, 10));
    assert_eq!(status, 204);
    assert_eq!(
        loki.accepted().len(),
        10,
        "answered only once Loki had the lines"
    );
    assert!(!dir.path().join("lokiship-wal").exists(), "nothing on disk");
    assert!(lokiship.terminate().success());
}

#[test]
fn json_gzip_and_raw_bodies_are_taken_and_bad_ones_refused_with_the_reason() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let port = free_port();
    let config = config(dir.path(), &loki.url(), port, "");
    let server_port = std::fs::read_to_string(&config)
        .unwrap()
        .split("http_listen_port: ")
        .nth(1)
        .and_then(|s| s.split('}').next()?.parse::<u16>().ok())
        .unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    push(port, &push_body(0, 1));

    let json = br#"{"streams":[{"stream":{"app":"api"},"values":[["1700000000000000001","{\"level\":\"warn\"}"]]}]}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(json).unwrap();
    let (status, body) = http_post(
        port,
        "/loki/api/v1/push",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gz.finish().unwrap(),
    )
    .unwrap();
    assert_eq!(status, 204, "{body}");
    let (status, body) =
        http_post(port, "/loki/api/v1/raw", &[], b"plain one\nplain two\n").unwrap();
    assert_eq!(status, 204, "{body}");

    let (status, body) = http_post(
        port,
        "/loki/api/v1/push",
        &[("Content-Type", "application/json")],
        br#"{"streams":[{"stream":{"app":"api"},"values":[["yesterday","x"]]}]}"#,
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("not nanoseconds"), "{body}");

    loki.wait_for(WAIT, "the JSON and raw lines", |r| r.len() >= 4);
    let got = loki.accepted();
    let find = |line: &str| got.iter().find(|e| e.line == line).unwrap().clone();
    let warn = find(r#"{"level":"warn"}"#);
    assert_eq!(warn.labels, r#"{app="api", level="warn", via="lokiship"}"#);
    assert_eq!(warn.ts_ns, 1_700_000_000_000_000_001);
    assert_eq!(find("plain two").labels, r#"{via="lokiship"}"#);
    let metrics = http_get(server_port, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"lokiship_push_errors_total{reason="bad_request"} 1"#),
        "{metrics}"
    );
    assert!(lokiship.terminate().success());
}
