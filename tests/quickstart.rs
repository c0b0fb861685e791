//! The README's quick start, run as written: the dry run of the demo, and the demo shipped to a real
//! Loki 3.6.15 (`../shared/peers`), where a LogQL query must find every entry.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::peers::RealLoki;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The arguments of the README line that starts with `prefix` (after `cargo run --release --` or
/// the binary's path), so that the test runs what the README says.
fn readme_args(contains: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut lines = readme.lines();
    let mut command = String::new();
    while let Some(line) = lines.next() {
        if !line.contains(contains) {
            continue;
        }
        command.push_str(line.trim_end_matches('\\'));
        let mut last = line;
        while last.trim_end().ends_with('\\') {
            last = lines.next().unwrap();
            command.push(' ');
            command.push_str(last.trim().trim_end_matches('\\'));
        }
        break;
    }
    assert!(!command.is_empty(), "no README line with {contains:?}");
    let words: Vec<&str> = command.split_whitespace().collect();
    let start = words
        .iter()
        .position(|w| w.starts_with("-config.file"))
        .expect("the command has -config.file");
    words[start..].iter().map(|w| w.to_string()).collect()
}

/// What the demo pipeline keeps of the sample: every event but `RequestReceived` ones and 409s.
fn expected_demo_entries() -> usize {
    let sample = std::fs::read_to_string(repo().join("config/sample/audit.log")).unwrap();
    sample
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["stage"] != "RequestReceived" && v["responseStatus"]["code"] != 409
        })
        .count()
}

#[test]
fn the_readme_dry_run_prints_each_request_once_stamped_now() {
    let args = readme_args("-dry-run");
    let started = chrono::Utc::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .args(&args)
        .current_dir(repo())
        .env(
            "LOKISHIP_POSITIONS",
            tempfile::tempdir().unwrap().path().join("p.yaml"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let entries: Vec<&str> = stdout.lines().collect();
    assert_eq!(entries.len(), expected_demo_entries());
    for e in &entries {
        let fields: Vec<&str> = e.split('\t').collect();
        assert!(
            fields[1].contains("code=\"") && !fields[1].contains("code=\"\""),
            "{e}"
        );
        assert!(fields[2].contains("event_time=\""), "{e}");
        let ts = chrono::DateTime::parse_from_rfc3339(fields[0]).unwrap();
        assert!(
            ts >= started - chrono::Duration::seconds(1),
            "stamped when read: {e}"
        );
    }
    assert!(
        stderr.contains("msg=summary") && stderr.contains(&format!("sent={}", entries.len())),
        "the run ends with its summary: {stderr}"
    );
}

#[test]
fn the_readme_quick_start_shows_the_demo_in_a_logql_query() {
    let Some(loki) = RealLoki::start() else {
        return;
    };
    let args = readme_args("LOKI_URL=");
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .args(&args)
        .current_dir(repo())
        .env("LOKI_URL", loki.url())
        .env("LOKISHIP_POSITIONS", dir.path().join("positions.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let expected = expected_demo_entries() as u64;
    let query = r#"sum(count_over_time({job="kube-audit", cluster="demo"}[1h]))"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut found = 0;
    while Instant::now() < deadline {
        found = loki.instant_sum(query);
        if found >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = support::wait_timeout(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(
        found, expected,
        "{query} in Loki; lokiship's log:\n{stderr}"
    );
    assert!(status.success(), "{stderr}");
    assert_eq!(
        loki.metric_sum("loki_discarded_samples_total", ""),
        0,
        "Loki discarded none"
    );
    // Per-verb counts are counts of requests: no entry without a code.
    assert_eq!(
        loki.instant_sum(r#"sum(count_over_time({job="kube-audit", code=""}[1h]))"#),
        0
    );
}
