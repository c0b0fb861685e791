//! The hand-over of receivers whose senders cannot send a line again once answered
//! (`loki_push_api`, `k8s_audit_webhook`): entries run through the job's pipeline, go to the
//! clients, and the request is answered success only once every client has them safe — on its
//! disk queue (fsync'd), or delivered to Loki. What cannot be made safe in time is answered so
//! that the sender retries: at least once, never lost.

use crate::entry::ack::AckTracker;
use crate::entry::sink::{EntrySink, TrySendError};
use crate::pipeline::{Pipeline, Processing};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may wait for its entries to be safe before it is answered "retry".
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// A job's pipeline and the clients it hands over to.
pub struct DurableHandOver {
    pub pipeline: Arc<Pipeline>,
    pub sink: Arc<dyn EntrySink>,
    /// Acknowledgements an entry needs: one per client.
    pub clients: u32,
}

/// Why a request's entries are not safe: the sender must send them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// The clients' queues had no room in time, or lokiship is stopping.
    NoRoom,
    /// Handed over, but not on disk or delivered in time.
    NotInTime,
}

impl NotStored {
    pub fn reason(self) -> &'static str {
        match self {
            NotStored::NoRoom => "the clients' queues are full, or lokiship is stopping",
            NotStored::NotInTime => "not delivered in time",
        }
    }
}

impl DurableHandOver {
    /// Runs `entries` through the pipeline, hands them to the clients, and returns once every
    /// client has them safe, or with why not after [`STORE_TIMEOUT`].
    pub async fn store(self: &Arc<Self>, entries: Vec<Processing>) -> Result<(), NotStored> {
        let count = entries.len() as u64;
        let deadline = Instant::now() + STORE_TIMEOUT;
        let me = self.clone();
        let handed = tokio::task::spawn_blocking(move || me.hand_over(entries, deadline)).await;
        let Ok(Some(tracker)) = handed else {
            return Err(NotStored::NoRoom);
        };
        // On disk, the acknowledgements came with the hand-over; delivered, they come later.
        while tracker.committed() < count {
            if Instant::now() >= deadline {
                return Err(NotStored::NotInTime);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Pipeline and hand-over, on a blocking thread (disk writes, waits for room); `None` when the
    /// clients had no room before `deadline`.
    fn hand_over(&self, entries: Vec<Processing>, deadline: Instant) -> Option<Arc<AckTracker>> {
        let tracker = AckTracker::new(0, self.clients);
        let mut out = Vec::with_capacity(entries.len());
        for (i, mut p) in entries.into_iter().enumerate() {
            p.ack = Some(tracker.register(i as u64 + 1));
            self.pipeline.run(p, &mut out);
        }
        // Entries a stage holds (multiline) end with the request: the sender waits for its answer.
        self.pipeline.flush(true, &mut out);
        let mut chunk: Vec<_> = out.into_iter().map(Processing::into_entry).collect();
        loop {
            match self.sink.try_send_unrereadable(chunk) {
                Ok(()) => return Some(tracker),
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    chunk = back;
                    self.sink.wait_for_room(
                        deadline
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(100)),
                    );
                }
                Err(_) => return None,
            }
        }
    }
}
