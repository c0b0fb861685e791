//! Every metric lokiship exports, in one place. Names follow Promtail's so that existing dashboards and
//! alerts keep working; lokiship's own metrics start with `lokiship_`.
//!
//! prometheus-client appends `_total` to counter names, so counters are registered without it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

pub mod custom;
mod muted;
pub mod os;
pub mod status;

pub use muted::{mute_pipeline_counts, MutedGuard};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub host: String,
    pub reason: String,
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub host: String,
    pub status_code: String,
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
    pub branch: String,
    /// The compiler lokiship was built with (Promtail's label name).
    pub goversion: String,
    pub goos: String,
    pub goarch: String,
    pub tags: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub status_code: String,
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    pub path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    pub file: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabelLabels {
    pub job: String,
    pub label: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: String,
    pub reason: String,
}

/// All metrics. Obtain with [`metrics()`].
pub struct Metrics {
    pub registry: Registry,
    pub sent_entries: Family<HostLabels, Counter>,
    pub sent_bytes: Family<HostLabels, Counter>,
    pub dropped_entries: Family<DropLabels, Counter>,
    pub dropped_bytes: Family<DropLabels, Counter>,
    pub mutated_entries: Family<DropLabels, Counter>,
    pub mutated_bytes: Family<DropLabels, Counter>,
    pub refused_entries: Family<RefusedLabels, Counter>,
    pub build_info: Family<BuildLabels, Gauge>,
    pub encoded_bytes: Family<HostLabels, Counter>,
    pub batch_retries: Family<HostLabels, Counter>,
    pub request_duration: Family<RequestLabels, Histogram>,
    pub read_bytes: Family<PathLabels, Counter>,
    pub read_lines: Family<PathLabels, Counter>,
    pub file_bytes: Family<PathLabels, Gauge>,
    pub file_lag_bytes: Family<PathLabels, Gauge>,
    pub files_active: Gauge,
    pub file_syncs: Counter,
    pub rotated_files_abandoned: Counter,
    pub rotated_bytes_abandoned: Counter,
    /// Mirrors [`crate::entry::ack::lost_acks`] at each render.
    pub acks_lost: Counter,
    pub targets_active: Gauge,
    pub pipeline_dropped_lines: Family<ReasonLabels, Counter>,
    pub pipeline_errors: Family<StageLabels, Counter>,
    pub invalid_utf8_lines: Family<PathLabels, Counter>,
    pub file_errors: Family<ReasonLabels, Counter>,
    pub positions_write_errors: Counter,
    /// State files found damaged at start: positions, identities, disk-queue segments and cursors.
    pub state_damaged: Family<FileLabels, Counter>,
    pub label_cardinality: Family<JobLabelLabels, Gauge>,
    pub client_queue_bytes: Family<HostLabels, Gauge>,
    pub client_queue_entries: Family<HostLabels, Gauge>,
    pub wal_bytes: Family<HostLabels, Gauge>,
    pub wal_entries: Family<HostLabels, Gauge>,
    /// `wal.max_size`: alerts divide `lokiship_wal_bytes` by it.
    pub wal_max_bytes: Family<HostLabels, Gauge>,
    pub push_received_entries: Counter,
    /// Reloads of the config that were applied, and that were refused (Promtail's names).
    pub config_reloads: Counter,
    pub config_reload_failures: Counter,
    /// 1 when the last reload (or the start) applied the config, 0 when it was refused.
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_seconds: Gauge,
    pub push_errors: Family<ReasonLabels, Counter>,
    /// The `metrics` pipeline stages' series.
    pub custom: custom::CustomMetrics,
    /// The journal's and syslog's.
    pub os: os::OsMetrics,
}

fn build() -> Metrics {
    let mut registry = Registry::default();
    let m = unregistered();
    register_clients(&mut registry, &m);
    register_sources(&mut registry, &m);
    m.os.register(&mut registry);
    set_build_info(&m);
    Metrics { registry, ..m }
}

/// Every metric, not registered yet.
fn unregistered() -> Metrics {
    Metrics {
        sent_entries: Family::default(),
        sent_bytes: Family::default(),
        dropped_entries: Family::default(),
        dropped_bytes: Family::default(),
        mutated_entries: Family::default(),
        mutated_bytes: Family::default(),
        refused_entries: Family::default(),
        build_info: Family::default(),
        encoded_bytes: Family::default(),
        batch_retries: Family::default(),
        request_duration: Family::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        }),
        read_bytes: Family::default(),
        read_lines: Family::default(),
        file_bytes: Family::default(),
        file_lag_bytes: Family::default(),
        files_active: Gauge::default(),
        file_syncs: Counter::default(),
        rotated_files_abandoned: Counter::default(),
        rotated_bytes_abandoned: Counter::default(),
        acks_lost: Counter::default(),
        targets_active: Gauge::default(),
        pipeline_dropped_lines: Family::default(),
        pipeline_errors: Family::default(),
        invalid_utf8_lines: Family::default(),
        file_errors: Family::default(),
        positions_write_errors: Counter::default(),
        state_damaged: Family::default(),
        push_received_entries: Counter::default(),
        push_errors: Family::default(),
        custom: Default::default(),
        os: Default::default(),
        label_cardinality: Family::default(),
        client_queue_bytes: Family::default(),
        client_queue_entries: Family::default(),
        wal_bytes: Family::default(),
        wal_entries: Family::default(),
        wal_max_bytes: Family::default(),
        config_reloads: Counter::default(),
        config_reload_failures: Counter::default(),
        config_last_reload_successful: Gauge::default(),
        config_last_reload_success_seconds: Gauge::default(),
        registry: Registry::default(),
    }
}

/// What the clients count: sent, dropped, refused, retried; and the build.
fn register_clients(registry: &mut Registry, m: &Metrics) {
    registry.register(
        "promtail_sent_entries",
        "Entries sent to Loki",
        m.sent_entries.clone(),
    );
    registry.register(
        "promtail_sent_bytes",
        "Bytes of log lines sent to Loki",
        m.sent_bytes.clone(),
    );
    registry.register(
        "promtail_dropped_entries",
        "Entries dropped after failing to send, or rejected by Loki",
        m.dropped_entries.clone(),
    );
    registry.register(
        "promtail_dropped_bytes",
        "Bytes of log lines dropped",
        m.dropped_bytes.clone(),
    );
    registry.register(
        "promtail_mutated_entries",
        "Entries changed before sending (reason line_too_long: truncated to max_line_size)",
        m.mutated_entries.clone(),
    );
    registry.register(
        "promtail_mutated_bytes",
        "Bytes of log lines removed before sending (reason line_too_long: the cut-off part)",
        m.mutated_bytes.clone(),
    );
    registry.register(
        "lokiship_refused_entries",
        "Entries Loki refused with an HTTP 4xx other than 429 (also counted in promtail_dropped_entries_total)",
        m.refused_entries.clone(),
    );
    registry.register(
        "promtail_build_info",
        "A constant 1, labelled with the version and revision lokiship was built from, its OS and architecture",
        m.build_info.clone(),
    );
    registry.register_collector(Box::new(crate::process_metrics::ProcessCollector));
    registry.register(
        "promtail_encoded_bytes",
        "Compressed bytes of push requests",
        m.encoded_bytes.clone(),
    );
    registry.register(
        "promtail_batch_retries",
        "Push requests retried",
        m.batch_retries.clone(),
    );
    registry.register(
        "promtail_request_duration_seconds",
        "Duration of push requests, by HTTP status code",
        m.request_duration.clone(),
    );
    registry.register(
        "promtail_read_bytes",
        "Bytes read from files",
        m.read_bytes.clone(),
    );
    registry.register(
        "promtail_read_lines",
        "Lines read from files",
        m.read_lines.clone(),
    );
}

/// What the file source counts: files, lines, rotations, targets.
fn register_reloads(registry: &mut Registry, m: &Metrics) {
    registry.register(
        "promtail_config_reload_success",
        "Config reloads that were applied",
        m.config_reloads.clone(),
    );
    registry.register(
        "promtail_config_reload_fail",
        "Config reloads refused (the running config was kept)",
        m.config_reload_failures.clone(),
    );
    registry.register(
        "lokiship_config_last_reload_successful",
        "Whether the last config reload was applied (1) or refused (0)",
        m.config_last_reload_successful.clone(),
    );
    registry.register(
        "lokiship_config_last_reload_success_timestamp_seconds",
        "When the running config was loaded (the start or the last applied reload)",
        m.config_last_reload_success_seconds.clone(),
    );
}

fn register_sources(registry: &mut Registry, m: &Metrics) {
    // Promtail names these gauges with `_total`; kept for its dashboards.
    registry.register(
        "promtail_file_bytes_total",
        "Size of tailed files",
        m.file_bytes.clone(),
    );
    registry.register(
        "promtail_files_active_total",
        "Files being tailed",
        m.files_active.clone(),
    );
    registry.register(
        "lokiship_file_lag_bytes",
        "Bytes of a tailed file not yet acknowledged by every client (size - position)",
        m.file_lag_bytes.clone(),
    );
    registry.register(
        "lokiship_file_syncs",
        "Full looks at every target and open file (target_config.sync_period): stops growing if the file source is stuck",
        m.file_syncs.clone(),
    );
    registry.register(
        "lokiship_rotated_files_abandoned",
        "Rotated files given up before their end (limits_config.max_open_rotated_files)",
        m.rotated_files_abandoned.clone(),
    );
    registry.register(
        "lokiship_rotated_bytes_abandoned",
        "Unread bytes of rotated files given up (limits_config.max_open_rotated_files)",
        m.rotated_bytes_abandoned.clone(),
    );
    registry.register(
        "lokiship_acks_lost",
        "Acknowledgements dropped without completion while running (a bug: a file's position stops moving)",
        m.acks_lost.clone(),
    );
    // A gauge, named with `_total` as Promtail names it.
    registry.register(
        "promtail_targets_active_total",
        "Active targets",
        m.targets_active.clone(),
    );
    registry.register(
        "logentry_dropped_lines",
        "Lines dropped by pipeline stages, by reason",
        m.pipeline_dropped_lines.clone(),
    );
    register_pipeline(registry, m);
}

/// What the pipeline, the positions, the push receivers and the queues count.
fn register_pipeline(registry: &mut Registry, m: &Metrics) {
    registry.register(
        "lokiship_pipeline_errors",
        "Entries a stage could not process (shipped unchanged unless configured to drop)",
        m.pipeline_errors.clone(),
    );
    registry.register(
        "lokiship_invalid_utf8_lines",
        "Lines whose invalid UTF-8 bytes were replaced with U+FFFD",
        m.invalid_utf8_lines.clone(),
    );
    registry.register(
        "lokiship_file_errors",
        "Errors opening or reading files, by reason",
        m.file_errors.clone(),
    );
    registry.register(
        "lokiship_positions_write_errors",
        "Failed writes of the positions file",
        m.positions_write_errors.clone(),
    );
    registry.register(
        "lokiship_state_damaged",
        "State files found damaged and set aside at start, by file (positions, positions_identities, wal_segment, wal_cursor)",
        m.state_damaged.clone(),
    );
    registry.register(
        "lokiship_label_cardinality",
        "Distinct values a labels stage gave each label, per job (counted up to the budget + 1)",
        m.label_cardinality.clone(),
    );
    registry.register(
        "lokiship_client_queue_bytes",
        "Bytes of log lines waiting in a client's queue",
        m.client_queue_bytes.clone(),
    );
    registry.register(
        "lokiship_client_queue_entries",
        "Entries waiting in a client's queue",
        m.client_queue_entries.clone(),
    );
    registry.register(
        "lokiship_wal_bytes",
        "Bytes in a client's disk queue (wal)",
        m.wal_bytes.clone(),
    );
    registry.register(
        "lokiship_wal_entries",
        "Entries in a client's disk queue (wal) not yet delivered",
        m.wal_entries.clone(),
    );
    register_reloads(registry, m);
    registry.register(
        "lokiship_wal_max_bytes",
        "A client's disk queue limit (wal.max_size)",
        m.wal_max_bytes.clone(),
    );
    registry.register(
        "lokiship_push_received_entries",
        "Entries received by loki_push_api receivers",
        m.push_received_entries.clone(),
    );
    registry.register(
        "lokiship_push_errors",
        "Push requests a loki_push_api receiver refused (bad_request) or could not store in time (unavailable)",
        m.push_errors.clone(),
    );
}

/// `promtail_build_info`: a constant 1 with the build's labels.
fn set_build_info(m: &Metrics) {
    m.build_info
        .get_or_create(&BuildLabels {
            version: crate::VERSION.to_string(),
            revision: option_env!("LOKISHIP_REVISION")
                .unwrap_or("unknown")
                .to_string(),
            branch: String::new(),
            goversion: option_env!("LOKISHIP_RUSTC")
                .unwrap_or("unknown")
                .to_string(),
            tags: String::new(),
            goos: std::env::consts::OS.to_string(),
            goarch: match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
            .to_string(),
        })
        .set(1);
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(build)
}

/// The metrics in the OpenMetrics text format.
pub fn render() -> String {
    sync_lost_acks();
    let mut out = String::new();
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &metrics().registry);
    // The `metrics` stages' own series go before the OpenMetrics end marker.
    let mut custom = String::new();
    metrics().custom.render(&mut custom);
    if !custom.is_empty() {
        let end = out.rfind("# EOF").unwrap_or(out.len());
        out.insert_str(end, &custom);
    }
    out
}

/// Brings `lokiship_acks_lost_total` up to the count kept beside the acknowledgements (the
/// entry layer cannot see the registry).
fn sync_lost_acks() {
    static SYNC: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SYNC.lock().unwrap_or_else(|e| e.into_inner());
    let counter = &metrics().acks_lost;
    let lost = crate::entry::ack::lost_acks();
    if lost > counter.get() {
        counter.inc_by(lost - counter.get());
    }
}

/// Counts a line dropped by a pipeline stage.
pub fn pipeline_dropped(reason: &str) {
    if muted::is_muted() {
        return;
    }
    metrics()
        .pipeline_dropped_lines
        .get_or_create(&ReasonLabels {
            reason: reason.to_string(),
        })
        .inc();
}

/// A state file found damaged: counted in `lokiship_state_damaged_total{file}`.
pub fn state_damaged(file: &str) {
    metrics()
        .state_damaged
        .get_or_create(&FileLabels {
            file: file.to_string(),
        })
        .inc();
}

/// Counts an error opening or reading a file.
pub fn file_error(reason: &str) {
    metrics()
        .file_errors
        .get_or_create(&ReasonLabels {
            reason: reason.to_string(),
        })
        .inc();
}

/// Counts an entry a stage could not process.
pub fn pipeline_error(stage: &str, reason: &str) {
    metrics()
        .pipeline_errors
        .get_or_create(&StageLabels {
            stage: stage.to_string(),
            reason: reason.to_string(),
        })
        .inc();
}
