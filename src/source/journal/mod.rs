//! `journal`: the systemd journal, read through `journalctl` (see [`command`]).
//!
//! Each journal job runs on its own thread: it starts `journalctl --output=export --follow`, turns
//! each printed record into an entry ([`entries`]) and hands chunks of them to the sink. A full
//! queue stops the reading, and journalctl blocks on its pipe: the journal keeps the rest.
//!
//! The job's position is the cursor of the last record every client has ([`CursorLedger`]),
//! stored under Promtail's key `journal-<job_name>`, so a node that ran Promtail resumes where it
//! stopped, and a crash resumes after the last acknowledged record.
//!
//! When journalctl cannot be started, exits, or refuses the cursor, the job says why (the last
//! line journalctl printed to stderr), counts it in `lokiship_journal_restarts_total{job,reason}`
//! and starts it again after a backoff (1 s, doubling to 30 s, back to 1 s after a run that lasted a
//! minute): never a busy loop on a journal journalctl cannot read (Promtail's loki#4998). A run
//! restarts after the last cursor read, whose records are in the queues already; a refused cursor
//! is dropped, and the next run starts from `max_age` ago.

mod command;
mod entries;
mod record;
mod run;

pub use command::split_matches;

use crate::entry::sink::EntrySink;
use crate::pipeline::Pipeline;
use crate::shutdown::StopSignal;
use crate::source::cursor::CursorLedger;
use crate::source::relabel::Relabel;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

/// Promtail's default `max_age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 3600);

/// One `journal` scrape config, compiled.
#[derive(Clone)]
pub struct JournalJob {
    pub job: String,
    /// The line is every field as JSON instead of `MESSAGE`.
    pub json: bool,
    pub max_age: Duration,
    /// A journal directory or file; the system journal when empty.
    pub path: String,
    /// journalctl match terms.
    pub matches: Vec<String>,
    /// `journal.labels`, set on every entry before the relabel rules.
    pub labels: Vec<(String, String)>,
    pub relabel: Vec<Relabel>,
    pub pipeline: Arc<Pipeline>,
}

impl JournalJob {
    /// Promtail's positions key of this job's cursor.
    pub fn positions_key(&self) -> String {
        format!(
            "{}{}",
            crate::source::file::positions::CURSOR_PREFIX,
            self.job
        )
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            job: "journal".into(),
            json: false,
            max_age: DEFAULT_MAX_AGE,
            path: String::new(),
            matches: Vec::new(),
            labels: Vec::new(),
            relabel: Vec::new(),
            pipeline: Arc::new(Pipeline::empty()),
        }
    }
}

/// A journal job, ready to run on its thread.
pub struct JournalSource {
    job: JournalJob,
    /// Keep following the journal; or stop at its end (a dry run, `-exit-at-eof`).
    follow: bool,
    ledger: Arc<CursorLedger>,
    sink: Arc<dyn EntrySink>,
    stop: StopSignal,
    /// The program run: `journalctl`, found on `PATH`.
    program: OsString,
}

impl JournalSource {
    pub fn new(
        job: JournalJob,
        follow: bool,
        ledger: Arc<CursorLedger>,
        sink: Arc<dyn EntrySink>,
        stop: StopSignal,
    ) -> Self {
        Self {
            job,
            follow,
            ledger,
            sink,
            stop,
            program: "journalctl".into(),
        }
    }

    /// Runs the job on a thread of its own until stopped (or, not following, until the end of
    /// the journal).
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("journal-{}", self.job.job))
            .spawn(move || self.run())
    }
}
