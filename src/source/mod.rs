//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod file;
pub mod push;
pub mod relabel;
pub mod targets;

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Called when stopping, to wake a thread that sleeps elsewhere than on [`Stop::wait`].
type OnStop = Box<dyn Fn() + Send + Sync>;

/// A stop signal that threads can sleep on.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
    on_stop: Mutex<Vec<OnStop>>,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
        for wake in self
            .on_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            wake();
        }
    }

    /// Calls `wake` when stopping (the file thread sleeps in `poll(2)`, not on the condvar).
    pub fn on_stop(&self, wake: OnStop) {
        self.on_stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(wake);
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `timeout`; `true` if stopped.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}
