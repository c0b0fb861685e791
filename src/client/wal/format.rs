//! The disk queue's files: records `[len u32][count u32][crc32 u32][JSON array of entries]` in
//! segment files, and the `cursor` file (segment and offset of the first record not yet
//! delivered).

use crate::entry::{Entry, Labels};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const HEADER: usize = 12;

#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(rename = "l")]
    labels: Vec<(String, String)>,
    #[serde(rename = "t")]
    timestamp_ns: i64,
    #[serde(rename = "m")]
    line: String,
    #[serde(rename = "s", default, skip_serializing_if = "Vec::is_empty")]
    structured_metadata: Vec<(String, String)>,
}

/// Where reading stands: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) segment: u64,
    pub(super) offset: u64,
}

/// One record holding `entries`, header included.
pub(super) fn encode(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let records: Vec<Record> = entries
        .iter()
        .map(|e| Record {
            labels: e
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timestamp_ns: e.timestamp_ns,
            line: e.line.clone(),
            structured_metadata: e.structured_metadata.clone(),
        })
        .collect();
    let payload = serde_json::to_vec(&records).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The entries of the record at `offset` and its length on disk; `None` when it fails its
/// checksum, does not parse, or claims more bytes than the file holds (a damaged length header
/// must not make this allocate up to 4 GiB).
pub(super) fn read_at(path: &Path, offset: u64) -> io::Result<Option<(Vec<Entry>, u64)>> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    file.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header)?;
    let (len, _, want) = fields(&header);
    if offset + (HEADER + len) as u64 > file_len {
        return Ok(None);
    }
    let mut payload = vec![0; len];
    file.read_exact(&mut payload)?;
    if crc(&payload) != want {
        return Ok(None);
    }
    let Ok(records) = serde_json::from_slice::<Vec<Record>>(&payload) else {
        return Ok(None);
    };
    let entries = records
        .into_iter()
        .map(|r| Entry {
            labels: r
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Labels>(),
            timestamp_ns: r.timestamp_ns,
            line: r.line,
            structured_metadata: r.structured_metadata,
            ack: None,
        })
        .collect();
    Ok(Some((entries, (HEADER + len) as u64)))
}

/// A header's (payload length, entry count, checksum).
fn fields(header: &[u8]) -> (usize, u32, u32) {
    let word = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(header.get(i..i + 4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(b)
    };
    (word(0) as usize, word(4), word(8))
}

/// The bytes of `path` from `from` to `to`.
pub(super) fn read_range(path: &Path, from: u64, to: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut out = vec![0; to.saturating_sub(from) as usize];
    file.read_exact(&mut out)?;
    Ok(out)
}

fn crc(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

pub(super) fn corrupt(host: &str, path: &Path, offset: u64) {
    tracing::error!(host, path = %path.display(), offset, "disk queue: a record fails its checksum or its length; skipping to the next good record");
    crate::metrics::metrics()
        .dropped_entries
        .get_or_create(&crate::metrics::DropLabels {
            host: host.to_string(),
            reason: "wal_corrupt".into(),
            tenant: String::new(),
        })
        .inc();
}

/// What [`scan`] found in a segment.
pub(super) struct Scanned {
    /// (offset, entries) of each record that is whole and passes its checksum.
    pub records: Vec<(u64, u32)>,
    /// Where the last good record ends.
    pub good_end: u64,
    /// Stretches between good records that are not records: damage from outside (a disk, a
    /// hand edit). Records are fsync'd whole, so a crash leaves damage only at the very end.
    pub damaged: usize,
}

/// The records of a segment that are whole and pass their checksum. Past a damaged stretch the
/// scan looks for the next good record, so one bad record does not cost the rest of the segment.
pub(super) fn scan(path: &Path, host: &str) -> io::Result<Scanned> {
    let data = std::fs::read(path)?;
    let mut found = Scanned {
        records: Vec::new(),
        good_end: 0,
        damaged: 0,
    };
    let mut at = 0usize;
    while at + HEADER <= data.len() {
        match record_at(&data, at) {
            Some((end, count)) => {
                found.records.push((at as u64, count));
                at = end;
                found.good_end = end as u64;
            }
            None => {
                let Some(next) = (at + 1..data.len()).find(|&o| record_at(&data, o).is_some())
                else {
                    break;
                };
                corrupt(host, path, at as u64);
                found.damaged += 1;
                at = next;
            }
        }
    }
    Ok(found)
}

/// The end and entry count of a good record starting at `at` in `data`. An empty payload or a
/// count of 0 is not a record: zero-filled blocks (a lost write-back) pass an empty checksum.
fn record_at(data: &[u8], at: usize) -> Option<(usize, u32)> {
    let (len, count, want) = fields(data.get(at..at + HEADER)?);
    let payload = data.get(at + HEADER..at.checked_add(HEADER)?.checked_add(len)?)?;
    // Payloads are JSON arrays: checking the brackets first keeps the search past damage cheap.
    if count == 0 || payload.first() != Some(&b'[') || payload.last() != Some(&b']') {
        return None;
    }
    (crc(payload) == want).then_some((at + HEADER + len, count))
}

/// The cursor file: `Ok(None)` when there is none (a new queue), `Err` with what is wrong when
/// it is there but does not say a segment and an offset.
pub(super) fn read_cursor(dir: &Path) -> io::Result<Result<Option<Cursor>, String>> {
    let bytes = match std::fs::read(dir.join("cursor")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&bytes);
    let parsed = text.trim().split_once(' ').and_then(|(segment, offset)| {
        Some(Cursor {
            segment: segment.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    });
    Ok(parsed.map(Some).ok_or_else(|| {
        let excerpt: String = text.chars().take(40).collect();
        format!(
            "{} bytes, not \"<segment> <offset>\": {excerpt:?}",
            bytes.len()
        )
    }))
}

pub(super) fn write_cursor(dir: &Path, c: Cursor) -> io::Result<()> {
    let text = format!("{} {}\n", c.segment, c.offset);
    crate::durable::write_atomically(&dir.join("cursor"), text.as_bytes())
}
