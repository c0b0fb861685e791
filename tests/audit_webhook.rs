//! `k8s_audit_webhook`: what kube-apiserver's audit webhook backend POSTs is shipped as the same
//! events read from its audit log would be, answered 200 only once safe, and refused clearly when
//! it is not an audit EventList or comes without credentials.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::pki::write_pki;
use support::{
    eventually, free_port, http_get, metric_samples, start_preset, stop_preset as stop, FakeLoki,
    Lokiship, Received,
};

const WAIT: Duration = Duration::from_secs(60);

/// The body the API server sends for `events` (each one JSON text).
fn event_list(events: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        events.join(",")
    )
}

/// An event as kube-apiserver writes it to its log file (its type first), and as it puts it in
/// an EventList (without its type: the list has it).
fn as_the_api_server_writes(event: &str) -> (String, String) {
    let mut value: serde_json::Value = serde_json::from_str(event).unwrap();
    let object = value.as_object_mut().unwrap();
    object.remove("kind");
    object.remove("apiVersion");
    let item = value.to_string();
    let line = format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1",{}"#,
        &item[1..]
    );
    (line, item)
}

/// An HTTPS client trusting the CA in `dir` (`ca.crt`), presenting `dir`'s client certificate
/// when `identity` names that directory.
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

/// POSTs `body` to `url`: the status and body of the answer, or the connection's error.
fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    })
}

/// `config/k8s-audit-webhook.yaml` on 127.0.0.1 with the certificates in `pki`, pushing to `loki`,
/// once ready: the shipper, its server's port and its receiver's port.
fn start_webhook_preset(dir: &Path, loki: &FakeLoki, pki: &Path) -> (support::Shipper, u16, u16) {
    let (port, hook_port) = (free_port(), free_port());
    let p = |f: &str| pki.join(f).display().to_string();
    let shipper = start_preset(
        "k8s-audit-webhook.yaml",
        &dir.join("webhook"),
        loki,
        port,
        &[
            ("WEBHOOK_LISTEN_ADDRESS", "127.0.0.1".into()),
            ("WEBHOOK_LISTEN_PORT", hook_port.to_string()),
            ("WEBHOOK_CERT_FILE", p("server.crt")),
            ("WEBHOOK_KEY_FILE", p("server.key")),
            ("WEBHOOK_CLIENT_CA_FILE", p("ca.crt")),
        ],
    );
    wait_ready(port);
    (shipper, port, hook_port)
}

fn wait_ready(port: u16) {
    eventually(WAIT, "lokiship's /ready", || {
        http_get(port, "/ready").is_some_and(|r| r.contains(" 200 "))
    });
}

/// What Loki stored, in an order that does not depend on how it was batched.
fn sorted(mut entries: Vec<Received>) -> Vec<Received> {
    for e in &mut entries {
        e.structured_metadata.sort();
    }
    entries.sort_by(|a, b| (a.ts_ns, &a.line, &a.labels).cmp(&(b.ts_ns, &b.line, &b.labels)));
    entries
}

fn pipeline_of(preset: &str) -> serde_yaml_ng::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(preset);
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["scrape_configs"][0]["pipeline_stages"].clone()
}

#[test]
fn the_webhook_preset_has_the_file_presets_pipeline() {
    let file = pipeline_of("k8s-audit.yaml");
    assert!(file.as_sequence().is_some_and(|s| s.len() > 3));
    assert_eq!(pipeline_of("k8s-audit-webhook.yaml"), file);
}

#[test]
fn an_event_gets_the_same_entry_by_webhook_as_from_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let (lines, items): (Vec<String>, Vec<String>) = support::gen::audit_lines(500, 7)
        .iter()
        .map(|e| as_the_api_server_writes(e))
        .unzip();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    support::gen::write_lines(&logs.join("audit.log"), &lines);
    let kept = lines
        .iter()
        .filter(|l| !l.contains(r#""stage":"RequestReceived""#))
        .count();
    assert!(kept > 100 && kept < lines.len());

    let by_file = FakeLoki::start();
    let file_dir = dir.path().join("file");
    let file_port = free_port();
    let file_shipper = start_preset(
        "k8s-audit.yaml",
        &file_dir,
        &by_file,
        file_port,
        &[("AUDIT_LOG_DIR", logs.display().to_string())],
    );

    let by_webhook = FakeLoki::start();
    let (hook_shipper, port, hook_port) = start_webhook_preset(dir.path(), &by_webhook, &pki);
    let https = client(&pki, Some(&pki));
    let url = format!("https://127.0.0.1:{hook_port}/audit");
    // In batches, as the API server sends them (up to 400 events).
    for batch in items.chunks(170) {
        assert_eq!(
            post(&https, &url, event_list(batch), None),
            Ok((200, "{}\n".into()))
        );
    }
    by_file.wait_for(WAIT, "every completed event, from the file", |r| {
        r.len() >= kept
    });
    by_webhook.wait_for(WAIT, "every completed event, by webhook", |r| {
        r.len() >= kept
    });
    let metrics = http_get(port, "/metrics").unwrap();
    stop(file_shipper);
    stop(hook_shipper);

    let (from_file, from_hook) = (sorted(by_file.accepted()), sorted(by_webhook.accepted()));
    assert_eq!(from_file.len(), kept);
    assert!(from_file[0].labels.contains("user=") && !from_file[0].structured_metadata.is_empty());
    assert_eq!(
        from_hook, from_file,
        "labels, structured metadata, timestamps and lines"
    );
    let events: f64 = metric_samples(&metrics, "lokiship_audit_webhook_events_total", "").sum();
    assert_eq!(events, lines.len() as f64);
    assert_eq!(
        metric_samples(
            &metrics,
            "lokiship_audit_webhook_requests_total",
            "code=\"200\""
        )
        .sum::<f64>(),
        3.0
    );
}

/// lokiship with one `k8s_audit_webhook` job over HTTPS, pushing to `loki`.
struct Receiver {
    shipper: Lokiship,
    port: u16,
    url: String,
}

fn start_receiver(dir: &Path, loki: &FakeLoki, hook: &str, wal: &str) -> Receiver {
    let (port, hook_port) = (free_port(), free_port());
    let config = dir.join("lokiship.yaml");
    let d = dir.join("pki");
    let d = d.display();
    std::fs::write(
        &config,
        format!(
            "server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}}}
positions: {{filename: {dir}/positions.yaml}}
clients:
  - url: {url}
    batchwait: 100ms
    backoff_config: {{min_period: 50ms, max_period: 200ms, max_retries: 1000}}
{wal}
scrape_configs:
  - job_name: audit
    k8s_audit_webhook:
      server:
        http_listen_address: 127.0.0.1
        http_listen_port: {hook_port}
        tls_config: {{cert_file: {d}/server.crt, key_file: {d}/server.key, client_ca_file: {d}/ca.crt}}
      labels: {{job: audit}}
{hook}
",
            dir = dir.display(),
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
    Receiver {
        shipper,
        port,
        url: format!("https://127.0.0.1:{hook_port}/"),
    }
}

fn metric(port: u16, name: &str, filter: &str) -> f64 {
    let text = http_get(port, "/metrics").unwrap_or_default();
    metric_samples(&text, name, filter).sum()
}

#[test]
fn credentials_and_bodies_are_checked_and_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let other = dir.path().join("other-ca");
    std::fs::create_dir(&other).unwrap();
    write_pki(&other);
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let loki = FakeLoki::start();
    let r = start_receiver(
        dir.path(),
        &loki,
        &format!(
            "      auth: {{bearer_token_file: {}}}\n      max_request_bytes: 64KB",
            token.display()
        ),
        "",
    );
    let events = support::gen::audit_lines(4, 3);
    let body = || event_list(&events[..1]);
    let anonymous = client(&pki, None);
    let status = |c: &reqwest::Client, body: String, token: Option<&str>| {
        post(c, &r.url, body, token).map(|(s, text)| (s, text.trim().to_string()))
    };

    assert_eq!(
        status(&anonymous, body(), None),
        Ok((401, "no bearer token".into()))
    );
    assert_eq!(
        status(&anonymous, body(), Some("nope")),
        Ok((401, "wrong bearer token".into()))
    );
    assert_eq!(
        status(&anonymous, event_list(&events[0..1]), Some("t0ken"))
            .unwrap()
            .0,
        200
    );
    let with_cert = client(&pki, Some(&pki));
    assert_eq!(
        status(&with_cert, event_list(&events[1..2]), None)
            .unwrap()
            .0,
        200
    );
    // A certificate another CA signed fails the handshake: nothing is read.
    let stranger = client(&pki, Some(&other));
    assert!(status(&stranger, event_list(&events[2..3]), None).is_err());

    let (code, why) = status(&with_cert, "{\"kind\":".into(), None).unwrap();
    assert_eq!(code, 400);
    assert!(why.contains("not JSON"), "{why}");
    let (code, why) = status(
        &with_cert,
        r#"{"kind":"Pod","apiVersion":"v1"}"#.into(),
        None,
    )
    .unwrap();
    assert_eq!(code, 400);
    assert!(why.contains("not an EventList of audit.k8s.io/v1"), "{why}");
    let huge = event_list(&vec![events[3].clone(); 200]);
    assert!(huge.len() > 64 * 1024);
    // The 413 comes before the body is read (its Content-Length says enough): a sender still
    // writing may see the connection closed instead of the answer; either way nothing is shipped,
    // and the refusal is counted below.
    match status(&with_cert, huge, None) {
        Ok((code, why)) => {
            assert_eq!(code, 413);
            assert!(why.contains("max_request_bytes"), "{why}");
        }
        Err(e) => assert!(
            e.contains("BrokenPipe") || e.contains("ConnectionReset"),
            "{e}"
        ),
    }

    loki.wait_for(WAIT, "the two events let in", |got| got.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let mut lines: Vec<String> = loki.accepted().into_iter().map(|e| e.line).collect();
    lines.sort();
    let mut want = events[..2].to_vec();
    want.sort();
    assert_eq!(lines, want, "only what was let in is shipped");
    for (code, n) in [
        ("200", 2.0),
        ("401", 2.0),
        ("400", 2.0),
        ("413", 1.0),
        ("tls_handshake_failed", 1.0),
    ] {
        eventually(WAIT, &format!("{n} requests answered {code}"), || {
            metric(
                r.port,
                "lokiship_audit_webhook_requests_total",
                &format!("code=\"{code}\""),
            ) == n
        });
    }
    assert_eq!(r.shipper.terminate().code(), Some(0));
}

#[test]
fn a_batch_not_safe_in_time_is_answered_503_and_the_retry_lands() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let loki = FakeLoki::start();
    loki.script(&[500; 100_000]);
    // Without a disk queue an event is safe only once Loki has it.
    let r = start_receiver(dir.path(), &loki, "", "wal: {enabled: false}");
    let events = support::gen::audit_lines(5, 9);
    let https = client(&pki, Some(&pki));
    let (code, why) = post(&https, &r.url, event_list(&events), None).unwrap();
    assert_eq!((code, why.trim()), (503, "not delivered in time"));
    // The API server retries with its backoff; by then Loki is back.
    loki.clear_script();
    assert_eq!(
        post(&https, &r.url, event_list(&events), None).unwrap().0,
        200
    );
    let got = loki.accepted();
    for e in &events {
        assert!(got.iter().any(|g| &g.line == e), "{e} is in Loki");
    }
    assert_eq!(
        metric(
            r.port,
            "lokiship_audit_webhook_requests_total",
            "code=\"503\""
        ),
        1.0
    );
}

#[test]
fn a_sigkill_after_the_200_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let loki = FakeLoki::start();
    loki.script(&[503; 100_000]);
    let r = start_receiver(dir.path(), &loki, "", "");
    let events = support::gen::audit_lines(50, 5);
    let https = client(&pki, Some(&pki));
    // Loki is down: the 200 says the events are on the disk queue.
    assert_eq!(
        post(&https, &r.url, event_list(&events), None).unwrap().0,
        200
    );
    r.shipper.kill();
    assert!(loki.accepted().is_empty());

    // Loki is back: the same config ships them from the queue.
    loki.clear_script();
    let shipper = Lokiship::start(&dir.path().join("lokiship.yaml"), &[]);
    loki.wait_for(WAIT, "every event acknowledged before the crash", |got| {
        events.iter().all(|e| got.iter().any(|g| &g.line == e))
    });
    assert_eq!(shipper.terminate().code(), Some(0));
}

#[test]
fn config_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.yaml");
    let check = |text: &str| {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .arg(format!("-config.file={}", config.display()))
            .arg("-check-syntax")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let head = "clients: [{url: http://127.0.0.1:1/loki/api/v1/push}]\nscrape_configs:\n  - job_name: audit\n    k8s_audit_webhook:\n";
    let err = check(&format!("{head}      server: {{http_listen_prot: 9443}}\n"));
    assert!(
        err.contains(":5:") && err.contains("http_listen_prot"),
        "{err}"
    );
    let err = check(&format!(
        "{head}      server:\n        tls_config: {{cert_file: a.crt}}\n"
    ));
    assert!(
        err.contains(":6:") && err.contains("needs cert_file and key_file"),
        "{err}"
    );
    let err = check(&format!("{head}      labels: {{\"bad-name\": x}}\n"));
    assert!(err.contains(":5:") && err.contains("bad-name"), "{err}");
    let err = check(&format!(
        "{head}      labels: {{job: a}}\n    static_configs: [{{targets: [x], labels: {{__path__: /x}}}}]\n"
    ));
    assert!(err.contains("a job reads one kind of source"), "{err}");
}

/// The labels of `labels` (Loki's `{a="b", …}` form).
fn label_map(labels: &str) -> BTreeMap<String, String> {
    lokiship::pipeline::selector::parse_labels(labels)
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The kubeconfig kube-apiserver's `--audit-webhook-config-file` takes: the receiver's URL, the
/// CA that signed its certificate, and the client certificate it presents.
fn webhook_kubeconfig(path: &Path, url: &str, pki: &Path) {
    let p = |f: &str| pki.join(f).display().to_string();
    std::fs::write(
        path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: lokiship
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: kube-apiserver
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: audit
  context: {{cluster: lokiship, user: kube-apiserver}}
current-context: audit
",
            ca = p("ca.crt"),
            cert = p("client.crt"),
            key = p("client.key"),
        ),
    )
    .unwrap();
}

#[test]
fn every_event_a_real_api_server_logs_arrives_by_webhook_with_the_same_labels() {
    for mode in ["batch", "blocking"] {
        real_api_server_by_file_and_by_webhook(mode);
    }
}

fn real_api_server_by_file_and_by_webhook(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    write_pki(&pki);
    let by_webhook = FakeLoki::start();
    // lokiship listens before the API server starts: it sends its first events at once.
    let (hook_shipper, port, hook_port) = start_webhook_preset(dir.path(), &by_webhook, &pki);
    let kubeconfig = dir.path().join("audit-webhook.kubeconfig");
    webhook_kubeconfig(
        &kubeconfig,
        &format!("https://127.0.0.1:{hook_port}/audit"),
        &pki,
    );
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kubernetes/audit-policy.yaml");
    let extra = format!(
        "--audit-webhook-config-file={} --audit-webhook-mode={mode} --audit-webhook-batch-max-wait=1s --audit-webhook-initial-backoff=1s",
        kubeconfig.display()
    );
    let Some(api) = support::peers::RealApiServer::start_with_args(&policy, &extra) else {
        return;
    };
    let by_file = FakeLoki::start();
    let audit_dir = api.audit_log().parent().unwrap().to_path_buf();
    let file_shipper = start_preset(
        "k8s-audit.yaml",
        &dir.path().join("file"),
        &by_file,
        free_port(),
        &[("AUDIT_LOG_DIR", audit_dir.display().to_string())],
    );
    // Requests of several users, verbs and codes: an admin's, and a refused impersonation.
    for args in [
        &["create", "namespace", &format!("hook-{mode}")][..],
        &["get", "pods", "-A"],
        &["--as=nobody", "get", "secrets"],
        &[
            "delete",
            "namespace",
            &format!("hook-{mode}"),
            "--wait=false",
        ],
    ] {
        api.kubectl(args);
    }
    by_file.wait_for(WAIT, "the refused request, from the file", |r| {
        r.iter().any(|e| e.labels.contains("code=\"403\""))
    });
    let from_file = sorted(by_file.accepted());
    let missing = |by_hook: &[Received]| -> Vec<Received> {
        from_file
            .iter()
            .filter(|e| !by_hook.contains(e))
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + WAIT;
    while !missing(&by_webhook.accepted()).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let by_hook = by_webhook.accepted();
    let lost = missing(&by_hook);
    if let Some(first) = lost.first() {
        let id = first
            .structured_metadata
            .iter()
            .find(|(k, _)| k == "audit_id");
        let same_id: Vec<&Received> = by_hook
            .iter()
            .filter(|e| id.is_some_and(|id| e.structured_metadata.contains(id)))
            .collect();
        panic!(
            "{mode}: {} of {} events of the audit log did not arrive by webhook ({} did); the first: {first:?}; by webhook with its audit ID: {same_id:?}",
            lost.len(),
            from_file.len(),
            by_hook.len()
        );
    }
    let users: std::collections::BTreeSet<String> = from_file
        .iter()
        .filter_map(|e| label_map(&e.labels).get("user").cloned())
        .collect();
    assert!(
        users.contains("kubernetes-admin") && users.contains("system:apiserver"),
        "{users:?}"
    );
    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(
        metric_samples(
            &metrics,
            "lokiship_audit_webhook_requests_total",
            "code=\"200\""
        )
        .count(),
        1,
        "{mode}: every request was answered 200"
    );
    assert_eq!(
        metric_samples(&metrics, "lokiship_audit_webhook_requests_total", "").count(),
        1,
        "{mode}: and none otherwise"
    );
    drop(api);
    stop(file_shipper);
    stop(hook_shipper);
}
