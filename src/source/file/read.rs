//! Reading: one chunk of one file, through the pipeline, into the clients' queues. What may be
//! read (settled, not truncated) the tailer decides ([`super::tailer::Tailer::ready`]).

use super::tailer::LineEvent;
use super::{Closed, FileSource, Limiter, Progress};
use crate::entry::ack::AckTracker;
use crate::entry::sink::TrySendError;
use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels, PathLabels};
use crate::pipeline::{Pipeline, Processing};
use std::sync::Arc;
use std::time::Duration;

impl FileSource {
    /// Reads one chunk of tailer `i` and ships its lines.
    pub(super) fn read_one(&mut self, i: usize) -> Result<Progress, Closed> {
        if let Some(entries) = self.tailers[i].take_unsent() {
            if !self.hand_over(i, entries)? {
                return Ok(Progress::Blocked);
            }
        }
        if !self.tailers[i].ready(&self.positions) {
            return Ok(Progress::Idle);
        }
        self.ship_lines(i, Lines::Chunk)
    }

    /// Ships the incomplete last line of a finished rotated or deleted file (no writer will end
    /// it); `Progress::Blocked` if the queues had no room (the tailer keeps it as unsent).
    pub(super) fn ship_last_line(&mut self, i: usize) -> Result<Progress, Closed> {
        self.ship_lines(i, Lines::Last)
    }

    /// Reads lines of tailer `i` (the next chunk, or its incomplete last line) and ships them
    /// through the pipeline; counts what was read, cut or dropped.
    fn ship_lines(&mut self, i: usize, what: Lines) -> Result<Progress, Closed> {
        let max_line = self.config.max_line;
        let truncate = self.config.truncate_long_lines;
        let t = &mut self.tailers[i];
        let mut chunk = Chunk {
            pipeline: &self.config.pipelines[t.scrape()],
            labels: t.labels().clone(),
            tracker: t.tracker().clone(),
            limiter: self.limiter.as_ref(),
            readline_drop: self.config.readline.as_ref().is_some_and(|l| l.drop),
            now: crate::entry::now_ns(),
            counts: Counts::default(),
            entries: Vec::new(),
            processed: Vec::new(),
        };
        let result = match what {
            Lines::Chunk => t.read(&mut self.buf, max_line, truncate, |e| chunk.line(e)),
            Lines::Last => Ok(t.read_last_line(|e| chunk.line(e))),
        };
        let path = t.path().to_string();
        let n = result.unwrap_or_else(|e| {
            tracing::warn!(path = %path, error = %e, "read error");
            crate::metrics::file_error("read");
            0
        });
        let Chunk {
            counts, entries, ..
        } = chunk;
        let progress = if !entries.is_empty() && !self.hand_over(i, entries)? {
            Progress::Blocked
        } else if n > 0 {
            Progress::Read
        } else {
            Progress::Idle
        };
        // The last line's bytes were counted when they were read.
        let bytes = if matches!(what, Lines::Chunk) { n } else { 0 };
        self.count(&path, bytes as u64, &counts);
        Ok(progress)
    }

    /// Hands tailer `i`'s `entries` to the clients; `Ok(false)` when the queues had no room: the
    /// tailer keeps them and reads nothing more until they are sent.
    fn hand_over(&mut self, i: usize, entries: Vec<Entry>) -> Result<bool, Closed> {
        match self.sink.try_send(entries) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(entries)) => {
                self.tailers[i].keep_unsent(entries);
                Ok(false)
            }
            Err(TrySendError::Closed) => Err(Closed),
        }
    }

    /// Publishes what one read of `path` did.
    fn count(&self, path: &str, bytes: u64, counts: &Counts) {
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
        let max_line = self.config.max_line;
        if counts.truncated > 0 {
            tracing::warn!(path = %path, lines = counts.truncated, max_line, "truncated lines longer than max_line_size");
            count_line_too_long(
                &self.config.client_labels,
                &m.mutated_entries,
                counts.truncated,
            );
        }
        if counts.too_long > 0 {
            tracing::warn!(path = %path, lines = counts.too_long, max_line, "dropped lines longer than max_line_size");
            count_line_too_long(
                &self.config.client_labels,
                &m.dropped_entries,
                counts.too_long,
            );
        }
    }
}

/// What one read produced: entries for the clients, and counts for the metrics.
struct Chunk<'a> {
    pipeline: &'a Pipeline,
    labels: Labels,
    tracker: Arc<AckTracker>,
    limiter: Option<&'a Limiter>,
    readline_drop: bool,
    /// The entries' timestamp until a stage sets one: when the chunk was read.
    now: i64,
    counts: Counts,
    entries: Vec<Entry>,
    /// The pipeline's output for one line (reused).
    processed: Vec<Processing>,
}

#[derive(Default)]
struct Counts {
    lines: u64,
    invalid_utf8: u64,
    too_long: u64,
    truncated: u64,
}

impl Chunk<'_> {
    /// Runs one line through the pipeline; its acknowledgement is registered in order, so the
    /// file's position moves past it only once it is delivered (or dropped for good).
    fn line(&mut self, event: LineEvent) {
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
        p.ack = Some(ack);
        self.pipeline.run(p, &mut self.processed);
        self.entries
            .extend(self.processed.drain(..).map(Processing::into_entry));
    }
}

/// What [`FileSource::ship_lines`] reads.
enum Lines {
    /// The next chunk of the file.
    Chunk,
    /// The incomplete last line, as a line.
    Last,
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
