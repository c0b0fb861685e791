//! Change notification for the file thread: inotify, read by the file thread itself.
//!
//! The thread sleeps in `poll(2)` on the inotify descriptor between passes and drains every event at
//! once when it wakes. While it works, the kernel merges repeated events for the same file, so a
//! writer that appends line by line costs one wake-up per pass, not one per write. (With a
//! separate watcher thread, as the `notify` crate runs, each write woke that thread: 22 % of
//! lokiship's CPU at 10,000 lines/s in the end-to-end bench.)
//!
//! Without inotify (other platforms, `fs.inotify.max_user_instances` or `max_user_watches`
//! exhausted) the thread polls: it sleeps the poll period and looks at every file.

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct DirWatcher {
    inotify: Option<Inotify>,
    watched: HashSet<PathBuf>,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// Files written to since the last [`take_modified`](Self::take_modified).
    modified: HashSet<PathBuf>,
    buf: Vec<u8>,
    limit_reported: bool,
    /// At most this many watches (tests stand in for `fs.inotify.max_user_watches` with it).
    max_watches: usize,
    /// An eventfd that ends a [`wait`](Self::wait) early: the stop signal.
    wake: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

/// Ends the watcher's current (or next) wait from another thread.
#[derive(Clone)]
pub struct Waker(std::sync::Arc<std::os::fd::OwnedFd>);

impl Waker {
    pub fn wake(&self) {
        let _ = rustix::io::write(&*self.0, &1u64.to_ne_bytes());
    }
}

fn new_eventfd() -> Option<std::os::fd::OwnedFd> {
    use rustix::event::EventfdFlags;
    rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok()
}

impl DirWatcher {
    pub fn new() -> Self {
        let inotify = match Inotify::init() {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "cannot use inotify; polling files instead");
                None
            }
        };
        Self {
            inotify,
            watched: HashSet::new(),
            dirs: HashMap::new(),
            modified: HashSet::new(),
            buf: vec![0; 16 * 1024],
            limit_reported: false,
            max_watches: usize::MAX,
            wake: new_eventfd().map(std::sync::Arc::new),
        }
    }

    /// What ends a wait from another thread; `None` where eventfd is missing (the wait then ends
    /// at its timeout).
    pub fn waker(&self) -> Option<Waker> {
        self.wake.clone().map(Waker)
    }

    /// Watches `dir` for new, removed, renamed and growing files (once; later calls do nothing).
    pub fn watch(&mut self, dir: &Path) {
        let Some(inotify) = &self.inotify else { return };
        if self.watched.contains(dir) {
            return;
        }
        let mask = WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MODIFY
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::CLOSE_WRITE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        let added = if self.watched.len() >= self.max_watches {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            inotify.watches().add(dir, mask)
        };
        match added {
            Ok(wd) => {
                self.watched.insert(dir.to_path_buf());
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                if !self.limit_reported {
                    self.limit_reported = true;
                    tracing::warn!(dir = %dir.display(), "inotify watch limit reached (fs.inotify.max_user_watches): polling the directories beyond it");
                }
            }
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot watch directory; it is polled")
            }
        }
    }

    /// Sleeps until a watched directory changes or `timeout` passes (zero: just looks), and says what
    /// changed.
    pub fn wait(&mut self, timeout: Duration) -> Change {
        use rustix::event::{PollFd, PollFlags};
        // The inotify descriptor and the wake-up eventfd, those of them there are.
        let mut pfds: Vec<PollFd<'_>> = Vec::with_capacity(2);
        if let Some(i) = &self.inotify {
            pfds.push(PollFd::new(i, PollFlags::IN));
        }
        let woken_at = self.wake.as_ref().map(|w| {
            pfds.push(PollFd::new(w, PollFlags::IN));
            pfds.len() - 1
        });
        let timeout = rustix::event::Timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let ready = rustix::event::poll(&mut pfds, Some(&timeout)).unwrap_or(0);
        let woken = woken_at.is_some_and(|at| !pfds[at].revents().is_empty());
        drop(pfds);
        if ready == 0 {
            return Change::Nothing;
        }
        if woken {
            if let Some(w) = &self.wake {
                // Resets the eventfd.
                let _ = rustix::io::read(w, &mut [0u8; 8]);
            }
            return Change::Nothing;
        }
        let Some(inotify) = &mut self.inotify else {
            return Change::Nothing;
        };
        // Drain everything queued: one wake-up stands for all of it.
        let structural = EventMask::CREATE
            | EventMask::DELETE
            | EventMask::MOVED_FROM
            | EventMask::MOVED_TO
            | EventMask::DELETE_SELF
            | EventMask::MOVE_SELF
            | EventMask::Q_OVERFLOW;
        let mut change = Change::Appended;
        while let Ok(events) = inotify.read_events(&mut self.buf) {
            let mut any = false;
            for event in events {
                any = true;
                if event.mask.intersects(structural) {
                    change = Change::Files;
                }
                if event.mask.contains(EventMask::MODIFY) {
                    if let (Some(dir), Some(name)) = (self.dirs.get(&event.wd), event.name) {
                        self.modified.insert(dir.join(name));
                    }
                }
                if event.mask.contains(EventMask::IGNORED) {
                    // The directory is gone: it is watched again if it comes back.
                    if let Some(dir) = self.dirs.remove(&event.wd) {
                        self.watched.remove(&dir);
                    }
                }
            }
            if !any {
                break;
            }
        }
        change
    }
}

impl DirWatcher {
    /// A watcher limited to `max` directories, like a low `fs.inotify.max_user_watches`.
    pub fn with_max_watches(max: usize) -> Self {
        Self {
            max_watches: max,
            ..Self::new()
        }
    }

    /// Whether changes to files directly in `dir` are reported (else they must be polled).
    pub fn covers(&self, dir: &Path) -> bool {
        self.inotify.is_some() && self.watched.contains(dir)
    }

    /// The files written to since the last call.
    pub fn take_modified(&mut self) -> HashSet<PathBuf> {
        std::mem::take(&mut self.modified)
    }
}

/// What a wake-up reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Timeout, or no inotify.
    Nothing,
    /// Files were written to.
    Appended,
    /// Files were created, renamed or deleted: look for rotations and new files now.
    Files,
}

impl Default for DirWatcher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn directories_beyond_the_watch_limit_are_left_to_polling() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let mut w = DirWatcher::with_max_watches(1);
        w.watch(a.path());
        w.watch(b.path());
        assert!(w.covers(a.path()));
        assert!(!w.covers(b.path()), "over the limit: polled");
        std::fs::write(b.path().join("x.log"), b"x\n").unwrap();
        assert_eq!(
            w.wait(Duration::from_millis(50)),
            Change::Nothing,
            "no events from the unwatched directory"
        );
    }

    #[test]
    fn tells_appends_from_new_and_renamed_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DirWatcher::new();
        w.watch(dir.path());
        assert_eq!(w.wait(Duration::from_millis(20)), Change::Nothing);
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"x\n").unwrap();
        assert_eq!(w.wait(Duration::from_secs(5)), Change::Files, "a new file");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for _ in 0..100 {
            use std::io::Write;
            f.write_all(b"y\n").unwrap();
        }
        let started = Instant::now();
        assert_eq!(w.wait(Duration::from_secs(5)), Change::Appended);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            w.take_modified().into_iter().collect::<Vec<_>>(),
            vec![path.clone()],
            "which file was written to"
        );
        assert_eq!(
            w.wait(Duration::ZERO),
            Change::Nothing,
            "all queued events were drained at once"
        );
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        assert_eq!(w.wait(Duration::from_secs(5)), Change::Files, "a rename");
    }
}
