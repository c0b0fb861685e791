//! Label hygiene: how many distinct values each label set by a `labels` stage takes, per job.
//!
//! A label fed from an unbounded value (a user ID, an IP, a request path) makes one stream per value;
//! Loki refuses streams beyond its limits and slows down long before. The count is exported as
//! `lokiship_label_cardinality{job,label}`, and a label passing the budget — the smaller of
//! `limits_config.max_streams` (when set) and `limits_config.max_label_values` (1000) — is
//! reported once in the log, before Loki rejects anything. Values are kept as 64-bit hashes, at most
//! budget + 1 per label.

use rustc_hash::{FxHashMap, FxHashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

static BUDGET: AtomicUsize = AtomicUsize::new(1000);

/// Sets the budget of distinct values per label (from `limits_config`).
pub fn set_budget(max_label_values: usize, max_streams: usize) {
    let budget = match max_streams {
        0 => max_label_values,
        n => n.min(max_label_values),
    };
    BUDGET.store(budget.max(1), Ordering::Relaxed);
}

/// The distinct values of the labels one `labels` stage sets.
pub struct Cardinality {
    job: String,
    labels: Mutex<FxHashMap<Arc<str>, Values>>,
}

#[derive(Default)]
struct Values {
    hashes: FxHashSet<u64>,
    reported: bool,
}

impl Cardinality {
    pub fn new(job: &str) -> Self {
        Self {
            job: job.to_string(),
            labels: Mutex::new(FxHashMap::default()),
        }
    }

    /// Locks the counts for one entry's labels (one lock per entry, not per label).
    pub fn lock(&self) -> Counting<'_> {
        Counting {
            job: &self.job,
            budget: BUDGET.load(Ordering::Relaxed),
            labels: self.labels.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Counts `value` for the label `name`.
    pub fn observe(&self, name: &Arc<str>, value: &str) {
        self.lock().observe(name, value);
    }
}

/// The counts, locked while one entry's labels are counted.
pub struct Counting<'a> {
    job: &'a str,
    budget: usize,
    labels: std::sync::MutexGuard<'a, FxHashMap<Arc<str>, Values>>,
}

impl Counting<'_> {
    pub fn observe(&mut self, name: &Arc<str>, value: &str) {
        let budget = self.budget;
        let values = match self.labels.get_mut(name) {
            Some(v) => v,
            None => self.labels.entry(name.clone()).or_default(),
        };
        if values.hashes.len() > budget {
            return;
        }
        let hash = rustc_hash::FxBuildHasher.hash_one(value);
        if !values.hashes.insert(hash) {
            return;
        }
        crate::metrics::metrics()
            .label_cardinality
            .get_or_create(&crate::metrics::JobLabelLabels {
                job: self.job.to_string(),
                label: name.to_string(),
            })
            .set(values.hashes.len() as i64);
        if values.hashes.len() > budget && !values.reported {
            values.reported = true;
            tracing::warn!(
                job = %self.job,
                label = %name,
                budget,
                "label has more distinct values than the budget: it looks unbounded and makes a stream per value; \
                 move it to structured_metadata (or raise limits_config.max_label_values)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_values_up_to_the_budget_and_reports_once() {
        set_budget(1000, 5);
        let c = Cardinality::new("card-test");
        let user: Arc<str> = Arc::from("user");
        for i in 0..50 {
            c.observe(&user, &format!("u{}", i % 20));
        }
        let gauge = crate::metrics::metrics()
            .label_cardinality
            .get_or_create(&crate::metrics::JobLabelLabels {
                job: "card-test".into(),
                label: "user".into(),
            })
            .get();
        assert_eq!(gauge, 6, "counted up to the budget + 1");
        assert!(c.labels.lock().unwrap()[&user].reported);
        set_budget(1000, 0);
    }
}
