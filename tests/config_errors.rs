//! A broken config stops lokiship at start with exit code 1 and a message naming the line.

use std::process::Command;

fn run_with(config: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", path.display()))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_names_the_line_and_suggests_the_right_one() {
    let (code, err) = run_with("server:\n  disable: true\nclients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    batchwiat: 1s\n", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "config.yaml:5: unknown field \"batchwiat\" in clients[0], did you mean \"batchwait\"?"
        ),
        "{err}"
    );
}

#[test]
fn bad_duration_names_the_line() {
    let (code, err) = run_with(
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    timeout: 10 seconds\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:3:") && err.contains("invalid duration \"10 seconds\""),
        "{err}"
    );
}

#[test]
fn missing_url_names_the_client() {
    let (code, err) = run_with(
        "positions: {filename: /tmp/x}\nclients:\n  - tenant_id: ops\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:3: missing field \"url\" in clients[0]"),
        "{err}"
    );
}

#[test]
fn unsupported_promtail_option_says_so() {
    let (code, err) = run_with(
        "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs: [{role: pod}]\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:4: kubernetes_sd_configs is not supported yet"),
        "{err}"
    );
}

#[test]
fn unknown_stage_option_is_a_warning_or_with_strict_an_error() {
    let config = "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: a\n    pipeline_stages:\n      - json:\n          expressions: {a: b}\n          legacy_option: 1\n";
    let (code, err) = run_with(config, &["-check-syntax"]);
    assert_eq!(code, 0, "{err}");
    // A warning in the log (logfmt quotes the message, escaping its quotes).
    assert!(err.contains("level=warn"), "{err}");
    assert!(
        err.contains(r#"config.yaml:7: unknown option \"legacy_option\""#),
        "{err}"
    );
    let (code, err) = run_with(config, &["-check-syntax", "-config.strict"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:7: unknown option \"legacy_option\""),
        "{err}"
    );
}

#[test]
fn expand_env_fills_variables_and_defaults() {
    let config = "clients: [{url: \"${LOKISHIP_TEST_URL:-http://127.0.0.1:3100}/loki/api/v1/push\", tenant_id: \"${LOKISHIP_TEST_TENANT}\"}]\n";
    let (code, err) = run_with(
        config,
        &[
            "-check-syntax",
            "-config.expand-env=true",
            "-print-config-stderr",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("url: \"http://127.0.0.1:3100/loki/api/v1/push\""),
        "{err}"
    );
    let (code, err) = run_with(config, &["-check-syntax"]);
    assert_eq!(code, 1, "without expansion the URL is not valid: {err}");
}

#[test]
fn garbage_is_a_clear_error() {
    let (code, err) = run_with("\u{0}\u{1}not: [yaml", &[]);
    assert_eq!(code, 1);
    assert!(err.starts_with("lokiship: "), "{err}");
}

#[test]
fn an_unsupported_decompression_format_is_named_with_its_line() {
    let (code, err) = run_with(
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\nscrape_configs:\n  - job_name: old\n    decompression:\n      enabled: true\n      format: bz2\n    static_configs: [{targets: [localhost], labels: {__path__: /var/log/*.bz2}}]\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:5:")
            && err.contains("decompression format \"bz2\" is not supported yet (gz and z are)"),
        "{err}"
    );
}

#[test]
fn a_push_receiver_on_the_servers_own_port_is_refused_with_its_line() {
    let (code, err) = run_with(
        "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: pushed\n    loki_push_api:\n      server: {http_listen_port: 9080}\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:4:") && err.contains("lokiship's own server's port"),
        "{err}"
    );
}

#[test]
fn an_unexpanded_variable_in_the_url_says_that_expansion_is_off() {
    let config = "clients:\n  - url: ${LOKI_URL}/loki/api/v1/push\n";
    let (code, err) = run_with(config, &["-check-syntax"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:2:")
            && err.contains("relative URL without a base")
            && err.contains("it holds ${LOKI_URL}, and environment variables are not expanded: pass -config.expand-env=true"),
        "{err}"
    );
}

#[test]
fn an_unset_variable_is_named_in_a_warning() {
    let config = "server: {disable: true}\nclients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\n    tenant_id: ${LOKISHIP_TEST_UNSET_TENANT}\n    external_labels: {cluster: \"${LOKISHIP_TEST_UNSET_CLUSTER:-dev}\"}\n";
    let (code, err) = run_with(config, &["-config.expand-env=true", "-check-syntax"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("config.yaml:4: environment variable LOKISHIP_TEST_UNSET_TENANT is not set"),
        "{err}"
    );
    assert!(
        !err.contains("LOKISHIP_TEST_UNSET_CLUSTER"),
        "a default is not a warning: {err}"
    );
}
