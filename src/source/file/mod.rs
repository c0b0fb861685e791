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

mod announce;
pub mod compressed;
mod copies;
pub mod discover;
mod held;
pub mod identity;
mod lag;
pub mod positions;
mod read;
mod rotation;
pub mod tailer;
pub mod watch;

use crate::entry::sink::EntrySink;
use crate::entry::Labels;
use crate::metrics::metrics;
use crate::pipeline::Pipeline;
use crate::source::Stop;
use discover::PathGlob;
use identity::FileId;
use positions::Positions;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailer::{ReadState, Tailer};

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
    /// Where the targets come from; those with `file_sd_configs` are refreshed at each look.
    pub scrapes: Vec<crate::source::targets::ScrapeTargets>,
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
    /// `(host, tenant)` of each client: lines cut or dropped for their length are counted for
    /// each, as the clients count what they drop.
    pub client_labels: Vec<(String, String)>,
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
    /// Entries released by a pipeline flush that the queues had no room for yet.
    held: Vec<crate::entry::Entry>,
    /// A file no target matches waits for its lines in flight before it is closed.
    retiring: bool,
    /// When held entries were last looked at.
    last_flush: Instant,
    /// When the files' lag was last published.
    lag: lag::LagClock,
    /// Targets and empty globs already logged.
    announced: announce::Announced,
}

impl FileSource {
    pub fn new(
        config: FileSourceConfig,
        positions: Arc<Positions>,
        sink: Arc<dyn EntrySink>,
        stop: Arc<Stop>,
    ) -> Self {
        let mut watcher = watch::DirWatcher::new();
        if let Some(waker) = watcher.waker() {
            // Idle, the thread sleeps until the next sync (10 s by default): a stop must not wait.
            stop.on_stop(Box::new(move || waker.wake()));
        }
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
            held: Vec::new(),
            retiring: false,
            last_flush: Instant::now(),
            lag: lag::LagClock::default(),
            announced: announce::Announced::default(),
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
                // What stages hold goes out with the clients' last pushes if there is room; if
                // not, its lines are read again at the next start (their position did not move).
                let _ = self.flush_pipelines(true);
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
            let awaiting_acks = self.publish_lag();
            let release_at = self.next_release();
            let holding = release_at.is_some() || !self.held.is_empty();
            let mut blocked = false;
            if holding {
                match self.flush_pipelines(false) {
                    Ok(sent) => blocked = !sent,
                    Err(Closed) => return,
                }
            }
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
                // Once the queues are full, no other file reads a chunk it could only hold: a
                // hundred files would each keep one in memory.
                if !due || (blocked && t.unsent.is_none()) {
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
                    self.finish_held();
                    return;
                }
                let wait = if let Some(at) = release_at {
                    let until = at.saturating_duration_since(Instant::now());
                    until_poll.min(until.max(held::FLUSH_EVERY.min(until_poll)))
                } else if holding {
                    until_poll.min(held::FLUSH_EVERY)
                } else if awaiting_acks {
                    until_poll.min(lag::LAG_EVERY)
                } else if needs_poll || self.watcher_missing_dirs() {
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

    /// Re-reads discovery files; on a change, takes the new targets and stops reading files that
    /// no target matches any more (once what was read of them is delivered).
    fn refresh_targets(&mut self) {
        let mut changed = false;
        for s in &mut self.config.scrapes {
            if s.has_discovery() {
                changed |= s.refresh();
            }
        }
        if changed {
            self.config.targets = self
                .config
                .scrapes
                .iter()
                .flat_map(|s| s.targets())
                .collect();
            crate::metrics::metrics()
                .targets_active
                .set(self.config.targets.len() as i64);
        } else if !self.retiring {
            return;
        }
        self.retiring = false;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &self.tailers[i];
            let path = std::path::Path::new(&t.path);
            let wanted = self
                .config
                .targets
                .iter()
                .any(|target| target.scrape == t.scrape && target.glob.is_match(path));
            if !wanted {
                if t.unsent.is_none() && t.tracker.in_flight() == 0 {
                    self.close(i, "no target matches the file any more");
                    continue;
                }
                self.retiring = true;
            }
            i += 1;
        }
    }

    /// Opens matching files that are not open yet.
    fn discover(&mut self) {
        self.refresh_targets();
        self.announce_targets();
        let mut open: HashSet<FileId> = self.tailers.iter().map(|t| t.id).collect();
        for index in 0..self.config.targets.len() {
            let target = &self.config.targets[index];
            self.watcher.watch(target.glob.base());
            let matches = target.glob.matches();
            self.report_matches(index, matches.len());
            let target = &self.config.targets[index];
            for path in matches {
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
}

/// What one read of a file did.
pub(super) enum Progress {
    Read,
    /// Nothing to read (or not yet: unsettled content).
    Idle,
    /// The clients' queues are full.
    Blocked,
}

/// The clients stopped taking entries.
pub(super) struct Closed;
