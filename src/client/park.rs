//! Parking: when a push from memory fails, what the client holds in memory goes to the front of
//! its disk queue, acknowledged, so that no line waits only in memory while Loki fails (its file
//! may be rotated away and deleted before a crash); the retries are made from the disk queue.

use super::batch::Batch;
use super::queue::QueueReceiver;
use super::{Client, Mode, Origin};
use crate::entry::Entry;
use std::collections::HashMap;

impl Client {
    /// After a failed push: [`Client::park`], or, when the disk queue cannot be written, the
    /// entries go back into the batches and are retried in memory. `false` when stopping cut a
    /// push short.
    pub(super) async fn park_if_failing(
        &mut self,
        batches: &mut HashMap<String, Batch>,
        rx: &mut QueueReceiver,
        shutdown: &crate::shutdown::StopSignal,
    ) -> bool {
        if !self.parking() || self.gave_up() {
            return true;
        }
        match self.park(batches, rx).await {
            Ok(()) => true,
            Err(entries) => {
                self.add_all(entries, batches, shutdown, Origin::Memory)
                    .await
            }
        }
    }

    /// Moves what is held back, the batches and the memory queue to the front of the disk queue,
    /// in the order they were read, and acknowledges them. The disk queue stays locked meanwhile,
    /// so no source puts a chunk into the memory queue behind them. On a write error the entries
    /// come back (the acknowledgements joined into the last), and the disk queue is left alone for a
    /// minute ([`wal::Spill::writable`]). The lock, the memory queue's drain and the write run on
    /// a blocking thread: a slow disk must not hold up the runtime's workers.
    pub(super) async fn park(
        &mut self,
        batches: &mut HashMap<String, Batch>,
        rx: &mut QueueReceiver,
    ) -> Result<(), Vec<Entry>> {
        if self.mode == Mode::Parking {
            self.mode = Mode::Sending;
        }
        let Some(spill) = self.spill.clone() else {
            return Ok(());
        };
        let (mut entries, mut acks) = std::mem::take(&mut self.held_back);
        for (tenant, b) in batches.drain() {
            let (kept, mut kept_acks) = b.into_entries(&tenant, &self.tenant);
            entries.extend(kept);
            acks.append(&mut kept_acks);
        }
        let mut queue = rx.take();
        let parked = tokio::task::spawn_blocking(move || {
            let mut wal = spill.lock();
            while let Some(chunk) = queue.try_recv() {
                for mut e in chunk {
                    acks.extend(e.ack.take());
                    entries.push(e);
                }
            }
            let written = if entries.is_empty() && acks.is_empty() {
                None
            } else {
                Some(wal.prepend(&entries))
            };
            drop(wal);
            (queue, spill, entries, acks, written)
        })
        .await;
        let (queue, spill, mut entries, acks, written) = match parked {
            Ok(parked) => parked,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {
                // The runtime is shutting down: nothing was acknowledged, the lines are read
                // again at the next start.
                tracing::error!(
                    host = self.sender.host(),
                    "stopped before the memory queue was moved to the disk queue"
                );
                return Ok(());
            }
        };
        *rx = queue;
        match written {
            None => Ok(()),
            Some(Ok(())) => {
                spill.write_succeeded();
                tracing::info!(
                    host = self.sender.host(),
                    entries = entries.len(),
                    "Loki is not accepting: the entries held in memory are kept in the disk queue"
                );
                for ack in acks {
                    ack.done();
                }
                spill.notify.notify_one();
                Ok(())
            }
            Some(Err(e)) => {
                // Retried in memory as without a disk queue, until the disk works again.
                spill.write_failed(self.sender.host(), &e, entries.len());
                let mut joined = acks.into_iter();
                if let Some(last) = entries.last_mut() {
                    let mut all = last.ack.take().or_else(|| joined.next());
                    if let Some(a) = all.as_mut() {
                        joined.for_each(|other| a.absorb(other));
                    }
                    last.ack = all;
                }
                Err(entries)
            }
        }
    }

    /// Keeps a batch's entries for [`Client::park`], after those held back before.
    pub(super) fn hold_back(&mut self, entries: Vec<Entry>, acks: Vec<crate::entry::ack::Ack>) {
        self.held_back.0.extend(entries);
        self.held_back.1.extend(acks);
    }
}
