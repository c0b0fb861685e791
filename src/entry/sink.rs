//! The interface every source hands its entries to, and which the clients' side implements
//! ([`crate::client::fanout::Fanout`]): the one seam between reading lines and delivering them.

use super::Entry;
use std::time::Duration;

/// Where a source puts its entries: every client's queue, or standard output in a dry run.
///
/// Entries travel in chunks (what one read of a file produced): one queue operation and at most one
/// wake-up of a client per chunk instead of per line. Sending never blocks: a full queue hands the
/// chunk back, and the source keeps it, stops reading and waits with [`EntrySink::wait_for_room`].
pub trait EntrySink: Send + Sync {
    /// Hands over entries if every consumer has room for them.
    fn try_send(&self, entries: Vec<Entry>) -> Result<(), TrySendError>;

    /// Sleeps until every consumer has room or `timeout` passed.
    fn wait_for_room(&self, timeout: Duration);

    /// Hands over entries that cannot be read again once acknowledged (a push receiver's): a
    /// client with a disk queue takes them there at once, fsync'd, the others in memory.
    fn try_send_unrereadable(&self, entries: Vec<Entry>) -> Result<(), TrySendError> {
        self.try_send(entries)
    }
}

#[derive(Debug)]
pub enum TrySendError {
    /// A queue is full: the entries come back, to be sent again later.
    Full(Vec<Entry>),
    /// The consumers are gone.
    Closed,
}
