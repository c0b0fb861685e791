//! Following one container: its inspection (a TTY or not), then its log stream from its position,
//! decoded ([`super::frames`]) and handed to the sink chunk by chunk. When the stream ends (the
//! container stopped) the task ends; the next listing that finds the container running starts it
//! again from the last line read.

use super::api::Api;
use super::discover::Target;
use super::frames::{Decoder, Fault, Line, Stream};
use super::{count_error, DockerJob, MAX_JOINED_LINE};
use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::{Entry, Labels};
use crate::metrics::metrics;
use crate::pipeline::Processing;
use crate::shutdown::StopSignal;
use crate::source::cursor::CursorLedger;
use http_body_util::BodyExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A line Docker cut waits this long for its rest before it is shipped as it is.
const PARTIAL_WAIT: Duration = Duration::from_secs(1);
/// Entries handed to the sink at once, at most.
const CHUNK: usize = 1024;
/// A container's task gone this long after it was let go is cut short.
const FINISH_GRACE: Duration = Duration::from_secs(5);

/// What every container's task of one job shares.
pub(super) struct Shared {
    pub job: DockerJob,
    pub api: tokio::sync::OnceCell<Api>,
    pub sink: Arc<dyn EntrySink>,
    pub stop: StopSignal,
    pub follow: bool,
}

/// A container's position: the time of a line, `precise` when written with nanoseconds
/// (lokiship's), not whole seconds (Promtail's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub ns: i64,
    pub precise: bool,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        match text.split_once('.') {
            Some((secs, frac)) => {
                let secs: i64 = secs.parse().ok()?;
                if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let nanos: i64 = format!("{frac:0<9}").parse().ok()?;
                Some(Self {
                    ns: secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
                    precise: true,
                })
            }
            None => Some(Self {
                ns: text.parse::<i64>().ok()?.checked_mul(1_000_000_000)?,
                precise: false,
            }),
        }
    }

    /// As stored, and as the daemon's `since` takes it.
    pub fn text(&self) -> String {
        let (secs, nanos) = (
            self.ns.div_euclid(1_000_000_000),
            self.ns.rem_euclid(1_000_000_000),
        );
        if self.precise {
            format!("{secs}.{nanos:09}")
        } else {
            secs.to_string()
        }
    }
}

/// Where a container's reading is, across the runs of its stream.
#[derive(Default)]
struct Progress {
    /// The last line read in this process (in the queues already, delivered or not).
    last_read: Option<Cursor>,
    /// Lines numbered so far, for the ledger.
    numbered: u64,
}

/// The labels of each of a container's streams after relabeling; `None`: dropped by a rule.
struct StreamLabels {
    stdout: Option<Labels>,
    stderr: Option<Labels>,
}

impl StreamLabels {
    fn of(job: &DockerJob, target: &Target) -> Self {
        let one = |stream: Stream| {
            let mut all = target.labels.clone();
            all.insert(
                "__meta_docker_container_log_stream".to_string(),
                stream.name().to_string(),
            );
            if !crate::source::relabel::apply(&job.relabel, &mut all) {
                return None;
            }
            let mut labels = Labels::new();
            for (name, value) in all {
                if !name.starts_with("__") {
                    labels.insert(&name, value);
                }
            }
            Some(labels)
        };
        Self {
            stdout: one(Stream::Stdout),
            stderr: one(Stream::Stderr),
        }
    }

    fn get(&self, stream: Stream) -> Option<&Labels> {
        match stream {
            Stream::Stdout => self.stdout.as_ref(),
            Stream::Stderr => self.stderr.as_ref(),
        }
    }
}

/// One container being followed.
pub(super) struct Followed {
    id: String,
    inner: Arc<Container>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Container {
    id: String,
    labels: StreamLabels,
    ledger: Arc<CursorLedger>,
    progress: Mutex<Progress>,
}

impl Followed {
    /// Starts following `target`; a container whose every stream a rule drops is not read.
    pub fn start(shared: &Arc<Shared>, target: Target, ledger: Arc<CursorLedger>) -> Self {
        let labels = StreamLabels::of(&shared.job, &target);
        let inner = Arc::new(Container {
            id: target.id.clone(),
            labels,
            ledger,
            progress: Mutex::new(Progress::default()),
        });
        let mut f = Self {
            id: target.id,
            inner,
            task: None,
        };
        if f.inner.labels.stdout.is_none() && f.inner.labels.stderr.is_none() {
            tracing::debug!(job = %shared.job.job, container = %f.id, "every stream of the container is dropped by relabeling; not read");
            return f;
        }
        tracing::info!(job = %shared.job.job, container = %f.id, "following docker container");
        f.spawn(shared);
        f
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts the stream again if it ended (the container was stopped and started).
    pub fn restart_if_ended(&mut self, shared: &Arc<Shared>) {
        if self.task.as_ref().is_some_and(|t| t.is_finished()) {
            tracing::info!(job = %shared.job.job, container = %self.id, "container running again; following its logs");
            self.spawn(shared);
        }
    }

    fn spawn(&mut self, shared: &Arc<Shared>) {
        let (shared, inner) = (shared.clone(), self.inner.clone());
        self.task = Some(tokio::spawn(
            async move { read_stream(&shared, &inner).await },
        ));
    }

    /// Lets the container go: its task hands over what it read and ends (`to_the_end`: however
    /// long that takes, for a run that reads each container to its end).
    pub async fn finish(self, to_the_end: bool) {
        if let Some(mut task) = self.task {
            if to_the_end {
                let _ = task.await;
            } else if tokio::time::timeout(FINISH_GRACE, &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

/// The daemon's inspection, the part read.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Inspection {
    config: InspectedConfig,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectedConfig {
    tty: bool,
}

/// One run of the container's log stream, to its end or the stop.
async fn read_stream(shared: &Shared, c: &Container) {
    let job = &shared.job.job;
    let Some(api) = shared.api.get() else { return };
    let inspection: Inspection = match api.get_json(&format!("/containers/{}/json", c.id)).await {
        Ok(i) => i,
        Err(e) => {
            count_error(job, "inspect");
            tracing::warn!(job = %job, container = %c.id, error = %e, "cannot inspect the container; trying again at the next refresh");
            return;
        }
    };
    let start = {
        let progress = lock(&c.progress);
        progress
            .last_read
            .or_else(|| c.ledger.committed().as_deref().and_then(Cursor::parse))
    };
    let since = start.map_or_else(|| "0".to_string(), |s| s.text());
    let mut body = match api.logs(&c.id, &since, shared.follow).await {
        Ok(b) => b,
        Err(e) => {
            count_error(job, "logs");
            tracing::warn!(job = %job, container = %c.id, error = %e, "cannot read the container's logs; trying again at the next refresh");
            return;
        }
    };
    // What a precise position says was read already: the daemon sends the lines of `since` too.
    let skip_through = start.filter(|s| s.precise).map(|s| s.ns);
    let mut decoder = Decoder::new(inspection.config.tty, MAX_JOINED_LINE);
    let mut reader = Reader {
        shared,
        container: c,
        processed: Vec::new(),
        chunk: Vec::new(),
        skip_through,
    };
    loop {
        let wait = if decoder.holds_partial() {
            PARTIAL_WAIT
        } else {
            Duration::from_secs(3600)
        };
        let next = tokio::select! {
            _ = shared.stop.stopped() => break,
            next = tokio::time::timeout(wait, body.frame()) => next,
        };
        let ended = match next {
            Err(_) => {
                decoder.flush();
                false
            }
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    decoder.push(data);
                }
                false
            }
            Ok(Some(Err(e))) => {
                count_error(job, "stream");
                tracing::warn!(job = %job, container = %c.id, error = %e, "the container's log stream broke; reading again at the next refresh");
                true
            }
            Ok(None) => true,
        };
        if ended {
            decoder.flush();
        }
        if !reader.take(&mut decoder, ended).await || ended {
            break;
        }
    }
}

/// A run's entries on their way to the sink.
struct Reader<'a> {
    shared: &'a Shared,
    container: &'a Container,
    processed: Vec<Processing>,
    chunk: Vec<Entry>,
    skip_through: Option<i64>,
}

impl Reader<'_> {
    /// Takes the decoded lines through the pipeline and hands them over; `false` when the sink
    /// cannot take them (stopping, or no clients).
    async fn take(&mut self, decoder: &mut Decoder, at_end: bool) -> bool {
        let mut last: Option<(u64, Cursor)> = None;
        while let Some(decoded) = decoder.next_line() {
            match decoded {
                Ok(line) => {
                    if self.skip_through.is_some_and(|s| line.timestamp_ns <= s) {
                        continue;
                    }
                    self.skip_through = None;
                    last = Some(self.one_line(line));
                }
                Err(fault) => self.fault(fault),
            }
            if self.chunk.len() >= CHUNK && !self.hand_over(last.take()).await {
                return false;
            }
        }
        if at_end {
            self.shared.job.pipeline.flush(true, &mut self.processed);
            self.chunk
                .extend(self.processed.drain(..).map(Processing::into_entry));
        }
        self.hand_over(last).await
    }

    fn one_line(&mut self, line: Line) -> (u64, Cursor) {
        let cursor = Cursor {
            ns: line.timestamp_ns,
            precise: true,
        };
        let number = {
            let mut progress = lock(&self.container.progress);
            progress.numbered += 1;
            progress.numbered
        };
        let ack = self.container.ledger.tracker().register(number);
        metrics().os.docker_entries.inc();
        match self.container.labels.get(line.stream) {
            Some(labels) => {
                let mut p = Processing::new(labels.clone(), line.text, line.timestamp_ns);
                p.ack = Some(ack);
                self.shared.job.pipeline.run(p, &mut self.processed);
                self.chunk
                    .extend(self.processed.drain(..).map(Processing::into_entry));
            }
            None => ack.done_all(),
        }
        (number, cursor)
    }

    fn fault(&self, fault: Fault) {
        let job = &self.shared.job.job;
        match fault {
            Fault::NoTimestamp(what) => {
                metrics().os.docker_parse_errors.inc();
                tracing::warn!(job = %job, container = %self.container.id, start = %what, "docker log line without a timestamp; skipped");
            }
            Fault::BrokenFrame(why) => {
                count_error(job, "frame");
                tracing::warn!(job = %job, container = %self.container.id, error = %why, "the container's log stream is not Docker's framing; reading again at the next refresh");
            }
        }
    }

    /// Notes the position of the lines read and hands the chunk over, waiting for room.
    async fn hand_over(&mut self, last: Option<(u64, Cursor)>) -> bool {
        if let Some((number, cursor)) = last {
            self.container.ledger.read_up_to(number, cursor.text());
            lock(&self.container.progress).last_read = Some(cursor);
        }
        let mut entries = std::mem::take(&mut self.chunk);
        while !entries.is_empty() {
            match self.shared.sink.try_send(entries) {
                Ok(()) => return true,
                Err(TrySendError::Full(back)) => {
                    if self.shared.stop.is_stopped() {
                        for e in back {
                            if let Some(ack) = e.ack {
                                ack.abandon();
                            }
                        }
                        return false;
                    }
                    entries = back;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(TrySendError::Closed) => return false,
            }
        }
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_promtails_seconds_and_write_nanoseconds() {
        let promtail = Cursor::parse("1796288405").unwrap();
        assert_eq!(promtail.ns, 1_796_288_405_000_000_000);
        assert!(!promtail.precise);
        assert_eq!(promtail.text(), "1796288405");
        let ours = Cursor::parse("1796292000.123456789").unwrap();
        assert_eq!(ours.ns, 1_796_292_000_123_456_789);
        assert_eq!(ours.text(), "1796292000.123456789");
        assert_eq!(Cursor::parse("1.5").unwrap().ns, 1_500_000_000);
        assert!(Cursor::parse("x").is_none());
        assert!(Cursor::parse("1.").is_none());
    }
}
