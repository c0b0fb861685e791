//! file_sd_configs and relabel_configs through the binary: targets added to a discovery file while
//! lokiship runs are tailed within moments, with the labels relabeling gives them.

mod support;

use std::time::Duration;
use support::{FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn targets_from_discovery_files_are_tailed_with_relabeled_labels() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let sd = dir.path().join("sd");
    std::fs::create_dir(&sd).unwrap();
    std::fs::write(
        sd.join("a.yaml"),
        format!("- targets: [localhost]\n  labels: {{job: a, __path__: {d}/a.log}}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("a.log"), "line from a\n").unwrap();
    std::fs::write(dir.path().join("b.log"), "line from b\n").unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
target_config: {{sync_period: 200ms}}
clients: [{{url: "{url}", batchwait: 100ms}}]
scrape_configs:
  - job_name: discovered
    file_sd_configs:
      - files: ['{d}/sd/*.yaml', '{d}/sd/*.json']
        refresh_interval: 1h
    relabel_configs:
      - source_labels: [__path__]
        regex: '.*/(\w+)\.log'
        target_label: app
      - source_labels: [__meta_filepath]
        regex: '.*\.json'
        target_label: from_json
        replacement: 'yes'
"#,
            url = loki.url()
        ),
    )
    .unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "a's line", |r| !r.is_empty());
    // A new discovery file, in JSON: seen at the next look, long before refresh_interval.
    std::fs::write(
        sd.join("b.json"),
        format!(
            r#"[{{"targets": ["localhost"], "labels": {{"job": "b", "__path__": "{d}/b.log"}}}}]"#
        ),
    )
    .unwrap();
    loki.wait_for(WAIT, "b's line", |r| r.len() >= 2);
    assert!(lokiship.terminate().success());
    let mut got: Vec<(String, String)> = loki
        .accepted()
        .into_iter()
        .map(|r| (r.labels, r.line))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                format!(r#"{{app="a", filename="{d}/a.log", job="a"}}"#),
                "line from a".to_string()
            ),
            (
                format!(r#"{{app="b", filename="{d}/b.log", from_json="yes", job="b"}}"#),
                "line from b".to_string()
            ),
        ]
    );
}
