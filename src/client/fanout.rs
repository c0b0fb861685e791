//! The hand-over from the sources to the clients: [`Fanout`] implements the sources'
//! [`EntrySink`], deciding per chunk, for every client at once, whether it goes to the client's
//! memory queue or its disk queue — or back to the source, which then pauses.

use super::queue::QueueSender;
use crate::entry::sink::{EntrySink, TrySendError};
use crate::entry::Entry;
use std::time::Duration;

/// One client's inputs: its memory queue, and its disk queue unless `wal.enabled: false`.
pub struct Outlet {
    pub queue: QueueSender,
    pub spill: Option<std::sync::Arc<super::wal::Spill>>,
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
    /// on disk: a client moving its memory queue to disk ([`super::Client`]'s parking) holds the
    /// same lock, so no chunk slips into memory behind lines it already put on disk.
    fn send(&self, entries: Vec<Entry>, force_disk: bool) -> Result<(), TrySendError> {
        let bytes: usize = entries.iter().map(super::batch::entry_size).sum();
        // Decide first, so that a chunk is given to every client or to none.
        let mut decided = Vec::with_capacity(self.outlets.len());
        for o in &self.outlets {
            let Some(spill) = o.spill.as_ref().filter(|s| s.writable()) else {
                // No disk queue, or one that failed a write recently: memory only, within its bound.
                match o.queue.reserve(bytes) {
                    Some(room) => decided.push(Destination::Memory(room, None)),
                    None => return Err(TrySendError::Full(entries)),
                }
                continue;
            };
            let wal = spill.lock();
            // While anything waits on disk, new lines go behind it, in order.
            let behind = force_disk || !wal.is_empty();
            let room = if behind { None } else { o.queue.reserve(bytes) };
            match room {
                Some(room) => decided.push(Destination::Memory(room, Some(wal))),
                None if (behind || o.overflow) && !wal.is_full() => {
                    decided.push(Destination::Disk(wal))
                }
                None => return Err(TrySendError::Full(entries)),
            }
        }
        let n = self.outlets.len();
        let mut entries = Some(entries);
        for (i, (o, into)) in self.outlets.iter().zip(decided).enumerate() {
            let mine = if i + 1 == n {
                entries.take().unwrap_or_default()
            } else {
                entries.clone().unwrap_or_default()
            };
            let failed = match (into, &o.spill) {
                (Destination::Memory(room, _wal), _) => {
                    room.send(mine).map_err(|_| TrySendError::Closed)?;
                    continue;
                }
                (Destination::Disk(mut wal), Some(spill)) => match wal.append(&mine) {
                    Ok(()) => {
                        spill.write_succeeded();
                        for e in mine {
                            if let Some(ack) = e.ack {
                                ack.done();
                            }
                        }
                        spill.notify.notify_one();
                        continue;
                    }
                    Err(e) => {
                        spill.write_failed(o.queue.host(), &e, mine.len());
                        mine
                    }
                },
                (Destination::Disk(_), None) => mine,
            };
            // Nothing is lost: this chunk goes to memory, over the queue's bound (it was
            // promised to every client), and the next ones only while memory has room.
            o.queue
                .push(failed, bytes)
                .map_err(|_| TrySendError::Closed)?;
        }
        Ok(())
    }
}

/// Where one client takes a chunk.
enum Destination<'a> {
    /// Its memory queue, in room reserved for it; its disk queue (if any) stays locked until the
    /// chunk is queued.
    Memory(
        crate::client::queue::Reservation<'a>,
        Option<std::sync::MutexGuard<'a, super::wal::Wal>>,
    ),
    /// Its disk queue, locked until the chunk is appended.
    Disk(std::sync::MutexGuard<'a, super::wal::Wal>),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::queue::queue;
    use crate::client::wal::{Spill, Wal, WhenFull};
    use std::sync::Arc;

    fn chunk(bytes: usize) -> Vec<Entry> {
        vec![Entry {
            labels: Default::default(),
            timestamp_ns: 0,
            line: "x".repeat(bytes),
            structured_metadata: Vec::new(),
            ack: None,
        }]
    }

    #[test]
    fn a_failing_disk_queue_keeps_memory_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let queue_dir = dir.path().join("client-0");
        let wal = Wal::open(&queue_dir, 1 << 30, WhenFull::Backpressure, "failing-disk").unwrap();
        // The directory goes away under the open queue: every write fails from now on.
        std::fs::remove_dir_all(&queue_dir).unwrap();
        let spill = Arc::new(Spill::new(wal));
        let (tx, _rx) = queue(100, "failing-disk");
        let fanout = Fanout::with_outlets(vec![Outlet {
            queue: tx.clone(),
            spill: Some(spill.clone()),
            overflow: true,
        }]);
        fanout.try_send(chunk(100)).expect("memory has room");
        // Memory is full, so this one is for the disk; the write fails and it stays in memory.
        fanout.try_send(chunk(100)).expect("kept in memory");
        assert!(!spill.writable(), "the failure is remembered");
        assert!(spill.is_empty());
        // From now on memory alone, within its bound: the source keeps the chunk and pauses.
        for _ in 0..3 {
            assert!(matches!(
                fanout.try_send(chunk(100)),
                Err(TrySendError::Full(_))
            ));
        }
        assert_eq!(tx.queued_bytes(), 200, "one chunk over the budget, no more");
    }
}
