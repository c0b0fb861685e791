//! Reloading the config of a running lokiship: SIGHUP and `POST /reload` read the file again; a
//! valid new config takes over where the old one stopped (positions kept: nothing read twice,
//! nothing skipped), a broken one is refused with its reason while the running config goes on,
//! and `lokiship_config_last_reload_successful` says which happened.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{config, FakeLoki, Lokiship};

/// The push receiver's port in [`write_config`]'s configs.
fn push_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(support::free_port)
}

/// A config with the audit pipeline on `dir/<glob>` for each `(job, label env, glob)`, a push
/// receiver on [`push_port`], and the HTTP server on `port` with `/reload`.
fn write_config(dir: &Path, url: &str, port: u16, jobs: &[(&str, &str, &str)]) {
    let mut text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}, enable_runtime_reload: true}}
positions: {{filename: {dir}/positions.yaml, sync_period: 200ms}}
target_config: {{sync_period: 200ms}}
clients:
  - url: {url}
    batchwait: 100ms
scrape_configs:
  - job_name: pushed
    loki_push_api: {{server: {{http_listen_address: 127.0.0.1, http_listen_port: {push}}}}}
",
        dir = dir.display(),
        push = push_port()
    );
    for (job, env, glob) in jobs {
        text.push_str(&format!(
            "  - job_name: {job}
    static_configs:
      - targets: [localhost]
        labels: {{job: {job}, env: {env}, __path__: '{dir}/{glob}'}}
    pipeline_stages:
{stages}
",
            dir = dir.display(),
            stages = config::AUDIT_STAGES
        ));
    }
    std::fs::write(dir.join("config.yaml"), text).unwrap();
}

fn append(path: &Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let text = support::http_get(port, "/metrics")?;
    let value = support::metric_samples(&text, name, "").next();
    value
}

/// Audit lines that each ship (no `RequestReceived`), made from `seed`.
fn shipped_lines(n: usize, seed: u64) -> Vec<String> {
    support::gen::audit_lines(n * 2, seed)
        .into_iter()
        .filter(|l| !l.contains("RequestReceived"))
        .take(n)
        .collect()
}

#[test]
fn a_reload_applies_a_valid_config_keeps_positions_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let port = support::free_port();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let a = dir.path().join("a/audit.log");
    let first = shipped_lines(30, 1);
    append(&a, &first);
    write_config(
        dir.path(),
        &loki.url(),
        port,
        &[("audit", "one", "a/*.log")],
    );
    let lokiship = Lokiship::start(&dir.path().join("config.yaml"), &[]);
    loki.wait_for(Duration::from_secs(30), "the first lines", |got| {
        got.len() >= 30
    });
    assert_eq!(
        metric(port, "lokiship_config_last_reload_successful"),
        Some(1.0)
    );

    // SIGHUP with a changed label and a new job.
    write_config(
        dir.path(),
        &loki.url(),
        port,
        &[("audit", "two", "a/*.log"), ("more", "two", "b/*.log")],
    );
    Command::new("kill")
        .args(["-HUP", &lokiship.child.id().to_string()])
        .status()
        .unwrap();
    support::eventually(Duration::from_secs(30), "the reload applied", || {
        metric(port, "promtail_config_reload_success_total") == Some(1.0)
    });
    let second = shipped_lines(20, 2);
    append(&a, &second);
    append(&dir.path().join("b/audit.log"), &shipped_lines(10, 3));
    loki.wait_for(
        Duration::from_secs(30),
        "the lines after the reload",
        |got| got.len() >= 60,
    );
    let got = loki.accepted();
    assert_eq!(
        got.len(),
        60,
        "each line once: nothing of a.log read again after the reload"
    );
    let env_of = |line: &str| {
        got.iter()
            .find(|r| r.line == line)
            .map(|r| r.labels.clone())
            .unwrap_or_else(|| panic!("not shipped: {line}"))
    };
    assert!(first.iter().all(|l| env_of(l).contains(r#"env="one""#)));
    assert!(second.iter().all(|l| env_of(l).contains(r#"env="two""#)));
    assert_eq!(
        got.iter()
            .filter(|r| r.labels.contains(r#"job="more""#))
            .count(),
        10
    );

    // A broken config is refused with its reason; the running one goes on.
    std::fs::write(
        dir.path().join("config.yaml"),
        "clients: [{url: }]\nscrape_configs: 12\n",
    )
    .unwrap();
    let (status, body) = support::http_post(port, "/reload", &[], b"").unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("scrape_configs"), "the reason: {body}");
    assert_eq!(
        metric(port, "lokiship_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(metric(port, "promtail_config_reload_fail_total"), Some(1.0));
    let third = shipped_lines(5, 4);
    append(&a, &third);
    loki.wait_for(
        Duration::from_secs(30),
        "lines with the kept config",
        |got| got.len() >= 65,
    );
    assert!(loki
        .accepted()
        .iter()
        .filter(|r| third.contains(&r.line))
        .all(|r| r.labels.contains(r#"env="two""#)));

    // Fixed again: POST /reload applies it.
    write_config(
        dir.path(),
        &loki.url(),
        port,
        &[("audit", "three", "a/*.log")],
    );
    let (status, body) = support::http_post(port, "/reload", &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    support::eventually(
        Duration::from_secs(30),
        "the server back after the reload",
        || metric(port, "lokiship_config_last_reload_successful") == Some(1.0),
    );
    // The status page lists this run's parts once, not once per reload.
    let push = format!("127.0.0.1:{}", push_port());
    support::eventually(
        Duration::from_secs(20),
        "the push receiver listed once",
        || support::http_get(port, "/targets").is_some_and(|page| page.matches(&push).count() == 1),
    );
    assert_eq!(lokiship.terminate().code(), Some(0));
    assert_eq!(
        loki.accepted().len(),
        65,
        "nothing shipped twice over three reloads"
    );
}

#[test]
fn a_sighup_with_the_same_config_restarts_nothing() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let (port, syslog_port) = (support::free_port(), support::free_port());
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: '{url}', batchwait: 50ms}}]
scrape_configs:
  - job_name: syslog
    syslog: {{listen_address: '127.0.0.1:{syslog_port}', labels: {{job: syslog}}}}
",
            dir = dir.path().display(),
            url = loki.url()
        ),
    )
    .unwrap();
    let lokiship = Lokiship::start(&config, &[]);
    let mut sender = None;
    support::eventually(Duration::from_secs(20), "the syslog receiver", || {
        sender = std::net::TcpStream::connect(("127.0.0.1", syslog_port)).ok();
        sender.is_some()
    });
    let mut sender = sender.unwrap();
    let message = |n: u32| format!("<13>1 2026-12-02T10:00:0{n}Z host app - - - message {n}\n");
    sender.write_all(message(1).as_bytes()).unwrap();
    loki.wait_for(Duration::from_secs(20), "the first message", |got| {
        got.len() == 1
    });
    // logrotate's postrotate: SIGHUP, the config as it was.
    Command::new("kill")
        .args(["-HUP", &lokiship.child.id().to_string()])
        .status()
        .unwrap();
    support::eventually(Duration::from_secs(20), "the reload looked at", || {
        metric(port, "promtail_config_reload_success_total") == Some(1.0)
    });
    // The connection lives on: the receiver was not restarted.
    assert_eq!(metric(port, "lokiship_syslog_connections"), Some(1.0));
    sender.write_all(message(2).as_bytes()).unwrap();
    loki.wait_for(Duration::from_secs(20), "the second message", |got| {
        got.len() == 2
    });
    assert_eq!(metric(port, "lokiship_syslog_connections"), Some(1.0));
    assert_eq!(lokiship.terminate().code(), Some(0));
}

/// [`a_reload_that_changes_one_job_leaves_the_others_running`]'s config: a syslog job and a
/// `multiline` file job that never change, and the file jobs `(job, env, glob)`.
fn jobs_config(
    dir: &Path,
    url: &str,
    ports: (u16, u16),
    batchwait: &str,
    jobs: &[(&str, &str, &str)],
) {
    let d = dir.display();
    let mut text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {d}/positions.yaml, sync_period: 200ms}}
target_config: {{sync_period: 200ms}}
clients: [{{url: '{url}', batchwait: {batchwait}}}]
scrape_configs:
  - job_name: syslog
    syslog: {{listen_address: '127.0.0.1:{syslog}', labels: {{job: syslog}}}}
  - job_name: app
    static_configs: [{{targets: [localhost], labels: {{job: app, __path__: '{d}/app/*.log'}}}}]
    pipeline_stages:
      - multiline: {{firstline: '^START', max_wait_time: 60s}}
",
        port = ports.0,
        syslog = ports.1,
    );
    for (job, env, glob) in jobs {
        text.push_str(&format!(
            "  - job_name: {job}
    static_configs: [{{targets: [localhost], labels: {{job: {job}, env: {env}, __path__: '{d}/{glob}'}}}}]
"
        ));
    }
    std::fs::write(dir.join("config.yaml"), text).unwrap();
}

#[test]
fn a_reload_that_changes_one_job_leaves_the_others_running() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let ports = (support::free_port(), support::free_port());
    for sub in ["app", "a", "b", "c"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let (app, a, b, c) = (
        dir.path().join("app/app.log"),
        dir.path().join("a/x.log"),
        dir.path().join("b/x.log"),
        dir.path().join("c/x.log"),
    );
    let v1 = [("audit", "one", "a/*.log"), ("auth", "one", "b/*.log")];
    jobs_config(dir.path(), &loki.url(), ports, "100ms", &v1);
    let log = dir.path().join("lokiship.log");
    let lokiship = support::Lokiship {
        child: Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .arg(format!(
                "-config.file={}",
                dir.path().join("config.yaml").display()
            ))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    };
    let lines = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix} {i}")).collect()
    };
    let mut sender = None;
    support::eventually(Duration::from_secs(20), "the syslog receiver", || {
        sender = std::net::TcpStream::connect(("127.0.0.1", ports.1)).ok();
        sender.is_some()
    });
    let mut sender = sender.unwrap();
    let message = |n: u32| format!("<13>1 2026-12-02T10:00:0{n}Z host app - - - message {n}\n");
    sender.write_all(message(1).as_bytes()).unwrap();
    append(&a, &lines("audit before", 10));
    append(&b, &lines("auth before", 5));
    // Held by the multiline stage until the next START line (or 60 s).
    append(&app, &["START one".into(), "  cont a".into()]);
    loki.wait_for(Duration::from_secs(30), "the first lines", |got| {
        got.len() >= 16
    });

    // Lines of auth in flight at the reload (Loki answers slowly): they are delivered, and
    // nothing after them is read.
    loki.slow_down(Duration::from_secs(2));
    append(&b, &lines("auth pending", 5));
    let size = std::fs::metadata(&b).unwrap().len() as f64;
    let filter = format!("path=\"{}\"", b.display());
    support::eventually(Duration::from_secs(20), "auth's new lines read", || {
        support::http_get(ports.0, "/metrics").is_some_and(|m| {
            support::metric_samples(&m, "promtail_read_bytes_total", &filter).next() == Some(size)
        })
    });

    // audit changes, auth goes, extra comes; syslog and app stay as they are.
    let v2 = [("audit", "two", "a/*.log"), ("extra", "two", "c/*.log")];
    jobs_config(dir.path(), &loki.url(), ports, "100ms", &v2);
    Command::new("kill")
        .args(["-HUP", &lokiship.child.id().to_string()])
        .status()
        .unwrap();
    support::eventually(Duration::from_secs(30), "the reload applied", || {
        metric(ports.0, "promtail_config_reload_success_total") == Some(1.0)
    });
    // The file source takes the new labels after the pass it is in: /targets shows when.
    support::eventually(Duration::from_secs(30), "audit's file with env two", || {
        support::http_get(ports.0, "/targets").is_some_and(|page| {
            page.lines().any(|row| {
                row.contains("env=&quot;two&quot;") && row.contains("job=&quot;audit&quot;")
            })
        })
    });
    loki.slow_down(Duration::ZERO);
    // The unchanged syslog job was not restarted: the connection lives on.
    sender.write_all(message(2).as_bytes()).unwrap();
    assert_eq!(metric(ports.0, "lokiship_syslog_connections"), Some(1.0));
    append(&app, &["  cont b".into(), "START two".into()]);
    append(&a, &lines("audit after", 10));
    append(&b, &lines("auth after", 5));
    append(&c, &lines("extra", 5));
    loki.wait_for(
        Duration::from_secs(30),
        "the lines after the reload",
        |got| got.len() >= 38, // 16 before, 5 pending, message 2, 10 audit, 5 extra, the joined entry
    );
    let got = loki.accepted();
    let labels_of = |line: &str| {
        got.iter()
            .find(|r| r.line == line)
            .map(|r| r.labels.clone())
            .unwrap_or_else(|| panic!("not shipped: {line:?}"))
    };
    assert!(lines("audit before", 10)
        .iter()
        .all(|l| labels_of(l).contains(r#"env="one""#)));
    assert!(lines("audit after", 10)
        .iter()
        .all(|l| labels_of(l).contains(r#"env="two""#)));
    assert!(lines("extra", 5)
        .iter()
        .all(|l| labels_of(l).contains(r#"job="extra""#)));
    assert!(lines("auth pending", 5)
        .iter()
        .all(|l| labels_of(l).contains(r#"job="auth""#)));
    // The unchanged multiline job kept what it held: the entry is joined across the reload.
    labels_of("START one\n  cont a\n  cont b");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reloading in place"), "{text}");
    assert_eq!(text.matches("HTTP server listening").count(), 1, "{text}");
    // The removed job's file is no longer read.
    assert!(
        !got.iter().any(|r| r.line.starts_with("auth after")),
        "a removed job's file was read on"
    );

    // A change of the clients restarts the whole run: what the multiline stage held is
    // flushed as the run stops, and the receivers start again.
    jobs_config(dir.path(), &loki.url(), ports, "50ms", &v2);
    Command::new("kill")
        .args(["-HUP", &lokiship.child.id().to_string()])
        .status()
        .unwrap();
    loki.wait_for(
        Duration::from_secs(30),
        "the held entry flushed by the restart",
        |got| got.iter().any(|r| r.line == "START two"),
    );
    support::eventually(Duration::from_secs(30), "the run restarted", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.matches("HTTP server listening").count() == 2)
    });
    assert_eq!(lokiship.terminate().code(), Some(0));
    let got = loki.accepted();
    let mut shipped: Vec<&str> = got.iter().map(|r| r.line.as_str()).collect();
    let all = shipped.len();
    shipped.sort();
    shipped.dedup();
    assert_eq!(shipped.len(), all, "nothing shipped twice");
}

#[test]
fn a_job_that_cannot_start_after_a_reload_is_said_and_the_next_reload_starts_it() {
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    let port = support::free_port();
    // The port the new job wants is taken when the reload comes.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog_port = taken.local_addr().unwrap().port();
    let config = dir.path().join("config.yaml");
    let write = |jobs: &str| {
        let text = format!(
            "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {dir}/positions.yaml}}
clients: [{{url: '{url}'}}]
scrape_configs:
  - job_name: files
    static_configs: [{{targets: [localhost], labels: {{job: files, __path__: '{dir}/*.log'}}}}]
{jobs}",
            dir = dir.path().display(),
            url = loki.url()
        );
        std::fs::write(&config, text).unwrap();
    };
    write("");
    let lokiship = Lokiship::start(&config, &[]);
    support::eventually(Duration::from_secs(20), "the server", || {
        metric(port, "lokiship_config_last_reload_successful") == Some(1.0)
    });
    write(&format!(
        "  - job_name: syslog\n    syslog: {{listen_address: '127.0.0.1:{syslog_port}'}}\n"
    ));
    let hup = || {
        Command::new("kill")
            .args(["-HUP", &lokiship.child.id().to_string()])
            .status()
            .unwrap()
    };
    hup();
    support::eventually(Duration::from_secs(20), "the failed start said", || {
        metric(port, "promtail_config_reload_success_total") == Some(1.0)
            && metric(port, "lokiship_config_last_reload_successful") == Some(0.0)
    });
    // The port is free again; the same config, sent again, restarts everything.
    drop(taken);
    hup();
    support::eventually(Duration::from_secs(20), "the syslog job listening", || {
        std::net::TcpStream::connect(("127.0.0.1", syslog_port)).is_ok()
            && metric(port, "lokiship_config_last_reload_successful") == Some(1.0)
    });
    assert_eq!(lokiship.terminate().code(), Some(0));
}
