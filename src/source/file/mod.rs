//! The file source: finds files by glob, follows them as they grow and rotate, and runs each line
//! through its scrape config's pipeline into the clients' queues.
//!
//! One thread serves every file (a thousand idle files cost one sleeping thread, not a thousand).
//! Each pass reads a bounded chunk from each file, so one busy file cannot starve the others. Between
//! passes the thread sleeps until inotify ([`watch`]) reports a change in a watched directory or the
//! poll period (`global.file_watch_config.min_poll_frequency`) passes; polling alone also works, for
//! filesystems without inotify or when the watch limit is reached.
//!
//! Rotation: every poll period, and at once when inotify reports created, renamed or deleted files,
//! each open file's path is checked. When it points to another file (rename+create) or to nothing
//! (deletion), the new file at the path is opened and read from its start right away, while the old
//! descriptor is read to its end before it is closed (up to `limits_config.max_open_rotated_files`
//! such descriptors). Before each read the file is checked for truncation: smaller than the read
//! offset, or no longer starting with the bytes it started with. Files are known by identity (see
//! [`identity`]), so a rotated file still matched by the glob is not read twice, and new content is
//! not read before it is known not to be a copy of content already read ([`copies`]: copytruncate).
//!
//! Backpressure: the clients' queues are bounded in bytes. A tailer whose entries found no room keeps
//! them and reads nothing more; the thread waits for room at most until its next look at rotations,
//! so files rotated (or copied and truncated) while Loki is down are still followed.
//!
//! Shutdown: the thread returns when `stop` is set or the clients' queues close. Trackers stay
//! registered with [`positions::Positions`], so acknowledgements that arrive while the clients flush
//! still move the positions written at exit.

pub mod compressed;
mod copies;
pub mod discover;
pub mod identity;
pub mod positions;
pub mod tailer;
pub mod watch;

use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels, PathLabels};
use crate::pipeline::{Pipeline, Processing, Verdict};
use crate::source::{EntrySink, Stop, TrySendError};
use discover::PathGlob;
use identity::FileId;
use positions::Positions;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailer::{LineEvent, ReadState, Tailer};

/// How long the file thread lets changes accumulate after inotify woke it.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(50);

/// Loki's default `max_line_size`, used when `limits_config.max_line_size` is 0.
pub const DEFAULT_MAX_LINE: usize = 256 * 1024;

/// One `static_configs` entry: a glob and the labels of what it finds.
pub struct Target {
    pub glob: PathGlob,
    /// The target's labels without `__`-prefixed ones.
    pub labels: Labels,
    /// Index of the scrape config (and its pipeline).
    pub scrape: usize,
    /// The scrape config's `decompression`, when enabled.
    pub decompression: Option<compressed::Decompression>,
}

/// `limits_config.readline_*`.
pub struct ReadlineLimit {
    pub rate: f64,
    pub burst: u32,
    pub drop: bool,
}

pub struct FileSourceConfig {
    pub targets: Vec<Target>,
    /// One pipeline per scrape config.
    pub pipelines: Vec<Arc<Pipeline>>,
    pub sync_period: Duration,
    pub poll_period: Duration,
    pub max_line: usize,
    pub truncate_long_lines: bool,
    pub readline: Option<ReadlineLimit>,
    /// Stop once every file has been read to its end (backfills, dry runs).
    pub exit_at_eof: bool,
    /// Rotated files kept open until read to their end; beyond it the oldest is given up.
    pub max_open_rotated: usize,
}

type Limiter = governor::DefaultDirectRateLimiter;

pub struct FileSource {
    config: FileSourceConfig,
    positions: Arc<Positions>,
    sink: Arc<dyn EntrySink>,
    stop: Arc<Stop>,
    tailers: Vec<Tailer>,
    watcher: watch::DirWatcher,
    limiter: Option<Limiter>,
    /// Tailer index by path, for inotify's reports; rebuilt when the tailers change.
    path_index: Option<rustc_hash::FxHashMap<String, usize>>,
    /// The read buffer, shared by all tailers.
    buf: Vec<u8>,
    /// Paths already reported as unreadable, not regular or compressed (reported once, until they
    /// can be read).
    unreadable: HashSet<String>,
}

impl FileSource {
    pub fn new(
        config: FileSourceConfig,
        positions: Arc<Positions>,
        sink: Arc<dyn EntrySink>,
        stop: Arc<Stop>,
    ) -> Self {
        let mut watcher = watch::DirWatcher::new();
        for t in &config.targets {
            watcher.watch(t.glob.base());
        }
        let limiter = config.readline.as_ref().and_then(|l| {
            let rate = std::num::NonZeroU32::new(l.rate.max(1.0) as u32)?;
            let burst = std::num::NonZeroU32::new(l.burst.max(1))?;
            Some(governor::RateLimiter::direct(
                governor::Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Self {
            config,
            positions,
            sink,
            stop,
            tailers: Vec::new(),
            watcher,
            limiter,
            path_index: None,
            buf: vec![0; tailer::READ_CHUNK],
            unreadable: HashSet::new(),
        }
    }

    /// Runs on its own thread until stopped.
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("file-source".into())
            .spawn(move || self.run())
            .expect("spawning the file source thread")
    }

    pub fn run(mut self) {
        let mut next_sync = Instant::now();
        let mut next_poll = Instant::now() + self.config.poll_period;
        loop {
            if self.stop.is_stopped() {
                return;
            }
            let now = Instant::now();
            let full = now >= next_sync;
            if full {
                // The safety net: every file is looked at and read, whatever inotify said.
                self.check_rotations();
                self.discover();
                next_sync = now + self.config.sync_period;
            }
            let poll = full || now >= next_poll;
            if poll {
                next_poll = now + self.config.poll_period;
            }
            let mut read_any = false;
            let mut blocked = false;
            // Files that inotify does not cover, or that are being finished or settled, are looked
            // at every poll period; the others only when inotify reports them.
            let mut needs_poll = false;
            for i in 0..self.tailers.len() {
                let t = &self.tailers[i];
                let polled = !t.watched
                    || t.rotated_since.is_some()
                    || t.state != ReadState::Reading
                    || t.compressed();
                needs_poll |= polled;
                let due = full || t.wanted || t.unsent.is_some() || (poll && polled);
                if !due {
                    continue;
                }
                let progress = match self.read_one(i) {
                    Ok(p) => p,
                    Err(Closed) => return,
                };
                self.tailers[i].wanted = !matches!(progress, Progress::Idle);
                match progress {
                    Progress::Read => read_any = true,
                    Progress::Blocked => blocked = true,
                    Progress::Idle => {}
                }
            }
            let until_poll = next_poll
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), self.config.poll_period);
            let change = if read_any {
                // Busy: just look whether files were created or renamed meanwhile.
                self.watcher.wait(Duration::ZERO)
            } else if blocked {
                // The clients are backed up: wait for room, but not past the next poll.
                self.sink.wait_for_room(until_poll);
                self.watcher.wait(Duration::ZERO)
            } else {
                if self.config.exit_at_eof && self.all_done() {
                    return;
                }
                let wait = if needs_poll || self.watcher_missing_dirs() {
                    until_poll
                } else {
                    // inotify wakes the thread for anything sooner.
                    next_sync
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1))
                };
                let change = self.watcher.wait(wait);
                if change == watch::Change::Appended {
                    // A writer appending line by line changes the file many times a millisecond:
                    // let a few milliseconds of it gather into one pass.
                    self.stop.wait(WAKE_DEBOUNCE);
                    self.watcher.wait(Duration::ZERO)
                } else {
                    change
                }
            };
            self.mark_modified(change);
            // Rotations are looked for at once when inotify saw files created, renamed or deleted
            // (a file rotated twice between two looks would otherwise be missed), and every poll
            // period while a rotated file is being finished or files are not watched.
            if change == watch::Change::Files || (poll && needs_poll) {
                self.check_rotations();
                // New files are looked for at once too: a file created and rotated away before
                // the next sync would otherwise never be seen.
                self.discover();
            }
        }
    }

    /// Some target directory is not watched (no inotify, limit reached, not created yet).
    fn watcher_missing_dirs(&self) -> bool {
        self.config
            .targets
            .iter()
            .any(|t| !self.watcher.covers(t.glob.base()))
    }

    /// Marks the files inotify saw written to as wanted; after a structural change or a lost
    /// event queue, every file.
    fn mark_modified(&mut self, change: watch::Change) {
        let modified = self.watcher.take_modified();
        if change == watch::Change::Files {
            self.tailers.iter_mut().for_each(|t| t.wanted = true);
        } else if !modified.is_empty() {
            // Hashing `Path`s goes component by component; plain strings with FxHash cost a
            // fraction of that, which counts with a thousand files and a write every millisecond.
            let tailers = &self.tailers;
            let index = self.path_index.get_or_insert_with(|| {
                // A rotated file still has the path of the file that replaced it: the newer one
                // (later in the list) is the one at the path.
                tailers
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.path.clone(), i))
                    .collect()
            });
            for path in modified {
                let Some(path) = path.to_str() else { continue };
                if let Some(&i) = index.get(path) {
                    if let Some(t) = self.tailers.get_mut(i).filter(|t| t.path == path) {
                        t.wanted = true;
                    }
                }
            }
        }
    }

    /// Every file read to its end, nothing waiting (`exit_at_eof`).
    fn all_done(&self) -> bool {
        self.tailers.iter().all(|t| {
            t.rotated_since.is_none() && t.unsent.is_none() && t.state == ReadState::Reading
        })
    }

    /// Opens matching files that are not open yet.
    fn discover(&mut self) {
        let mut open: HashSet<FileId> = self.tailers.iter().map(|t| t.id).collect();
        for target in &self.config.targets {
            self.watcher.watch(target.glob.base());
            for path in target.glob.matches() {
                if target.glob.recursive() {
                    if let Some(dir) = path.parent() {
                        self.watcher.watch(dir);
                    }
                }
                let path_str = path.display().to_string();
                if target.decompression.is_none() && compressed::is_compressed_name(&path) {
                    // A rotated generation compressed by logrotate: its lines were read from the
                    // file before it was compressed, and its bytes are not lines.
                    if self.unreadable.insert(path_str.clone()) {
                        tracing::info!(path = %path_str, "compressed file ignored (decompression is not configured)");
                    }
                    continue;
                }
                // Follows symlinks: a link is known by its target's identity.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    // A directory, FIFO, socket or device matched by the glob: opening a FIFO
                    // would block the thread, and none of them is a log file.
                    if self.unreadable.insert(path_str.clone()) {
                        tracing::warn!(path = %path_str, "not a regular file; ignored");
                        crate::metrics::file_error("not_regular_file");
                    }
                    continue;
                }
                let id = FileId::of(&meta);
                if open.contains(&id) {
                    continue;
                }
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        if self.unreadable.insert(path_str.clone()) {
                            tracing::warn!(path = %path_str, error = %e, "cannot open file; will retry at the next sync");
                            crate::metrics::file_error("open");
                        }
                        continue;
                    }
                };
                self.unreadable.remove(&path_str);
                let decompress = target
                    .decompression
                    .filter(|d| compressed::is_format(&file, d.format));
                if let Some(d) = decompress {
                    let age = meta.modified().ok().and_then(|m| m.elapsed().ok());
                    if age.is_none_or(|age| age < d.initial_delay)
                        || self.positions.is_complete(id, &file)
                    {
                        // Still being written (initial_delay), or read completely before.
                        continue;
                    }
                }
                // A compressed file's offsets are in its decompressed content, not bounded by its size.
                let size = if decompress.is_some() {
                    u64::MAX
                } else {
                    meta.len()
                };
                let opened = self.positions.open(id, &path_str, &file, size);
                let mut labels = target.labels.clone();
                labels.insert("filename", path_str.clone());
                match Tailer::new(
                    path_str.clone(),
                    id,
                    target.scrape,
                    labels,
                    file,
                    opened.start,
                    opened.tracker,
                ) {
                    Ok(mut t) => {
                        if let Some(d) = decompress {
                            if let Err(e) = t.decompress(d.format) {
                                tracing::warn!(path = %path_str, error = %e, "cannot decompress file");
                                crate::metrics::file_error("decompress");
                                continue;
                            }
                            tracing::info!(path = %path_str, offset = opened.start, "reading compressed file");
                        } else {
                            tracing::info!(path = %path_str, offset = opened.start, "tailing file");
                        }
                        if opened.fresh && decompress.is_none() {
                            t.state = ReadState::unsettled();
                        }
                        let is_link = std::fs::symlink_metadata(&path)
                            .is_ok_and(|m| m.file_type().is_symlink());
                        t.watched =
                            !is_link && path.parent().is_some_and(|dir| self.watcher.covers(dir));
                        open.insert(id);
                        self.tailers.push(t);
                        self.path_index = None;
                    }
                    Err(e) => tracing::warn!(path = %path_str, error = %e, "cannot seek in file"),
                }
            }
        }
        metrics().files_active.set(self.tailers.len() as i64);
    }

    /// Checks each open file for rotation and deletion, and publishes its size and lag. `true`
    /// when a path now holds another file or a file was closed, so that the globs should be looked
    /// at again.
    fn check_rotations(&mut self) -> bool {
        let poll = self.config.poll_period;
        let mut look_again = false;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &mut self.tailers[i];
            let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
            let m = metrics();
            let pl = PathLabels {
                path: t.path.clone(),
            };
            m.file_bytes.get_or_create(&pl).set(size as i64);
            m.file_lag_bytes
                .get_or_create(&pl)
                .set(size.saturating_sub(t.tracker.committed()) as i64);
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
                look_again = true;
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
                look_again = true;
                continue;
            }
            i += 1;
        }
        look_again |= self.limit_rotated();
        metrics().files_active.set(self.tailers.len() as i64);
        look_again
    }

    /// Gives up the oldest rotated files beyond `max_open_rotated` (each keeps a deleted file's
    /// disk space and a descriptor). Their unread rest is lost: warned and counted.
    fn limit_rotated(&mut self) -> bool {
        let mut closed = false;
        loop {
            let rotated = self.tailers.iter().filter(|t| t.rotated_since.is_some());
            if rotated.clone().count() <= self.config.max_open_rotated {
                return closed;
            }
            let Some((i, _)) = self
                .tailers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.rotated_since.map(|since| (i, since)))
                .min_by_key(|(_, since)| *since)
            else {
                return closed;
            };
            let t = &self.tailers[i];
            let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
            let unread = size.saturating_sub(t.line_end());
            tracing::warn!(path = %t.path, unread_bytes = unread, limit = self.config.max_open_rotated,
                "too many rotated files still being read (limits_config.max_open_rotated_files): giving up the oldest");
            metrics().rotated_files_abandoned.inc();
            metrics().rotated_bytes_abandoned.inc_by(unread);
            self.close(i, "gave up rotated file");
            closed = true;
        }
    }

    /// Closes tailer `i`; its position stays known.
    fn close(&mut self, i: usize, why: &'static str) {
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

    /// Reads one chunk of tailer `i` and ships its lines.
    fn read_one(&mut self, i: usize) -> Result<Progress, Closed> {
        if let Some(entries) = self.tailers[i].unsent.take() {
            match self.sink.try_send(entries) {
                Ok(()) => {}
                Err(TrySendError::Full(entries)) => {
                    self.tailers[i].unsent = Some(entries);
                    return Ok(Progress::Blocked);
                }
                Err(TrySendError::Closed) => return Err(Closed),
            }
        }
        let size = match self.tailers[i].file().metadata() {
            Ok(m) => m.len(),
            Err(_) => return Ok(Progress::Idle),
        };
        let t = &self.tailers[i];
        if t.compressed() {
            if t.at_eof {
                return Ok(Progress::Idle);
            }
        } else {
            if self.truncated(i, size) || !self.settle(i, size) {
                return Ok(Progress::Idle);
            }
            if size <= self.tailers[i].offset() {
                return Ok(Progress::Idle);
            }
        }
        let max_line = self.config.max_line;
        let truncate = self.config.truncate_long_lines;
        let t = &mut self.tailers[i];
        let pipeline = self.config.pipelines[t.scrape].clone();
        let labels = t.labels.clone();
        let tracker = t.tracker.clone();
        let path = t.path.clone();
        let limiter = self.limiter.as_ref();
        let readline_drop = self.config.readline.as_ref().is_some_and(|l| l.drop);
        let now = crate::entry::now_ns();
        let mut lines = 0u64;
        let mut invalid_utf8 = 0u64;
        let mut too_long = 0u64;
        let mut entries = Vec::new();
        let mut truncated_lines = 0u64;
        let result = t.read(&mut self.buf, max_line, truncate, |event| {
            let (bytes, end) = match event {
                LineEvent::Line {
                    bytes,
                    end,
                    truncated,
                } => {
                    truncated_lines += u64::from(truncated);
                    (bytes, end)
                }
                LineEvent::TooLong { end } => {
                    too_long += 1;
                    tracker.register(end).done_all();
                    return;
                }
            };
            lines += 1;
            let ack = tracker.register(end);
            if let Some(limiter) = limiter {
                if !wait_for_rate(limiter, readline_drop) {
                    crate::metrics::pipeline_dropped("readline_rate_limited");
                    ack.done_all();
                    return;
                }
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => {
                    invalid_utf8 += 1;
                    String::from_utf8_lossy(bytes).into_owned()
                }
            };
            let mut p = Processing::new(labels.clone(), line, now);
            match pipeline.process(&mut p) {
                Verdict::Keep => {
                    let entry = Entry {
                        labels: p.labels,
                        timestamp_ns: p.timestamp_ns,
                        line: p.line,
                        structured_metadata: p.structured_metadata,
                        ack: Some(ack),
                    };
                    entries.push(entry);
                }
                Verdict::Drop(_) => ack.done_all(),
            }
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(path = %path, error = %e, "read error");
                crate::metrics::file_error("read");
                0
            }
        };
        self.tailers[i].at_eof = n == 0;
        let mut progress = if n > 0 {
            Progress::Read
        } else {
            Progress::Idle
        };
        if !entries.is_empty() {
            match self.sink.try_send(entries) {
                Ok(()) => {}
                Err(TrySendError::Full(entries)) => {
                    self.tailers[i].unsent = Some(entries);
                    progress = Progress::Blocked;
                }
                Err(TrySendError::Closed) => return Err(Closed),
            }
        }
        let m = metrics();
        if n > 0 {
            let pl = PathLabels { path: path.clone() };
            m.read_bytes.get_or_create(&pl).inc_by(n as u64);
            m.read_lines.get_or_create(&pl).inc_by(lines);
        }
        if invalid_utf8 > 0 {
            m.invalid_utf8_lines
                .get_or_create(&PathLabels { path: path.clone() })
                .inc_by(invalid_utf8);
        }
        if truncated_lines > 0 {
            tracing::warn!(path = %path, lines = truncated_lines, max_line, "truncated lines longer than max_line_size");
            m.mutated_entries
                .get_or_create(&DropLabels {
                    host: String::new(),
                    reason: "line_too_long".into(),
                })
                .inc_by(truncated_lines);
        }
        if too_long > 0 {
            tracing::warn!(path = %path, lines = too_long, max_line, "dropped lines longer than max_line_size");
            m.dropped_entries
                .get_or_create(&DropLabels {
                    host: String::new(),
                    reason: "line_too_long".into(),
                })
                .inc_by(too_long);
        }
        Ok(progress)
    }

    /// Whether tailer `i`'s file was truncated (size `size` now) since it was last looked at; if
    /// so, it starts over at 0, its new content unsettled.
    fn truncated(&mut self, i: usize, size: u64) -> bool {
        let t = &mut self.tailers[i];
        let changed = size != t.seen_size;
        t.seen_size = size;
        // Smaller than what was read; or, when it grew, refilled past the read offset (copytruncate
        // while reading was paused): its first bytes are no longer the ones it started with.
        let truncated = size < t.offset()
            || (changed
                && t.state == ReadState::Reading
                && self.positions.content_changed(t.id, t.file()));
        if !truncated {
            return false;
        }
        tracing::warn!(path = %t.path, size, offset = t.offset(), "file was truncated; reading it again from the start");
        let tracker = self.positions.truncated(t.id, t.line_end());
        if let Err(e) = t.restart_at(0, tracker) {
            tracing::warn!(path = %t.path, error = %e, "cannot seek in truncated file");
        }
        t.state = ReadState::unsettled();
        t.short_fingerprint = true;
        true
    }
}

/// What one read of a file did.
enum Progress {
    Read,
    /// Nothing to read (or not yet: unsettled content).
    Idle,
    /// The clients' queues are full.
    Blocked,
}

/// The clients stopped taking entries.
struct Closed;

/// Waits for the readline rate limit; `false` if the line must be dropped instead.
fn wait_for_rate(limiter: &Limiter, drop: bool) -> bool {
    loop {
        match limiter.check() {
            Ok(()) => return true,
            Err(_) if drop => return false,
            Err(not_until) => {
                use governor::clock::Clock;
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                std::thread::sleep(wait.max(Duration::from_micros(50)));
            }
        }
    }
}
