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
//! descriptor is read to its end before it is closed. A file that shrank below the read offset was
//! truncated (copytruncate) and is read again from 0. Files are known by identity (see [`identity`]),
//! so a rotated file still matched by the glob is not read twice.
//!
//! Shutdown: the thread returns when `stop` is set or the clients' queues close. Trackers stay
//! registered with [`positions::Positions`], so acknowledgements that arrive while the clients flush
//! still move the positions written at exit.

pub mod discover;
pub mod identity;
pub mod positions;
pub mod tailer;
pub mod watch;

use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels, PathLabels};
use crate::pipeline::{Pipeline, Processing, Verdict};
use crate::source::{EntrySink, Stop};
use discover::PathGlob;
use identity::FileId;
use positions::Positions;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailer::{LineEvent, Tailer};

/// How long the file thread lets changes accumulate after inotify woke it.
const WAKE_DEBOUNCE: Duration = Duration::from_millis(10);

/// Loki's default `max_line_size`, used when `limits_config.max_line_size` is 0.
pub const DEFAULT_MAX_LINE: usize = 256 * 1024;

/// One `static_configs` entry: a glob and the labels of what it finds.
pub struct Target {
    pub glob: PathGlob,
    /// The target's labels without `__`-prefixed ones.
    pub labels: Labels,
    /// Index of the scrape config (and its pipeline).
    pub scrape: usize,
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
    /// Paths already reported as unreadable (reported once until they become readable).
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
        let mut next_check = Instant::now() + self.config.poll_period;
        loop {
            if self.stop.is_stopped() {
                return;
            }
            if Instant::now() >= next_sync {
                self.discover();
                next_sync = Instant::now() + self.config.sync_period;
            }
            let mut read_any = false;
            for i in 0..self.tailers.len() {
                match self.read_one(i) {
                    Ok(n) => read_any |= n > 0,
                    Err(Closed) => return,
                }
            }
            let change = if read_any {
                // Busy: just look whether files were created or renamed meanwhile.
                self.watcher.wait(Duration::ZERO)
            } else {
                if self.config.exit_at_eof && self.tailers.iter().all(|t| t.rotated_since.is_none())
                {
                    return;
                }
                let timeout = next_check
                    .saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), self.config.poll_period);
                let change = self.watcher.wait(timeout);
                if change == watch::Change::Appended {
                    // A writer appending line by line changes the file many times a millisecond:
                    // let a few milliseconds of it gather into one pass.
                    self.stop.wait(WAKE_DEBOUNCE);
                }
                change
            };
            // Rotations are looked for every poll period, and at once when inotify saw files created,
            // renamed or deleted: a file rotated twice between two looks would otherwise be missed.
            if change == watch::Change::Files || Instant::now() >= next_check {
                if self.check_rotations() {
                    self.discover();
                }
                next_check = Instant::now() + self.config.poll_period;
            }
        }
    }

    /// Opens matching files that are not open yet.
    fn discover(&mut self) {
        for target in &self.config.targets {
            self.watcher.watch(target.glob.base());
            for path in target.glob.matches() {
                if target.glob.recursive() {
                    if let Some(dir) = path.parent() {
                        self.watcher.watch(dir);
                    }
                }
                let path_str = path.display().to_string();
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = FileId::of(&meta);
                if self.tailers.iter().any(|t| t.id == id) {
                    continue;
                }
                let mut file = match std::fs::File::open(&path) {
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
                let (start, tracker) = self.positions.open(id, &path_str, &mut file, meta.len());
                let mut labels = target.labels.clone();
                labels.insert("filename", path_str.clone());
                match Tailer::new(
                    path_str.clone(),
                    id,
                    target.scrape,
                    labels,
                    file,
                    start,
                    tracker,
                ) {
                    Ok(t) => {
                        tracing::info!(path = %path_str, offset = start, "tailing file");
                        self.tailers.push(t);
                    }
                    Err(e) => tracing::warn!(path = %path_str, error = %e, "cannot seek in file"),
                }
            }
        }
        metrics().files_active.set(self.tailers.len() as i64);
    }

    /// Checks each open file for truncation, rotation and deletion. `true` when a path now holds
    /// another file or a file was closed, so that the globs should be looked at again.
    fn check_rotations(&mut self) -> bool {
        let poll = self.config.poll_period;
        let mut look_again = false;
        let mut i = 0;
        while i < self.tailers.len() {
            let t = &mut self.tailers[i];
            let size = t.file().metadata().map(|m| m.len()).unwrap_or(0);
            metrics()
                .file_bytes
                .get_or_create(&PathLabels {
                    path: t.path.clone(),
                })
                .set(size as i64);
            if size < t.offset() {
                tracing::warn!(path = %t.path, size, offset = t.offset(), "file was truncated; reading it again from the start");
                let tracker = self.positions.restart(t.id);
                if let Err(e) = t.restart(tracker) {
                    tracing::warn!(path = %t.path, error = %e, "cannot seek in truncated file");
                }
            }
            if t.short_fingerprint {
                t.short_fingerprint = !self.positions.refresh_fingerprint(t.id, t.file_mut(), size);
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
            let done =
                t.rotated_since.is_some_and(|since| since.elapsed() >= poll) && size <= t.offset();
            if done {
                let t = self.tailers.swap_remove(i);
                tracing::info!(path = %t.path, offset = t.offset(), "finished rotated file");
                self.positions.close(t.id, t.offset());
                look_again = true;
                continue;
            }
            i += 1;
        }
        metrics().files_active.set(self.tailers.len() as i64);
        look_again
    }

    /// Reads one chunk of tailer `i` and ships its lines. Returns the bytes read.
    fn read_one(&mut self, i: usize) -> Result<usize, Closed> {
        let max_line = self.config.max_line;
        let truncate = self.config.truncate_long_lines;
        let t = &mut self.tailers[i];
        let pipeline = self.config.pipelines[t.scrape].clone();
        let labels = t.labels.clone();
        let tracker = t.tracker.clone();
        let path = t.path.clone();
        let sink = &self.sink;
        let limiter = self.limiter.as_ref();
        let readline_drop = self.config.readline.as_ref().is_some_and(|l| l.drop);
        let now = crate::entry::now_ns();
        let mut lines = 0u64;
        let mut invalid_utf8 = 0u64;
        let mut too_long = 0u64;
        let mut entries = Vec::new();
        let result = t.read(max_line, truncate, |event| {
            let (bytes, end) = match event {
                LineEvent::Line { bytes, end, .. } => (bytes, end),
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
        let closed = !entries.is_empty() && sink.send(entries).is_err();
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
        if too_long > 0 {
            tracing::warn!(path = %path, lines = too_long, max_line, "dropped lines longer than max_line_size");
            m.dropped_entries
                .get_or_create(&DropLabels {
                    host: String::new(),
                    reason: "line_too_long".into(),
                })
                .inc_by(too_long);
        }
        if closed {
            return Err(Closed);
        }
        Ok(n)
    }
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
