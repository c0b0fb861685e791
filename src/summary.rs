//! What a run did, in one place: files, lines read, sent, dropped by reason, refused by Loki,
//! unreadable files, what waits on the disk queues. Printed when a run ends (`-dry-run`,
//! `-exit-at-eof`, SIGTERM) and behind `-exit-at-eof`'s exit code.
//!
//! Read from the exported metrics themselves, not kept beside them: what the summary says and what
//! `/metrics` says cannot disagree.

use std::collections::BTreeMap;

/// Totals of one run, from the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files lines were read from.
    pub files: u64,
    pub lines_read: u64,
    pub sent: u64,
    /// Entries a client dropped (refused by Loki, too old, too long, disk queue full …), by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Of those, the entries Loki itself refused (an HTTP 4xx other than 429).
    pub refused: u64,
    /// Lines pipeline stages dropped on purpose (`drop`, `match` …), by reason.
    pub filtered: BTreeMap<String, u64>,
    /// Errors opening or reading files, by reason.
    pub file_errors: BTreeMap<String, u64>,
    /// Bytes still on the clients' disk queues.
    pub disk_queue_bytes: u64,
    /// Entries still on the clients' disk queues.
    pub disk_queue_entries: u64,
    /// Entries and bytes of lines in the clients' memory queues.
    pub queued_entries: u64,
    pub queued_bytes: u64,
    /// Lines read from standard input (`-stdin`) and not delivered when the run ended.
    pub stdin_undelivered: u64,
}

/// `lokiship_file_errors_total` reasons that mean a file's lines were not read.
const UNREADABLE: &[&str] = &["open", "read", "decompress"];

impl Summary {
    /// The current totals of this process's metrics.
    pub fn now() -> Self {
        Self::from_text(&crate::metrics::render())
    }

    /// Parses the OpenMetrics text of [`crate::metrics::render`].
    pub fn from_text(text: &str) -> Self {
        let mut s = Summary::default();
        let mut files = std::collections::HashSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = value.max(0.0) as u64;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            let label = |n: &str| label_value(labels, n).unwrap_or_default();
            match name {
                "promtail_read_lines_total" => {
                    s.lines_read += value;
                    if value > 0 {
                        files.insert(label("path"));
                    }
                }
                "promtail_sent_entries_total" => s.sent += value,
                "promtail_dropped_entries_total" if value > 0 => {
                    *s.dropped.entry(label("reason")).or_default() += value
                }
                "lokiship_refused_entries_total" => s.refused += value,
                "logentry_dropped_lines_total" if value > 0 => {
                    *s.filtered.entry(label("reason")).or_default() += value
                }
                "lokiship_file_errors_total" if value > 0 => {
                    *s.file_errors.entry(label("reason")).or_default() += value
                }
                "lokiship_wal_bytes" => s.disk_queue_bytes += value,
                "lokiship_wal_entries" => s.disk_queue_entries += value,
                "lokiship_client_queue_entries" => s.queued_entries += value,
                "lokiship_client_queue_bytes" => s.queued_bytes += value,
                "lokiship_stdin_undelivered_lines_total" => s.stdin_undelivered += value,
                _ => {}
            }
        }
        s.files = files.len() as u64;
        s
    }

    /// Entries that were dropped by a client (Loki refused them, or they could not be sent).
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Errors that kept lines of a file from being read.
    pub fn unreadable(&self) -> u64 {
        UNREADABLE
            .iter()
            .filter_map(|r| self.file_errors.get(*r))
            .sum()
    }

    /// Whether lines were lost on the way: refused, dropped by a client, or never read. Lines a
    /// pipeline stage drops are the config's choice, not a loss.
    pub fn lost_anything(&self) -> bool {
        self.dropped_total() > 0
            || self.refused > 0
            || self.unreadable() > 0
            || self.stdin_undelivered > 0
    }

    /// Logs the summary as one line.
    pub fn log(&self) {
        tracing::info!(
            files = self.files,
            lines_read = self.lines_read,
            sent = self.sent,
            dropped = self.dropped_total(),
            dropped_by_reason = %join(&self.dropped, "=", ","),
            refused_by_loki = self.refused,
            filtered_by_pipeline = %join(&self.filtered, "=", ","),
            file_errors = %join(&self.file_errors, "=", ","),
            disk_queue_entries = self.disk_queue_entries,
            disk_queue_bytes = self.disk_queue_bytes,
            "summary"
        );
    }

    /// What was not shipped, for the last line of a run that lost lines.
    pub fn loss(&self) -> String {
        let mut loss = format!(
            "{} refused by Loki, {} dropped by the clients ({}), {} file errors ({})",
            self.refused,
            self.dropped_total(),
            join(&self.dropped, ": ", ", "),
            self.unreadable(),
            join(&self.file_errors, ": ", ", "),
        );
        if self.stdin_undelivered > 0 {
            loss += &format!(
                ", {} lines of standard input not delivered",
                self.stdin_undelivered
            );
        }
        loss
    }
}

/// `reason{is}n{sep}reason{is}n`, or `none`.
fn join(counts: &BTreeMap<String, u64>, is: &str, sep: &str) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}{is}{v}"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The value of `name` in a series' labels text `a="1",b="x"}` (escapes are kept as written).
fn label_value(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (n, after) = rest.split_once("=\"")?;
        let mut end = 0;
        let bytes = after.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let value = after.get(..end)?;
        if n.trim_start_matches(',') == name {
            return Some(value.to_string());
        }
        rest = after.get(end + 1..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP promtail_read_lines Lines read from files
promtail_read_lines_total{path="/var/log/a.log"} 120
promtail_read_lines_total{path="/var/log/b,\"x\".log"} 80
promtail_read_lines_total{path="/var/log/c.log"} 0
promtail_sent_entries_total{host="loki:3100"} 143
promtail_dropped_entries_total{host="loki:3100",reason="too_old",tenant=""} 50
promtail_dropped_entries_total{host="loki:3100",reason="ingester_error",tenant=""} 0
lokiship_refused_entries_total{host="loki:3100",status_code="400",tenant=""} 50
logentry_dropped_lines_total{reason="audit_request_received"} 7
lokiship_file_errors_total{reason="open"} 1
lokiship_wal_bytes{host="loki:3100"} 2048
lokiship_wal_entries{host="loki:3100"} 3
lokiship_client_queue_entries{host="loki:3100"} 4
lokiship_client_queue_bytes{host="loki:3100"} 4096
lokiship_stdin_undelivered_lines_total 6
# EOF
"#;

    #[test]
    fn totals_come_from_the_exported_series() {
        let s = Summary::from_text(TEXT);
        assert_eq!(s.files, 2, "a file with no line read is not counted");
        assert_eq!(s.lines_read, 200);
        assert_eq!(s.sent, 143);
        assert_eq!(s.dropped, BTreeMap::from([("too_old".to_string(), 50)]));
        assert_eq!(s.refused, 50);
        assert_eq!(s.filtered["audit_request_received"], 7);
        assert_eq!(s.unreadable(), 1);
        assert_eq!((s.disk_queue_entries, s.disk_queue_bytes), (3, 2048));
        assert_eq!((s.queued_entries, s.queued_bytes), (4, 4096));
        assert_eq!(s.stdin_undelivered, 6);
        assert!(s.lost_anything());
        assert!(s
            .loss()
            .ends_with(", 6 lines of standard input not delivered"));
    }

    #[test]
    fn lines_a_stage_drops_are_not_a_loss() {
        let s = Summary::from_text(
            "promtail_sent_entries_total{host=\"l\"} 5\nlogentry_dropped_lines_total{reason=\"x\"} 9\n",
        );
        assert!(!s.lost_anything());
        assert_eq!(
            label_value(r#"a="1",path="p\"q",z="""#, "path").as_deref(),
            Some(r#"p\"q"#)
        );
    }
}
