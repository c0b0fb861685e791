//! Whether a client's pushes are failing, and since when: what `/ready` reports per client.

/// How long a client has been failing to push (transport errors, 5xx, 429), for `/ready`.
pub struct ClientHealth {
    pub host: String,
    /// Longer than this failing makes `/ready` answer 503 (`unhealthy_after`; zero: never).
    pub unhealthy_after: std::time::Duration,
    failing_since: std::sync::Mutex<Option<std::time::Instant>>,
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
}
