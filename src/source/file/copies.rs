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
//!   truncated (the case above); when that does not happen within [`TRUNCATE_WAIT`] of the
//!   copy's last growth, it is no copytruncate copy (a new file that happens to start like
//!   another — two short files with the same line —, or a copy made by hand) and is read in full;
//! - a file read earlier and closed, or the file's own earlier content, is never taken for the
//!   original: when in doubt a file is read in full (duplicates, never a hole);
//! - nothing matches: it is read from the start.
//!
//! A fingerprint needs [`FINGERPRINT_BYTES`]; a new file shorter than that is read from the start
//! once it has not reached that size for [`SHORT_WAIT`].

use super::identity::{Fingerprint, FINGERPRINT_BYTES};
use super::positions::CopySource;
use super::tailer::ReadState;
use super::FileSource;
use crate::entry::ack::AckTracker;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a short new file waits for a full fingerprint before it is read anyway.
pub const SHORT_WAIT: Duration = Duration::from_millis(500);

/// How long a file that starts like a file being read waits, once it stopped growing, for that
/// file to be truncated (copytruncate does it right after the copy) before it is read in full.
pub const TRUNCATE_WAIT: Duration = Duration::from_secs(3);

impl FileSource {
    /// Settles tailer `i`'s new content (the file is `size` bytes now); `true` when it may be read.
    pub(super) fn settle(&mut self, i: usize, size: u64) -> bool {
        let t = &mut self.tailers[i];
        let ReadState::Unsettled { since, size: seen } = t.state else {
            return true;
        };
        let now = Instant::now();
        let same_size = matches!(seen, Some((s, _)) if s == size);
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
                tracing::info!(%path, "file starts like a file being read, which was not truncated: reading it in full");
                0
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
