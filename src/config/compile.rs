//! Phase 2: a loaded configuration compiled, once, into what run time uses.
//!
//! Each scrape config becomes a [`Job`]: its pipeline built, its relabel rules compiled, its
//! decompression format parsed and its targets ready to be listed. Nothing here is built again at
//! run time, and every error names the line it comes from. This module sits above the sources and
//! the pipeline (it builds them); the rest of `config` sits below them.

use super::load::{Lines, Loaded};
use super::schema::ScrapeConfig;
use super::{Config, ConfigError};
use crate::pipeline::Pipeline;
use crate::source::docker::{self, DockerJob};
use crate::source::file::compressed::{Decompression, Format};
use crate::source::file::discover::PathGlob;
use crate::source::journal::{self, JournalJob};
use crate::source::relabel::Relabel;
use crate::source::stdin::StdinJob;
use crate::source::syslog::{self, SyslogJob};
use crate::source::targets::ScrapeTargets;
use std::sync::Arc;

/// A configuration ready to run.
pub struct Compiled {
    /// The raw settings run time still reads once at start (server, positions, limits, `wal`).
    pub config: Config,
    /// One per entry of `clients`, in order.
    pub clients: Vec<crate::client::settings::Settings>,
    /// One per entry of `scrape_configs`, in order.
    pub jobs: Vec<Job>,
    pub warnings: Vec<String>,
    /// The config file's text as it was read (expanded with `-config.expand-env`), for `/config`,
    /// which masks its secrets.
    pub text: String,
    /// What `-stdin` reads standard input as ([`Compiled::into_stdin`]); then the only source.
    pub stdin: Option<StdinJob>,
}

/// One scrape config, compiled.
pub struct Job {
    pub name: String,
    pub pipeline: Arc<Pipeline>,
    /// Its static and file-discovered targets, after its relabel rules.
    pub targets: ScrapeTargets,
    /// Its `journal`, if it reads the journal.
    pub journal: Option<JournalJob>,
    /// Its `syslog` receiver, if it has one.
    pub syslog: Option<SyslogJob>,
    /// Its `docker_sd_configs` entries.
    pub docker: Vec<DockerJob>,
}

/// Compiles every job of `loaded`.
pub fn compile(loaded: Loaded) -> Result<Compiled, ConfigError> {
    let Loaded {
        config,
        warnings,
        lines,
    } = loaded;
    let jobs = config
        .scrape_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| compile_job(i, sc, &lines))
        .collect::<Result<_, _>>()?;
    let clients = config
        .clients
        .iter()
        .map(|c| {
            crate::client::settings::Settings::compile(c)
                .map_err(|e| lines.error("url:", 0, e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    Ok(Compiled {
        config,
        clients,
        jobs,
        warnings,
        text: lines.text,
        stdin: None,
    })
}

impl Compiled {
    /// The config of a `-stdin` run: standard input is its only source, read with the first
    /// scrape config's labels and pipeline; no other job runs. No disk queue either: a
    /// lokiship running on the same node owns it, and the run waits until its lines are
    /// delivered instead, or dropped after `max_retries` (as Promtail does), which the exit
    /// code says.
    pub fn into_stdin(mut self) -> Compiled {
        let job = stdin_job(&self.config, &self.jobs);
        tracing::debug!(job = %job.job, labels = %job.labels.render(), "reading standard input");
        self.stdin = Some(job);
        self.jobs.clear();
        self.config.scrape_configs.clear();
        self.config.wal.enabled = Some(false);
        for client in &mut self.clients {
            client.give_up_after_max_retries = true;
        }
        self
    }
}

/// Standard input's labels and pipeline: the first scrape config's, its labels those of its
/// first `static_configs` entry (or its receiver's or journal's `labels`) as Promtail takes
/// them, but without the `__` ones (Promtail pushes `__path__` as a label). Without a scrape
/// config, or a label, `{job="stdin", hostname="<this host>"}` as Promtail's.
fn stdin_job(config: &Config, jobs: &[Job]) -> StdinJob {
    let first = config.scrape_configs.first().zip(jobs.first());
    let mut labels: crate::entry::Labels = first
        .map(|(sc, _)| first_labels(sc))
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("__"))
        .collect();
    if labels.is_empty() {
        labels.insert("job", "stdin");
        labels.insert("hostname", crate::source::this_host());
    }
    StdinJob {
        job: first.map_or("stdin".into(), |(sc, _)| sc.job_name.clone()),
        labels,
        pipeline: first.map_or_else(
            || Arc::new(Pipeline::empty()),
            |(_, job)| job.pipeline.clone(),
        ),
    }
}

/// The labels a scrape config gives its entries before relabeling.
fn first_labels(sc: &ScrapeConfig) -> std::collections::BTreeMap<String, String> {
    if let Some(st) = sc.static_configs.first() {
        return st.labels.clone();
    }
    let labels = [
        sc.journal.as_ref().map(|j| &j.labels),
        sc.syslog.as_ref().map(|s| &s.labels),
        sc.loki_push_api.as_ref().map(|p| &p.labels),
        sc.k8s_audit_webhook.as_ref().map(|w| &w.labels),
    ];
    labels
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or_default()
}

fn compile_job(index: usize, sc: &ScrapeConfig, lines: &Lines) -> Result<Job, ConfigError> {
    let job_line = lines.job_line(&sc.job_name);
    let decompression = if sc.decompression.enabled {
        let format = Format::parse(&sc.decompression.format)
            .map_err(|why| lines.error("decompression:", job_line, why))?;
        Some(Decompression {
            format,
            initial_delay: sc
                .decompression
                .initial_delay
                .map(|d| d.0)
                .unwrap_or_default(),
        })
    } else {
        None
    };
    let relabel = relabel_rules(sc, lines, job_line)?;
    check_static_globs(sc, lines, job_line)?;
    let pipeline = Pipeline::build(&sc.pipeline_stages, &sc.job_name).map_err(|e| {
        let line = lines.find(&format!("{}:", e.stage), job_line);
        ConfigError::new(&lines.file, line, format!("job {:?}: {}", sc.job_name, e))
    })?;
    let pipeline = Arc::new(pipeline);
    let journal = sc.journal.as_ref().map(|j| JournalJob {
        job: sc.job_name.clone(),
        json: j.json,
        max_age: j.max_age.map_or(journal::DEFAULT_MAX_AGE, |d| d.0),
        path: j.path.clone(),
        matches: journal::split_matches(&j.matches),
        labels: j.labels.clone().into_iter().collect(),
        relabel: relabel.clone(),
        pipeline: pipeline.clone(),
    });
    let syslog = match &sc.syslog {
        Some(config) => Some(
            syslog_job(sc, config, relabel.clone(), pipeline.clone()).map_err(|why| {
                lines.error(
                    "syslog:",
                    job_line,
                    format!("job {:?}: syslog: {why}", sc.job_name),
                )
            })?,
        ),
        None => None,
    };
    let docker = sc
        .docker_sd_configs
        .iter()
        .map(|d| docker_job(sc, d, relabel.clone(), pipeline.clone()))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|why| {
            lines.error(
                "docker_sd_configs:",
                job_line,
                format!("job {:?}: docker_sd_configs: {why}", sc.job_name),
            )
        })?;
    let targets = ScrapeTargets::new(index, sc, relabel, decompression).map_err(|e| {
        ConfigError::new(
            &lines.file,
            Some(job_line),
            format!("job {:?}: {e}", sc.job_name),
        )
    })?;
    Ok(Job {
        name: sc.job_name.clone(),
        pipeline,
        targets,
        journal,
        syslog,
        docker,
    })
}

/// A `docker_sd_configs` entry checked and made into its reader's settings.
fn docker_job(
    sc: &ScrapeConfig,
    d: &crate::config::schema::DockerSdConfig,
    relabel: Vec<Relabel>,
    pipeline: Arc<Pipeline>,
) -> Result<DockerJob, String> {
    if d.host.is_empty() {
        return Err("host is required (unix:///var/run/docker.sock, tcp://host:2375)".into());
    }
    let tls = &d.tls_config;
    if !(tls.ca_file.is_empty()
        && tls.cert_file.is_empty()
        && tls.key_file.is_empty()
        && tls.ca.is_empty()
        && tls.cert.is_empty())
    {
        return Err(
            "tls_config is not supported yet: reach the daemon by its unix socket or plain tcp://"
                .into(),
        );
    }
    if !d.proxy_url.is_empty() {
        return Err("proxy_url is not supported yet".into());
    }
    Ok(DockerJob {
        job: sc.job_name.clone(),
        daemon: docker::api::Daemon::parse(&d.host)?,
        authorization: docker_authorization(d)?,
        filters: DockerJob::encode_filters(&d.filters),
        port: d.port.unwrap_or(80),
        host_networking_host: d
            .host_networking_host
            .clone()
            .unwrap_or_else(|| "localhost".into()),
        refresh: d
            .refresh_interval
            .map(|r| r.0)
            .filter(|r| !r.is_zero())
            .unwrap_or(docker::DEFAULT_REFRESH),
        relabel,
        pipeline,
    })
}

/// The `Authorization` header of `basic_auth`, `authorization` or `bearer_token(_file)`.
fn docker_authorization(
    d: &crate::config::schema::DockerSdConfig,
) -> Result<Option<String>, String> {
    use base64::Engine as _;
    let read = |file: &str, what: &str| {
        std::fs::read_to_string(file)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("{what} {file}: {e}"))
    };
    if let Some(b) = &d.basic_auth {
        let password = if b.password_file.is_empty() {
            b.password.clone()
        } else {
            read(&b.password_file, "basic_auth.password_file")?
        };
        let user = if b.username_file.is_empty() {
            b.username.clone()
        } else {
            read(&b.username_file, "basic_auth.username_file")?
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        return Ok(Some(format!("Basic {token}")));
    }
    let (kind, credentials) = match &d.authorization {
        Some(a) if !a.credentials_file.is_empty() => (
            a.kind.clone(),
            read(&a.credentials_file, "authorization.credentials_file")?,
        ),
        Some(a) => (a.kind.clone(), a.credentials.clone()),
        None if !d.bearer_token_file.is_empty() => (
            String::new(),
            read(&d.bearer_token_file, "bearer_token_file")?,
        ),
        None => (String::new(), d.bearer_token.clone()),
    };
    if credentials.is_empty() {
        return Ok(None);
    }
    let kind = if kind.is_empty() {
        "Bearer".to_string()
    } else {
        kind
    };
    Ok(Some(format!("{kind} {credentials}")))
}

/// A `syslog` block checked and made into its receiver's settings.
fn syslog_job(
    sc: &ScrapeConfig,
    c: &crate::config::schema::SyslogConfig,
    relabel: Vec<Relabel>,
    pipeline: Arc<Pipeline>,
) -> Result<SyslogJob, String> {
    let protocol = match c.listen_protocol.as_str() {
        "" | "tcp" => syslog::Protocol::Tcp,
        "udp" => syslog::Protocol::Udp,
        other => return Err(format!("listen_protocol {other:?}: use tcp or udp")),
    };
    let format = match c.syslog_format.as_str() {
        "" | "rfc5424" => syslog::message::Format::Rfc5424,
        "rfc3164" => syslog::message::Format::Rfc3164,
        other => return Err(format!("syslog_format {other:?}: use rfc5424 or rfc3164")),
    };
    let tls = match &c.tls_config {
        Some(_) if protocol == syslog::Protocol::Udp => {
            return Err("tls_config needs listen_protocol tcp".into())
        }
        Some(t) if t.cert_file.is_empty() || t.key_file.is_empty() => {
            return Err("tls_config needs cert_file and key_file".into())
        }
        Some(t) => Some(syslog::TlsFiles {
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            ca_file: t.ca_file.clone(),
        }),
        None => None,
    };
    let positive = |v: Option<usize>, default: usize| v.filter(|&n| n > 0).unwrap_or(default);
    Ok(SyslogJob {
        job: sc.job_name.clone(),
        listen_address: listen_address(&c.listen_address)?,
        protocol,
        idle_timeout: c
            .idle_timeout
            .map(|d| d.0)
            .filter(|d| !d.is_zero())
            .unwrap_or(syslog::DEFAULT_IDLE_TIMEOUT),
        max_message_length: positive(c.max_message_length, syslog::DEFAULT_MAX_MESSAGE_LENGTH),
        max_connections: positive(c.max_connections, syslog::DEFAULT_MAX_CONNECTIONS),
        options: syslog::message::Options {
            format,
            label_structured_data: c.label_structured_data,
            use_rfc5424_message: c.use_rfc5424_message,
        },
        use_incoming_timestamp: c.use_incoming_timestamp,
        labels: c.labels.clone().into_iter().collect(),
        relabel,
        pipeline,
        tls,
    })
}

/// `host:port` (or `:port`, every address) as a socket address.
fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if text.is_empty() {
        return Err("listen_address is required (host:port)".into());
    }
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    full.to_socket_addrs()
        .map_err(|e| format!("listen_address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("listen_address {text:?}: no address"))
}

/// Each rule compiled, an error pointing at the rule's own `- ` line.
fn relabel_rules(
    sc: &ScrapeConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<Vec<Relabel>, ConfigError> {
    let mut after = lines.find("relabel_configs:", job_line).unwrap_or(job_line);
    let mut rules = Vec::with_capacity(sc.relabel_configs.len());
    for (i, rule) in sc.relabel_configs.iter().enumerate() {
        let line = lines.find("- ", after + 1);
        after = line.unwrap_or(after);
        let compiled = Relabel::new(rule).map_err(|e| {
            ConfigError::new(
                &lines.file,
                line,
                format!("job {:?}: relabel_configs[{i}]: {e}", sc.job_name),
            )
        })?;
        rules.push(compiled);
    }
    Ok(rules)
}

/// A static `__path__` glob that cannot work is a config error, not a warning at run time.
fn check_static_globs(
    sc: &ScrapeConfig,
    lines: &Lines,
    job_line: usize,
) -> Result<(), ConfigError> {
    for st in &sc.static_configs {
        if let Some(pattern) = st.labels.get("__path__") {
            let exclude = st.labels.get("__path_exclude__").map(String::as_str);
            if let Err(e) = PathGlob::new(pattern, exclude) {
                return Err(lines.error(
                    "__path__",
                    job_line,
                    format!(
                        "job {:?}: invalid __path__ glob {pattern:?}: {e}",
                        sc.job_name
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdin_labels(yaml: &str) -> String {
        let loaded = crate::config::load_str("t.yaml", yaml, &Default::default()).unwrap();
        let compiled = compile(loaded).unwrap().into_stdin();
        assert!(compiled.jobs.is_empty() && compiled.config.scrape_configs.is_empty());
        assert_eq!(compiled.config.wal.enabled, Some(false));
        compiled.stdin.unwrap().labels.render()
    }

    #[test]
    fn stdin_reads_with_the_first_jobs_labels_else_job_stdin_and_the_host() {
        let journal = "scrape_configs:\n  - job_name: j\n    journal:\n      labels: {job: systemd-journal}\n  - job_name: f\n    static_configs:\n      - labels: {job: files, __path__: /x}\n";
        assert_eq!(stdin_labels(journal), r#"{job="systemd-journal"}"#);
        let only_path = "scrape_configs:\n  - job_name: f\n    static_configs:\n      - labels: {__path__: /x}\n";
        let host = crate::source::this_host();
        assert_eq!(
            stdin_labels(only_path),
            format!(r#"{{hostname="{host}", job="stdin"}}"#)
        );
    }

    #[test]
    fn fuzz_config_loader() {
        use crate::config::load::{load_str, LoadOptions};
        let seeds: Vec<Vec<u8>> = [
            include_str!("../../config/k8s-audit.yaml"),
            include_str!("../../config/syslog.yaml"),
            include_str!("../../config/journal.yaml"),
            include_str!("../../config/k8s-audit-webhook.yaml"),
            include_str!("../../tests/data/configs/every-stage.yaml"),
            include_str!("../../tests/data/configs/server-and-clients.yaml"),
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let tokens = [
            "${HOME}",
            "${NOPE:-x}",
            "${",
            "$$",
            ": ",
            "\n  - ",
            "\n    ",
            "&a ",
            "*a",
            "<<: *a",
            "!!binary ",
            "!!str ",
            "[",
            "]",
            "{",
            "}",
            "'",
            "\"",
            "~",
            "0x",
            "1e3",
            "10MB",
            "5m",
            "job_name: ",
            "pipeline_stages:",
            "- regex: {expression: '(?P<a>",
            "{{ .a }}",
            "relabel_configs:",
            "regex: (.*",
        ];
        let opts = LoadOptions {
            expand_env: true,
            strict: false,
        };
        crate::fuzz::run("config_loader", &seeds, &tokens, |input| {
            let text = String::from_utf8_lossy(input);
            if let Ok(loaded) = load_str("fuzz.yaml", &text, &opts) {
                let _ = compile(loaded);
            }
        });
    }
}
