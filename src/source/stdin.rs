//! Standard input as a source (`-stdin`, Promtail's flag): `kubectl logs … | lokiship -stdin`.
//!
//! Each line goes through one job's pipeline with that job's labels, timestamped when it is read;
//! an empty line is skipped and a last line without a newline is shipped at the end of input, as
//! Promtail does. Lines of a pipe cannot be read again, so there is no position: the run waits at
//! the end of input until every line is delivered, and what was not ([`StdinSource::spawn`]'s
//! tracker) makes the exit code. The descriptor is polled before each read, so that a stop is
//! not stuck in `read(2)` on a quiet pipe.

use crate::entry::ack::AckTracker;
use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::{Entry, Labels};
use crate::pipeline::{Pipeline, Processing};
use crate::shutdown::StopSignal;
use crate::source::file::chunk::{count_read, Chunk, Counts};
use crate::source::file::tailer::lines::{LineEvent, LineReader, READ_CHUNK};
use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

/// The `path` standard input's lines are counted under (`promtail_read_lines_total{path="-"}`).
pub const PATH: &str = "-";

/// How long a read waits for input before it looks whether lokiship is stopping.
const POLL: Duration = Duration::from_millis(200);

/// What standard input's lines become: one job's labels and pipeline.
pub struct StdinJob {
    pub job: String,
    pub labels: Labels,
    pub pipeline: Arc<Pipeline>,
}

/// Standard input read to its end.
pub struct StdinSource {
    pub job: StdinJob,
    /// A descriptor of standard input (or, in tests, of a pipe).
    pub input: File,
    pub max_line: usize,
    pub truncate_long_lines: bool,
    /// `(host, tenant)` of each client, for the counts of lines over `max_line`.
    pub client_labels: Vec<(String, String)>,
    pub sink: Arc<dyn EntrySink>,
    pub stop: StopSignal,
}

/// Why reading ended.
enum End {
    /// The input ended (or cannot be read any more).
    Input,
    /// lokiship is stopping, or the clients are gone.
    Stopped,
}

impl StdinSource {
    /// Reads on a thread of its own until the input ends or lokiship stops. The tracker counts
    /// the lines read and acknowledges them as the clients deliver them (or drop them for good):
    /// what is still in flight once the clients have finished was not delivered.
    pub fn spawn(
        self,
        clients: u32,
    ) -> std::io::Result<(std::thread::JoinHandle<()>, Arc<AckTracker>)> {
        let tracker = AckTracker::new(0, clients);
        let reading = tracker.clone();
        // Read through a second descriptor of the same input; `input` is the one polled.
        let reader = LineReader::stream(self.input.try_clone()?);
        let thread = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || self.run(reader, &reading))?;
        Ok((thread, tracker))
    }

    fn run(self, mut reader: LineReader, tracker: &Arc<AckTracker>) {
        let mut buf = vec![0u8; READ_CHUNK];
        let end = loop {
            match wait_readable(&self.input, &self.stop) {
                Readable::Yes => {}
                Readable::Stopping => break End::Stopped,
                Readable::Failed(e) => {
                    tracing::error!(error = %e, "cannot wait for standard input; reading ends");
                    break End::Input;
                }
            }
            let mut chunk = self.chunk(tracker);
            let read = reader.read(&mut buf, self.max_line, self.truncate_long_lines, |e| {
                keep_non_empty(e, &mut chunk)
            });
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "reading standard input failed; reading ends");
                    crate::metrics::file_error("read");
                    0
                }
            };
            if n == 0 {
                reader.take_partial(|e| keep_non_empty(e, &mut chunk));
                self.job.pipeline.flush(true, &mut chunk.processed);
                chunk
                    .entries
                    .extend(chunk.processed.drain(..).map(Processing::into_entry));
            }
            if !self.ship(n, chunk) {
                break End::Stopped;
            }
            if n == 0 {
                break End::Input;
            }
        };
        let lines = tracker.committed() + tracker.in_flight() as u64;
        match end {
            End::Input => tracing::info!(lines, "end of standard input"),
            End::Stopped => tracing::info!(lines, "stopped reading standard input"),
        }
    }

    /// An empty chunk of standard input's lines.
    fn chunk<'a>(&'a self, tracker: &Arc<AckTracker>) -> Chunk<'a> {
        Chunk {
            pipeline: &self.job.pipeline,
            labels: self.job.labels.clone(),
            tracker: tracker.clone(),
            limiter: None,
            readline_drop: false,
            now: crate::entry::now_ns(),
            counts: Counts::default(),
            entries: Vec::new(),
            processed: Vec::new(),
        }
    }

    /// Counts what one read did and hands its entries over, waiting for room; `false` when they
    /// cannot be handed over (stopping, or no clients).
    fn ship(&self, bytes: usize, chunk: Chunk) -> bool {
        count_read(
            PATH,
            bytes as u64,
            &chunk.counts,
            self.max_line,
            &self.client_labels,
        );
        self.hand_over(chunk.entries)
    }

    fn hand_over(&self, mut entries: Vec<Entry>) -> bool {
        while !entries.is_empty() {
            match self.sink.try_send(entries) {
                Ok(()) => return true,
                Err(TrySendError::Full(back)) if !self.stop.is_stopped() => {
                    entries = back;
                    self.sink.wait_for_room(Duration::from_millis(100));
                }
                Err(TrySendError::Full(back)) => {
                    // Not delivered: counted as such by the tracker when the run ends.
                    back.into_iter()
                        .filter_map(|e| e.ack)
                        .for_each(|a| a.abandon());
                    return false;
                }
                Err(TrySendError::Closed) => return false,
            }
        }
        true
    }
}

/// Hands `event` to the chunk unless it is an empty line, which Promtail does not ship either.
fn keep_non_empty(event: LineEvent, chunk: &mut Chunk) {
    if !matches!(event, LineEvent::Line { bytes: [], .. }) {
        chunk.line(event);
    }
}

enum Readable {
    Yes,
    Stopping,
    Failed(std::io::Error),
}

/// Waits until `input` can be read (data, its end, or an error to read) or lokiship stops.
fn wait_readable(input: &File, stop: &StopSignal) -> Readable {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: POLL.as_secs() as i64,
        tv_nsec: i64::from(POLL.subsec_nanos()),
    };
    loop {
        if stop.is_stopped() {
            return Readable::Stopping;
        }
        let mut fds = [PollFd::new(input, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => return Readable::Yes,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Readable::Failed(e.into()),
        }
    }
}
