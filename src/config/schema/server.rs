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
    pub http_tls_config: Option<u::HttpTlsConfig>,
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
