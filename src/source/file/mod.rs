//! The file source: finds files by glob, follows them as they grow and rotate, and runs each line
//! through its scrape config's pipeline into the clients' queues.
//!
//! One thread serves every file (a thousand idle files cost one sleeping thread, not a thousand).
//! Each pass reads a bounded chunk from each file, so one busy file cannot starve the others. Between
//! passes the thread sleeps until inotify ([`watch`]) reports a change in a watched directory or the
//! poll period (`global.file_watch_config.min_poll_frequency`) passes; polling alone also works, for
//! filesystems without inotify or when the watch limit is reached.
//!
//! Mechanism apart from glue: what happens to one file — truncation, copytruncate settling,
//! rotation, entries held for full queues — is the state machine in [`tailer`] (its module doc
//! draws it), tested in-process step by step (`tests.rs`). The files beside it are glue:
//! `open.rs` (globs → tailers), `read.rs` (a chunk through the pipeline into the sink),
//! `closing.rs` (finished, given up, no longer matched), `held.rs` (entries stages held back),
//! `lag.rs`, `announce.rs`; [`positions`] is the ledger the tailers consult.
//!
//! Rotation: every poll period, and at once when inotify reports created, renamed or deleted files,
//! each open file's path is checked. When it points to another file (rename+create) or to nothing
//! (deletion), the new file at the path is opened and read from its start right away, while the old
//! descriptor is read to its end before it is closed (up to `limits_config.max_open_rotated_files`
//! such descriptors); an incomplete last line it ends with is then shipped as it is (Promtail
//! drops it). Before each read the file is checked for truncation: smaller than the read
//! offset, or no longer starting with the bytes it started with. Files are known by identity (see
//! [`identity`]), so a rotated file still matched by the glob is not read twice, and new content is
//! not read before it is known not to be a copy of content already read (`tailer/copies.rs`:
//! copytruncate).
//!
//! Backpressure: the clients' queues are bounded in bytes. A tailer whose entries found no room keeps
//! them and reads nothing more; the thread waits for room at most until its next look at rotations,
//! so files rotated (or copied and truncated) while Loki is down are still followed.
//!
//! Shutdown: the thread returns when `stop` fires or the clients' queues close. Trackers stay
//! registered with [`positions::Positions`], so acknowledgements that arrive while the clients flush
//! still move the positions written at exit.

mod announce;
pub(crate) mod chunk;
mod closing;
pub mod compressed;
pub mod discover;
mod held;
pub mod identity;
mod lag;
mod open;
pub mod positions;
mod read;
pub mod reconfigure;
pub mod tailer;
#[cfg(test)]
mod tests;
pub mod watch;

use crate::entry::sink::EntrySink;
use crate::entry::Labels;
use crate::pipeline::Pipeline;
use crate::shutdown::StopSignal;
use discover::PathGlob;
use positions::Positions;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tailer::Tailer;

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

/// The labels of the lines of `path`, matched by `target`: its own and `filename`.
pub fn labels_for(target: &Target, path: &str) -> crate::entry::Labels {
    open::labels_of(target, path)
}

pub(crate) type Limiter = governor::DefaultDirectRateLimiter;

pub struct FileSource {
    config: FileSourceConfig,
    positions: Arc<Positions>,
    sink: Arc<dyn EntrySink>,
    stop: StopSignal,
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
    /// New scrape configs from a reload ([`reconfigure`]).
    reconfigure: Option<std::sync::mpsc::Receiver<reconfigure::Reconfigure>>,
}

impl FileSource {
    pub fn new(
        config: FileSourceConfig,
        positions: Arc<Positions>,
        sink: Arc<dyn EntrySink>,
        stop: StopSignal,
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
            reconfigure: None,
        }
    }

    /// Runs on its own thread until stopped.
    // A thread that cannot be spawned at start (no memory, no threads left) is fatal, and early.
    #[allow(clippy::expect_used)]
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("file-source".into())
            .spawn(move || self.run())
            .expect("spawning the file source thread")
    }

    pub fn run(mut self) {
        let mut clock = Clock {
            next_sync: Instant::now(),
            next_poll: Instant::now() + self.config.poll_period,
        };
        loop {
            if self.stop.is_stopped() {
                // What stages hold goes out with the clients' last pushes if there is room; if
                // not, its lines are read again at the next start (their position did not move).
                let _ = self.flush_pipelines(true);
                return;
            }
            self.take_reconfigure();
            let Ok(pass) = self.pass(&mut clock) else {
                return;
            };
            if !pass.read_any && !pass.blocked && self.config.exit_at_eof && self.all_done() {
                self.finish_held();
                return;
            }
            let change = self.sleep(&pass, &clock);
            self.mark_modified(change);
            // Rotations are looked for at once when inotify saw files created, renamed or deleted
            // (a file rotated twice between two looks would otherwise be missed), and every poll
            // period while a rotated file is being finished or files are not watched.
            if change == watch::Change::Files || (pass.poll && pass.needs_poll) {
                self.check_rotations();
                // New files are looked for at once too: a file created and rotated away before
                // the next sync would otherwise never be seen.
                self.discover();
            }
        }
    }

    /// One pass: at a sync, every file is looked at; then what stages released is shipped and
    /// each file that is due is read a chunk.
    fn pass(&mut self, clock: &mut Clock) -> Result<Pass, Closed> {
        let now = Instant::now();
        let full = now >= clock.next_sync;
        if !full && self.config.scrapes.iter().any(|s| s.discovery_changed()) {
            // A pod came or went: its files are opened or retired now, not at the next sync.
            self.discover();
        }
        if full {
            // The safety net: every file is looked at and read, whatever inotify said.
            self.check_rotations();
            self.discover();
            clock.next_sync = now + self.config.sync_period;
            crate::metrics::metrics().file_syncs.inc();
        }
        let poll = full || now >= clock.next_poll;
        if poll {
            clock.next_poll = now + self.config.poll_period;
        }
        let release_at = self.next_release();
        let mut pass = Pass {
            poll,
            awaiting_acks: self.publish_lag(),
            release_at,
            holding: release_at.is_some() || !self.held.is_empty(),
            ..Pass::default()
        };
        if pass.holding {
            pass.blocked = !self.flush_pipelines(false)?;
        }
        // Files that inotify does not cover, or that are being finished or settled, are looked
        // at every poll period; the others only when inotify reports them.
        for i in 0..self.tailers.len() {
            let t = &self.tailers[i];
            let polled = t.needs_poll();
            pass.needs_poll |= polled;
            let due = t.has_unsent() || (!t.retired() && (full || t.wanted() || (poll && polled)));
            // Once the queues are full, no other file reads a chunk it could only hold: a
            // hundred files would each keep one in memory.
            if !due || (pass.blocked && !t.has_unsent()) {
                continue;
            }
            let progress = self.read_one(i)?;
            self.tailers[i].set_wanted(!matches!(progress, Progress::Idle));
            match progress {
                Progress::Read => {
                    pass.read_any = true;
                    // Lines went out: their acknowledgements are awaited, so the lag is looked
                    // at again soon (not only at the next sync) and falls to 0 as they arrive.
                    self.lag.lines_sent();
                }
                Progress::Blocked => pass.blocked = true,
                Progress::Idle => {}
            }
        }
        Ok(pass)
    }

    /// Waits after a pass, for as long as nothing is due: busy, not at all; blocked, for room in
    /// the queues; idle, until inotify reports a change or the next thing the source must do
    /// (release held lines, publish the lag, poll, sync).
    fn sleep(&mut self, pass: &Pass, clock: &Clock) -> watch::Change {
        let until_poll = clock
            .next_poll
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), self.config.poll_period);
        if pass.read_any {
            // Busy: just look whether files were created or renamed meanwhile.
            return self.watcher.wait(Duration::ZERO);
        }
        if pass.blocked {
            // The clients are backed up: wait for room, but not past the next poll.
            self.sink.wait_for_room(until_poll);
            return self.watcher.wait(Duration::ZERO);
        }
        let wait = if let Some(at) = pass.release_at {
            let until = at.saturating_duration_since(Instant::now());
            until_poll.min(until.max(held::FLUSH_EVERY.min(until_poll)))
        } else if pass.holding {
            until_poll.min(held::FLUSH_EVERY)
        } else if pass.awaiting_acks {
            until_poll.min(lag::LAG_EVERY)
        } else if pass.needs_poll || self.watcher_missing_dirs() || self.watches_kubernetes() {
            // A Kubernetes watch has no file to wake inotify: its news is looked at each poll.
            until_poll
        } else {
            // inotify wakes the thread for anything sooner.
            clock
                .next_sync
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        };
        let change = self.watcher.wait(wait);
        if change == watch::Change::Appended {
            // A writer appending line by line changes the file many times a millisecond: let a
            // few milliseconds of it gather into one pass.
            self.stop.wait(WAKE_DEBOUNCE);
            return self.watcher.wait(Duration::ZERO);
        }
        change
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
            self.tailers.iter_mut().for_each(|t| t.set_wanted(true));
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
                    .map(|(i, t)| (t.path().to_string(), i))
                    .collect()
            });
            for path in modified {
                let Some(path) = path.to_str() else { continue };
                if let Some(&i) = index.get(path) {
                    if let Some(t) = self.tailers.get_mut(i).filter(|t| t.path() == path) {
                        t.set_wanted(true);
                    }
                }
            }
        }
    }

    fn watches_kubernetes(&self) -> bool {
        self.config.scrapes.iter().any(|s| s.watches_kubernetes())
    }

    /// Every file read to its end, nothing waiting (`exit_at_eof`).
    fn all_done(&self) -> bool {
        self.tailers.iter().all(Tailer::caught_up)
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
        self.retire_unmatched();
    }
}

/// When the next full look (sync) and the next poll are due.
struct Clock {
    next_sync: Instant,
    next_poll: Instant,
}

/// What one pass did and found.
#[derive(Default)]
struct Pass {
    /// The poll period had passed: polled files were read.
    poll: bool,
    /// Some file was read.
    read_any: bool,
    /// The clients' queues are full.
    blocked: bool,
    /// Some file is looked at every poll period (not watched, moved, unsettled, compressed).
    needs_poll: bool,
    /// When a stage releases a held entry next.
    release_at: Option<Instant>,
    /// Stages hold entries, or released ones wait for room.
    holding: bool,
    /// Lines are in flight: the lag is published as they are acknowledged.
    awaiting_acks: bool,
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
