//! `server`: lokiship's own HTTP server (`/metrics`, `/ready`, status pages, `POST /reload`), with
//! every key of Promtail's server block accepted.

use super::super::values::{self as u, GoDuration};
use serde::de::IgnoredAny;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub http_listen_address: String,
    pub http_listen_port: u16,
    pub grpc_listen_address: String,
    pub grpc_listen_port: u16,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub disable: bool,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub register_instrumentation: bool,
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub health_check_target: Option<bool>,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub enable_runtime_reload: bool,
    pub http_path_prefix: String,
    /// lokiship's: `/config` is shown to other hosts too (loopback only by default).
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub config_page_remote: bool,
    /// A receiver's (`loki_push_api`) request must arrive within this, headers and body; 30s.
    pub http_server_read_timeout: Option<GoDuration>,
    /// A receiver's most connections at once (0: no limit, as in Promtail); 256 when unset.
    pub http_listen_conn_limit: Option<usize>,
    // Tuning knobs of Promtail's Go HTTP/gRPC server (every key its `-print-config-stderr` shows)
    // that have no counterpart here; accepted so that configs load unchanged.
    pub http_server_write_timeout: Option<GoDuration>,
    pub http_server_idle_timeout: Option<GoDuration>,
    pub graceful_shutdown_timeout: Option<GoDuration>,
    pub grpc_server_max_recv_msg_size: Option<IgnoredAny>,
    pub grpc_server_max_send_msg_size: Option<IgnoredAny>,
    pub grpc_server_max_concurrent_streams: Option<IgnoredAny>,
    pub log_source_ips_enabled: Option<IgnoredAny>,
    pub http_listen_network: Option<IgnoredAny>,
    pub grpc_listen_network: Option<IgnoredAny>,
    pub grpc_listen_conn_limit: Option<IgnoredAny>,
    pub grpc_collect_max_streams_by_conn: Option<IgnoredAny>,
    pub proxy_protocol_enabled: Option<IgnoredAny>,
    pub tls_cipher_suites: Option<IgnoredAny>,
    pub tls_min_version: Option<IgnoredAny>,
    pub report_grpc_codes_in_instrumentation_label_enabled: Option<IgnoredAny>,
    pub http_server_read_header_timeout: Option<IgnoredAny>,
    pub http_log_closed_connections_without_response_enabled: Option<IgnoredAny>,
    pub grpc_server_max_connection_idle: Option<IgnoredAny>,
    pub grpc_server_max_connection_age: Option<IgnoredAny>,
    pub grpc_server_max_connection_age_grace: Option<IgnoredAny>,
    pub grpc_server_keepalive_time: Option<IgnoredAny>,
    pub grpc_server_keepalive_timeout: Option<IgnoredAny>,
    pub grpc_server_min_time_between_pings: Option<IgnoredAny>,
    pub grpc_server_ping_without_stream_allowed: Option<IgnoredAny>,
    pub grpc_server_num_workers: Option<IgnoredAny>,
    pub grpc_server_stats_tracking_enabled: Option<IgnoredAny>,
    pub grpc_server_recv_buffer_pools_enabled: Option<IgnoredAny>,
    pub log_source_ips_full: Option<IgnoredAny>,
    pub log_source_ips_header: Option<IgnoredAny>,
    pub log_source_ips_regex: Option<IgnoredAny>,
    pub log_request_headers: Option<IgnoredAny>,
    pub log_request_at_info_level_enabled: Option<IgnoredAny>,
    pub log_request_exclude_headers_list: Option<IgnoredAny>,
    pub trace_request_headers: Option<IgnoredAny>,
    pub trace_request_exclude_headers_list: Option<IgnoredAny>,
    pub cluster_validation: Option<IgnoredAny>,
    pub http_tls_config: Option<HttpTlsConfig>,
    pub grpc_tls_config: Option<u::GrpcTlsConfig>,
    pub external_url: Option<String>,
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub profiling_enabled: Option<bool>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_listen_address: String::new(),
            http_listen_port: 9080,
            grpc_listen_address: String::new(),
            grpc_listen_port: 9095,
            log_level: None,
            log_format: None,
            disable: false,
            register_instrumentation: true,
            health_check_target: None,
            enable_runtime_reload: false,
            http_path_prefix: String::new(),
            config_page_remote: false,
            http_server_read_timeout: None,
            http_server_write_timeout: None,
            http_server_idle_timeout: None,
            graceful_shutdown_timeout: None,
            grpc_server_max_recv_msg_size: None,
            grpc_server_max_send_msg_size: None,
            grpc_server_max_concurrent_streams: None,
            log_source_ips_enabled: None,
            http_listen_network: None,
            http_listen_conn_limit: None,
            grpc_listen_network: None,
            grpc_listen_conn_limit: None,
            grpc_collect_max_streams_by_conn: None,
            proxy_protocol_enabled: None,
            tls_cipher_suites: None,
            tls_min_version: None,
            report_grpc_codes_in_instrumentation_label_enabled: None,
            http_server_read_header_timeout: None,
            http_log_closed_connections_without_response_enabled: None,
            grpc_server_max_connection_idle: None,
            grpc_server_max_connection_age: None,
            grpc_server_max_connection_age_grace: None,
            grpc_server_keepalive_time: None,
            grpc_server_keepalive_timeout: None,
            grpc_server_min_time_between_pings: None,
            grpc_server_ping_without_stream_allowed: None,
            grpc_server_num_workers: None,
            grpc_server_stats_tracking_enabled: None,
            grpc_server_recv_buffer_pools_enabled: None,
            log_source_ips_full: None,
            log_source_ips_header: None,
            log_source_ips_regex: None,
            log_request_headers: None,
            log_request_at_info_level_enabled: None,
            log_request_exclude_headers_list: None,
            trace_request_headers: None,
            trace_request_exclude_headers_list: None,
            cluster_validation: None,
            http_tls_config: None,
            grpc_tls_config: None,
            external_url: None,
            profiling_enabled: None,
        }
    }
}

/// `http_tls_config`: HTTPS, as Promtail's server block has it. lokiship serves it on a
/// `loki_push_api` receiver (not yet on its own server); certificates from files only.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct HttpTlsConfig {
    /// Inline PEM: refused (not supported yet) unless empty.
    pub cert: String,
    pub key: Option<String>,
    pub client_ca: String,
    pub cert_file: String,
    pub key_file: String,
    /// Go's names: `NoClientCert` (or empty), `VerifyClientCertIfGiven`,
    /// `RequireAndVerifyClientCert`; the two that do not verify are refused.
    pub client_auth_type: String,
    pub client_ca_file: String,
}

/// What a receiver asks of its clients' certificates, from `client_auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A client may present one; then it must be valid, and it is a credential.
    IfGiven,
    Required,
}

impl HttpTlsConfig {
    /// Whether anything is set (Promtail's `-print-config-stderr` writes the block empty).
    pub fn is_set(&self) -> bool {
        !(self.cert.is_empty()
            && self.key.as_deref().is_none_or(str::is_empty)
            && self.client_ca.is_empty()
            && self.cert_file.is_empty()
            && self.key_file.is_empty()
            && self.client_auth_type.is_empty()
            && self.client_ca_file.is_empty())
    }

    /// The client certificate policy, or why the block cannot be served.
    pub fn client_auth(&self) -> Result<ClientAuth, String> {
        if !self.cert.is_empty()
            || self.key.as_deref().is_some_and(|k| !k.is_empty())
            || !self.client_ca.is_empty()
        {
            return Err("http_tls_config: inline cert, key and client_ca are not supported yet; use cert_file, key_file and client_ca_file".into());
        }
        if self.cert_file.is_empty() || self.key_file.is_empty() {
            return Err("http_tls_config needs cert_file and key_file".into());
        }
        let auth = match self.client_auth_type.as_str() {
            "" | "NoClientCert" => ClientAuth::None,
            "VerifyClientCertIfGiven" => ClientAuth::IfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::Required,
            "RequestClientCert" | "RequireAnyClientCert" => {
                return Err(format!(
                    "http_tls_config.client_auth_type {:?} does not verify the certificate; use VerifyClientCertIfGiven or RequireAndVerifyClientCert",
                    self.client_auth_type
                ))
            }
            other => {
                return Err(format!(
                    "http_tls_config.client_auth_type {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ))
            }
        };
        match (auth, self.client_ca_file.is_empty()) {
            (ClientAuth::None, false) => Err("http_tls_config: client_ca_file is set without a client_auth_type that verifies (VerifyClientCertIfGiven or RequireAndVerifyClientCert)".into()),
            (ClientAuth::IfGiven | ClientAuth::Required, true) => Err(format!("http_tls_config.client_auth_type {} needs client_ca_file", self.client_auth_type)),
            _ => Ok(auth),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> HttpTlsConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_client_certificate_policy_is_goes_names_and_must_verify() {
        assert!(!read("{cert: '', key: null, client_ca: '', cert_file: '', key_file: '', client_auth_type: '', client_ca_file: ''}").is_set());
        let files = "cert_file: s.crt, key_file: s.key";
        assert_eq!(
            read(&format!("{{{files}}}")).client_auth(),
            Ok(ClientAuth::None)
        );
        assert_eq!(
            read(&format!(
                "{{{files}, client_auth_type: RequireAndVerifyClientCert, client_ca_file: ca.crt}}"
            ))
            .client_auth(),
            Ok(ClientAuth::Required)
        );
        assert_eq!(
            read(&format!(
                "{{{files}, client_auth_type: VerifyClientCertIfGiven, client_ca_file: ca.crt}}"
            ))
            .client_auth(),
            Ok(ClientAuth::IfGiven)
        );
        for (bad, says) in [
            ("{cert_file: s.crt}", "needs cert_file and key_file"),
            (
                &*format!("{{{files}, client_ca_file: ca.crt}}"),
                "without a client_auth_type",
            ),
            (
                &*format!("{{{files}, client_auth_type: RequireAndVerifyClientCert}}"),
                "needs client_ca_file",
            ),
            (
                &*format!(
                    "{{{files}, client_auth_type: RequireAnyClientCert, client_ca_file: ca.crt}}"
                ),
                "does not verify",
            ),
            (
                &*format!("{{{files}, client_auth_type: Sometimes}}"),
                "is not one of",
            ),
            ("{cert: '-----BEGIN', key_file: k}", "inline"),
        ] {
            let err = read(bad).client_auth().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
