//! `docker_sd_configs`: Prometheus' Docker discovery, whose containers Promtail reads through the
//! Docker API's log stream.

use super::super::values::{self as u, GoDuration};
use super::client::{Authorization, BasicAuth, TlsConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSdConfig {
    /// The daemon: `unix:///var/run/docker.sock`, `tcp://host:2375` or `http://host:2375`.
    pub host: String,
    /// The port of `__address__` for a container without a TCP port; 80 when unset.
    pub port: Option<u16>,
    /// `__address__` of a container in host networking mode; `localhost` when unset.
    pub host_networking_host: Option<String>,
    /// A container sharing another's network (`container:<id>`) gets only its first network.
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub match_first_network: Option<bool>,
    /// Docker's container list filters (`label`, `name`, `status`, …), applied by the daemon.
    pub filters: Vec<DockerFilter>,
    /// How often the containers are listed again; 60s when unset.
    pub refresh_interval: Option<GoDuration>,
    // The HTTP client options, as Prometheus' HTTPClientConfig has them.
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub bearer_token: String,
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub proxy_url: String,
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub follow_redirects: Option<bool>,
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub enable_http2: Option<bool>,
}

#[derive(Debug, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DockerFilter {
    pub name: String,
    pub values: Vec<String>,
}
