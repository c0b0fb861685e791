//! The Loki client: one task per configured endpoint.
//!
//! Entries arrive on a queue bounded in bytes ([`queue`]; a full queue pauses the sources:
//! backpressure instead of memory growth). They are grouped per tenant into [`batch::Batch`]es, each pushed when it reaches
//! `batchsize` bytes or `batchwait` age. A push is retried until delivered or refused for good
//! ([`send`]); then the lines' acknowledgements are completed, which lets the sources' positions move.
//!
//! Shutdown: the sources stop first and drop their senders; the channel then ends, and the client
//! pushes what it holds, bounded by the client `timeout` once shutdown is signalled. What could not be
//! delivered in time stays unacknowledged, so it is read again after the restart — or, with a disk
//! queue, goes to the front of it, acknowledged (see [`wal`]).
//!
//! With a disk queue a push from memory is tried once: when it fails, the batch, the other batches
//! and the memory queue go to the front of the disk queue ("parking", [`park`]), and the retries
//! (backoff, `Retry-After`, forever) are made from there. Without one, the push is retried in
//! memory. The client's modes are one enum, [`Mode`], owned by the task (`&mut self`); which
//! answer is retried, and after how long, is the pure rule [`retry::decide`]. Disk-queue I/O
//! (read, commit, prepend) runs on tokio's blocking threads.

mod answer;
mod auth;
pub mod batch;
pub mod fanout;
pub mod health;
mod http;
mod park;
pub mod queue;
pub mod rejection;
pub mod retry;
pub mod send;
pub mod settings;
pub mod tls;
pub mod wal;

use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels};
use crate::shutdown::StopSignal;
use batch::Batch;
use queue::QueueReceiver;
use send::{Outcome, Sender, SenderError};
use std::collections::HashMap;
use std::time::Duration;

/// Where the entries of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The memory queue: acknowledged when delivered.
    Memory,
    /// The disk queue: the cursor moves when delivered.
    Disk,
}

use crate::entry::TENANT_LABEL;
pub struct Client {
    sender: Sender,
    batchwait: Duration,
    batchsize: usize,
    tenant: std::sync::Arc<str>,
    external: Labels,
    /// Entries older than this are dropped before sending (`reject_old_samples`).
    max_age_ns: Option<i64>,
    encoding: crate::config::schema::PushEncoding,
    /// The disk queue, when `wal` is enabled.
    spill: Option<std::sync::Arc<wal::Spill>>,
    /// What the client is doing with its batches ([`Mode`]).
    mode: Mode,
    /// When the first push from the disk queue after parking is due: what the backoff (or a
    /// 429's `Retry-After`) asked for.
    retry_at: Option<tokio::time::Instant>,
    /// How long a stop may go on sending from the disk queue (the client `timeout`): what is
    /// left waits there for the next start, so a stop ends before Kubernetes' SIGKILL.
    stop_drain: Duration,
    /// When this client first saw the stop signal, and whether it said that the disk queue waits.
    stopping_since: Option<(tokio::time::Instant, bool)>,
    /// Batches held back (stopping, or parking), in the order they were read, with their
    /// acknowledgements: put in front of the disk queue by [`Client::park`].
    held_back: (Vec<Entry>, Vec<crate::entry::ack::Ack>),
}

/// A client's modes. Without a disk queue it is always `Sending` (a failed push is retried in
/// memory until delivered, or until a stop abandons it).
///
/// ```text
///   Sending ──(a push from memory failed)──▶ Parking ──(park: memory → disk queue)──▶ Sending
///      │                                                       retries from the disk queue,
///      │                                                       the first at `retry_at`
///      └──(stopping, Loki does not answer in time)──▶ GaveUp: the rest goes to disk untried
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pushing batches from memory; the disk queue is sent when the memory queue is empty.
    Sending,
    /// A push from memory failed: everything after it is held back untried, and what memory
    /// holds goes to the front of the disk queue ([`Client::park`]) before anything is sent.
    Parking,
    /// Stopping with a disk queue, a push was abandoned: nothing more is tried; what is left
    /// goes to the disk queue for the next start.
    GaveUp,
}

/// Runs disk-queue I/O (reads, the cursor's fsync) on tokio's blocking threads: a slow disk must
/// not hold up the runtime's workers, which also serve `/metrics`, `/ready` and the receivers.
async fn off_runtime<T: Send + 'static>(
    spill: &std::sync::Arc<wal::Spill>,
    io: impl FnOnce(&wal::Spill) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let spill = spill.clone();
    match tokio::task::spawn_blocking(move || io(&spill)).await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down: the I/O did not run.
        Err(e) => Err(std::io::Error::other(e)),
    }
}

/// Resolves when entries were appended to the disk queue; never without one.
async fn spilled(spill: &Option<std::sync::Arc<wal::Spill>>) {
    match spill {
        Some(s) => s.notify.notified().await,
        None => std::future::pending().await,
    }
}

impl Client {
    /// Whether this client is failing, for `/ready`.
    pub fn health(&self) -> std::sync::Arc<health::ClientHealth> {
        self.sender.health()
    }

    /// The `host` label of this client's metrics.
    pub fn host(&self) -> &str {
        self.sender.host()
    }

    /// The client of a compiled entry of `clients` ([`settings::Settings`]).
    pub fn new(settings: &settings::Settings) -> Result<Self, SenderError> {
        Ok(Self {
            sender: Sender::new(settings)?,
            batchwait: settings.batchwait,
            batchsize: settings.batchsize,
            tenant: settings.tenant.clone(),
            external: settings.external_labels.clone(),
            max_age_ns: settings.max_age_ns,
            encoding: settings.encoding,
            spill: None,
            mode: Mode::Sending,
            retry_at: None,
            stop_drain: settings.timeout,
            stopping_since: None,
            held_back: Default::default(),
        })
    }

    /// Runs until `rx` ends (all sources stopped) and everything held was pushed or abandoned.
    /// With a disk queue (`spill`), what the sources appended there is pushed once the memory
    /// queue is empty, in order, before anything newer.
    pub async fn run(
        mut self,
        mut rx: QueueReceiver,
        spill: Option<std::sync::Arc<wal::Spill>>,
        shutdown: StopSignal,
    ) {
        self.spill = spill;
        let mut batches = HashMap::new();
        if self.forward(&mut rx, &mut batches, &shutdown).await {
            self.finish(&mut rx, &mut batches, &shutdown).await;
        }
        rx.close();
        // Stopping: what was held back goes to the front of the disk queue.
        let _ = self.park(&mut batches, &mut rx).await;
    }

    /// Batches and pushes until `rx` ends (`true`) or a push was abandoned (`false`).
    async fn forward(
        &mut self,
        rx: &mut QueueReceiver,
        batches: &mut HashMap<String, Batch>,
        shutdown: &StopSignal,
    ) -> bool {
        let spill = self.spill.clone();
        let tick = (self.batchwait / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = rx.recv() => {
                    let Some(entries) = received else { return true };
                    if !self.add_all(entries, batches, shutdown, Origin::Memory).await {
                        return false;
                    }
                }
                _ = ticker.tick() => {
                    let due: Vec<String> = batches
                        .iter()
                        .filter(|(_, b)| b.age() >= self.batchwait)
                        .map(|(t, _)| t.clone())
                        .collect();
                    for tenant in due {
                        if let Some(b) = batches.remove(&tenant) {
                            if !self.push(b, &tenant, shutdown, Origin::Memory).await {
                                return false;
                            }
                        }
                    }
                }
                // Entries were appended to the disk queue (a permit is kept if none was waiting).
                _ = spilled(&spill) => {}
            }
            if !self.park_if_failing(batches, rx, shutdown).await {
                return false;
            }
            if let Some(s) = &spill {
                if rx.is_empty() && !s.is_empty() && !self.drain_disk(s, batches, shutdown).await {
                    return false;
                }
            }
            if !self.park_if_failing(batches, rx, shutdown).await {
                return false;
            }
        }
    }

    /// The sources have stopped: pushes what is left (disk queue first), parking again whenever a
    /// push fails, until everything is delivered or stopping abandons it.
    async fn finish(
        &mut self,
        rx: &mut QueueReceiver,
        batches: &mut HashMap<String, Batch>,
        shutdown: &StopSignal,
    ) {
        loop {
            if !self.park_if_failing(batches, rx, shutdown).await {
                return;
            }
            if let Some(s) = self.spill.clone() {
                if !self.gave_up() && !self.drain_disk(&s, batches, shutdown).await {
                    return;
                }
                if self.parking() {
                    continue;
                }
            }
            for (tenant, b) in std::mem::take(batches) {
                if !self.push(b, &tenant, shutdown, Origin::Memory).await {
                    return;
                }
            }
            if !self.parking() {
                return;
            }
        }
    }

    /// Adds `entries` to their tenants' batches, pushing batches that fill up; `false` when a push
    /// was abandoned because lokiship is stopping.
    async fn add_all(
        &mut self,
        entries: Vec<Entry>,
        batches: &mut HashMap<String, Batch>,
        shutdown: &StopSignal,
        origin: Origin,
    ) -> bool {
        // `push` borrows the client mutably: the default tenant is held apart, once per chunk.
        let default_tenant = self.tenant.clone();
        for mut entry in entries {
            // Nearly always the client's own tenant: no allocation for the lookup.
            let own_tenant = entry.labels.get(TENANT_LABEL).map(str::to_owned);
            let tenant = own_tenant.as_deref().unwrap_or(&default_tenant);
            let size = batch::entry_size(&entry);
            let full = batches
                .get(tenant)
                .is_some_and(|b| !b.is_empty() && b.bytes() + size > self.batchsize);
            if full {
                if let Some(b) = batches.remove(tenant) {
                    if !self.push(b, tenant, shutdown, origin).await {
                        return false;
                    }
                }
            }
            if self
                .max_age_ns
                .is_some_and(|age| entry.timestamp_ns < crate::entry::now_ns().saturating_sub(age))
            {
                self.drop_invalid(
                    entry,
                    tenant,
                    "too_old",
                    "older than reject_old_samples_max_age",
                );
                continue;
            }
            let labels =
                match batch::stream_labels(std::mem::take(&mut entry.labels), &self.external) {
                    Ok(l) => l,
                    Err(why) => {
                        self.drop_invalid(entry, tenant, "invalid_labels", why);
                        continue;
                    }
                };
            match batches.get_mut(tenant) {
                Some(b) => b.add(labels, entry),
                None => {
                    let mut b = Batch::new();
                    b.add(labels, entry);
                    batches.insert(tenant.to_string(), b);
                }
            }
        }
        true
    }

    /// Pushes what is batched (older than the disk queue's content), then the disk queue, in
    /// order, moving its cursor after each delivered part; `false` when stopping cut it short.
    async fn drain_disk(
        &mut self,
        spill: &std::sync::Arc<wal::Spill>,
        batches: &mut HashMap<String, Batch>,
        shutdown: &StopSignal,
    ) -> bool {
        for (tenant, b) in std::mem::take(batches) {
            if !self.push(b, &tenant, shutdown, Origin::Memory).await {
                return false;
            }
        }
        loop {
            // A push from memory failed: those entries go in front of the disk queue first.
            if self.parking() {
                return true;
            }
            // Stopping and Loki does not answer, or the stop's time for the disk queue is up:
            // what is on disk stays there for the next start.
            if self.gave_up() || self.stop_drain_over(shutdown) {
                return true;
            }
            let max = self.batchsize;
            let entries = match off_runtime(spill, move |s| s.read(max)).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(host = self.sender.host(), error = %e, "cannot read the disk queue");
                    return true;
                }
            };
            if entries.is_empty() {
                return true;
            }
            if !self.add_all(entries, batches, shutdown, Origin::Disk).await {
                return false;
            }
            for (tenant, b) in std::mem::take(batches) {
                if !self.push(b, &tenant, shutdown, Origin::Disk).await {
                    return false;
                }
            }
            if let Err(e) = off_runtime(spill, |s| s.commit()).await {
                tracing::error!(host = self.sender.host(), error = %e, "cannot move the disk queue's cursor");
            }
        }
    }

    /// A stop has been sending from the disk queue for longer than [`Client::stop_drain`].
    fn stop_drain_over(&mut self, shutdown: &StopSignal) -> bool {
        if !shutdown.is_stopped() {
            return false;
        }
        let (at, said) = self
            .stopping_since
            .get_or_insert_with(|| (tokio::time::Instant::now(), false));
        if at.elapsed() < self.stop_drain {
            return false;
        }
        if !std::mem::replace(said, true) {
            tracing::info!(
                host = self.sender.host(),
                "stopping: the rest of the disk queue is sent at the next start"
            );
        }
        true
    }

    /// Stopping with a disk queue, a push was abandoned: the rest goes to disk untried.
    fn gave_up(&self) -> bool {
        self.mode == Mode::GaveUp
    }

    /// A push from memory failed: the rest of memory goes to disk untried ([`Client::park`]).
    fn parking(&self) -> bool {
        self.mode == Mode::Parking
    }

    /// The first retry from the disk queue after a failed push from memory waits what the
    /// backoff (or the 429's `Retry-After`) asked for; a stop cuts the wait short.
    async fn wait_for_retry(&mut self, shutdown: &StopSignal) {
        if let Some(due) = self.retry_at.take() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.stopped() => {}
            }
        }
    }

    /// Pushes one batch; `false` when it had to be abandoned because lokiship is stopping.
    ///
    /// With a disk queue, a batch from memory is tried once: if that fails (or lokiship is
    /// stopping and Loki does not answer), it and everything after it are held back for
    /// [`Client::park`] (the positions move once they are on disk) and the disk queue retries. A
    /// batch read from the disk queue is retried until delivered, or simply stays there.
    async fn push(
        &mut self,
        batch: Batch,
        tenant: &str,
        shutdown: &StopSignal,
        origin: Origin,
    ) -> bool {
        let disk = self.spill.as_ref().is_some_and(|s| s.writable());
        let from_memory = origin == Origin::Memory;
        if disk && from_memory && (self.gave_up() || self.parking()) {
            // Held back untried, so not encoded.
            let (kept, acks) = batch.into_entries(tenant, &self.tenant);
            self.hold_back(kept, acks);
            return true;
        }
        let entries = batch.entries();
        let mut pushed = batch.into_body_as(self.encoding);
        let acks = std::mem::take(&mut pushed.acks);
        let outcome = if self.gave_up() {
            Outcome::Abandoned
        } else {
            if !from_memory {
                self.wait_for_retry(shutdown).await;
            }
            let body = std::mem::take(&mut pushed.body);
            self.sender
                .send(body, tenant, &pushed.counts, shutdown, disk && from_memory)
                .await
        };
        match outcome {
            Outcome::Delivered | Outcome::Dropped(_) => {
                for ack in acks {
                    ack.done();
                }
                true
            }
            Outcome::Abandoned | Outcome::Failed(_) if disk => {
                if let Outcome::Failed(wait) = outcome {
                    self.mode = Mode::Parking;
                    if !wait.is_zero() {
                        self.retry_at = Some(tokio::time::Instant::now() + wait);
                    }
                } else {
                    self.mode = Mode::GaveUp;
                }
                if !from_memory {
                    return false;
                }
                self.hold_back(pushed.into_entries(tenant, &self.tenant), acks);
                true
            }
            Outcome::Abandoned | Outcome::Failed(_) => {
                tracing::warn!(host = self.sender.host(), entries, "stopping before Loki accepted a batch; its lines will be read again at the next start");
                false
            }
        }
    }

    fn drop_invalid(&self, entry: Entry, tenant: &str, reason: &'static str, why: &'static str) {
        tracing::warn!(
            host = self.sender.host(),
            reason,
            why,
            "dropping an entry Loki would reject"
        );
        let labels = DropLabels {
            host: self.sender.host().to_string(),
            reason: reason.into(),
            tenant: tenant.to_string(),
        };
        metrics().dropped_entries.get_or_create(&labels).inc();
        metrics()
            .dropped_bytes
            .get_or_create(&labels)
            .inc_by(entry.line.len() as u64);
        if let Some(ack) = entry.ack {
            ack.done();
        }
    }
}
