//! The positions: how far each file has been delivered to Loki — the ledger, kept in memory and
//! written to disk by [`saver`].
//!
//! Offsets are the acknowledged ones ([`AckTracker`]), never merely read ones, so a crash re-sends
//! at most what was in flight. Files are known by identity (device, inode, fingerprint): a rotated
//! file found under a new name resumes where it was, and a new file that reuses an old inode starts
//! at 0. A Promtail positions file (paths only) is honoured for files whose size is at least the
//! recorded offset, so migrating from Promtail re-sends nothing; [`format`] keeps the file Promtail
//! reads back. The earlier contents of truncated files are [`generations`].

mod format;
pub use format::{CURSOR_PREFIX, DOCKER_CURSOR_PREFIX};
mod generations;
mod salvage;
pub mod saver;

pub use generations::CopySource;
pub use saver::spawn_saver;

use super::identity::{FileId, Fingerprint};
use crate::entry::ack::AckTracker;
use crate::source::cursor::CursorLedger;
use format::{Damage, FileRecord, GenerationRecord, OnDisk};
use generations::Generation;
use salvage::Texts;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("positions file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("positions file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

struct Tracked {
    path: String,
    fingerprint: Fingerprint,
    /// Its committed offset is the file's position; acknowledgements may still arrive after the
    /// tailer closed the file.
    tracker: Arc<AckTracker>,
    /// When the tailer closed the file; `None` while it is open.
    closed_at: Option<Instant>,
    /// Where reading stopped when the file was closed; reopening it in the same run continues there
    /// (lines up to it are read, though maybe not yet acknowledged).
    read_end: u64,
    /// A compressed file, read and acknowledged to its end.
    complete: bool,
}

impl Tracked {
    fn offset(&self) -> u64 {
        self.tracker.committed()
    }
}

/// What a file opened by [`Positions::open`] resumes from.
pub struct Opened {
    /// Where to read.
    pub start: u64,
    pub tracker: Arc<AckTracker>,
    /// Nothing of the file was read before: it may be a copy of a known file
    /// ([`Positions::copy_source`]) and should not be read before that is settled.
    pub fresh: bool,
}

/// Positions of all files, shared by the file source and the saver.
pub struct Positions {
    path: PathBuf,
    /// Set by the trackers when a committed offset moved: the saver writes soon, not only every
    /// `sync_period`, so that a crash re-sends as little as possible.
    changed: Arc<AtomicBool>,
    /// Acknowledgements each line needs: the number of clients.
    acks_required: u32,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    files: HashMap<FileId, Tracked>,
    /// Promtail-style path → offset entries with no identity (a migrated Promtail file).
    legacy: HashMap<String, u64>,
    generations: Vec<Generation>,
    /// Cursor-keyed sources (the journal), by Promtail's key (`journal-<job>`).
    cursors: HashMap<String, Cursor>,
}

/// A cursor entry: as read from disk until its source opens its ledger.
enum Cursor {
    Stored(String),
    Live(Arc<CursorLedger>),
}

impl Positions {
    /// Positions kept nowhere: a `-stdin` run, whose lines have none, must not read or write the
    /// positions file of a lokiship running on the same node.
    pub fn none(acks_required: u32) -> Self {
        Self {
            path: PathBuf::new(),
            changed: Arc::new(AtomicBool::new(false)),
            acks_required,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Reads the positions file at `path` (and the identity file beside it); none is an empty
    /// start.
    pub fn load(
        path: &Path,
        ignore_invalid: bool,
        acks_required: u32,
    ) -> Result<Self, PositionsError> {
        let changed = Arc::new(AtomicBool::new(false));
        let shown = path.display().to_string();
        let io_error = |source| PositionsError::Io {
            path: shown.clone(),
            source,
        };
        let texts = Texts::read(path).map_err(io_error)?;
        let on_disk = match texts.parse() {
            Ok(on_disk) => on_disk,
            Err(damage @ Damage::Newer(_)) => {
                return Err(PositionsError::Invalid {
                    path: shown,
                    message: damage.to_string(),
                })
            }
            Err(damage) => recover(path, &texts, &damage, ignore_invalid).map_err(|message| {
                PositionsError::Invalid {
                    path: shown.clone(),
                    message,
                }
            })?,
        };
        let positions = Self {
            path: path.to_path_buf(),
            changed,
            acks_required,
            inner: Mutex::new(Inner::default()),
        };
        *positions.lock() = positions.ledger_from(on_disk);
        Ok(positions)
    }

    /// The ledger of what was on disk: every file closed until a tailer opens it again.
    fn ledger_from(&self, on_disk: OnDisk) -> Inner {
        let mut inner = Inner::default();
        for r in on_disk.files {
            let id = r.id();
            let tracked = Tracked {
                fingerprint: format::fingerprint(r.fingerprint_len, &r.fingerprint),
                path: r.path,
                tracker: self.tracker_at(r.offset),
                closed_at: Some(Instant::now()),
                read_end: r.offset,
                complete: r.complete,
            };
            inner.files.insert(id, tracked);
        }
        for g in on_disk.truncated {
            let from = g.id();
            let content = Tracked {
                fingerprint: format::fingerprint(g.fingerprint_len, &g.fingerprint),
                path: g.path,
                tracker: self.tracker_at(g.offset),
                closed_at: None,
                read_end: g.offset,
                complete: false,
            };
            inner
                .generations
                .push(Generation::of(from, content, g.offset));
        }
        inner.cursors = on_disk
            .cursors
            .into_iter()
            .map(|(key, cursor)| (key, Cursor::Stored(cursor)))
            .collect();
        // Promtail's paths count only where no identities were recorded (a migrated node).
        if inner.files.is_empty() {
            inner.legacy = on_disk.positions.into_iter().collect();
        }
        inner
    }

    /// A tailer opens `file`, known as `id` at `path`: where to start reading, and the tracker whose
    /// committed offset is the file's position from now on.
    pub fn open(&self, id: FileId, path: &str, file: &File, size: u64) -> Opened {
        let mut inner = self.lock();
        if let Some(t) = inner.files.get_mut(&id) {
            let start = t.read_end.max(t.offset());
            if t.fingerprint.matches(file) && start <= size {
                t.closed_at = None;
                t.path = path.to_string();
                return Opened {
                    start,
                    tracker: t.tracker.clone(),
                    fresh: start == 0,
                };
            }
            tracing::info!(
                path,
                "the file has new content (truncated while not read, or a new file that reuses the inode): reading it from the start"
            );
            if let Some(old) = inner.files.remove(&id) {
                inner.generations.push(Generation::of(id, old, start));
            }
        }
        let start = match inner.legacy.remove(path) {
            Some(offset) if offset <= size => offset,
            _ => 0,
        };
        let fingerprint = Fingerprint::read(file).unwrap_or_default();
        let tracker = self.tracker_at(start);
        inner.files.insert(
            id,
            Tracked {
                path: path.to_string(),
                fingerprint,
                tracker: tracker.clone(),
                closed_at: None,
                read_end: start,
                complete: false,
            },
        );
        Opened {
            start,
            tracker,
            fresh: start == 0,
        }
    }

    /// Does the file no longer start with the bytes it started with (truncated and written again)?
    pub fn content_changed(&self, id: FileId, file: &File) -> bool {
        let inner = self.lock();
        inner
            .files
            .get(&id)
            .is_some_and(|t| t.fingerprint.len > 0 && !t.fingerprint.matches(file))
    }

    /// File `id` (fingerprint `fp`) is to be read from `offset`: a copy of content read elsewhere
    /// up to there, or (`offset` 0) a new file.
    pub fn start_at(&self, id: FileId, offset: u64, fp: Fingerprint) -> Arc<AckTracker> {
        let tracker = self.tracker_at(offset);
        if let Some(t) = self.lock().files.get_mut(&id) {
            t.fingerprint = fp;
            t.tracker = tracker.clone();
            t.read_end = offset;
        }
        self.changed.store(true, Ordering::Relaxed);
        tracker
    }

    /// Takes a longer fingerprint of a file that was short when first seen, once it has grown past
    /// what the fingerprint covers (`size` is its size now; no read otherwise). `true` once the
    /// fingerprint covers [`FINGERPRINT_BYTES`](super::identity::FINGERPRINT_BYTES).
    pub fn refresh_fingerprint(&self, id: FileId, file: &File, size: u64) -> bool {
        let mut inner = self.lock();
        let Some(t) = inner.files.get_mut(&id) else {
            return true;
        };
        if size > t.fingerprint.len && t.fingerprint.len < super::identity::FINGERPRINT_BYTES {
            if let Ok(fp) = Fingerprint::read(file) {
                if fp.len > t.fingerprint.len {
                    t.fingerprint = fp;
                }
            }
        }
        t.fingerprint.len >= super::identity::FINGERPRINT_BYTES
    }

    /// The tailer closed the file after reading up to `read_end`; its position is kept until the
    /// file is gone.
    pub fn close(&self, id: FileId, read_end: u64) {
        if let Some(t) = self.lock().files.get_mut(&id) {
            t.closed_at = Some(Instant::now());
            t.read_end = read_end;
        }
    }

    /// A compressed file was read to its end and every line of it acknowledged.
    pub fn close_complete(&self, id: FileId, read_end: u64) {
        if let Some(t) = self.lock().files.get_mut(&id) {
            t.closed_at = Some(Instant::now());
            t.read_end = read_end;
            t.complete = true;
        }
        self.changed.store(true, Ordering::Relaxed);
    }

    /// Whether `file` (known as `id`) is a compressed file already read completely.
    pub fn is_complete(&self, id: FileId, file: &File) -> bool {
        self.lock()
            .files
            .get(&id)
            .is_some_and(|t| t.complete && t.fingerprint.matches(file))
    }

    /// The ledger of the cursor-keyed source `key` (`journal-<job>`, as Promtail names it),
    /// starting at the cursor the positions file holds for it. Its entries need every client's
    /// acknowledgement, and the saver writes soon after one moves it.
    pub fn cursor_ledger(&self, key: &str) -> Arc<CursorLedger> {
        let mut inner = self.lock();
        let stored = match inner.cursors.get(key) {
            Some(Cursor::Live(ledger)) => return ledger.clone(),
            Some(Cursor::Stored(c)) => Some(c.clone()),
            None => None,
        };
        let ledger = Arc::new(CursorLedger::new(stored, self.tracker_at(0)));
        inner
            .cursors
            .insert(key.to_string(), Cursor::Live(ledger.clone()));
        ledger
    }

    /// A new ledger for `key`, starting at the cursor the one in use has committed, for a
    /// reader that replaces the one before (a reload changed its job). Acknowledgements still
    /// due to the old ledger go nowhere: what they stand for is read again, after the cursor.
    pub fn renew_cursor_ledger(&self, key: &str) -> Arc<CursorLedger> {
        let committed = match self.lock().cursors.remove(key) {
            Some(Cursor::Live(ledger)) => ledger.committed(),
            Some(Cursor::Stored(c)) => Some(c),
            None => None,
        };
        let ledger = Arc::new(CursorLedger::new(committed, self.tracker_at(0)));
        self.lock()
            .cursors
            .insert(key.to_string(), Cursor::Live(ledger.clone()));
        ledger
    }

    /// Writes both files atomically, the identity file first (a crash between the two leaves
    /// the newer identities, which are acknowledged offsets too). Files are looked at on disk
    /// outside the lock, so the file source never waits on the saver's `stat`s.
    ///
    /// A closed file whose path no longer holds it is forgotten after [`FORGET_AFTER`]: until
    /// then a rotated file that shows up under a new name matched by the glob still resumes
    /// where it was, instead of being read again from the start.
    pub fn save(&self) -> std::io::Result<()> {
        let (mut on_disk, closed) = self.snapshot();
        // What each recorded path holds now, looked at once per path, outside the lock.
        let mut at_path: HashMap<String, Option<FileId>> = HashMap::new();
        for r in &on_disk.files {
            at_path
                .entry(r.path.clone())
                .or_insert_with(|| std::fs::metadata(&r.path).ok().map(|m| FileId::of(&m)));
        }
        let holds = |path: &str, id: FileId| at_path.get(path).copied().flatten() == Some(id);
        let gone: Vec<FileId> = closed
            .into_iter()
            .filter(|(id, path)| !holds(path, *id))
            .map(|(id, _)| id)
            .collect();
        on_disk.files.retain(|r| !gone.contains(&r.id()));
        for r in &on_disk.files {
            // Promtail's map has one offset per path: the file that is at that path now (or
            // the last one there, when the path holds nothing).
            let now = at_path.get(&r.path).copied().flatten();
            if now.is_none_or(|now| now == r.id()) {
                on_disk.positions.insert(r.path.clone(), r.offset);
            }
        }
        self.forget(&gone);
        let (main, identities) = format::render(&on_disk).map_err(std::io::Error::other)?;
        // The previous pair is read back as a pair: `<name>.prev` and `<name>.prev.lokiship`.
        let prev = format::previous_copy(&self.path);
        write_keeping_previous(
            &format::identity_path(&self.path),
            &format::identity_path(&prev),
            &identities,
        )?;
        write_keeping_previous(&self.path, &prev, &main)
    }

    /// What the ledger holds, and the closed files that may be forgotten if their path no longer
    /// holds them (so long closed, and nothing of them in flight).
    fn snapshot(&self) -> (OnDisk, Vec<(FileId, String)>) {
        let mut inner = self.lock();
        inner.generations.retain(|g| g.worth_keeping(FORGET_AFTER));
        let mut on_disk = OnDisk {
            positions: inner.legacy.iter().map(|(p, o)| (p.clone(), *o)).collect(),
            ..OnDisk::default()
        };
        let mut closed = Vec::new();
        for (id, t) in &inner.files {
            if t.closed_at.is_some_and(|at| at.elapsed() >= FORGET_AFTER)
                && t.tracker.in_flight() == 0
            {
                closed.push((*id, t.path.clone()));
            }
            on_disk.files.push(FileRecord {
                path: t.path.clone(),
                dev: id.dev,
                inode: id.inode,
                offset: t.offset(),
                fingerprint_len: t.fingerprint.len,
                fingerprint: format::hex(&t.fingerprint),
                complete: t.complete,
            });
        }
        on_disk
            .files
            .sort_by(|a, b| (&a.path, a.inode).cmp(&(&b.path, b.inode)));
        on_disk.truncated = inner.generations.iter().map(Generation::record).collect();
        for (key, cursor) in &inner.cursors {
            let value = match cursor {
                Cursor::Stored(c) => Some(c.clone()),
                Cursor::Live(ledger) => ledger.committed(),
            };
            if let Some(value) = value {
                on_disk.cursors.insert(key.clone(), value);
            }
        }
        (on_disk, closed)
    }

    /// Forgets closed files found gone by [`Positions::save`], unless reopened meanwhile.
    fn forget(&self, gone: &[FileId]) {
        if gone.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for id in gone {
            if inner.files.get(id).is_some_and(|t| t.closed_at.is_some()) {
                inner.files.remove(id);
            }
        }
    }

    /// A tracker committed at `start` that needs every client's acknowledgement and marks the
    /// positions as changed when it moves.
    fn tracker_at(&self, start: u64) -> Arc<AckTracker> {
        AckTracker::with_change_flag(start, self.acks_required, Some(self.changed.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What to resume from when the files at `path` are damaged: the previous copy when it is
/// whole, else what [`Texts::salvage`] still reads; the damaged file is set aside either way.
/// `Err` only for an identity file of a newer lokiship.
fn recover(
    path: &Path,
    texts: &Texts,
    damage: &Damage,
    ignore_invalid: bool,
) -> Result<OnDisk, String> {
    let prev = format::previous_copy(path);
    let previous = Texts::read(&prev).ok().filter(|t| t.positions.is_some());
    let shown = path.display().to_string();
    if let Some(Ok(on_disk)) = previous.map(|t| t.parse()) {
        let aside = salvage::set_aside(path, damage);
        tracing::error!(path = %shown, error = %damage, previous = %prev.display(), aside = ?aside,
            "positions file is damaged; resuming from the previous copy (lines since it was written are sent again)");
        return Ok(on_disk);
    }
    let (on_disk, kept) = texts.salvage().map_err(|newer| newer.to_string())?;
    let aside = salvage::set_aside(path, damage);
    if ignore_invalid {
        tracing::warn!(path = %shown, error = %damage, kept, aside = ?aside,
            "positions file is damaged; resuming from the entries that still parse, other files are read from their start (ignore_invalid_yaml)");
    } else {
        tracing::error!(path = %shown, error = %damage, kept, aside = ?aside,
            "positions file is damaged and has no whole previous copy; resuming from the entries that still parse, other files are read from their start (duplicates, not loss)");
    }
    Ok(on_disk)
}

/// Keeps the last good `path` as `prev` (a hard link: no copy, and the file at the path is never
/// missing), then replaces it.
fn write_keeping_previous(path: &Path, prev: &Path, text: &str) -> std::io::Result<()> {
    let _ = std::fs::remove_file(prev);
    let _ = std::fs::hard_link(path, prev);
    crate::durable::write_atomically(path, text.as_bytes())
}

/// How long a closed file that left its path is remembered.
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

#[cfg(test)]
mod tests;
