//! The journal source against real journal files: Debian's `systemd-journal-remote` writes them
//! from the export format, and the host's `journalctl --directory` reads them, so no journald
//! runs. A fake `journalctl` on PATH plays the failures (exits, garbage, a refused cursor).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::journal::{entries, have_journal_tools, write_journal};
use support::{FakeLoki, Received};

fn config(dir: &Path, journal_dir: &Path, url: &str, journal_extra: &str) -> PathBuf {
    let text = format!(
        "server: {{disable: true}}
positions: {{filename: {dir}/positions.yaml, sync_period: 100ms}}
clients:
  - url: {url}
    batchwait: 100ms
scrape_configs:
  - job_name: journal
    journal:
      path: {journal}
      labels: {{job: systemd-journal}}
{journal_extra}
    relabel_configs:
      - source_labels: [__journal__systemd_unit]
        target_label: unit
      - source_labels: [__journal_priority_keyword]
        target_label: level
      - source_labels: [__journal__hostname]
        target_label: host
",
        dir = dir.display(),
        journal = journal_dir.display(),
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(config: &Path, path_env: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lokiship"));
    cmd.arg(format!("-config.file={}", config.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    cmd.spawn().unwrap()
}

fn terminate(mut child: Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = support::wait_timeout(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
}

fn messages(got: &[Received]) -> Vec<String> {
    let mut m: Vec<String> = got.iter().map(|r| r.line.clone()).collect();
    m.sort();
    m
}

fn expected(n: usize) -> Vec<String> {
    let mut m: Vec<String> = (0..n).map(|i| format!("message {i}")).collect();
    m.sort();
    m
}

#[test]
fn journal_entries_ship_with_promtails_labels_follow_new_files_and_resume_after_a_restart() {
    if !have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let mut first = entries(0, 40);
    // A MESSAGE with bytes that are not UTF-8 comes as a byte array: decoded, not lost.
    first[3][0].1 = b"message 3\xff".to_vec();
    write_journal(&journal, "a", &first, 0);
    let loki = FakeLoki::start();
    let cfg = config(dir.path(), &journal, &loki.url(), "");
    let lokiship = start(&cfg, None);
    loki.wait_for(Duration::from_secs(30), "the first 40 entries", |got| {
        got.len() >= 40
    });
    // A new journal file while running is followed.
    write_journal(&journal, "b", &entries(40, 20), 40);
    loki.wait_for(Duration::from_secs(30), "60 entries", |got| got.len() >= 60);
    terminate(lokiship);

    let got = loki.accepted();
    let sample = got.iter().find(|r| r.line == "message 2").unwrap();
    assert_eq!(
        sample.labels,
        r#"{host="node-1", job="systemd-journal", level="crit", unit="ssh.service"}"#
    );
    let age = support::rfc3339_ns("2000-01-01T00:00:00Z");
    assert!(sample.ts_ns > age, "the entry's own time is the timestamp");
    assert!(got.iter().any(|r| r.line == "message 3\u{fffd}"));
    let positions = std::fs::read_to_string(dir.path().join("positions.yaml")).unwrap();
    assert!(positions.contains("journal-journal: s="), "{positions}");

    // Stopped, then more entries: the next start resumes after the cursor, sending nothing twice.
    write_journal(&journal, "c", &entries(60, 15), 60);
    let lokiship = start(&cfg, None);
    loki.wait_for(Duration::from_secs(30), "75 entries", |got| got.len() >= 75);
    terminate(lokiship);
    let mut want = expected(75);
    let three = want.iter().position(|m| m == "message 3").unwrap();
    want[three] = "message 3\u{fffd}".into();
    want.sort();
    assert_eq!(messages(&loki.accepted()), want);
}

#[test]
fn a_node_that_ran_promtail_resumes_after_promtails_cursor() {
    if !have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    write_journal(&journal, "a", &entries(0, 20), 0);
    let out = Command::new("journalctl")
        .args(["--output=json", "--no-pager", "--lines=all"])
        .arg(format!("--directory={}", journal.display()))
        .output()
        .unwrap();
    let tenth: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().nth(9).unwrap()).unwrap();
    let cursor = tenth["__CURSOR"].as_str().unwrap();
    std::fs::write(
        dir.path().join("positions.yaml"),
        format!("positions:\n  journal-journal: {cursor}\n"),
    )
    .unwrap();
    let loki = FakeLoki::start();
    let cfg = config(dir.path(), &journal, &loki.url(), "");
    let lokiship = start(&cfg, None);
    loki.wait_for(Duration::from_secs(30), "entries 10..20", |got| {
        got.len() >= 10
    });
    terminate(lokiship);
    let want: Vec<String> = {
        let mut m: Vec<String> = (10..20).map(|i| format!("message {i}")).collect();
        m.sort();
        m
    };
    assert_eq!(messages(&loki.accepted()), want);
}

/// A directory holding an executable `journalctl` with `script` as its body.
fn fake_journalctl(dir: &Path, script: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("journalctl");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:/usr/bin:/bin", bin.display())
}

fn metric(port: u16, name: &str, filter: &str) -> f64 {
    support::http_get(port, "/metrics")
        .map(|text| support::metric_samples(&text, name, filter).sum())
        .unwrap_or(0.0)
}

#[test]
fn journalctl_that_exits_prints_garbage_or_refuses_the_cursor_is_restarted_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    // Refuses the stored cursor (of another journal); otherwise prints two records and a broken line, then exits.
    let path = fake_journalctl(
        dir.path(),
        r#"for a in "$@"; do case "$a" in --after-cursor=s=elsewhere) echo "Failed to seek to cursor: Invalid argument" >&2; exit 1;; esac; done
printf '__CURSOR=s=1;i=1\n__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=one\n_SYSTEMD_UNIT=a.service\n\n'
printf 'this is no journal entry\n\n'
printf '__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1700000000000001\nMESSAGE=two\n_SYSTEMD_UNIT=a.service\n\n'
exit 1"#,
    );
    std::fs::write(
        dir.path().join("positions.yaml"),
        "positions:\n  journal-journal: s=elsewhere\n",
    )
    .unwrap();
    let loki = FakeLoki::start();
    let cfg = config(dir.path(), dir.path(), &loki.url(), "");
    let port = support::enable_server(&cfg);
    let started = Instant::now();
    let lokiship = start(&cfg, Some(&path));
    let restarts = |reason: &str| {
        metric(
            port,
            "lokiship_journal_restarts_total",
            &format!("reason=\"{reason}\""),
        )
    };
    support::eventually(Duration::from_secs(30), "two restarts after exits", || {
        restarts("exited") >= 2.0
    });
    // 1 s, then 2 s between runs: a journal journalctl cannot read is no busy loop.
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert_eq!(restarts("cursor_rejected"), 1.0);
    assert!(
        metric(
            port,
            "promtail_journal_target_parsing_errors_total",
            "invalid_record"
        ) >= 2.0
    );
    loki.wait_for(Duration::from_secs(10), "both records", |got| {
        got.iter().any(|r| r.line == "one") && got.iter().any(|r| r.line == "two")
    });
    assert!(support::http_get(port, "/ready").is_some_and(|r| r.contains("200")));
    terminate(lokiship);
}

#[test]
fn without_journalctl_the_job_says_so_and_lokiship_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let loki = FakeLoki::start();
    let cfg = config(dir.path(), dir.path(), &loki.url(), "");
    let port = support::enable_server(&cfg);
    let lokiship = start(&cfg, Some(&empty.display().to_string()));
    support::eventually(Duration::from_secs(20), "a spawn_failed restart", || {
        metric(port, "lokiship_journal_restarts_total", "spawn_failed") >= 1.0
    });
    assert!(support::http_get(port, "/ready").is_some_and(|r| r.contains("200")));
    terminate(lokiship);
}

#[test]
fn a_dry_run_prints_the_journals_entries_and_inspect_shows_the_stages() {
    if !have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    write_journal(&journal_dir, "system.journal", &entries(0, 3), 1);
    let config = config(
        dir.path(),
        &journal_dir,
        "http://127.0.0.1:9/loki/api/v1/push",
        "    pipeline_stages:\n      - regex: {expression: 'message (?P<n>\\d+)'}\n      - structured_metadata: {n: ''}",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .args(["-dry-run", "-exit-at-eof", "-inspect"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let printed: Vec<&str> = stdout.lines().filter(|l| l.contains("message ")).collect();
    assert_eq!(printed.len(), 3, "{stdout}");
    assert!(printed[0].contains("job=\"systemd-journal\""), "{stdout}");
    assert!(printed[0].contains(r#"{n="0"}"#), "{stdout}");
    assert!(stderr.contains("[inspect: regex stage]"), "{stderr}");
    assert!(
        !dir.path().join("positions.yaml").exists(),
        "a dry run writes no positions"
    );
}

#[test]
fn a_node_without_a_journal_is_said_once_as_a_warning() {
    if !have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    let loki = FakeLoki::start();
    let cfg = config(dir.path(), &journal, &loki.url(), "");
    let port = support::enable_server(&cfg);
    let log = dir.path().join("lokiship.log");
    let child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", cfg.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    support::eventually(Duration::from_secs(20), "a no_journal restart", || {
        metric(port, "lokiship_journal_restarts_total", "no_journal") >= 1.0
    });
    assert!(support::http_get(port, "/ready").is_some_and(|r| r.contains("200")));
    terminate(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("no journal to read (yet)").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("level=warn") && !text.contains("level=error"),
        "{text}"
    );
}

#[test]
fn a_reload_that_changes_the_journal_job_continues_after_what_was_read() {
    if !have_journal_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    std::fs::create_dir(&journal).unwrap();
    write_journal(&journal, "a", &entries(0, 40), 0);
    let loki = FakeLoki::start();
    let port = support::free_port();
    let cfg = config(dir.path(), &journal, &loki.url(), "");
    let with_server = |job: &str| {
        let text = std::fs::read_to_string(&cfg).unwrap();
        let text = text
            .replace(
                "server: {disable: true}",
                &format!("server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}"),
            )
            .replace("job: systemd-journal", &format!("job: {job}"));
        std::fs::write(&cfg, text).unwrap();
    };
    with_server("systemd-journal");
    let lokiship = start(&cfg, None);
    loki.wait_for(Duration::from_secs(30), "the first 40 entries", |got| {
        got.len() >= 40
    });
    with_server("reloaded");
    Command::new("kill")
        .args(["-HUP", &lokiship.id().to_string()])
        .status()
        .unwrap();
    // /config shows the config running: once the reload is applied, the new one.
    support::eventually(Duration::from_secs(30), "the reload applied", || {
        support::http_get(port, "/config").is_some_and(|page| page.contains("job: reloaded"))
    });
    assert_eq!(
        metric(port, "promtail_config_reload_success_total", ""),
        1.0
    );
    write_journal(&journal, "b", &entries(40, 20), 40);
    loki.wait_for(Duration::from_secs(30), "60 entries", |got| got.len() >= 60);
    terminate(lokiship);
    let got = loki.accepted();
    assert_eq!(messages(&got), expected(60), "each entry once");
    for r in &got {
        let n: usize = r.line["message ".len()..].parse().unwrap();
        let job = if n < 40 {
            "systemd-journal"
        } else {
            "reloaded"
        };
        assert!(r.labels.contains(&format!("job=\"{job}\"")), "{r:?}");
    }
}
