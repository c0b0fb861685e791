//! `lokiship_file_lag_bytes`: how much of each file is not yet acknowledged by every client (its
//! size when last read minus its acknowledged position). Published as acknowledgements arrive, not
//! only at each look at rotations (every `sync_period`): during a backfill it must fall as Loki
//! takes the lines, and reach 0 once it has them all. The status page's list of files, with the
//! same numbers, is published with it.

use super::FileSource;
use crate::metrics::{metrics, PathLabels};
use std::time::{Duration, Instant};

/// How often the lag is looked at while acknowledgements are awaited.
pub(super) const LAG_EVERY: Duration = Duration::from_millis(100);

/// When the lag was last looked at, and whether acknowledgements were awaited then.
pub(super) struct LagClock {
    last: Instant,
    awaiting_acks: bool,
}

impl Default for LagClock {
    fn default() -> Self {
        Self {
            last: Instant::now(),
            awaiting_acks: false,
        }
    }
}

impl LagClock {
    /// Lines were handed to the sink: acknowledgements are awaited from now on.
    pub(super) fn lines_sent(&mut self) {
        self.awaiting_acks = true;
    }
}

impl FileSource {
    /// Publishes each file's lag where it changed, at most every [`LAG_EVERY`]; whether
    /// acknowledgements are still awaited (then the thread wakes up for them, not only for writes).
    pub(super) fn publish_lag(&mut self) -> bool {
        if self.lag.last.elapsed() < LAG_EVERY {
            return self.lag.awaiting_acks;
        }
        self.lag.last = Instant::now();
        let mut awaiting = false;
        for t in &mut self.tailers {
            awaiting |= t.tracker().in_flight() > 0;
            if let Some(lag) = t.lag_changed() {
                metrics()
                    .file_lag_bytes
                    .get_or_create(&PathLabels {
                        path: t.path().to_string(),
                    })
                    .set(lag as i64);
            }
        }
        self.lag.awaiting_acks = awaiting;
        self.publish_status();
        awaiting
    }

    /// Publishes every open file's state for `/targets` (as often as the lag: at most every
    /// [`LAG_EVERY`], and once more when the last acknowledgement arrived).
    fn publish_status(&self) {
        let files = self.tailers.iter().map(|t| t.status()).collect();
        crate::metrics::status::board().set_files(files);
    }
}
