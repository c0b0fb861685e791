//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod ack;
pub mod file;
pub mod push;
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

    /// Hands over entries that cannot be read again once acknowledged (a push receiver's): a
    /// client with a disk queue takes them there at once, fsync'd, the others in memory.
    fn try_send_unrereadable(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.try_send(entries)
    }
}

#[derive(Debug)]
pub enum TrySendError {
    /// A queue is full: the entries come back, to be sent again later.
    Full(Vec<Entry>),
    /// The consumers are gone.
    Closed,
}

/// One client's inputs: its memory queue, and its disk queue unless `wal.enabled: false`.
pub struct Outlet {
    pub queue: QueueSender,
    pub spill: Option<std::sync::Arc<crate::client::wal::Spill>>,
    /// A full memory queue sends new chunks to the disk queue instead of pausing the sources
    /// (several clients: a slow one must not pace the others).
    pub overflow: bool,
}

/// Sends every entry to each client.
///
/// Without disk queues it is all or nothing: positions move only when every client delivered a
/// line, so a chunk only some clients took would have to be remembered per client, and the slowest
/// client paces the sources. A chunk a client takes on its disk queue counts as acknowledged by it
/// once there: while anything waits on that disk queue (the client parked its memory after a
/// failed push, or it overflowed), every new chunk goes behind it; and with `overflow` (several
/// clients) a full memory queue sends chunks to disk instead of pausing the sources, so a slow
/// client never holds the others back.
pub struct Fanout {
    outlets: Vec<Outlet>,
}

impl Fanout {
    pub fn new(queues: Vec<QueueSender>) -> Self {
        Self::with_outlets(
            queues
                .into_iter()
                .map(|queue| Outlet {
                    queue,
                    spill: None,
                    overflow: false,
                })
                .collect(),
        )
    }

    pub fn with_outlets(outlets: Vec<Outlet>) -> Self {
        Self { outlets }
    }
}

impl Fanout {
    /// [`EntrySink::try_send`]; `force_disk`: every client with a disk queue takes the chunk there.
    ///
    /// Each disk queue stays locked from the decision until the chunk is in the memory queue or
    /// on disk: a client moving its memory queue to disk ([`crate::client`]'s parking) holds the
    /// same lock, so no chunk slips into memory behind lines it already put on disk.
    fn send(&self, entries: Vec<Entry>, force_disk: bool) -> Result<(), TrySendError> {
        // Decide first, so that a chunk is given to every client or to none.
        let mut locked = Vec::with_capacity(self.outlets.len());
        for o in &self.outlets {
            match &o.spill {
                None if !o.queue.has_room() => return Err(TrySendError::Full(entries)),
                None => locked.push(None),
                Some(spill) => {
                    let wal = spill.lock();
                    let room = o.queue.has_room();
                    // While anything waits on disk, new lines go behind it, in order.
                    let spilling = force_disk || !wal.is_empty() || (o.overflow && !room);
                    if (spilling && wal.is_full()) || (!spilling && !room) {
                        return Err(TrySendError::Full(entries));
                    }
                    locked.push(Some((wal, spilling)));
                }
            }
        }
        let bytes = entries.iter().map(crate::client::batch::entry_size).sum();
        let n = self.outlets.len();
        let mut entries = Some(entries);
        for (i, (o, wal)) in self.outlets.iter().zip(locked).enumerate() {
            let mine = if i + 1 == n {
                entries.take().unwrap_or_default()
            } else {
                entries.clone().unwrap_or_default()
            };
            if let (Some((mut wal, true)), Some(spill)) = (wal, &o.spill) {
                match wal.append(&mine) {
                    Ok(()) => {
                        for e in mine {
                            if let Some(ack) = e.ack {
                                ack.done();
                            }
                        }
                        spill.notify.notify_one();
                        continue;
                    }
                    Err(e) => {
                        // Nothing is lost: the chunk goes to memory, over the queue's budget.
                        tracing::error!(error = %e, "cannot write the disk queue; keeping the entries in memory");
                        crate::metrics::file_error("wal_write");
                    }
                }
            }
            o.queue
                .push(mine, bytes)
                .map_err(|_| TrySendError::Closed)?;
        }
        Ok(())
    }
}

impl EntrySink for Fanout {
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.send(entries, false)
    }

    fn try_send_unrereadable(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.send(entries, true)
    }

    fn wait_for_room(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        for o in &self.outlets {
            match &o.spill {
                // A full disk queue (backpressure) empties as the client delivers: look again soon.
                Some(spill) if spill.lock().is_full() => {
                    std::thread::sleep(
                        deadline
                            .saturating_duration_since(std::time::Instant::now())
                            .min(Duration::from_millis(100)),
                    );
                    return;
                }
                // Takes chunks on disk: no need to wait for its memory queue.
                Some(spill) if o.overflow || !spill.is_empty() => {}
                _ => {
                    if !o.queue.wait_for_room(
                        deadline.saturating_duration_since(std::time::Instant::now()),
                    ) {
                        return;
                    }
                }
            }
        }
    }
}

/// Called when stopping, to wake a thread that sleeps elsewhere than on [`Stop::wait`].
type OnStop = Box<dyn Fn() + Send + Sync>;

/// A stop signal that threads can sleep on.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
    on_stop: Mutex<Vec<OnStop>>,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
        for wake in self
            .on_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            wake();
        }
    }

    /// Calls `wake` when stopping (the file thread sleeps in `poll(2)`, not on the condvar).
    pub fn on_stop(&self, wake: OnStop) {
        self.on_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wake);
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
