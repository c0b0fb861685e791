//! Following rotation: each open file's path is checked; a file whose path now holds another file
//! (or nothing) is read to its end and closed, the oldest given up beyond the open-rotated limit.

use super::identity::FileId;
use super::{FileSource, ReadState};
use crate::metrics::{metrics, PathLabels};
use std::time::Instant;

impl FileSource {
    /// Checks each open file for rotation and deletion, and publishes its size and lag. The caller
    /// looks at the globs right after, for the new file at a rotated path.
    pub(super) fn check_rotations(&mut self) {
        let poll = self.config.poll_period;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &mut self.tailers[i];
            let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
            let m = metrics();
            let pl = PathLabels {
                path: t.path.clone(),
            };
            m.file_bytes.get_or_create(&pl).set(size as i64);
            let lag = size.saturating_sub(t.tracker.committed());
            m.file_lag_bytes.get_or_create(&pl).set(lag as i64);
            t.published_lag = Some(lag);
            if t.short_fingerprint && t.state == ReadState::Reading {
                t.short_fingerprint = !self.positions.refresh_fingerprint(t.id, t.file(), size);
            }
            let moved = match std::fs::metadata(&t.path) {
                Ok(m) => FileId::of(&m) != t.id,
                Err(_) => true,
            };
            if moved && t.rotated_since.is_none() {
                tracing::info!(path = %t.path, "file was rotated or deleted; reading the old file to its end");
                t.rotated_since = Some(Instant::now());
                // Open the new file at the path now, while the old one is still being finished.
            }
            // The old file is done once it was at its end for a whole poll period after the rotation,
            // so that a writer that had it open a moment longer is not cut off.
            if t.compressed() {
                // Read once: closed for good when read to its end and acknowledged.
                if t.at_eof && t.unsent.is_none() && t.tracker.in_flight() == 0 {
                    let (id, end) = (t.id, t.line_end());
                    self.close(i, "finished compressed file");
                    self.positions.close_complete(id, end);
                    continue;
                }
                i += 1;
                continue;
            }
            let done = t.rotated_since.is_some_and(|since| since.elapsed() >= poll)
                && size <= t.offset()
                && t.unsent.is_none();
            if done {
                self.close(i, "finished rotated file");
                continue;
            }
            i += 1;
        }
        self.limit_rotated();
        metrics().files_active.set(self.tailers.len() as i64);
    }

    /// Gives up the oldest rotated files beyond `max_open_rotated` (each keeps a deleted file's
    /// disk space and a descriptor). Their unread rest is lost: warned and counted.
    fn limit_rotated(&mut self) {
        loop {
            let rotated = self.tailers.iter().filter(|t| t.rotated_since.is_some());
            if rotated.clone().count() <= self.config.max_open_rotated {
                return;
            }
            let Some((i, _)) = self
                .tailers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.rotated_since.map(|since| (i, since)))
                .min_by_key(|(_, since)| *since)
            else {
                return;
            };
            let t = &self.tailers[i];
            let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
            let unread = size.saturating_sub(t.line_end());
            tracing::warn!(path = %t.path, unread_bytes = unread, limit = self.config.max_open_rotated,
                "too many rotated files still being read (limits_config.max_open_rotated_files): giving up the oldest");
            metrics().rotated_files_abandoned.inc();
            metrics().rotated_bytes_abandoned.inc_by(unread);
            self.close(i, "gave up rotated file");
        }
    }

    /// Closes tailer `i`; its position stays known.
    pub(super) fn close(&mut self, i: usize, why: &'static str) {
        let t = self.tailers.swap_remove(i);
        self.path_index = None;
        tracing::info!(path = %t.path, offset = t.offset(), "{why}");
        self.positions.close(t.id, t.line_end());
        let m = metrics();
        let pl = PathLabels { path: t.path };
        // The file at the path (if any) gets its own values at the next look.
        m.file_bytes.remove(&pl);
        m.file_lag_bytes.remove(&pl);
    }
}
