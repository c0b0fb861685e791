//! A client's input queue, bounded in bytes of log lines.
//!
//! Sources never block on it: [`QueueSender::has_room`] tells whether the client can take more, and a
//! source that finds it full keeps its entries, stops reading (the lines stay on disk) and waits with
//! [`QueueSender::wait_for_room`] for at most the time until its next chore (looking for rotated
//! files). This is what keeps memory flat while Loki is down for an hour, and what lets the file
//! source keep noticing rotations meanwhile instead of sleeping inside a blocked send.
//!
//! The limit is soft: a chunk is admitted when the queue is below the limit, so the queue holds at
//! most the limit plus one chunk per source (a chunk is what one read produced, at most 256 KiB of
//! lines).

use crate::entry::Entry;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes of log lines a client's queue holds before sources pause.
pub const QUEUE_BYTES: usize = 2 << 20;

struct Chunk {
    entries: Vec<Entry>,
    bytes: usize,
}

struct Budget {
    used: Mutex<usize>,
    room: Condvar,
    limit: usize,
    /// The client's `host` label.
    host: String,
    /// `lokiship_client_queue_bytes{host}` and `lokiship_client_queue_entries{host}`.
    queued_bytes: prometheus_client::metrics::gauge::Gauge,
    queued_entries: prometheus_client::metrics::gauge::Gauge,
}

impl Budget {
    fn used(&self) -> std::sync::MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sources' end of a client's queue. Cloned once per source.
#[derive(Clone)]
pub struct QueueSender {
    tx: mpsc::UnboundedSender<Chunk>,
    budget: Arc<Budget>,
}

/// The client's end.
pub struct QueueReceiver {
    rx: mpsc::UnboundedReceiver<Chunk>,
    budget: Arc<Budget>,
}

/// A queue that holds about `limit` bytes of lines, for the client whose metrics' `host` is `host`.
pub fn queue(limit: usize, host: &str) -> (QueueSender, QueueReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let labels = crate::metrics::HostLabels {
        host: host.to_string(),
    };
    let m = crate::metrics::metrics();
    let budget = Arc::new(Budget {
        used: Mutex::new(0),
        room: Condvar::new(),
        limit: limit.max(1),
        host: host.to_string(),
        queued_bytes: m.client_queue_bytes.get_or_create(&labels).clone(),
        queued_entries: m.client_queue_entries.get_or_create(&labels).clone(),
    });
    (
        QueueSender {
            tx,
            budget: budget.clone(),
        },
        QueueReceiver { rx, budget },
    )
}

/// The client is gone.
#[derive(Debug)]
pub struct QueueClosed;

impl QueueSender {
    /// Whether the client takes another chunk now.
    pub fn has_room(&self) -> bool {
        *self.budget.used() < self.budget.limit
    }

    /// The `host` label of the client this queue feeds.
    pub fn host(&self) -> &str {
        &self.budget.host
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        *self.budget.used()
    }

    /// Queues `entries` (`bytes` of lines) whether or not there is room; callers check
    /// [`has_room`](Self::has_room) first.
    pub fn push(&self, entries: Vec<Entry>, bytes: usize) -> Result<(), QueueClosed> {
        *self.budget.used() += bytes;
        let count = entries.len();
        self.budget.queued_bytes.inc_by(bytes as i64);
        self.budget.queued_entries.inc_by(count as i64);
        self.tx.send(Chunk { entries, bytes }).map_err(|rejected| {
            self.release(rejected.0.bytes, count);
            QueueClosed
        })
    }

    /// Sleeps until the queue has room or `timeout` passed; `true` if it has room.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        let used = self.budget.used();
        let (used, _) = self
            .budget
            .room
            .wait_timeout_while(used, timeout, |used| *used >= self.budget.limit)
            .unwrap_or_else(|e| e.into_inner());
        *used < self.budget.limit
    }

    fn release(&self, bytes: usize, entries: usize) {
        release(&self.budget, bytes, entries);
    }
}

fn release(budget: &Budget, bytes: usize, entries: usize) {
    budget.queued_bytes.dec_by(bytes as i64);
    budget.queued_entries.dec_by(entries as i64);
    let mut used = budget.used();
    let was_full = *used >= budget.limit;
    *used = used.saturating_sub(bytes);
    if was_full && *used < budget.limit {
        budget.room.notify_all();
    }
}

impl QueueReceiver {
    /// The next chunk; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Vec<Entry>> {
        let chunk = self.rx.recv().await?;
        release(&self.budget, chunk.bytes, chunk.entries.len());
        Some(chunk.entries)
    }

    /// The next chunk if one is waiting.
    pub fn try_recv(&mut self) -> Option<Vec<Entry>> {
        let chunk = self.rx.try_recv().ok()?;
        release(&self.budget, chunk.bytes, chunk.entries.len());
        Some(chunk.entries)
    }

    /// No chunk is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// This end of the queue, to be used elsewhere (on a blocking thread) and put back; an ended
    /// queue stands in for it meanwhile.
    pub fn take(&mut self) -> QueueReceiver {
        let (_, ended) = mpsc::unbounded_channel();
        std::mem::replace(
            self,
            QueueReceiver {
                rx: ended,
                budget: self.budget.clone(),
            },
        )
    }

    /// Refuses further chunks (the client is stopping).
    pub fn close(&mut self) {
        self.rx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: &str) -> Entry {
        Entry {
            labels: Default::default(),
            timestamp_ns: 0,
            line: line.to_string(),
            structured_metadata: Vec::new(),
            ack: None,
        }
    }

    #[tokio::test]
    async fn room_returns_when_the_client_takes_chunks() {
        let (tx, mut rx) = queue(10, "queue-test-1");
        assert!(tx.has_room());
        tx.push(vec![entry("0123456789")], 10).unwrap();
        assert!(!tx.has_room(), "10 of 10 bytes queued");
        assert!(!tx.wait_for_room(Duration::from_millis(5)));
        let waiter = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.wait_for_room(Duration::from_secs(10)))
        };
        let got = rx.recv().await.unwrap();
        assert_eq!(got[0].line, "0123456789");
        assert!(waiter.join().unwrap(), "woken when the chunk was taken");
        assert_eq!(tx.queued_bytes(), 0);
        assert_eq!(tx.budget.queued_bytes.get(), 0, "the gauge follows");
        tx.push(vec![entry("a"), entry("b")], 2).unwrap();
        assert_eq!(
            (tx.budget.queued_bytes.get(), tx.budget.queued_entries.get()),
            (2, 2)
        );
    }

    #[tokio::test]
    async fn a_closed_client_gives_the_budget_back() {
        let (tx, rx) = queue(10, "queue-test-2");
        drop(rx);
        assert!(tx.push(vec![entry("x")], 1).is_err());
        assert_eq!(tx.queued_bytes(), 0);
    }
}
