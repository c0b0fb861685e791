//! The sink of a dry run: standard output instead of the clients.

use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::{Entry, Labels};
use std::io::Write;

/// `-dry-run`: prints each entry as `timestamp<TAB>labels<TAB>structured metadata<TAB>line`.
pub(super) struct StdoutSink;

impl EntrySink for StdoutSink {
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.print(entries).map_err(|_| TrySendError::Closed)
    }

    fn wait_for_room(&self, _timeout: std::time::Duration) {}
}

impl StdoutSink {
    fn print(&self, entries: Vec<Entry>) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let m = crate::metrics::metrics();
        let host = crate::metrics::HostLabels {
            host: "stdout".into(),
        };
        m.sent_entries
            .get_or_create(&host)
            .inc_by(entries.len() as u64);
        m.sent_bytes
            .get_or_create(&host)
            .inc_by(entries.iter().map(|e| e.line.len() as u64).sum());
        for entry in entries {
            let ts = chrono::DateTime::from_timestamp_nanos(entry.timestamp_ns)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let mut visible = entry.labels.clone();
            visible.retain(|n, _| !n.starts_with("__"));
            let sm: Labels = entry
                .structured_metadata
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            writeln!(
                out,
                "{ts}\t{}\t{}\t{}",
                visible.render(),
                sm.render(),
                entry.line
            )?;
            // Printed is delivered (a push receiver answers its sender once it is).
            if let Some(ack) = entry.ack {
                ack.done_all();
            }
        }
        out.flush()
    }
}
