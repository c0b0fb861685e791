//! A client's configuration compiled (in `config::compile`, before anything starts): the URL
//! parsed, the `host` label, the retry policy, the credentials, the static headers, the batching
//! and the limits, all checked once. Only the connection (TLS, proxy) is kept as configured: its
//! certificate files are read when the client starts, so a dry run, which starts no client, does
//! not need them.

use super::auth::Credentials;
use super::retry::Policy;
use super::send::SenderError;
use crate::config::schema::{ClientConfig, PushEncoding, TlsConfig};
use crate::entry::Labels;
use reqwest::header::HeaderMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Settings {
    pub url: reqwest::Url,
    /// The `host` label of the client's metrics: `name`, else the URL's host:port.
    pub host: String,
    pub tenant: Arc<str>,
    pub batchwait: Duration,
    pub batchsize: usize,
    pub external_labels: Labels,
    /// `reject_old_samples_max_age` in nanoseconds, when `reject_old_samples` is on.
    pub max_age_ns: Option<i64>,
    pub encoding: PushEncoding,
    /// How long a push may take; also how long a stop goes on sending from the disk queue.
    pub timeout: Duration,
    pub policy: Policy,
    pub max_retries: u32,
    /// Drop a batch Loki has not taken after `max_retries` (as Promtail does) instead of
    /// retrying on: for lines no source can read again and no disk queue keeps (`-stdin`),
    /// which end the run with exit code 3 instead of hanging it.
    pub give_up_after_max_retries: bool,
    pub unhealthy_after: Duration,
    pub credentials: Option<Credentials>,
    /// Content type, user agent and `headers`.
    pub headers: HeaderMap,
    pub connection: Connection,
}

/// What the HTTP client is built from when the client starts.
#[derive(Clone)]
pub struct Connection {
    pub follow_redirects: bool,
    pub proxy_from_environment: bool,
    pub proxy_url: String,
    pub tls: TlsConfig,
}

impl Settings {
    /// Compiles one entry of `clients`; the error names the client and what is wrong.
    pub fn compile(config: &ClientConfig) -> Result<Self, SenderError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| SenderError::Config {
            host: config.url.clone(),
            message: format!("invalid url: {e}"),
        })?;
        let host = host_label(config, &url);
        let headers =
            super::http::static_headers(config).map_err(|message| SenderError::Config {
                host: host.clone(),
                message,
            })?;
        Ok(Self {
            url,
            host,
            tenant: config.tenant_id.as_str().into(),
            batchwait: config.batchwait.0,
            batchsize: config.batchsize.0 as usize,
            external_labels: config
                .external_labels
                .iter()
                .map(|(k, v)| (k.0.as_str(), v.as_str()))
                .collect(),
            max_age_ns: config.reject_old_samples.then(|| {
                i64::try_from(config.reject_old_samples_max_age.0.as_nanos()).unwrap_or(i64::MAX)
            }),
            encoding: config.encoding,
            timeout: config.timeout.0,
            policy: Policy {
                min_period: config.backoff_config.min_period.0,
                max_period: config.backoff_config.max_period.0,
                drop_rate_limited: config.drop_rate_limited_batches,
            },
            max_retries: config.backoff_config.max_retries,
            give_up_after_max_retries: false,
            unhealthy_after: config.unhealthy_after.0,
            credentials: Credentials::of(config),
            headers,
            connection: Connection {
                follow_redirects: config.follow_redirects,
                proxy_from_environment: config.proxy_from_environment,
                proxy_url: config.proxy_url.clone(),
                tls: config.tls_config.clone(),
            },
        })
    }
}

/// `name` when set, else the URL's host:port (Promtail's `host` label).
fn host_label(config: &ClientConfig, url: &reqwest::Url) -> String {
    if !config.name.is_empty() {
        return config.name.clone();
    }
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => config.url.clone(),
    }
}
