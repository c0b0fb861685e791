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
