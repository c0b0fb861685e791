//! The journal job's loop: one `journalctl` run after another, each read to its end.

use super::command::{Invocation, Start};
use super::entries::{self, Skip};
use super::record::{Broken, Record};
use super::JournalSource;
use crate::entry::sink::TrySendError;
use crate::entry::Entry;
use crate::metrics::metrics;
use crate::metrics::os::{ErrorLabels, JobReasonLabels};
use crate::pipeline::Processing;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Entries handed to the sink at once, at most (fewer when journalctl has printed no more yet).
const CHUNK: usize = 1024;
/// An entry larger than this is skipped (counted as `too_long`), not held in memory whole.
const MAX_RECORD: usize = 16 << 20;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long was healthy: the next failure waits [`FIRST_BACKOFF`] again. (Not "a run that
/// printed something": a journalctl that prints a few entries and fails would then be restarted
/// every second.)
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Lines of journalctl's stderr logged per run; the last is kept for the error either way.
const STDERR_LINES_LOGGED: usize = 5;

/// How a run ended.
enum End {
    /// lokiship is stopping.
    Stopped,
    /// The clients are gone.
    SinkClosed,
    /// journalctl could not be started.
    SpawnFailed(std::io::Error),
    /// journalctl ended by itself (at the end of the journal when not following).
    Exited(std::io::Result<ExitStatus>),
}

struct Outcome {
    end: End,
    /// Records journalctl printed in this run.
    records: u64,
    /// The cursor of the last of them.
    last_cursor: Option<String>,
    /// The last line journalctl wrote to stderr.
    stderr: Option<String>,
}

impl JournalSource {
    pub(super) fn run(mut self) {
        let running: Arc<Mutex<Option<u32>>> = Arc::default();
        {
            // A stop ends the current run: journalctl is killed and its output ends.
            let running = running.clone();
            self.stop.on_stop(Box::new(move || {
                if let Some(pid) = *running.lock().unwrap_or_else(|e| e.into_inner()) {
                    // A child this source started and has not reaped yet.
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                    }
                }
            }));
        }
        let mut resume = self.ledger.committed();
        let mut numbered = self.ledger.tracker().committed();
        let mut backoff = FIRST_BACKOFF;
        // A node without a journal (yet) is said once, not at every retry.
        let mut said_no_journal = false;
        while !self.stop.is_stopped() {
            let start = Start::choose(resume.as_deref(), self.job.max_age, SystemTime::now());
            let began = std::time::Instant::now();
            let outcome = self.run_once(&start, &running, &mut numbered);
            if began.elapsed() >= HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            if let Some(c) = &outcome.last_cursor {
                resume = Some(c.clone());
            }
            if outcome.records > 0 {
                said_no_journal = false;
            }
            let reason = match &outcome.end {
                End::Stopped | End::SinkClosed => return,
                End::Exited(Ok(status)) if status.success() && !self.follow => return,
                End::SpawnFailed(_) => "spawn_failed",
                End::Exited(_) if outcome.records == 0 && no_journal(outcome.stderr.as_deref()) => {
                    backoff = MAX_BACKOFF;
                    if std::mem::replace(&mut said_no_journal, true) {
                        self.count_restart("no_journal");
                    } else {
                        self.report("no_journal", &outcome, backoff);
                    }
                    if !self.follow || self.stop.wait(backoff) {
                        return;
                    }
                    continue;
                }
                End::Exited(_)
                    if matches!(start, Start::AfterCursor(_)) && outcome.records == 0 =>
                {
                    // journalctl seeks to the cursor first: a run that failed before printing
                    // anything could not use it (a cursor of another journal, or damaged).
                    resume = None;
                    "cursor_rejected"
                }
                End::Exited(_) => "exited",
            };
            self.report(reason, &outcome, backoff);
            if !self.follow || self.stop.wait(backoff) {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Counts a restart of journalctl (`lokiship_journal_restarts_total{job,reason}`).
    fn count_restart(&self, reason: &str) {
        metrics()
            .os
            .journal_restarts
            .get_or_create(&JobReasonLabels {
                job: self.job.job.clone(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Says why journalctl stopped and counts it.
    fn report(&self, reason: &str, outcome: &Outcome, backoff: Duration) {
        self.count_restart(reason);
        if reason == "no_journal" {
            tracing::warn!(
                job = %self.job.job,
                path = %self.job.path,
                stderr = outcome.stderr.as_deref().unwrap_or(""),
                retry_every = ?backoff,
                "no journal to read (yet): journalctl finds no journal files; looking again quietly (a node that keeps its journal in memory only has it in /run/log/journal)"
            );
            return;
        }
        let status = match &outcome.end {
            End::SpawnFailed(e) => format!("cannot run journalctl: {e} (the journal source needs journalctl on the host or in the image)"),
            End::Exited(Ok(status)) => format!("journalctl ended: {status}"),
            End::Exited(Err(e)) => format!("journalctl ended: {e}"),
            End::Stopped | End::SinkClosed => String::new(),
        };
        tracing::error!(
            job = %self.job.job,
            reason,
            records = outcome.records,
            stderr = outcome.stderr.as_deref().unwrap_or(""),
            retry_in = ?backoff,
            "{status}"
        );
    }

    /// One journalctl run from `start`, read to its end.
    fn run_once(
        &mut self,
        start: &Start,
        running: &Mutex<Option<u32>>,
        numbered: &mut u64,
    ) -> Outcome {
        let mut outcome = Outcome {
            end: End::Stopped,
            records: 0,
            last_cursor: None,
            stderr: None,
        };
        let mut child = match self.start_journalctl(start) {
            Ok(child) => child,
            Err(e) => {
                outcome.end = End::SpawnFailed(e);
                return outcome;
            }
        };
        *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(child.id());
        if self.stop.is_stopped() {
            let _ = child.kill();
        }
        let stderr = child.stderr.take().map(spawn_stderr_reader);
        let stdout = child.stdout.take();
        let read_end = match stdout {
            Some(out) => self.read_records(out, numbered, &mut outcome),
            None => None,
        };
        // journalctl closed its output: it is exiting (or was killed); reap it.
        *running.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let status = child.wait();
        outcome.stderr = stderr.and_then(|h| h.join().ok()).flatten();
        outcome.end = match read_end {
            Some(end) => end,
            None if self.stop.is_stopped() => End::Stopped,
            None => End::Exited(status),
        };
        outcome
    }

    fn start_journalctl(&self, start: &Start) -> std::io::Result<Child> {
        let invocation = Invocation {
            path: self.job.path.clone(),
            matches: self.job.matches.clone(),
            follow: self.follow,
            start: start.clone(),
        };
        let is_file = !self.job.path.is_empty() && std::path::Path::new(&self.job.path).is_file();
        tracing::info!(job = %self.job.job, start = ?start, "reading the journal");
        Command::new(&self.program)
            .args(invocation.args(is_file))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    }

    /// Reads journalctl's records and ships them, chunk by chunk; `Some(end)` if the run must end
    /// for a reason of lokiship's (stopping, no clients), `None` at the end of the output.
    fn read_records(
        &mut self,
        out: impl Read,
        numbered: &mut u64,
        outcome: &mut Outcome,
    ) -> Option<End> {
        let mut reader = BufReader::with_capacity(256 << 10, out);
        let mut line = Vec::new();
        let mut chunk: Vec<Entry> = Vec::new();
        let mut processed: Vec<Processing> = Vec::new();
        loop {
            let (parsed, at_end) = match Record::read_export(&mut reader, &mut line, MAX_RECORD) {
                Ok(Some(parsed)) => (Some(parsed), false),
                Ok(None) => (None, true),
                Err(e) => {
                    tracing::warn!(job = %self.job.job, error = %e, "reading journalctl's output");
                    (None, true)
                }
            };
            if let Some(parsed) = parsed {
                *numbered += 1;
                outcome.records += 1;
                let cursor = self.one_record(parsed, *numbered, &mut processed);
                chunk.extend(processed.drain(..).map(Processing::into_entry));
                if cursor.is_some() {
                    outcome.last_cursor = cursor;
                }
            }
            // Ship when journalctl has printed nothing more for now, or the chunk is full.
            if at_end || reader.buffer().is_empty() || chunk.len() >= CHUNK {
                if at_end {
                    self.job.pipeline.flush(true, &mut processed);
                    chunk.extend(processed.drain(..).map(Processing::into_entry));
                }
                if let Some(c) = &outcome.last_cursor {
                    self.ledger.read_up_to(*numbered, c.clone());
                }
                if let Some(end) = self.hand_over(std::mem::take(&mut chunk)) {
                    return Some(end);
                }
            }
            if at_end {
                return None;
            }
        }
    }

    /// Record number `n` through the pipeline into `out`; its cursor.
    fn one_record(
        &self,
        parsed: Result<Record, Broken>,
        n: u64,
        out: &mut Vec<Processing>,
    ) -> Option<String> {
        let ack = self.ledger.tracker().register(n);
        let m = &metrics().os;
        m.journal_lines.inc();
        let skip = |error: &str| {
            m.journal_errors
                .get_or_create(&ErrorLabels {
                    error: error.to_string(),
                })
                .inc();
        };
        let record = match parsed {
            Ok(r) => r,
            Err(Broken::TooLong) => {
                skip("too_long");
                tracing::warn!(job = %self.job.job, max = MAX_RECORD, "journal entry larger than the bound; skipped");
                ack.done_all();
                return None;
            }
            Err(Broken::Garbage(what)) => {
                skip("invalid_record");
                tracing::warn!(job = %self.job.job, line = %what, "journalctl printed something that is no journal entry; skipped");
                ack.done_all();
                return None;
            }
        };
        match entries::to_processing(&self.job, &record, crate::entry::now_ns()) {
            Ok(mut p) => {
                p.ack = Some(ack);
                self.job.pipeline.run(p, out);
            }
            Err(why) => {
                skip(why.reason());
                if why == Skip::EmptyLabels {
                    tracing::debug!(job = %self.job.job, "journal record without labels after relabeling; skipped");
                }
                ack.done_all();
            }
        }
        record.cursor
    }

    /// Hands `entries` to the sink, waiting for room; `Some(end)` if that cannot be.
    fn hand_over(&self, mut entries: Vec<Entry>) -> Option<End> {
        if entries.is_empty() {
            return None;
        }
        loop {
            match self.sink.try_send(entries) {
                Ok(()) => return None,
                Err(TrySendError::Full(back)) => {
                    if self.stop.is_stopped() {
                        abandon(back);
                        return Some(End::Stopped);
                    }
                    entries = back;
                    self.sink.wait_for_room(Duration::from_millis(100));
                }
                Err(TrySendError::Closed) => return Some(End::SinkClosed),
            }
        }
    }
}

/// Entries not handed over because lokiship is stopping: read again at the next start.
fn abandon(entries: Vec<Entry>) {
    for e in entries {
        if let Some(ack) = e.ack {
            ack.abandon();
        }
    }
}

/// Reads journalctl's stderr on a thread: the first lines are logged, the last is returned.
fn spawn_stderr_reader(err: impl Read + Send + 'static) -> std::thread::JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let mut last = None;
        let reader = BufReader::new(err.take(64 << 20));
        for (i, line) in reader.split(b'\n').enumerate() {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if text.is_empty() {
                continue;
            }
            if i < STDERR_LINES_LOGGED {
                tracing::warn!(stderr = %text, "journalctl");
            }
            last = Some(text);
        }
        last
    })
}

/// Whether journalctl's last error says there is no journal to read: a directory without
/// journal files (or none at all) — a node without a persistent journal, not a failure.
fn no_journal(stderr: Option<&str>) -> bool {
    stderr.is_some_and(|e| {
        e.contains("No journal files were found")
            || e.contains("No such boot ID in journal")
            || (e.starts_with("Failed to open") && e.contains("No such file or directory"))
    })
}
