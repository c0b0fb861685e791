//! The positions file: how far each file has been delivered to Loki.
//!
//! Written atomically (temporary file, fsync, rename, fsync of the directory) every
//! `positions.sync_period` and at shutdown. Offsets are the acknowledged ones ([`AckTracker`]), never
//! merely read ones, so a crash re-sends at most what was in flight.
//!
//! Format: Promtail's `positions:` map (path → offset as a string), which Promtail can read back,
//! plus a `files:` list that records each file's identity (device, inode, fingerprint). On start the
//! identity is preferred: a rotated file found under a new name resumes where it was, and a new file
//! that reuses an old inode starts at 0. A Promtail positions file (map only) is honoured for files
//! whose size is at least the recorded offset, so migrating from Promtail re-sends nothing.

use super::identity::{FileId, Fingerprint};
use crate::entry::ack::AckTracker;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error(
        "positions file {path}: {message} (set positions.ignore_invalid_yaml: true to start over)"
    )]
    Invalid { path: String, message: String },
    #[error("positions file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    #[serde(default)]
    positions: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileRecord>,
    /// Earlier contents of truncated files, for the copy that copytruncate made of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    truncated: Vec<GenerationRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GenerationRecord {
    path: String,
    #[serde(default)]
    dev: u64,
    #[serde(default)]
    inode: u64,
    offset: u64,
    fingerprint_len: u64,
    fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileRecord {
    path: String,
    dev: u64,
    inode: u64,
    offset: u64,
    #[serde(default)]
    fingerprint_len: u64,
    #[serde(default)]
    fingerprint: String,
    /// A compressed file read to its end and acknowledged: not opened again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    complete: bool,
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

/// The content a file had before it was truncated (copytruncate) or replaced in place. A copy of
/// it that shows up (`audit.log.1`) continues where reading of the original stopped, with the
/// original's tracker, so that its lines are neither read twice nor lost in a crash.
struct Generation {
    /// The file that held it: its own new content is never taken for a copy of it (a program
    /// that rewrites its log from scratch with the same header).
    from: FileId,
    path: String,
    fingerprint: Fingerprint,
    tracker: Arc<AckTracker>,
    read_end: u64,
    at: Instant,
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

/// A known file whose content a new file starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopySource {
    /// The earlier content of a truncated file: continue with [`Positions::adopt`].
    Truncated,
    /// A file being read now (not truncated yet, or not noticed yet).
    Open(FileId),
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
}

impl Positions {
    /// Reads the positions file at `path`; a missing file is an empty start.
    pub fn load(
        path: &Path,
        ignore_invalid: bool,
        acks_required: u32,
    ) -> Result<Self, PositionsError> {
        let changed = Arc::new(AtomicBool::new(false));
        let shown = path.display().to_string();
        let mut inner = Inner::default();
        match std::fs::read_to_string(path) {
            Ok(text) => match parse(&text, acks_required, &changed) {
                Ok(format) => inner = format,
                Err(message) => {
                    // Written atomically, so this is damage from outside (disk, a hand edit). The
                    // copy kept by the previous write avoids both a crash loop and re-sending
                    // every file from the start.
                    let prev = previous_copy(path);
                    let previous = std::fs::read_to_string(&prev)
                        .map_err(|e| e.to_string())
                        .and_then(|text| parse(&text, acks_required, &changed));
                    match previous {
                        Ok(format) => {
                            tracing::error!(path = %shown, error = %message, previous = %prev.display(),
                                "positions file is invalid; resuming from the previous copy (lines since it was written are sent again)");
                            inner = format;
                        }
                        Err(_) if ignore_invalid => {
                            tracing::warn!(path = %shown, error = %message, "positions file is invalid; starting over (ignore_invalid_yaml)");
                        }
                        Err(_) => {
                            return Err(PositionsError::Invalid {
                                path: shown,
                                message,
                            })
                        }
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PositionsError::Io {
                    path: shown,
                    source,
                })
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            changed,
            acks_required,
            inner: Mutex::new(inner),
        })
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
                inner.generations.push(Generation {
                    from: id,
                    path: old.path,
                    fingerprint: old.fingerprint,
                    tracker: old.tracker,
                    read_end: start,
                    at: Instant::now(),
                });
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

    /// Does the file no longer start with the bytes it started with (truncated and written again)?
    pub fn content_changed(&self, id: FileId, file: &File) -> bool {
        let inner = self.lock();
        inner
            .files
            .get(&id)
            .is_some_and(|t| t.fingerprint.len > 0 && !t.fingerprint.matches(file))
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

    /// Writes the positions file atomically. A closed file whose path no longer holds it is
    /// forgotten after [`FORGET_AFTER`]: until then a rotated file that shows up under a new name
    /// matched by the glob still resumes where it was, instead of being read again from the start.
    pub fn save(&self) -> std::io::Result<()> {
        let format = {
            let mut inner = self.lock();
            inner.files.retain(|id, t| {
                t.closed_at.is_none_or(|at| at.elapsed() < FORGET_AFTER)
                    || t.tracker.in_flight() > 0
                    || std::fs::metadata(&t.path)
                        .map(|m| FileId::of(&m) == *id)
                        .unwrap_or(false)
            });
            inner
                .generations
                .retain(|g| g.at.elapsed() < FORGET_AFTER || g.tracker.in_flight() > 0);
            let mut format = FileFormat::default();
            for (path, offset) in &inner.legacy {
                format.positions.insert(path.clone(), offset.to_string());
            }
            let mut records: Vec<FileRecord> = inner
                .files
                .iter()
                .map(|(id, t)| FileRecord {
                    path: t.path.clone(),
                    dev: id.dev,
                    inode: id.inode,
                    offset: t.offset(),
                    fingerprint_len: t.fingerprint.len,
                    fingerprint: format!("{:016x}", t.fingerprint.hash),
                    complete: t.complete,
                })
                .collect();
            records.sort_by(|a, b| (&a.path, a.inode).cmp(&(&b.path, b.inode)));
            for r in &records {
                // Promtail's map has one offset per path: the file that is at that path now.
                let current = std::fs::metadata(&r.path)
                    .map(|m| m.ino() == r.inode)
                    .unwrap_or(true);
                if current {
                    format
                        .positions
                        .insert(r.path.clone(), r.offset.to_string());
                }
            }
            format.files = records;
            format.truncated = inner
                .generations
                .iter()
                .map(|g| GenerationRecord {
                    path: g.path.clone(),
                    dev: g.from.dev,
                    inode: g.from.inode,
                    offset: g.tracker.committed(),
                    fingerprint_len: g.fingerprint.len,
                    fingerprint: format!("{:016x}", g.fingerprint.hash),
                })
                .collect();
            format
        };
        let text = serde_yaml_ng::to_string(&format).map_err(std::io::Error::other)?;
        // Keep the last good file as `<name>.prev` (a hard link: no copy, and the file at the
        // path is never missing).
        let prev = previous_copy(&self.path);
        let _ = std::fs::remove_file(&prev);
        let _ = std::fs::hard_link(&self.path, &prev);
        crate::durable::write_atomically(&self.path, text.as_bytes())
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

use std::os::unix::fs::MetadataExt;

fn parse(text: &str, acks_required: u32, changed: &Arc<AtomicBool>) -> Result<Inner, String> {
    if text.trim().is_empty() {
        return Ok(Inner::default());
    }
    let format: FileFormat = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let mut inner = Inner::default();
    for r in format.files {
        let hash = u64::from_str_radix(&r.fingerprint, 16).unwrap_or(0);
        inner.files.insert(
            FileId {
                dev: r.dev,
                inode: r.inode,
            },
            Tracked {
                path: r.path,
                fingerprint: Fingerprint {
                    len: r.fingerprint_len,
                    hash,
                },
                tracker: AckTracker::with_change_flag(
                    r.offset,
                    acks_required,
                    Some(changed.clone()),
                ),
                closed_at: Some(Instant::now()),
                read_end: r.offset,
                complete: r.complete,
            },
        );
    }
    for g in format.truncated {
        inner.generations.push(Generation {
            from: FileId {
                dev: g.dev,
                inode: g.inode,
            },
            path: g.path,
            fingerprint: Fingerprint {
                len: g.fingerprint_len,
                hash: u64::from_str_radix(&g.fingerprint, 16).unwrap_or(0),
            },
            tracker: AckTracker::with_change_flag(g.offset, acks_required, Some(changed.clone())),
            read_end: g.offset,
            at: Instant::now(),
        });
    }
    if inner.files.is_empty() {
        for (path, offset) in format.positions {
            let offset = offset
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("offset {offset:?} of {path:?} is not a number"))?;
            inner.legacy.insert(path, offset);
        }
    }
    Ok(inner)
}

/// Where the previous positions file is kept.
fn previous_copy(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".prev");
    path.with_file_name(name)
}

/// How long a closed file that left its path is remembered.
const FORGET_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// How soon after an acknowledgement the positions file is written (at most this often).
const ACK_WRITE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Saves the positions on its own thread until `stop` is set: within [`ACK_WRITE_INTERVAL`] of an
/// acknowledgement that moved a position, and every `period` regardless.
pub fn spawn_saver(
    positions: Arc<Positions>,
    period: std::time::Duration,
    stop: Arc<crate::source::Stop>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("positions".into())
        .spawn(move || {
            let mut last = std::time::Instant::now();
            while !stop.wait(ACK_WRITE_INTERVAL.min(period)) {
                if positions.changed.swap(false, Ordering::Relaxed) || last.elapsed() >= period {
                    last = std::time::Instant::now();
                    if let Err(e) = positions.save() {
                        crate::metrics::metrics().positions_write_errors.inc();
                        tracing::error!(error = %e, "cannot write the positions file");
                    }
                }
            }
        })
        .expect("spawning the positions thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_resumes_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"one\ntwo\n").unwrap();
        let pos_path = dir.path().join("positions.yaml");
        let meta = std::fs::metadata(&log).unwrap();
        let id = FileId::of(&meta);
        let f = File::open(&log).unwrap();

        let p = Positions::load(&pos_path, false, 1).unwrap();
        let Opened { start, tracker, .. } = p.open(id, log.to_str().unwrap(), &f, 8);
        assert_eq!(start, 0);
        tracker.register(4).done();
        let in_flight = tracker.register(8);
        p.close(id, 8);
        let Opened {
            start,
            tracker: again,
            ..
        } = p.open(id, log.to_str().unwrap(), &f, 8);
        assert_eq!(
            start, 8,
            "reopened in the same run: continue after what was read"
        );
        assert!(
            Arc::ptr_eq(&tracker, &again),
            "acknowledgements still in flight keep counting"
        );
        drop(in_flight);
        p.save().unwrap();
        let text = std::fs::read_to_string(&pos_path).unwrap();
        assert!(
            text.contains(&format!("{}: '4'", log.display())),
            "Promtail's map: {text}"
        );

        // After a rename the identity still resumes at 4.
        let renamed = dir.path().join("a.log.1");
        std::fs::rename(&log, &renamed).unwrap();
        let p = Positions::load(&pos_path, false, 1).unwrap();
        let f = File::open(&renamed).unwrap();
        assert_eq!(p.open(id, renamed.to_str().unwrap(), &f, 8).start, 4);
    }

    #[test]
    fn a_closed_file_that_left_its_path_is_remembered_across_saves() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(&log, b"0123456789\n").unwrap();
        let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
        let id = FileId::of(&std::fs::metadata(&log).unwrap());
        let f = File::open(&log).unwrap();
        let tracker = p.open(id, log.to_str().unwrap(), &f, 11).tracker;
        tracker.register(11).done();
        p.close(id, 11);
        // Rotated: the path now holds a new file; the old one has a name the glob also matches.
        let rotated = dir.path().join("audit-1.log");
        std::fs::rename(&log, &rotated).unwrap();
        std::fs::write(&log, b"new\n").unwrap();
        p.save().unwrap();
        let f = File::open(&rotated).unwrap();
        assert_eq!(
            p.open(id, rotated.to_str().unwrap(), &f, 11).start,
            11,
            "not read again"
        );
    }

    #[test]
    fn a_short_fingerprint_grows_with_the_file_until_it_is_full() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"short\n").unwrap();
        let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
        let id = FileId::of(&std::fs::metadata(&log).unwrap());
        let f = File::open(&log).unwrap();
        p.open(id, log.to_str().unwrap(), &f, 6);
        let mut w = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        w.write_all(&[b'x'; 94]).unwrap();
        assert!(
            !p.refresh_fingerprint(id, &f, 100),
            "100 bytes: still short, keep refreshing"
        );
        w.write_all(&[b'y'; 300]).unwrap();
        assert!(p.refresh_fingerprint(id, &f, 400), "400 bytes: full");
    }

    #[test]
    fn reads_a_promtail_positions_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"0123456789").unwrap();
        let pos_path = dir.path().join("positions.yaml");
        std::fs::write(
            &pos_path,
            format!("positions:\n  {}: \"6\"\n", log.display()),
        )
        .unwrap();
        let p = Positions::load(&pos_path, false, 1).unwrap();
        let meta = std::fs::metadata(&log).unwrap();
        let f = File::open(&log).unwrap();
        assert_eq!(
            p.open(FileId::of(&meta), log.to_str().unwrap(), &f, 10)
                .start,
            6
        );
    }

    #[test]
    fn a_damaged_file_resumes_from_the_previous_copy() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, b"one\ntwo\n").unwrap();
        let pos_path = dir.path().join("positions.yaml");
        let id = FileId::of(&std::fs::metadata(&log).unwrap());
        let f = File::open(&log).unwrap();
        let p = Positions::load(&pos_path, false, 1).unwrap();
        let tracker = p.open(id, log.to_str().unwrap(), &f, 8).tracker;
        tracker.register(4).done();
        p.save().unwrap();
        tracker.register(8).done();
        p.save().unwrap();
        std::fs::write(&pos_path, b"positions: {\0\0 half written").unwrap();
        let p = Positions::load(&pos_path, false, 1).expect("no crash loop");
        assert_eq!(
            p.open(id, log.to_str().unwrap(), &f, 8).start,
            4,
            "the copy before the last write: at most one write's lines again"
        );
    }

    #[test]
    fn a_copy_is_recognised_but_never_a_files_own_new_content_or_a_closed_file() {
        let dir = tempfile::tempdir().unwrap();
        let header = "h".repeat(300);
        let log = dir.path().join("app.log");
        std::fs::write(&log, format!("{header}\nfirst\n")).unwrap();
        let p = Positions::load(&dir.path().join("positions.yaml"), false, 1).unwrap();
        let f = File::open(&log).unwrap();
        let id = FileId::of(&f.metadata().unwrap());
        p.open(id, log.to_str().unwrap(), &f, 307);
        let fp = Fingerprint::read(&f).unwrap();
        p.truncated(id, 307);

        // The program wrote its log again from scratch, same header: not a copy of itself.
        assert_eq!(p.copy_source(id, &fp), None);

        // logrotate's copy, another inode with the same beginning: the truncated content.
        let copy = dir.path().join("app.log.1");
        std::fs::write(&copy, format!("{header}\nfirst\n")).unwrap();
        let c = File::open(&copy).unwrap();
        let copy_id = FileId::of(&c.metadata().unwrap());
        p.open(copy_id, copy.to_str().unwrap(), &c, 307);
        assert_eq!(p.copy_source(copy_id, &fp), Some(CopySource::Truncated));
        assert_eq!(p.adopt(copy_id, fp).map(|(end, _)| end), Some(307));

        // A closed file with the same beginning cannot be compared: the new one is read in full.
        p.close(copy_id, 307);
        let other = dir.path().join("other.log");
        std::fs::write(&other, format!("{header}\nsomething else\n")).unwrap();
        let o = File::open(&other).unwrap();
        let other_id = FileId::of(&o.metadata().unwrap());
        p.open(other_id, other.to_str().unwrap(), &o, 316);
        assert_eq!(p.copy_source(other_id, &fp), None);
    }

    #[test]
    fn invalid_file_is_an_error_unless_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let pos_path = dir.path().join("positions.yaml");
        std::fs::write(&pos_path, b"\0\0\0garbage: [").unwrap();
        let err = Positions::load(&pos_path, false, 1).err().expect("invalid");
        assert!(err.to_string().contains("ignore_invalid_yaml"));
        assert!(Positions::load(&pos_path, true, 1).is_ok());
    }
}
