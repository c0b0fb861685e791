//! The stop token: one [`Shutdown`] per run, from which each task that must stop gets a
//! [`StopSignal`] for its part. `run/mod.rs` stops the parts in the order written down there (its
//! module doc): the clients learn of the stop, the sources stop, the clients finish, the
//! positions saver stops, the HTTP server stops.
//!
//! A part is stopped once and for good. A signal can be waited on from a thread (`wait`, with a
//! timeout, for the file source and the saver), from async code (`stopped`, for the clients and
//! the receivers), or by a callback for a thread that sleeps elsewhere (the file source sleeps in
//! `poll(2)` on inotify and an eventfd: `on_stop` wakes it).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What can be stopped, each on its own: the order is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The clients' pushes: from now on a push is tried for at most the client `timeout`, and a
    /// client with a disk queue sends from it for at most that long.
    Deliveries,
    /// The file source stops reading and the push receivers stop taking requests.
    Sources,
    /// The positions saver.
    Saver,
    /// The HTTP server (`/metrics`, `/ready`).
    Server,
}

impl Part {
    fn bit(self) -> u8 {
        match self {
            Part::Deliveries => 1,
            Part::Sources => 2,
            Part::Saver => 4,
            Part::Server => 8,
        }
    }
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// The stop token of one run.
pub struct Shutdown {
    /// The stopped parts, as bits.
    stopped: Mutex<u8>,
    changed: Condvar,
    watch: tokio::sync::watch::Sender<u8>,
    wakers: Mutex<Vec<(Part, Waker)>>,
}

impl Shutdown {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            stopped: Mutex::new(0),
            changed: Condvar::new(),
            watch: tokio::sync::watch::Sender::new(0),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Stops `part`: its signals fire, its callbacks run.
    pub fn stop(&self, part: Part) {
        let now = {
            let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
            *stopped |= part.bit();
            *stopped
        };
        self.changed.notify_all();
        self.watch.send_replace(now);
        let wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        for (_, wake) in wakers.iter().filter(|(p, _)| *p == part) {
            wake();
        }
    }

    /// The signal of `part`, for the task that stops with it.
    pub fn signal(self: &Arc<Self>, part: Part) -> StopSignal {
        StopSignal {
            shutdown: self.clone(),
            part,
        }
    }

    fn is_stopped(&self, part: Part) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) & part.bit() != 0
    }
}

/// One part's view of the stop token.
#[derive(Clone)]
pub struct StopSignal {
    shutdown: Arc<Shutdown>,
    part: Part,
}

impl StopSignal {
    /// A signal of a token no one stops: for a part run on its own (tests, benches).
    pub fn never() -> Self {
        Shutdown::new().signal(Part::Sources)
    }

    pub fn is_stopped(&self) -> bool {
        self.shutdown.is_stopped(self.part)
    }

    /// Sleeps up to `timeout` on this thread; `true` if stopped.
    pub fn wait(&self, timeout: Duration) -> bool {
        let bit = self.part.bit();
        let guard = self
            .shutdown
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .shutdown
            .changed
            .wait_timeout_while(guard, timeout, |stopped| *stopped & bit == 0)
            .unwrap_or_else(|e| e.into_inner());
        *guard & bit != 0
    }

    /// Resolves once stopped.
    pub async fn stopped(&self) {
        let bit = self.part.bit();
        let mut rx = self.shutdown.watch.subscribe();
        // The sender lives in the token this signal holds: the wait ends only when stopped.
        let _ = rx.wait_for(|stopped| stopped & bit != 0).await;
    }

    /// Calls `wake` when stopped (at once if already stopped).
    pub fn on_stop(&self, wake: Waker) {
        let mut wakers = self
            .shutdown
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.is_stopped() {
            wake();
        } else {
            wakers.push((self.part, wake));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn each_part_stops_on_its_own_and_every_kind_of_waiter_sees_it() {
        let shutdown = Shutdown::new();
        let sources = shutdown.signal(Part::Sources);
        let server = shutdown.signal(Part::Server);
        let woken = Arc::new(AtomicBool::new(false));
        let w = woken.clone();
        sources.on_stop(Box::new(move || w.store(true, Ordering::SeqCst)));
        let thread = {
            let sources = sources.clone();
            std::thread::spawn(move || sources.wait(Duration::from_secs(30)))
        };
        let waiter = tokio::spawn({
            let sources = sources.clone();
            async move { sources.stopped().await }
        });
        assert!(!sources.wait(Duration::from_millis(1)));
        shutdown.stop(Part::Sources);
        assert!(thread.join().unwrap(), "the sleeping thread woke");
        waiter.await.unwrap();
        assert!(woken.load(Ordering::SeqCst), "the callback ran");
        assert!(sources.is_stopped());
        assert!(!server.is_stopped(), "another part keeps running");
        let late = Arc::new(AtomicBool::new(false));
        let l = late.clone();
        sources.on_stop(Box::new(move || l.store(true, Ordering::SeqCst)));
        assert!(
            late.load(Ordering::SeqCst),
            "registered after the stop: called at once"
        );
    }
}
