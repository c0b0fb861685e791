//! The path's transitions: a file whose path now holds another file (rename + create) or nothing
//! (deletion) is Moved; it is still read, and finished once it was at its end for a whole poll
//! period after the move, so that a writer that had it open a moment longer is not cut off.

use super::super::identity::FileId;
use super::super::positions::Positions;
use super::{Content, Tailer};
use std::time::{Duration, Instant};

/// What a look at a file's path found.
#[derive(Debug, PartialEq, Eq)]
pub enum Look {
    /// Still followed; the file is `size` bytes.
    Open { size: u64 },
    /// Moved and read to its end, nothing unsent: to be closed.
    Finished,
    /// A compressed file read to its end and every line of it acknowledged: to be closed as
    /// complete, never read again.
    Complete,
}

impl Tailer {
    /// Looks at the file and its path (every poll period, and when inotify reports files created,
    /// renamed or deleted). `poll` is the poll period. The caller looks at the globs right after,
    /// for the new file at a moved path.
    pub fn look(&mut self, positions: &Positions, poll: Duration) -> Look {
        let size = self.reader.file().metadata().map(|m| m.len()).unwrap_or(0);
        if self.short_fingerprint && self.content == Content::Reading {
            self.short_fingerprint =
                !positions.refresh_fingerprint(self.id, self.reader.file(), size);
        }
        let moved = match std::fs::metadata(&self.path) {
            Ok(m) => FileId::of(&m) != self.id,
            Err(_) => true,
        };
        if moved && self.moved_since.is_none() {
            tracing::info!(path = %self.path, "file was rotated or deleted; reading the old file to its end");
            self.moved_since = Some(Instant::now());
        }
        if self.is_compressed() {
            if self.at_eof && self.drained() {
                return Look::Complete;
            }
            return Look::Open { size };
        }
        let finished = self
            .moved_since
            .is_some_and(|since| since.elapsed() >= poll)
            && size <= self.reader.offset()
            && self.unsent.is_none();
        if finished {
            return Look::Finished;
        }
        Look::Open { size }
    }

    /// The lag at a look of size `size`: size minus the acknowledged offset.
    pub fn lag_at(&mut self, size: u64) -> u64 {
        let lag = size.saturating_sub(self.tracker.committed());
        self.published_lag = Some(lag);
        lag
    }
}
