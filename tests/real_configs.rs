//! Configurations as found in real deployments load unchanged — quirks included — or are refused
//! with an error that names the unsupported feature, never a generic parse error.

mod support;

use std::path::Path;
use std::process::Command;

/// Runs `lokiship -check-syntax` on `config` with `extra` flags and environment.
fn check(config: &str, extra: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", path.display()))
        .arg("-check-syntax")
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

/// Loki's docker-compose example for Promtail.
const DOCKER_COMPOSE: &str = r#"
server:
  http_listen_port: 9080
  grpc_listen_port: 0

positions:
  filename: /tmp/positions.yaml

clients:
  - url: http://loki:3100/loki/api/v1/push

scrape_configs:
- job_name: system
  static_configs:
  - targets:
      - localhost
    labels:
      job: varlogs
      __path__: /var/log/*log
"#;

/// An Ansible-role style config: legacy singular `client:`, YAML 1.1 booleans, null values,
/// relabel replacements with `${1}` under -config.expand-env, stages with leftover options.
const ANSIBLE_ROLE: &str = r#"
server:
  http_listen_port: ${PROMTAIL_PORT:-9080}
  grpc_listen_port: 0
  log_level: info
  register_instrumentation: yes
positions:
  filename: /var/lib/promtail/positions.yaml
  ignore_invalid_yaml: on
client:
  url: ${LOKI_URL}
  external_labels:
    host: ${HOSTNAME:-node}
  backoff_config:
    max_retries: 20
limits_config:
  readline_rate_enabled: no
  max_line_size_truncate: yes
scrape_configs:
  - job_name: journal-less
    static_configs:
      - targets: [localhost]
        labels:
          job: system
          env:
          __path__: /var/log/{syslog,messages}
    relabel_configs:
      - source_labels: [__path__]
        regex: '/var/log/(.*)'
        target_label: logfile
        replacement: '${1}'
      - source_labels: [__address__]
        target_label: instance
        replacement: $1
    pipeline_stages:
      - regex:
          expression: '^(?P<ts>\w{3} +\d+ \S+) (?P<host>\S+) (?P<app>[^:\[]+)'
      - labels:
          app:
          host:
      - timestamp:
          source: ts
          format: Stamp
      - json:
          expressions: {level: level}
          drop_malformed: No
      - multiline:
          firstline: '^\w{3} +\d+'
          max_wait_time: 3s
      - docker: {}
      - cri: {}
      - match:
          selector: '{app="sshd"}'
          stages:
            - template:
                source: app
                template: '{{ ToUpper .Value }}'
            - pack:
                labels: [host]
                ingest_timestamp: yes
"#;

/// What the Promtail Helm chart renders: Kubernetes service discovery.
const HELM_CHART: &str = r#"
server:
  log_level: info
  log_format: logfmt
  http_listen_port: 3101
clients:
  - url: http://loki-gateway/loki/api/v1/push
positions:
  filename: /run/promtail/positions.yaml
scrape_configs:
  - job_name: kubernetes-pods
    pipeline_stages:
      - cri: {}
    kubernetes_sd_configs:
      - role: pod
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_controller_name]
        regex: ([0-9a-z-.]+?)(-[0-9a-f]{8,10})?
        action: replace
        target_label: __tmp_controller_name
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
"#;

#[test]
fn lokis_docker_compose_example_loads() {
    let (ok, out) = check(DOCKER_COMPOSE, &[], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("Valid config file"), "{out}");
}

#[test]
fn ansible_role_quirks_load_with_expand_env() {
    let (ok, out) = check(
        ANSIBLE_ROLE,
        &["-config.expand-env=true", "-print-config-stderr"],
        &[("LOKI_URL", "http://loki:3100/loki/api/v1/push")],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("replacement: ${1}"),
        "regex groups survive expansion:\n{out}"
    );
    assert!(out.contains("replacement: $1"), "{out}");
    assert!(
        out.contains("url: http://loki:3100/loki/api/v1/push"),
        "{out}"
    );
    // Promtail's shape: defaults filled in (tests/data/configs/promtail-printed-defaults.yaml).
    for default in [
        "batchwait: 1s",
        "max_retries: 20",
        "min_period: 500ms",
        "sync_period: 10s",
    ] {
        assert!(out.contains(default), "{default}:\n{out}");
    }
}

#[test]
fn helm_chart_output_loads() {
    let (ok, out) = check(HELM_CHART, &[], &[]);
    assert!(ok, "{out}");
    assert!(!out.contains("level=warn"), "{out}");
    // Every role Promtail has loads (the Helm chart's extra jobs use them).
    for role in ["endpoints", "endpointslice", "service", "node", "ingress"] {
        let (ok, out) = check(
            &HELM_CHART.replace("role: pod", &format!("role: {role}")),
            &[],
            &[],
        );
        assert!(ok, "role {role}: {out}");
    }
}

#[test]
fn a_bad_boolean_names_the_value() {
    let (ok, out) = check(
        "clients: [{url: http://127.0.0.1:1/loki/api/v1/push}]\npositions:\n  ignore_invalid_yaml: maybe\n",
        &[],
        &[],
    );
    assert!(!ok);
    assert!(out.contains("\"maybe\" is not a boolean"), "{out}");
}

#[test]
fn unsupported_stages_say_why() {
    let (ok, out) = check(
        "clients: [{url: http://127.0.0.1:1/loki/api/v1/push}]\nscrape_configs:\n  - job_name: a\n    pipeline_stages:\n      - geoip: {db: /x.mmdb, source: ip}\n",
        &[],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains("config.yaml:5")
            && out.contains("stage \"geoip\" is not supported: it needs a MaxMind database reader"),
        "{out}"
    );
}

#[test]
fn a_bad_relabel_rule_is_caught_by_check_syntax() {
    let (ok, out) = check(
        "clients: [{url: http://127.0.0.1:1/loki/api/v1/push}]\nscrape_configs:\n  - job_name: a\n    static_configs:\n      - labels: {__path__: /x}\n    relabel_configs:\n      - {source_labels: [a], target_label: b}\n      - {source_labels: [a], action: hashmod, target_label: s}\n",
        &[],
        &[],
    );
    assert!(!ok);
    assert!(
        out.contains("config.yaml:8")
            && out.contains("relabel_configs[1]: hashmod needs a modulus"),
        "{out}"
    );
}

/// The journal and syslog scrape configs as Promtail's documentation shows them (YAML 1.1 `yes`
/// included), and a TLS syslog receiver with client certificates.
#[test]
fn journal_and_syslog_configs_load() {
    let config = r#"
server: {http_listen_port: 9080, grpc_listen_port: 0}
positions: {filename: /tmp/positions.yaml}
clients: [{url: "http://loki:3100/loki/api/v1/push"}]
scrape_configs:
  - job_name: journal
    journal:
      json: false
      max_age: 12h
      path: /var/log/journal
      matches: _TRANSPORT=kernel
      labels:
        job: systemd-journal
    relabel_configs:
      - source_labels: ['__journal__systemd_unit']
        target_label: 'unit'
  - job_name: syslog
    syslog:
      listen_address: 0.0.0.0:1514
      idle_timeout: 60s
      label_structured_data: yes
      labels:
        job: "syslog"
    relabel_configs:
      - source_labels: ['__syslog_message_hostname']
        target_label: 'host'
  - job_name: syslog-udp-bsd
    syslog:
      listen_address: ":1515"
      listen_protocol: udp
      syslog_format: rfc3164
      use_incoming_timestamp: true
      max_message_length: 16384
      labels: {job: network}
  - job_name: syslog-tls
    syslog:
      listen_address: 127.0.0.1:6514
      use_rfc5424_message: true
      tls_config: {cert_file: /etc/tls/tls.crt, key_file: /etc/tls/tls.key, ca_file: /etc/tls/ca.crt}
"#;
    let (ok, out) = check(config, &[], &[]);
    assert!(ok, "{out}");
    // A syslog block that cannot work says which option is wrong.
    let (ok, out) = check(
        &config.replace("listen_protocol: udp", "listen_protocol: sctp"),
        &[],
        &[],
    );
    assert!(!ok && out.contains("listen_protocol \"sctp\""), "{out}");
}

/// The configs of `tests/data/configs/` (every stage with its documented options; the server and
/// client keys real configs set; Promtail's own `-print-config-stderr` output): Promtail 3.6.15
/// accepts each without a word, so lokiship must too — no error and no warning.
#[test]
fn configs_promtail_accepts_load_without_a_warning() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/configs");
    let promtail = support::peers::peer_binary("promtail");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let config = std::fs::read_to_string(&file).unwrap();
        let (ok, out) = check(&config, &["-config.expand-env=true"], &[]);
        assert!(ok, "{}: {out}", file.display());
        assert!(
            !out.contains("level=warn"),
            "{}: a warning Promtail does not give:\n{out}",
            file.display()
        );
        if let Some(promtail) = &promtail {
            let out = Command::new(promtail)
                .arg(format!("-config.file={}", file.display()))
                .args(["-check-syntax", "-config.expand-env=true"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: Promtail refuses it: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
