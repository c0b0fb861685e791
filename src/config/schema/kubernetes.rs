//! `kubernetes_sd_configs`: Prometheus' Kubernetes discovery as Promtail takes it.

use super::super::values as u;
use super::client::{Authorization, BasicAuth, TlsConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KubernetesRole {
    #[default]
    Pod,
    Node,
    Service,
    Endpoints,
    EndpointSlice,
    Ingress,
}

impl KubernetesRole {
    pub fn name(&self) -> &'static str {
        match self {
            KubernetesRole::Pod => "pod",
            KubernetesRole::Node => "node",
            KubernetesRole::Service => "service",
            KubernetesRole::Endpoints => "endpoints",
            KubernetesRole::EndpointSlice => "endpointslice",
            KubernetesRole::Ingress => "ingress",
        }
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSdConfig {
    /// Empty: in-cluster (the pod's service account), or `kubeconfig_file`.
    pub api_server: String,
    pub role: KubernetesRole,
    pub kubeconfig_file: String,
    pub namespaces: KubernetesNamespaces,
    pub selectors: Vec<KubernetesSelector>,
    pub attach_metadata: AttachMetadata,
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

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesNamespaces {
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub own_namespace: bool,
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSelector {
    pub role: KubernetesRole,
    pub label: String,
    pub field: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AttachMetadata {
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub node: bool,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub namespace: bool,
}
