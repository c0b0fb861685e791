//! `clients[]`: one Loki endpoint each — where to push, how to batch, authenticate and retry.

use super::super::values::{self as u, ByteSize, GoDuration, LabelName};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub url: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tenant_id: String,
    #[serde(default = "default_batchwait")]
    pub batchwait: GoDuration,
    #[serde(default = "default_batchsize")]
    pub batchsize: ByteSize,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub bearer_token: String,
    #[serde(default)]
    pub bearer_token_file: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub proxy_url: String,
    #[serde(default)]
    pub no_proxy: String,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub proxy_from_environment: bool,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default)]
    pub backoff_config: BackoffConfig,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub drop_rate_limited_batches: bool,
    #[serde(default)]
    pub external_labels: BTreeMap<LabelName, String>,
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// lokiship's own, mirroring Loki's limit of the same name: entries older than
    /// `reject_old_samples_max_age` are dropped before sending (counted, reason `too_old`) instead
    /// of making Loki refuse the push.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub reject_old_samples: bool,
    #[serde(default = "default_reject_old_samples_max_age")]
    pub reject_old_samples_max_age: GoDuration,
    /// lokiship's own: `/ready` answers 503 once this client has failed to push (transport errors,
    /// 5xx, 429) for longer than this; `0s` never.
    #[serde(default = "default_unhealthy_after")]
    pub unhealthy_after: GoDuration,
    /// lokiship's own: `protobuf` (snappy, Loki's native push; the default) or `json` (gzip'ed
    /// JSON, for proxies that need to read or rewrite the body).
    #[serde(default)]
    pub encoding: PushEncoding,
    #[serde(default = "default_true", deserialize_with = "u::yaml11_bool")]
    pub follow_redirects: bool,
    #[serde(default = "default_true", deserialize_with = "u::yaml11_bool")]
    pub enable_http2: bool,
    #[serde(default)]
    pub oauth2: Option<u::Oauth2>,
    #[serde(default)]
    pub proxy_connect_header: Option<u::ProxyConnectHeader>,
    #[serde(default)]
    pub stream_lag_labels: Option<IgnoredAny>,
}

fn default_batchwait() -> GoDuration {
    GoDuration::secs(1)
}
fn default_batchsize() -> ByteSize {
    ByteSize(1024 * 1024)
}
fn default_reject_old_samples_max_age() -> GoDuration {
    GoDuration::secs(7 * 24 * 3600)
}
/// The body format of a client's pushes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushEncoding {
    #[default]
    Protobuf,
    Json,
}

fn default_unhealthy_after() -> GoDuration {
    GoDuration::secs(300)
}
fn default_timeout() -> GoDuration {
    GoDuration::secs(10)
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: String,
    pub password: String,
    pub password_file: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: String,
    pub credentials: String,
    pub credentials_file: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub ca_file: String,
    pub ca: String,
    pub cert_file: String,
    pub cert: String,
    pub key_file: String,
    pub key: String,
    pub server_name: String,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub min_period: GoDuration,
    pub max_period: GoDuration,
    pub max_retries: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            min_period: GoDuration::millis(500),
            max_period: GoDuration::secs(300),
            max_retries: 10,
        }
    }
}
