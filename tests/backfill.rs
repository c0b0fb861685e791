//! `lokiship backfill`: existing files (plain or compressed, told by content) shipped once
//! through a job's pipeline; resumed where the acknowledged position was; entries Loki would
//! refuse stop it before anything is sent, unless `-restamp` or `-force`.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{eventually, FakeLoki};

const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &Path, url: &str, stages: &str) -> PathBuf {
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  disable: true\npositions:\n  filename: {}\nclients:\n  - url: {url}\n    batchsize: 4096\nscrape_configs:\n  - job_name: tailed\n    static_configs:\n      - labels: {{job: tailed, __path__: /var/log/*.log}}\n  - job_name: old-logs\n    pipeline_stages:\n{stages}    static_configs:\n      - labels: {{job: varlogs, __path__: /var/log/*.log}}\n",
            dir.join("positions.yaml").display()
        ),
    )
    .unwrap();
    config
}

fn backfill(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg("backfill")
        .arg(format!("-config.file={}", config.display()))
        .args(["-job", "old-logs"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running lokiship backfill")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `lines` compressed as `name`'s format says (the file's name says nothing).
fn write_compressed(path: &Path, format: &str, text: &[u8]) {
    let bytes = match format {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(text, 3).unwrap(),
        "bz2" => {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), Default::default());
            e.write_all(text).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(text).unwrap();
            e.finish().unwrap()
        }
        _ => text.to_vec(),
    };
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn plain_and_compressed_files_are_shipped_once_and_a_second_run_sends_nothing() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &loki.url(),
        "      - static_labels: {origin: backfill}\n",
    );
    let mut files = Vec::new();
    let mut want = Vec::new();
    for (i, format) in ["plain", "gz", "zst", "bz2", "xz"].iter().enumerate() {
        // Rotated names that do not say the format.
        let path = dir.path().join(format!("app.log.{i}"));
        let lines: Vec<String> = (0..300).map(|n| format!("{format} line {n}")).collect();
        write_compressed(&path, format, (lines.join("\n") + "\n").as_bytes());
        for line in lines {
            want.push((path.display().to_string(), line));
        }
        files.push(path.display().to_string());
    }
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = backfill(&config, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("msg=\"backfill done\" files=5 lines=1500"));
    let mut got: Vec<(String, String)> = loki
        .accepted()
        .into_iter()
        .map(|r| {
            let file = r
                .labels
                .split("filename=\"")
                .nth(1)
                .unwrap_or("")
                .split('"')
                .next()
                .unwrap_or("")
                .to_string();
            assert!(
                r.labels.contains("job=\"varlogs\"") && r.labels.contains("origin=\"backfill\""),
                "{}",
                r.labels
            );
            (file, r.line)
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "every line of every file once, with its file's name"
    );
    assert!(
        !dir.path().join("positions.yaml").exists(),
        "the node's positions file is not touched"
    );

    let pushes = loki.requests().len();
    let again = backfill(&config, &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        loki.requests().len(),
        pushes,
        "a finished backfill sends nothing again"
    );
}

const TIMESTAMPED: &str = "      - regex:\n          expression: '^(?P<ts>\\S+) '\n      - timestamp:\n          source: ts\n          format: RFC3339Nano\n";

#[test]
fn entries_loki_would_refuse_stop_the_backfill_unless_restamp_or_force() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &loki.url(), TIMESTAMPED);
    let old = chrono::Utc::now() - chrono::Duration::days(30);
    let stamp = old.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let log = dir.path().join("last-month.log");
    std::fs::write(&log, format!("{stamp} one\n{stamp} two\n")).unwrap();
    let file = log.display().to_string();

    let out = backfill(&config, &[&file]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("2 of 2 entries would be refused by Loki: 2 older than reject_old_samples_max_age (168h0m0s"), "{err}");
    assert!(
        err.contains("nothing was sent") && err.contains("-restamp") && err.contains("-force"),
        "{err}"
    );
    assert!(loki.requests().is_empty());

    let before = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let out = backfill(&config, &["-restamp", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = loki.accepted();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert!(r.ts_ns >= before, "restamped with the time it was sent");
        assert_eq!(
            r.structured_metadata,
            [("original_timestamp".to_string(), stamp.clone())]
        );
    }
}

#[test]
fn a_backfill_killed_midway_resumes_from_what_loki_acknowledged() {
    let loki = FakeLoki::start();
    loki.slow_down(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &loki.url(),
        "      - static_labels: {origin: backfill}\n",
    );
    let log = dir.path().join("big.log");
    let lines: Vec<String> = (0..20_000)
        .map(|n| format!("line {n:05} of a long file to backfill"))
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let file = log.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg("backfill")
        .arg(format!("-config.file={}", config.display()))
        .args(["-job", "old-logs", &file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually(WAIT, "some batches delivered", || {
        loki.accepted().len() >= 3000
    });
    // The positions are written soon after each delivery (positions sync is 10 s at most).
    let positions = dir.path().join("lokiship-backfill-positions.yaml");
    eventually(WAIT, "a position written", || positions.exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let first_run = loki.accepted().len();
    assert!(first_run < lines.len(), "killed before the end");
    loki.slow_down(Duration::ZERO);

    let out = backfill(&config, &[&file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<String> = loki.accepted().into_iter().map(|r| r.line).collect();
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), lines.len(), "every line arrived");
    assert!(
        got.len() < lines.len() + first_run,
        "the second run started from the acknowledged position, not from the start ({} pushed in all)",
        got.len()
    );
}

#[test]
fn files_sharing_a_stream_go_one_after_the_other_and_a_wrong_order_is_caught_first() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let stages = format!("{TIMESTAMPED}      - labeldrop: [filename]\n");
    let config = config(dir.path(), &loki.url(), &stages);
    let write = |name: &str, hours_ago: i64| {
        let at = chrono::Utc::now() - chrono::Duration::hours(hours_ago);
        let text: String = (0..6000)
            .map(|n| {
                let ts = (at + chrono::Duration::milliseconds(n))
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                format!("{ts} {name} {n}\n")
            })
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    // Each file more than one read (256 KiB) long: read together, they would interleave.
    let (older, newer) = (write("older.log", 5), write("newer.log", 2));

    let out = backfill(&config, &[&newer, &older]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("6000 more than 1h0m0s behind a newer entry of their stream"),
        "{}",
        stderr(&out)
    );
    assert!(loki.requests().is_empty());

    let out = backfill(&config, &[&older, &newer]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<String> = loki
        .accepted()
        .iter()
        .map(|r| r.line.split(' ').nth(1).unwrap_or("").to_string())
        .collect();
    let first_newer = files.iter().position(|f| f == "newer.log").unwrap();
    assert_eq!(files.len(), 12000);
    assert!(
        files[..first_newer].iter().all(|f| f == "older.log") && first_newer == 6000,
        "every line of the first file before the second's"
    );
}

#[test]
fn files_with_streams_of_their_own_are_read_together() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    // Each file keeps its `filename` label: no stream is shared.
    let config = config(
        dir.path(),
        &loki.url(),
        "      - static_labels: {origin: backfill}\n",
    );
    let write = |name: &str| {
        let text: String = (0..6000)
            .map(|n| format!("{name} line {n:05} of a file that is long enough\n"))
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (a, b) = (write("a.log"), write("b.log"));
    let out = backfill(&config, &[&a, &b]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<String> = loki.accepted().into_iter().map(|r| r.line).collect();
    assert_eq!(got.len(), 12_000);
    let last_a = got.iter().rposition(|l| l.starts_with("a.log")).unwrap();
    let first_b = got.iter().position(|l| l.starts_with("b.log")).unwrap();
    assert!(
        first_b < last_a,
        "read together, the files' lines interleave"
    );
}
