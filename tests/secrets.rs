//! Secrets never leave: with every secret option lokiship has set — passwords, tokens,
//! credentials inline and from files, a password in a client's URL, the audit webhook's token —
//! none of them shows in the log (at debug level, while Loki fails and while it answers),
//! `-print-config-stderr`, any page of the HTTP server, or a config error.

mod support;

use std::path::Path;
use std::sync::Mutex;
use support::{free_port, http_get, run_until, FakeLoki};

/// Each secret, unlike anything else in the run, so that a leak of any one is found.
const SECRETS: [&str; 9] = [
    "urlpass-7f3a",
    "inline-password-91c2",
    "file-password-55d0",
    "inline-token-3e8b",
    "file-token-a4c6",
    "inline-credentials-0b9d",
    "file-credentials-6c1e",
    "webhook-token-d27f",
    "kube-token-8e4a",
];

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A config that sets every secret option: one client per way to authenticate, all to `loki`.
fn config(dir: &Path, loki: &str, http: u16, webhook: u16) -> String {
    let [url_pass, password, _, token, _, credentials, _, _, kube_token] = SECRETS;
    let password_file = write(dir, "password", &format!("{}\n", SECRETS[2]));
    let token_file = write(dir, "token", &format!("{}\n", SECRETS[4]));
    let credentials_file = write(dir, "credentials", &format!("{}\n", SECRETS[6]));
    let webhook_token = write(dir, "webhook-token", &format!("{}\n", SECRETS[7]));
    let with_pass = loki.replacen("http://", &format!("http://shipper:{url_pass}@"), 1);
    let common = "batchwait: 50ms\n    backoff_config: {min_period: 20ms, max_period: 50ms, max_retries: 1000}";
    let text = format!(
        "server: {{http_listen_address: 127.0.0.1, http_listen_port: {http}}}
positions: {{filename: {dir}/positions.yaml, sync_period: 100ms}}
clients:
  - {{name: in-url, url: '{with_pass}'}}
  - name: password
    url: {loki}
    basic_auth: {{username: shipper, password: {password}}}
    {common}
  - name: password-file
    url: {loki}
    basic_auth: {{username: shipper, password_file: {password_file}}}
    {common}
  - name: token
    url: {loki}
    bearer_token: {token}
    {common}
  - name: token-file
    url: {loki}
    bearer_token_file: {token_file}
    {common}
  - name: credentials
    url: {loki}
    authorization: {{type: Bearer, credentials: {credentials}}}
    {common}
  - name: credentials-file
    url: {loki}
    authorization: {{type: Bearer, credentials_file: {credentials_file}}}
    {common}
scrape_configs:
  - job_name: files
    static_configs:
      - labels: {{job: files, __path__: '{dir}/*.log'}}
  - job_name: webhook
    k8s_audit_webhook:
      server: {{http_listen_address: 127.0.0.1, http_listen_port: {webhook}}}
      auth: {{bearer_token_file: {webhook_token}}}
  - job_name: pods
    kubernetes_sd_configs:
      - role: pod
        api_server: http://127.0.0.1:1
        bearer_token: {kube_token}
",
        dir = dir.display(),
    );
    write(dir, "config.yaml", &text)
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} leaked in {what}:\n{text}");
    }
}

#[test]
fn no_secret_shows_in_the_log_the_printed_config_or_any_page() {
    let dir = tempfile::tempdir().unwrap();
    let loki = FakeLoki::start();
    // Failures first, so that errors (with their URLs) are logged, then deliveries.
    loki.script(&[500; 14]);
    let (http, webhook) = (free_port(), free_port());
    let config = config(dir.path(), &loki.url(), http, webhook);
    std::fs::write(dir.path().join("a.log"), "one\ntwo\n").unwrap();
    let pages = Mutex::new(String::new());
    let args = [
        format!("-config.file={config}"),
        "-log.level=debug".to_string(),
        "-print-config-stderr".to_string(),
    ];
    let (_, log) = run_until(&args, || {
        // Every client has its two lines: the failures were retried.
        if loki.accepted().len() < 14 {
            return false;
        }
        let mut all = pages.lock().unwrap();
        for page in ["/", "/targets", "/config", "/metrics", "/ready"] {
            all.push_str(&http_get(http, page).unwrap_or_default());
        }
        true
    });
    assert!(
        log.contains("<secret>"),
        "the printed config is in the log:\n{log}"
    );
    assert!(log.contains("500"), "the failures were logged:\n{log}");
    assert!(
        log.contains("shipper:<secret>@"),
        "the URL was logged, masked:\n{log}"
    );
    assert_no_secret("the log", &log);
    let pages = pages.into_inner().unwrap();
    assert!(pages.contains("promtail_build_info"), "{pages}");
    assert_no_secret("the pages", &pages);
}

#[test]
fn a_config_error_next_to_a_secret_does_not_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Both ways of giving a password: refused, naming the fields, not their values.
        format!(
            "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    basic_auth: {{username: u, password: {}, password_file: /x}}\n",
            SECRETS[1]
        ),
        // A password where a map is expected.
        format!(
            "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    basic_auth: {}\n",
            SECRETS[1]
        ),
        // A token in the wrong place.
        format!(
            "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    bearer_token: [{}]\n",
            SECRETS[3]
        ),
        // A password in a URL that does not parse.
        format!(
            "clients:\n  - url: 'http://u:{}@[::1/loki'\n",
            SECRETS[0]
        ),
    ];
    for (i, text) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.yaml"), text);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .args([&format!("-config.file={path}"), "-dry-run"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "case {i} was accepted");
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(shown.contains(&format!("bad{i}.yaml")), "{shown}");
        assert_no_secret(&format!("the error for case {i}"), &shown);
    }
}
