//! The file source in-process: a temp dir, a sink that records what it is handed, and the source
//! driven step by step, so that each test fixes the order in which the source sees what happens
//! to the files (rename, create, copy, truncate, refill) between two of its looks. Each test
//! ends by stepping until every file is read, settled and closed, then asserts every line arrived
//! exactly once: nothing lost, nothing read twice.

use super::discover::PathGlob;
use super::positions::Positions;
use super::{FileSource, FileSourceConfig, Progress, Target, DEFAULT_MAX_LINE};
use crate::entry::ack::Ack;
use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::{Entry, Labels};
use crate::pipeline::Pipeline;
use crate::shutdown::StopSignal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records the lines it is handed; refuses them while paused (the clients' queues are full);
/// acknowledges them at once unless told to keep the acknowledgements.
#[derive(Default)]
struct RecordingSink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    lines: Vec<String>,
    paused: bool,
    keep_acks: bool,
    acks: Vec<Ack>,
}

impl EntrySink for RecordingSink {
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        let mut state = self.state.lock().unwrap();
        if state.paused {
            return Err(TrySendError::Full(entries));
        }
        for mut e in entries {
            state.lines.push(e.line);
            if let Some(ack) = e.ack.take() {
                if state.keep_acks {
                    state.acks.push(ack);
                } else {
                    ack.done();
                }
            }
        }
        Ok(())
    }

    fn wait_for_room(&self, _timeout: Duration) {}
}

impl RecordingSink {
    fn lines(&self) -> Vec<String> {
        self.state.lock().unwrap().lines.clone()
    }

    fn pause(&self, paused: bool) {
        self.state.lock().unwrap().paused = paused;
    }
}

/// A directory of log files and a file source following `pattern` in it.
struct Bench {
    dir: tempfile::TempDir,
    sink: Arc<RecordingSink>,
    source: FileSource,
}

impl Bench {
    fn new(pattern: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(RecordingSink::default());
        let source = source_in(dir.path(), pattern, sink.clone());
        Self { dir, sink, source }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Appends `lines` to `name` (created if missing).
    fn append(&self, name: &str, lines: &[String]) {
        append(&self.path(name), lines);
    }

    /// One look at the paths and the globs (rotations, new files), as after an inotify report.
    fn look(&mut self) {
        self.source.check_rotations();
        self.source.discover();
    }

    /// One pass over the open files: a chunk of each, as when inotify reports writes.
    fn read_pass(&mut self) -> bool {
        let mut read = false;
        for i in 0..self.source.tailers.len() {
            if let Ok(Progress::Read) = self.source.read_one(i) {
                read = true;
            }
        }
        read
    }

    /// Looks and reads until every file is read to its end, settled and (if moved) closed.
    fn run_until_quiet(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.look();
            let read = self.read_pass();
            if !read && self.source.all_done() {
                return;
            }
            assert!(Instant::now() < deadline, "the source never settled");
            // The source's own waits (a poll period after a rotation, a short file's fingerprint)
            // are measured in time: give them some.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every line of `expected` arrived exactly once, and nothing else.
    fn assert_each_once(&self, expected: &[String]) {
        let mut got = self.sink.lines();
        got.sort();
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(got, want, "lines lost or read twice");
    }
}

fn source_in(dir: &Path, pattern: &str, sink: Arc<RecordingSink>) -> FileSource {
    let positions = Arc::new(Positions::load(&dir.join("positions.yaml"), false, 1).unwrap());
    let glob = PathGlob::new(&format!("{}/{pattern}", dir.display()), None).unwrap();
    let config = FileSourceConfig {
        targets: vec![Target {
            glob,
            labels: Labels::new(),
            scrape: 0,
            decompression: None,
        }],
        scrapes: Vec::new(),
        pipelines: vec![Arc::new(Pipeline::empty())],
        sync_period: Duration::from_millis(10),
        poll_period: Duration::from_millis(10),
        max_line: DEFAULT_MAX_LINE,
        truncate_long_lines: false,
        readline: None,
        exit_at_eof: false,
        max_open_rotated: 8,
        client_labels: Vec::new(),
    };
    FileSource::new(config, positions, sink, StopSignal::never())
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

/// Lines `from..to`, audit-log sized: a few of them exceed the fingerprint.
fn lines(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{i:08}","verb":"get","user":{{"username":"system:node:n{i}"}}}}"#
            )
        })
        .collect()
}

fn all(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

/// copytruncate as logrotate does it: copy the file, then truncate the original in place.
fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[test]
fn rename_then_create_loses_nothing_whether_or_not_the_glob_matches_the_rotated_name() {
    for pattern in ["a.log", "a.log*"] {
        let mut b = Bench::new(pattern);
        let (first, late, new) = (lines(0, 3), lines(3, 5), lines(5, 7));
        b.append("a.log", &first);
        b.run_until_quiet();
        std::fs::rename(b.path("a.log"), b.path("a.log.1")).unwrap();
        // The writer still had the old file open: its last lines land in the rotated file.
        b.append("a.log.1", &late);
        b.append("a.log", &new);
        b.run_until_quiet();
        b.assert_each_once(&all(&[&first, &late, &new]));
    }
}

#[test]
fn a_file_replaced_by_rename_over_it_is_read_to_its_end() {
    let mut b = Bench::new("*.log");
    let (first, unread, new) = (lines(0, 3), lines(3, 6), lines(6, 8));
    b.append("a.log", &first);
    b.run_until_quiet();
    // Lines written, then the file replaced before the source looked: the old inode is unlinked
    // but still open, and still holds lines not read yet.
    b.append("a.log", &unread);
    b.append("a.log.new", &new);
    std::fs::rename(b.path("a.log.new"), b.path("a.log")).unwrap();
    b.run_until_quiet();
    b.assert_each_once(&all(&[&first, &unread, &new]));
}

/// copytruncate with the copy matched by the glob, the source seeing the steps in each order.
#[test]
fn copytruncate_in_every_order_the_source_can_see_it() {
    type Steps = fn(&mut Bench);
    let orders: [(&str, Steps); 4] = [
        ("copy seen, then truncation", |b| {
            copy(&b.path("a.log"), &b.path("a.log.1"));
            b.look();
            b.read_pass();
            truncate(&b.path("a.log"));
            b.read_pass();
        }),
        ("truncation read before the copy is found", |b| {
            copy(&b.path("a.log"), &b.path("a.log.1"));
            truncate(&b.path("a.log"));
            b.read_pass();
            b.look();
        }),
        ("copy and truncation in one look", |b| {
            copy(&b.path("a.log"), &b.path("a.log.1"));
            truncate(&b.path("a.log"));
            b.look();
        }),
        (
            "refilled past the old offset before the source looked",
            |b| {
                copy(&b.path("a.log"), &b.path("a.log.1"));
                truncate(&b.path("a.log"));
                b.append("a.log", &lines(100, 110));
            },
        ),
    ];
    for (order, steps) in orders {
        let mut b = Bench::new("a.log*");
        let (read, unread, after) = (lines(0, 4), lines(4, 6), lines(6, 8));
        b.append("a.log", &read);
        b.run_until_quiet();
        // Written after the last read: only the copy holds these once the original is truncated.
        b.append("a.log", &unread);
        steps(&mut b);
        b.append("a.log", &after);
        b.run_until_quiet();
        let mut expected = all(&[&read, &unread]);
        if order.starts_with("refilled") {
            expected.extend(lines(100, 110));
        }
        expected.extend(after);
        let mut got = b.sink.lines();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{order}: lines lost or read twice");
    }
}

#[test]
fn truncated_and_refilled_while_the_queues_were_full_reads_the_new_content() {
    for pattern in ["a.log", "a.log*"] {
        let mut b = Bench::new(pattern);
        let (read, held) = (lines(0, 4), lines(4, 6));
        b.append("a.log", &read);
        b.run_until_quiet();
        b.sink.pause(true);
        b.append("a.log", &held);
        b.read_pass(); // read, but the queues had no room: the tailer keeps them
        copy(&b.path("a.log"), &b.path("a.log.1"));
        truncate(&b.path("a.log"));
        // Refilled past where reading stopped: the size alone does not show the truncation.
        let refill = lines(10, 20);
        b.append("a.log", &refill);
        b.look();
        b.read_pass();
        b.sink.pause(false);
        b.run_until_quiet();
        b.assert_each_once(&all(&[&read, &held, &refill]));
    }
}

#[test]
fn rotated_while_the_queues_were_full_is_still_read_to_its_end() {
    let mut b = Bench::new("a.log");
    let (first, unread, new) = (lines(0, 3), lines(3, 40), lines(40, 42));
    b.append("a.log", &first);
    b.run_until_quiet();
    b.sink.pause(true);
    b.append("a.log", &unread);
    b.read_pass();
    std::fs::rename(b.path("a.log"), b.path("a.log.1")).unwrap();
    b.append("a.log", &new);
    for _ in 0..5 {
        b.look();
        b.read_pass();
    }
    b.sink.pause(false);
    b.run_until_quiet();
    b.assert_each_once(&all(&[&first, &unread, &new]));
}

#[test]
fn a_deleted_file_ships_its_last_line_even_without_a_newline() {
    let mut b = Bench::new("*.log");
    let complete = lines(0, 3);
    b.append("a.log", &complete);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(b.path("a.log"))
        .unwrap();
    f.write_all(b"half a line").unwrap();
    b.run_until_quiet();
    assert_eq!(
        b.sink.lines(),
        complete,
        "the last line waits for its newline"
    );
    std::fs::remove_file(b.path("a.log")).unwrap();
    // The writer finishes the line through its open descriptor, then stops for good.
    f.write_all(b", finished").unwrap();
    drop(f);
    b.run_until_quiet();
    let mut expected = complete.clone();
    expected.push("half a line, finished".into());
    assert_eq!(b.sink.lines(), expected);
    assert!(b.source.tailers.is_empty(), "the deleted file was closed");
}

#[test]
fn a_restart_resumes_at_the_acknowledged_position_and_resends_what_was_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    let (acked, unacked, later) = (lines(0, 3), lines(3, 5), lines(5, 7));
    append(&log, &acked);
    let sink = Arc::new(RecordingSink::default());
    let mut first = source_in(dir.path(), "*.log", sink.clone());
    first.discover();
    first.read_one(0).ok();
    assert_eq!(sink.lines(), acked);
    sink.state.lock().unwrap().keep_acks = true;
    append(&log, &unacked);
    first.read_one(0).ok();
    first.positions.save().unwrap();
    // Stopped (or killed) with the last lines read but not delivered.
    drop(first);
    sink.state
        .lock()
        .unwrap()
        .acks
        .drain(..)
        .for_each(Ack::abandon);
    append(&log, &later);

    let sink = Arc::new(RecordingSink::default());
    let mut b = Bench {
        source: source_in(dir.path(), "*.log", sink.clone()),
        dir,
        sink,
    };
    b.run_until_quiet();
    b.assert_each_once(&all(&[&unacked, &later]));
}
