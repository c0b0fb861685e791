//! `limit`: a rate limit on entries (`rate` per second, `burst`), optionally one per value of the
//! label `by_label_name` (at most `max_distinct_labels` of them, 10,000 by default; beyond that the
//! limiters start over). `drop: true` drops what exceeds the rate (counted, reason
//! `ratelimit`); otherwise the pipeline waits, which backpressures the source: lines wait on disk.

use crate::config::stages::LimitStage as Config;
use crate::pipeline::{BuildError, Processing, Stage, Verdict};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

pub struct LimitStage {
    quota: Quota,
    drop: bool,
    by_label: Option<String>,
    max_distinct: usize,
    single: DefaultDirectRateLimiter,
    per_value: Mutex<HashMap<String, DefaultDirectRateLimiter>>,
}

impl LimitStage {
    pub fn new(config: &Config) -> Result<Self, BuildError> {
        if config.rate.is_nan() || config.rate <= 0.0 {
            return Err(BuildError::new("limit", "rate must be positive"));
        }
        let burst = NonZeroU32::new(config.burst)
            .ok_or_else(|| BuildError::new("limit", "burst must be at least 1"))?;
        let period = std::time::Duration::from_secs_f64(1.0 / config.rate);
        let quota = Quota::with_period(period)
            .ok_or_else(|| BuildError::new("limit", "rate is too high"))?
            .allow_burst(burst);
        Ok(Self {
            quota,
            drop: config.drop,
            by_label: config.by_label_name.clone().filter(|s| !s.is_empty()),
            max_distinct: config.max_distinct_labels.unwrap_or(10_000).max(1),
            single: RateLimiter::direct(quota),
            per_value: Mutex::new(HashMap::new()),
        })
    }

    /// `true` when the entry may pass now (after waiting, unless dropping).
    fn admit(&self, limiter: &DefaultDirectRateLimiter) -> bool {
        if self.drop {
            return limiter.check().is_ok();
        }
        while let Err(not_until) = limiter.check() {
            let clock = governor::clock::DefaultClock::default();
            std::thread::sleep(not_until.wait_time_from(governor::clock::Clock::now(&clock)));
        }
        true
    }
}

impl Stage for LimitStage {
    fn process(&self, entry: &mut Processing) -> Verdict {
        let admitted = match &self.by_label {
            None => self.admit(&self.single),
            Some(name) => {
                let Some(value) = entry.labels.get(name) else {
                    return Verdict::Keep;
                };
                let mut map = self.per_value.lock().unwrap_or_else(|e| e.into_inner());
                if !map.contains_key(value) && map.len() >= self.max_distinct {
                    map.clear();
                }
                let limiter = map
                    .entry(value.to_string())
                    .or_insert_with(|| RateLimiter::direct(self.quota));
                if self.drop {
                    limiter.check().is_ok()
                } else {
                    // Waiting with the map locked would stall other values: check, and wait outside.
                    match limiter.check() {
                        Ok(()) => true,
                        Err(_) => {
                            drop(map);
                            std::thread::sleep(self.quota.replenish_interval());
                            true
                        }
                    }
                }
            }
        };
        if admitted {
            Verdict::Keep
        } else {
            Verdict::Drop("ratelimit".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::stages::test_util::pipeline;
    use crate::pipeline::Processing;
    use std::time::Instant;

    fn pass(yaml: &str, labels: &[&str], n: usize) -> (usize, std::time::Duration) {
        let p = pipeline(yaml);
        let mut out = Vec::new();
        let start = Instant::now();
        for i in 0..n {
            let value = labels[i % labels.len()];
            let l = [("app", value)].into_iter().collect();
            p.run(Processing::new(l, "x".into(), 0), &mut out);
        }
        (out.len(), start.elapsed())
    }

    #[test]
    fn drop_keeps_the_burst() {
        let (kept, _) = pass("- limit: {rate: 1, burst: 5, drop: true}", &["a"], 50);
        assert_eq!(kept, 5);
        let (kept, _) = pass(
            "- limit: {rate: 1, burst: 5, drop: true, by_label_name: app}",
            &["a", "b"],
            50,
        );
        assert_eq!(kept, 10, "one burst per label value");
    }

    #[test]
    fn without_drop_entries_wait() {
        let (kept, took) = pass("- limit: {rate: 100, burst: 1}", &["a"], 11);
        assert_eq!(kept, 11);
        assert!(
            took.as_millis() >= 80,
            "10 entries over the burst at 100/s: {took:?}"
        );
    }
}
