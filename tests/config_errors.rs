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
        "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: consul\n    consul_sd_configs: [{server: 'localhost:8500'}]\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:4: consul_sd_configs is not supported yet"),
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
        err.contains("url: http://127.0.0.1:3100/loki/api/v1/push"),
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
        "clients:\n  - url: http://127.0.0.1:1/loki/api/v1/push\nscrape_configs:\n  - job_name: old\n    decompression:\n      enabled: true\n      format: lz4\n    static_configs: [{targets: [localhost], labels: {__path__: /var/log/*.lz4}}]\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:5:")
            && err.contains("decompression format \"lz4\" is not supported yet (gz, z, bz2, zst, xz and auto are)"),
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

const STAGES_HEAD: &str = "clients: [{url: \"http://127.0.0.1:1/loki/api/v1/push\"}]\nscrape_configs:\n  - job_name: a\n    static_configs: [{targets: [localhost], labels: {job: a, __path__: /nonexistent/*.log}}]\n    pipeline_stages:\n";

#[test]
fn a_misspelt_stage_option_gets_a_did_you_mean() {
    // An optional one: a warning (Promtail ignores it), an error with -config.strict.
    let config = format!("{STAGES_HEAD}      - json:\n          expressions: {{a: b}}\n          drop_malformd: true\n");
    let (code, err) = run_with(&config, &["-check-syntax"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(r#"config.yaml:8: unknown option \"drop_malformd\" in pipeline stage scrape_configs[0].pipeline_stages[0].json, did you mean \"drop_malformed\"?"#), "{err}");
    let (code, err) = run_with(&config, &["-check-syntax", "-config.strict"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"config.yaml:8: unknown option "drop_malformd" in pipeline stage scrape_configs[0].pipeline_stages[0].json, did you mean "drop_malformed"?"#), "{err}");
    // A required one: the typo is the error, not the option it left missing.
    let config = format!("{STAGES_HEAD}      - regex:\n          expresion: \"(?P<a>x)\"\n");
    let (code, err) = run_with(&config, &["-check-syntax"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"config.yaml:7: unknown option "expresion" in pipeline stage scrape_configs[0].pipeline_stages[0].regex, did you mean "expression"?"#), "{err}");
}

#[test]
fn a_stage_option_at_the_wrong_depth_is_named_where_it_is() {
    let config = format!("{STAGES_HEAD}      - regex:\n        expression: \"(?P<a>x)\"\n");
    let (code, err) = run_with(&config, &["-check-syntax"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:7: ")
            && err.contains(r#""expression" is at the depth of "regex:": indent "expression""#),
        "{err}"
    );
    assert!(!err.contains("missing field"), "{err}");
}

#[test]
fn a_flow_mapping_key_without_a_value_reads_as_promtail_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), "2026-12-01 hello\n").unwrap();
    let config = format!(
        "server: {{disable: true}}\nclients: [{{url: \"http://127.0.0.1:1/loki/api/v1/push\"}}]\nscrape_configs:\n  - job_name: a\n    static_configs: [{{targets: [localhost], labels: {{job: a, __path__: {}/a.log}}}}]\n    pipeline_stages:\n      - regex: {{expression: '^(?P<day>\\S+)'}}\n      - labels: {{day:}}\n",
        dir.path().display()
    );
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", path.display()))
        .args(["-dry-run", "-exit-at-eof"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("day=\"2026-12-01\""), "{stdout}");
}

#[test]
fn an_integer_duration_is_refused_with_the_reason() {
    let (code, err) = run_with(
        "clients: [{url: \"http://127.0.0.1:1/loki/api/v1/push\", batchwait: 1}]\n",
        &["-check-syntax"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:1:")
            && err.contains("Promtail (Go) reads it as 1 nanoseconds")
            && err.contains("write 1s or 1ms"),
        "{err}"
    );
}

#[test]
fn check_syntax_fails_where_running_would() {
    let config = "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [localhost], labels: {job: a, __path__: /nonexistent/*.log}}]\n";
    let (code, err) = run_with(config, &["-check-syntax"]);
    assert_eq!(code, 1);
    assert!(err.contains("no clients configured"), "{err}");
    let (code, err) = run_with(
        config,
        &[
            "-check-syntax",
            "-client.url=http://127.0.0.1:1/loki/api/v1/push",
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// Every flag of Promtail 3.6's `-help` that maps to an option lokiship supports.
#[test]
fn promtails_flags_are_accepted() {
    let config = "clients: [{url: \"http://127.0.0.1:1/loki/api/v1/push\"}]\n";
    let flags = [
        "-client.batch-wait=2s",
        "-client.batch-size-bytes=1048576",
        "-client.timeout=5s",
        "-client.min-backoff=100ms",
        "-client.max-backoff=10s",
        "-client.max-retries=3",
        "-client.drop-rate-limited-batches",
        "-client.tenant-id=t",
        "-client.external-labels=a=b,c=d",
        "-client.url=http://127.0.0.1:2/loki/api/v1/push",
        "-positions.file=/tmp/p.yaml",
        "-positions.sync-period=5s",
        "-positions.ignore-invalid-yaml",
        "-target.sync-period=5s",
        "-file-watch.min_poll_frequency=100ms",
        "-file-watch.max_poll_frequency=1s",
        "-limit.readline-rate-enabled",
        "-limit.readline-rate=100",
        "-limit.readline-burst=200",
        "-limit.readline-rate-drop",
        "-max-line-size=256KB",
        "-max-line-size-truncate",
        "-max-streams=100",
        "-server.http-listen-address=127.0.0.1",
        "-server.http-listen-port=0",
        "-server.grpc-listen-port=0",
        "-server.grpc-listen-address=127.0.0.1",
        "-server.disable",
        "-server.enable-runtime-reload",
        "-config.expand-env=true",
        "-log.level=debug",
        "-log.format=logfmt",
        "-print-config-stderr",
        "-log-config-reverse-order",
        "-dry-run",
        "-check-syntax",
    ];
    let (code, err) = run_with(config, &flags);
    assert_eq!(code, 0, "{err}");
    let (code, err) = run_with(config, &["-check-syntax", "-client.batch-wait=soon"]);
    assert_eq!(code, 2, "clap's usage error: {err}");
    assert!(
        err.contains("-client.batch-wait") && err.contains("invalid duration"),
        "{err}"
    );
}

#[test]
fn a_flag_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), format!("{}\n", "z".repeat(100))).unwrap();
    let config = format!(
        "server: {{disable: true}}\nclients: [{{url: \"http://127.0.0.1:1/loki/api/v1/push\"}}]\nlimits_config: {{max_line_size: 1MB}}\nscrape_configs:\n  - job_name: a\n    static_configs: [{{targets: [localhost], labels: {{job: a, __path__: {}/a.log}}}}]\n",
        dir.path().display()
    );
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_lokiship"))
        .arg(format!("-config.file={}", path.display()))
        .args([
            "-dry-run",
            "-exit-at-eof",
            "-max-line-size=10",
            "-max-line-size-truncate",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with(&format!("\t{}\n", "z".repeat(10))),
        "{stdout}"
    );
}

#[test]
fn a_keyword_that_is_none_of_its_choices_is_refused_at_its_line_with_the_choices() {
    for (option, line, choices) in [
        (
            "wal: {enabled: true, when_full: dropoldest}",
            2,
            "drop_oldest, backpressure",
        ),
        (
            "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: explode}",
            5,
            "replace, keep, drop",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!("clients: [{{url: 'http://127.0.0.1:1/loki/api/v1/push'}}]\n{option}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lokiship"))
            .args([
                &format!("-config.file={}", config.display()),
                "-check-syntax",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("config.yaml:{line}:")) && stderr.contains(choices),
            "{option}: {stderr}"
        );
    }
}

#[test]
fn docker_discovery_loads_without_warnings_and_its_mistakes_name_their_line() {
    let good = "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: docker\n    docker_sd_configs:\n      - host: unix:///var/run/docker.sock\n        refresh_interval: 5s\n        filters: [{name: label, values: [logging=promtail]}]\n    relabel_configs:\n      - {source_labels: ['__meta_docker_container_name'], regex: '/(.*)', target_label: container}\n";
    let (code, err) = run_with(good, &["-check-syntax"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warn"), "{err}");
    let (code, err) = run_with(
        "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: docker\n    docker_sd_configs:\n      - host: /var/run/docker.sock\n",
        &["-check-syntax"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("config.yaml:4:") && err.contains("expected unix:///path/to/docker.sock"),
        "{err}"
    );
    let (code, err) = run_with(
        "clients: [{url: http://127.0.0.1:1/}]\nscrape_configs:\n  - job_name: docker\n    docker_sd_configs: [{host: 'unix:///d.sock'}]\n    static_configs: [{labels: {__path__: /var/log/*.log}}]\n",
        &["-check-syntax"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("a job reads one kind of source"), "{err}");
}
