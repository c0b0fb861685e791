//! lokiship's own last stage of `lokiship backfill -restamp`: every entry gets the time it is
//! sent, its own time kept in structured metadata `original_timestamp` (RFC 3339, nanoseconds),
//! so that Loki takes lines older than its `reject_old_samples_max_age` or its ordering window
//! and a query can still filter on when they happened.

use crate::pipeline::{Processing, Stage, Verdict};
use std::sync::atomic::{AtomicI64, Ordering};

/// The structured metadata that keeps a restamped entry's own time.
pub const ORIGINAL_TIMESTAMP: &str = "original_timestamp";

/// Gives entries the time now, each at least one nanosecond after the one before (so that equal
/// lines stay two entries and a stream's entries stay in order).
#[derive(Default)]
pub struct RestampStage {
    last: AtomicI64,
}

impl RestampStage {
    fn next_timestamp(&self) -> i64 {
        let now = crate::entry::now_ns();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

impl Stage for RestampStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let original = chrono::DateTime::from_timestamp_nanos(entry.timestamp_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        entry
            .structured_metadata
            .push((ORIGINAL_TIMESTAMP.to_string(), original));
        entry.timestamp_ns = self.next_timestamp();
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Labels;

    #[test]
    fn entries_get_increasing_times_now_and_keep_their_own() {
        let stage = RestampStage::default();
        let before = crate::entry::now_ns();
        let mut a = Processing::new(Labels::new(), "x".into(), 1_700_000_000_123_456_789);
        let mut b = Processing::new(Labels::new(), "x".into(), 1_700_000_000_123_456_789);
        assert_eq!(stage.process(&mut a), Verdict::Keep);
        stage.process(&mut b);
        assert!(a.timestamp_ns >= before && b.timestamp_ns > a.timestamp_ns);
        assert_eq!(
            a.structured_metadata,
            [(
                "original_timestamp".to_string(),
                "2023-11-14T22:13:20.123456789Z".to_string()
            )]
        );
    }
}
