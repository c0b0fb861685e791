//! What `/metrics` shows an operator: the names (and label names) of Promtail's metrics, checked
//! against the real Promtail 3.6.15 (`../shared/peers`), and a file's lag as Loki takes its lines.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{gen_audit, http_get, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

/// Series names of an exposition, with the label names of each; for lokiship's (OpenMetrics) text
/// also the names a registered family will have once it has a series.
fn names(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let series: Vec<String> = match kind {
                "counter" if !name.ends_with("_total") => vec![format!("{name}_total")],
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect(),
                _ => vec![name.to_string()],
            };
            for s in series {
                out.entry(s).or_default();
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let series = line.rsplit_once(' ').map_or(line, |(s, _)| s);
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let set = out.entry(name.to_string()).or_default();
            for pair in labels.trim_end_matches('}').split("\",") {
                if let Some((label, _)) = pair.split_once('=') {
                    set.insert(label.trim_start_matches(',').to_string());
                }
            }
        }
    }
    out
}

fn scrape(port: u16, until: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(text) = http_get(port, "/metrics") {
            if until(&text) {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "/metrics on {port} never showed what was awaited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &std::path::Path, port: u16, url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}, grpc_listen_port: 0}}
positions: {{filename: {dir}/positions-{port}.yaml}}
clients: [{{url: "{url}", batchwait: 100ms}}]
limits_config: {{max_line_size: 100000}}
target_config: {{sync_period: 60s}}
scrape_configs:
  - job_name: audit
    static_configs:
      - targets: [localhost]
        labels: {{job: audit, __path__: "{dir}/*.log"}}
"#,
        dir = dir.display()
    );
    let path = dir.join(format!("config-{port}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Promtail metrics lokiship has no counterpart for yet, with the reason.
const NOT_YET: &[(&str, &str)] = &[
    ("process_network_receive_bytes_total", "Go's collector only"),
    (
        "process_network_transmit_bytes_total",
        "Go's collector only",
    ),
];

#[test]
fn promtails_metric_names_and_labels_are_there() {
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 50, 71);
    // One line over max_line_size: both drop it, with the per-client labels.
    std::fs::write(
        dir.path().join("long.log"),
        format!("{}\nshort\n", "x".repeat(200_000)),
    )
    .unwrap();
    let promtail_port = support::free_port();
    let mut promtail = Command::new(promtail)
        .arg(format!(
            "-config.file={}",
            config(dir.path(), promtail_port, &loki.url()).display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let theirs = scrape(promtail_port, |t| {
        t.contains("promtail_sent_entries_total{") && t.contains("promtail_read_lines_total{")
    });
    let _ = promtail.kill();
    let _ = promtail.wait();
    let port = support::free_port();
    let lokiship = Lokiship::start(&config(dir.path(), port, &loki.url()), &[]);
    let ours = scrape(port, |t| {
        t.contains("promtail_sent_entries_total{")
            && t.contains("promtail_dropped_entries_total{")
            && t.contains("promtail_read_lines_total{")
    });
    drop(lokiship);
    let (theirs, ours) = (names(&theirs), names(&ours));
    for (name, labels) in &theirs {
        if !(name.starts_with("promtail_") || name.starts_with("process_"))
            || NOT_YET.iter().any(|(n, _)| n == name)
        {
            continue;
        }
        let Some(our_labels) = ours.get(name) else {
            panic!("Promtail exports {name}, lokiship does not");
        };
        if !our_labels.is_empty() {
            assert_eq!(our_labels, labels, "label names of {name}");
        }
    }
    let dropped = &ours["promtail_dropped_entries_total"];
    assert_eq!(
        dropped,
        &["host", "reason", "tenant"].map(String::from).into(),
        "promtail_dropped_entries_total's labels"
    );
}

#[test]
fn no_series_has_an_empty_host_and_the_lag_falls_as_lines_are_acknowledged() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 3000, 72);
    // A line over max_line_size is counted for the client, under its host.
    std::fs::write(
        dir.path().join("long.log"),
        format!("{}\n", "y".repeat(200_000)),
    )
    .unwrap();
    let port = support::free_port();
    // target_config.sync_period is 60 s: the lag must not wait for the next look at the files.
    let config = config(dir.path(), port, &loki.url());
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "every line", |r| r.len() == lines.len());
    let started = Instant::now();
    let lag = format!("lokiship_file_lag_bytes{{path=\"{}\"}} 0", log.display());
    let text = scrape(port, |t| t.contains(&lag));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the lag reached 0 only after {:?}",
        started.elapsed()
    );
    assert!(
        !text.contains("host=\"\""),
        "a series with an empty host:\n{text}"
    );
    assert!(text.contains("promtail_dropped_entries_total{host=\"127.0.0.1:"));
    assert!(text.contains("promtail_build_info{version=\""));
    assert!(text.contains("promtail_targets_active_total 1"));
    assert!(lokiship.terminate().success());
    // Started again at the end of the file: no lag at all.
    let lokiship = Lokiship::start(&config, &[]);
    scrape(port, |t| t.contains(&lag));
    assert!(lokiship.terminate().success());
}
