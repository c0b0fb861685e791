//! Entries that pipeline stages held back (`multiline`, `cri` partial lines) and released later:
//! flushed when the first one's wait ends (at most every [`FLUSH_EVERY`]), and all of them at the end of
//! a dry run or backfill. Their acknowledgements stay pending while held, so the position never moves
//! past a line that is only in memory.

use super::{Closed, FileSource};
use crate::entry::sink::TrySendError;
use crate::pipeline::Processing;
use std::time::Duration;

/// How often held entries are checked against their stage's wait (`max_wait_time`).
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(100);

impl FileSource {
    /// When some pipeline next releases a held entry; `None` while none holds anything (the loop
    /// then sleeps until a file changes, not every [`FLUSH_EVERY`]).
    pub(super) fn next_release(&self) -> Option<std::time::Instant> {
        self.config
            .pipelines
            .iter()
            .filter_map(|p| p.next_deadline())
            .min()
    }

    /// Releases what waited long enough (or everything, with `all`) and ships it. `Ok(false)` when
    /// the queues are full and released entries wait in `self.held`. Held entries are looked at
    /// every [`FLUSH_EVERY`], not at every turn of the read loop (thousands a second when busy).
    pub(super) fn flush_pipelines(&mut self, all: bool) -> Result<bool, Closed> {
        let due = self
            .next_release()
            .is_some_and(|at| at <= std::time::Instant::now());
        if !all && (!due || self.last_flush.elapsed() < FLUSH_EVERY) {
            return self.send_held();
        }
        self.last_flush = std::time::Instant::now();
        let mut out = Vec::new();
        for pipeline in &self.config.pipelines {
            pipeline.flush(all, &mut out);
        }
        self.held
            .extend(out.into_iter().map(Processing::into_entry));
        self.send_held()
    }

    /// Ships released entries that could not be queued before; `Ok(false)` while the queues are full.
    pub(super) fn send_held(&mut self) -> Result<bool, Closed> {
        if self.held.is_empty() {
            return Ok(true);
        }
        match self.sink.try_send(std::mem::take(&mut self.held)) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(entries)) => {
                self.held = entries;
                Ok(false)
            }
            Err(TrySendError::Closed) => Err(Closed),
        }
    }

    /// At the end of a dry run or backfill: everything held, shipped, waiting for room if needed.
    pub(super) fn finish_held(&mut self) {
        let mut sent = self.flush_pipelines(true);
        while let Ok(false) = sent {
            if self.stop.is_stopped() {
                return;
            }
            self.sink.wait_for_room(FLUSH_EVERY);
            sent = self.send_held();
        }
    }
}
