//! Reading: one chunk of one file, through the pipeline, into the clients' queues. What may be
//! read (settled, not truncated) the tailer decides ([`super::tailer::Tailer::ready`]).

use super::chunk::{count_read, Chunk, Counts};
use super::{Closed, FileSource, Progress};
use crate::entry::sink::TrySendError;
use crate::entry::Entry;

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
        count_read(
            &path,
            bytes as u64,
            &counts,
            self.config.max_line,
            &self.config.client_labels,
        );
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
}

/// What [`FileSource::ship_lines`] reads.
enum Lines {
    /// The next chunk of the file.
    Chunk,
    /// The incomplete last line, as a line.
    Last,
}
