//! What to do with Loki's answer to a push: the retry rule, as a pure function.
//!
//! Promtail's rule, and Vector's (`LokiRetryLogic`): 2xx is delivered; 429, 5xx and transport
//! errors are retried with exponential backoff between `min_period` and `max_period`, a 429's
//! `Retry-After` honoured even past `max_period` (up to [`MAX_RETRY_AFTER`]); a 400 means Loki
//! stored the push but for the entries its body names; any other status is final. Unlike
//! Promtail, the attempts never run out: lines still on disk are not given up after
//! `max_retries` (see [`super::send`]).

use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// The longest `Retry-After` honoured (Promtail's default `max_period`).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What one attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// 2xx: every entry is stored.
    Delivered,
    /// 400: stored but for the entries the body names, which are dropped.
    PartlyRefused,
    /// Refused for good: the entries are dropped with this `reason` label.
    Drop { reason: &'static str },
    /// Try again after `wait`; `asked` when the wait is Loki's own `Retry-After`, else it is the
    /// backoff's upper bound, to be jittered.
    Retry { wait: Duration, asked: bool },
}

/// The client's backoff settings that the rule needs.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_period: Duration,
    pub max_period: Duration,
    /// `drop_rate_limited_batches`: a 429 drops the batch instead of retrying it.
    pub drop_rate_limited: bool,
}

impl Policy {
    /// The backoff before retry number `attempt + 1`: `min_period` doubled per attempt, at most
    /// `max_period` (both at least 1 ms, so that a zero setting cannot spin).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let min = self.min_period.max(Duration::from_millis(1));
        let max = self.max_period.max(Duration::from_millis(1));
        min.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(max)
    }
}

/// Decides on one answer: `status` is `None` for a transport error (no answer at all).
pub fn decide(status: Option<u16>, headers: &HeaderMap, attempt: u32, policy: &Policy) -> Decision {
    let backoff = Decision::Retry {
        wait: policy.backoff(attempt),
        asked: false,
    };
    match status {
        None => backoff,
        Some(200..=299) => Decision::Delivered,
        Some(429) if policy.drop_rate_limited => Decision::Drop {
            reason: "rate_limited",
        },
        Some(429) => match retry_after(headers) {
            Some(asked) => Decision::Retry {
                wait: asked.min(MAX_RETRY_AFTER),
                asked: true,
            },
            None => backoff,
        },
        Some(500..=599) => backoff,
        Some(400) => Decision::PartlyRefused,
        Some(_) => Decision::Drop {
            reason: "ingester_error",
        },
    }
}

/// `Retry-After` in seconds (the form Loki and proxies in front of it send).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Full jitter on the upper half: a backoff `wait` becomes a wait in `[wait/2, wait)`, so that
/// clients that failed together do not retry together; `unit` is a random number in `[0, 1)`.
pub fn jittered(wait: Duration, unit: f64) -> Duration {
    wait.mul_f64(0.5 + unit.clamp(0.0, 1.0) * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const POLICY: Policy = Policy {
        min_period: Duration::from_millis(500),
        max_period: Duration::from_secs(300),
        drop_rate_limited: false,
    };

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    fn retry(wait: Duration, asked: bool) -> Decision {
        Decision::Retry { wait, asked }
    }

    #[test]
    fn every_success_status_is_delivered() {
        for status in [200, 204, 299] {
            assert_eq!(
                decide(Some(status), &HeaderMap::new(), 0, &POLICY),
                Decision::Delivered
            );
        }
    }

    #[test]
    fn server_errors_and_transport_errors_back_off_exponentially() {
        let none = HeaderMap::new();
        for status in [None, Some(500), Some(502), Some(503), Some(504)] {
            assert_eq!(
                decide(status, &none, 0, &POLICY),
                retry(Duration::from_millis(500), false)
            );
            assert_eq!(
                decide(status, &none, 3, &POLICY),
                retry(Duration::from_secs(4), false)
            );
            assert_eq!(
                decide(status, &none, 40, &POLICY),
                retry(Duration::from_secs(300), false)
            );
        }
    }

    #[test]
    fn a_429_waits_what_retry_after_asks_even_past_max_period_up_to_5_minutes() {
        let short = Policy {
            max_period: Duration::from_secs(5),
            ..POLICY
        };
        assert_eq!(
            decide(Some(429), &with_retry_after("30"), 0, &short),
            retry(Duration::from_secs(30), true)
        );
        assert_eq!(
            decide(Some(429), &with_retry_after(" 86400 "), 0, &short),
            retry(MAX_RETRY_AFTER, true)
        );
        // Without the header, or with one that is not seconds: the backoff.
        for headers in [
            HeaderMap::new(),
            with_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        ] {
            assert_eq!(
                decide(Some(429), &headers, 1, &short),
                retry(Duration::from_secs(1), false)
            );
        }
    }

    #[test]
    fn drop_rate_limited_batches_drops_a_429() {
        let dropping = Policy {
            drop_rate_limited: true,
            ..POLICY
        };
        assert_eq!(
            decide(Some(429), &with_retry_after("30"), 0, &dropping),
            Decision::Drop {
                reason: "rate_limited"
            }
        );
        // It changes nothing else.
        assert_eq!(
            decide(Some(503), &HeaderMap::new(), 0, &dropping),
            retry(Duration::from_millis(500), false)
        );
    }

    #[test]
    fn a_400_is_partly_refused_and_other_client_errors_are_final() {
        let none = HeaderMap::new();
        assert_eq!(
            decide(Some(400), &none, 0, &POLICY),
            Decision::PartlyRefused
        );
        for status in [401, 403, 404, 413, 422] {
            assert_eq!(
                decide(Some(status), &none, 0, &POLICY),
                Decision::Drop {
                    reason: "ingester_error"
                },
                "{status}"
            );
        }
    }

    #[test]
    fn zero_periods_cannot_spin() {
        let zero = Policy {
            min_period: Duration::ZERO,
            max_period: Duration::ZERO,
            drop_rate_limited: false,
        };
        assert_eq!(zero.backoff(0), Duration::from_millis(1));
        assert_eq!(zero.backoff(u32::MAX), Duration::from_millis(1));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let wait = Duration::from_secs(10);
        assert_eq!(jittered(wait, 0.0), Duration::from_secs(5));
        assert!(jittered(wait, 0.999) < wait);
        assert_eq!(jittered(wait, 7.0), wait);
    }
}
