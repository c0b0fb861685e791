//! Credentials on `loki_push_api`: HTTPS from Promtail's `server.http_tls_config`, client
//! certificates (`client_auth_type`), and lokiship's `auth.bearer_token_file`, re-read when it
//! changes. A push without them is refused before its body is read, and nothing of it is shipped.
//! (The audit webhook's are tested in `audit_webhook.rs`, syslog's client certificates in
//! `syslog.rs`.)

mod support;

use lokiship::wire::logproto::StreamAdapter;
use lokiship::wire::{encode_push, entry_adapter};
use std::path::Path;
use std::time::Duration;
use support::pki::write_pki;
use support::{eventually, free_port, http_get, metric_samples, FakeLoki, Lokiship};

const WAIT: Duration = Duration::from_secs(60);

/// A push of one line, `line`, in stream `{app="web"}`.
fn push_body(line: &str) -> Vec<u8> {
    encode_push(vec![StreamAdapter {
        labels: r#"{app="web"}"#.into(),
        entries: vec![entry_adapter(
            1_700_000_000_000_000_000,
            line.into(),
            vec![],
        )],
        hash: 0,
    }])
}

/// An HTTPS client trusting `trust`'s CA, presenting `identity`'s client certificate if given.
fn client(trust: &Path, identity: Option<&Path>) -> reqwest::Client {
    let ca = std::fs::read(trust.join("ca.crt")).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(30));
    if let Some(dir) = identity {
        let mut pem = std::fs::read(dir.join("client.crt")).unwrap();
        pem.extend(std::fs::read(dir.join("client.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// POSTs a push of `line`: the status and answer, or the connection's error.
fn push(
    client: &reqwest::Client,
    url: &str,
    line: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = client
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .body(push_body(line));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, text.trim().to_string()))
    })
}

/// lokiship with one `loki_push_api` job whose server block ends in `tls` and whose job block
/// ends in `auth`: the shipper, its server's port and the push URL.
fn start(dir: &Path, loki: &FakeLoki, tls: &str, auth: &str) -> (Lokiship, u16, String) {
    let (port, push_port) = (free_port(), free_port());
    let config = dir.join("lokiship.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {d}/positions.yaml}}
clients:
  - url: {url}
    batchwait: 100ms
scrape_configs:
  - job_name: pushed
    loki_push_api:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: {push_port}
        http_tls_config: {tls}
{auth}
",
            d = dir.display(),
            url = loki.url(),
        ),
    )
    .unwrap();
    let mut shipper = Lokiship::start(&config, &[]);
    eventually(WAIT, "lokiship's /ready", || {
        assert!(
            shipper.child.try_wait().unwrap().is_none(),
            "lokiship exited"
        );
        http_get(port, "/ready").is_some_and(|r| r.contains(" 200 "))
    });
    let url = format!("https://127.0.0.1:{push_port}/loki/api/v1/push");
    (shipper, port, url)
}

fn refusals(port: u16, reason: &str) -> f64 {
    let text = http_get(port, "/metrics").unwrap_or_default();
    metric_samples(
        &text,
        "lokiship_push_errors_total",
        &format!("reason=\"{reason}\""),
    )
    .sum()
}

fn pki(dir: &Path, name: &str) -> std::path::PathBuf {
    let pki = dir.join(name);
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    pki
}

#[test]
fn a_push_needs_the_current_token_or_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (pki(dir.path(), "pki"), pki(dir.path(), "other"));
    let token = dir.path().join("token");
    std::fs::write(&token, "first-t0ken\n").unwrap();
    let loki = FakeLoki::start();
    let p = ours.display();
    let (shipper, port, url) = start(
        dir.path(),
        &loki,
        &format!("{{cert_file: {p}/server.crt, key_file: {p}/server.key, client_auth_type: VerifyClientCertIfGiven, client_ca_file: {p}/ca.crt}}"),
        &format!("      auth: {{bearer_token_file: {}}}", token.display()),
    );
    let anonymous = client(&ours, None);
    assert_eq!(
        push(&anonymous, &url, "no token", None),
        Ok((401, "no bearer token".into()))
    );
    assert_eq!(
        push(&anonymous, &url, "wrong token", Some("guess")),
        Ok((401, "wrong bearer token".into()))
    );
    assert_eq!(
        push(&anonymous, &url, "with the token", Some("first-t0ken")).map(|a| a.0),
        Ok(204)
    );
    let with_cert = client(&ours, Some(&ours));
    assert_eq!(
        push(&with_cert, &url, "with a certificate", None).map(|a| a.0),
        Ok(204)
    );
    // A certificate another CA signed fails the handshake: nothing is read.
    assert!(push(&client(&ours, Some(&other)), &url, "a stranger", None).is_err());
    // The token is rotated: the new one counts at once, the old one no longer.
    std::fs::write(&token, "second-t0ken\n").unwrap();
    assert_eq!(
        push(&anonymous, &url, "with the new token", Some("second-t0ken")).map(|a| a.0),
        Ok(204)
    );
    assert_eq!(
        push(&anonymous, &url, "with the old token", Some("first-t0ken")),
        Ok((401, "wrong bearer token".into()))
    );

    let want = ["with a certificate", "with the new token", "with the token"];
    loki.wait_for(WAIT, "the three pushes let in", |got| got.len() >= 3);
    eventually(WAIT, "3 refusals counted", || {
        refusals(port, "unauthorized") == 3.0
    });
    let mut lines: Vec<String> = loki.accepted().into_iter().map(|e| e.line).collect();
    lines.sort();
    assert_eq!(lines, want, "only what was let in is shipped");
    assert_eq!(shipper.terminate().code(), Some(0));
}

#[test]
fn required_client_certificates_end_the_handshake_of_a_client_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pki(dir.path(), "pki");
    let loki = FakeLoki::start();
    let p = ours.display();
    let (shipper, _, url) = start(
        dir.path(),
        &loki,
        &format!("{{cert_file: {p}/server.crt, key_file: {p}/server.key, client_auth_type: RequireAndVerifyClientCert, client_ca_file: {p}/ca.crt}}"),
        "",
    );
    assert!(push(&client(&ours, None), &url, "anonymous", None).is_err());
    assert_eq!(
        push(
            &client(&ours, Some(&ours)),
            &url,
            "with a certificate",
            None
        )
        .map(|a| a.0),
        Ok(204)
    );
    loki.wait_for(WAIT, "the push let in", |got| !got.is_empty());
    let lines: Vec<String> = loki.accepted().into_iter().map(|e| e.line).collect();
    assert_eq!(lines, ["with a certificate"]);
    assert_eq!(shipper.terminate().code(), Some(0));
}

#[test]
fn a_tls_block_that_would_not_verify_clients_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    for (tls, says) in [
        (
            "{cert_file: s.crt, key_file: s.key, client_ca_file: ca.crt}",
            "client_ca_file is set without a client_auth_type that verifies",
        ),
        (
            "{cert_file: s.crt, key_file: s.key, client_auth_type: RequestClientCert, client_ca_file: ca.crt}",
            "does not verify the certificate",
        ),
    ] {
        let config = dir.path().join("bad.yaml");
        std::fs::write(
            &config,
            format!(
                "server: {{disable: true}}
positions: {{filename: {d}/positions.yaml}}
clients: [{{url: http://127.0.0.1:9/loki/api/v1/push}}]
scrape_configs:
  - job_name: pushed
    loki_push_api:
      server:
        http_listen_port: 0
        http_tls_config: {tls}
",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .arg(format!("-config.file={}", config.display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(stderr.contains("bad.yaml:9"), "names the line: {stderr}");
    }
}
