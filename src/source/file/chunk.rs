//! One read's lines made into entries: each line through the pipeline, its acknowledgement
//! registered in read order, and what was read, cut or dropped counted. Shared by the file
//! source and standard input (`source::stdin`).

use super::tailer::LineEvent;
use super::Limiter;
use crate::entry::ack::AckTracker;
use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels, PathLabels};
use crate::pipeline::{Pipeline, Processing};
use std::sync::Arc;
use std::time::Duration;

/// What one read produced: entries for the clients, and counts for the metrics.
pub(crate) struct Chunk<'a> {
    pub pipeline: &'a Pipeline,
    pub labels: Labels,
    pub tracker: Arc<AckTracker>,
    pub limiter: Option<&'a Limiter>,
    pub readline_drop: bool,
    /// The next entry's timestamp until a stage sets one: when the chunk was read, one
    /// nanosecond more for each line, so that two equal lines of one chunk are two entries
    /// (Loki keeps one of the entries of a stream with the same time and line).
    pub now: i64,
    pub counts: Counts,
    pub entries: Vec<Entry>,
    /// The pipeline's output for one line (reused).
    pub processed: Vec<Processing>,
}

#[derive(Default)]
pub(crate) struct Counts {
    pub lines: u64,
    pub invalid_utf8: u64,
    pub too_long: u64,
    pub truncated: u64,
}

impl Chunk<'_> {
    /// Runs one line through the pipeline; its acknowledgement is registered in order, so the
    /// file's position moves past it only once it is delivered (or dropped for good).
    pub fn line(&mut self, event: LineEvent) {
        let (bytes, end) = match event {
            LineEvent::Line {
                bytes,
                end,
                truncated,
            } => {
                self.counts.truncated += u64::from(truncated);
                (bytes, end)
            }
            LineEvent::TooLong { end } => {
                self.counts.too_long += 1;
                self.tracker.register(end).done_all();
                return;
            }
        };
        self.counts.lines += 1;
        let ack = self.tracker.register(end);
        if let Some(limiter) = self.limiter {
            if !wait_for_rate(limiter, self.readline_drop) {
                crate::metrics::pipeline_dropped("readline_rate_limited");
                ack.done_all();
                return;
            }
        }
        let line = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => {
                self.counts.invalid_utf8 += 1;
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        let mut p = Processing::new(self.labels.clone(), line, self.now);
        self.now += 1;
        p.ack = Some(ack);
        self.pipeline.run(p, &mut self.processed);
        self.entries
            .extend(self.processed.drain(..).map(Processing::into_entry));
    }
}

/// Counts `n` lines over max_line_size in Promtail's per-reason family (dropped or mutated), for
/// every client they would have gone to (`(host, tenant)`), as Promtail's clients count them.
fn count_line_too_long(
    clients: &[(String, String)],
    family: &prometheus_client::metrics::family::Family<
        DropLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    n: u64,
) {
    for (host, tenant) in clients {
        family
            .get_or_create(&DropLabels {
                host: host.clone(),
                reason: "line_too_long".into(),
                tenant: tenant.clone(),
            })
            .inc_by(n);
    }
}

/// Waits for the readline rate limit; `false` if the line must be dropped instead.
fn wait_for_rate(limiter: &Limiter, drop: bool) -> bool {
    loop {
        match limiter.check() {
            Ok(()) => return true,
            Err(_) if drop => return false,
            Err(not_until) => {
                use governor::clock::Clock;
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                std::thread::sleep(wait.max(Duration::from_micros(50)));
            }
        }
    }
}

/// Publishes what one read of `path` did.
pub(crate) fn count_read(
    path: &str,
    bytes: u64,
    counts: &Counts,
    max_line: usize,
    client_labels: &[(String, String)],
) {
    let m = metrics();
    let pl = PathLabels {
        path: path.to_string(),
    };
    if bytes > 0 || counts.lines > 0 {
        m.read_bytes.get_or_create(&pl).inc_by(bytes);
        m.read_lines.get_or_create(&pl).inc_by(counts.lines);
    }
    if counts.invalid_utf8 > 0 {
        m.invalid_utf8_lines
            .get_or_create(&pl)
            .inc_by(counts.invalid_utf8);
    }
    if counts.truncated > 0 {
        tracing::warn!(path = %path, lines = counts.truncated, max_line, "truncated lines longer than max_line_size");
        count_line_too_long(client_labels, &m.mutated_entries, counts.truncated);
    }
    if counts.too_long > 0 {
        tracing::warn!(path = %path, lines = counts.too_long, max_line, "dropped lines longer than max_line_size");
        count_line_too_long(client_labels, &m.dropped_entries, counts.too_long);
    }
}
