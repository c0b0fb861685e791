//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod ack;
pub mod file;
pub mod relabel;
pub mod targets;

use crate::client::queue::QueueSender;
use crate::entry::Entry;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Where a source puts its entries: every client's queue, or standard output in a dry run.
///
/// Entries travel in chunks (what one read of a file produced): one queue operation and at most one
/// wake-up of a client per chunk instead of per line. Sending never blocks: a full queue hands the
/// chunk back, and the source keeps it, stops reading and waits with [`EntrySink::wait_for_room`].
pub trait EntrySink: Send + Sync {
    /// Hands over entries if every consumer has room for them.
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError>;

    /// Sleeps until every consumer has room or `timeout` passed.
    fn wait_for_room(&self, timeout: Duration);
}

#[derive(Debug)]
pub enum TrySendError {
    /// A queue is full: the entries come back, to be sent again later.
    Full(Vec<Entry>),
    /// The consumers are gone.
    Closed,
}

/// Sends every entry to each client's queue.
pub struct Fanout {
    queues: Vec<QueueSender>,
}

impl Fanout {
    pub fn new(queues: Vec<QueueSender>) -> Self {
        Self { queues }
    }
}

impl EntrySink for Fanout {
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        // All or nothing: positions move only when every client delivered a line, so a chunk that
        // only some clients took would have to be remembered per client.
        if !self.queues.iter().all(QueueSender::has_room) {
            return Err(TrySendError::Full(entries));
        }
        let bytes = entries.iter().map(crate::client::batch::entry_size).sum();
        let Some((last, rest)) = self.queues.split_last() else {
            return Err(TrySendError::Closed);
        };
        for q in rest {
            q.push(entries.clone(), bytes)
                .map_err(|_| TrySendError::Closed)?;
        }
        last.push(entries, bytes).map_err(|_| TrySendError::Closed)
    }

    fn wait_for_room(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        for q in &self.queues {
            if !q.wait_for_room(deadline.saturating_duration_since(std::time::Instant::now())) {
                return;
            }
        }
    }
}

/// A stop signal that threads can sleep on.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `timeout`; `true` if stopped.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}
