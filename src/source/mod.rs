//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod ack;
pub mod file;

use crate::entry::Entry;
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Where a source puts its entries: every client's queue, or standard output in a dry run.
///
/// Entries travel in chunks (what one read of a file produced): one channel operation and at most one
/// wake-up of a client per chunk instead of per line.
pub trait EntrySink: Send + Sync {
    /// Hands over entries, waiting while the queues are full. `Err` when the consumers are gone.
    fn send(&self, entries: Vec<Entry>) -> Result<(), SinkClosed>;
}

#[derive(Debug, thiserror::Error)]
#[error("the clients stopped accepting entries")]
pub struct SinkClosed;

/// Sends every entry to each client's queue (blocking while a queue is full: backpressure).
pub struct Fanout {
    senders: Vec<mpsc::Sender<Vec<Entry>>>,
}

impl Fanout {
    pub fn new(senders: Vec<mpsc::Sender<Vec<Entry>>>) -> Self {
        Self { senders }
    }
}

impl EntrySink for Fanout {
    fn send(&self, entries: Vec<Entry>) -> Result<(), SinkClosed> {
        let Some((last, rest)) = self.senders.split_last() else {
            return Err(SinkClosed);
        };
        for tx in rest {
            tx.blocking_send(entries.clone()).map_err(|_| SinkClosed)?;
        }
        last.blocking_send(entries).map_err(|_| SinkClosed)
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
