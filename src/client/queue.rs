//! A client's input queue, bounded in bytes of log lines.
//!
//! Sources never block on it: [`QueueSender::reserve`] tells whether the client can take a chunk, and a
//! source that finds it full keeps its entries, stops reading (the lines stay on disk) and waits with
//! [`QueueSender::wait_for_room`] for at most the time until its next chore (looking for rotated
//! files). This is what keeps memory flat while Loki is down for an hour, and what lets the file
//! source keep noticing rotations meanwhile instead of sleeping inside a blocked send.
//!
//! The limit is hard: a source takes a [`Reservation`] for a chunk's bytes before it hands the
//! chunk over (one per client, so that a chunk goes to every client or to none), and none is
//! granted that would take the queue past its limit. A chunk larger than the whole limit is
//! admitted only into an empty queue. The one exception is a chunk a disk queue failed to
//! write: it was already promised to the clients, so it goes to memory over the limit
//! ([`QueueSender::push`]), and the next ones wait for room.

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
    used: Mutex<Used>,
    room: Condvar,
    limit: usize,
    /// The client's `host` label.
    host: String,
    /// `lokiship_client_queue_bytes{host}` and `lokiship_client_queue_entries{host}`.
    queued_bytes: prometheus_client::metrics::gauge::Gauge,
    queued_entries: prometheus_client::metrics::gauge::Gauge,
}

/// Bytes queued, and the largest chunk refused since room last came back: a source waiting for
/// room waits until that chunk fits.
#[derive(Default)]
struct Used {
    bytes: usize,
    refused: usize,
}

impl Used {
    fn fits(&self, bytes: usize, limit: usize) -> bool {
        self.bytes == 0 || self.bytes + bytes <= limit
    }
}

impl Budget {
    fn used(&self) -> std::sync::MutexGuard<'_, Used> {
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
        used: Mutex::new(Used::default()),
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

/// Room for one chunk in a client's queue, taken before the chunk is handed over; given back
/// if the chunk is not sent.
pub struct Reservation<'a> {
    sender: &'a QueueSender,
    bytes: usize,
}

impl Reservation<'_> {
    /// Queues `entries` in the room reserved for them.
    pub fn send(self, entries: Vec<Entry>) -> Result<(), QueueClosed> {
        // The room passes to the queued chunk: not given back when the reservation goes.
        let this = std::mem::ManuallyDrop::new(self);
        this.sender.send_reserved(entries, this.bytes)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        give_back(&self.sender.budget, self.bytes);
    }
}

impl QueueSender {
    /// Room for a chunk of `bytes`, unless that would take the queue past its limit (a chunk
    /// larger than the limit fits only an empty queue).
    pub fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let mut used = self.budget.used();
        if !used.fits(bytes, self.budget.limit) {
            used.refused = used.refused.max(bytes);
            return None;
        }
        used.bytes += bytes;
        Some(Reservation {
            sender: self,
            bytes,
        })
    }

    /// The `host` label of the client this queue feeds.
    pub fn host(&self) -> &str {
        &self.budget.host
    }

    /// Bytes waiting in the queue.
    pub fn queued_bytes(&self) -> usize {
        self.budget.used().bytes
    }

    /// Queues `entries` (`bytes` of lines) whether or not there is room: only for a chunk
    /// already promised to the clients that its disk queue failed to take.
    pub fn push(&self, entries: Vec<Entry>, bytes: usize) -> Result<(), QueueClosed> {
        self.budget.used().bytes += bytes;
        self.send_reserved(entries, bytes)
    }

    fn send_reserved(&self, entries: Vec<Entry>, bytes: usize) -> Result<(), QueueClosed> {
        let count = entries.len();
        self.budget.queued_bytes.inc_by(bytes as i64);
        self.budget.queued_entries.inc_by(count as i64);
        self.tx.send(Chunk { entries, bytes }).map_err(|rejected| {
            self.release(rejected.0.bytes, count);
            QueueClosed
        })
    }

    /// Sleeps until the chunk refused last fits or `timeout` passed; `true` if it fits.
    pub fn wait_for_room(&self, timeout: Duration) -> bool {
        let limit = self.budget.limit;
        let used = self.budget.used();
        let (used, _) = self
            .budget
            .room
            .wait_timeout_while(used, timeout, |used| !used.fits(used.refused.max(1), limit))
            .unwrap_or_else(|e| e.into_inner());
        used.fits(used.refused.max(1), limit)
    }

    fn release(&self, bytes: usize, entries: usize) {
        release(&self.budget, bytes, entries);
    }
}

/// A chunk of `entries` (`bytes`) left the queue.
fn release(budget: &Budget, bytes: usize, entries: usize) {
    budget.queued_bytes.dec_by(bytes as i64);
    budget.queued_entries.dec_by(entries as i64);
    give_back(budget, bytes);
}

/// Gives back `bytes` of room; wakes the sources once the chunk refused last fits.
fn give_back(budget: &Budget, bytes: usize) {
    let mut used = budget.used();
    used.bytes = used.bytes.saturating_sub(bytes);
    if used.fits(used.refused.max(1), budget.limit) {
        used.refused = 0;
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
        assert!(tx.reserve(1).is_some());
        tx.push(vec![entry("0123456789")], 10).unwrap();
        assert!(tx.reserve(1).is_none(), "10 of 10 bytes queued");
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

    #[tokio::test]
    async fn the_limit_is_hard_and_an_unused_reservation_gives_its_room_back() {
        let (tx, mut rx) = queue(10, "queue-test-3");
        tx.reserve(6).unwrap().send(vec![entry("012345")]).unwrap();
        assert!(
            tx.reserve(5).is_none(),
            "6 + 5 bytes would pass the limit of 10"
        );
        let four = tx.reserve(4).expect("6 + 4 fits");
        assert!(tx.reserve(1).is_none(), "the reserved room counts");
        drop(four);
        assert_eq!(
            tx.queued_bytes(),
            6,
            "an unused reservation gives its room back"
        );
        rx.recv().await.unwrap();
        assert!(
            tx.reserve(50).is_some(),
            "a chunk larger than the limit fits an empty queue"
        );
    }

    #[test]
    fn a_waiting_source_wakes_only_once_its_chunk_fits() {
        let (tx, mut rx) = queue(10, "queue-test-4");
        tx.reserve(4).unwrap().send(vec![entry("0123")]).unwrap();
        tx.reserve(4).unwrap().send(vec![entry("4567")]).unwrap();
        assert!(tx.reserve(5).is_none());
        assert!(
            !tx.wait_for_room(Duration::from_millis(5)),
            "8 of 10 bytes queued: room for 2, not for the 5 refused"
        );
        rx.try_recv().unwrap();
        assert!(tx.wait_for_room(Duration::ZERO), "4 + 5 fits");
        assert!(tx.reserve(5).is_some());
    }
}
