//! What the journal, syslog and audit webhook sources and the Kubernetes discovery count. Promtail's names where Promtail has the metric
//! (`promtail_journal_target_*`, `promtail_syslog_*`), lokiship's own beside them.

use super::ReasonLabels;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobReasonLabels {
    pub job: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobCodeLabels {
    pub job: String,
    pub code: String,
}

#[derive(Default)]
pub struct OsMetrics {
    pub journal_lines: Counter,
    pub journal_errors: Family<ErrorLabels, Counter>,
    pub journal_restarts: Family<JobReasonLabels, Counter>,
    pub syslog_entries: Counter,
    pub syslog_parse_errors: Counter,
    pub syslog_empty_messages: Counter,
    pub syslog_bytes: Counter,
    pub syslog_connections: Gauge,
    pub syslog_refused: Family<ReasonLabels, Counter>,
    pub syslog_truncated: Counter,
    pub syslog_invalid_utf8: Counter,
    pub syslog_dropped: Family<ReasonLabels, Counter>,
    pub kubernetes_errors: Family<JobReasonLabels, Counter>,
    pub docker_entries: Counter,
    pub docker_parse_errors: Counter,
    pub docker_errors: Family<JobReasonLabels, Counter>,
    pub audit_webhook_events: Family<JobLabels, Counter>,
    pub audit_webhook_requests: Family<JobCodeLabels, Counter>,
    pub stdin_undelivered: Counter,
}

impl OsMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "promtail_journal_target_lines",
            "Journal entries read",
            self.journal_lines.clone(),
        );
        registry.register(
            "promtail_journal_target_parsing_errors",
            "Journal entries not shipped, by error: no_message, empty_labels, invalid_record, too_long",
            self.journal_errors.clone(),
        );
        registry.register(
            "lokiship_journal_restarts",
            "journalctl runs that ended and were started again, by job and reason (spawn_failed, exited, cursor_rejected)",
            self.journal_restarts.clone(),
        );
        registry.register(
            "lokiship_kubernetes_discovery_errors",
            "Failures of the Kubernetes discovery, by job and reason (connect: no client could be made; watch: a list or watch failed and is retried)",
            self.kubernetes_errors.clone(),
        );
        registry.register(
            "promtail_docker_target_entries",
            "Lines read from Docker containers' log streams",
            self.docker_entries.clone(),
        );
        registry.register(
            "promtail_docker_target_parsing_errors",
            "Docker log lines without a readable timestamp (skipped)",
            self.docker_parse_errors.clone(),
        );
        registry.register(
            "lokiship_docker_discovery_errors",
            "Failures of the Docker discovery, by job and reason (connect, list, inspect, logs, stream, frame); each is retried at the next refresh",
            self.docker_errors.clone(),
        );
        registry.register(
            "lokiship_audit_webhook_events",
            "Audit events received by the k8s_audit_webhook receiver and made safe (on disk or delivered) before the 200",
            self.audit_webhook_events.clone(),
        );
        registry.register(
            "lokiship_audit_webhook_requests",
            "Requests to the k8s_audit_webhook receiver, by job and answer (200, 400, 401, 405, 413, 503, tls_handshake_failed)",
            self.audit_webhook_requests.clone(),
        );
        registry.register(
            "lokiship_stdin_undelivered_lines",
            "Lines read from standard input (-stdin) that were not delivered when the run ended",
            self.stdin_undelivered.clone(),
        );
        registry.register(
            "promtail_syslog_target_entries",
            "Syslog messages received",
            self.syslog_entries.clone(),
        );
        registry.register(
            "promtail_syslog_target_parsing_errors",
            "Syslog messages (and octet-counting lengths) that did not parse; the messages are shipped as they came",
            self.syslog_parse_errors.clone(),
        );
        registry.register(
            "promtail_syslog_empty_messages",
            "Syslog messages with an empty message part (not shipped)",
            self.syslog_empty_messages.clone(),
        );
        registry.register(
            "lokiship_syslog_received_bytes",
            "Bytes of syslog messages received",
            self.syslog_bytes.clone(),
        );
        registry.register(
            "lokiship_syslog_connections",
            "Open syslog connections (TCP and TLS)",
            self.syslog_connections.clone(),
        );
        registry.register(
            "lokiship_syslog_connections_refused",
            "Syslog connections refused or closed early, by reason (limit, tls, idle_timeout)",
            self.syslog_refused.clone(),
        );
        registry.register(
            "lokiship_syslog_truncated_messages",
            "Syslog messages cut to max_message_length",
            self.syslog_truncated.clone(),
        );
        registry.register(
            "lokiship_syslog_invalid_utf8_messages",
            "Syslog messages with bytes that are not UTF-8 (replaced by U+FFFD; Loki refuses such lines)",
            self.syslog_invalid_utf8.clone(),
        );
        registry.register(
            "lokiship_syslog_dropped_messages",
            "Syslog messages not shipped, by reason (empty_labels, queues_full_at_stop)",
            self.syslog_dropped.clone(),
        );
    }
}
