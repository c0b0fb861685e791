//! `k8s_audit_webhook`: lokiship's own receiver for kube-apiserver's audit webhook backend
//! (`--audit-webhook-config-file`), beside Promtail's `loki_push_api`.

use super::super::values::{ByteSize, GoDuration};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The port a `k8s_audit_webhook` listens on when its server block names none.
pub const DEFAULT_WEBHOOK_PORT: u16 = 9880;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditWebhookConfig {
    pub server: AuditWebhookServer,
    pub auth: ReceiverAuth,
    /// Set on every event received (before the pipeline).
    #[serde(deserialize_with = "super::labels_without_nulls")]
    pub labels: BTreeMap<String, String>,
    /// Larger request bodies are answered 413; 64MiB when unset.
    pub max_request_bytes: Option<ByteSize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuditWebhookServer {
    /// All interfaces when empty.
    pub http_listen_address: String,
    /// 9880 when unset; 0 picks a free port (logged, and on the status page).
    pub http_listen_port: Option<u16>,
    /// HTTPS with this certificate; with `client_ca_file`, client certificates it signed are credentials.
    pub tls_config: Option<WebhookTls>,
    /// A request must arrive within this, headers and body; 30s.
    pub http_server_read_timeout: Option<GoDuration>,
    /// The most connections at once (0: no limit); 256 when unset.
    pub http_listen_conn_limit: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookTls {
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
/// lokiship's `auth` of a receiver that takes data over HTTP (`k8s_audit_webhook`, `loki_push_api`).
pub struct ReceiverAuth {
    /// Requests must carry `Authorization: Bearer <the file's content>` (read at each request, so
    /// a rotated token counts at once) unless they present a client certificate the client CA signed.
    pub bearer_token_file: String,
}
