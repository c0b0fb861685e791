//! Reading: one chunk of one file, through the pipeline, into the clients' queues; truncation is
//! checked before every read.

use super::tailer::LineEvent;
use super::{Closed, FileSource, Limiter, Progress, ReadState};
use crate::entry::sink::TrySendError;
use crate::metrics::{metrics, DropLabels, PathLabels};
use crate::pipeline::Processing;
use std::time::Duration;

impl FileSource {
    /// Reads one chunk of tailer `i` and ships its lines.
    pub(super) fn read_one(&mut self, i: usize) -> Result<Progress, Closed> {
        if let Some(entries) = self.tailers[i].unsent.take() {
            match self.sink.try_send(entries) {
                Ok(()) => {}
                Err(TrySendError::Full(entries)) => {
                    self.tailers[i].unsent = Some(entries);
                    return Ok(Progress::Blocked);
                }
                Err(TrySendError::Closed) => return Err(Closed),
            }
        }
        let size = match self.tailers[i].file().metadata() {
            Ok(m) => m.len(),
            Err(_) => return Ok(Progress::Idle),
        };
        let t = &self.tailers[i];
        if t.compressed() {
            if t.at_eof {
                return Ok(Progress::Idle);
            }
        } else {
            if self.truncated(i, size) || !self.settle(i, size) {
                return Ok(Progress::Idle);
            }
            if size <= self.tailers[i].offset() {
                return Ok(Progress::Idle);
            }
        }
        let max_line = self.config.max_line;
        let truncate = self.config.truncate_long_lines;
        let t = &mut self.tailers[i];
        let pipeline = self.config.pipelines[t.scrape].clone();
        let labels = t.labels.clone();
        let tracker = t.tracker.clone();
        let path = t.path.clone();
        let limiter = self.limiter.as_ref();
        let readline_drop = self.config.readline.as_ref().is_some_and(|l| l.drop);
        let now = crate::entry::now_ns();
        let mut lines = 0u64;
        let mut invalid_utf8 = 0u64;
        let mut too_long = 0u64;
        let mut entries = Vec::new();
        let mut processed = Vec::new();
        let mut truncated_lines = 0u64;
        let result = t.read(&mut self.buf, max_line, truncate, |event| {
            let (bytes, end) = match event {
                LineEvent::Line {
                    bytes,
                    end,
                    truncated,
                } => {
                    truncated_lines += u64::from(truncated);
                    (bytes, end)
                }
                LineEvent::TooLong { end } => {
                    too_long += 1;
                    tracker.register(end).done_all();
                    return;
                }
            };
            lines += 1;
            let ack = tracker.register(end);
            if let Some(limiter) = limiter {
                if !wait_for_rate(limiter, readline_drop) {
                    crate::metrics::pipeline_dropped("readline_rate_limited");
                    ack.done_all();
                    return;
                }
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    invalid_utf8 += 1;
                    String::from_utf8_lossy(bytes).into_owned()
                }
            };
            let mut p = Processing::new(labels.clone(), line, now);
            p.ack = Some(ack);
            pipeline.run(p, &mut processed);
            entries.extend(processed.drain(..).map(Processing::into_entry));
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "read error");
                crate::metrics::file_error("read");
                0
            }
        };
        self.tailers[i].at_eof = n == 0;
        let mut progress = if n > 0 {
            Progress::Read
        } else {
            Progress::Idle
        };
        if !entries.is_empty() {
            match self.sink.try_send(entries) {
                Ok(()) => {}
                Err(TrySendError::Full(entries)) => {
                    self.tailers[i].unsent = Some(entries);
                    progress = Progress::Blocked;
                }
                Err(TrySendError::Closed) => return Err(Closed),
            }
        }
        let m = metrics();
        if n > 0 {
            let pl = PathLabels { path: path.clone() };
            m.read_bytes.get_or_create(&pl).inc_by(n as u64);
            m.read_lines.get_or_create(&pl).inc_by(lines);
        }
        if invalid_utf8 > 0 {
            m.invalid_utf8_lines
                .get_or_create(&PathLabels { path: path.clone() })
                .inc_by(invalid_utf8);
        }
        if truncated_lines > 0 {
            tracing::warn!(path = %path, lines = truncated_lines, max_line, "truncated lines longer than max_line_size");
            count_line_too_long(
                &self.config.client_labels,
                &m.mutated_entries,
                truncated_lines,
            );
        }
        if too_long > 0 {
            tracing::warn!(path = %path, lines = too_long, max_line, "dropped lines longer than max_line_size");
            count_line_too_long(&self.config.client_labels, &m.dropped_entries, too_long);
        }
        Ok(progress)
    }

    /// Whether tailer `i`'s file was truncated (size `size` now) since it was last looked at; if
    /// so, it starts over at 0, its new content unsettled.
    fn truncated(&mut self, i: usize, size: u64) -> bool {
        let t = &mut self.tailers[i];
        let changed = size != t.seen_size;
        t.seen_size = size;
        // Smaller than what was read; or, when it grew, refilled past the read offset (copytruncate
        // while reading was paused): its first bytes are no longer the ones it started with.
        let truncated = size < t.offset()
            || (changed
                && t.state == ReadState::Reading
                && self.positions.content_changed(t.id, t.file()));
        if !truncated {
            return false;
        }
        tracing::warn!(path = %t.path, size, offset = t.offset(), "file was truncated; reading it again from the start");
        let tracker = self.positions.truncated(t.id, t.line_end());
        if let Err(e) = t.restart_at(0, tracker) {
            tracing::warn!(path = %t.path, error = %e, "cannot seek in truncated file");
        }
        t.state = ReadState::unsettled();
        t.short_fingerprint = true;
        true
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
