//! Phase 1: the file read, `${ENV}`-expanded, parsed, and checked section by section.

use super::{error::ConfigError, expand, schema, unknown, values, yaml_compat, Config};

/// How to read the configuration file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Expand `${VAR}` and `${VAR:-default}` before parsing.
    pub expand_env: bool,
    /// Unknown keys inside pipeline stages are errors instead of warnings.
    pub strict: bool,
}

/// A configuration file parsed and checked, not yet compiled ([`super::compile`]).
pub struct Loaded {
    pub config: Config,
    /// Things worth telling the operator that do not stop lokiship (with file and line).
    pub warnings: Vec<String>,
    /// The file's name and (expanded) text, for the line numbers of what compiling finds.
    pub(super) lines: Lines,
}

/// Reads, expands, parses and validates the configuration file at `path`.
pub fn load_file(path: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, None, format!("cannot read: {e}")))?;
    load_str(path, &text, opts)
}

/// Parses and validates configuration `text`; `file` names it in messages.
pub fn load_str(file: &str, text: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let (expanded, references) = expand::expand_reporting(text, |name| std::env::var(name).ok());
    let mut warnings = Vec::new();
    let text = if opts.expand_env {
        for r in references.iter().filter(|r| r.unset && !r.has_default) {
            warnings.push(
                ConfigError::new(
                    file,
                    Some(r.line),
                    format!(
                        "environment variable {} is not set: ${{{}}} expanded to an empty value",
                        r.name, r.name
                    ),
                )
                .to_string(),
            );
        }
        expanded
    } else {
        text.to_string()
    };
    let text = yaml_compat::empty_flow_values(text);
    let mut config = parse(file, &text, opts, &mut warnings)?;
    // The single `client` of old configs; one without a URL is the empty block Promtail's
    // `-print-config-stderr` writes, and Promtail ignores it too.
    if let Some(client) = config.client.take().filter(|c| !c.url.is_empty()) {
        config.clients.insert(0, client);
    }
    let lines = Lines {
        text,
        file: file.to_string(),
    };
    // Why a value may still hold `${VAR}`: said in the errors it causes (a URL that is not one).
    let unexpanded = |value: &str| -> String {
        match references.iter().find(|r| value.contains(&format!("${{{}", r.name))) {
            Some(r) if !opts.expand_env => format!(
                " (it holds ${{{}}}, and environment variables are not expanded: pass -config.expand-env=true)",
                r.name
            ),
            _ => String::new(),
        }
    };
    check_clients(&config, &lines, &unexpanded)?;
    if config
        .server
        .http_tls_config
        .as_ref()
        .is_some_and(|t| t.is_set())
    {
        return Err(lines.error(
            "http_tls_config:",
            0,
            "server.http_tls_config: HTTPS on lokiship's own server is not supported yet (it is on a loki_push_api receiver's server block)",
        ));
    }
    check_jobs(&config, &lines, &mut warnings)?;
    Ok(Loaded {
        config,
        warnings,
        lines,
    })
}

/// Deserializes `text`; options lokiship does not know are warnings (errors when `strict`).
fn parse(
    file: &str,
    text: &str,
    opts: &LoadOptions,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let mut ignored = Vec::new();
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let parsed: Result<Config, _> =
        serde_ignored::deserialize(de, |path| ignored.push(path.to_string()));
    let config = parsed.map_err(|e| yaml_error(file, text, &e, &ignored))?;
    for path in ignored {
        // Outside pipeline stages every struct denies unknown keys; what serde still reports
        // there are the options the schema accepts and ignores on purpose, as Promtail does
        // (the server's gRPC tuning) — but for one Promtail 3 refuses.
        if !path.contains("pipeline_stages") {
            if path.trim_end_matches(".?").ends_with("stream_lag_labels") {
                let line = unknown::UnknownOption::new(text, &path).line;
                let message =
                    "stream_lag_labels was removed in Promtail 3 (which refuses it); ignored";
                warnings.push(ConfigError::new(file, line, message).to_string());
            }
            continue;
        }
        let unknown = unknown::UnknownOption::new(text, &path);
        if opts.strict {
            return Err(ConfigError::new(file, unknown.line, unknown.message(true)));
        }
        warnings.push(ConfigError::new(file, unknown.line, unknown.message(false)).to_string());
    }
    Ok(config)
}

/// `clients`: URLs that are http(s) URLs, and one way to give each credential.
fn check_clients(
    config: &Config,
    lines: &Lines,
    unexpanded: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    for (i, client) in config.clients.iter().enumerate() {
        let url = reqwest::Url::parse(&client.url).map_err(|e| {
            lines.error(
                "url:",
                0,
                format!(
                    "clients[{i}].url {:?} is not a valid URL: {e}{}",
                    client.url,
                    unexpanded(&client.url)
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(lines.error(
                "url:",
                0,
                format!(
                    "clients[{i}].url must be http or https, not {:?}",
                    url.scheme()
                ),
            ));
        }
        if let Some(auth) = &client.basic_auth {
            if !auth.password.is_empty() && !auth.password_file.is_empty() {
                return Err(lines.error(
                    "password_file:",
                    0,
                    format!("clients[{i}].basic_auth: set password or password_file, not both"),
                ));
            }
        }
        if !client.bearer_token.is_empty() && !client.bearer_token_file.is_empty() {
            return Err(lines.error(
                "bearer_token_file:",
                0,
                format!("clients[{i}]: set bearer_token or bearer_token_file, not both"),
            ));
        }
    }
    Ok(())
}

/// `scrape_configs`: unique job names, label names, options not supported with each other.
/// What needs building (pipelines, relabel rules, globs) is checked by compiling it.
fn check_jobs(
    config: &Config,
    lines: &Lines,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for sc in &config.scrape_configs {
        let job_line = lines.job_line(&sc.job_name);
        if !seen.insert(sc.job_name.clone()) {
            return Err(ConfigError::new(
                &lines.file,
                Some(job_line),
                format!("duplicate job_name {:?}", sc.job_name),
            ));
        }
        if !sc.encoding.is_empty() {
            return Err(lines.error("encoding:", job_line, "encoding is not supported yet"));
        }
        if let Some(api) = &sc.loki_push_api {
            check_push_api(config, sc, api, lines, job_line)?;
        }
        if let Some(hook) = &sc.k8s_audit_webhook {
            check_audit_webhook(config, sc, hook, lines, job_line)?;
        }
        check_one_kind(sc, lines, job_line)?;
        if let Some(journal) = &sc.journal {
            if let Some(name) = journal
                .labels
                .keys()
                .find(|n| !n.starts_with("__") && !values::is_valid_label_name(n))
            {
                return Err(lines.error(
                    name,
                    job_line,
                    format!(
                        "invalid label name {name:?} in journal.labels of job {:?}",
                        sc.job_name
                    ),
                ));
            }
        }
        for st in &sc.static_configs {
            for name in st.labels.keys() {
                if !name.starts_with("__") && !values::is_valid_label_name(name) {
                    return Err(lines.error(
                        name,
                        job_line,
                        format!("invalid label name {name:?} in job {:?}", sc.job_name),
                    ));
                }
            }
            if !st.labels.contains_key("__path__") && sc.relabel_configs.is_empty() {
                warnings.push(format!(
                    "{}:{job_line}: job {:?} has a static config without __path__: it reads nothing",
                    lines.file, sc.job_name
                ));
            }
        }
    }
    Ok(())
}

/// A job reads one kind of source: files (static or discovered targets), the journal, syslog or
/// pushes. Promtail would read only one of them, silently; here the config says which.
fn check_one_kind(
    sc: &schema::ScrapeConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<(), ConfigError> {
    let kinds: Vec<&str> = [
        (!sc.static_configs.is_empty()
            || !sc.file_sd_configs.is_empty()
            || !sc.kubernetes_sd_configs.is_empty())
        .then_some("files (static_configs, file_sd_configs, kubernetes_sd_configs)"),
        sc.journal.is_some().then_some("journal"),
        (!sc.docker_sd_configs.is_empty()).then_some("docker_sd_configs"),
        sc.syslog.is_some().then_some("syslog"),
        sc.loki_push_api.is_some().then_some("loki_push_api"),
        sc.k8s_audit_webhook
            .is_some()
            .then_some("k8s_audit_webhook"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kinds.len() > 1 {
        return Err(lines.error(
            "job_name:",
            job_line,
            format!(
                "job {:?} reads {}: a job reads one kind of source; make one job for each",
                sc.job_name,
                kinds.join(" and ")
            ),
        ));
    }
    Ok(())
}

fn check_push_api(
    config: &Config,
    sc: &schema::ScrapeConfig,
    api: &schema::PushApiConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<(), ConfigError> {
    if !sc.relabel_configs.is_empty() {
        return Err(lines.error(
            "relabel_configs:",
            job_line,
            "relabel_configs with loki_push_api is not supported yet",
        ));
    }
    if let Some(name) = api.labels.keys().find(|n| !values::is_valid_label_name(n)) {
        return Err(lines.error(
            name,
            job_line,
            format!("invalid label name {name:?} in loki_push_api.labels"),
        ));
    }
    if !config.server.disable && api.server.http_listen_port == config.server.http_listen_port {
        return Err(lines.error(
            "loki_push_api:",
            job_line,
            format!(
                "loki_push_api.server.http_listen_port {} is lokiship's own server's port; give the receiver another",
                api.server.http_listen_port
            ),
        ));
    }
    if let Some(tls) = api.server.http_tls_config.as_ref().filter(|t| t.is_set()) {
        if let Err(why) = tls.client_auth() {
            let job = &sc.job_name;
            return Err(lines.error(
                "http_tls_config:",
                job_line,
                format!("job {job:?}: loki_push_api.server.{why}"),
            ));
        }
    }
    Ok(())
}

fn check_audit_webhook(
    config: &Config,
    sc: &schema::ScrapeConfig,
    hook: &schema::AuditWebhookConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<(), ConfigError> {
    let error = |key: &str, message: String| Err(lines.error(key, job_line, message));
    let job = &sc.job_name;
    if !sc.relabel_configs.is_empty() {
        return error(
            "relabel_configs:",
            format!("job {job:?}: relabel_configs with k8s_audit_webhook is not supported (set labels, or use the pipeline)"),
        );
    }
    if let Some(name) = hook.labels.keys().find(|n| !values::is_valid_label_name(n)) {
        return error(
            name,
            format!("invalid label name {name:?} in k8s_audit_webhook.labels"),
        );
    }
    let port = hook
        .server
        .http_listen_port
        .unwrap_or(schema::DEFAULT_WEBHOOK_PORT);
    if port != 0 && !config.server.disable && port == config.server.http_listen_port {
        return error(
            "k8s_audit_webhook:",
            format!("job {job:?}: k8s_audit_webhook.server.http_listen_port {port} is lokiship's own server's port; give the receiver another"),
        );
    }
    if let Some(tls) = &hook.server.tls_config {
        if tls.cert_file.is_empty() || tls.key_file.is_empty() {
            return error(
                "tls_config:",
                format!(
                    "job {job:?}: k8s_audit_webhook.server.tls_config needs cert_file and key_file"
                ),
            );
        }
    }
    if hook.max_request_bytes.is_some_and(|b| b.0 == 0) {
        return error(
            "max_request_bytes:",
            format!("job {job:?}: k8s_audit_webhook.max_request_bytes must be above 0"),
        );
    }
    Ok(())
}

/// A parse error, pointed at the line that causes it: an unsupported option's own line, a key
/// found at the wrong depth, or a misspelt required option (named with its did-you-mean).
fn yaml_error(file: &str, text: &str, e: &serde_yaml_ng::Error, ignored: &[String]) -> ConfigError {
    let mut err = ConfigError::from_yaml(file, e);
    if let Some(found) = unknown::misspelt_required(text, &err.message, ignored) {
        return ConfigError::new(file, found.line, found.message(true));
    }
    // serde_yaml_ng places errors of a skipped value at the start of the enclosing map; a key at
    // the wrong depth is reported at its stage: point at the key's own line instead.
    let key = if let Some((name, _)) = err.message.split_once(" is not supported") {
        let name = name.rsplit(' ').next().unwrap_or(name);
        Some(
            name.rsplit('.')
                .next()
                .unwrap_or(name)
                .trim_matches('"')
                .to_string(),
        )
    } else {
        err.message
            .split_once("\" is at the depth of")
            .and_then(|(before, _)| before.rsplit_once('"'))
            .map(|(_, key)| key.to_string())
    };
    if let Some(line) = key.and_then(|k| find_line(text, &format!("{k}:"), err.line.unwrap_or(0))) {
        err.line = Some(line);
    }
    err
}

/// Finds the line of a key for errors found after parsing, when serde no longer knows positions.
pub(super) struct Lines {
    pub(super) text: String,
    pub(super) file: String,
}

impl Lines {
    /// The first line at or after `after` (1-based) that contains `needle`.
    pub(super) fn find(&self, needle: &str, after: usize) -> Option<usize> {
        find_line(&self.text, needle, after)
    }

    pub(super) fn error(
        &self,
        needle: &str,
        after: usize,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(&self.file, self.find(needle, after), message)
    }

    /// The line of job `name`'s `job_name:` (0 when not found).
    pub(super) fn job_line(&self, name: &str) -> usize {
        self.find(&format!("job_name: {name}"), 0)
            .or_else(|| self.find(name, 0))
            .unwrap_or(0)
    }
}

pub(super) fn find_line(text: &str, needle: &str, after: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(after.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
}
