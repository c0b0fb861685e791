//! Disk queues no configured client uses: left behind when a client's URL or `name` changed (its
//! directory is named after them, so that lines never go to a Loki they were not queued for).
//! Each is reported at start with the exact `name:` that sends it again, and
//! `-wal.adopt-orphaned-queues` sends it through the client now at its place in `clients`.

use super::{Wal, WhenFull};
use std::path::{Path, PathBuf};

/// The file in a queue directory that records the `host` label of the client it was made for.
const CLIENT_FILE: &str = "client";

/// Client `index`'s queue directory under `dir`: named after its place and its `host` label
/// (`name`, or the URL's host:port), with characters a path should not hold as `_`.
pub fn queue_dir(dir: &Path, index: usize, host: &str) -> PathBuf {
    let name: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("client-{index}-{name}"))
}

/// Records, in a client's queue directory, the `host` label it is for.
pub fn record_client(queue: &Path, host: &str) -> std::io::Result<()> {
    let path = queue.join(CLIENT_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|h| h == host) {
        return Ok(());
    }
    crate::durable::write_atomically(&path, host.as_bytes())
}

/// A queue directory that no configured client uses and that still holds segments.
pub struct Orphan {
    pub path: PathBuf,
    /// The place in `clients` of the client it was made for.
    pub index: Option<usize>,
    /// That client's `host` label, when recorded.
    pub host: Option<String>,
    pub bytes: u64,
}

/// The orphaned queues under `dir` (all but `used`).
pub fn find(dir: &Path, used: &[PathBuf]) -> Vec<Orphan> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut orphans = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if used.contains(&path) || !path.is_dir() {
            continue;
        }
        let bytes: u64 = std::fs::read_dir(&path)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        if bytes == 0 {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let index = name
            .strip_prefix("client-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(i, _)| i.parse().ok());
        let host = std::fs::read_to_string(path.join(CLIENT_FILE)).ok();
        orphans.push(Orphan {
            path,
            index,
            host,
            bytes,
        });
    }
    orphans.sort_by(|a, b| a.path.cmp(&b.path));
    orphans
}

impl Orphan {
    /// Says what the queue holds and how to send it.
    pub fn warn(&self) {
        let name = match &self.host {
            Some(host) => format!("set `name: {host:?}` on that client"),
            None => "give the client the name it had (the directory's name after client-N-, with _ for characters a path cannot hold)".to_string(),
        };
        tracing::warn!(path = %self.path.display(), bytes = self.bytes, client_index = ?self.index,
            "a disk queue of a client that is no longer configured (its URL or name changed) still holds lines: {name} to send them to the Loki they were queued for, or start once with -wal.adopt-orphaned-queues to send them through the client now at its place, or delete the directory");
    }

    /// Moves what this queue has not sent yet into `into`, oldest first, then deletes it; the
    /// number of entries moved.
    pub fn adopt_into(&self, into: &mut Wal) -> std::io::Result<u64> {
        let host = self.host.as_deref().unwrap_or("orphaned");
        let mut orphan = Wal::open(&self.path, u64::MAX, WhenFull::Backpressure, host)?;
        let mut moved = 0u64;
        loop {
            let entries = orphan.read(4 << 20)?;
            if entries.is_empty() {
                break;
            }
            into.append(&entries)?;
            orphan.commit()?;
            moved += entries.len() as u64;
        }
        drop(orphan);
        std::fs::remove_dir_all(&self.path)?;
        Ok(moved)
    }
}
