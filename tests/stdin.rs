//! `-stdin`: `kubectl logs … | lokiship -stdin -config.file=x.yaml`. Lines go through the first
//! scrape config's pipeline with its labels (without Promtail's `__path__`), the run exits 0 once
//! the input ended and every line is delivered, 3 with the reason when lines were not.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{eventually, wait_timeout, FakeLoki};

const WAIT: Duration = Duration::from_secs(60);

/// lokiship with `args` (`-stdin` unless one is `-no-stdin-flag`), standard input a pipe the
/// test writes, stderr kept.
fn start(args: &[String]) -> Child {
    let flag = !args.iter().any(|a| a == "-no-stdin-flag");
    Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .args(flag.then_some("-stdin"))
        .args(args.iter().filter(|a| *a != "-no-stdin-flag"))
        .env("HOSTNAME", "node-7")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting lokiship")
}

/// Writes `input`, closes standard input and waits for the exit: its code and stderr.
fn pipe_through(args: &[String], input: &[u8]) -> (Option<i32>, String) {
    let mut child = start(args);
    child.stdin.take().unwrap().write_all(input).unwrap();
    finish(child)
}

fn finish(mut child: Child) -> (Option<i32>, String) {
    let status = wait_timeout(&mut child, WAIT);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let other = dir.join("other.log");
    std::fs::write(&other, "a line of a file\n").unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server:
  disable: true
positions:
  filename: {pos}
clients:
  - url: {url}
scrape_configs:
  - job_name: varlogs
    pipeline_stages:
      - regex:
          expression: '^(?P<level>\w+) '
      - labels:
          level:
    static_configs:
      - labels:
          job: varlogs
          env: test
          __path__: /nonexistent/*.log
  - job_name: other
    static_configs:
      - labels:
          job: other
          __path__: {other}
"#,
            pos = dir.join("positions.yaml").display(),
            other = other.display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn lines_take_the_first_jobs_labels_and_pipeline_and_the_run_exits_0_once_delivered() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &loki.url());
    let input = b"info started\n\nwarn disk\r\nwarn disk\n  \n\xffbad byte\ninfo no newline";
    let (code, stderr) = pipe_through(&[format!("-config.file={}", config.display())], input);
    assert_eq!(code, Some(0), "{stderr}");
    let mut got = loki.accepted();
    got.sort_by_key(|r| r.ts_ns);
    let lines: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.labels.as_str(), r.line.as_str()))
        .collect();
    let info = r#"{env="test", job="varlogs", level="info"}"#;
    let warn = r#"{env="test", job="varlogs", level="warn"}"#;
    let plain = r#"{env="test", job="varlogs"}"#;
    assert_eq!(
        lines,
        [
            (info, "info started"),
            (warn, "warn disk"),
            (warn, "warn disk"),
            (plain, "  "),
            (plain, "\u{fffd}bad byte"),
            (info, "info no newline"),
        ],
        "empty lines are skipped, the last line without a newline is shipped, \
         no `__path__` label and nothing of the other job"
    );
    assert!(
        got[1].ts_ns < got[2].ts_ns,
        "two equal lines have two timestamps, so Loki keeps both"
    );
    assert!(
        !dir.path().join("positions.yaml").exists(),
        "-stdin writes no positions (a daemon on the node owns that file)"
    );
}

#[test]
fn without_a_config_file_lines_are_labelled_job_stdin_and_hostname() {
    let loki = FakeLoki::start();
    let args = [
        format!("-client.url={}", loki.url()),
        "-server.disable".into(),
    ];
    let (code, stderr) = pipe_through(&args, b"one\ntwo\n");
    assert_eq!(code, Some(0), "{stderr}");
    let got: Vec<(String, String)> = loki
        .accepted()
        .into_iter()
        .map(|r| (r.labels, r.line))
        .collect();
    let labels = r#"{hostname="node-7", job="stdin"}"#.to_string();
    assert_eq!(
        got,
        [(labels.clone(), "one".into()), (labels, "two".into())]
    );

    // `target_config.stdin: true` is what Promtail's flag sets: the same without the flag.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = format!(
        "target_config:\n  stdin: true\nserver:\n  disable: true\nclients:\n  - url: {}\n",
        loki.url()
    );
    std::fs::write(&config, yaml).unwrap();
    let args = [
        format!("-config.file={}", config.display()),
        "-no-stdin-flag".into(),
    ];
    let (code, stderr) = pipe_through(&args, b"three\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        loki.accepted().last().map(|r| r.line.as_str()),
        Some("three")
    );
}

#[test]
fn loki_failing_past_max_retries_ends_with_exit_3_and_the_reason() {
    let loki = FakeLoki::start();
    loki.script(&[500; 100]);
    let args = [
        format!("-client.url={}", loki.url()),
        "-server.disable".into(),
        "-client.max-retries=2".into(),
        "-client.min-backoff=10ms".into(),
        "-client.max-backoff=20ms".into(),
    ];
    let (code, stderr) = pipe_through(&args, b"one\ntwo\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("2 dropped by the clients (ingester_error: 2)"),
        "{stderr}"
    );
    assert!(loki.accepted().is_empty());
}

#[test]
fn a_stop_before_loki_took_the_lines_says_how_many_were_not_delivered() {
    let loki = FakeLoki::start();
    loki.script(&[503; 10_000]);
    let args = [
        format!("-client.url={}", loki.url()),
        "-server.disable".into(),
        "-client.timeout=1s".into(),
        "-client.max-retries=1000000".into(),
        "-client.min-backoff=10ms".into(),
        "-client.max-backoff=20ms".into(),
    ];
    let mut child = start(&args);
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\ntwo\nthree\n").unwrap();
    eventually(WAIT, "a push attempt", || !loki.requests().is_empty());
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child);
    drop(input);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("3 lines of standard input not delivered"),
        "{stderr}"
    );
}

#[test]
fn a_stop_on_a_quiet_pipe_ends_the_run_without_waiting_for_input() {
    let loki = FakeLoki::start();
    let args = [
        format!("-client.url={}", loki.url()),
        "-server.disable".into(),
    ];
    let mut child = start(&args);
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"before the stop\n").unwrap();
    eventually(WAIT, "the line delivered", || loki.accepted().len() == 1);
    signal(&child, libc::SIGINT);
    // The pipe stays open: the reader must not be stuck in read(2).
    let (code, stderr) = finish(child);
    drop(input);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("stopped reading standard input"),
        "{stderr}"
    );
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}
