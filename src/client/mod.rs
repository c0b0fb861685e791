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

pub mod batch;
pub mod encode;
pub mod queue;
pub mod rejection;
pub mod send;
pub mod tls;
pub mod wal;

use crate::config::schema::ClientConfig;
use crate::entry::{Entry, Labels};
use crate::metrics::{metrics, DropLabels};
use batch::Batch;
use queue::QueueReceiver;
use send::{Outcome, Sender, SenderError};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// Where the entries of a batch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The memory queue: acknowledged when delivered.
    Memory,
    /// The disk queue: the cursor moves when delivered.
    Disk,
}

/// The label that sets an entry's tenant, overriding the client's `tenant_id`.
pub const TENANT_LABEL: &str = "__tenant_id__";

pub struct Client {
    sender: Sender,
    batchwait: Duration,
    batchsize: usize,
    tenant: String,
    external: Labels,
    /// Entries older than this are dropped before sending (`reject_old_samples`).
    max_age_ns: Option<i64>,
    encoding: crate::config::schema::PushEncoding,
    /// The disk queue, when `wal` is enabled.
    spill: Option<std::sync::Arc<wal::Spill>>,
    /// Stopping, a push was abandoned: the rest goes to the disk queue without being tried.
    gave_up: std::sync::atomic::AtomicBool,
    /// What was abandoned while stopping, in the order it was read, with its acknowledgements:
    /// put in front of the disk queue at the end ([`Client::park_abandoned`]).
    abandoned: std::sync::Mutex<(Vec<Entry>, Vec<crate::source::ack::Ack>)>,
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
    pub fn health(&self) -> std::sync::Arc<crate::server::ClientHealth> {
        self.sender.health()
    }

    /// The `host` label of this client's metrics.
    pub fn host(&self) -> &str {
        self.sender.host()
    }

    pub fn new(config: &ClientConfig) -> Result<Self, SenderError> {
        Ok(Self {
            sender: Sender::new(config)?,
            batchwait: config.batchwait.0,
            batchsize: config.batchsize.0 as usize,
            tenant: config.tenant_id.clone(),
            external: config
                .external_labels
                .iter()
                .map(|(k, v)| (k.0.clone(), v.clone()))
                .collect(),
            max_age_ns: config.reject_old_samples.then(|| {
                i64::try_from(config.reject_old_samples_max_age.0.as_nanos()).unwrap_or(i64::MAX)
            }),
            encoding: config.encoding,
            spill: None,
            gave_up: std::sync::atomic::AtomicBool::new(false),
            abandoned: Default::default(),
        })
    }

    /// Runs until `rx` ends (all sources stopped) and everything held was pushed or abandoned.
    /// With a disk queue (`spill`), what the sources appended there is pushed once the memory
    /// queue is empty, in order, before anything newer.
    pub async fn run(
        mut self,
        rx: QueueReceiver,
        spill: Option<std::sync::Arc<wal::Spill>>,
        shutdown: watch::Receiver<bool>,
    ) {
        self.spill = spill;
        self.forward(rx, shutdown).await;
        self.park_abandoned();
    }

    async fn forward(&self, mut rx: QueueReceiver, mut shutdown: watch::Receiver<bool>) {
        let spill = self.spill.clone();
        let mut batches: HashMap<String, Batch> = HashMap::new();
        let tick = (self.batchwait / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = rx.recv() => {
                    let Some(entries) = received else { break };
                    if !self.add_all(entries, &mut batches, &mut shutdown, Origin::Memory).await {
                        rx.close();
                        return;
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
                            if !self.push(b, &tenant, &mut shutdown, Origin::Memory).await {
                                rx.close();
                                return;
                            }
                        }
                    }
                }
                // Entries were appended to the disk queue (a permit is kept if none was waiting).
                _ = spilled(&spill) => {}
            }
            if let Some(s) = &spill {
                if rx.is_empty()
                    && !s.is_empty()
                    && !self.drain_disk(s, &mut batches, &mut shutdown).await
                {
                    rx.close();
                    return;
                }
            }
        }
        if let Some(s) = &spill {
            if !self.gave_up() && !self.drain_disk(s, &mut batches, &mut shutdown).await {
                return;
            }
        }
        for (tenant, b) in batches {
            if !self.push(b, &tenant, &mut shutdown, Origin::Memory).await {
                return;
            }
        }
    }

    /// Stopping, pushes were abandoned: their entries go in front of the disk queue (they were
    /// read before anything on it) and count as acknowledged.
    fn park_abandoned(&self) {
        let (entries, acks) =
            std::mem::take(&mut *self.abandoned.lock().unwrap_or_else(|e| e.into_inner()));
        let Some(spill) = &self.spill else { return };
        if entries.is_empty() {
            return;
        }
        match spill.lock().prepend(&entries) {
            Ok(()) => {
                tracing::info!(
                    host = self.sender.host(),
                    entries = entries.len(),
                    "stopping before Loki accepted them: entries kept in the disk queue"
                );
                for ack in acks {
                    ack.done();
                }
            }
            Err(e) => {
                tracing::error!(host = self.sender.host(), error = %e, entries = entries.len(), "cannot write the disk queue while stopping; the lines will be read again at the next start");
            }
        }
    }

    /// Adds `entries` to their tenants' batches, pushing batches that fill up; `false` when a push
    /// was abandoned because lokiship is stopping.
    async fn add_all(
        &self,
        entries: Vec<Entry>,
        batches: &mut HashMap<String, Batch>,
        shutdown: &mut watch::Receiver<bool>,
        origin: Origin,
    ) -> bool {
        for mut entry in entries {
            // Nearly always the client's own tenant: no allocation for the lookup.
            let own_tenant = entry.labels.get(TENANT_LABEL).map(str::to_owned);
            let tenant = own_tenant.as_deref().unwrap_or(&self.tenant);
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
                self.drop_invalid(entry, "too_old", "older than reject_old_samples_max_age");
                continue;
            }
            let labels =
                match batch::stream_labels(std::mem::take(&mut entry.labels), &self.external) {
                    Ok(l) => l,
                    Err(why) => {
                        self.drop_invalid(entry, "invalid_labels", why);
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
        &self,
        spill: &wal::Spill,
        batches: &mut HashMap<String, Batch>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        for (tenant, b) in std::mem::take(batches) {
            if !self.push(b, &tenant, shutdown, Origin::Memory).await {
                return false;
            }
        }
        loop {
            // Stopping and Loki does not answer: what is on disk stays there for the next start.
            if self.gave_up() {
                return true;
            }
            let entries = match spill.read(self.batchsize) {
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
            if let Err(e) = spill.commit() {
                tracing::error!(host = self.sender.host(), error = %e, "cannot move the disk queue's cursor");
            }
        }
    }

    /// Stopping with a disk queue, a push was abandoned: the rest goes to disk untried.
    fn gave_up(&self) -> bool {
        self.gave_up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pushes one batch; `false` when it had to be abandoned because lokiship is stopping. With a
    /// disk queue, an abandoned batch from memory and everything after it are kept for the disk
    /// queue instead (and count as acknowledged once there): the positions move, and the lines
    /// are sent after the restart. One read from the disk queue simply stays there.
    async fn push(
        &self,
        batch: Batch,
        tenant: &str,
        shutdown: &mut watch::Receiver<bool>,
        origin: Origin,
    ) -> bool {
        let entries = batch.entries();
        let mut pushed = batch.into_body_as(self.encoding);
        let acks = std::mem::take(&mut pushed.acks);
        let outcome = if self.gave_up() {
            Outcome::Abandoned
        } else {
            let body = std::mem::take(&mut pushed.body);
            self.sender
                .send(body, tenant, &pushed.counts, shutdown)
                .await
        };
        match outcome {
            Outcome::Delivered | Outcome::Dropped(_) => {
                for ack in acks {
                    ack.done();
                }
                true
            }
            Outcome::Abandoned if self.spill.is_some() => {
                self.gave_up
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                if origin == Origin::Disk {
                    return false;
                }
                let kept = pushed.into_entries(tenant, &self.tenant);
                let mut abandoned = self.abandoned.lock().unwrap_or_else(|e| e.into_inner());
                abandoned.0.extend(kept);
                abandoned.1.extend(acks);
                true
            }
            Outcome::Abandoned => {
                tracing::warn!(host = self.sender.host(), entries, "stopping before Loki accepted a batch; its lines will be read again at the next start");
                false
            }
        }
    }

    fn drop_invalid(&self, entry: Entry, reason: &'static str, why: &'static str) {
        tracing::warn!(
            host = self.sender.host(),
            reason,
            why,
            "dropping an entry Loki would reject"
        );
        let labels = DropLabels {
            host: self.sender.host().to_string(),
            reason: reason.into(),
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
