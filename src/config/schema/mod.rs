//! Promtail's configuration schema as serde structs, with Promtail's defaults.
//!
//! Every struct denies unknown fields (a typo is an error with its line), except pipeline stage
//! options, which Promtail ignores silently and real configs contain (see `stages.rs`). Options of
//! Promtail's schema that lokiship does not implement are typed with one of the `unsupported_options!` types in `values.rs`, so that naming them
//! is an error that says so.

use super::stages::StageConfig;
use super::values::{self as u, ByteSize, GoDuration};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

mod audit_webhook;
mod client;
mod docker;
mod kubernetes;
mod server;
pub use audit_webhook::*;
pub use client::*;
pub use docker::*;
pub use kubernetes::*;
pub use server::*;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub clients: Vec<ClientConfig>,
    /// Promtail's deprecated single-client form.
    pub client: Option<ClientConfig>,
    pub positions: PositionsConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub limits_config: LimitsConfig,
    pub target_config: TargetConfig,
    pub options: OptionsConfig,
    pub global: GlobalConfig,
    pub wal: WalConfig,
    pub tracing: TracingConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PositionsConfig {
    pub filename: String,
    pub sync_period: GoDuration,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub ignore_invalid_yaml: bool,
}

impl Default for PositionsConfig {
    fn default() -> Self {
        Self {
            filename: "/var/log/positions.yaml".into(),
            sync_period: GoDuration::secs(10),
            ignore_invalid_yaml: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub readline_rate_enabled: bool,
    pub readline_rate: f64,
    pub readline_burst: u32,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub readline_rate_drop: bool,
    pub max_streams: usize,
    pub max_line_size: ByteSize,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub max_line_size_truncate: bool,
    /// lokiship's own: rotated (or deleted) files kept open until read to their end.
    pub max_open_rotated_files: usize,
    /// lokiship's own: distinct values a label may take before it is reported as unbounded.
    pub max_label_values: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            readline_rate_enabled: false,
            readline_rate: 10000.0,
            readline_burst: 10000,
            readline_rate_drop: true,
            max_streams: 0,
            max_line_size: ByteSize(0),
            max_line_size_truncate: false,
            max_open_rotated_files: 64,
            max_label_values: 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetConfig {
    pub sync_period: GoDuration,
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub stdin: bool,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            sync_period: GoDuration::secs(10),
            stdin: false,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OptionsConfig {
    pub stream_lag_labels: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub file_watch_config: FileWatchConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileWatchConfig {
    pub min_poll_frequency: GoDuration,
    pub max_poll_frequency: GoDuration,
}

impl Default for FileWatchConfig {
    fn default() -> Self {
        Self {
            min_poll_frequency: GoDuration::millis(250),
            max_poll_frequency: GoDuration::millis(250),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Unset: on (see [`WalConfig::disk_queue`]); `false` is Promtail's behaviour, no disk queue.
    #[serde(default, deserialize_with = "u::yaml11_opt_bool")]
    pub enabled: Option<bool>,
    pub dir: String,
    #[serde(rename = "cleanSegmentsOlderThan")]
    pub clean_segments_older_than: Option<GoDuration>,
    #[serde(rename = "watchConfig")]
    pub watch_config: Option<IgnoredAny>,
    /// lokiship's own: the most disk each client's queue may use (default 1GiB).
    pub max_size: Option<ByteSize>,
    /// lokiship's own: `drop_oldest` (default: the oldest segment goes, counted) or
    /// `backpressure` (sources pause; lines wait in the log files).
    pub when_full: Option<super::values::WhenFull>,
}

/// Where and how a client's disk queue is kept, resolved from `wal` and the rest of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskQueue {
    /// Each client gets a directory of its own below this one.
    pub dir: std::path::PathBuf,
    pub max_bytes: u64,
    /// `true` drops the oldest data when full, `false` pauses the sources.
    pub drop_oldest: bool,
    /// Not asked for (`wal.enabled` unset): on by itself.
    pub automatic: bool,
    /// Several clients: one whose memory queue is full takes new lines on disk instead of
    /// pausing the sources for all (a slow Loki does not pace the others).
    pub overflow: bool,
}

impl WalConfig {
    /// The disk queue each client gets, if any.
    ///
    /// Unless `enabled: false` (Promtail's behaviour: no disk queue), every client has one: a
    /// push that fails puts what the client holds in memory there, so that while Loki is down no
    /// line waits only in memory — its log file may be rotated away and deleted before a crash —
    /// and a push receiver's entries are there before their sender hears 204. With several
    /// clients it also takes what a slow client's memory queue has no room for. Left unset, the
    /// queue pauses the sources when full instead of dropping data, unless `when_full` says
    /// otherwise: nobody asked for it, so it must not be why a line is lost. Its default place
    /// is `lokiship-wal/` beside the positions file.
    pub fn disk_queue(&self, positions_file: &str, clients: usize) -> Option<DiskQueue> {
        let automatic = match self.enabled {
            Some(true) => false,
            Some(false) => return None,
            None => true,
        };
        let dir = if self.dir.is_empty() {
            std::path::Path::new(positions_file)
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .join("lokiship-wal")
        } else {
            std::path::PathBuf::from(&self.dir)
        };
        let drop_oldest = match self.when_full {
            Some(w) => w == super::values::WhenFull::DropOldest,
            None => !automatic,
        };
        Some(DiskQueue {
            dir,
            max_bytes: self.max_size.map_or(1 << 30, |b| b.0),
            drop_oldest,
            automatic,
            overflow: clients >= 2,
        })
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(default)]
    pub pipeline_stages: Vec<StageConfig>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub decompression: DecompressionConfig,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    pub journal: Option<JournalConfig>,
    pub syslog: Option<SyslogConfig>,
    pub loki_push_api: Option<PushApiConfig>,
    pub k8s_audit_webhook: Option<AuditWebhookConfig>,
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    #[serde(default)]
    pub docker_sd_configs: Vec<DockerSdConfig>,
    // Promtail's other targets and discovery mechanisms, not implemented yet.
    pub consul_sd_configs: Option<u::ConsulSdConfigs>,
    pub consulagent_sd_configs: Option<u::ConsulAgentSdConfigs>,
    pub gcplog: Option<u::Gcplog>,
    pub windows_events: Option<u::WindowsEvents>,
    pub kafka: Option<u::Kafka>,
    pub gelf: Option<u::Gelf>,
    pub cloudflare: Option<u::Cloudflare>,
    pub heroku_drain: Option<u::HerokuDrain>,
    pub azure_event_hubs: Option<u::AzureEventHubs>,
    pub limits_config: Option<u::ScrapeLimitsConfig>,
}

/// `journal`: the systemd journal.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// The line is the whole entry as JSON instead of its `MESSAGE`.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub json: bool,
    /// The oldest entry read at the first start (and after a cursor that old); 7h when unset.
    pub max_age: Option<GoDuration>,
    /// A journal directory (or file); the system journal when empty.
    #[serde(default)]
    pub path: String,
    /// journalctl matches, separated by spaces (`_SYSTEMD_UNIT=ssh.service + _TRANSPORT=kernel`).
    #[serde(default)]
    pub matches: String,
    #[serde(default, deserialize_with = "labels_without_nulls")]
    pub labels: BTreeMap<String, String>,
}

/// `syslog`: a syslog receiver (RFC 5424 or 3164 messages over TCP, TLS or UDP).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `host:port` to listen on.
    #[serde(default)]
    pub listen_address: String,
    /// `tcp` (the default) or `udp`.
    #[serde(default)]
    pub listen_protocol: String,
    /// A TCP connection without data for this long is closed; 120s when unset.
    pub idle_timeout: Option<GoDuration>,
    /// Structured data as `__syslog_message_sd_<id>_<name>` meta labels.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub label_structured_data: bool,
    #[serde(default, deserialize_with = "labels_without_nulls")]
    pub labels: BTreeMap<String, String>,
    /// The message's own timestamp instead of the time it was received.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub use_incoming_timestamp: bool,
    /// The line is the whole RFC 5424 message instead of its message part.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub use_rfc5424_message: bool,
    /// Longer messages are cut to this many bytes; 8192 when unset.
    pub max_message_length: Option<usize>,
    /// TLS for TCP: `cert_file` and `key_file`; with `ca_file`, clients must present a certificate
    /// it signed.
    pub tls_config: Option<TlsConfig>,
    /// `rfc5424` (the default) or `rfc3164`: the format tried first.
    #[serde(default)]
    pub syslog_format: String,
    /// lokiship's own: open TCP connections beyond this are refused; 1024 when unset.
    pub max_connections: Option<usize>,
}

/// `loki_push_api`: a Loki push endpoint that other shippers send to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushApiConfig {
    /// Its own HTTP server (Promtail's server block; the address and port are what count here).
    #[serde(default)]
    pub server: ServerConfig,
    /// Set on every entry received, over the pushed stream's labels of the same name.
    #[serde(default, deserialize_with = "labels_without_nulls")]
    pub labels: BTreeMap<String, String>,
    /// Keep the pushed timestamps; otherwise entries get the time they were received.
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub use_incoming_timestamp: bool,
    /// lokiship's: a bearer token file senders must present (or a client certificate).
    #[serde(default)]
    pub auth: ReceiverAuth,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DecompressionConfig {
    #[serde(default, deserialize_with = "u::yaml11_bool")]
    pub enabled: bool,
    pub initial_delay: Option<GoDuration>,
    pub format: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
    /// A label written without a value (`env:`) is no label, as in Promtail.
    #[serde(default, deserialize_with = "labels_without_nulls")]
    pub labels: BTreeMap<String, String>,
}

fn labels_without_nulls<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Option<String>>> = Deserialize::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

/// One `relabel_configs` rule (Prometheus' schema); compiled by `source::relabel`.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<super::values::RelabelAction>,
}

/// `file_sd_configs`: target groups read from YAML or JSON files.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Option<GoDuration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(yaml: &str) -> WalConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn unset_means_a_disk_queue_that_never_drops_unless_told_to() {
        let q = wal("{}").disk_queue("/var/lib/lokiship/positions.yaml", 2);
        assert_eq!(
            q,
            Some(DiskQueue {
                dir: "/var/lib/lokiship/lokiship-wal".into(),
                max_bytes: 1 << 30,
                drop_oldest: false,
                automatic: true,
                overflow: true,
            })
        );
        let q = wal("{when_full: drop_oldest, max_size: 10MB, dir: /q}")
            .disk_queue("positions.yaml", 1)
            .unwrap();
        assert_eq!(
            (q.dir, q.max_bytes, q.drop_oldest, q.overflow),
            ("/q".into(), 10 << 20, true, false)
        );
    }

    #[test]
    fn enabled_false_gets_none_and_enabled_true_drops_oldest() {
        assert_eq!(wal("{enabled: false}").disk_queue("p.yaml", 2), None);
        assert_eq!(wal("{enabled: no}").disk_queue("p.yaml", 1), None);
        let q = wal("{enabled: true}")
            .disk_queue("positions.yaml", 1)
            .unwrap();
        assert_eq!(
            (q.dir, q.drop_oldest, q.automatic, q.overflow),
            ("lokiship-wal".into(), true, false, false)
        );
    }
}
