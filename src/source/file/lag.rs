//! `lokiship_file_lag_bytes`: how much of each file is not yet acknowledged by every client (its
//! size when last read minus its acknowledged position). Published as acknowledgements arrive, not
//! only at each look at rotations (every `sync_period`): during a backfill it must fall as Loki
//! takes the lines, and reach 0 once it has them all. The status page's list of files, with the
//! same numbers, is published here too, once a second.

use super::FileSource;
use crate::metrics::{metrics, PathLabels};
use std::time::{Duration, Instant};

/// How often the lag is looked at while acknowledgements are awaited.
pub(super) const LAG_EVERY: Duration = Duration::from_millis(100);

/// How often the status page's list of files is published.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// When the lag was last looked at, and whether acknowledgements were awaited then.
pub(super) struct LagClock {
    last: Instant,
    awaiting_acks: bool,
    /// When the status page's list was last published (`None`: never).
    status: Option<Instant>,
}

impl Default for LagClock {
    fn default() -> Self {
        Self {
            last: Instant::now(),
            awaiting_acks: false,
            status: None,
        }
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

    /// Publishes every open file's state for `/targets`, at most every [`STATUS_EVERY`].
    fn publish_status(&mut self) {
        if self
            .lag
            .status
            .is_some_and(|at| at.elapsed() < STATUS_EVERY)
        {
            return;
        }
        self.lag.status = Some(Instant::now());
        let files = self.tailers.iter().map(|t| t.status()).collect();
        crate::metrics::status::board().set_files(files);
    }
}
