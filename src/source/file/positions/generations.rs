//! The earlier contents of truncated files (copytruncate), kept so that the copy made of them
//! continues where reading stopped instead of being read again or losing its unread end.

use super::{Positions, Tracked};
use crate::entry::ack::AckTracker;
use crate::source::file::identity::{FileId, Fingerprint};
use std::sync::Arc;
use std::time::Instant;

/// The content a file had before it was truncated (copytruncate) or replaced in place. A copy of
/// it that shows up (`audit.log.1`) continues where reading of the original stopped, with the
/// original's tracker, so that its lines are neither read twice nor lost in a crash.
pub(super) struct Generation {
    /// The file that held it: its own new content is never taken for a copy of it (a program
    /// that rewrites its log from scratch with the same header).
    from: FileId,
    path: String,
    fingerprint: Fingerprint,
    tracker: Arc<AckTracker>,
    read_end: u64,
    at: Instant,
}

/// A known file whose content a new file starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopySource {
    /// The earlier content of a truncated file: continue with [`Positions::adopt`].
    Truncated,
    /// A file being read now (not truncated yet, or not noticed yet).
    Open(FileId),
}

impl Positions {
    /// The file was truncated after reading up to `read_end`: its old content becomes a
    /// [`Generation`] and the file starts over at 0 with a new tracker.
    pub fn truncated(&self, id: FileId, read_end: u64) -> Arc<AckTracker> {
        let tracker = self.tracker_at(0);
        let mut inner = self.lock();
        if let Some(t) = inner.files.get_mut(&id) {
            let old = Generation {
                from: id,
                path: t.path.clone(),
                fingerprint: std::mem::take(&mut t.fingerprint),
                tracker: std::mem::replace(&mut t.tracker, tracker.clone()),
                read_end,
                at: Instant::now(),
            };
            t.read_end = 0;
            inner.generations.push(old);
        }
        tracker
    }

    /// The known file that a fresh file with fingerprint `fp` is a copy of, if any.
    pub fn copy_source(&self, id: FileId, fp: &Fingerprint) -> Option<CopySource> {
        if fp.len == 0 {
            return None;
        }
        let inner = self.lock();
        if inner
            .generations
            .iter()
            .any(|g| g.fingerprint == *fp && g.from != id)
        {
            return Some(CopySource::Truncated);
        }
        // A file being read now. A closed file is not taken as the original: it cannot be
        // compared any more, and a new file that merely starts like it would lose its beginning.
        inner
            .files
            .iter()
            .find(|(other, t)| **other != id && t.closed_at.is_none() && t.fingerprint == *fp)
            .map(|(other, _)| CopySource::Open(*other))
    }

    /// File `id` is a copy of a truncated file's earlier content (fingerprint `fp`): it takes over
    /// that content's tracker and continues where its reading stopped. `None` if there is no such
    /// content.
    pub fn adopt(&self, id: FileId, fp: Fingerprint) -> Option<(u64, Arc<AckTracker>)> {
        let mut inner = self.lock();
        let i = inner
            .generations
            .iter()
            .rposition(|g| g.fingerprint == fp)?;
        let g = inner.generations.remove(i);
        let t = inner.files.get_mut(&id)?;
        t.fingerprint = fp;
        t.tracker = g.tracker.clone();
        t.read_end = g.read_end;
        Some((g.read_end, g.tracker))
    }
}

impl Generation {
    /// Recent enough for a copy to show up still, or with lines of it in flight.
    pub(super) fn worth_keeping(&self, for_how_long: std::time::Duration) -> bool {
        self.at.elapsed() < for_how_long || self.tracker.in_flight() > 0
    }

    /// How it is written to disk.
    pub(super) fn record(&self) -> super::GenerationRecord {
        super::GenerationRecord {
            path: self.path.clone(),
            dev: self.from.dev,
            inode: self.from.inode,
            offset: self.tracker.committed(),
            fingerprint_len: self.fingerprint.len,
            fingerprint: super::format::hex(&self.fingerprint),
        }
    }

    /// A file's content that ends now: after `read_end` bytes were read of it.
    pub(super) fn of(from: FileId, t: Tracked, read_end: u64) -> Self {
        Self {
            from,
            path: t.path,
            fingerprint: t.fingerprint,
            tracker: t.tracker,
            read_end,
            at: Instant::now(),
        }
    }
}
