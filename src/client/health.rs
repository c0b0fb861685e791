//! Whether a client's pushes are failing, and since when: what `/ready` reports per client; and
//! its last error and last delivery, for the status page.

use std::time::SystemTime;

/// How long a client has been failing to push (transport errors, 5xx, 429), for `/ready`.
pub struct ClientHealth {
    pub host: String,
    /// Longer than this failing makes `/ready` answer 503 (`unhealthy_after`; zero: never).
    pub unhealthy_after: std::time::Duration,
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
    last_error: std::sync::Mutex<Option<(SystemTime, String)>>,
    last_delivery: std::sync::Mutex<Option<SystemTime>>,
}

impl ClientHealth {
    pub fn new(host: String, unhealthy_after: std::time::Duration) -> Self {
        Self {
            host,
            unhealthy_after: if unhealthy_after.is_zero() {
                std::time::Duration::MAX
            } else {
                unhealthy_after
            },
            failing_since: std::sync::Mutex::new(None),
            last_error: std::sync::Mutex::new(None),
            last_delivery: std::sync::Mutex::new(None),
        }
    }

    /// A push attempt failed (it will be retried).
    pub fn failed(&self) {
        let mut since = self.failing_since.lock().unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(std::time::Instant::now);
    }

    /// Loki answered (accepted, or refused for good): the client works.
    pub fn answered(&self) {
        *self.failing_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn failing_for(&self) -> Option<std::time::Duration> {
        self.failing_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// Remembers what went wrong with a push (retried or dropped), for the status page.
    pub fn error(&self, what: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((SystemTime::now(), what));
    }

    /// A push was delivered.
    pub fn delivered(&self) {
        *self.last_delivery.lock().unwrap_or_else(|e| e.into_inner()) = Some(SystemTime::now());
    }

    /// The last error and when it happened.
    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// When a push was last delivered.
    pub fn last_delivery(&self) -> Option<SystemTime> {
        *self.last_delivery.lock().unwrap_or_else(|e| e.into_inner())
    }
}
