//! What the status page (`/targets`) shows beyond the metrics: each file the file source follows
//! with its state, and each receiver listening. Sources publish here and the HTTP server reads,
//! so neither knows the other; it lives beside the metrics because every layer may reach it.

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// One followed file, as the file source last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub path: String,
    /// The target's labels, `{job="audit", ...}`.
    pub labels: String,
    /// What the file source is doing with it: `following`, `reading`, `settling`, `rotated`, …
    pub state: &'static str,
    /// The file's size when last looked at.
    pub size: u64,
    /// Offset of the next byte to read.
    pub read: u64,
    /// Offset up to which every client has the lines (delivered, or on its disk queue).
    pub acknowledged: u64,
}

impl FileStatus {
    /// Bytes written and not yet acknowledged.
    pub fn lag(&self) -> u64 {
        self.size.saturating_sub(self.acknowledged)
    }
}

/// A receiver listening for entries (`syslog`, `loki_push_api`), or a journal being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverStatus {
    pub job: String,
    /// `syslog/tcp`, `syslog/udp`, `loki_push_api`, `journal`
    pub kind: String,
    pub address: String,
}

/// The published state; see [`board`].
#[derive(Default)]
pub struct Board {
    files: Mutex<(Option<SystemTime>, Vec<FileStatus>)>,
    receivers: Mutex<Vec<ReceiverStatus>>,
}

impl Board {
    /// Replaces the file list (the file source publishes all of it at once).
    pub fn set_files(&self, files: Vec<FileStatus>) {
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = (Some(SystemTime::now()), files);
    }

    /// The files, sorted by path, and when they were published (`None`: no file source ran).
    pub fn files(&self) -> (Option<SystemTime>, Vec<FileStatus>) {
        let (at, mut files) = self.files.lock().unwrap_or_else(|e| e.into_inner()).clone();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        (at, files)
    }

    pub fn add_receiver(&self, receiver: ReceiverStatus) {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(receiver);
    }

    /// Forgets the receivers and files: a run begins (the first, or after a reload) and lists its own.
    /// Forgets job `job`'s receivers (a reload stopped them).
    pub fn remove_receivers(&self, job: &str) {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.job != job);
    }

    pub fn clear(&self) {
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = (None, Vec::new());
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn receivers(&self) -> Vec<ReceiverStatus> {
        self.receivers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The process's one board.
pub fn board() -> &'static Board {
    static BOARD: OnceLock<Board> = OnceLock::new();
    BOARD.get_or_init(Board::default)
}
