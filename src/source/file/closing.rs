//! When files are closed: each tailer's look at its path ([`super::tailer::Look`]) says whether
//! it is finished; beyond `limits_config.max_open_rotated_files` the oldest moved files are given
//! up; and a file no target matches any more is closed once what was read of it is delivered.

use super::tailer::Look;
use super::{Closed, FileSource, Progress};
use crate::metrics::{metrics, PathLabels};

impl FileSource {
    /// Looks at each open file (rotation, deletion, end of a compressed file), publishes its size
    /// and lag, and closes the finished ones. The caller looks at the globs right after, for the
    /// new file at a rotated path.
    pub(super) fn check_rotations(&mut self) {
        let poll = self.config.poll_period;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &mut self.tailers[i];
            match t.look(&self.positions, poll) {
                Look::Open { size } => {
                    let pl = PathLabels {
                        path: t.path().to_string(),
                    };
                    let lag = t.lag_at(size);
                    let m = metrics();
                    m.file_bytes.get_or_create(&pl).set(size as i64);
                    m.file_lag_bytes.get_or_create(&pl).set(lag as i64);
                    i += 1;
                }
                Look::Finished if self.tailers[i].has_partial() => {
                    // No writer will end its last line: it goes out as it is, then the file
                    // is closed (at the next look, if the queues had no room for it yet).
                    tracing::info!(path = %self.tailers[i].path(), "rotated file ends without a newline: shipping its last line as it is");
                    match self.ship_last_line(i) {
                        Ok(Progress::Blocked) | Err(Closed) => i += 1,
                        Ok(_) => self.close(i, "finished rotated file", false),
                    }
                }
                Look::Finished => self.close(i, "finished rotated file", false),
                Look::Complete => self.close(i, "finished compressed file", true),
            }
        }
        self.limit_rotated();
        metrics().files_active.set(self.tailers.len() as i64);
    }

    /// Gives up the oldest rotated files beyond `max_open_rotated` (each keeps a deleted file's
    /// disk space and a descriptor). Their unread rest is lost: warned and counted.
    fn limit_rotated(&mut self) {
        loop {
            let moved = self.tailers.iter().filter(|t| t.moved_since().is_some());
            if moved.count() <= self.config.max_open_rotated {
                return;
            }
            let Some((i, _)) = self
                .tailers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.moved_since().map(|since| (i, since)))
                .min_by_key(|(_, since)| *since)
            else {
                return;
            };
            let t = &self.tailers[i];
            let unread = t.unread_bytes();
            tracing::warn!(path = %t.path(), unread_bytes = unread, limit = self.config.max_open_rotated,
                "too many rotated files still being read (limits_config.max_open_rotated_files): giving up the oldest");
            metrics().rotated_files_abandoned.inc();
            metrics().rotated_bytes_abandoned.inc_by(unread);
            self.close(i, "gave up rotated file", false);
        }
    }

    /// Stops reading files that no target matches any more (after a discovery refresh or a
    /// reload), each closed once what was read of it is delivered; `self.retiring` while some
    /// still wait. A file still matched takes its target's labels, changed or not.
    pub(super) fn retire_unmatched(&mut self) {
        self.retiring = false;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &self.tailers[i];
            let path = std::path::Path::new(t.path());
            let matching = self
                .config
                .targets
                .iter()
                .find(|target| target.scrape == t.scrape() && target.glob.is_match(path));
            let wanted = matching.is_some();
            if let Some(target) = matching {
                // A discovered target whose labels changed (a pod relabelled): its open files
                // take the new labels from the next line on.
                let labels = super::open::labels_of(target, t.path());
                let scrape = t.scrape();
                self.tailers[i].reassign(scrape, Some(labels));
            }
            let t = &self.tailers[i];
            if !wanted {
                if t.drained() {
                    self.close(i, "no target matches the file any more", false);
                    continue;
                }
                self.retiring = true;
            }
            // A file no target wants is not read further (a busy one would never drain): its
            // unread rest stays where the position says, for a target that matches it later.
            self.tailers[i].set_retired(!wanted);
            i += 1;
        }
    }

    /// Closes tailer `i`; its position stays known (with `complete`, as a compressed file read to
    /// its end).
    pub(super) fn close(&mut self, i: usize, why: &'static str, complete: bool) {
        let t = self.tailers.swap_remove(i);
        self.path_index = None;
        tracing::info!(path = %t.path(), offset = t.offset(), "{why}");
        let pl = PathLabels {
            path: t.path().to_string(),
        };
        t.close(&self.positions, complete);
        let m = metrics();
        // The file at the path (if any) gets its own values at the next look.
        m.file_bytes.remove(&pl);
        m.file_lag_bytes.remove(&pl);
    }
}
