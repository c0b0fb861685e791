//! A client's disk queue as the sources and the client share it: the queue behind a lock, the
//! notification that wakes the client, and what is known of the disk's health.

use super::Wal;
use crate::entry::Entry;
use std::io;

/// A client's disk queue, shared by the sources (which append) and the client (which reads).
pub struct Spill {
    wal: std::sync::Mutex<Wal>,
    /// Wakes the client when entries were appended.
    pub notify: tokio::sync::Notify,
    /// When a write last failed: the disk queue is not written again for [`DISK_RETRY`], and
    /// the entries stay in memory within its bound (the sources pause when it is full).
    failed_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long a disk queue that failed a write is left alone (and its error logged at most once).
pub const DISK_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

impl Spill {
    pub fn new(wal: Wal) -> Self {
        Self {
            wal: std::sync::Mutex::new(wal),
            notify: tokio::sync::Notify::new(),
            failed_at: std::sync::Mutex::new(None),
        }
    }

    /// Whether the disk queue may be written: no write failed in the last [`DISK_RETRY`].
    pub fn writable(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() >= DISK_RETRY)
    }

    /// A write failed (`entries` kept in memory instead): counted every time, logged once per
    /// [`DISK_RETRY`], so a full or broken disk does not flood the log per chunk.
    pub fn write_failed(&self, host: &str, error: &io::Error, entries: usize) {
        crate::metrics::file_error("wal_write");
        let mut at = self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        let log = at.is_none_or(|t| t.elapsed() >= DISK_RETRY);
        *at = Some(std::time::Instant::now());
        if log {
            tracing::error!(host, error = %error, entries,
                "cannot write the disk queue; keeping entries in memory (reading pauses when it is full), trying the disk again in 60 s");
        }
    }

    /// A write succeeded: the disk works again.
    pub fn write_succeeded(&self) {
        *self.failed_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Wal> {
        self.wal.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn read(&self, max_bytes: usize) -> io::Result<Vec<Entry>> {
        self.lock().read(max_bytes)
    }

    pub fn commit(&self) -> io::Result<()> {
        self.lock().commit()
    }
}
