//! Sources of log lines. Each emits [`crate::entry::Entry`]s whose [`ack::Ack`] moves the source's
//! position once the clients delivered them.

pub mod cursor;
pub mod file;
pub mod journal;
pub mod push;
pub mod relabel;
pub mod syslog;
pub mod targets;
