//! One followed file: the per-file state machine of the file source. It owns what can happen to a
//! file between two looks — it grew, it was truncated, it is a copy of another, its path now holds
//! another file — and decides from that what to read; the file source only schedules the tailers,
//! runs what they read through the pipeline and hands it to the clients.
//!
//! Two independent states, both private:
//!
//! ```text
//!  content:   open (new, or truncated while not read)      open (known offset)
//!                      │                                         │
//!                      ▼          settled (copies.rs)            ▼
//!               ┌───────────┐ ─────────────────────────▶ ┌─────────┐
//!               │ Unsettled │                            │ Reading │
//!               └───────────┘ ◀───────────────────────── └─────────┘
//!                                truncated (copies.rs)
//!
//!  path:      AtPath ──(the path holds another file, or none)──▶ Moved{since} ──▶ finished
//!                        rotation.rs: read to the end for a poll period, nothing unsent
//! ```
//!
//! - **Unsettled** content is not read: it may be a copy of content already read (copytruncate).
//!   [`copies`] settles it against the [`Positions`] ledger and picks the offset and the tracker
//!   it continues with.
//! - **Reading**: before each read the file is checked for truncation ([`copies`]): smaller than
//!   the offset, or no longer starting with its first bytes; then it is unsettled again, from 0.
//! - **Moved** ([`rotation`]): the path was rotated away or deleted. The old descriptor is still
//!   read (a writer may finish its last lines) until it was at its end for a poll period.
//! - **Unsent** entries: what the clients' queues had no room for. While a tailer holds some it
//!   reads nothing more; they go first at its next turn.
//!
//! Lines are split by [`lines::LineReader`], which holds an incomplete last line until its newline.

mod copies;
pub mod lines;
mod rotation;

pub use lines::{LineEvent, READ_CHUNK};
pub use rotation::Look;

use super::compressed;
use super::identity::FileId;
use super::positions::{Opened, Positions};
use crate::entry::ack::AckTracker;
use crate::entry::{Entry, Labels};
use crate::metrics::status::FileStatus;
use lines::LineReader;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

pub struct Tailer {
    path: String,
    id: FileId,
    /// Index of the scrape config whose pipeline processes this file.
    scrape: usize,
    /// Labels of the target plus `filename`.
    labels: Labels,
    /// Its committed offset is the file's position.
    tracker: Arc<AckTracker>,
    reader: LineReader,
    content: Content,
    /// When the path was seen to point elsewhere (rotation) or to nothing (deletion).
    moved_since: Option<Instant>,
    /// The file's recorded fingerprint covers fewer bytes than it could; refreshed as the file grows.
    short_fingerprint: bool,
    /// Entries the clients' queues had no room for: sent before anything else is read.
    unsent: Option<Vec<Entry>>,
    /// The file's size when last looked at.
    seen_size: u64,
    /// The lag (size minus acknowledged offset) last published for this file.
    published_lag: Option<u64>,
    /// To be read at the next pass: inotify reported a write, or the last read did not reach the end.
    wanted: bool,
    /// inotify reports writes to this file (its directory is watched and the path is no symlink);
    /// other files are polled every poll period.
    watched: bool,
    /// The last read found the end of the file.
    at_eof: bool,
    /// No target matches it any more: nothing more is read, it is closed once drained.
    retired: bool,
}

/// Whether a tailer's content may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    Reading,
    /// New content, not read yet: it may be a copy of a file already read (copytruncate), which is
    /// settled first ([`copies`]). `since` is when the content was first seen; `size` is the
    /// size at the last look and when it was taken.
    Unsettled {
        since: Instant,
        size: Option<(u64, Instant)>,
    },
}

impl Content {
    fn unsettled() -> Self {
        Self::Unsettled {
            since: Instant::now(),
            size: None,
        }
    }
}

/// What the file source knows of a file it opens.
pub struct Opening {
    pub path: String,
    pub id: FileId,
    pub scrape: usize,
    pub labels: Labels,
    pub file: File,
    /// Read through this decoder (a compressed file).
    pub decompress: Option<compressed::Format>,
    /// inotify reports writes to it.
    pub watched: bool,
}

impl Tailer {
    /// Follows `opening.file` from where the ledger says (`opened`). New content (nothing of the
    /// file read before) starts unsettled, unless it is compressed (a compressed file never is a
    /// copytruncate copy).
    pub fn open(opening: Opening, opened: Opened) -> std::io::Result<Self> {
        let mut reader = LineReader::new(opening.file, opened.start)?;
        if let Some(format) = opening.decompress {
            reader.decompress(format)?;
        }
        let content = if opened.fresh && opening.decompress.is_none() {
            Content::unsettled()
        } else {
            Content::Reading
        };
        Ok(Self {
            path: opening.path,
            id: opening.id,
            scrape: opening.scrape,
            labels: opening.labels,
            tracker: opened.tracker,
            reader,
            content,
            moved_since: None,
            short_fingerprint: true,
            unsent: None,
            seen_size: 0,
            published_lag: None,
            wanted: true,
            watched: opening.watched,
            at_eof: false,
            retired: false,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn id(&self) -> FileId {
        self.id
    }

    pub fn scrape(&self) -> usize {
        self.scrape
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// Its scrape config moved to index `scrape` (a reload), with new labels when its config
    /// changed; what is read from now on goes through that scrape config's pipeline.
    pub fn reassign(&mut self, scrape: usize, labels: Option<Labels>) {
        self.scrape = scrape;
        if let Some(labels) = labels {
            self.labels = labels;
        }
    }

    /// No target matches it any more: nothing more is read of it.
    pub fn retired(&self) -> bool {
        self.retired
    }

    pub fn set_retired(&mut self, retired: bool) {
        self.retired = retired;
    }

    /// Registers the lines read, in order; acknowledged, they move the file's position.
    pub fn tracker(&self) -> &Arc<AckTracker> {
        &self.tracker
    }

    /// Offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// Read through a decoder: offsets are not file sizes, and the content never changes.
    pub fn is_compressed(&self) -> bool {
        self.reader.compressed()
    }

    /// The path holds another file, or none: this one is being finished.
    pub fn moved_since(&self) -> Option<Instant> {
        self.moved_since
    }

    /// Looked at every poll period, not only when inotify reports it: not watched, being
    /// finished after a rotation, being settled, or compressed.
    pub fn needs_poll(&self) -> bool {
        !self.watched
            || self.moved_since.is_some()
            || self.content != Content::Reading
            || self.is_compressed()
    }

    /// Whether the next pass should read it (inotify reported a write, or the last read did not
    /// reach the end).
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    pub fn set_wanted(&mut self, wanted: bool) {
        self.wanted = wanted;
    }

    /// Read to its end (as far as it knows), settled, at its path, nothing unsent.
    pub fn caught_up(&self) -> bool {
        self.moved_since.is_none() && self.unsent.is_none() && self.content == Content::Reading
    }

    /// Nothing of it is unsent or in flight: it can be closed without waiting.
    pub fn drained(&self) -> bool {
        self.unsent.is_none() && self.tracker.in_flight() == 0
    }

    pub fn has_unsent(&self) -> bool {
        self.unsent.is_some()
    }

    pub fn take_unsent(&mut self) -> Option<Vec<Entry>> {
        self.unsent.take()
    }

    /// Keeps entries the queues had no room for; nothing more is read until they are sent.
    pub fn keep_unsent(&mut self, entries: Vec<Entry>) {
        self.unsent = Some(entries);
    }

    /// Whether there is something to read now: settles new content and checks for truncation
    /// first ([`copies`]). A compressed file is read until its end, once.
    pub fn ready(&mut self, positions: &Positions) -> bool {
        if self.is_compressed() {
            return !self.at_eof;
        }
        let Ok(size) = self.reader.file().metadata().map(|m| m.len()) else {
            return false;
        };
        if self.truncated(positions, size) || !self.settle(positions, size) {
            return false;
        }
        size > self.reader.offset()
    }

    /// Reads up to `buf.len()` bytes and reports each complete line ([`LineReader::read`]).
    /// Returns the bytes read, 0 at the end of the file.
    pub fn read(
        &mut self,
        buf: &mut [u8],
        max_line: usize,
        truncate: bool,
        on_line: impl FnMut(LineEvent),
    ) -> std::io::Result<usize> {
        let n = self.reader.read(buf, max_line, truncate, on_line);
        self.at_eof = matches!(n, Ok(0) | Err(_));
        n
    }

    /// Reports the incomplete last line (bytes after the last newline) as a line: the file was
    /// moved and is finished, no writer will end it. Returns the bytes it held (0 without one).
    pub fn read_last_line(&mut self, on_line: impl FnMut(LineEvent)) -> usize {
        self.reader.take_partial(on_line)
    }

    /// Holds an incomplete last line (shipped when the file is finished after a rotation).
    pub fn has_partial(&self) -> bool {
        self.reader.has_partial()
    }

    /// The lag (size at the last look minus the acknowledged offset) when it changed since it was
    /// last asked for.
    pub fn lag_changed(&mut self) -> Option<u64> {
        let lag = self.seen_size.saturating_sub(self.tracker.committed());
        (self.published_lag != Some(lag)).then(|| {
            self.published_lag = Some(lag);
            lag
        })
    }

    /// What the status page (`/targets`) shows of it.
    pub fn status(&self) -> FileStatus {
        let state = if self.is_compressed() {
            if self.at_eof {
                "compressed: read"
            } else {
                "compressed: reading"
            }
        } else if self.moved_since.is_some() {
            "rotated: finishing"
        } else if self.unsent.is_some() {
            "waiting: the clients are full"
        } else if self.content != Content::Reading {
            "settling: a copytruncate copy?"
        } else if self.at_eof || self.offset() >= self.seen_size {
            "following"
        } else {
            "reading"
        };
        FileStatus {
            path: self.path.clone(),
            labels: self.labels.render(),
            state,
            size: self.seen_size.max(self.offset()),
            read: self.offset(),
            acknowledged: self.tracker.committed(),
        }
    }

    /// Bytes of the file not read into complete lines (lost if it is given up now).
    pub fn unread_bytes(&self) -> u64 {
        let size = self.reader.file().metadata().map(|m| m.len()).unwrap_or(0);
        size.saturating_sub(self.reader.line_end())
    }

    /// Closes the file; the ledger keeps its position (and, for a compressed file read to its end,
    /// that it is complete).
    pub fn close(self, positions: &Positions, complete: bool) {
        if complete {
            positions.close_complete(self.id, self.reader.line_end());
        } else {
            positions.close(self.id, self.reader.line_end());
        }
    }

    /// Continues at `offset` with `tracker` (the caller says whether the content is settled); the
    /// fingerprint is refreshed again as the file grows.
    fn restart_at(&mut self, offset: u64, tracker: Arc<AckTracker>) -> std::io::Result<()> {
        self.reader.restart_at(offset)?;
        self.tracker = tracker;
        self.short_fingerprint = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A compressed file whose first lines were delivered before a restart continues after them:
    /// the recorded offset counts decompressed bytes, not the file's.
    #[test]
    fn a_compressed_file_resumes_after_the_lines_already_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log.1.gz");
        let content: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(content.as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let delivered = content.find("line 20\n").unwrap() as u64;

        let file = File::open(&path).unwrap();
        let id = FileId::of(&file.metadata().unwrap());
        let opening = Opening {
            path: path.display().to_string(),
            id,
            scrape: 0,
            labels: Labels::new(),
            file,
            decompress: Some(compressed::Format::Gzip),
            watched: false,
        };
        let opened = Opened {
            start: delivered,
            tracker: AckTracker::new(delivered, 1),
            fresh: false,
        };
        let mut t = Tailer::open(opening, opened).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; READ_CHUNK];
        while t
            .read(&mut buf, 1024, false, |e| {
                if let LineEvent::Line { bytes, .. } = e {
                    got.push(String::from_utf8_lossy(bytes).into_owned());
                }
            })
            .unwrap()
            > 0
        {}
        let want: Vec<String> = (20..50).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want);
    }
}
