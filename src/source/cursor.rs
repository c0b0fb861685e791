//! The position of a source that resumes by cursor (the journal): the cursor of the last entry
//! every client has, found from the acknowledgements.
//!
//! Entries are numbered in the order they were read; each is registered with the ledger's
//! [`AckTracker`] under its number, and the cursor of the last entry of each chunk is noted
//! ([`CursorLedger::read_up_to`]). The committed cursor is the noted one of the highest number the
//! tracker has committed: a restart resumes after it, so at most the chunk in flight is sent again.

use crate::entry::ack::AckTracker;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// One cursor-keyed source's acknowledged position.
pub struct CursorLedger {
    tracker: Arc<AckTracker>,
    state: Mutex<State>,
}

struct State {
    /// `(number, cursor)` of the last entry of each chunk read and not yet committed, oldest first.
    noted: VecDeque<(u64, String)>,
    /// The cursor of the last entry every client has; `None` before anything was.
    committed: Option<String>,
}

impl CursorLedger {
    /// A ledger that starts at `cursor` (read from the positions file); `tracker` numbers the
    /// entries from 1 and needs every client's acknowledgement.
    pub fn new(cursor: Option<String>, tracker: Arc<AckTracker>) -> Self {
        Self {
            tracker,
            state: Mutex::new(State {
                noted: VecDeque::new(),
                committed: cursor,
            }),
        }
    }

    /// The tracker entries register with: entry `n` (from 1) registers as `register(n)`.
    pub fn tracker(&self) -> &Arc<AckTracker> {
        &self.tracker
    }

    /// Notes that entries up to number `number` were read, the last at `cursor`.
    pub fn read_up_to(&self, number: u64, cursor: String) {
        self.lock().noted.push_back((number, cursor));
    }

    /// The cursor of the last entry every client has (delivered or on its disk queue).
    pub fn committed(&self) -> Option<String> {
        let done = self.tracker.committed();
        let mut st = self.lock();
        while st.noted.front().is_some_and(|(n, _)| *n <= done) {
            st.committed = st.noted.pop_front().map(|(_, c)| c);
        }
        st.committed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_moves_only_past_chunks_every_client_acknowledged() {
        let ledger = CursorLedger::new(Some("start".into()), AckTracker::new(0, 2));
        let acks: Vec<_> = (1..=4).map(|n| ledger.tracker().register(n)).collect();
        ledger.read_up_to(2, "c2".into());
        ledger.read_up_to(4, "c4".into());
        assert_eq!(ledger.committed().as_deref(), Some("start"));
        let mut acks = acks.into_iter();
        let (a1, a2, a3, a4) = (
            acks.next().unwrap(),
            acks.next().unwrap(),
            acks.next().unwrap(),
            acks.next().unwrap(),
        );
        a1.done_all();
        a2.clone().done();
        // One of two clients has entry 2: the chunk is not safe yet.
        assert_eq!(ledger.committed().as_deref(), Some("start"));
        a2.done();
        assert_eq!(ledger.committed().as_deref(), Some("c2"));
        a4.done_all();
        // Entry 3 is still in flight: the second chunk waits for it.
        assert_eq!(ledger.committed().as_deref(), Some("c2"));
        a3.done_all();
        assert_eq!(ledger.committed().as_deref(), Some("c4"));
    }
}
