//! Settling new content before it is read: is it a copy of content already read?
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
//!   truncated (the case above) or has been read past the copy's size, which it then skips, after
//!   checking that the bytes before its end are the original's (a file that merely starts like
//!   another, say with the same header, is read in full);
//! - a file read earlier and closed, or the file's own earlier content, is never taken for the
//!   original: when in doubt a file is read in full (duplicates, never a hole);
//! - nothing matches: it is read from the start.
//!
//! A fingerprint needs [`FINGERPRINT_BYTES`]; a new file shorter than that is read from the start
//! once it has not reached that size for [`SHORT_WAIT`].

use super::identity::{same_bytes_before, Fingerprint, FINGERPRINT_BYTES};
use super::positions::CopySource;
use super::tailer::ReadState;
use super::FileSource;
use crate::entry::ack::AckTracker;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a short new file waits for a full fingerprint before it is read anyway.
pub const SHORT_WAIT: Duration = Duration::from_millis(500);

/// How long a copy's size must stay the same before it is taken as complete.
const COPY_SETTLE: Duration = Duration::from_millis(50);

impl FileSource {
    /// Settles tailer `i`'s new content (the file is `size` bytes now); `true` when it may be read.
    pub(super) fn settle(&mut self, i: usize, size: u64) -> bool {
        let t = &mut self.tailers[i];
        let ReadState::Unsettled { since, size: seen } = t.state else {
            return true;
        };
        let now = Instant::now();
        let same_size = matches!(seen, Some((s, _)) if s == size);
        let stable =
            matches!(seen, Some((s, at)) if s == size && now.duration_since(at) >= COPY_SETTLE);
        if !same_size {
            t.state = ReadState::Unsettled {
                since,
                size: Some((size, now)),
            };
        }
        if size < FINGERPRINT_BYTES && since.elapsed() < SHORT_WAIT {
            return false;
        }
        let fp = Fingerprint::read(t.file()).unwrap_or_default();
        let (id, path) = (t.id, t.path.clone());
        let start = match self.positions.copy_source(id, &fp) {
            None => 0,
            Some(CopySource::Truncated) => match self.positions.adopt(id, fp) {
                Some((read_end, tracker)) => {
                    let start = read_end.min(size);
                    tracing::info!(%path, offset = start, "file is a copy of a truncated file; continuing where that was read");
                    return self.start(i, start, tracker);
                }
                None => 0,
            },
            Some(CopySource::Open(original)) => {
                let Some(o) = self.tailers.iter().find(|o| o.id == original) else {
                    return false;
                };
                if o.line_end() < size || !stable {
                    // The original is behind (or the copy still being written): wait for the
                    // original to be read past the copy's end or to be truncated.
                    return false;
                }
                if same_bytes_before(o.file(), self.tailers[i].file(), size) {
                    tracing::info!(%path, original = %o.path, "file is a copy of a file being read; reading only what is appended to it");
                    size
                } else {
                    0
                }
            }
        };
        let tracker = self.positions.start_at(id, start, fp);
        self.start(i, start, tracker)
    }

    /// Tailer `i` reads from `offset` on, its lines tracked by `tracker`.
    fn start(&mut self, i: usize, offset: u64, tracker: Arc<AckTracker>) -> bool {
        let t = &mut self.tailers[i];
        if let Err(e) = t.restart_at(offset, tracker) {
            tracing::warn!(path = %t.path, error = %e, "cannot seek in file");
            return false;
        }
        t.state = ReadState::Reading;
        t.short_fingerprint = true;
        true
    }
}
