//! The content's two transitions, the one home of copytruncate detection: truncation (Reading →
//! Unsettled) and settling new content before it is read (Unsettled → Reading): is it a copy of
//! content already read?
//!
//! Truncation is checked before every read: the file is smaller than the read offset, or, when it
//! grew, no longer starts with the bytes it started with (truncated and refilled past the offset
//! while reading was paused). Its new content is then unsettled, from offset 0.
//!
//! copytruncate rotation copies `audit.log` to `audit.log.1` and truncates `audit.log`. The copy is a
//! new inode, so identity alone would read it again from the start if the glob matches it — Promtail's
//! and Fluent Bit's duplicates. And the truncated file must not lose the lines that were not read
//! yet when it was truncated — Vector's losses. So content seen for the first time (a new file, a
//! file truncated and written again) stays unread until it is settled:
//!
//! - its first bytes ([`Fingerprint`]) match the earlier content of a truncated file: it is the copy;
//!   it continues where reading of the original stopped, with the original's tracker (so a crash
//!   resumes at the original's acknowledged offset);
//! - they match a file being read now (copied, not truncated yet): it waits until that file is
//!   truncated (the case above); when that does not happen within [`TRUNCATE_WAIT`] of the
//!   copy's last growth, it is no copytruncate copy (a new file that happens to start like
//!   another — two short files with the same line —, or a copy made by hand) and is read in full;
//! - a file read earlier and closed, or the file's own earlier content, is never taken for the
//!   original: when in doubt a file is read in full (duplicates, never a hole);
//! - nothing matches: it is read from the start.
//!
//! A fingerprint needs [`FINGERPRINT_BYTES`]; a new file shorter than that is read from the start
//! once it has not reached that size for [`SHORT_WAIT`].

use super::super::identity::{Fingerprint, FINGERPRINT_BYTES};
use super::super::positions::{CopySource, Positions};
use super::{Content, Tailer};
use crate::entry::ack::AckTracker;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a short new file waits for a full fingerprint before it is read anyway.
pub const SHORT_WAIT: Duration = Duration::from_millis(500);

/// How long a file that starts like a file being read waits, once it stopped growing, for that
/// file to be truncated (copytruncate does it right after the copy) before it is read in full.
pub const TRUNCATE_WAIT: Duration = Duration::from_secs(3);

impl Tailer {
    /// Whether the file was truncated (size `size` now) since it was last looked at; if so, it
    /// starts over at 0, its new content unsettled.
    pub(super) fn truncated(&mut self, positions: &Positions, size: u64) -> bool {
        let changed = size != self.seen_size;
        self.seen_size = size;
        let offset = self.reader.offset();
        let truncated = size < offset
            || (changed
                && self.content == Content::Reading
                && positions.content_changed(self.id, self.reader.file()));
        if !truncated {
            return false;
        }
        tracing::warn!(path = %self.path, size, offset, "file was truncated; reading it again from the start");
        let tracker = positions.truncated(self.id, self.reader.line_end());
        if let Err(e) = self.restart_at(0, tracker) {
            tracing::warn!(path = %self.path, error = %e, "cannot seek in truncated file");
        }
        self.content = Content::unsettled();
        true
    }

    /// Settles new content (the file is `size` bytes now); `true` when it may be read.
    pub(super) fn settle(&mut self, positions: &Positions, size: u64) -> bool {
        let Content::Unsettled { since, size: seen } = self.content else {
            return true;
        };
        let now = Instant::now();
        let same_size = matches!(seen, Some((s, _)) if s == size);
        if !same_size {
            self.content = Content::Unsettled {
                since,
                size: Some((size, now)),
            };
        }
        if size < FINGERPRINT_BYTES && since.elapsed() < SHORT_WAIT {
            return false;
        }
        let fp = Fingerprint::read(self.reader.file()).unwrap_or_default();
        let start = match positions.copy_source(self.id, &fp) {
            None => 0,
            Some(CopySource::Truncated) => match positions.adopt(self.id, fp) {
                Some((read_end, tracker)) => {
                    let start = read_end.min(size);
                    tracing::info!(path = %self.path, offset = start, "file is a copy of a truncated file; continuing where that was read");
                    return self.start(start, tracker);
                }
                None => 0,
            },
            Some(CopySource::Open(_)) => {
                // copytruncate truncates the original as soon as the copy is complete: then it is
                // the case above. An original not truncated by then means this is no such copy (a
                // new file that happens to start the same, or a copy made by hand): read in full.
                let unchanged_for = match seen {
                    Some((s, at)) if s == size => now.duration_since(at),
                    _ => Duration::ZERO,
                };
                if unchanged_for < TRUNCATE_WAIT {
                    return false;
                }
                tracing::info!(path = %self.path, "file starts like a file being read, which was not truncated: reading it in full");
                0
            }
        };
        let tracker = positions.start_at(self.id, start, fp);
        self.start(start, tracker)
    }

    /// Reads from `offset` on, its lines tracked by `tracker`.
    fn start(&mut self, offset: u64, tracker: Arc<AckTracker>) -> bool {
        if let Err(e) = self.restart_at(offset, tracker) {
            tracing::warn!(path = %self.path, error = %e, "cannot seek in file");
            return false;
        }
        self.content = Content::Reading;
        true
    }
}
