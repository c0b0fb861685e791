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
/// checksum or does not parse.
pub(super) fn read_at(path: &Path, offset: u64) -> io::Result<Option<(Vec<Entry>, u64)>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER];
    file.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let want = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
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
    tracing::error!(host, path = %path.display(), offset, "disk queue record fails its checksum; skipping the rest of the segment");
    crate::metrics::metrics()
        .dropped_entries
        .get_or_create(&crate::metrics::DropLabels {
            host: host.to_string(),
            reason: "wal_corrupt".into(),
            tenant: String::new(),
        })
        .inc();
}

/// The records of a segment that are whole and pass their checksum, and where they end.
pub(super) fn scan(path: &Path, host: &str) -> io::Result<(Vec<(u64, u32)>, u64)> {
    let data = std::fs::read(path)?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while at + HEADER <= data.len() {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let count = u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        let want = u32::from_le_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let end = at + HEADER + len;
        if end > data.len() {
            break;
        }
        if crc(&data[at + HEADER..end]) != want {
            corrupt(host, path, at as u64);
            break;
        }
        records.push((at as u64, count));
        at = end;
    }
    Ok((records, at as u64))
}

pub(super) fn read_cursor(dir: &Path) -> Option<Cursor> {
    let text = std::fs::read_to_string(dir.join("cursor")).ok()?;
    let (segment, offset) = text.trim().split_once(' ')?;
    Some(Cursor {
        segment: segment.parse().ok()?,
        offset: offset.parse().ok()?,
    })
}

pub(super) fn write_cursor(dir: &Path, c: Cursor) -> io::Result<()> {
    let text = format!("{} {}\n", c.segment, c.offset);
    crate::durable::write_atomically(&dir.join("cursor"), text.as_bytes())
}
