//! Acknowledgement bookkeeping: which prefix of a source has been delivered.
//!
//! A source registers every line it emits with its [`AckTracker`] (`register(end_offset)`), and the
//! line carries an [`Ack`]. Each client that delivers the line (or drops it for a permanent reason)
//! calls [`Ack::done`]. When every client has done so for every line before it, the tracker's
//! `committed` offset moves past it. The positions file stores only committed offsets, so after a crash
//! a source resumes at the first line that may not have reached Loki: at-least-once delivery.
//!
//! An `Ack` dropped without `done()` leaves the position where it was, so the line is read again
//! at the next start. On a stop that is by design ([`stopping`]); at any other time it is a bug
//! that would hold a file's position back forever: it is counted ([`lost_acks`], exported as
//! `lokiship_acks_lost_total`) and, in debug builds (the tests), a panic.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Set once lokiship stops: acknowledgements still pending are let go on purpose.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Acknowledgements dropped without being completed while lokiship was not stopping.
static LOST: AtomicU64 = AtomicU64::new(0);

/// lokiship is stopping: what is not delivered by now is read again at the next start, and the
/// acknowledgements dropped with it are no bug.
pub fn stopping() {
    STOPPING.store(true, Ordering::Relaxed);
}

/// A run begins (the first, or the next after a reload): from now on a dropped acknowledgement
/// is a bug again.
pub fn running() {
    STOPPING.store(false, Ordering::Relaxed);
}

/// Acknowledgements dropped without [`Ack::done`] while not stopping (a bug).
pub fn lost_acks() -> u64 {
    LOST.load(Ordering::Relaxed)
}
use std::sync::{Arc, Mutex};

/// Tracks the delivery of one source's lines, in the order the source read them.
#[derive(Debug)]
pub struct AckTracker {
    /// How many acknowledgements a line needs: one per client.
    required: u32,
    state: Mutex<State>,
    /// Set whenever the committed offset moves, so the positions file is written soon after.
    changed: Option<Arc<AtomicBool>>,
}

#[derive(Debug)]
struct State {
    /// Sequence number of `pending[0]`.
    base_seq: u64,
    /// Lines not yet committed: (end offset, acknowledgements so far).
    pending: VecDeque<(u64, u32)>,
    /// Offset up to which every line is delivered.
    committed: u64,
}

impl AckTracker {
    /// A tracker whose committed offset starts at `start`; each line needs `required` acknowledgements.
    pub fn new(start: u64, required: u32) -> Arc<Self> {
        Self::with_change_flag(start, required, None)
    }

    /// Like [`AckTracker::new`]; `changed` is set each time the committed offset moves.
    pub fn with_change_flag(
        start: u64,
        required: u32,
        changed: Option<Arc<AtomicBool>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            required: required.max(1),
            state: Mutex::new(State {
                base_seq: 0,
                pending: VecDeque::new(),
                committed: start,
            }),
            changed,
        })
    }

    /// Registers a line that ends at `end_offset` and returns the handle that acknowledges it.
    pub fn register(self: &Arc<Self>, end_offset: u64) -> Ack {
        let mut st = self.lock();
        let seq = st.base_seq + st.pending.len() as u64;
        st.pending.push_back((end_offset, 0));
        Ack {
            tracker: Arc::clone(self),
            seq,
            joined: Vec::new(),
            settled: false,
        }
    }

    /// Offset up to which every line has been delivered.
    pub fn committed(&self) -> u64 {
        self.lock().committed
    }

    /// Number of lines read but not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.lock().pending.len()
    }

    fn acknowledge(&self, seq: u64, count: u32) {
        let mut st = self.lock();
        let Some(index) = seq.checked_sub(st.base_seq) else {
            return;
        };
        if let Some(slot) = st.pending.get_mut(index as usize) {
            slot.1 += count;
        }
        let before = st.committed;
        while let Some(&(end, acks)) = st.pending.front() {
            if acks < self.required {
                break;
            }
            st.pending.pop_front();
            st.base_seq += 1;
            st.committed = end;
        }
        if st.committed != before {
            if let Some(flag) = &self.changed {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of plain integers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The acknowledgement of one line. Cloned once per client; each clone is completed once, with
/// [`Ack::done`], [`Ack::done_all`] or, on purpose, [`Ack::abandon`].
#[derive(Debug, Clone)]
pub struct Ack {
    tracker: Arc<AckTracker>,
    seq: u64,
    /// Lines of other sources joined into this one's entry (`multiline`, partial lines).
    joined: Vec<Ack>,
    /// Completed or abandoned: dropping it is no loss.
    settled: bool,
}

impl Ack {
    /// This client is done with the line: delivered, or dropped for good.
    pub fn done(mut self) {
        self.tracker.acknowledge(self.seq, 1);
        for other in std::mem::take(&mut self.joined) {
            other.done();
        }
        self.settled = true;
    }

    /// No client will see the line (a stage dropped it): done for all of them.
    pub fn done_all(mut self) {
        self.tracker.acknowledge(self.seq, self.tracker.required);
        for other in std::mem::take(&mut self.joined) {
            other.done_all();
        }
        self.settled = true;
    }

    /// The line is not delivered and its position must not move: it is read again at the next
    /// start (a simulated crash; stopping does this for every pending line, see [`stopping`]).
    pub fn abandon(mut self) {
        for other in std::mem::take(&mut self.joined) {
            other.abandon();
        }
        self.settled = true;
    }

    /// `other`'s line was joined into this one's entry: it is delivered when this one is. A later
    /// line of the same source is acknowledged at once (its position cannot pass this pending
    /// line), one of another source (a rotated file's last line) travels along.
    pub fn absorb(&mut self, other: Ack) {
        if Arc::ptr_eq(&self.tracker, &other.tracker) && other.seq > self.seq {
            other.done_all();
        } else {
            self.joined.push(other);
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if self.settled || STOPPING.load(Ordering::Relaxed) || std::thread::panicking() {
            return;
        }
        if LOST.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::error!("bug: an acknowledgement was dropped without being completed; a file's position may stop moving until the next start (lokiship_acks_lost_total)");
        }
        debug_assert!(
            false,
            "an acknowledgement was dropped without being completed: its file's position can never move past it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_the_delivered_prefix() {
        let t = AckTracker::new(0, 1);
        let a = t.register(10);
        let b = t.register(25);
        let c = t.register(40);
        b.done();
        assert_eq!(t.committed(), 0, "line 1 is still in flight");
        a.done();
        assert_eq!(t.committed(), 25);
        c.abandon();
        assert_eq!(t.committed(), 25, "an abandoned ack must not commit");
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn a_joined_line_commits_only_with_the_entry_it_joined() {
        let file = AckTracker::new(0, 1);
        let rotated = AckTracker::new(0, 1);
        let mut first = rotated.register(10);
        let second = rotated.register(20);
        let third = file.register(7);
        first.absorb(second);
        first.absorb(third);
        assert_eq!(rotated.committed(), 0, "the entry is not delivered yet");
        assert_eq!(
            file.committed(),
            0,
            "another file's line waits for the entry"
        );
        first.done();
        assert_eq!(rotated.committed(), 20);
        assert_eq!(file.committed(), 7);
    }

    #[test]
    fn every_client_must_acknowledge() {
        let t = AckTracker::new(5, 2);
        let a = t.register(10);
        a.clone().done();
        assert_eq!(t.committed(), 5);
        a.done();
        assert_eq!(t.committed(), 10);
    }

    #[test]
    fn done_all_completes_a_line_for_every_client() {
        let t = AckTracker::new(0, 3);
        t.register(7).done_all();
        assert_eq!(t.committed(), 7);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "dropped without being completed")]
    fn an_ack_dropped_by_mistake_is_caught_in_tests() {
        let t = AckTracker::new(0, 1);
        drop(t.register(10));
    }
}
