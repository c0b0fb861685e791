//! The command line and what an operator sees: dry runs, /ready and /metrics, auth headers, and bad
//! input that is shipped (and counted) rather than lost.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::{audit_config, enable_server, gen_audit, http_get, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn dry_run_prints_entries_sends_nothing_and_keeps_positions() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 20, 51);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .args(["--dry-run", "-exit-at-eof"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), lines.len());
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let fields: Vec<&str> = printed[0].split('\t').collect();
    assert_eq!(
        fields[0],
        first["stageTimestamp"]
            .as_str()
            .unwrap()
            .replace('Z', "000Z")
    );
    assert!(fields[1].contains(&format!(
        "user=\"{}\"",
        first["user"]["username"].as_str().unwrap()
    )));
    assert_eq!(
        fields[2],
        format!("{{audit_id=\"{}\"}}", first["auditID"].as_str().unwrap())
    );
    assert_eq!(fields[3], lines[0]);
    assert!(loki.requests().is_empty(), "a dry run sends nothing");
    assert!(
        !dir.path().join("positions.yaml").exists(),
        "a dry run writes no positions"
    );
}

#[test]
fn ready_and_metrics_are_served() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 30, 52);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "30 entries", |r| r.len() >= lines.len());
    let ready = http_get(port, "/ready").expect("/ready answers");
    assert!(
        ready.starts_with("HTTP/1.0 200") || ready.starts_with("HTTP/1.1 200"),
        "{ready}"
    );
    assert!(ready.ends_with("ready\n"));
    let metrics = http_get(port, "/metrics").unwrap();
    for name in [
        "promtail_sent_entries_total",
        "promtail_sent_bytes_total",
        "promtail_encoded_bytes_total",
        "promtail_request_duration_seconds_bucket",
        "promtail_read_bytes_total",
        "promtail_read_lines_total",
        "promtail_files_active_total",
        "promtail_file_bytes_total",
        "lokiship_file_lag_bytes",
        "promtail_targets_active",
        "lokiship_client_queue_bytes{host=\"127.0.0.1:",
        "lokiship_client_queue_entries{host=\"127.0.0.1:",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let read_lines = metrics
        .lines()
        .find(|l| l.starts_with("promtail_read_lines_total{"))
        .unwrap();
    assert!(read_lines.ends_with(" 30"), "{read_lines}");
    assert!(lokiship.terminate().success());
}

#[test]
fn ready_turns_false_while_a_client_fails_longer_than_unhealthy_after() {
    let loki = FakeLoki::start();
    loki.script(&[503; 40]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let lines = gen_audit(&log, 10, 53);
    let config = audit_config(
        dir.path(),
        &log.display().to_string(),
        &loki.url(),
        "    unhealthy_after: 300ms",
    );
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    let status = |port| http_get(port, "/ready").unwrap_or_default();
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen_unready = String::new();
    while loki.accepted().len() < lines.len() {
        assert!(std::time::Instant::now() < deadline, "never delivered");
        let s = status(port);
        if s.contains(" 503 ") {
            seen_unready = s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen_unready.contains("has failed to push for"),
        "/ready said 503 with the reason while Loki failed: {seen_unready:?}"
    );
    let after = status(port);
    assert!(
        after.contains(" 200 ") && after.ends_with("ready\n"),
        "ready again once Loki accepts: {after}"
    );
    assert!(lokiship.terminate().success());
}

#[test]
fn auth_tenant_and_custom_headers_reach_loki() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 5, 53);
    std::fs::write(dir.path().join("password"), "s3cret\n").unwrap();
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "    tenant_id: ops\n",
        &format!(
            "    tenant_id: ops\n    basic_auth: {{username: shipper, password_file: {}/password}}\n    headers: {{X-Team: infra}}\n",
            dir.path().display()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "5 entries", |r| r.len() >= 5);
    assert!(lokiship.terminate().success());
    let req = &loki.requests()[0];
    // base64("shipper:s3cret")
    assert_eq!(
        req.header("authorization"),
        Some("Basic c2hpcHBlcjpzM2NyZXQ=")
    );
    assert_eq!(req.header("x-team"), Some("infra"));
    assert_eq!(req.header("x-scope-orgid"), Some("ops"));
}

#[test]
fn broken_json_and_invalid_utf8_are_shipped_and_counted() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let mut content = b"{\"verb\":\"get\",\"user\":{\"username\":\"a\"}\n".to_vec(); // missing brace
    content.extend_from_slice(b"{\"verb\":\"list\",\"user\":{\"username\":\"b\xff\xfe\"}}\n");
    std::fs::write(&log, &content).unwrap();
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    loki.wait_for(WAIT, "2 entries", |r| r.len() >= 2);
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(lokiship.terminate().success());
    // The two entries have different labels: different streams, in no particular order.
    let mut got = loki.accepted();
    got.sort_by_key(|r| r.line.len());
    assert_eq!(
        got[0].line, "{\"verb\":\"get\",\"user\":{\"username\":\"a\"}",
        "broken JSON is shipped unchanged"
    );
    assert!(
        !got[0].labels.contains("verb="),
        "no labels from broken JSON: {}",
        got[0].labels
    );
    assert_eq!(
        got[1].line,
        "{\"verb\":\"list\",\"user\":{\"username\":\"b\u{fffd}\u{fffd}\"}}"
    );
    assert!(
        got[1].labels.contains("user=\"b\u{fffd}\u{fffd}\""),
        "{}",
        got[1].labels
    );
    assert!(
        metrics
            .contains("lokiship_pipeline_errors_total{stage=\"json\",reason=\"malformed_json\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lokiship_invalid_utf8_lines_total{"),
        "{metrics}"
    );
}

#[test]
fn readline_rate_limit_drops_what_is_over_the_limit() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 200, 54);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "scrape_configs:",
        "limits_config: {readline_rate_enabled: true, readline_rate: 1, readline_burst: 50, readline_rate_drop: true}\nscrape_configs:",
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .args(["-exit-at-eof"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let n = loki.accepted().len();
    assert!(
        (50..=52).contains(&n),
        "the burst passes, the rest is dropped: {n}"
    );
}

#[test]
fn inspect_shows_what_each_stage_changed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "level=warn msg=\"disk low\" user=alice\n").unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"clients: [{{url: "http://127.0.0.1:9/loki/api/v1/push", basic_auth: {{username: me, password: topsecret}}}}]
server: {{http_listen_port: 0}}
positions: {{filename: {d}/positions.yaml}}
scrape_configs:
  - job_name: app
    static_configs:
      - labels: {{job: app, __path__: "{d}/*.log"}}
    pipeline_stages:
      - logfmt: {{mapping: {{level: , user: }}}}
      - labels: {{level: }}
      - template: {{source: user, template: '{{{{ ToUpper .Value }}}}'}}
      - drop: {{source: level, value: debug}}
"#,
            d = dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .args([
            "-dry-run",
            "-inspect",
            "-exit-at-eof",
            "-print-config-stderr",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    for expected in [
        "[inspect: logfmt stage]\n  extracted +level: \"warn\"\n  extracted +user: \"alice\"\n",
        "[inspect: labels stage]\n  label +level: \"warn\"\n",
        "[inspect: template stage]\n  extracted ~user: \"alice\" -> \"ALICE\"\n",
        "[inspect: drop stage]\n  none\n",
        "password: <secret>",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("topsecret"),
        "the password is printed:\n{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("level=\"warn\""), "{stdout}");
}

/// Idle, the file thread sleeps until the next full look at the files (`target_config.sync_period`,
/// 10 s by default); a SIGTERM must not wait for it — Kubernetes and systemd give a few seconds
/// before SIGKILL.
#[test]
fn sigterm_stops_at_once_with_the_default_sync_period() {
    let dir = tempfile::tempdir().unwrap();
    // No file yet: nothing wakes the thread before the next sync.
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let glob = dir.path().join("logs/*.log");
    let loki = FakeLoki::start();
    let config = audit_config(dir.path(), &glob.display().to_string(), &loki.url(), "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("target_config: {sync_period: 200ms}\n", "");
    std::fs::write(&config, text).unwrap();
    let port = enable_server(&config);
    let lokiship = Lokiship::start(&config, &[]);
    support::eventually(Duration::from_secs(30), "never ready", || {
        http_get(port, "/ready").is_some_and(|r| r.contains(" 200 "))
    });
    std::thread::sleep(Duration::from_millis(300));
    let asked = std::time::Instant::now();
    assert!(lokiship.terminate().success());
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopping took {took:?}: it waited for the sync period"
    );
}

#[test]
fn an_unreadable_file_fails_an_exit_at_eof_run() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    gen_audit(&dir.path().join("good.log"), 5, 61);
    let bad = dir.path().join("bad.log");
    gen_audit(&bad, 5, 62);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = audit_config(
        dir.path(),
        &format!("{}/*.log", dir.path().display()),
        &loki.url(),
        "",
    );
    // Root reads any file: run as nobody, as an operator's unprivileged service would.
    let mut command = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_lokiship"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_lokiship"))
    };
    let out = command
        .arg(format!("-config.file={}", config.display()))
        .arg("-exit-at-eof")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        loki.accepted().len(),
        5,
        "the readable file is shipped: {stderr}"
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("1 file errors (open: 1)"), "{stderr}");
    assert!(stderr.contains("file_errors=\"open=1\""), "{stderr}");
}

#[test]
fn a_sighup_reloads_and_reads_nothing_twice() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 3, 63);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loki.wait_for(WAIT, "the first lines", |r| r.len() == 3);
    let pid = child.id().to_string();
    let kill = |sig: &str| Command::new("kill").args([sig, &pid]).status().unwrap();
    kill("-HUP");
    // Still running and shipping after the SIGHUP: new lines arrive.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| {
            use std::io::Write;
            let more = gen_audit(&dir.path().join("more"), 2, 64);
            f.write_all(format!("{}\n", more.join("\n")).as_bytes())
        })
        .unwrap();
    loki.wait_for(WAIT, "lines after the SIGHUP", |r| r.len() == 5);
    assert!(child.try_wait().unwrap().is_none(), "SIGHUP ended lokiship");
    kill("-TERM");
    let status = support::wait_timeout(&mut child, WAIT);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    // logrotate's postrotate SIGHUP reloads the (unchanged) config: nothing is read twice.
    assert!(
        stderr.contains("SIGHUP received: reloading the config"),
        "{stderr}"
    );
    let stopping = stderr
        .find("msg=\"stopping: no more reading\"")
        .expect("stopping is logged");
    let summary = stderr.find("msg=summary").expect("a summary on SIGTERM");
    assert!(
        stopping < summary && stderr[summary..].contains("sent=5"),
        "{stderr}"
    );
}

#[test]
fn targets_are_logged_and_a_glob_matching_nothing_is_warned_once() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    std::fs::write(dir.path().join("logs/1.log"), "one\n").unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            r#"server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: "{url}", batchwait: 50ms}}]
scrape_configs:
  - job_name: logs
    static_configs:
      - targets: [localhost]
        labels: {{job: logs, __path__: "{d}/logs/*.log"}}
      - targets: [localhost]
        labels: {{job: none, __path__: "{d}/missing/*.log"}}
      - targets: [localhost]
        labels: {{job: adir, __path__: "{d}/adir"}}
"#,
            url = loki.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", config.display()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loki.wait_for(WAIT, "the first file", |r| r.len() == 1);
    // New files make lokiship look at the globs again: the empty one is not warned again.
    for (n, name) in ["2.log", "3.log"].iter().enumerate() {
        std::fs::write(dir.path().join("logs").join(name), format!("more {name}\n")).unwrap();
        loki.wait_for(WAIT, name, |r| r.len() == n + 2);
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(support::wait_timeout(&mut child, WAIT).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let adding: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("msg=\"adding target\""))
        .collect();
    assert_eq!(adding.len(), 3, "{stderr}");
    assert!(
        adding[0].contains(&format!("{d}/logs/*.log:{{job=\\\"logs\\\"}}")),
        "{stderr}"
    );
    let empty = |job: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("matches no file") && l.contains(&format!("job=\\\"{job}\\\"")))
            .count()
    };
    assert_eq!(empty("none"), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("did you mean {d}/adir/*.log?")),
        "a directory as __path__ is explained: {stderr}"
    );
}

#[test]
fn debug_logs_leave_out_the_http_stack_unless_trace() {
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    gen_audit(&log, 5, 65);
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let run = |level: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .arg(format!("-config.file={}", config.display()))
            .args(["-exit-at-eof", &format!("-log.level={level}")])
            .arg(format!(
                "-positions.file={}/{level}.yaml",
                dir.path().display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let http_stack = |log: &str| {
        log.lines()
            .filter(|l| {
                ["hyper", "reqwest", "rustls", "h2"]
                    .iter()
                    .any(|c| l.contains(&format!("caller={c}")))
            })
            .count()
    };
    let debug = run("debug");
    assert!(
        debug.contains("level=debug") || debug.contains("level=info"),
        "{debug}"
    );
    assert_eq!(http_stack(&debug), 0, "{debug}");
    assert!(http_stack(&run("trace")) > 0, "trace shows them");
}

#[test]
fn promtail_resumes_from_the_positions_file_lokiship_wrote() {
    // Switching a node back to Promtail must not re-send what lokiship shipped, nor stop
    // Promtail from starting: it reads the positions file strictly.
    let Some(promtail) = support::peers::peer_binary("promtail") else {
        return;
    };
    let loki = FakeLoki::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "shipped by lokiship 1\nshipped by lokiship 2\n").unwrap();
    let config = audit_config(dir.path(), &log.display().to_string(), &loki.url(), "");
    let status = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .args([
            "-exit-at-eof",
            &format!("-config.file={}", config.display()),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(loki.accepted().len(), 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"after the switch\n"))
        .unwrap();

    let promtail_config = dir.path().join("promtail.yaml");
    std::fs::write(
        &promtail_config,
        format!(
            "server: {{disable: true}}\npositions: {{filename: {}/positions.yaml}}\nclients: [{{url: '{}'}}]\nscrape_configs:\n- job_name: app\n  static_configs: [{{targets: [localhost], labels: {{job: app, __path__: '{}'}}}}]\n",
            dir.path().display(),
            loki.url(),
            log.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(promtail)
        .args([
            &format!("-config.file={}", promtail_config.display()),
            "-dry-run",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let done = line.contains("after the switch");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    let deadline = std::time::Instant::now() + WAIT;
    while !printed.is_finished() && std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break; // Promtail refused to start: its stderr says why.
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let seen = printed.join().unwrap();
    assert!(
        seen.iter().any(|l| l.contains("after the switch")),
        "Promtail did not ship the new line: {seen:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !seen.iter().any(|l| l.contains("shipped by lokiship")),
        "Promtail sent again what lokiship had shipped: {seen:?}"
    );
}
