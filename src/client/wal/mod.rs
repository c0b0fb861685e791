//! A client's disk queue (`wal`): where its entries go while it cannot keep up, so that one slow or
//! dead Loki neither stalls the other clients nor holds every file's position.
//!
//! Entries the client's memory queue has no room for are appended here and count as acknowledged
//! by this client once they are on disk (fsync'd); from then on every new entry of this client is
//! appended too, until the client has pushed everything on disk, so each client sends in the order
//! lines were read. The client pushes the disk queue in order and moves a cursor past what Loki
//! accepted (or refused for good). When a push from memory fails, and when stopping while Loki
//! does not answer, the client puts what it still holds in memory in *front* of the queue
//! ([`Wal::prepend`]): it was read before what is on disk, and each stream must reach Loki in
//! order. So while a Loki fails no line waits only in memory, where a crash would lose it once
//! log rotation deleted its file.
//!
//! On disk: numbered segment files of records `[len u32][count u32][crc32 u32][JSON of entries]`,
//! and a `cursor` file (segment and offset of the first record not yet delivered), written after
//! each delivered batch. After a crash the records after the cursor are sent again: at most the
//! batch in flight twice. A torn record at the end of the last segment (a crash mid-append) is cut
//! off; a record that fails its checksum elsewhere ends its segment, and is logged and counted.
//!
//! `max_size` bounds the files: beyond it the oldest segment is deleted and its unsent entries
//! counted in `promtail_dropped_entries_total{reason="wal_full"}` — or, with
//! `when_full: backpressure`, nothing more is appended and the sources pause (lines wait on disk).
//! `cleanSegmentsOlderThan`, when set, deletes segments last written longer ago (`wal_expired`).

mod format;
mod spill;
pub use spill::{Spill, DISK_RETRY};
pub mod orphans;

use crate::entry::Entry;
use format::Cursor;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A segment is closed for appends past this size.
const SEGMENT_BYTES: u64 = 8 << 20;

/// The id of a new queue's first segment: the ids below are for [`Wal::prepend`].
const FIRST_SEGMENT: u64 = 1_000_000_000;

/// What to do when the disk queue reaches `max_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    DropOldest,
    Backpressure,
}

struct Segment {
    id: u64,
    path: PathBuf,
    bytes: u64,
    /// (offset, entries) of each record.
    records: Vec<(u64, u32)>,
}

/// The most bytes of lines one record holds when a client moves what it holds to the disk queue.
const RECORD_BYTES: usize = 64 << 10;

/// `entries` in consecutive groups of about `max_bytes` of lines each (at least one entry each).
fn groups_of_bytes(entries: &[Entry], max_bytes: usize) -> impl Iterator<Item = &[Entry]> {
    let mut rest = entries;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .position(|e| {
                bytes += e.line.len();
                bytes > max_bytes
            })
            .unwrap_or(rest.len())
            .max(1);
        let (group, tail) = rest.split_at(n);
        rest = tail;
        Some(group)
    })
}

pub struct Wal {
    dir: PathBuf,
    max_bytes: u64,
    when_full: WhenFull,
    /// `cleanSegmentsOlderThan`, when set.
    max_age: Option<std::time::Duration>,
    host: String,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    cursor: Cursor,
    /// Past the records handed out by `read` and not yet committed.
    pending: Option<Cursor>,
}

impl Wal {
    /// Opens (or creates) the disk queue in `dir`.
    pub fn open(dir: &Path, max_bytes: u64, when_full: WhenFull, host: &str) -> io::Result<Self> {
        crate::durable::create_dir_private(dir)?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if name.ends_with(".tmp") {
                    // A write that a crash cut short: its target was never replaced.
                    let _ = std::fs::remove_file(e.path());
                    return None;
                }
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let mut segments = VecDeque::new();
        let last = ids.last().copied();
        for id in ids {
            let path = dir.join(format!("{id:010}.seg"));
            let scanned = format::scan(&path, host)?;
            let bytes = std::fs::metadata(&path)?.len();
            let torn_end = scanned.good_end < bytes;
            if Some(id) == last && torn_end {
                // A torn record at the very end: a crash during an append that was never fsync'd.
                crate::durable::open_for_write(&path)?.set_len(scanned.good_end)?;
            } else if scanned.damaged > 0 || torn_end {
                set_damaged_aside(&path, host);
            }
            segments.push_back(Segment {
                id,
                path,
                bytes: scanned.good_end,
                records: scanned.records,
            });
        }
        let cursor = match format::read_cursor(dir)? {
            Ok(Some(c)) => c,
            found => {
                if let Err(why) = found {
                    let aside = dir.join("cursor.damaged");
                    let _ = std::fs::rename(dir.join("cursor"), &aside);
                    tracing::error!(host, dir = %dir.display(), error = %why, aside = %aside.display(),
                        "disk queue: the cursor file is damaged; sending the whole queue again (duplicates, not loss)");
                    crate::metrics::state_damaged("wal_cursor");
                }
                // Written at once: a segment that sorts before it is known to be a leftover.
                let c = Cursor {
                    segment: segments.front().map_or(FIRST_SEGMENT, |s| s.id),
                    offset: 0,
                };
                format::write_cursor(dir, c)?;
                c
            }
        };
        let mut wal = Self {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(SEGMENT_BYTES),
            when_full,
            max_age: None,
            host: host.to_string(),
            segments,
            writer: None,
            cursor,
            pending: None,
        };
        wal.drop_consumed()?;
        wal.update_gauge();
        Ok(wal)
    }

    /// Deletes segments older than `max_age` (`cleanSegmentsOlderThan`).
    pub fn with_max_age(mut self, max_age: Option<std::time::Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// Nothing left to send.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| {
            s.id < self.cursor.segment
                || (s.id == self.cursor.segment && self.cursor.offset >= s.bytes)
        })
    }

    /// Bytes of segment files.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// `when_full: backpressure` and at `max_size`: the sources must wait.
    pub fn is_full(&self) -> bool {
        self.when_full == WhenFull::Backpressure && self.bytes() >= self.max_bytes
    }

    /// Appends `entries` (their acknowledgements are the caller's) and syncs them to disk. With
    /// `when_full: backpressure` the limit is checked by the caller ([`Wal::is_full`]) before, so
    /// an append may pass `max_size` by one chunk.
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let record = format::encode(entries)?;
        let size = record.len() as u64;
        self.expire()?;
        if self.when_full == WhenFull::DropOldest && self.bytes() + size > self.max_bytes {
            self.drop_oldest(size)?;
        }
        let needs_new = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES)
            || self.writer.is_none();
        if needs_new {
            let id = self
                .segments
                .back()
                .map_or(self.cursor.segment, |s| s.id + 1);
            let path = self.dir.join(format!("{id:010}.seg"));
            let file = crate::durable::create_durably(&path)?;
            if self.segments.back().is_none_or(|s| s.id != id) {
                self.segments.push_back(Segment {
                    id,
                    path,
                    bytes: 0,
                    records: Vec::new(),
                });
            }
            self.writer = Some(file);
        }
        if let (Some(w), Some(seg)) = (self.writer.as_mut(), self.segments.back_mut()) {
            w.write_all(&record)?;
            w.sync_data()?;
            seg.records.push((seg.bytes, entries.len() as u32));
            seg.bytes += size;
        }
        self.update_gauge();
        Ok(())
    }

    /// [`Wal::append`] in records of at most [`RECORD_BYTES`] of lines.
    fn append_in_records(&mut self, entries: &[Entry]) -> io::Result<()> {
        for group in groups_of_bytes(entries, RECORD_BYTES) {
            self.append(group)?;
        }
        Ok(())
    }

    /// Puts `entries` before everything not yet sent, and syncs them to disk: lines that were
    /// read before those on disk (a client's memory queue when it stops) are sent before them
    /// after the restart — sent after them, they could be hours older than what Loki just took for
    /// their stream, and refused as out of order.
    ///
    /// The unsent rest of the cursor's segment is copied behind them into a new segment that
    /// sorts first; the cursor moves to it, then the old segment goes. A crash before the cursor
    /// moved leaves the old queue as it was (the new segment, below the cursor, is deleted at the
    /// next open); a crash between the cursor and the deletion sends that segment twice.
    pub fn prepend(&mut self, entries: &[Entry]) -> io::Result<()> {
        self.pending = None;
        let Some(front) = self
            .segments
            .iter()
            .position(|s| s.id >= self.cursor.segment)
            .filter(|_| !self.is_empty())
        else {
            return self.append_in_records(entries);
        };
        if entries.is_empty() {
            return Ok(());
        }
        let seg = &self.segments[front];
        let offset = if seg.id == self.cursor.segment {
            self.cursor.offset
        } else {
            0
        };
        let Some(id) = seg
            .id
            .checked_sub(1)
            .filter(|id| self.segments.iter().all(|s| s.id != *id))
        else {
            tracing::warn!(host = %self.host, "disk queue: no segment id left below the cursor; older lines go behind newer ones");
            return self.append_in_records(entries);
        };
        // Records of at most RECORD_BYTES of lines: the client commits whole records, so a stop
        // between two of them sends nothing twice but the one in flight.
        let mut encoded = Vec::new();
        let mut records = Vec::new();
        for group in groups_of_bytes(entries, RECORD_BYTES) {
            records.push((encoded.len() as u64, group.len() as u32));
            encoded.extend_from_slice(&format::encode(group)?);
        }
        let rest = format::read_range(&seg.path, offset, seg.bytes)?;
        let path = self.dir.join(format!("{id:010}.seg"));
        crate::durable::write_parts_atomically(&path, &[&encoded, &rest])?;
        let shift = encoded.len() as u64;
        records.extend(
            seg.records
                .iter()
                .filter(|(at, _)| *at >= offset)
                .map(|(at, n)| (at - offset + shift, *n)),
        );
        let replaced = Segment {
            id,
            path,
            bytes: shift + rest.len() as u64,
            records,
        };
        self.cursor = Cursor {
            segment: id,
            offset: 0,
        };
        format::write_cursor(&self.dir, self.cursor)?;
        if front + 1 == self.segments.len() {
            // It was being written: the next append starts a new segment.
            self.writer = None;
        }
        if let Some(old) = self.segments.remove(front) {
            std::fs::remove_file(&old.path)?;
        }
        self.segments.insert(front, replaced);
        self.update_gauge();
        Ok(())
    }

    /// The next records after the cursor, up to about `max_bytes` of lines; they are sent again
    /// after a restart unless [`Wal::commit`] follows their delivery.
    pub fn read(&mut self, max_bytes: usize) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut at = self.pending.unwrap_or(self.cursor);
        let mut taken = 0usize;
        while taken < max_bytes.max(1) {
            let Some(seg) = self.segments.iter().find(|s| s.id >= at.segment) else {
                break;
            };
            if seg.id > at.segment {
                at = Cursor {
                    segment: seg.id,
                    offset: 0,
                };
            }
            if at.offset >= seg.bytes {
                match self.segments.iter().find(|s| s.id > at.segment) {
                    Some(next) => {
                        at = Cursor {
                            segment: next.id,
                            offset: 0,
                        };
                        continue;
                    }
                    None => break,
                }
            }
            // The next good record: damaged stretches found by the scan are not in the list.
            let next = seg.records.partition_point(|(o, _)| *o < at.offset);
            let Some(&(offset, _)) = seg.records.get(next) else {
                at.offset = seg.bytes;
                continue;
            };
            at.offset = offset;
            match format::read_at(&seg.path, at.offset)? {
                Some((entries, len)) => {
                    taken += entries.iter().map(|e| e.line.len()).sum::<usize>();
                    out.extend(entries);
                    at.offset += len;
                }
                None => {
                    // Damaged since the scan: only this record is lost.
                    format::corrupt(&self.host, &seg.path, at.offset);
                    at.offset += 1;
                }
            }
        }
        self.pending = Some(at);
        Ok(out)
    }

    /// What the last [`Wal::read`]s returned was delivered (or refused for good): the cursor moves
    /// past it and fully sent segments are deleted.
    pub fn commit(&mut self) -> io::Result<()> {
        if let Some(p) = self.pending.take() {
            self.cursor = p;
            format::write_cursor(&self.dir, self.cursor)?;
            self.drop_consumed()?;
            self.update_gauge();
        }
        Ok(())
    }

    /// Deletes segments entirely before the cursor (but the one being written).
    fn drop_consumed(&mut self) -> io::Result<()> {
        while let Some(front) = self.segments.front() {
            let consumed = front.id < self.cursor.segment
                || (front.id == self.cursor.segment
                    && self.cursor.offset >= front.bytes
                    && self.segments.len() > 1);
            if !consumed {
                break;
            }
            if let Some(seg) = self.segments.pop_front() {
                std::fs::remove_file(&seg.path)?;
                if self.cursor.segment == seg.id {
                    self.cursor = Cursor {
                        segment: seg.id + 1,
                        offset: 0,
                    };
                }
            }
        }
        Ok(())
    }

    /// `when_full: drop_oldest`: deletes the oldest segments until `incoming` more bytes fit,
    /// counting their unsent entries as dropped.
    fn drop_oldest(&mut self, incoming: u64) -> io::Result<()> {
        while self.bytes() + incoming > self.max_bytes && self.segments.len() > 1 {
            self.drop_front("wal_full")?;
        }
        Ok(())
    }

    /// `cleanSegmentsOlderThan`: segments last written longer ago than `max_age` are deleted,
    /// their unsent entries counted as dropped.
    pub fn expire(&mut self) -> io::Result<()> {
        let Some(max_age) = self.max_age else {
            return Ok(());
        };
        while self.segments.len() > 1 {
            let Some(front) = self.segments.front() else {
                break;
            };
            let age = std::fs::metadata(&front.path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age <= max_age {
                break;
            }
            self.drop_front("wal_expired")?;
        }
        Ok(())
    }

    /// Deletes the oldest segment, counting its unsent entries under `reason`.
    fn drop_front(&mut self, reason: &'static str) -> io::Result<()> {
        let Some(seg) = self.segments.pop_front() else {
            return Ok(());
        };
        let unsent = self.unsent_in(&seg);
        std::fs::remove_file(&seg.path)?;
        if self.cursor.segment <= seg.id {
            self.cursor = Cursor {
                segment: seg.id + 1,
                offset: 0,
            };
            self.pending = None;
            format::write_cursor(&self.dir, self.cursor)?;
        }
        tracing::warn!(host = %self.host, entries = unsent, reason, "disk queue: dropped its oldest segment");
        crate::metrics::metrics()
            .dropped_entries
            .get_or_create(&crate::metrics::DropLabels {
                host: self.host.clone(),
                reason: reason.into(),
                tenant: String::new(),
            })
            .inc_by(unsent);
        self.update_gauge();
        Ok(())
    }

    /// Entries of `seg` at or after the cursor: not delivered yet.
    fn unsent_in(&self, seg: &Segment) -> u64 {
        seg.records
            .iter()
            .filter(|(off, _)| {
                seg.id > self.cursor.segment
                    || (seg.id == self.cursor.segment && *off >= self.cursor.offset)
            })
            .map(|(_, n)| u64::from(*n))
            .sum()
    }

    fn update_gauge(&self) {
        let host = crate::metrics::HostLabels {
            host: self.host.clone(),
        };
        let m = crate::metrics::metrics();
        m.wal_bytes.get_or_create(&host).set(self.bytes() as i64);
        m.wal_max_bytes
            .get_or_create(&host)
            .set(self.max_bytes as i64);
        let unsent: u64 = self.segments.iter().map(|s| self.unsent_in(s)).sum();
        m.wal_entries.get_or_create(&host).set(unsent as i64);
    }
}

/// Keeps a copy of a damaged segment beside it, `<segment>.damaged` (a hard link: the queue goes
/// on with the good records of the segment, and deletes it once they are sent), for the operator
/// to inspect; counted in `lokiship_state_damaged_total{file="wal_segment"}`.
fn set_damaged_aside(path: &Path, host: &str) {
    let mut aside = path.as_os_str().to_os_string();
    aside.push(".damaged");
    let aside = PathBuf::from(aside);
    let _ = std::fs::remove_file(&aside);
    let kept = std::fs::hard_link(path, &aside).is_ok();
    tracing::error!(host, path = %path.display(), aside = %aside.display(), kept,
        "disk queue: a segment is damaged; its good records are sent, a copy is kept aside");
    crate::metrics::state_damaged("wal_segment");
}

#[cfg(test)]
mod tests;
